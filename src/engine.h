/* engine.h - a loaded model and the sequences that run on it: the one API
 * under every front end (fs run, chat, generate, logits, perplexity and
 * bench today; an HTTP server with many clients tomorrow).
 *
 *   fs_engine        a model directory opened once: the weights (converted
 *                    if asked), the tokenizer, the forward pass on a
 *                    backend (forward.h). Shared by all its sequences.
 *   fs_seq           one sequence: a session (its KV cache), a sampler, and
 *                    the token ids the cache holds. A chat is one; a server
 *                    keeps one per client, all on one engine.
 *   fs_conversation  a chat history on a sequence: user text in, the
 *                    model's reply streamed out and appended.
 *
 * Reusing the cache (fs_seq_sync, and every generation). A caller hands a
 * sequence the whole prompt every time, the way a stateless server receives
 * the whole conversation with each request. The sequence compares it with
 * the ids its cache holds, keeps the longest common prefix, and evaluates
 * only the rest:
 *
 *   cache    [a b c d e f]            ids the cache holds
 *   prompt   [a b c d x y z]          what the caller wants evaluated
 *            p = 4: keep a b c d, truncate, prefill x y z
 *
 * When the whole prompt is already in the cache (p = n), the last prompt
 * token is evaluated again: its logits pick the next token, and a session
 * keeps the logits of its last eval only, which may be of another token.
 *
 * Cancelling. fs_seq_set_cancel gives a sequence a flag; setting it from
 * another thread or a signal handler stops whatever the sequence is doing
 * at the next layer boundary - a long prefill included - or between two
 * tokens. What the cache holds afterwards is known (fs_seq_tokens): the
 * prompt chunks that finished, or the prompt and the reply so far.
 *
 * Threads. The sequences of one engine share its forward pass's
 * activations, so at most one call runs at a time per engine (a server
 * serializes them, or batches them into one step). The cancel flag is the
 * exception. Errors are returned as fs_err (util.h); nothing here prints or
 * exits.
 *
 * Docs: docs/chat.md, docs/generate.md
 */
#ifndef FS_ENGINE_H
#define FS_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_template.h"
#include "forward.h"
#include "generate.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"
#include "util.h"

/* ---- the engine: one model, loaded once ---- */

typedef struct fs_engine fs_engine;

enum {
    FS_ENGINE_TOKENIZER = 0,          /* tokenizer.json is required (text in, text out) */
    FS_ENGINE_TOKENIZER_IF_PRESENT,   /* loaded when the directory has one (ids in: fs logits --ids) */
    FS_ENGINE_NO_TOKENIZER,           /* never loaded (fs bench feeds ids) */
};

typedef struct fs_engine_opts {
    const char *backend;  /* NULL or "auto", "cuda", "cpu", "cpu-ref" (backend.h) */
    int n_threads;        /* CPU threads; 0: the backend's default */
    int n_ctx;            /* the longest context a sequence may have; 0: 4096,
                             capped by the model's max_position_embeddings */
    const char *weights;  /* NULL: as stored; "bf16", "f16", "f32", "q8_0", "q4_0":
                             converted once at load (fs_model_convert) */
    int tokenizer;        /* FS_ENGINE_TOKENIZER* */
    int max_seqs;         /* sequences one fs_engine_step may advance together
                             (0: 1; a server: its slots, at most FS_MAX_SEQS) */
    const char *kv;       /* the KV cache's elements: NULL or "auto" (the backend's
                             choice: f16 on the cpu backend, f32 on cpu-ref and cuda),
                             "f32", "f16" (half the bytes; docs/kv-cache.md) */
} fs_engine_opts;

/* Load dir's config and weights (converting them if o->weights says so),
 * its tokenizer, and put the forward pass on the backend. o may be NULL
 * (all defaults). */
int fs_engine_open(fs_engine **out, const char *dir, const fs_engine_opts *o, fs_err *e);
/* The KV cache type named "f32" or "f16" (fs_engine_opts.kv); -1 otherwise. */
int fs_engine_kv_dtype(const char *name, fs_dtype *out);
void fs_engine_free(fs_engine *g);

const char *fs_engine_dir(const fs_engine *g);
const fs_model *fs_engine_model(const fs_engine *g);
const fs_tokenizer *fs_engine_tokenizer(const fs_engine *g); /* NULL when not loaded */
fs_forward *fs_engine_forward(fs_engine *g);
int fs_engine_n_ctx(const fs_engine *g);

/* Text to ids with the engine's tokenizer (an error if it has none).
 * *ids is malloc'd. */
int fs_engine_encode(const fs_engine *g, const char *text, size_t len, int **ids, int *n, fs_err *e);
/* The same with the tokenizer's post-processor special tokens (Llama 3's
 * <|begin_of_text|>), as HF's tokenizer(text) encodes a raw prompt. */
int fs_engine_encode_prompt(const fs_engine *g, const char *text, size_t len, int **ids, int *n, fs_err *e);

/* ---- sampling settings: the model's defaults, then the caller's ---- */

enum {
    FS_SET_TEMPERATURE = 1 << 0,
    FS_SET_TOP_K = 1 << 1,
    FS_SET_TOP_P = 1 << 2,
    FS_SET_MIN_P = 1 << 3,
    FS_SET_REPETITION_PENALTY = 1 << 4,
    FS_SET_PRESENCE_PENALTY = 1 << 5,
    FS_SET_SEED = 1 << 6,
    FS_SET_FREQUENCY_PENALTY = 1 << 7,
};

/* What a caller overrides: each FS_SET_ bit in `set` takes that field of
 * `p`; every other field keeps the model's default. */
typedef struct fs_sampling {
    unsigned set;
    fs_sampler_params p;
} fs_sampling;

/* The settings for a sequence: the model's generation_config (as
 * fs_sampler_params_default reads it), then o's overrides (o may be NULL).
 * Without FS_SET_SEED the seed comes from the clock and the process id;
 * out->seed says which, so a run can be repeated. -1 with the first bad
 * field (fs_sampler_params_check). */
int fs_engine_sampler_params(const fs_engine *g, const fs_sampling *o, fs_sampler_params *out, fs_err *e);

/* ---- a sequence ---- */

typedef struct fs_seq fs_seq;

/* A sequence with room for n_ctx tokens (0: fs_engine_n_ctx) and a sampler
 * with settings sp (NULL: the model's defaults, seed 0). Its KV cache and
 * sampler are allocated here. */
int fs_seq_new(fs_seq **out, fs_engine *g, int n_ctx, const fs_sampler_params *sp, fs_err *e);
void fs_seq_free(fs_seq *q);

/* Stop this sequence's work when *flag becomes non-zero (NULL: never).
 * The caller clears the flag before the next call. */
void fs_seq_set_cancel(fs_seq *q, volatile sig_atomic_t *flag);

/* Forget everything: empty cache, the sampler's history cleared and its
 * random stream restarted from the seed. */
void fs_seq_reset(fs_seq *q);

int fs_seq_n_ctx(const fs_seq *q);
const int *fs_seq_tokens(const fs_seq *q, int *n); /* the ids in the cache, in order */
const fs_sampler_params *fs_seq_sampler_params(const fs_seq *q);
fs_engine *fs_seq_engine(fs_seq *q);
fs_session *fs_seq_session(fs_seq *q); /* for direct evals (fs bench, fs perplexity) */

/* Called with done = 0 before a prefill and after each chunk of it. */
typedef void (*fs_progress_fn)(void *user, int done, int total);

/* What one generation is asked for. */
typedef struct fs_seq_gen {
    int max_new_tokens;               /* >= 0; 0 only prefills */
    const char *const *stop_strings;  /* user stop strings (generate.h), may be NULL */
    int n_stop_strings;
    fs_emit_fn on_text;               /* streamed text, whole UTF-8 characters; may be NULL */
    fs_progress_fn on_prefill;        /* may be NULL */
    void *user;                       /* for the callbacks */
    /* stepped generation only (fs_seq_start): each sampled id, before its
     * text; logits [V] (those it was drawn from, before any penalty) when
     * want_logits, else NULL. May be NULL. */
    void (*on_token)(void *user, int id, const float *logits);
    int want_logits;
} fs_seq_gen;

/* What it did. prompt_tokens = reused + prefilled, unless the prefill was
 * cancelled. */
typedef struct fs_seq_stats {
    int prompt_tokens;     /* the whole prompt */
    int reused;            /* found in the cache, not evaluated again */
    int prefilled;         /* evaluated (a cancelled prefill: the chunks that finished) */
    int generated;         /* sampled, including a final eos or stop-string token */
    double prefill_s, decode_s;
    fs_stop_reason stop;
    int stop_id;           /* the eos id that stopped generation, else -1 */
} fs_seq_stats;

/* The prompt does not fit the sequence's context: nothing was changed. */
#define FS_SEQ_TOO_LONG (-2)

/* Make the cache hold ids[0..n) and the logits be those of ids[n-1],
 * evaluating only what the cache does not already hold (see the top).
 * Returns 0 (st->stop is FS_STOP_CANCELLED if the flag stopped it),
 * FS_SEQ_TOO_LONG if n > n_ctx, -1 with e filled otherwise (an id out of
 * range, a failed forward pass: the cache is then emptied). st may be NULL. */
int fs_seq_sync(fs_seq *q, const int *ids, int n, const fs_seq_gen *o, fs_seq_stats *st, fs_err *e);

/* Continue the raw prompt ids[0..n) (n >= 1, n <= n_ctx): sync, then
 * sample up to o->max_new_tokens tokens, stopping at the model's eos ids
 * or a stop string (generate.h), streaming the text to o->on_text.
 * Returns as fs_seq_sync. Afterwards the cache holds the prompt and every
 * sampled token but the last (generate.h), and fs_seq_last reports the
 * sampled ids and the emitted text. */
int fs_seq_generate(fs_seq *q, const int *ids, int n, const fs_seq_gen *o, fs_seq_stats *st, fs_err *e);

/* One chat turn over msgs[0..n): render them with the model's chat template
 * (chat_template.h: generation prompt, enable_thinking = think; think < 0:
 * the model's default, fs_chat_template_thinking), tokenize,
 * and generate as fs_seq_generate does, stopping also at <|im_end|>, the
 * end of a turn. The prompt must leave room for one reply token
 * (FS_SEQ_TOO_LONG otherwise). The reply is fs_seq_last's text. */
int fs_seq_chat(fs_seq *q, const fs_chat_msg *msgs, size_t n, int think, const fs_seq_gen *o, fs_seq_stats *st,
                fs_err *e);

/* The last generation's sampled ids and emitted text (valid until the
 * next call on q; the text is not NUL-terminated). Either may be NULL. */
void fs_seq_last(const fs_seq *q, const int **ids, int *n_ids, const char **text, size_t *len);

/* New sampling settings for the next generation (checked; the sampler
 * keeps its buffers). Not while a stepped generation runs. */
int fs_seq_set_sampler_params(fs_seq *q, const fs_sampler_params *sp, fs_err *e);

/* The chat prompt of msgs[0..n): checked to be UTF-8, rendered with
 * the model's chat template (generation prompt, enable_thinking = think, or
 * the model's default when think < 0) and
 * tokenized, as fs_seq_chat does. *ids is malloc'd. */
int fs_engine_chat_prompt(fs_engine *g, const fs_chat_msg *msgs, size_t n, int think, int **ids, int *n_ids,
                          fs_err *e);

/* ---- many sequences, one forward pass (continuous batching) ----
 *
 * fs_seq_generate runs one sequence from prompt to end. A server runs many
 * at once: each request starts a generation on its sequence without
 * running it (fs_seq_start), then every fs_engine_step advances all the
 * running ones by ONE forward pass (fs_forward_batch):
 *
 *   step     seq A (decoding)   seq B (decoding)   seq C (new: 40-token prompt)
 *   tokens   [a7]               [b3]               [c0 .. c39]      one matmul over 42 rows
 *   then     sample a8          sample b4          sample c40 (its prompt is done)
 *
 * A decoding sequence feeds the token it sampled last; a prefilling one
 * feeds the next chunk of its prompt, the chunks sharing what is left of
 * the step's token budget after the decoders took one each (a long prompt
 * so takes several steps and the others keep decoding meanwhile). A
 * sequence whose prompt (or token) is in samples its next token exactly as
 * fs_generate does - eos ids, stop strings, max_new_tokens, a full
 * context - and streams its text to on_text; on_token hears each sampled
 * id first, with the logits it was drawn from when o->want_logits.
 *
 * The prompt is compared with the cache as fs_seq_sync does (prefix
 * caching: fs_seq_status(q)->reused tokens are not evaluated again), and
 * the sampler starts afresh with the prompt as its history, so a request's
 * result does not depend on what its sequence ran before. */

/* Start a generation of ids[0..n) on q (chat = 1: stop also at
 * <|im_end|>, and the prompt must leave room for one reply token). o is
 * copied; its stop strings and user must outlive the generation.
 * Returns 0, FS_SEQ_TOO_LONG or -1 (nothing started). */
int fs_seq_start(fs_seq *q, const int *ids, int n, int chat, const fs_seq_gen *o, fs_err *e);

/* One forward pass over the running sequences of qs[0..n) (n <= the
 * engine's max_seqs; sequences not running are skipped), at most
 * max_tokens tokens (0: the forward pass's largest chunk). Returns the
 * number of sequences it advanced, or -1 when the forward pass failed
 * (the sequences it carried end with FS_STOP_ERROR and e's message). */
int fs_engine_step(fs_engine *g, fs_seq *const *qs, int n, int max_tokens, fs_err *e);

/* End q's running generation now (a client went away, the server stops):
 * FS_STOP_CANCELLED; the cache keeps what was evaluated. */
void fs_seq_stop(fs_seq *q);

int fs_seq_running(const fs_seq *q);
/* The stepped generation's numbers so far; stop is FS_STOP_NONE while it
 * runs. */
const fs_seq_stats *fs_seq_status(const fs_seq *q);

/* ---- a conversation ---- */

typedef struct fs_conversation fs_conversation;

/* An empty conversation on q (which must outlive it), thinking as the
 * model's default (fs_conversation_thinking). Checks that the model's chat
 * template loads and compiles (chat_template.h). */
int fs_conversation_new(fs_conversation **out, fs_seq *q, fs_err *e);
void fs_conversation_free(fs_conversation *c);

/* Forget the messages and reset the sequence (fs_seq_reset); the system
 * prompt and the thinking switch stay. */
void fs_conversation_reset(fs_conversation *c);
/* The system prompt of the next turns (NULL or "": none). It changes the
 * start of the rendered prompt, so the next turn reuses nothing; callers
 * usually reset as well. */
void fs_conversation_set_system(fs_conversation *c, const char *text);
const char *fs_conversation_system(const fs_conversation *c); /* NULL: none */
/* enable_thinking for the next turns (Qwen3: reason in <think>...</think>
 * first, or answer at once). */
void fs_conversation_set_think(fs_conversation *c, int on);
int fs_conversation_think(const fs_conversation *c);
/* What the model offers (chat_template.h): FS_THINK_NONE (its template has
 * no thinking switch: set_think changes nothing), FS_THINK_ON or
 * FS_THINK_OFF (a switch, and the model's default). */
int fs_conversation_thinking(const fs_conversation *c);
int fs_conversation_turns(const fs_conversation *c); /* replies kept so far */
fs_seq *fs_conversation_seq(fs_conversation *c);

/* One turn: user_text (UTF-8) becomes a user message, the whole
 * conversation goes through fs_seq_chat, and the reply becomes an
 * assistant message - also when cut short (-n, a full context, the cancel
 * flag), so the history says what the model saw. A turn cancelled before
 * its first token, one that does not fit (FS_SEQ_TOO_LONG), and one that
 * fails (-1) leave no messages behind. The next turn renders the history
 * again, with the template dropping old reasoning, and reuses what matches. */
int fs_conversation_turn(fs_conversation *c, const char *user_text, const fs_seq_gen *o, fs_seq_stats *st,
                         fs_err *e);

#endif
