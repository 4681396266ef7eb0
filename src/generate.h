/* generate.h - the generation loop: prompt in, streamed text out.
 *
 *   prefill: fs_session_eval(prompt)              batched forward passes, a chunk at a time
 *   loop:    id = sample(logits)                  sampler.h (greedy: the argmax, where it is)
 *            stop id (eos)?            -> stop, id not printed
 *            text = detok(id)                     whole UTF-8 characters only
 *            stop string in the text?  -> stop, emit only what precedes it
 *            fs_session_eval(&id, 1)              one decode step
 *
 * Used by the engine (engine.h), under fs generate, chat and the server.
 * Everything is allocated before the first token; the loop itself never
 * allocates.
 *
 * Greedy decoding without penalties (temperature 0, repetition penalty 1,
 * presence penalty 0) asks the session for the argmax of the logits
 * (fs_session_argmax): a GPU then returns 4 bytes per token instead of V
 * floats. It is the token the sampler would pick (the lowest id wins a
 * tie); only the error differs: a NaN logit is reported without its index.
 *
 * The prompt is evaluated in chunks of FS_PREFILL_CHUNK tokens, the chunk
 * forward.c computes at once anyway, so the results are those of one call;
 * between chunks the caller hears how far it got (on_prefill). To stop a
 * long prefill, give the session the cancel flag as well
 * (fs_session_set_cancel): the forward pass then checks it at every layer.
 *
 * Cache contents on return: the prompt and every generated token except the
 * last one. The last sampled token (eos, the token that completed a stop
 * string, the max_new_tokens-th token) is never evaluated: nothing reads
 * its logits. A caller that continues the conversation feeds it back first.
 *
 * Docs: docs/generate.md
 */
#ifndef FS_GENERATE_H
#define FS_GENERATE_H

#include <signal.h>
#include <stddef.h>

#include "forward.h"
#include "sampler.h"
#include "tokenizer.h"
#include "util.h"

typedef enum fs_stop_reason {
    FS_STOP_NONE = 0,
    FS_STOP_EOS,        /* sampled one of the stop ids (eos); it is not emitted */
    FS_STOP_STRING,     /* a stop string appeared; it and what follows are not emitted */
    FS_STOP_MAX_TOKENS, /* max_new_tokens sampled */
    FS_STOP_CTX_FULL,   /* the KV cache is full: no room to evaluate another token */
    FS_STOP_CANCELLED,  /* the cancel flag was set (during the prefill too), or the text
                           callback returned non-zero */
    FS_STOP_ERROR,      /* the forward pass or the sampler failed (fs_generate returns -1) */
} fs_stop_reason;

/* "eos", "stop_string", "max_tokens", "context_full", "cancelled", "error", "none" */
const char *fs_stop_reason_name(fs_stop_reason r);

/* Receives emitted text: always whole UTF-8 characters. Return 0 to go on,
 * non-zero to stop (FS_STOP_CANCELLED, e.g. the client went away). */
typedef int (*fs_emit_fn)(void *user, const char *text, size_t len);

/* --- the stop-string matcher, on its own so it can be tested without a
 * model ---
 *
 * Text arrives in pieces (one token's worth at a time). A stop string can
 * straddle pieces ("<|" + "end|>"), so text that might be the start of a stop
 * string is held back until the next piece decides: either the stop string
 * completes (the held text is dropped) or it cannot (the held text is
 * emitted). At most (longest stop string - 1) bytes are held. Stop strings
 * must be non-empty valid UTF-8; matches and hold-backs then always start on
 * a character boundary, so held text never splits a character. */
typedef struct fs_stopper {
    const char *const *stops; /* borrowed; must outlive the matcher */
    size_t *stop_len;
    int n_stops;
    size_t max_stop;          /* longest stop string */
    size_t max_piece;         /* largest piece one feed call accepts */
    char *held;               /* [max_stop - 1 + max_piece] */
    size_t n_held;
} fs_stopper;

enum { FS_STOPPER_GO = 0, FS_STOPPER_MATCHED = 1, FS_STOPPER_CANCELLED = 2 };

/* max_piece: the most bytes a single fs_stopper_feed may pass (longer text
 * is split internally at character boundaries, so this is a buffer size,
 * not a limit). */
int fs_stopper_init(fs_stopper *m, const char *const *stops, int n_stops, size_t max_piece,
                    fs_err *e);
void fs_stopper_free(fs_stopper *m);
/* Add text; emit everything that can no longer be part of a stop string.
 * Returns FS_STOPPER_MATCHED when a stop string is found (the text before it
 * has been emitted; the rest is dropped and the matcher must not be fed
 * again), FS_STOPPER_CANCELLED when emit returned non-zero, else GO. */
int fs_stopper_feed(fs_stopper *m, const char *text, size_t len, fs_emit_fn emit, void *user);
/* End of text: emit what is held (it never became a stop string). */
int fs_stopper_flush(fs_stopper *m, fs_emit_fn emit, void *user);

/* --- the loop --- */

#define FS_PREFILL_CHUNK 512

typedef struct fs_gen_opts {
    int max_new_tokens;              /* >= 0; 0 only runs the prefill */
    const int *stop_ids;             /* e.g. the config's eos ids */
    int n_stop_ids;
    const char *const *stop_strings; /* user stop strings */
    int n_stop_strings;
    fs_emit_fn on_text;              /* may be NULL */
    void (*on_prefill)(void *user, int done, int total); /* may be NULL; done = 0 first,
                                        then after each chunk */
    void *user;                      /* for both callbacks */
    volatile sig_atomic_t *cancel;   /* may be NULL; set to non-zero (e.g. from SIGINT) to stop
                                        between tokens (and between prefill chunks) */
    int *ids_out;                    /* may be NULL; else room for max_new_tokens ids */
} fs_gen_opts;

typedef struct fs_gen_stats {
    int prompt_tokens;     /* given; after a cancelled prefill fs_session_pos says how
                              many of them are in the cache */
    int generated_tokens;  /* sampled, including a final eos or stop-string token */
    double prefill_s;      /* the prompt's forward pass */
    double decode_s;       /* everything after the prefill: sampling + decode steps */
    fs_stop_reason stop;
    int stop_id;           /* the eos id that stopped generation, else -1 */
} fs_gen_stats;

/* The prefill alone: ids[0..n) appended to the session FS_PREFILL_CHUNK
 * tokens at a time, o->on_prefill told after each chunk, o->cancel checked
 * between chunks (and, if the session has the same flag, inside them).
 * Returns 0, FS_EVAL_CANCELLED (the chunks that finished stay in the
 * cache: fs_session_pos), or -1 with e filled. Only o's callbacks, user
 * and cancel are read. fs_generate starts with it. */
int fs_prefill(fs_session *s, const int *ids, int n, const fs_gen_opts *o, fs_err *e);

/* Generate from the session's current position. The prompt (n_prompt >= 1
 * tokens: a model with no BOS has nothing to predict from without one) is
 * appended to what the session already holds, and recorded in the
 * sampler's history together with every sampled token; the sampler is not
 * reset, so a caller starting an unrelated generation calls
 * fs_sampler_reset first. A cancelled prefill keeps the chunks that
 * finished (fs_session_pos) and returns 0 with FS_STOP_CANCELLED.
 * Returns 0 when generation ended for any reason in fs_stop_reason other
 * than FS_STOP_ERROR (st says which); -1 with e filled on bad arguments, a
 * prompt that does not fit the context, or a failing forward pass or
 * sampler (st->stop = FS_STOP_ERROR; text emitted so far stays emitted). */
int fs_generate(fs_session *s, const fs_tokenizer *t, fs_sampler *smp, const int *prompt,
                int n_prompt, const fs_gen_opts *o, fs_gen_stats *st, fs_err *e);

#endif
