/* forward.h - the forward pass: a model on a backend, and sessions on it.
 *
 *   fs_forward  one model's weights uploaded to one backend, the
 *               activations of one chunk, the backend's scratch. Loaded
 *               once; shared by every session on it.
 *   fs_session  one sequence: its KV cache, how many tokens it holds, and
 *               the logits of its last token. A chat is one session; a
 *               server keeps one per client, all on one fs_forward.
 *
 * All memory is allocated by fs_forward_new and fs_session_new, sized from
 * the config, the context length and the largest chunk (max_batch tokens);
 * fs_session_eval never allocates. Tokens are appended at the session's
 * position: a call with many tokens is a batched prefill (matrix-matrix),
 * a call with one is a decode step against the cache.
 *
 * Sessions of one fs_forward share its activations, so they take turns:
 * at most one call at a time per fs_forward (the caller serializes; the
 * server's batching runs them in one step).
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#ifndef FS_FORWARD_H
#define FS_FORWARD_H

#include <signal.h>
#include <stddef.h>

#include "backend.h"
#include "model.h"
#include "util.h"

typedef struct fs_forward fs_forward;
typedef struct fs_session fs_session;

typedef struct fs_forward_opts {
    const char *backend;  /* "auto" (NULL), "cuda", "cpu", "cpu-ref": names exist to
                             compare backends, they never change results silently */
    int n_threads;        /* CPU threads; 0 = the backend's default */
    int n_ctx;            /* the longest context a session may have; 0 = 4096,
                             capped by the model's max_position_embeddings */
    int max_seqs;         /* sessions one fs_forward_batch call may advance; 0 = 1 */
    fs_dtype kv_dtype;    /* the KV cache's elements: F32 (0, the default) or F16
                             (half the bytes, each K and V rounded to f16; backend.h) */
    int kv_auto;          /* 1: the backend's kv_default instead ("auto", fs's CLI
                             default: f16 on the cpu backend, f32 on the others) */
} fs_forward_opts;

#define FS_MAX_SEQS 64    /* the most sessions one batched step can carry */

/* ---- profile: where the time of forward calls goes, op by op ----
 * fs_forward_profile(f, p) adds every later forward call of f into p
 * (NULL: stop): the wall time of each op of the pass, timed alone (the
 * backend is synced before and after each: on a GPU the ops then run one
 * by one, not queued nor replayed from a record), how many calls, and
 * what they read and computed. The results are the same as without it.
 * fs bench --profile prints it (docs/bench.md). */
enum {
    FS_PROF_EMBED,      /* the token's embedding row */
    FS_PROF_QKV,        /* rmsnorm + q, k, v projections (one matmul call) */
    FS_PROF_ROPE_KV,    /* biases, QK-norm, RoPE, the K and V store */
    FS_PROF_ATTENTION,
    FS_PROF_O,          /* o_proj + the residual add */
    FS_PROF_GATE_UP,    /* rmsnorm + gate and up projections */
    FS_PROF_DOWN,       /* SwiGLU + down_proj + the residual add */
    FS_PROF_LM_HEAD,    /* final norm + lm_head, on the rows read */
    FS_PROF_OPS
};
typedef struct fs_profile {
    double sec[FS_PROF_OPS];           /* seconds inside each op */
    long calls[FS_PROF_OPS];
    double weight_bytes[FS_PROF_OPS];  /* bytes of weights read (the backend's copy) */
    double flops[FS_PROF_OPS];         /* matmuls: 2 x weights x rows */
    double kv_bytes;                   /* keys and values attention read */
    long tokens;                       /* tokens the profiled calls carried */
} fs_profile;
void fs_forward_profile(fs_forward *f, fs_profile *p);
const char *fs_profile_op_name(int op);   /* "qkv", "attention", ... */

/* Upload the model's weights to the backend and reserve everything a
 * session's forward pass needs. The model must outlive the fs_forward
 * (the reference backend reads weights in place). */
int fs_forward_new(fs_forward **out, const fs_model *m, const fs_forward_opts *o, fs_err *e);
void fs_forward_free(fs_forward *f);

const fs_model *fs_forward_model(const fs_forward *f);
fs_backend *fs_forward_backend(fs_forward *f);
int fs_forward_n_ctx(const fs_forward *f);      /* the longest context a session can have */
size_t fs_forward_weight_bytes(const fs_forward *f);  /* the backend's copy of the weights */
size_t fs_forward_scratch_bytes(const fs_forward *f); /* activations + the backend's scratch */
fs_dtype fs_forward_kv_dtype(const fs_forward *f);    /* the KV caches' elements: F32 or F16 */

/* A sequence on f with room for n_ctx tokens (0: fs_forward_n_ctx(f),
 * the most it may ask for). Its KV cache is allocated here. */
int fs_session_new(fs_session **out, fs_forward *f, int n_ctx, fs_err *e);
void fs_session_free(fs_session *s);

/* Stop an eval from outside: while *flag is non-zero (set from another
 * thread or a signal handler), fs_session_eval returns FS_EVAL_CANCELLED
 * at the next layer boundary. NULL: never. */
void fs_session_set_cancel(fs_session *s, volatile sig_atomic_t *flag);

#define FS_EVAL_CANCELLED 1

/* Append n tokens at the current position and run the forward pass.
 * Returns 0; -1 (clear message, nothing changed) if pos + n > n_ctx or an
 * id is out of range [0, V); FS_EVAL_CANCELLED when the cancel flag
 * stopped it: the chunks finished before it stay in the cache
 * (fs_session_pos says how many tokens that is), the logits are stale.
 * After 0, the logits are those of the last token.
 * A one-token eval may return before a GPU has finished it (the host then
 * queues the next step while this one runs); whatever reads a result -
 * fs_session_logits, fs_session_argmax - waits for it, and so does
 * fs_session_sync. A longer eval (a prompt) returns when it is done. */
int fs_session_eval(fs_session *s, const int *ids, int n, fs_err *e);

/* Greedy decoding without a wait per token (generate.c uses it):
 * fs_session_argmax_queue(s, slot) queues the argmax of the current
 * logits; fs_session_eval_queued(s, e) appends that token - which the host
 * has not seen yet - as fs_session_eval would; fs_session_argmax_take(s,
 * slot) waits for the slot's answer and returns it (-1: a NaN logit).
 * Two slots (0, 1), so the host reads token i while step i + 1 runs. On
 * the CPU everything happens at once, with the same results (and nothing
 * to gain: generate.c queues only where fs_session_queues says so). */
int fs_session_queues(const fs_session *s);   /* the backend queues its work (backend.h): worth it */
void fs_session_argmax_queue(fs_session *s, int slot);
int fs_session_eval_queued(fs_session *s, fs_err *e);
int fs_session_argmax_take(fs_session *s, int slot);

/* Wait until every step queued for s's model has finished (a timer's
 * end, e.g. fs bench's; a no-op on the CPU). */
void fs_session_sync(fs_session *s);

/* Continuous batching: one forward pass that appends n[i] tokens ids[i]
 * to session i, for n_seq sessions of f at once (1 <= n_seq <= max_seqs,
 * distinct sessions, each n[i] >= 1, sum of n[i] <= the prefill chunk,
 * fs_forward_max_batch). The matmuls run over all the tokens together - a
 * matrix-matrix step where n_seq single-token steps would each be
 * matrix-vector - and each token attends to its own session's cache.
 * Results equal n_seq separate fs_session_eval calls within the backend's
 * tolerance (the reference backend: bit for bit). Checks first (as
 * fs_session_eval: nothing changes on an error); not cancellable (a
 * server drops a sequence between steps). After it, each session's
 * logits are those of its last token. */
int fs_forward_batch(fs_forward *f, fs_session *const *s, const int *const *ids, const int *n, int n_seq,
                     fs_err *e);
/* After fs_forward_batch: the argmax of each of its sessions' logits, in
 * the order of that call, into out[n_seq] - in one pass where the backend
 * can (a GPU: one kernel, 4 bytes a session, one wait), as
 * fs_session_argmax of each otherwise (after another eval). -1 if no
 * batch ran yet. */
int fs_forward_batch_argmax(fs_forward *f, int *out);
int fs_forward_max_batch(const fs_forward *f);   /* tokens one forward call may carry */
int fs_forward_max_seqs(const fs_forward *f);

/* fs_session_eval plus what the golden tests compare (either may be NULL):
 *   logits_all  [n, V]        logits of every one of the n positions
 *   checkpoints [(L+2), n, H] the residual stream after the embedding, after
 *                             each layer, and after the final norm.
 * Same checks and same arithmetic as fs_session_eval; slower (lm_head runs
 * for every position, nothing is replayed). Not cancellable. */
int fs_session_eval_debug(fs_session *s, const int *ids, int n, float *logits_all, float *checkpoints,
                          fs_err *e);

/* The last token's logits [V], copied from the backend on first use after
 * an eval (a GPU keeps them in device memory until asked). */
const float *fs_session_logits(fs_session *s);
/* The argmax of the last token's logits, computed where they are (on a
 * GPU: 4 bytes come back instead of V floats); -1 if one is NaN. */
int fs_session_argmax(fs_session *s);

int fs_session_pos(const fs_session *s);             /* tokens in the cache */
int fs_session_n_ctx(const fs_session *s);
/* Forget everything after the first n tokens (n <= pos): the next eval
 * continues from position n, reusing the cached prefix (chat turns). */
void fs_session_truncate(fs_session *s, int n);
size_t fs_session_kv_bytes(const fs_session *s);      /* KV cache memory */
fs_forward *fs_session_forward(fs_session *s);
const fs_model *fs_session_model(const fs_session *s);

#endif
