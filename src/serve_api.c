/* serve_api.c - OpenAI request bodies in, response JSON out (see
 * serve_api.h for the fields).
 *
 * Checks follow one rule: a value the server cannot honour is a 400 that
 * names the field ("temperature: must be a number in [0, 2]"), never a
 * silent default, because a client that asked for something and got
 * something else cannot tell.
 *
 * Docs: docs/serve.md
 */
#include "serve_api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading a request ---- */

/* The field's error: the message, and the field's name for "param". */
static int bad(const char **param, const char *field, fs_err *e, const char *what) {
    *param = field;
    return fs_errf(e, "%s: %s", field, what);
}

static int is_given(const fs_json *v) { return v && v->type != FS_JSON_NULL; }

/* A number field in [lo, hi]; *set stays 0 when absent or null. */
static int get_number(const fs_json *root, const char *field, double lo, double hi, double *out, int *set,
                      const char **param, fs_err *e) {
    const fs_json *v = fs_json_get(root, field);
    *set = 0;
    if (!is_given(v)) return 0;
    if (v->type != FS_JSON_NUMBER || !(v->number >= lo && v->number <= hi)) {
        char what[96];
        snprintf(what, sizeof what, "must be a number in [%g, %g]", lo, hi);
        return bad(param, field, e, what);
    }
    *out = v->number;
    *set = 1;
    return 0;
}

static int get_int(const fs_json *root, const char *field, int64_t lo, int64_t hi, int64_t *out, int *set,
                   const char **param, fs_err *e) {
    const fs_json *v = fs_json_get(root, field);
    *set = 0;
    if (!is_given(v)) return 0;
    if (!fs_json_int(v, lo, hi, out)) {
        char what[96];
        snprintf(what, sizeof what, "must be an integer in [%lld, %lld]", (long long)lo, (long long)hi);
        return bad(param, field, e, what);
    }
    *set = 1;
    return 0;
}

static int get_bool(const fs_json *root, const char *field, int *out, const char **param, fs_err *e) {
    const fs_json *v = fs_json_get(root, field);
    if (!is_given(v)) return 0;
    if (v->type != FS_JSON_BOOL) return bad(param, field, e, "must be true or false");
    *out = v->boolean;
    return 0;
}

/* A message's content: a string, null (an assistant turn with tool calls),
 * or a list of parts of which only {"type": "text", "text": ...} is read. */
static int get_content(fs_api_request *r, const fs_json *m, size_t i, const char **out, const char **param,
                       fs_err *e) {
    const fs_json *c = fs_json_get(m, "content");
    *param = "messages";
    if (!is_given(c)) {
        *out = "";
        return 0;
    }
    if (c->type == FS_JSON_STRING) {
        if (strlen(c->str) != c->len) return fs_errf(e, "messages[%zu].content: contains a NUL character", i);
        *out = c->str;
        return 0;
    }
    if (c->type != FS_JSON_ARRAY) return fs_errf(e, "messages[%zu].content: must be a string or a list of parts", i);
    fs_str joined = {0};
    fs_str_add(&joined, "", 0);
    size_t k = 0;
    for (const fs_json *p = c->child; p; p = p->next, k++) {
        const char *type = fs_json_string(fs_json_get(p, "type"));
        const fs_json *text = fs_json_get(p, "text");
        if (!type || strcmp(type, "text") || !text || text->type != FS_JSON_STRING || strlen(text->str) != text->len) {
            fs_str_free(&joined);
            return fs_errf(e, "messages[%zu].content[%zu]: only text parts ({\"type\": \"text\", \"text\": ...}) "
                              "are supported", i, k);
        }
        fs_str_add(&joined, text->str, text->len);
    }
    r->owned = fs_xrealloc(r->owned, (r->n_owned + 1) * sizeof *r->owned);
    r->owned[r->n_owned++] = joined.p;
    *out = joined.p;
    return 0;
}

static int parse_messages(fs_api_request *r, const fs_json *arr, const char **param, fs_err *e) {
    *param = "messages";
    if (!arr || arr->type != FS_JSON_ARRAY) return fs_errf(e, "messages: required, a list of messages");
    if (arr->len == 0) return fs_errf(e, "messages: the list is empty");
    r->msgs = fs_xcalloc(arr->len, sizeof *r->msgs);
    size_t i = 0;
    for (const fs_json *m = arr->child; m; m = m->next, i++) {
        if (m->type != FS_JSON_OBJECT) return fs_errf(e, "messages[%zu]: must be an object", i);
        fs_chat_msg *msg = &r->msgs[i];
        const char *role = fs_json_string(fs_json_get(m, "role"));
        if (!role) return fs_errf(e, "messages[%zu].role: required, a string", i);
        if (!strcmp(role, "developer")) role = "system"; /* OpenAI's newer name for it */
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool"))
            return fs_errf(e, "messages[%zu].role: \"%s\" is not one of system, developer, user, assistant, tool",
                           i, role);
        msg->role = role;
        if (get_content(r, m, i, &msg->content, param, e)) return -1;
        const fs_json *rc = fs_json_get(m, "reasoning_content");
        if (is_given(rc)) {
            if (rc->type != FS_JSON_STRING) return fs_errf(e, "messages[%zu].reasoning_content: must be a string", i);
            msg->reasoning_content = rc->str;
        }
        const fs_json *tc = fs_json_get(m, "tool_calls");
        if (is_given(tc)) {
            if (strcmp(role, "assistant")) return fs_errf(e, "messages[%zu].tool_calls: only on assistant messages", i);
            if (tc->type != FS_JSON_ARRAY) return fs_errf(e, "messages[%zu].tool_calls: must be a list", i);
            msg->tool_calls = tc;
        }
    }
    r->n_msgs = i;
    return 0;
}

static int parse_prompt(fs_api_request *r, const fs_json *p, const char **param, fs_err *e) {
    *param = "prompt";
    if (p && p->type == FS_JSON_ARRAY && p->len == 1 && p->child->type == FS_JSON_STRING) p = p->child;
    if (p && p->type == FS_JSON_STRING) {
        r->prompt = p->str;
        r->prompt_len = p->len;
        return 0;
    }
    if (p && p->type == FS_JSON_ARRAY && p->len > 0 && p->child->type == FS_JSON_NUMBER) {
        r->prompt_ids = fs_xmalloc(p->len * sizeof *r->prompt_ids);
        for (const fs_json *v = p->child; v; v = v->next) {
            int64_t id;
            if (!fs_json_int(v, 0, 1 << 30, &id)) return fs_errf(e, "prompt: a token list holds ids >= 0 only");
            r->prompt_ids[r->n_prompt_ids++] = (int)id;
        }
        return 0;
    }
    if (p && p->type == FS_JSON_ARRAY && p->len > 1)
        return fs_errf(e, "prompt: one prompt per request (a list of %zu was given)", p->len);
    return fs_errf(e, "prompt: required, a string or a list of token ids");
}

/* Fields whose meaning fs cannot honour: refused, not ignored. */
static int refuse_unsupported(const fs_json *root, const char **param, fs_err *e) {
    int64_t v;
    int set;
    if (get_int(root, "n", 1, 1, &v, &set, param, e)) return fs_errf(e, "n: only 1 choice per request is supported");
    if (get_int(root, "best_of", 1, 1, &v, &set, param, e)) return fs_errf(e, "best_of: only 1 is supported");
    const fs_json *x = fs_json_get(root, "echo");
    if (x && x->type == FS_JSON_BOOL && x->boolean) return bad(param, "echo", e, "is not supported");
    x = fs_json_get(root, "suffix");
    if (is_given(x) && !(x->type == FS_JSON_STRING && x->len == 0)) return bad(param, "suffix", e, "is not supported");
    x = fs_json_get(root, "tools");
    if (is_given(x) && !(x->type == FS_JSON_ARRAY && x->len == 0)) return bad(param, "tools", e, "tool definitions are not supported");
    x = fs_json_get(root, "logit_bias");
    if (is_given(x) && !(x->type == FS_JSON_OBJECT && x->len == 0)) return bad(param, "logit_bias", e, "is not supported");
    x = fs_json_get(root, "response_format");
    const char *type = fs_json_string(fs_json_get(x, "type"));
    if (is_given(x) && !(type && !strcmp(type, "text")))
        return bad(param, "response_format", e, "only {\"type\": \"text\"} is supported");
    return 0;
}

int fs_api_parse(fs_api_request *r, fs_api_kind kind, const char *body, size_t len, const char **param, fs_err *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    r->think = -1; /* the model's default (chat_template.h) */
    *param = NULL;
    if (fs_json_parse(&r->doc, body, len, e)) return fs_err_prefix(e, "the body is not valid JSON");
    const fs_json *root = r->doc.root;
    if (root->type != FS_JSON_OBJECT) return fs_errf(e, "the body must be a JSON object");
    if (refuse_unsupported(root, param, e)) return -1;

    if (kind == FS_API_CHAT) {
        if (parse_messages(r, fs_json_get(root, "messages"), param, e)) return -1;
        *param = NULL;
        const fs_json *kw = fs_json_get(root, "chat_template_kwargs");
        if (is_given(kw) && kw->type != FS_JSON_OBJECT) return bad(param, "chat_template_kwargs", e, "must be an object");
        if (get_bool(kw, "enable_thinking", &r->think, param, e)) return bad(param, "chat_template_kwargs.enable_thinking", e, "must be true or false");
    } else {
        if (parse_prompt(r, fs_json_get(root, "prompt"), param, e)) return -1;
        *param = NULL;
    }
    const fs_json *m = fs_json_get(root, "model");
    if (is_given(m) && m->type != FS_JSON_STRING) return bad(param, "model", e, "must be a string");
    r->model = is_given(m) ? m->str : NULL;

    int64_t iv;
    int set;
    const char *mt = kind == FS_API_CHAT && is_given(fs_json_get(root, "max_completion_tokens")) ? "max_completion_tokens"
                                                                                                : "max_tokens";
    if (get_int(root, mt, 0, 1 << 30, &iv, &set, param, e)) return -1;
    if (set) r->max_tokens = (int)iv;

    fs_sampling *s = &r->sampling;
    double d;
    if (get_number(root, "temperature", 0, 2, &d, &set, param, e)) return -1;
    if (set) s->p.temperature = d, s->set |= FS_SET_TEMPERATURE;
    if (get_number(root, "top_p", 0, 1, &d, &set, param, e)) return -1;
    if (set && d == 0) return bad(param, "top_p", e, "must be in (0, 1]");
    if (set) s->p.top_p = d, s->set |= FS_SET_TOP_P;
    if (get_number(root, "min_p", 0, 1, &d, &set, param, e)) return -1;
    if (set) s->p.min_p = d, s->set |= FS_SET_MIN_P;
    if (get_number(root, "presence_penalty", -2, 2, &d, &set, param, e)) return -1;
    if (set) s->p.presence_penalty = d, s->set |= FS_SET_PRESENCE_PENALTY;
    if (get_number(root, "frequency_penalty", -2, 2, &d, &set, param, e)) return -1;
    if (set) s->p.frequency_penalty = d, s->set |= FS_SET_FREQUENCY_PENALTY;
    const char *rp = is_given(fs_json_get(root, "repeat_penalty")) ? "repeat_penalty" : "repetition_penalty";
    if (get_number(root, rp, 0, 100, &d, &set, param, e)) return -1;
    if (set && d == 0) return bad(param, rp, e, "must be > 0");
    if (set) s->p.repetition_penalty = d, s->set |= FS_SET_REPETITION_PENALTY;
    if (get_int(root, "top_k", -1, 1 << 30, &iv, &set, param, e)) return -1;
    if (set) s->p.top_k = iv < 0 ? 0 : (int)iv, s->set |= FS_SET_TOP_K; /* -1: off, as vLLM says it */
    if (get_int(root, "seed", INT64_MIN, INT64_MAX, &iv, &set, param, e)) return -1;
    if (set) s->p.seed = (uint64_t)iv, s->set |= FS_SET_SEED;

    const fs_json *stop = fs_json_get(root, "stop");
    if (is_given(stop)) {
        const fs_json *one = stop->type == FS_JSON_STRING ? stop : NULL;
        if (!one && (stop->type != FS_JSON_ARRAY || stop->len > FS_API_MAX_STOPS))
            return bad(param, "stop", e, "must be a string or a list of up to 4 strings");
        for (const fs_json *v = one ? one : stop->child; v; v = one ? NULL : v->next) {
            if (v->type != FS_JSON_STRING) return bad(param, "stop", e, "must be a string or a list of up to 4 strings");
            if (v->len == 0) continue; /* an empty stop string would stop at once; clients mean none */
            if (strlen(v->str) != v->len) return bad(param, "stop", e, "a stop string contains a NUL character");
            r->stops[r->n_stops++] = v->str;
        }
    }

    if (get_bool(root, "stream", &r->stream, param, e)) return -1;
    if (get_bool(root, "return_token_ids", &r->return_token_ids, param, e)) return -1;
    const fs_json *so = fs_json_get(root, "stream_options");
    if (is_given(so) && so->type != FS_JSON_OBJECT) return bad(param, "stream_options", e, "must be an object");
    if (get_bool(so, "include_usage", &r->include_usage, param, e))
        return bad(param, "stream_options.include_usage", e, "must be true or false");

    if (kind == FS_API_CHAT) {
        if (get_bool(root, "logprobs", &r->logprobs, param, e)) return -1;
        if (get_int(root, "top_logprobs", 0, FS_API_MAX_TOP_LOGPROBS, &iv, &set, param, e)) return -1;
        if (set && !r->logprobs) return bad(param, "top_logprobs", e, "needs logprobs: true");
        if (set) r->top_logprobs = (int)iv;
    } else {
        if (get_int(root, "logprobs", 0, 5, &iv, &set, param, e)) return -1;
        if (set) r->logprobs = 1, r->top_logprobs = (int)iv;
    }
    return 0;
}

void fs_api_request_free(fs_api_request *r) {
    for (size_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    free(r->msgs);
    free(r->prompt_ids);
    fs_json_free(&r->doc);
    memset(r, 0, sizeof *r);
}

/* ---- writing responses ---- */

void fs_api_error(fs_str *out, const char *message, const char *type, const char *param, const char *code) {
    fs_str_puts(out, "{\"error\": {\"message\": ");
    fs_str_json(out, message, strlen(message));
    fs_str_puts(out, ", \"type\": ");
    fs_str_json(out, type, strlen(type));
    fs_str_puts(out, ", \"param\": ");
    if (param) fs_str_json(out, param, strlen(param));
    else fs_str_puts(out, "null");
    fs_str_puts(out, ", \"code\": ");
    if (code) fs_str_json(out, code, strlen(code));
    else fs_str_puts(out, "null");
    fs_str_puts(out, "}}");
}

const char *fs_api_finish_reason(fs_stop_reason r) {
    switch (r) {
    case FS_STOP_EOS: case FS_STOP_STRING: return "stop";
    case FS_STOP_MAX_TOKENS: case FS_STOP_CTX_FULL: return "length";
    case FS_STOP_CANCELLED: return "cancelled";
    default: return "error";
    }
}

void fs_api_logprob_of(const float *logits, int V, int id, int k, fs_api_logprob *out) {
    if (k > FS_API_MAX_TOP_LOGPROBS) k = FS_API_MAX_TOP_LOGPROBS;
    float mx = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double z = 0;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    double lse = mx + log(z);
    out->id = id;
    out->logprob = (float)(logits[id] - lse);
    /* the k largest, kept sorted; a later (higher) id must beat, not tie */
    int n = 0;
    for (int i = 0; i < V && k > 0; i++) {
        float v = logits[i];
        if (n == k && !(v > logits[out->top_id[n - 1]])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && v > logits[out->top_id[j - 1]]) {
            out->top_id[j] = out->top_id[j - 1];
            j--;
        }
        out->top_id[j] = i;
    }
    out->n_top = n;
    for (int j = 0; j < n; j++) out->top_logprob[j] = (float)(logits[out->top_id[j]] - lse);
}

static void token_fields(fs_str *out, const fs_tokenizer *t, int id, float logprob) {
    size_t len = 0;
    const char *b = fs_tokenizer_token_bytes(t, id, &len);
    if (!b) b = "", len = 0;
    fs_str_puts(out, "\"token\": ");
    fs_str_json(out, b, len);
    fs_str_puts(out, ", \"logprob\": ");
    fs_str_json_number(out, logprob);
    fs_str_puts(out, ", \"bytes\": [");
    for (size_t i = 0; i < len; i++) fs_str_printf(out, i ? ", %u" : "%u", (unsigned char)b[i]);
    fs_str_puts(out, "]");
}

void fs_api_logprob_json(fs_str *out, const fs_tokenizer *t, const fs_api_logprob *lp) {
    fs_str_puts(out, "{");
    token_fields(out, t, lp->id, lp->logprob);
    fs_str_puts(out, ", \"top_logprobs\": [");
    for (int j = 0; j < lp->n_top; j++) {
        fs_str_puts(out, j ? ", {" : "{");
        token_fields(out, t, lp->top_id[j], lp->top_logprob[j]);
        fs_str_puts(out, "}");
    }
    fs_str_puts(out, "]}");
}

/* ---- Qwen3's <think> ---- */

enum { T_START, T_THINK_LEAD, T_THINK, T_CONTENT_LEAD, T_CONTENT };

static const char OPEN[] = "<think>", CLOSE[] = "</think>";

static int is_blank(char c) { return c == '\n' || c == ' ' || c == '\r' || c == '\t'; }

void fs_think_feed(fs_think_split *t, const char *text, size_t len, fs_str *reasoning, fs_str *content) {
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        switch (t->state) {
        case T_START: /* is the reply opening with <think>? */
            t->held[t->n_held++] = c;
            if (memcmp(t->held, OPEN, t->n_held)) {
                t->state = T_CONTENT;
                fs_str_add(content, t->held, t->n_held);
                t->n_held = 0;
            } else if (t->n_held == sizeof OPEN - 1) {
                t->state = T_THINK_LEAD;
                t->n_held = 0;
            }
            break;
        case T_THINK_LEAD:
        case T_CONTENT_LEAD:
            if (is_blank(c)) break;
            t->state = t->state == T_THINK_LEAD ? T_THINK : T_CONTENT;
            i--; /* this character is the first of the text */
            break;
        case T_THINK: {
            if (t->n_held == 0 && c != '<') { /* the common case: a run with no tag in it */
                size_t j = i;
                while (j < len && text[j] != '<') j++;
                fs_str_add(reasoning, text + i, j - i);
                i = j - 1;
                break;
            }
            t->held[t->n_held++] = c;
            /* drop held bytes from the front until what is held could
             * still become </think> */
            size_t k = 0;
            while (k < t->n_held && memcmp(t->held + k, CLOSE, t->n_held - k)) k++;
            fs_str_add(reasoning, t->held, k);
            memmove(t->held, t->held + k, t->n_held - k);
            t->n_held -= k;
            if (t->n_held == sizeof CLOSE - 1) {
                t->state = T_CONTENT_LEAD;
                t->n_held = 0;
            }
            break;
        }
        default: /* T_CONTENT */
            fs_str_add(content, text + i, len - i);
            return;
        }
    }
}

void fs_think_end(fs_think_split *t, fs_str *reasoning, fs_str *content) {
    if (t->n_held) fs_str_add(t->state == T_THINK ? reasoning : content, t->held, t->n_held);
    t->n_held = 0;
}
