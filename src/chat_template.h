/* chat_template.h - turn a conversation into the prompt text a model was
 * trained on, by running the checkpoint's own chat template.
 *
 * A chat model does not see "messages"; it sees one string in which every
 * turn is wrapped in special tokens. Qwen3:
 *
 *     <|im_start|>system\nYou are terse.<|im_end|>\n
 *     <|im_start|>user\nHi!<|im_end|>\n
 *     <|im_start|>assistant\n            <- generation prompt: the model goes on from here
 *
 * Llama 3.2:
 *
 *     <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n
 *     Cutting Knowledge Date: December 2023\nToday Date: 04 Dec 2026\n\n
 *     You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>
 *     <|start_header_id|>assistant<|end_header_id|>\n\n
 *
 * The rule is a Jinja program shipped with the checkpoint (the model
 * directory's chat_template.jinja, else tokenizer_config.json's
 * "chat_template": a string, or a list of named templates of which
 * "default" is used). fs runs it with its own interpreter (jinja.h) and
 * the variables transformers' apply_chat_template gives it:
 *     messages, tools (none when absent), documents (none),
 *     add_generation_prompt, the special tokens bos_token, eos_token,
 *     unk_token, pad_token... (from tokenizer_config.json, those it sets),
 *     enable_thinking (when set), and any chat_template_kwargs.
 * The golden test (tests/e2e_template.sh) compares the result byte for
 * byte with transformers for Qwen3, Qwen2.5 and Llama 3.2.
 *
 * Docs: docs/chat.md
 */
#ifndef FS_CHAT_TEMPLATE_H
#define FS_CHAT_TEMPLATE_H

#include <stddef.h>
#include <time.h>

#include "json.h"
#include "util.h"

/* One message. Strings are NUL-terminated UTF-8 and owned by the caller.
 * role: "system", "user", "assistant", "tool" (or "ipython", Llama 3's
 * name for a tool result).
 * content: NULL only for an assistant message with tool_calls (JSON null).
 * reasoning_content: NULL when absent (or JSON null); "" counts as given.
 * tool_calls: NULL, or a JSON array of OpenAI-style calls
 *   [{"function": {"name": "...", "arguments": {...} or "..."}}, ...]
 *   (assistant messages only).
 * src: NULL, or the JSON object the message came from: then the template
 *   sees that object whole (every field, e.g. "name" or "tool_call_id"),
 *   and the fields above are only what fs itself reads. */
typedef struct fs_chat_msg {
    const char *role;
    const char *content;
    const char *reasoning_content;
    const fs_json *tool_calls;
    const fs_json *src;
} fs_chat_msg;

typedef struct fs_chat_template fs_chat_template;

/* Read MODEL_DIR's template (chat_template.jinja, else
 * tokenizer_config.json) and its special tokens, and compile it. Errors
 * name the file and, for a template that does not parse, its line and
 * column. */
int fs_chat_template_load(fs_chat_template **out, const char *model_dir, fs_err *e);
/* Compile src[0..len) with these special tokens (NULL: undefined). */
int fs_chat_template_new(fs_chat_template **out, const char *src, size_t len, const char *bos_token,
                         const char *eos_token, fs_err *e);
void fs_chat_template_free(fs_chat_template *t);
/* The Jinja source (NUL-terminated) and where it came from. */
const char *fs_chat_template_source(const fs_chat_template *t);
const char *fs_chat_template_origin(const fs_chat_template *t);

/* What a model offers for thinking mode, from its own files:
 *   FS_THINK_NONE  the template never reads enable_thinking (Llama 3.2,
 *                  Qwen2.5): there is no switch to turn;
 *   FS_THINK_ON    it does, and the model thinks unless told not to
 *                  (Qwen3: the template's default when enable_thinking
 *                  is left undefined);
 *   FS_THINK_OFF   it does, but tokenizer_config.json says
 *                  "enable_thinking": false - the model's makers chose
 *                  "answer at once" as its default (models/tiny: trained
 *                  on replies with the empty think block only).
 * A "enable_thinking" in tokenizer_config.json that is not true or false
 * is an error at load time. */
enum { FS_THINK_NONE = -1, FS_THINK_OFF = 0, FS_THINK_ON = 1 };
int fs_chat_template_thinking(const fs_chat_template *t);

typedef struct fs_chat_opts {
    int add_generation_prompt;
    int enable_thinking;   /* 1 or 0: the variable enable_thinking; -1: left undefined */
    const fs_json *tools;  /* NULL: tools = none; else a JSON array of tool definitions */
    const fs_json *kwargs; /* NULL, or an object: more variables (chat_template_kwargs) */
    time_t now;            /* strftime_now's clock (UTC); 0: the current local time */
} fs_chat_opts;

/* Render msgs[0..n). *out is a malloc'd NUL-terminated string (free it).
 * Errors: n == 0, NULL fields, an unknown role, malformed tool_calls or
 * tools, kwargs that would replace messages/tools/add_generation_prompt,
 * and whatever the template itself refuses (raise_exception), with the
 * template's line and column. */
int fs_chat_render(const fs_chat_template *t, const fs_chat_msg *msgs, size_t n, const fs_chat_opts *o, char **out,
                   fs_err *e);

/* Read an OpenAI-style messages array (a JSON array of objects with "role",
 * "content" and optional "reasoning_content", "tool_calls"). *msgs is a
 * malloc'd array (free it) whose strings point into the JSON document, so
 * the document must outlive it; each message's src is its object. */
int fs_chat_parse_messages(const fs_json *arr, fs_chat_msg **msgs, size_t *n, fs_err *e);

/* "YYYY-MM-DD" as a time at noon UTC (for fs_chat_opts.now): 0, or -1. */
int fs_chat_parse_date(const char *s, time_t *out);

#endif
