/* sampler.h - turn one position's logits [V] into the next token id.
 *
 * The pipeline follows Hugging Face transformers' generate() (the logits
 * processors first, then the sampling "warpers", in this order):
 *
 *   1. repetition penalty  every token seen so far (prompt + generated):
 *                          logit > 0 ? logit / r : logit * r      (HF, CTRL paper)
 *   2. presence penalty    every token that appeared in the *generated* text:
 *                          logit -= p                             (OpenAI / vLLM)
 *      frequency penalty   the same tokens, once per appearance:
 *                          logit -= f * count                     (OpenAI / vLLM)
 *   -- temperature == 0: greedy, argmax of the penalised logits (lowest id
 *      wins a tie); steps 3-6 are skipped --
 *   3. temperature         logit / T
 *   4. top-k               keep tokens whose logit >= the k-th largest
 *                          (ties at the boundary are all kept, as HF does)
 *   5. top-p (nucleus)     softmax over what is left; in descending order keep
 *                          a token while the mass before it is < top_p
 *   6. min-p               keep tokens with p >= min_p * p_max
 *   7. draw                softmax over the survivors (float64), one uniform
 *                          number from the sampler's own PRNG, inverse CDF.
 *
 * HF applies temperature before top-k/top-p/min-p; top-k is unchanged by it,
 * but top-p and min-p see the tempered distribution. HF has no presence
 * penalty; ours is OpenAI's (a flat subtraction, generated tokens only).
 *
 * Logits: -inf is a legal value (a banned token). NaN or +inf anywhere is an
 * error ("logit of token 17 is NaN"): they mean the forward pass is broken,
 * and silently mapping them to -inf would hide that. All tokens at -inf is
 * an error too.
 *
 * Determinism: the PRNG is xoshiro256** seeded through splitmix64, so the
 * same seed and the same logits give the same tokens on any machine. All
 * sums and the inverse CDF are in float64; candidates are ordered by (logit
 * descending, id ascending), a total order, so no step depends on the sort
 * algorithm. (exp() comes from libm; libms may differ in the last bit, which
 * could move a draw that lands exactly on a boundary - vanishingly rare.)
 *
 * Memory: every buffer is sized for V at fs_sampler_new; sampling never
 * allocates.
 *
 * Docs: docs/sampling.md
 */
#ifndef FS_SAMPLER_H
#define FS_SAMPLER_H

#include <stdint.h>

#include "model.h"
#include "util.h"

typedef struct fs_sampler_params {
    double temperature;         /* 0 = greedy; > 0 samples */
    int top_k;                  /* 0 = off; >= V is the same as off */
    double top_p;               /* (0, 1]; 1 = off */
    double min_p;               /* [0, 1]; 0 = off */
    double repetition_penalty;  /* > 0; 1 = off */
    double presence_penalty;    /* any finite value; 0 = off */
    uint64_t seed;
    double frequency_penalty;   /* any finite value; 0 = off (last: older
                                   positional initializers leave it 0) */
} fs_sampler_params;

/* Defaults: generation_config.json values where the model has them
 * (Qwen3-0.6B: temperature 0.6, top-k 20, top-p 0.95), otherwise
 * temperature 1, top-k off, top-p 1, min-p 0, repetition penalty 1
 * (sampling from the model's own distribution; note HF's generate() would
 * fall back to greedy when do_sample is absent). Presence penalty 0, seed 0.
 * c may be NULL (all fallbacks). */
void fs_sampler_params_default(fs_sampler_params *p, const fs_config *c);

/* Check ranges; fills e with the first bad field. */
int fs_sampler_params_check(const fs_sampler_params *p, fs_err *e);

typedef struct fs_sampler fs_sampler;

/* n_vocab: V, the length of the logits rows it will see. */
int fs_sampler_new(fs_sampler **out, int n_vocab, const fs_sampler_params *p, fs_err *e);
void fs_sampler_free(fs_sampler *s);
int fs_sampler_n_vocab(const fs_sampler *s);
/* 1 when every pick is the plain argmax of the logits: temperature 0 and
 * no penalty (repetition 1, presence 0, frequency 0). The generation loop then needs
 * only the argmax, not the logits (generate.h). */
int fs_sampler_is_greedy(const fs_sampler *s);

/* New settings (checked as fs_sampler_new does), then fs_sampler_reset:
 * a server's sampler serves one request after another without
 * reallocating. */
int fs_sampler_set_params(fs_sampler *s, const fs_sampler_params *p, fs_err *e);

/* Forget the token history and reseed the PRNG from params.seed: the start
 * of a new, unrelated generation. */
void fs_sampler_reset(fs_sampler *s);

/* Record a token in the history the penalties look at. generated = 0 for
 * prompt tokens (repetition penalty only), 1 for sampled tokens (both
 * penalties). Ids outside [0, V) are ignored. */
void fs_sampler_accept(fs_sampler *s, int id, int generated);

/* Apply steps 1-2 (the penalties) to a copy of logits in out[V]. Exposed for
 * tests and for `fs logits`; fs_sampler_sample does this itself. */
void fs_sampler_penalize(const fs_sampler *s, const float *logits, float *out);

/* Pick the next token from logits[V] (not modified). Returns the id in
 * [0, V), or -1 with e filled (NaN/+inf logits, nothing finite). Does not
 * record the token: call fs_sampler_accept(s, id, 1) when it is kept. */
int fs_sampler_sample(fs_sampler *s, const float *logits, fs_err *e);

/* The PRNG (fs_rng, seeded and reproducible) lives in util.h. */

#endif
