/* fuzz_chat.c - libFuzzer target for chat messages -> a chat template.
 *
 * Input: one flag byte, then a JSON text.
 *   flag bit 0: add_generation_prompt;  bit 1: enable_thinking;
 *   bit 2: the text is a chat template, not messages: it goes to
 *          fs_chat_template_new and, when it compiles, renders a fixed
 *          conversation (fuzz_jinja goes deeper into the interpreter).
 * Otherwise the text is parsed as JSON and read by fs_chat_parse_messages
 * (what `fs template --messages` and a server's request body go through),
 * then rendered with a ChatML template that has Qwen3's thinking switch
 * (compiled once, below). What must hold:
 *   - every failure is one line (no control byte: quoted roles are escaped);
 *   - a render starts with "<|im_start|>", and with add_generation_prompt
 *     ends with "<|im_start|>assistant\n" (plus the empty think block when
 *     thinking is off);
 *   - the content of every user message appears in the prompt verbatim
 *     (the template never rewrites what the user said).
 *
 *   make fuzz && build/fuzz/fuzz_chat fuzz/corpus/chat -max_total_time=300
 *
 * Docs: docs/testing.md
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_chat: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void check_message(const fs_err *e) {
    if (!e->msg[0]) die("failure without a message", NULL);
    for (const unsigned char *p = (const unsigned char *)e->msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) die("control byte in a message", e->msg);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char CHATML[] =
    "{%- for m in messages %}"
    "{{- '<|im_start|>' + m.role + '\\n' }}{{- m.content if m.content is string else '' }}{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}";

static const fs_chat_template *chatml(void) {
    static fs_chat_template *t;
    fs_err e = {{0}};
    if (!t && fs_chat_template_new(&t, CHATML, sizeof CHATML - 1, NULL, NULL, &e)) die("the ChatML template", e.msg);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    fs_err e = {{0}};
    if (flags & 4) {
        fs_chat_template *t;
        if (fs_chat_template_new(&t, text, len, "<s>", "</s>", &e)) {
            check_message(&e);
            return 0;
        }
        fs_chat_msg m[3] = {{"system", "sys", NULL, NULL, NULL}, {"user", "hi {{ x }}", NULL, NULL, NULL},
                            {"assistant", "<think>r</think>a", NULL, NULL, NULL}};
        fs_chat_opts o = {flags & 1, (flags & 2) != 0, NULL, NULL, 1700000000};
        char *out = NULL;
        if (fs_chat_render(t, m, 3, &o, &out, &e)) check_message(&e);
        else if (!out) die("no output and no error", NULL);
        free(out);
        fs_chat_template_free(t);
        return 0;
    }
    fs_json_doc doc;
    if (fs_json_parse(&doc, text, len, &e)) return 0; /* fuzz_json covers the parser */
    fs_chat_msg *msgs;
    size_t n;
    if (fs_chat_parse_messages(doc.root, &msgs, &n, &e)) {
        check_message(&e);
        fs_json_free(&doc);
        return 0;
    }
    int gen = flags & 1, think = (flags & 2) != 0;
    char *out = NULL;
    fs_chat_opts o = {gen, think, NULL, NULL, 0};
    if (fs_chat_render(chatml(), msgs, n, &o, &out, &e)) {
        check_message(&e);
    } else {
        if (strncmp(out, "<|im_start|>", 12) != 0) die("the prompt does not start with <|im_start|>", out);
        if (gen && !ends_with(out, think ? "<|im_start|>assistant\n"
                                         : "<|im_start|>assistant\n<think>\n\n</think>\n\n"))
            die("the prompt does not end with the generation prompt", out);
        for (size_t i = 0; i < n; i++)
            if (!strcmp(msgs[i].role, "user") && msgs[i].content && !strstr(out, msgs[i].content))
                die("a user message is not in the prompt", msgs[i].content);
        free(out);
    }
    free(msgs);
    fs_json_free(&doc);
    return 0;
}
