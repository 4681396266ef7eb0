/* test_chat_template.c - chat templates run by fs's Jinja interpreter,
 * checked by hand.
 *
 * The Qwen3 cases run the template models/tiny ships (Qwen3's own,
 * 4116 bytes); each expected string was derived by reading the Jinja
 * template line by line. Then: loading (chat_template.jinja over
 * tokenizer_config.json, the named-list form, special tokens, errors that
 * name the file), the thinking mode a model offers (its template and
 * tokenizer_config.json's "enable_thinking"), tools, kwargs and the
 * clock. The byte-exact comparison
 * with transformers over 242 conversations of three families is
 * tests/e2e_template.sh.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat_template.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static fs_chat_msg U(const char *c) { return (fs_chat_msg){"user", c, NULL, NULL, NULL}; }
static fs_chat_msg A(const char *c) { return (fs_chat_msg){"assistant", c, NULL, NULL, NULL}; }
static fs_chat_msg AR(const char *c, const char *r) { return (fs_chat_msg){"assistant", c, r, NULL, NULL}; }
static fs_chat_msg S(const char *c) { return (fs_chat_msg){"system", c, NULL, NULL, NULL}; }
static fs_chat_msg T(const char *c) { return (fs_chat_msg){"tool", c, NULL, NULL, NULL}; }

static fs_chat_template *qwen3; /* models/tiny's template */

static int render(const fs_chat_template *t, const fs_chat_msg *m, size_t n, int gen, int think, char **out, fs_err *e) {
    fs_chat_opts o = {gen, think, NULL, NULL, 0};
    return fs_chat_render(t, m, n, &o, out, e);
}

/* Render and compare; gen/think as in fs_chat_opts. */
static void check_render(int line, const fs_chat_msg *m, size_t n, int gen, int think, const char *want) {
    fs_err e = {{0}};
    char *got = NULL;
    int rc = render(qwen3, m, n, gen, think, &got, &e);
    CHECKF(rc == 0, "line %d: render failed: %s", line, e.msg);
    if (rc == 0) CHECKF(!strcmp(got, want), "line %d:\n got: [%s]\nwant: [%s]", line, got, want);
    free(got);
}
#define RENDER(m, gen, think, want) check_render(__LINE__, m, N(m), gen, think, want)

static void check_error(int line, const fs_chat_msg *m, size_t n, const char *needle) {
    fs_err e = {{0}};
    char *got = NULL;
    int rc = render(qwen3, m, n, 1, 1, &got, &e);
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
    if (rc == 0) rc = render(qwen3, m, n, 1, think, &got, &e);
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
    fs_chat_msg bad[] = {{"robot", "x", NULL, NULL, NULL}};
    check_error(__LINE__, bad, 1, "unknown role \"robot\"");
    fs_chat_msg nul[] = {{"user", NULL, NULL, NULL, NULL}};
    check_error(__LINE__, nul, 1, "missing content");
    fs_chat_msg norole[] = {{NULL, "x", NULL, NULL, NULL}};
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
    /* a call without a name: the template prints the undefined name as "" (as jinja2 does) */
    check_json(__LINE__, "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]",
               1, "<|im_start|>assistant\n<tool_call>\n{\"name\": \"\", \"arguments\": {}}\n"
                  "</tool_call><|im_end|>\n<|im_start|>assistant\n", 1);
    /* without arguments, tojson of an undefined fails (transformers: TypeError) */
    check_json(__LINE__, "[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"name\":\"f\"}]}]", 1,
               "template line 62, column 47: tojson: Object of type Undefined is not JSON serializable", 0);
    /* reasoning_content: null means absent, so the content is split. */
    check_json(__LINE__, "[{\"role\":\"user\",\"content\":\"q\"},"
                         "{\"role\":\"assistant\",\"content\":\"<think>r</think>a\",\"reasoning_content\":null}]",
               1, "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"
                  "<|im_start|>assistant\n", 1);
}

/* Write DIR/NAME with text. */
static void put(const char *dir, const char *name, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *render_dir(const char *dir, const fs_chat_opts *o, fs_err *e) {
    fs_chat_template *t = NULL;
    fs_chat_msg m[] = {S("sys"), U("hi")};
    char *out = NULL;
    if (fs_chat_template_load(&t, dir, e) == 0) fs_chat_render(t, m, 2, o, &out, e);
    fs_chat_template_free(t);
    return out;
}

static void test_loading(void) {
    fs_err e = {{0}};
    char tmp[256], path[600];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/fs_test_tmpl_XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(tmp)) {
        CHECK(0);
        return;
    }
    fs_chat_opts o = {1, -1, NULL, NULL, 0};
    /* a string template with special tokens (as a string and as an object) */
    put(tmp, "tokenizer_config.json",
        "{\"chat_template\": \"{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{{ eos_token }}{{ pad_token is defined }}\", \"bos_token\": \"<s>\", "
        "\"eos_token\": {\"content\": \"</s>\", \"lstrip\": false}, \"pad_token\": null}");
    char *out = render_dir(tmp, &o, &e);
    CHECKF(out && !strcmp(out, "<s><system>sys<user>hi</s>False"), "%s", out ? out : e.msg);
    free(out);
    /* the named-list form: "default" is the chat template */
    put(tmp, "tokenizer_config.json",
        "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, "
        "{\"name\": \"default\", \"template\": \"D{{ messages | length }}\"}]}");
    out = render_dir(tmp, &o, &e);
    CHECKF(out && !strcmp(out, "D2"), "%s", out ? out : e.msg);
    free(out);
    put(tmp, "tokenizer_config.json", "{\"chat_template\": [{\"name\": \"rag\", \"template\": \"R\"}]}");
    CHECK(render_dir(tmp, &o, &e) == NULL);
    CHECKF(strstr(e.msg, "no template named \"default\" among \"rag\"") != NULL, "%s", e.msg);
    put(tmp, "tokenizer_config.json", "{\"chat_template\": 7}");
    CHECK(render_dir(tmp, &o, &e) == NULL);
    CHECKF(strstr(e.msg, "must be a string or a list") != NULL, "%s", e.msg);
    put(tmp, "tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    CHECK(render_dir(tmp, &o, &e) == NULL);
    CHECKF(strstr(e.msg, "no \"chat_template\"") != NULL, "%s", e.msg);
    /* chat_template.jinja wins over tokenizer_config.json; the tokens still come from the config */
    put(tmp, "chat_template.jinja", "J{{ eos_token }}{{ messages[1].content }}\n");
    out = render_dir(tmp, &o, &e);
    CHECKF(out && !strcmp(out, "J</s>hi"), "%s", out ? out : e.msg); /* the final newline goes, as in jinja2 */
    free(out);
    /* a template that does not parse: the file, the line and the column */
    put(tmp, "chat_template.jinja", "ok\n{% for m in messages %}\n{{ m.content | nosuch }}{% endfor %}");
    CHECK(render_dir(tmp, &o, &e) == NULL);
    CHECKF(strstr(e.msg, "chat_template.jinja") && strstr(e.msg, "template line 3, column 16: unknown filter 'nosuch'"),
           "%s", e.msg);
    put(tmp, "chat_template.jinja", "{% if true %}never closed");
    CHECK(render_dir(tmp, &o, &e) == NULL);
    CHECKF(strstr(e.msg, "chat_template.jinja: chat template: template line 1, column 26: expected 'endif'"), "%s", e.msg);
    snprintf(path, sizeof path, "%s/chat_template.jinja", tmp);
    unlink(path);

    /* tokenizer_config.json as a FIFO: named, never opened (alarm guards a hang). */
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp);
    unlink(path);
    alarm(30);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(render_dir(tmp, &o, &e) == NULL);
    CHECKF(strstr(e.msg, "tokenizer_config.json is a FIFO (named pipe), not a regular file") != NULL, "%s", e.msg);
    alarm(0);
    unlink(path);
    rmdir(tmp);
    CHECK(render_dir("/nonexistent-dir", &o, &e) == NULL);
    CHECKF(strstr(e.msg, "no chat template") != NULL, "%s", e.msg);
}

/* fs_chat_template_thinking: what the model offers for thinking mode */
static int thinking_of(const char *dir, const char *config, fs_err *e) {
    put(dir, "tokenizer_config.json", config);
    fs_chat_template *t = NULL;
    if (fs_chat_template_load(&t, dir, e)) return -2;
    int r = fs_chat_template_thinking(t);
    fs_chat_template_free(t);
    return r;
}

static void test_thinking_mode(void) {
    fs_err e = {{0}};
    /* models/tiny: Qwen3's template, and "enable_thinking": false in its tokenizer_config.json */
    CHECK_EQ_INT(fs_chat_template_thinking(qwen3), FS_THINK_OFF);
    char tmp[256], path[600];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/fs_test_think_XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(tmp)) {
        CHECK(0);
        return;
    }
#define TMPL "\"chat_template\": \"{% if enable_thinking is defined and enable_thinking is false %}E{% endif %}\""
    CHECK_EQ_INT(thinking_of(tmp, "{" TMPL "}", &e), FS_THINK_ON); /* Qwen3: thinks unless told not to */
    CHECK_EQ_INT(thinking_of(tmp, "{" TMPL ", \"enable_thinking\": true}", &e), FS_THINK_ON);
    CHECK_EQ_INT(thinking_of(tmp, "{" TMPL ", \"enable_thinking\": false}", &e), FS_THINK_OFF);
    CHECK_EQ_INT(thinking_of(tmp, "{" TMPL ", \"enable_thinking\": \"no\"}", &e), -2);
    CHECKF(strstr(e.msg, "tokenizer_config.json: \"enable_thinking\" (the model's default thinking mode) must be true "
                         "or false") != NULL, "%s", e.msg);
    CHECK_EQ_INT(thinking_of(tmp, "{" TMPL ", \"enable_thinking\": null}", &e), -2);
    /* a template that never reads enable_thinking has no switch, whatever the config says */
    CHECK_EQ_INT(thinking_of(tmp, "{\"chat_template\": \"{{ messages[0].content }}\"}", &e), FS_THINK_NONE);
    CHECK_EQ_INT(thinking_of(tmp, "{\"chat_template\": \"x\", \"enable_thinking\": false}", &e), FS_THINK_NONE);
#undef TMPL
    fs_chat_template *t = NULL;
    const char *src = "{{ enable_thinking }}";
    CHECK(fs_chat_template_new(&t, src, strlen(src), NULL, NULL, &e) == 0);
    if (t) CHECK_EQ_INT(fs_chat_template_thinking(t), FS_THINK_ON); /* no config: the template's own default */
    fs_chat_template_free(t);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp);
    unlink(path);
    rmdir(tmp);
}

/* tools, kwargs, enable_thinking left undefined, the clock, a raising template */
static void test_variables(void) {
    fs_err e = {{0}};
    fs_json_doc tools, kw, bad;
    const char *tj = "[{\"type\": \"function\", \"function\": {\"name\": \"get\", \"parameters\": {}}}]";
    CHECK(fs_json_parse(&tools, tj, strlen(tj), &e) == 0);
    const char *kj = "{\"date_string\": \"1 Jan\", \"enable_thinking\": false}", *bj = "{\"add_generation_prompt\": true}";
    CHECK(fs_json_parse(&kw, kj, strlen(kj), &e) == 0);
    CHECK(fs_json_parse(&bad, bj, strlen(bj), &e) == 0);
    fs_chat_msg m[] = {U("q")};
    char *out = NULL;
    /* Qwen3 with tools: the system block lists them as JSON */
    fs_chat_opts o = {1, 1, tools.root, NULL, 0};
    CHECK(fs_chat_render(qwen3, m, 1, &o, &out, &e) == 0);
    CHECKF(out && strstr(out, "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get\", \"parameters\": {}}}\n</tools>"),
           "%s", out ? out : e.msg);
    free(out);
    fs_chat_template *t = NULL;
    const char *src = "{{ enable_thinking is defined }} {{ date_string | default('none') }} {{ strftime_now('%d %b %Y') }}"
                      " {{ tools is none }} {{ documents is none }} {{ add_generation_prompt }}";
    CHECK(fs_chat_template_new(&t, src, strlen(src), NULL, NULL, &e) == 0);
    fs_chat_opts plain = {0, -1, NULL, NULL, 0};
    CHECK(fs_chat_parse_date("2024-07-26", &plain.now) == 0);
    CHECK(fs_chat_render(t, m, 1, &plain, &out, &e) == 0);
    CHECKF(out && !strcmp(out, "False none 26 Jul 2024 True True False"), "%s", out ? out : e.msg);
    free(out);
    fs_chat_opts with_kw = {1, 1, NULL, kw.root, 0};
    CHECK(fs_chat_parse_date("2000-02-29", &with_kw.now) == 0);
    CHECK(fs_chat_render(t, m, 1, &with_kw, &out, &e) == 0);
    CHECKF(out && !strcmp(out, "True 1 Jan 29 Feb 2000 True True True"), "%s", out ? out : e.msg);
    free(out);
    /* kwargs' enable_thinking wins over the option */
    const char *think_src = "{{ enable_thinking }}";
    fs_chat_template *t2 = NULL;
    CHECK(fs_chat_template_new(&t2, think_src, strlen(think_src), NULL, NULL, &e) == 0);
    CHECK(fs_chat_render(t2, m, 1, &with_kw, &out, &e) == 0 && !strcmp(out, "False"));
    fs_chat_template_free(t2);
    free(out);
    fs_chat_opts clash = {1, 1, NULL, bad.root, 0};
    CHECK(fs_chat_render(t, m, 1, &clash, &out, &e) == -1 && strstr(e.msg, "set by fs"));
    fs_chat_opts notlist = {1, 1, bad.root, NULL, 0};
    CHECK(fs_chat_render(t, m, 1, &notlist, &out, &e) == -1 && strstr(e.msg, "tools must be a JSON array"));
    fs_chat_template_free(t);
    time_t when;
    CHECK(fs_chat_parse_date("2023-02-29", &when) == -1);
    CHECK(fs_chat_parse_date("2024-1-5x", &when) == -1);
    CHECK(fs_chat_parse_date("1970-01-01", &when) == 0 && when == 12 * 3600);
    CHECK(fs_chat_parse_date("2026-12-04", &when) == 0 && when == 1796385600 + 0 * 86400 - 0);

    /* the template's own refusal is an error with its position */
    src = "{%- if messages | length > 1 %}{{ raise_exception('one message only') }}{% endif %}ok";
    CHECK(fs_chat_template_new(&t, src, strlen(src), NULL, NULL, &e) == 0);
    CHECK(fs_chat_render(t, m, 1, NULL, &out, &e) == 0 && !strcmp(out, "ok"));
    free(out);
    fs_chat_msg two[] = {U("a"), U("b")};
    CHECK(fs_chat_render(t, two, 2, NULL, &out, &e) == -1 && out == NULL);
    CHECKF(!strcmp(e.msg, "template line 1, column 35: raise_exception: one message only"), "%s", e.msg);
    fs_chat_template_free(t);
    fs_json_free(&tools);
    fs_json_free(&kw);
    fs_json_free(&bad);
}

/* A message parsed from JSON reaches the template whole: fields fs does
 * not read (name, tool_call_id) too; content may be null beside tool calls. */
static void test_message_fields(void) {
    fs_err e = {{0}};
    fs_chat_template *t = NULL;
    const char *src = "{% for m in messages %}{{ m.role }}:{{ m.content }}:{{ m.name | default('-') }}"
                      ":{{ m.tool_call_id | default('-') }};{% endfor %}";
    CHECK(fs_chat_template_new(&t, src, strlen(src), NULL, NULL, &e) == 0);
    const char *js = "[{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"function\": "
                     "{\"name\": \"f\", \"arguments\": {}}}]}, {\"role\": \"tool\", \"name\": \"f\", "
                     "\"tool_call_id\": \"c1\", \"content\": \"4\"}, {\"role\": \"ipython\", \"content\": \"5\"}]";
    fs_json_doc doc;
    CHECK(fs_json_parse(&doc, js, strlen(js), &e) == 0);
    fs_chat_msg *m = NULL;
    size_t n = 0;
    char *out = NULL;
    CHECKF(fs_chat_parse_messages(doc.root, &m, &n, &e) == 0, "%s", e.msg);
    CHECK(n == 3 && m[0].content == NULL && m[0].tool_calls != NULL);
    CHECK(fs_chat_render(t, m, n, NULL, &out, &e) == 0);
    CHECKF(out && !strcmp(out, "assistant:None:-:-;tool:4:f:c1;ipython:5:-:-;"), "%s", out ? out : e.msg);
    free(out);
    free(m);
    fs_json_free(&doc);
    fs_chat_template_free(t);
}

int main(void) {
    fs_err e = {{0}};
    if (fs_chat_template_load(&qwen3, "models/tiny", &e)) {
        fprintf(stderr, "test_chat_template: %s\n", e.msg);
        return 1;
    }
    test_basic();
    test_reasoning();
    test_tools();
    test_errors();
    test_loading();
    test_thinking_mode();
    test_variables();
    test_message_fields();
    fs_chat_template_free(qwen3);
    return TEST_SUMMARY();
}
