/* test_chat_template.c - the Qwen3 chat template, checked by hand.
 *
 * Each expected string below was derived by reading the Jinja template in
 * tokenizer_config.json line by line. The byte-exact comparison with
 * transformers over 140+ conversations is tests/e2e_template.sh.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat_template.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static fs_chat_msg U(const char *c) { return (fs_chat_msg){"user", c, NULL, NULL}; }
static fs_chat_msg A(const char *c) { return (fs_chat_msg){"assistant", c, NULL, NULL}; }
static fs_chat_msg AR(const char *c, const char *r) { return (fs_chat_msg){"assistant", c, r, NULL}; }
static fs_chat_msg S(const char *c) { return (fs_chat_msg){"system", c, NULL, NULL}; }
static fs_chat_msg T(const char *c) { return (fs_chat_msg){"tool", c, NULL, NULL}; }

/* Render and compare; gen/think as in fs_chat_render. */
static void check_render(int line, const fs_chat_msg *m, size_t n, int gen, int think, const char *want) {
    fs_err e = {{0}};
    char *got = NULL;
    int rc = fs_chat_render(m, n, gen, think, &got, &e);
    CHECKF(rc == 0, "line %d: render failed: %s", line, e.msg);
    if (rc == 0) CHECKF(!strcmp(got, want), "line %d:\n got: [%s]\nwant: [%s]", line, got, want);
    free(got);
}
#define RENDER(m, gen, think, want) check_render(__LINE__, m, N(m), gen, think, want)

static void check_error(int line, const fs_chat_msg *m, size_t n, const char *needle) {
    fs_err e = {{0}};
    char *got = NULL;
    int rc = fs_chat_render(m, n, 1, 1, &got, &e);
    CHECKF(rc == -1 && got == NULL && strstr(e.msg, needle), "line %d: want error containing \"%s\", got rc %d \"%s\"",
           line, needle, rc, e.msg);
    free(got);
}

/* Parse a messages JSON text and render it. */
static void check_json(int line, const char *json, int think, const char *want_or_err, int want_ok) {
    fs_json_doc doc;
    fs_err e = {{0}};
    if (fs_json_parse(&doc, json, strlen(json), &e)) {
        CHECKF(0, "line %d: bad test JSON: %s", line, e.msg);
        return;
    }
    fs_chat_msg *m = NULL;
    size_t n = 0;
    char *got = NULL;
    int rc = fs_chat_parse_messages(doc.root, &m, &n, &e);
    if (rc == 0) rc = fs_chat_render(m, n, 1, think, &got, &e);
    if (want_ok)
        CHECKF(rc == 0 && !strcmp(got, want_or_err), "line %d:\n got: [%s]\nwant: [%s]\n err: %s", line,
               got ? got : "(null)", want_or_err, e.msg);
    else
        CHECKF(rc == -1 && strstr(e.msg, want_or_err), "line %d: want error \"%s\", got rc %d \"%s\"", line,
               want_or_err, rc, e.msg);
    free(got);
    free(m);
    fs_json_free(&doc);
}

static void test_basic(void) {
    fs_chat_msg one[] = {U("Hi")};
    RENDER(one, 1, 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    RENDER(one, 1, 0, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    RENDER(one, 0, 0, "<|im_start|>user\nHi<|im_end|>\n");

    fs_chat_msg sys[] = {S("Be brief."), U("Hi")};
    RENDER(sys, 1, 1, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");

    /* A system message that is not first is rendered where it stands. */
    fs_chat_msg late[] = {U("a"), S("b")};
    RENDER(late, 0, 1, "<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n");

    fs_chat_msg empty[] = {U("")};
    RENDER(empty, 1, 1, "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n");
}

static void test_reasoning(void) {
    /* Before the last user query the think block is dropped and the answer
     * loses its leading newlines. */
    fs_chat_msg hist[] = {U("q"), A("<think>\nr\n</think>\n\nans"), U("next")};
    RENDER(hist, 0, 1,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nans<|im_end|>\n<|im_start|>user\nnext<|im_end|>\n");

    /* After it, the reasoning is kept and normalised to "\n...\n". */
    fs_chat_msg last[] = {U("q"), A("<think>r</think>ans")};
    RENDER(last, 0, 1, "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\nans<|im_end|>\n");

    /* The last message gets a (possibly empty) think block; a middle one
     * without reasoning does not. */
    fs_chat_msg two[] = {U("q"), A("x"), A("y")};
    RENDER(two, 0, 1,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nx<|im_end|>\n"
           "<|im_start|>assistant\n<think>\n\n</think>\n\ny<|im_end|>\n");

    /* Split rules: answer after the LAST </think>, reasoning before the
     * first one and after its last <think>; only '\n' is trimmed. */
    fs_chat_msg split[] = {U("q"), A("<think>a<think>b</think>c</think> d")};
    RENDER(split, 0, 1, "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nb\n</think>\n\n d<|im_end|>\n");

    /* <think> without a closing tag: nothing is split off. */
    fs_chat_msg open[] = {U("q"), A("<think>x"), U("n")};
    RENDER(open, 0, 1,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>x<|im_end|>\n<|im_start|>user\nn<|im_end|>\n");

    /* reasoning_content wins over the content's think block, even when "". */
    fs_chat_msg rc[] = {U("q"), AR("<think>c</think>ans", "field")};
    RENDER(rc, 0, 1,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nfield\n</think>\n\n<think>c</think>ans<|im_end|>\n");
    fs_chat_msg rce[] = {U("q"), AR("<think>c</think>ans", ""), U("n")};
    RENDER(rce, 0, 1,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>c</think>ans<|im_end|>\n"
           "<|im_start|>user\nn<|im_end|>\n");
}

static void test_tools(void) {
    /* Consecutive tool results share one user turn. The assistant turn is
     * after the last query but neither last nor reasoning: no think block. */
    fs_chat_msg t[] = {U("q"), A("c"), T("r1"), T("r2")};
    RENDER(t, 0, 1,
           "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nc<|im_end|>\n"
           "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n");

    /* A user message that only wraps a tool response is not the "last
     * query": here the query is message 0, so message 1 keeps its think. */
    fs_chat_msg w[] = {U("real"), A("<think>t</think>a"), U("<tool_response>x</tool_response>")};
    RENDER(w, 0, 1,
           "<|im_start|>user\nreal<|im_end|>\n<|im_start|>assistant\n<think>\nt\n</think>\n\na<|im_end|>\n"
           "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n");

    check_json(__LINE__,
               "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
               "[{\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[true,null],\"s\":\"x\\ny\\u0001\\u00e9\","
               "\"f\":[0.5,1e-05,1.5e300,123.456,1e16,1000000000000000.5,1.5e-7,-2]}}},"
               "{\"name\":\"g\",\"arguments\":\"{raw}\"}]}]",
               1,
               "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
               "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [true, null], \"s\": \"x\\ny\\u0001\xc3\xa9\", "
               "\"f\": [0.5, 1e-05, 1.5e+300, 123.456, 1e+16, 1000000000000000.5, 1.5e-07, -2]}}\n</tool_call>\n"
               "<tool_call>\n{\"name\": \"g\", \"arguments\": {raw}}\n</tool_call><|im_end|>\n<|im_start|>assistant\n",
               1);
}

static void test_errors(void) {
    fs_chat_msg bad[] = {{"robot", "x", NULL, NULL}};
    check_error(__LINE__, bad, 1, "unknown role \"robot\"");
    fs_chat_msg nul[] = {{"user", NULL, NULL, NULL}};
    check_error(__LINE__, nul, 1, "missing content");
    fs_chat_msg norole[] = {{NULL, "x", NULL, NULL}};
    check_error(__LINE__, norole, 1, "missing role");
    check_error(__LINE__, NULL, 0, "no messages");

    check_json(__LINE__, "{\"role\":\"user\"}", 1, "must be a JSON array", 0);
    check_json(__LINE__, "[]", 1, "empty", 0);
    check_json(__LINE__, "[1]", 1, "message 0: must be an object", 0);
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\"}]", 1, "message 1: missing \"content\"", 0);
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":null}]", 1, "missing \"content\"", 0);
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":[]}]", 1, "must be a string", 0);
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]", 1, "NUL", 0);
    check_json(__LINE__, "[{\"role\":\"bot\",\"content\":\"a\"}]", 1, "unknown role", 0);
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":\"a\",\"tool_calls\":[]}]", 1, "only assistant", 0);
    check_json(__LINE__, "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]",
               1, "no string \"name\"", 0);
    check_json(__LINE__, "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"name\":\"f\"}]}]", 1,
               "no \"arguments\"", 0);
    /* reasoning_content: null means absent, so the content is split. */
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":\"q\"},"
                         "{\"role\":\"assistant\",\"content\":\"<think>r</think>a\",\"reasoning_content\":null}]",
               1, "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"
                  "<|im_start|>assistant\n", 1);
}

static void test_template_check(void) {
    fs_err e = {{0}};
    CHECK(fs_chat_template_check("{{ messages }}", 14, &e) == -1);
    CHECK(strstr(e.msg, "unsupported chat template") != NULL);
    /* The real tokenizer_config.json, when fetched (make tokenizer). */
    const char *dir = "models/qwen3-tokenizer";
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (fs_file_exists(path)) {
        CHECKF(fs_chat_template_check_dir(dir, &e) == 0, "%s", e.msg);
    } else {
        printf("test_chat_template: %s absent, real-template check skipped\n", path);
    }
    CHECK(fs_chat_template_check_dir("/nonexistent-dir", &e) == -1);

    /* tokenizer_config.json as a FIFO: named, never opened (alarm guards a hang). */
    char tmp[256], fifo[300];
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/fs_test_tmpl_XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(tmp)) {
        snprintf(fifo, sizeof fifo, "%s/tokenizer_config.json", tmp);
        alarm(30);
        CHECK(mkfifo(fifo, 0600) == 0);
        CHECK(fs_chat_template_check_dir(tmp, &e) == -1);
        CHECKF(strstr(e.msg, "tokenizer_config.json is a FIFO (named pipe), not a regular file") != NULL, "%s", e.msg);
        alarm(0);
        unlink(fifo);
        rmdir(tmp);
    }
}

int main(void) {
    test_basic();
    test_reasoning();
    test_tools();
    test_errors();
    test_template_check();
    return TEST_SUMMARY();
}
