/* forward.h - a session: one model, one backend, one KV cache, one
 * conversation. This is the narrow interface everything above the model
 * (generate, chat, server, bench) talks to.
 *
 * All memory (activations, KV cache, logits) is allocated by
 * fs_session_new, sized from the config and n_ctx; fs_session_eval never
 * allocates. Tokens are appended at the current position: a call with many
 * tokens is a batched prefill (matrix-matrix), a call with one is a decode
 * step against the cache.
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#ifndef FS_FORWARD_H
#define FS_FORWARD_H

#include <stddef.h>

#include "model.h"
#include "util.h"

/* Padding after each cached position, in floats. For Qwen3-0.6B a position
 * is Hkv * D = 1024 floats, 4 KiB: attention then reads one head's keys
 * 4 KiB apart, addresses that all fall into the same few L1 cache sets,
 * so the rows of a block evict each other. 64 bytes more per position
 * spread them over the sets (1.6% more cache memory). Decode attention of
 * one Qwen3-0.6B layer on the dev VM, 2 threads, cache warm: 64 keys
 * 13.7 -> 11.3 us, 1024 keys 166 -> 126 us (its row kernels alone: 2.3 ->
 * 5.2 FMA/ns). */
#define FS_KV_PAD 16

typedef struct fs_session fs_session;

typedef struct fs_session_opts {
    int n_ctx;            /* context length in tokens; 0 = default 4096, capped by max_pos */
    const char *backend;  /* "cpu" (default); names compare backends, never change results silently */
    int n_threads;        /* 0 = default */
} fs_session_opts;

int fs_session_new(fs_session **out, const fs_model *m, const fs_session_opts *opts, fs_err *e);
void fs_session_free(fs_session *s);

/* Append n tokens at the current position and run the forward pass.
 * Fails (clear message, nothing changed) if pos + n > n_ctx or an id is out
 * of range [0, V). After success fs_session_logits() holds the logits of the
 * last token. */
int fs_session_eval(fs_session *s, const int *ids, int n, fs_err *e);

/* fs_session_eval plus what the golden tests compare (either may be NULL):
 *   logits_all  [n, V]        logits of every one of the n positions
 *   checkpoints [(L+2), n, H] the residual stream after the embedding, after
 *                             each layer, and after the final norm.
 * Same checks and same arithmetic as fs_session_eval; slower (lm_head runs
 * for every position). */
int fs_session_eval_debug(fs_session *s, const int *ids, int n, float *logits_all, float *checkpoints,
                          fs_err *e);

const float *fs_session_logits(const fs_session *s); /* [V] */
int fs_session_pos(const fs_session *s);             /* tokens in the cache */
int fs_session_n_ctx(const fs_session *s);
/* Forget everything after the first n tokens (n <= pos): the next eval
 * continues from position n, reusing the cached prefix (chat turns). */
void fs_session_truncate(fs_session *s, int n);
size_t fs_session_kv_bytes(const fs_session *s);      /* KV cache memory */
size_t fs_session_scratch_bytes(const fs_session *s); /* activations + logits */
const fs_model *fs_session_model(const fs_session *s);
int fs_session_max_batch(const fs_session *s);        /* tokens per prefill chunk */

#endif
