/* fuzz_jinja.c - libFuzzer target for the Jinja interpreter (jinja.h).
 *
 * Input: a template source. It is compiled; when it compiles it is
 * rendered with a fixed set of variables shaped like a chat template's
 * (messages with tool calls, tools, strings with unicode, numbers, a
 * nested dict), an output bound of 64 KiB and a fixed clock. What must
 * hold:
 *   - compile and render either succeed or fail with one line that starts
 *     "template" (line and column, or what was wrong) and has no control
 *     byte;
 *   - a success gives a NUL-terminated string of the length reported, no
 *     longer than the bound;
 *   - nothing crashes, leaks, hangs or overflows (the interpreter bounds
 *     nesting, macro recursion, loop steps and memory).
 * The seeds in fuzz/corpus/jinja are the real chat templates and small
 * templates for each construct.
 *
 *   make fuzz && build/fuzz/fuzz_jinja fuzz/corpus/jinja -max_total_time=300
 *
 * Docs: docs/testing.md
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static const char VARS[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"  sys \\u00e9 \"},"
    " {\"role\": \"user\", \"content\": \"<tool_response>x</tool_response>\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>r</think>a\", \"tool_calls\": [{\"type\": \"function\","
    "  \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, null, true], \"c\": \"\\u4f60\"}}}]},"
    " {\"role\": \"tool\", \"content\": \"42\"}, {\"role\": \"user\", \"content\": \"\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"n\": 3, \"f\": -0.25, \"none\": null,"
    " \"d\": {\"k\": {\"deep\": [1, 2, 3]}}}";

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_jinja: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void check_message(const fs_err *e) {
    if (strncmp(e->msg, "template", 8) != 0) die("a message that does not start with \"template\"", e->msg);
    for (const unsigned char *p = (const unsigned char *)e->msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) die("control byte in a message", e->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fs_json_doc doc;
    static fs_jinja_var vars[16];
    static size_t nv;
    fs_err e = {{0}};
    if (!doc.root) {
        if (fs_json_parse(&doc, VARS, sizeof VARS - 1, &e)) die("the variables", e.msg);
        for (const fs_json *c = doc.root->child; c && nv < 16; c = c->next) vars[nv].name = c->key, vars[nv++].value = c;
    }
    fs_jinja *t;
    if (fs_jinja_compile(&t, (const char *)data, size, &e)) {
        check_message(&e);
        return 0;
    }
    fs_jinja_opts o = {1700000000, 1 << 16};
    char *out = NULL;
    size_t len = 0;
    if (fs_jinja_render(t, vars, nv, &o, &out, &len, &e)) {
        check_message(&e);
    } else {
        if (!out || out[len] != 0 || len > (1 << 16)) die("bad output", NULL);
        free(out);
    }
    fs_jinja_free(t);
    return 0;
}
