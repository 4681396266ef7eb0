/* http.h - HTTP/1.1 as bytes: a request head parsed, a response head and
 * its body written, server-sent events framed. No sockets here, so every
 * function can be tested and fuzzed on a buffer (tests/test_http.c,
 * fuzz/fuzz_http.c); src/serve.c moves the bytes.
 *
 * A request, as it arrives on a connection:
 *
 *   POST /v1/chat/completions HTTP/1.1\r\n        request line
 *   Host: 127.0.0.1:8080\r\n                      headers, one per line
 *   Content-Length: 57\r\n
 *   \r\n                                          the head ends at a blank line
 *   {"messages": [{"role": "user", ...}]}         body: Content-Length bytes
 *
 * What is refused, and how (the status a server answers with):
 *   400  a malformed request line or header, a bad Content-Length, two
 *        different Content-Lengths, a NUL or a bare CR
 *   411  a body sent chunked (Transfer-Encoding): clients of this API send
 *        a Content-Length; refusing is simpler and safer than a second
 *        body parser
 *   413  a Content-Length over the server's body limit (said before the
 *        body is read, so a huge upload costs nothing)
 *   431  a head longer than FS_HTTP_MAX_HEAD
 *   505  a version other than HTTP/1.0 or HTTP/1.1
 *
 * A response that streams (server-sent events, the OpenAI API's stream:
 * true) has no length known in advance: on HTTP/1.1 it is sent with
 * Transfer-Encoding: chunked, each event one chunk ("<hex size>\r\n<bytes>
 * \r\n", then "0\r\n\r\n"), so the connection can carry the next request
 * afterwards; on HTTP/1.0 the body simply ends when the connection closes.
 *
 * Docs: docs/serve.md
 */
#ifndef FS_HTTP_H
#define FS_HTTP_H

#include <stddef.h>

#include "util.h"

#define FS_HTTP_MAX_HEAD 16384  /* request line and headers, bytes */

typedef struct fs_http_req {
    char method[16];          /* "GET", "POST", ... */
    char path[2048];          /* the target without its query ("/v1/models") */
    int minor;                /* HTTP/1.minor: 0 or 1 */
    int keep_alive;           /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    long long content_length; /* -1: none given */
    int expect_continue;      /* "Expect: 100-continue": the client waits for a go-ahead */
    char authorization[512];  /* the Authorization header, "" if absent (longer: truncated, so never equal) */
    char origin[256];         /* the Origin header, "" if absent */
    size_t head_len;          /* bytes of the head, blank line included */
} fs_http_req;

enum { FS_HTTP_NEED_MORE = 0 };

/* Parse the head at buf[0..n). Returns FS_HTTP_NEED_MORE while the blank
 * line has not arrived (and n <= FS_HTTP_MAX_HEAD), the head's length
 * (> 0, also in r->head_len) once it is whole, or minus the HTTP status to
 * answer (-400, -411, -431, -505) with e saying what was wrong. */
int fs_http_parse_head(const char *buf, size_t n, fs_http_req *r, fs_err *e);

/* "OK", "Bad Request", ... ("" for a status it does not know). */
const char *fs_http_reason(int status);

/* ---- building responses ---- */

/* A growable byte string. fs_str_reserve at setup, so that later appends
 * that fit do not allocate. */
typedef struct fs_str {
    char *p;
    size_t n, cap;
} fs_str;

void fs_str_reserve(fs_str *s, size_t cap);
void fs_str_free(fs_str *s);
void fs_str_add(fs_str *s, const void *data, size_t len);
void fs_str_puts(fs_str *s, const char *text);
void fs_str_printf(fs_str *s, const char *fmt, ...) FS_PRINTF(2, 3);
/* A quoted JSON string of text[0..len): control characters, quotes and
 * backslashes escaped, invalid UTF-8 bytes written as U+FFFD. */
void fs_str_json(fs_str *s, const char *text, size_t len);
/* A number as JSON has them: NaN and infinities (which JSON cannot say)
 * become null; -inf as a log-probability is written as -9999.0, as
 * OpenAI does. */
void fs_str_json_number(fs_str *s, double v);

/* The status line and headers: Content-Type, then Content-Length when
 * length >= 0, or for a stream (length < 0) Transfer-Encoding: chunked on
 * HTTP/1.1; Connection: keep-alive or close; extra (NULL, or complete
 * "Name: value\r\n" lines); the blank line. */
void fs_http_head(fs_str *out, int status, int minor, const char *content_type, long long length, int keep_alive,
                  const char *extra);

/* One piece of a streamed body: framed as a chunk on HTTP/1.1 (minor 1),
 * as is on 1.0. len 0 on 1.1 writes the last chunk, which ends the body. */
void fs_http_chunk(fs_str *out, int minor, const char *data, size_t len);

#endif
