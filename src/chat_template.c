/* chat_template.c - the Qwen3 chat template, transcribed from Jinja to C.
 *
 * The Jinja source lives in tokenizer_config.json ("chat_template"). Each
 * block below quotes the Jinja lines it implements, so the two can be read
 * side by side. Python string methods are reproduced exactly:
 *   s.strip('\n') / s.lstrip('\n') / s.rstrip('\n')  trim only '\n' bytes;
 *   s.split(sep)[0]    is the text before the first sep;
 *   s.split(sep)[-1]   is the text after the last sep;
 *   `if s`             is "s is non-empty".
 * The tools branch (a tool list given to the template, which adds a
 * "# Tools" system block) is not implemented: fs never passes tools.
 *
 * Docs: docs/chat.md
 */
#include "chat_template.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable output string ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void sb_add(strbuf *sb, const char *s, size_t n) {
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (sb->len + n + 1 > cap) cap *= 2;
        sb->buf = fs_xrealloc(sb->buf, cap);
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = 0;
}

static void sb_puts(strbuf *sb, const char *s) { sb_add(sb, s, strlen(s)); }

/* ---- Python string methods on [s, s+n) slices ---- */

typedef struct {
    const char *p;
    size_t n;
} slice;

static slice sl(const char *s) { return (slice){s, strlen(s)}; }

static slice lstrip_nl(slice s) {
    while (s.n && s.p[0] == '\n') s.p++, s.n--;
    return s;
}

static slice rstrip_nl(slice s) {
    while (s.n && s.p[s.n - 1] == '\n') s.n--;
    return s;
}

static slice strip_nl(slice s) { return rstrip_nl(lstrip_nl(s)); }

/* First / last occurrence of needle in s, or NULL. */
static const char *find_first(slice s, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= s.n; i++)
        if (!memcmp(s.p + i, needle, m)) return s.p + i;
    return NULL;
}

static const char *find_last(slice s, const char *needle) {
    size_t m = strlen(needle);
    if (m > s.n) return NULL;
    for (size_t i = s.n - m + 1; i-- > 0;)
        if (!memcmp(s.p + i, needle, m)) return s.p + i;
    return NULL;
}

/* s.split(sep)[0] */
static slice split_first(slice s, const char *sep) {
    const char *f = find_first(s, sep);
    return f ? (slice){s.p, (size_t)(f - s.p)} : s;
}

/* s.split(sep)[-1] */
static slice split_last(slice s, const char *sep) {
    const char *f = find_last(s, sep);
    if (!f) return s;
    const char *after = f + strlen(sep);
    return (slice){after, (size_t)(s.p + s.n - after)};
}

static int starts_with(const char *s, const char *pre) { return !strncmp(s, pre, strlen(pre)); }

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !memcmp(s + n - m, suf, m);
}

/* ---- tojson: Python's json.dumps(x, ensure_ascii=False) ----
 *
 * HF replaces Jinja's tojson filter with json.dumps(ensure_ascii=False):
 * separators ", " and ": ", keys in document order, non-ASCII written as is,
 * control characters as \uXXXX except the short escapes \n \r \t \b \f.
 * Numbers: Python keeps ints and floats apart ("1" vs "1.0"); fs_json holds
 * only a double, so a number with an integer value below 2^53 is written as
 * an int and anything else as Python's float repr. A source "1.0" therefore
 * comes out "1", and a duplicated key is written twice where Python keeps
 * one (documented limitations; pass arguments as a JSON string to avoid
 * them: the template then copies it verbatim). */

static void json_string(strbuf *sb, const char *s, size_t n) {
    sb_add(sb, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': sb_add(sb, "\\\"", 2); break;
        case '\\': sb_add(sb, "\\\\", 2); break;
        case '\n': sb_add(sb, "\\n", 2); break;
        case '\r': sb_add(sb, "\\r", 2); break;
        case '\t': sb_add(sb, "\\t", 2); break;
        case '\b': sb_add(sb, "\\b", 2); break;
        case '\f': sb_add(sb, "\\f", 2); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                sb_puts(sb, esc);
            } else {
                sb_add(sb, (const char *)&s[i], 1);
            }
        }
    }
    sb_add(sb, "\"", 1);
}

/* Python's repr(float): the shortest digit string that reads back to the
 * same double; fixed notation when the decimal exponent is in [-4, 16),
 * otherwise d.ddde+XX. */
static void json_float(strbuf *sb, double x) {
    char digits[40], tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp is "-d.ddde+XX": pull out the sign, the digits and the exponent. */
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') neg = 1, p++;
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    digits[nd] = 0;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    if (neg) sb_add(sb, "-", 1);
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            sb_add(sb, "0.", 2);
            for (int i = 0; i < -exp10 - 1; i++) sb_add(sb, "0", 1);
            sb_add(sb, digits, nd);
        } else if ((size_t)exp10 + 1 >= nd) {
            sb_add(sb, digits, nd);
            for (size_t i = nd; i < (size_t)exp10 + 1; i++) sb_add(sb, "0", 1);
            sb_add(sb, ".0", 2);
        } else {
            sb_add(sb, digits, (size_t)exp10 + 1);
            sb_add(sb, ".", 1);
            sb_add(sb, digits + exp10 + 1, nd - (size_t)exp10 - 1);
        }
    } else {
        sb_add(sb, digits, 1);
        if (nd > 1) {
            sb_add(sb, ".", 1);
            sb_add(sb, digits + 1, nd - 1);
        }
        snprintf(tmp, sizeof tmp, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        sb_puts(sb, tmp);
    }
}

static void tojson(strbuf *sb, const fs_json *v) {
    char tmp[32];
    switch (v->type) {
    case FS_JSON_NULL: sb_puts(sb, "null"); break;
    case FS_JSON_BOOL: sb_puts(sb, v->boolean ? "true" : "false"); break;
    case FS_JSON_NUMBER:
        if (v->number == floor(v->number) && fabs(v->number) < 9007199254740992.0) {
            snprintf(tmp, sizeof tmp, "%.0f", v->number);
            /* -0.0 is an int 0 in the source text, which Python prints "0". */
            sb_puts(sb, strcmp(tmp, "-0") ? tmp : "0");
        } else {
            json_float(sb, v->number);
        }
        break;
    case FS_JSON_STRING: json_string(sb, v->str, v->len); break;
    case FS_JSON_ARRAY:
        sb_add(sb, "[", 1);
        for (const fs_json *c = v->child; c; c = c->next) {
            if (c != v->child) sb_add(sb, ", ", 2);
            tojson(sb, c);
        }
        sb_add(sb, "]", 1);
        break;
    case FS_JSON_OBJECT:
        sb_add(sb, "{", 1);
        for (const fs_json *c = v->child; c; c = c->next) {
            if (c != v->child) sb_add(sb, ", ", 2);
            json_string(sb, c->key, c->key_len);
            sb_add(sb, ": ", 2);
            tojson(sb, c);
        }
        sb_add(sb, "}", 1);
        break;
    }
}

/* Jinja truthiness of a JSON value (Python's bool()). */
static int truthy(const fs_json *v) {
    if (!v) return 0;
    switch (v->type) {
    case FS_JSON_NULL: return 0;
    case FS_JSON_BOOL: return v->boolean;
    case FS_JSON_NUMBER: return v->number != 0;
    default: return v->len != 0;
    }
}

/* {%- if message.tool_calls %}
 *     {%- for tool_call in message.tool_calls %}
 *         {%- if (loop.first and content) or (not loop.first) %} '\n'
 *         {%- if tool_call.function %} {%- set tool_call = tool_call.function %}
 *         '<tool_call>\n{"name": "' name '", "arguments": ' arguments '}\n</tool_call>'
 * where arguments is copied if it is a string, else passed through tojson. */
static int render_tool_calls(strbuf *sb, const fs_json *calls, slice content, size_t mi, fs_err *e) {
    if (!truthy(calls)) return 0;
    if (calls->type != FS_JSON_ARRAY)
        return fs_errf(e, "message %zu: tool_calls must be an array", mi);
    size_t k = 0;
    for (const fs_json *tc = calls->child; tc; tc = tc->next, k++) {
        if (tc->type != FS_JSON_OBJECT)
            return fs_errf(e, "message %zu: tool_calls[%zu] must be an object", mi, k);
        if (k > 0 || content.n) sb_add(sb, "\n", 1);
        const fs_json *call = tc, *fn = fs_json_get(tc, "function");
        if (truthy(fn)) {
            if (fn->type != FS_JSON_OBJECT)
                return fs_errf(e, "message %zu: tool_calls[%zu].function must be an object", mi, k);
            call = fn;
        }
        const fs_json *name = fs_json_get(call, "name");
        const fs_json *args = fs_json_get(call, "arguments");
        if (!fs_json_is(name, FS_JSON_STRING))
            return fs_errf(e, "message %zu: tool_calls[%zu] has no string \"name\"", mi, k);
        if (!args)
            return fs_errf(e, "message %zu: tool_calls[%zu] has no \"arguments\"", mi, k);
        /* Name and string arguments are copied raw into a C string. */
        if (memchr(name->str, 0, name->len) || (args->type == FS_JSON_STRING && memchr(args->str, 0, args->len)))
            return fs_errf(e, "message %zu: tool_calls[%zu] contains a NUL character", mi, k);
        sb_puts(sb, "<tool_call>\n{\"name\": \"");
        sb_add(sb, name->str, name->len);
        sb_puts(sb, "\", \"arguments\": ");
        if (args->type == FS_JSON_STRING) sb_add(sb, args->str, args->len);
        else tojson(sb, args);
        sb_puts(sb, "}\n</tool_call>");
    }
    return 0;
}

static int known_role(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") || !strcmp(r, "tool");
}

int fs_chat_render(const fs_chat_msg *msgs, size_t n, int add_generation_prompt,
                   int enable_thinking, char **out, fs_err *e) {
    *out = NULL;
    if (n == 0) return fs_errf(e, "no messages");
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role) return fs_errf(e, "message %zu: missing role", i);
        if (!known_role(msgs[i].role))
            return fs_errf(e, "message %zu: unknown role \"%s\" (expected system, user, assistant or tool)",
                           i, msgs[i].role);
        if (!msgs[i].content) return fs_errf(e, "message %zu: missing content", i);
    }

    strbuf sb = {0};

    /* {%- if messages[0].role == 'system' %}
     *     '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' */
    if (!strcmp(msgs[0].role, "system")) {
        sb_puts(&sb, "<|im_start|>system\n");
        sb_puts(&sb, msgs[0].content);
        sb_puts(&sb, "<|im_end|>\n");
    }

    /* The last "real" user query: walking back from the end, the first user
     * message that is not just a wrapped tool result
     * (content.startswith('<tool_response>') and .endswith('</tool_response>')).
     * If there is none, it stays at the last message (ns's initial value). */
    size_t last_query = n - 1;
    for (size_t j = n; j-- > 0;) {
        const fs_chat_msg *m = &msgs[j];
        if (!strcmp(m->role, "user") &&
            !(starts_with(m->content, "<tool_response>") && ends_with(m->content, "</tool_response>"))) {
            last_query = j;
            break;
        }
    }

    for (size_t i = 0; i < n; i++) {
        const fs_chat_msg *m = &msgs[i];
        int first = i == 0, last = i == n - 1;

        if (!strcmp(m->role, "user") || (!strcmp(m->role, "system") && !first)) {
            sb_puts(&sb, "<|im_start|>");
            sb_puts(&sb, m->role);
            sb_puts(&sb, "\n");
            sb_puts(&sb, m->content);
            sb_puts(&sb, "<|im_end|>\n");
        } else if (!strcmp(m->role, "assistant")) {
            /* content / reasoning_content: an explicit reasoning_content wins
             * (even ""), and then content is used as is. Otherwise a content
             * holding "</think>" is split: the answer is what follows the
             * last "</think>", the reasoning is what precedes the first one,
             * after its last "<think>". */
            slice content = sl(m->content), reasoning = {"", 0};
            if (m->reasoning_content) {
                reasoning = sl(m->reasoning_content);
            } else if (find_first(content, "</think>")) {
                slice whole = content;
                content = lstrip_nl(split_last(whole, "</think>"));
                reasoning = lstrip_nl(split_last(rstrip_nl(split_first(whole, "</think>")), "<think>"));
            }
            sb_puts(&sb, "<|im_start|>assistant\n");
            /* Reasoning is shown only after the last user query, and only for
             * the final message or when there is some. */
            if (i > last_query && (last || reasoning.n)) {
                slice r = strip_nl(reasoning), c = lstrip_nl(content);
                sb_puts(&sb, "<think>\n");
                sb_add(&sb, r.p, r.n);
                sb_puts(&sb, "\n</think>\n\n");
                sb_add(&sb, c.p, c.n);
            } else {
                sb_add(&sb, content.p, content.n);
            }
            if (render_tool_calls(&sb, m->tool_calls, content, i, e)) {
                free(sb.buf);
                return -1;
            }
            sb_puts(&sb, "<|im_end|>\n");
        } else if (!strcmp(m->role, "tool")) {
            /* Consecutive tool results share one user turn. */
            if (first || strcmp(msgs[i - 1].role, "tool")) sb_puts(&sb, "<|im_start|>user");
            sb_puts(&sb, "\n<tool_response>\n");
            sb_puts(&sb, m->content);
            sb_puts(&sb, "\n</tool_response>");
            if (last || strcmp(msgs[i + 1].role, "tool")) sb_puts(&sb, "<|im_end|>\n");
        }
        /* role == "system" at i == 0 was written above. */
    }

    if (add_generation_prompt) {
        sb_puts(&sb, "<|im_start|>assistant\n");
        if (!enable_thinking) sb_puts(&sb, "<think>\n\n</think>\n\n");
    }
    if (!sb.buf) sb_add(&sb, "", 0);
    *out = sb.buf;
    return 0;
}

/* A JSON string member as a C string; NUL bytes inside are refused since the
 * renderer works on C strings (a prompt has no use for them). */
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

int fs_chat_parse_messages(const fs_json *arr, fs_chat_msg **msgs, size_t *n, fs_err *e) {
    *msgs = NULL;
    *n = 0;
    if (!fs_json_is(arr, FS_JSON_ARRAY)) return fs_errf(e, "messages must be a JSON array");
    if (arr->len == 0) return fs_errf(e, "messages: the array is empty");
    fs_chat_msg *m = fs_xcalloc(arr->len, sizeof *m);
    size_t i = 0;
    for (const fs_json *v = arr->child; v; v = v->next, i++) {
        if (v->type != FS_JSON_OBJECT) {
            free(m);
            return fs_errf(e, "message %zu: must be an object", i);
        }
        if (get_str(v, "role", i, 1, &m[i].role, e) || get_str(v, "content", i, 1, &m[i].content, e) ||
            get_str(v, "reasoning_content", i, 0, &m[i].reasoning_content, e)) {
            free(m);
            return -1;
        }
        if (!known_role(m[i].role)) {
            fs_errf(e, "message %zu: unknown role \"%s\" (expected system, user, assistant or tool)", i,
                    m[i].role);
            free(m);
            return -1;
        }
        const fs_json *tc = fs_json_get(v, "tool_calls");
        if (tc && tc->type != FS_JSON_NULL) {
            if (strcmp(m[i].role, "assistant")) {
                fs_errf(e, "message %zu: tool_calls on a \"%s\" message (only assistant messages carry them)",
                        i, m[i].role);
                free(m);
                return -1;
            }
            if (tc->type != FS_JSON_ARRAY) {
                fs_errf(e, "message %zu: tool_calls must be an array", i);
                free(m);
                return -1;
            }
            m[i].tool_calls = tc;
        }
    }
    *msgs = m;
    *n = i;
    return 0;
}

/* The exact template text is identified by its 64-bit FNV-1a hash (and
 * length): small, dependency-free, and enough to tell templates apart -
 * this guards against mistakes, not adversaries. Computed over
 * Qwen3's tokenizer_config.json "chat_template" (4116 bytes). */
#define QWEN3_TEMPLATE_LEN 4116
#define QWEN3_TEMPLATE_FNV 0x2bfdb7aa9754484eULL

int fs_chat_template_check(const char *tmpl, size_t len, fs_err *e) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tmpl[i];
        h *= 0x100000001b3ULL;
    }
    if (len != QWEN3_TEMPLATE_LEN || h != QWEN3_TEMPLATE_FNV)
        return fs_errf(e, "unsupported chat template (fs renders only Qwen3's template; this one is "
                          "%zu bytes, FNV-1a %016llx)", len, (unsigned long long)h);
    return 0;
}

int fs_chat_template_check_dir(const char *model_dir, fs_err *e) {
    char path[4096];
    if (fs_path_join(path, sizeof path, model_dir, "tokenizer_config.json"))
        return fs_errf(e, "%s: path too long", model_dir);
    if (fs_regular_file(path, e) < 0) return -1; /* never open a FIFO: it would wait for a writer */
    fs_json_doc doc;
    if (fs_json_parse_file(&doc, path, e)) return -1;
    const fs_json *t = fs_json_get(doc.root, "chat_template");
    int rc;
    if (!fs_json_is(t, FS_JSON_STRING))
        rc = fs_errf(e, "%s: no \"chat_template\" string", path);
    else if ((rc = fs_chat_template_check(t->str, t->len, e)))
        fs_err_prefix(e, "%s", path);
    fs_json_free(&doc);
    return rc;
}
