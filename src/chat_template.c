/* chat_template.c - a checkpoint's chat template, loaded and run
 * (chat_template.h); the interpreter is jinja.h.
 *
 * What this file adds to the interpreter is what transformers'
 * apply_chat_template adds to jinja2: where the template is found, the
 * variables it is given, and the checks on a conversation before it runs.
 * The variables are built as JSON nodes (fs_json) pointing at the
 * caller's strings, so nothing is copied twice.
 *
 * Docs: docs/chat.md
 */
#include "chat_template.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jinja.h"

/* the special tokens transformers passes to a template (its special_tokens_map) */
#define N_TOKENS 7

struct fs_chat_template {
    fs_jinja *prog;
    char *source;
    char *origin; /* "DIR/chat_template.jinja", "DIR/tokenizer_config.json" or "(string)" */
    char *tokens[N_TOKENS]; /* NULL when the config has none */
    int think_default;      /* tokenizer_config.json's "enable_thinking": 1 (also when absent) or 0 */
};

static const char *const TOKEN_NAMES[N_TOKENS] = {"bos_token", "eos_token", "unk_token", "pad_token",
                                                  "sep_token", "cls_token", "mask_token"};

static int compile(fs_chat_template *t, fs_err *e) {
    if (fs_jinja_compile(&t->prog, t->source, strlen(t->source), e)) return fs_err_prefix(e, "%s: chat template", t->origin);
    return 0;
}

int fs_chat_template_new(fs_chat_template **out, const char *src, size_t len, const char *bos_token,
                         const char *eos_token, fs_err *e) {
    *out = NULL;
    if (memchr(src, 0, len)) return fs_errf(e, "chat template: contains a NUL byte");
    fs_chat_template *t = fs_xcalloc(1, sizeof *t);
    t->think_default = 1;
    t->source = fs_xmalloc(len + 1);
    memcpy(t->source, src, len);
    t->source[len] = 0;
    t->origin = fs_xstrdup("(string)");
    if (bos_token) t->tokens[0] = fs_xstrdup(bos_token);
    if (eos_token) t->tokens[1] = fs_xstrdup(eos_token);
    if (compile(t, e)) {
        fs_chat_template_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void fs_chat_template_free(fs_chat_template *t) {
    if (!t) return;
    fs_jinja_free(t->prog);
    free(t->source);
    free(t->origin);
    for (int i = 0; i < N_TOKENS; i++) free(t->tokens[i]);
    free(t);
}

const char *fs_chat_template_source(const fs_chat_template *t) { return t->source; }
const char *fs_chat_template_origin(const fs_chat_template *t) { return t->origin; }

int fs_chat_template_thinking(const fs_chat_template *t) {
    if (!strstr(t->source, "enable_thinking")) return FS_THINK_NONE;
    return t->think_default ? FS_THINK_ON : FS_THINK_OFF;
}

/* A special token in tokenizer_config.json: "text", or {"content": "text", ...}. */
static const char *token_text(const fs_json *v) {
    if (fs_json_is(v, FS_JSON_OBJECT)) v = fs_json_get(v, "content");
    const char *s = fs_json_string(v);
    return s && !memchr(s, 0, v->len) ? s : NULL;
}

/* tokenizer_config.json's chat_template: a string, or a list of
 * {"name": ..., "template": ...} of which "default" is the chat one. */
static int config_template(const fs_json *root, const char *path, const fs_json **tmpl, fs_err *e) {
    const fs_json *t = fs_json_get(root, "chat_template");
    *tmpl = NULL;
    if (fs_json_is(t, FS_JSON_STRING)) return *tmpl = t, 0;
    if (fs_json_is(t, FS_JSON_ARRAY)) {
        char names[256] = "";
        for (const fs_json *c = t->child; c; c = c->next) {
            const char *name = fs_json_string(fs_json_get(c, "name"));
            const fs_json *body = fs_json_get(c, "template");
            if (!name || !fs_json_is(body, FS_JSON_STRING))
                return fs_errf(e, "%s: chat_template: each entry of the list needs \"name\" and \"template\" strings", path);
            if (!strcmp(name, "default")) return *tmpl = body, 0;
            size_t k = strlen(names);
            snprintf(names + k, sizeof names - k, "%s\"%.40s\"", k ? ", " : "", name);
        }
        return fs_errf(e, "%s: chat_template: no template named \"default\" among %s", path, names[0] ? names : "none");
    }
    if (t) return fs_errf(e, "%s: chat_template must be a string or a list of named templates", path);
    return fs_errf(e, "%s: no \"chat_template\" (and no chat_template.jinja beside it)", path);
}

int fs_chat_template_load(fs_chat_template **out, const char *model_dir, fs_err *e) {
    *out = NULL;
    char cfg[4096], jinja[4096];
    if (fs_path_join(cfg, sizeof cfg, model_dir, "tokenizer_config.json") ||
        fs_path_join(jinja, sizeof jinja, model_dir, "chat_template.jinja"))
        return fs_errf(e, "%s: path too long", model_dir);
    fs_chat_template *t = fs_xcalloc(1, sizeof *t);
    t->think_default = 1;
    fs_json_doc doc = {0};
    int have_doc = 0, rc = -1;
    /* never open a FIFO: it would wait for a writer */
    if (access(cfg, F_OK) == 0) {
        if (fs_regular_file(cfg, e) < 0 || fs_json_parse_file(&doc, cfg, e)) goto done;
        have_doc = 1;
        for (int i = 0; i < N_TOKENS; i++) {
            const char *s = token_text(fs_json_get(doc.root, TOKEN_NAMES[i]));
            if (s) t->tokens[i] = fs_xstrdup(s);
        }
        const fs_json *think = fs_json_get(doc.root, "enable_thinking");
        if (think && !fs_json_is(think, FS_JSON_BOOL)) {
            fs_errf(e, "%s: \"enable_thinking\" (the model's default thinking mode) must be true or false", cfg);
            goto done;
        }
        if (think) t->think_default = think->boolean;
    }
    if (access(jinja, F_OK) == 0) {
        size_t len;
        if (fs_regular_file(jinja, e) < 0 || fs_read_file(jinja, &t->source, &len, e)) goto done;
        if (memchr(t->source, 0, len)) {
            fs_errf(e, "%s: contains a NUL byte", jinja);
            goto done;
        }
        t->origin = fs_xstrdup(jinja);
    } else if (have_doc) {
        const fs_json *tmpl;
        if (config_template(doc.root, cfg, &tmpl, e)) goto done;
        if (memchr(tmpl->str, 0, tmpl->len)) {
            fs_errf(e, "%s: chat_template contains a NUL character", cfg);
            goto done;
        }
        t->source = fs_xstrdup(tmpl->str);
        t->origin = fs_xstrdup(cfg);
    } else {
        fs_errf(e, "%s: no chat template (neither tokenizer_config.json nor chat_template.jinja)", model_dir);
        goto done;
    }
    if (compile(t, e)) goto done;
    rc = 0;
done:
    if (have_doc) fs_json_free(&doc);
    if (rc) fs_chat_template_free(t);
    else *out = t;
    return rc;
}

/* ---- the variables, as JSON nodes ---- */

typedef struct {
    fs_json *nodes;
    size_t n, cap;
} pool;

/* Nodes are handed out from one array sized up front (so pointers stay valid). */
static fs_json *new_node(pool *p, fs_json_type type) {
    fs_json *x = &p->nodes[p->n++];
    memset(x, 0, sizeof *x);
    x->type = type;
    return x;
}

static fs_json *str_node(pool *p, const char *key, const char *s) {
    fs_json *x = new_node(p, s ? FS_JSON_STRING : FS_JSON_NULL);
    x->key = key, x->key_len = key ? strlen(key) : 0;
    if (s) x->str = s, x->len = strlen(s);
    return x;
}

/* a node of another document as a member of ours: a shallow copy, so its
 * own next/key stay untouched */
static fs_json *alias(pool *p, const char *key, const fs_json *v) {
    fs_json *x = new_node(p, v->type);
    *x = *v;
    x->next = NULL;
    x->key = key, x->key_len = key ? strlen(key) : 0;
    return x;
}

static void append(fs_json *parent, fs_json **tail, fs_json *x) {
    if (*tail) (*tail)->next = x;
    else parent->child = x;
    *tail = x;
    parent->len++;
}

static int known_role(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") || !strcmp(r, "tool") ||
           !strcmp(r, "ipython");
}

static int check_msg(const fs_chat_msg *m, size_t i, fs_err *e) {
    if (!m->role) return fs_errf(e, "message %zu: missing role", i);
    if (!known_role(m->role))
        return fs_errf(e, "message %zu: unknown role \"%.40s\" (expected system, user, assistant, tool or ipython)", i,
                       m->role);
    if (!m->content && !(m->tool_calls && !strcmp(m->role, "assistant")))
        return fs_errf(e, "message %zu: missing content", i);
    if (m->tool_calls && m->tool_calls->type != FS_JSON_ARRAY) return fs_errf(e, "message %zu: tool_calls must be an array", i);
    return 0;
}

int fs_chat_render(const fs_chat_template *t, const fs_chat_msg *msgs, size_t n, const fs_chat_opts *o, char **out,
                   fs_err *e) {
    static const fs_chat_opts defaults = {1, -1, NULL, NULL, 0};
    if (!o) o = &defaults;
    *out = NULL;
    if (n == 0) return fs_errf(e, "no messages");
    for (size_t i = 0; i < n; i++)
        if (check_msg(&msgs[i], i, e)) return -1;
    if (o->tools && o->tools->type != FS_JSON_ARRAY) return fs_errf(e, "tools must be a JSON array");
    if (o->kwargs && o->kwargs->type != FS_JSON_OBJECT) return fs_errf(e, "chat template kwargs must be a JSON object");
    static const char *const fixed[] = {"messages", "tools", "documents", "add_generation_prompt", NULL};
    size_t n_kw = 0;
    for (const fs_json *k = o->kwargs ? o->kwargs->child : NULL; k; k = k->next, n_kw++) {
        for (int f = 0; fixed[f]; f++)
            if (k->key_len == strlen(fixed[f]) && !memcmp(k->key, fixed[f], k->key_len))
                return fs_errf(e, "chat template kwargs: \"%s\" is set by fs, not by kwargs", fixed[f]);
        if (memchr(k->key, 0, k->key_len)) return fs_errf(e, "chat template kwargs: a name contains a NUL character");
    }

    /* messages: one object per message (5 members at most) and the array */
    pool p = {0};
    p.cap = 8 + 6 * n;
    p.nodes = fs_xmalloc(p.cap * sizeof *p.nodes);
    fs_json *arr = new_node(&p, FS_JSON_ARRAY), *tail = NULL;
    for (size_t i = 0; i < n; i++) {
        const fs_chat_msg *m = &msgs[i];
        if (m->src) {
            append(arr, &tail, alias(&p, NULL, m->src));
            continue;
        }
        fs_json *obj = new_node(&p, FS_JSON_OBJECT), *mt = NULL;
        append(obj, &mt, str_node(&p, "role", m->role));
        append(obj, &mt, str_node(&p, "content", m->content));
        if (m->reasoning_content) append(obj, &mt, str_node(&p, "reasoning_content", m->reasoning_content));
        if (m->tool_calls) append(obj, &mt, alias(&p, "tool_calls", m->tool_calls));
        append(arr, &tail, obj);
    }
    fs_json none = {0}, gen = {0}, think = {0};
    none.type = FS_JSON_NULL;
    gen.type = think.type = FS_JSON_BOOL;
    gen.boolean = o->add_generation_prompt != 0;
    think.boolean = o->enable_thinking > 0;
    fs_json tokens[N_TOKENS];

    /* the variables, in transformers' order: later ones win */
    size_t nv = 0;
    fs_jinja_var *vars = fs_xmalloc((N_TOKENS + 6 + n_kw) * sizeof *vars);
    for (int i = 0; i < N_TOKENS; i++)
        if (t->tokens[i]) {
            memset(&tokens[i], 0, sizeof tokens[i]);
            tokens[i].type = FS_JSON_STRING, tokens[i].str = t->tokens[i], tokens[i].len = strlen(t->tokens[i]);
            vars[nv++] = (fs_jinja_var){TOKEN_NAMES[i], &tokens[i]};
        }
    if (o->enable_thinking >= 0) vars[nv++] = (fs_jinja_var){"enable_thinking", &think};
    char **names = fs_xcalloc(n_kw + 1, sizeof *names);
    size_t k = 0;
    for (const fs_json *kw = o->kwargs ? o->kwargs->child : NULL; kw; kw = kw->next, k++) {
        names[k] = fs_xmalloc(kw->key_len + 1);
        memcpy(names[k], kw->key, kw->key_len);
        names[k][kw->key_len] = 0;
        vars[nv++] = (fs_jinja_var){names[k], kw};
    }
    vars[nv++] = (fs_jinja_var){"messages", arr};
    vars[nv++] = (fs_jinja_var){"tools", o->tools ? o->tools : &none};
    vars[nv++] = (fs_jinja_var){"documents", &none};
    vars[nv++] = (fs_jinja_var){"add_generation_prompt", &gen};

    fs_jinja_opts jo = {0};
    jo.now = o->now;
    int rc = fs_jinja_render(t->prog, vars, nv, &jo, out, NULL, e);
    for (size_t i = 0; i < n_kw; i++) free(names[i]);
    free(names);
    free(vars);
    free(p.nodes);
    return rc;
}

/* ---- messages from JSON ---- */

/* A JSON string member as a C string; NUL bytes inside are refused since
 * fs keeps messages as C strings (a prompt has no use for them). */
static int get_str(const fs_json *obj, const char *key, size_t i, int required, const char **out, fs_err *e) {
    const fs_json *v = fs_json_get(obj, key);
    *out = NULL;
    if (!v || v->type == FS_JSON_NULL) {
        if (required) return fs_errf(e, "message %zu: missing \"%s\"", i, key);
        return 0;
    }
    if (v->type != FS_JSON_STRING) return fs_errf(e, "message %zu: \"%s\" must be a string", i, key);
    if (memchr(v->str, 0, v->len)) return fs_errf(e, "message %zu: \"%s\" contains a NUL character", i, key);
    *out = v->str;
    return 0;
}

static int parse_one(const fs_json *v, size_t i, fs_chat_msg *m, fs_err *e) {
    if (v->type != FS_JSON_OBJECT) return fs_errf(e, "message %zu: must be an object", i);
    m->src = v;
    if (get_str(v, "role", i, 1, &m->role, e) || get_str(v, "reasoning_content", i, 0, &m->reasoning_content, e))
        return -1;
    if (!known_role(m->role))
        return fs_errf(e, "message %zu: unknown role \"%.40s\" (expected system, user, assistant, tool or ipython)", i,
                       m->role);
    const fs_json *tc = fs_json_get(v, "tool_calls");
    if (tc && tc->type != FS_JSON_NULL) {
        if (strcmp(m->role, "assistant"))
            return fs_errf(e, "message %zu: tool_calls on a \"%s\" message (only assistant messages carry them)", i,
                           m->role);
        if (tc->type != FS_JSON_ARRAY) return fs_errf(e, "message %zu: tool_calls must be an array", i);
        m->tool_calls = tc;
    }
    /* content may be null only beside tool calls */
    return get_str(v, "content", i, !m->tool_calls, &m->content, e);
}

int fs_chat_parse_messages(const fs_json *arr, fs_chat_msg **msgs, size_t *n, fs_err *e) {
    *msgs = NULL;
    *n = 0;
    if (!fs_json_is(arr, FS_JSON_ARRAY)) return fs_errf(e, "messages must be a JSON array");
    if (arr->len == 0) return fs_errf(e, "messages: the array is empty");
    fs_chat_msg *m = fs_xcalloc(arr->len, sizeof *m);
    size_t i = 0;
    for (const fs_json *v = arr->child; v; v = v->next, i++)
        if (parse_one(v, i, &m[i], e)) {
            free(m);
            return -1;
        }
    *msgs = m;
    *n = i;
    return 0;
}

int fs_chat_parse_date(const char *s, time_t *out) {
    int y, mo, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
        d > 31)
        return -1;
    static const int days_before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d > mdays[mo - 1] + (mo == 2 && leap)) return -1;
    /* days since 1970-01-01, counting leap days of the years before */
    long long days = (long long)(y - 1970) * 365 + ((y - 1) / 4 - 1969 / 4) - ((y - 1) / 100 - 1969 / 100) +
                     ((y - 1) / 400 - 1969 / 400) + days_before[mo - 1] + (mo > 2 && leap) + (d - 1);
    *out = (time_t)(days * 86400 + 12 * 3600);
    return 0;
}
