/* fuzz_http.c - libFuzzer target for what fs serve reads from a client:
 * the HTTP request head (src/http.c) and the OpenAI request body
 * (src/serve_api.c), then the chat template on the parsed messages and
 * the <think> splitter on the bytes.
 *
 * The input is one request as it arrives on a socket. The head is parsed
 * at every length up to the whole (a client may send it a byte at a time):
 * each prefix must ask for more or give the same answer as the whole. A
 * complete head's body is read as both a chat and a completions request;
 * parsed messages are rendered. Any crash, sanitizer report or abort() is
 * a bug.
 *
 *   make fuzz && build/fuzz/fuzz_http fuzz/corpus/http -max_total_time=300
 *
 * Docs: docs/serve.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "serve_api.h"

/* A ChatML template (Qwen's turn format), compiled once. */
static const fs_chat_template *chatml(void) {
    static fs_chat_template *t;
    static const char src[] =
        "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + (m.content or '') + '<|im_end|>\\n' }}"
        "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";
    fs_err e = {{0}};
    if (!t && fs_chat_template_new(&t, src, sizeof src - 1, NULL, NULL, &e)) abort();
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    fs_http_req r, whole;
    fs_err e;
    int rc = fs_http_parse_head(buf, size, &whole, &e);
    if (rc > 0 && ((size_t)rc > size || whole.head_len != (size_t)rc)) abort();
    if (rc < 0 && (-rc < 400 || -rc > 505 || !e.msg[0])) abort();
    /* a prefix never completes earlier with another answer (every 7th length: enough to catch splits) */
    for (size_t k = 0; k < size && k < 4096; k += 7) {
        int p = fs_http_parse_head(buf, k, &r, &e);
        if (p > 0 && p != rc) abort();
    }
    size_t body_at = rc > 0 ? (size_t)rc : 0, body_len = size - body_at;
    for (int kind = 0; kind < 2; kind++) {
        fs_api_request a;
        const char *param;
        if (fs_api_parse(&a, kind ? FS_API_COMPLETION : FS_API_CHAT, buf + body_at, body_len, &param, &e) == 0) {
            if (a.n_stops > FS_API_MAX_STOPS || a.top_logprobs > FS_API_MAX_TOP_LOGPROBS) abort();
            if (a.kind == FS_API_CHAT) {
                char *text = NULL;
                fs_chat_opts o = {1, a.think, NULL, NULL, 0};
                if (chatml() && fs_chat_render(chatml(), a.msgs, a.n_msgs, &o, &text, &e) == 0 && !text) abort();
                free(text);
            }
        }
        fs_api_request_free(&a);
    }
    fs_think_split t = {0};
    fs_str reasoning = {0}, content = {0};
    for (size_t i = 0; i < size; i += 3) fs_think_feed(&t, buf + i, size - i < 3 ? size - i : 3, &reasoning, &content);
    fs_think_end(&t, &reasoning, &content);
    if (reasoning.n + content.n > size) abort();
    fs_str_free(&reasoning);
    fs_str_free(&content);
    return 0;
}
