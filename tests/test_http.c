/* test_http.c - fs serve's pieces that need no socket and no model:
 * the HTTP head parser (src/http.c), the response writers, the OpenAI
 * request checks, log-probabilities and the <think> splitter
 * (src/serve_api.c).
 *
 * Docs: docs/serve.md
 */
#include <math.h>
#include <stdlib.h>

#include "http.h"
#include "serve_api.h"
#include "test.h"

static int parse(const char *s, fs_http_req *r) {
    fs_err e = {{0}};
    return fs_http_parse_head(s, strlen(s), r, &e);
}

static void test_head(void) {
    fs_http_req r;
    const char *ok = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
                     "Authorization: Bearer k\r\nConnection: keep-alive\r\n\r\n{\"a\": 1}";
    int n = parse(ok, &r);
    CHECK_EQ_INT(n, (int)(strstr(ok, "\r\n\r\n") - ok) + 4);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.path, "/v1/chat/completions");
    CHECK_EQ_INT(r.content_length, 12);
    CHECK_STR(r.authorization, "Bearer k");
    CHECK_EQ_INT(r.minor, 1);
    CHECK_EQ_INT(r.keep_alive, 1);

    /* every prefix of a whole head asks for more */
    size_t head = (size_t)n;
    int more = 1;
    for (size_t k = 0; k < head; k++) {
        fs_err e;
        more &= fs_http_parse_head(ok, k, &r, &e) == FS_HTTP_NEED_MORE;
    }
    CHECK(more);

    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0 && r.keep_alive == 0 && r.content_length == -1);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0 && r.keep_alive == 1);
    CHECK(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &r) > 0 && r.keep_alive == 0);
    CHECK(parse("GET /health HTTP/1.1\n\n", &r) > 0);                     /* bare LF lines */
    CHECK(parse("\r\nGET /health HTTP/1.1\r\n\r\n", &r) > 0);             /* a stray empty line first */
    CHECK(parse("GET http://h:1/v1/models?a HTTP/1.1\r\n\r\n", &r) > 0 && !strcmp(r.path, "/v1/models"));
    CHECK(parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", &r) > 0 && r.expect_continue);

    CHECK_EQ_INT(parse("GET / HTTP/2.0\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET / HTTP/1.2\r\n\r\n", &r), -505);
    CHECK_EQ_INT(parse("GET /\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET nopath HTTP/1.1\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse(" GET / HTTP/1.1\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nNo colon\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r), -400);
    CHECK(parse("GET / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", &r) > 0);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", &r), -400);
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), -411);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", &r), -400);
    fs_err e;
    CHECK_EQ_INT(fs_http_parse_head("GET / HTTP/1.1\r\nA: \0\r\n\r\n", 24, &r, &e), -400);

    /* the head's size limit: a head that never ends, or one that is too long */
    size_t big = FS_HTTP_MAX_HEAD + 100;
    char *b = malloc(big + 1);
    memcpy(b, "GET / HTTP/1.1\r\nX: ", 19);
    memset(b + 19, 'a', big - 19);
    b[big] = 0;
    CHECK_EQ_INT(fs_http_parse_head(b, big, &r, &e), -431);
    memcpy(b + big - 4, "\r\n\r\n", 4);
    CHECK_EQ_INT(fs_http_parse_head(b, big, &r, &e), -431);
    memset(b, 'a', big);
    b[0] = 'G';
    CHECK_EQ_INT(fs_http_parse_head(b, 100, &r, &e), FS_HTTP_NEED_MORE);
    free(b);
    char path[2100] = "GET /";
    memset(path + 5, 'p', 2060);
    strcpy(path + 2065, " HTTP/1.1\r\n\r\n");
    CHECK_EQ_INT(parse(path, &r), -414);
}

static void test_writers(void) {
    fs_str s = {0};
    fs_str_json(&s, "a\"b\\c\n\x01\xff\xc3\xa9", 10);
    CHECK_STR(s.p, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xc3\xa9\"");
    s.n = 0;
    fs_str_json_number(&s, -INFINITY);
    fs_str_puts(&s, " ");
    fs_str_json_number(&s, NAN);
    fs_str_puts(&s, " ");
    fs_str_json_number(&s, -0.5);
    CHECK_STR(s.p, "-9999.0 null -0.5");
    s.n = 0;
    fs_http_head(&s, 200, 1, "text/event-stream", -1, 1, NULL);
    CHECK(strstr(s.p, "HTTP/1.1 200 OK\r\n") == s.p && strstr(s.p, "Transfer-Encoding: chunked\r\n") &&
          strstr(s.p, "\r\n\r\n") == s.p + s.n - 4);
    s.n = 0;
    fs_http_chunk(&s, 1, "hello", 5);
    fs_http_chunk(&s, 1, "", 0);
    CHECK_STR(s.p, "5\r\nhello\r\n0\r\n\r\n");
    s.n = 0;
    fs_http_chunk(&s, 0, "hello", 5);
    CHECK_STR(s.p, "hello");
    s.n = 0;
    fs_api_error(&s, "temperature: bad", "invalid_request_error", "temperature", NULL);
    CHECK_STR(s.p, "{\"error\": {\"message\": \"temperature: bad\", \"type\": \"invalid_request_error\", "
                   "\"param\": \"temperature\", \"code\": null}}");
    fs_str_free(&s);
}

/* A request body: 0, or -1 with the field the error names. */
static int api(fs_api_kind kind, const char *body, const char **param, fs_api_request *r) {
    fs_err e = {{0}};
    int rc = fs_api_parse(r, kind, body, strlen(body), param, &e);
    if (rc && !strstr(e.msg, *param ? *param : "")) fprintf(stderr, "message without the field: %s\n", e.msg);
    return rc;
}

static void test_api(void) {
    fs_api_request r;
    const char *param;
    CHECK_EQ_INT(api(FS_API_CHAT,
                     "{\"model\": \"m\", \"messages\": [{\"role\": \"developer\", \"content\": \"be brief\"}, "
                     "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"text\", "
                     "\"text\": \"b\"}]}], \"max_completion_tokens\": 7, \"temperature\": 0.5, \"top_k\": -1, "
                     "\"stop\": [\"x\", \"\"], \"stream\": true, \"stream_options\": {\"include_usage\": true}, "
                     "\"logprobs\": true, \"top_logprobs\": 3, \"seed\": -1, \"frequency_penalty\": 0.5, "
                     "\"chat_template_kwargs\": {\"enable_thinking\": false}, \"whatever\": [1, 2]}",
                     &param, &r), 0);
    CHECK_EQ_INT(r.n_msgs, 2);
    CHECK_STR(r.msgs[0].role, "system");
    CHECK_STR(r.msgs[1].content, "ab");
    CHECK_EQ_INT(r.max_tokens, 7);
    CHECK(r.sampling.set & FS_SET_TEMPERATURE && r.sampling.p.temperature == 0.5);
    CHECK(r.sampling.set & FS_SET_TOP_K && r.sampling.p.top_k == 0);
    CHECK(r.sampling.p.seed == UINT64_MAX && r.sampling.p.frequency_penalty == 0.5);
    CHECK_EQ_INT(r.n_stops, 1); /* the empty one is dropped */
    CHECK(r.stream && r.include_usage && r.logprobs && r.top_logprobs == 3 && r.think == 0);
    fs_api_request_free(&r);

    CHECK_EQ_INT(api(FS_API_COMPLETION, "{\"prompt\": [1, 2, 3], \"logprobs\": 2}", &param, &r), 0);
    CHECK(r.n_prompt_ids == 3 && r.prompt_ids[2] == 3 && r.logprobs && r.top_logprobs == 2);
    fs_api_request_free(&r);
    CHECK_EQ_INT(api(FS_API_COMPLETION, "{\"prompt\": [\"one\"]}", &param, &r), 0);
    CHECK_STR(r.prompt, "one");
    fs_api_request_free(&r);

    static const struct { fs_api_kind kind; const char *body, *param; } bad[] = {
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 2}", "n"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": -1}", "temperature"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_p\": 0}", "top_p"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": -2}", "max_tokens"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": [1]}", "stop"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": 1}", "stream"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}", "top_logprobs"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logprobs\": true, \"top_logprobs\": 21}",
         "top_logprobs"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"logit_bias\": {\"1\": 5}}", "logit_bias"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": "
                      "\"json_object\"}}", "response_format"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "messages"},
        {FS_API_CHAT, "{\"messages\": [{\"role\": \"tool\"}], \"presence_penalty\": 3}", "presence_penalty"},
        {FS_API_CHAT, "{\"messages\": \"hi\"}", "messages"},
        {FS_API_CHAT, "{}", "messages"},
        {FS_API_COMPLETION, "{\"prompt\": [\"a\", \"b\"]}", "prompt"},
        {FS_API_COMPLETION, "{\"prompt\": [1, -1]}", "prompt"},
        {FS_API_COMPLETION, "{\"prompt\": \"x\", \"echo\": true}", "echo"},
        {FS_API_COMPLETION, "{\"prompt\": \"x\", \"best_of\": 3}", "best_of"},
        {FS_API_COMPLETION, "{\"prompt\": \"x\", \"logprobs\": 6}", "logprobs"},
        {FS_API_COMPLETION, "{\"prompt\": \"x\", \"model\": 5}", "model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        param = NULL;
        int rc = api(bad[i].kind, bad[i].body, &param, &r);
        CHECKF(rc == -1 && param && !strcmp(param, bad[i].param), "%s: rc %d param %s", bad[i].body, rc,
               param ? param : "(null)");
        fs_api_request_free(&r);
    }
    CHECK_EQ_INT(api(FS_API_CHAT, "[1]", &param, &r), -1);
    fs_api_request_free(&r);
    CHECK_EQ_INT(api(FS_API_CHAT, "{\"messages\": [", &param, &r), -1);
    fs_api_request_free(&r);
}

static void test_logprob(void) {
    float logits[6] = {1, 3, 3, -INFINITY, 0, 2};
    fs_api_logprob lp;
    fs_api_logprob_of(logits, 6, 5, 4, &lp);
    double z = exp(1.0) + 2 * exp(3.0) + 1 + exp(2.0);
    CHECK_NEAR(lp.logprob, 2 - log(z), 1e-6);
    CHECK_EQ_INT(lp.n_top, 4);
    CHECK(lp.top_id[0] == 1 && lp.top_id[1] == 2 && lp.top_id[2] == 5 && lp.top_id[3] == 0); /* ties: lower id first */
    CHECK_NEAR(lp.top_logprob[0], 3 - log(z), 1e-6);
    fs_api_logprob_of(logits, 6, 3, 0, &lp);
    CHECK(lp.n_top == 0 && isinf(lp.logprob));
}

/* Feed text to the splitter cut into pieces of size k. */
static void split(const char *text, size_t k, fs_str *r, fs_str *c) {
    fs_think_split t = {0};
    r->n = c->n = 0;
    fs_str_add(r, "", 0);
    fs_str_add(c, "", 0);
    for (size_t i = 0, n = strlen(text); i < n; i += k) fs_think_feed(&t, text + i, n - i < k ? n - i : k, r, c);
    fs_think_end(&t, r, c);
}

static void test_think(void) {
    fs_str r = {0}, c = {0};
    for (size_t k = 1; k <= 12; k++) {
        split("<think>\nhmm <b> </thin x</think>\n\nThe answer.", k, &r, &c);
        CHECKF(!strcmp(r.p, "hmm <b> </thin x") && !strcmp(c.p, "The answer."), "piece %zu: [%s] [%s]", k, r.p, c.p);
        split("No thinking <think> here.", k, &r, &c);
        CHECKF(r.n == 0 && !strcmp(c.p, "No thinking <think> here."), "piece %zu: [%s]", k, c.p);
        split("<thi", k, &r, &c);
        CHECKF(r.n == 0 && !strcmp(c.p, "<thi"), "piece %zu: [%s]", k, c.p);
        split("<think>unfinished </th", k, &r, &c);
        CHECKF(!strcmp(r.p, "unfinished </th") && c.n == 0, "piece %zu: [%s]", k, r.p);
    }
    fs_str_free(&r);
    fs_str_free(&c);
}

int main(void) {
    test_head();
    test_writers();
    test_api();
    test_logprob();
    test_think();
    return TEST_SUMMARY();
}
