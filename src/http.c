/* http.c - an HTTP/1.1 request head parser and response writers (see
 * http.h for what is accepted and refused).
 *
 * The parser reads a head that is wholly in memory: the caller keeps the
 * bytes a connection has received and asks again as more arrive. It
 * never reads past n, never writes past the fixed fields of fs_http_req,
 * and turns every malformed input into a status and a message - the fuzz
 * target (fuzz/fuzz_http.c) holds it to that.
 *
 * Docs: docs/serve.md
 */
#include "http.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the request head ---- */

/* tchar of RFC 9110: the characters of a method or a header name */
static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* a[0..n) equals the NUL-terminated b, ignoring ASCII case */
static int ieq(const char *a, size_t n, const char *b) {
    size_t i = 0;
    for (; i < n && b[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return i == n && !b[i];
}

/* Does the comma-separated list v[0..n) hold the token tok? */
static int has_token(const char *v, size_t n, const char *tok) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        size_t k = j;
        while (k > i && (v[k - 1] == ' ' || v[k - 1] == '\t')) k--;
        if (k > i && ieq(v + i, k - i, tok)) return 1;
        i = j;
    }
    return 0;
}

static void copy_field(char *dst, size_t cap, const char *v, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* The end of the line that starts at i (the index of its '\n'), or n. */
static size_t line_end(const char *b, size_t i, size_t n) {
    const char *nl = memchr(b + i, '\n', n - i);
    return nl ? (size_t)(nl - b) : n;
}

static int parse_request_line(const char *b, size_t n, fs_http_req *r, fs_err *e) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)b[i])) i++;
    if (i == 0 || i >= sizeof r->method || i >= n || b[i] != ' ')
        return fs_errf(e, "malformed request line (expected METHOD /path HTTP/1.1)"), -400;
    copy_field(r->method, sizeof r->method, b, i);
    size_t t0 = ++i;
    while (i < n && b[i] != ' ') {
        if ((unsigned char)b[i] <= 0x20 || b[i] == 0x7f) return fs_errf(e, "a control character in the target"), -400;
        i++;
    }
    if (i >= n || i == t0) return fs_errf(e, "malformed request line (expected METHOD /path HTTP/1.1)"), -400;
    const char *t = b + t0;
    size_t tn = i - t0;
    /* absolute-form (a proxy's "http://host/path"): keep the path */
    if (tn > 7 && (ieq(t, 7, "http://") || (tn > 8 && ieq(t, 8, "https://")))) {
        const char *slash = memchr(t + 8 - (t[4] == ':'), '/', tn - (8 - (t[4] == ':')));
        if (!slash) {
            t = "/";
            tn = 1;
        } else {
            tn -= (size_t)(slash - t);
            t = slash;
        }
    }
    if (t[0] != '/' && !(tn == 1 && t[0] == '*')) return fs_errf(e, "the target must start with '/'"), -400;
    const char *q = memchr(t, '?', tn);
    if (q) tn = (size_t)(q - t);
    if (tn >= sizeof r->path) return fs_errf(e, "the target is longer than %zu bytes", sizeof r->path - 1), -414;
    copy_field(r->path, sizeof r->path, t, tn);
    i++;
    if (n - i != 8 || memcmp(b + i, "HTTP/1.", 7))
        return fs_errf(e, "malformed request line (expected METHOD /path HTTP/1.1)"), -400;
    if (b[i + 7] != '0' && b[i + 7] != '1') return fs_errf(e, "HTTP version not supported (1.0 and 1.1 are)"), -505;
    r->minor = b[i + 7] - '0';
    return 0;
}

static int parse_header(const char *b, size_t n, fs_http_req *r, int *seen_te, fs_err *e) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)b[i])) i++;
    if (i == 0 || i >= n || b[i] != ':') {
        if (n && (b[0] == ' ' || b[0] == '\t')) return fs_errf(e, "folded header lines are not accepted"), -400;
        return fs_errf(e, "malformed header line (expected Name: value)"), -400;
    }
    const char *name = b;
    size_t nn = i++;
    while (i < n && (b[i] == ' ' || b[i] == '\t')) i++;
    size_t j = n;
    while (j > i && (b[j - 1] == ' ' || b[j - 1] == '\t')) j--;
    const char *v = b + i;
    size_t vn = j - i;
    for (size_t k = 0; k < vn; k++)
        if ((unsigned char)v[k] < 0x20 && v[k] != '\t') return fs_errf(e, "a control character in a header"), -400;

    if (ieq(name, nn, "content-length")) {
        long long len = 0;
        if (vn == 0 || vn > 15) return fs_errf(e, "bad Content-Length"), -400;
        for (size_t k = 0; k < vn; k++) {
            if (v[k] < '0' || v[k] > '9') return fs_errf(e, "bad Content-Length"), -400;
            len = len * 10 + (v[k] - '0');
        }
        if (r->content_length >= 0 && r->content_length != len)
            return fs_errf(e, "two different Content-Length headers"), -400;
        r->content_length = len;
    } else if (ieq(name, nn, "transfer-encoding")) {
        *seen_te = 1;
    } else if (ieq(name, nn, "connection")) {
        if (has_token(v, vn, "close")) r->keep_alive = 0;
        else if (has_token(v, vn, "keep-alive")) r->keep_alive = 1;
    } else if (ieq(name, nn, "expect")) {
        if (ieq(v, vn, "100-continue")) r->expect_continue = 1;
    } else if (ieq(name, nn, "authorization")) {
        copy_field(r->authorization, sizeof r->authorization, v, vn);
    } else if (ieq(name, nn, "origin")) {
        copy_field(r->origin, sizeof r->origin, v, vn);
    }
    return 0;
}

int fs_http_parse_head(const char *buf, size_t n, fs_http_req *r, fs_err *e) {
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    /* empty lines before the request line are ignored (RFC 9112 2.2) */
    size_t start = 0;
    while (start < n && (buf[start] == '\r' || buf[start] == '\n')) start++;
    /* the head ends at the first empty line */
    size_t end = 0;
    for (size_t i = start; i < n && !end; i++)
        if (buf[i] == '\n' && ((i >= 1 && buf[i - 1] == '\n') || (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')))
            end = i + 1;
    if (!end) {
        if (n > FS_HTTP_MAX_HEAD) return fs_errf(e, "the request head is over %d bytes", FS_HTTP_MAX_HEAD), -431;
        return FS_HTTP_NEED_MORE;
    }
    if (end > FS_HTTP_MAX_HEAD) return fs_errf(e, "the request head is over %d bytes", FS_HTTP_MAX_HEAD), -431;
    if (memchr(buf, 0, end)) return fs_errf(e, "a NUL byte in the request head"), -400;

    int seen_te = 0, rc;
    size_t i = start, line = 0;
    while (i < end) {
        size_t j = line_end(buf, i, end), k = j;
        if (k > i && buf[k - 1] == '\r') k--;
        if (memchr(buf + i, '\r', k - i)) return fs_errf(e, "a bare CR in the request head"), -400;
        if (k == i) break; /* the empty line */
        if (line++ == 0) {
            rc = parse_request_line(buf + i, k - i, r, e);
            if (!rc) r->keep_alive = r->minor == 1;
        } else {
            rc = parse_header(buf + i, k - i, r, &seen_te, e);
        }
        if (rc) return rc;
        i = j + 1;
    }
    if (seen_te) return fs_errf(e, "chunked request bodies are not accepted: send a Content-Length"), -411;
    r->head_len = end;
    return (int)end;
}

const char *fs_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "";
}

/* ---- building responses ---- */

void fs_str_reserve(fs_str *s, size_t cap) {
    if (cap <= s->cap) return;
    s->p = fs_xrealloc(s->p, cap);
    s->cap = cap;
}

void fs_str_free(fs_str *s) {
    free(s->p);
    memset(s, 0, sizeof *s);
}

void fs_str_add(fs_str *s, const void *data, size_t len) {
    if (s->n + len + 1 > s->cap) fs_str_reserve(s, 2 * (s->n + len + 1));
    memcpy(s->p + s->n, data, len);
    s->n += len;
    s->p[s->n] = 0;
}

void fs_str_puts(fs_str *s, const char *text) { fs_str_add(s, text, strlen(text)); }

void fs_str_printf(fs_str *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof small) {
        fs_str_add(s, small, (size_t)k);
        return;
    }
    fs_str_reserve(s, s->n + (size_t)k + 1);
    va_start(ap, fmt);
    vsnprintf(s->p + s->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    s->n += (size_t)k;
}

void fs_str_json(fs_str *s, const char *text, size_t len) {
    static const char hex[] = "0123456789abcdef";
    fs_str_add(s, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x80) {
            char esc[6] = {'\\', 0};
            size_t k = 2;
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    memcpy(esc, "\\u00", 4);
                    esc[4] = hex[c >> 4];
                    esc[5] = hex[c & 15];
                    k = 6;
                } else {
                    esc[0] = (char)c;
                    k = 1;
                }
            }
            fs_str_add(s, esc, k);
            i++;
            continue;
        }
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)text + i, len - i, &cp);
        if (k == 0) {
            fs_str_add(s, "\xEF\xBF\xBD", 3); /* U+FFFD for a byte that is not UTF-8 */
            i++;
        } else {
            fs_str_add(s, text + i, (size_t)k);
            i += (size_t)k;
        }
    }
    fs_str_add(s, "\"", 1);
}

void fs_str_json_number(fs_str *s, double v) {
    if (isnan(v) || (isinf(v) && v > 0)) fs_str_puts(s, "null");
    else if (isinf(v)) fs_str_puts(s, "-9999.0");
    else fs_str_printf(s, "%.9g", v);
}

void fs_http_head(fs_str *out, int status, int minor, const char *content_type, long long length, int keep_alive,
                  const char *extra) {
    fs_str_printf(out, "HTTP/1.%d %d %s\r\n", minor, status, fs_http_reason(status));
    if (content_type) fs_str_printf(out, "Content-Type: %s\r\n", content_type);
    if (length >= 0) fs_str_printf(out, "Content-Length: %lld\r\n", length);
    else if (minor == 1) fs_str_puts(out, "Transfer-Encoding: chunked\r\n");
    fs_str_puts(out, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (extra) fs_str_puts(out, extra);
    fs_str_puts(out, "\r\n");
}

void fs_http_chunk(fs_str *out, int minor, const char *data, size_t len) {
    if (minor == 0) {
        fs_str_add(out, data, len);
        return;
    }
    fs_str_printf(out, "%zx\r\n", len);
    fs_str_add(out, data, len);
    fs_str_puts(out, "\r\n");
}
