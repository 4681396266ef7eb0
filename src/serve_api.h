/* serve_api.h - the OpenAI API's JSON: a request body read into what the
 * engine needs, and the response objects written back. No sockets and no
 * model here (src/serve.c has those), so it can be tested and fuzzed alone.
 *
 *   POST /v1/chat/completions   {"messages": [...], "stream": true, ...}
 *        -> chat.completion, or chat.completion.chunk events
 *   POST /v1/completions        {"prompt": "Once upon", ...}
 *        -> text_completion (streamed or not)
 *
 * Fields read (anything else is ignored, as OpenAI clients expect of a
 * server that does not know every field):
 *   both       model (echoed back), max_tokens, temperature, top_p, seed,
 *              stop (a string or a list of up to 4), presence_penalty,
 *              frequency_penalty, stream, stream_options.include_usage,
 *              n (1 only), and the extensions top_k, min_p,
 *              repeat_penalty / repetition_penalty (llama-server), and
 *              return_token_ids (vLLM: the sampled ids in each choice)
 *   chat       messages (system, developer, user, assistant, tool; content a
 *              string, null, or a list of text parts), max_completion_tokens,
 *              logprobs + top_logprobs (0..20),
 *              chat_template_kwargs.enable_thinking (default: the model's,
 *              fs_chat_template_thinking)
 *   completion prompt (a string, a list of one string, or a list of token
 *              ids), logprobs (0..5: the top alternatives per token)
 * Refused with a 400 naming the field, because honouring them is not
 * possible and ignoring them would silently change the answer: n > 1,
 * best_of > 1, echo, suffix, tools, logit_bias, response_format other than
 * text, image or audio content parts.
 *
 * Qwen3's thinking. A reply that opens with <think> is split: what is
 * inside goes to reasoning_content, the rest to content (fs_think_split,
 * which works on streamed pieces, the tags split across them included).
 *
 * Docs: docs/serve.md
 */
#ifndef FS_SERVE_API_H
#define FS_SERVE_API_H

#include <stddef.h>

#include "chat_template.h"
#include "engine.h"
#include "http.h"
#include "json.h"

#define FS_API_MAX_STOPS 4
#define FS_API_MAX_TOP_LOGPROBS 20

typedef enum { FS_API_CHAT, FS_API_COMPLETION } fs_api_kind;

typedef struct fs_api_request {
    fs_api_kind kind;
    fs_json_doc doc;          /* the body; the strings below point into it */
    /* chat */
    fs_chat_msg *msgs;
    size_t n_msgs;
    char **owned;             /* contents joined from text parts */
    size_t n_owned;
    int think;                /* enable_thinking; -1: the model's default */
    /* completion: prompt text, or ids when the prompt is a token list */
    const char *prompt;
    size_t prompt_len;
    int *prompt_ids;
    int n_prompt_ids;
    /* both */
    const char *model;        /* NULL: not given */
    int max_tokens;           /* -1: not given (the context's room) */
    fs_sampling sampling;     /* the fields given, over the model's defaults */
    const char *stops[FS_API_MAX_STOPS];
    int n_stops;
    int stream, include_usage;
    int logprobs;             /* 1: report the sampled tokens' log-probabilities */
    int top_logprobs;         /* and this many alternatives each */
    int return_token_ids;     /* vLLM's extension: the sampled ids as "token_ids" */
} fs_api_request;

/* Parse and check body[0..len). On an error: -1, e says what, *param
 * names the field (or NULL) for the error object. */
int fs_api_parse(fs_api_request *r, fs_api_kind kind, const char *body, size_t len, const char **param, fs_err *e);
void fs_api_request_free(fs_api_request *r);

/* The error object of the OpenAI API:
 *   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}} */
void fs_api_error(fs_str *out, const char *message, const char *type, const char *param, const char *code);

/* "stop" (eos, a stop string), "length" (max_tokens, a full context), else
 * the engine's name for it. */
const char *fs_api_finish_reason(fs_stop_reason r);

/* ---- log-probabilities ---- */

/* log softmax(logits)[id] and the k most likely tokens (k <= 20), most
 * likely first, ties by lower id: the model's own distribution, before
 * temperature and penalties (what OpenAI reports). */
typedef struct fs_api_logprob {
    int id;
    float logprob;
    int n_top;
    int top_id[FS_API_MAX_TOP_LOGPROBS];
    float top_logprob[FS_API_MAX_TOP_LOGPROBS];
} fs_api_logprob;
void fs_api_logprob_of(const float *logits, int V, int id, int k, fs_api_logprob *out);

/* One entry of a chat logprobs.content list:
 *   {"token": ..., "logprob": ..., "bytes": [...], "top_logprobs": [...]} */
void fs_api_logprob_json(fs_str *out, const fs_tokenizer *t, const fs_api_logprob *lp);

/* ---- Qwen3's <think> ---- */

typedef struct fs_think_split {
    int state;                /* private */
    char held[16];            /* a possible tag, split across pieces */
    size_t n_held;
} fs_think_split;

/* Feed a piece of the reply; what belongs to reasoning is appended to
 * reasoning, the rest to content (the tags themselves and the blank lines
 * right after them are dropped). */
void fs_think_feed(fs_think_split *t, const char *text, size_t len, fs_str *reasoning, fs_str *content);
/* End of the reply: release what a partial tag held. */
void fs_think_end(fs_think_split *t, fs_str *reasoning, fs_str *content);

#endif
