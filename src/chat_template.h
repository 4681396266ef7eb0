/* chat_template.h - turn a conversation into the prompt text Qwen3 was trained on.
 *
 * A chat model does not see "messages"; it sees one string in which every
 * turn is wrapped in special tokens:
 *
 *     <|im_start|>system\nYou are terse.<|im_end|>\n
 *     <|im_start|>user\nHi!<|im_end|>\n
 *     <|im_start|>assistant\n            <- generation prompt: the model goes on from here
 *
 * Hugging Face ships the rule as a Jinja program (tokenizer_config.json, key
 * "chat_template"). fs does not embed a Jinja engine: this file is a direct C
 * transcription of the Qwen3 template, and fs_chat_template_check refuses any
 * other template rather than render the wrong thing. Its golden test
 * (tests/golden/template) compares byte for byte with transformers'
 * apply_chat_template.
 *
 * What the template does, besides wrapping turns:
 *   - a leading system message becomes the first block; a system message
 *     anywhere else is rendered in place;
 *   - "tool" messages become user turns holding <tool_response> blocks, and
 *     consecutive tool messages share one user turn;
 *   - reasoning: an assistant turn's "<think>...</think>" part (or its
 *     reasoning_content field) is kept only for assistant turns after the
 *     last real user query; earlier turns lose it, so old reasoning does not
 *     fill the context;
 *   - enable_thinking = 0 appends an empty think block after the generation
 *     prompt, which tells Qwen3 to answer without reasoning.
 *
 * Docs: docs/chat.md
 */
#ifndef FS_CHAT_TEMPLATE_H
#define FS_CHAT_TEMPLATE_H

#include <stddef.h>

#include "json.h"
#include "util.h"

/* One message. Strings are NUL-terminated UTF-8 and owned by the caller.
 * role: "system", "user", "assistant" or "tool".
 * reasoning_content: NULL when absent (or JSON null); "" counts as given.
 * tool_calls: NULL, or a JSON array of OpenAI-style calls
 *   [{"function": {"name": "...", "arguments": {...} or "..."}}, ...]
 *   (assistant messages only). */
typedef struct fs_chat_msg {
    const char *role;
    const char *content;
    const char *reasoning_content;
    const fs_json *tool_calls;
} fs_chat_msg;

/* Render msgs[0..n) as Qwen3's template does with tools absent. *out is a
 * malloc'd NUL-terminated string (free it). Errors: n == 0, NULL fields,
 * unknown role, malformed tool_calls. */
int fs_chat_render(const fs_chat_msg *msgs, size_t n, int add_generation_prompt,
                   int enable_thinking, char **out, fs_err *e);

/* Read an OpenAI-style messages array (a JSON array of objects with "role",
 * "content" and optional "reasoning_content", "tool_calls"). *msgs is a
 * malloc'd array (free it) whose strings point into the JSON document, so
 * the document must outlive it. */
int fs_chat_parse_messages(const fs_json *arr, fs_chat_msg **msgs, size_t *n, fs_err *e);

/* 0 if tmpl[0..len) is exactly the Qwen3 chat template this file
 * implements; otherwise -1 with "unsupported chat template ...". */
int fs_chat_template_check(const char *tmpl, size_t len, fs_err *e);

/* Read MODEL_DIR/tokenizer_config.json and check its chat_template. */
int fs_chat_template_check_dir(const char *model_dir, fs_err *e);

#endif
