/* fuzz_chat.c - libFuzzer target for chat messages -> Qwen3's chat template.
 *
 * Input: one flag byte, then a JSON text.
 *   flag bit 0: add_generation_prompt;  bit 1: enable_thinking;
 *   bit 2: the text is a chat template, not messages: it goes to
 *          fs_chat_template_check, which must refuse anything but the exact
 *          Qwen3 template without crashing.
 * Otherwise the text is parsed as JSON and read by fs_chat_parse_messages
 * (what `fs template --messages` and a server's request body go through),
 * then rendered with fs_chat_render. What must hold:
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    fs_err e = {{0}};
    if (flags & 4) {
        if (fs_chat_template_check(text, len, &e)) check_message(&e);
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
    if (fs_chat_render(msgs, n, gen, think, &out, &e)) {
        check_message(&e);
    } else {
        if (strncmp(out, "<|im_start|>", 12) != 0) die("the prompt does not start with <|im_start|>", out);
        if (gen && !ends_with(out, think ? "<|im_start|>assistant\n"
                                         : "<|im_start|>assistant\n<think>\n\n</think>\n\n"))
            die("the prompt does not end with the generation prompt", out);
        for (size_t i = 0; i < n; i++)
            if (!strcmp(msgs[i].role, "user") && !strstr(out, msgs[i].content))
                die("a user message is not in the prompt", msgs[i].content);
        free(out);
    }
    free(msgs);
    fs_json_free(&doc);
    return 0;
}
