/* sampler.c - penalties, temperature, top-k, top-p, min-p and a seeded draw
 * (see sampler.h for the pipeline and the choices behind it).
 *
 * Shapes: logits [V]. The candidates are the tokens still allowed after
 * each step; they are kept as (logit, id) pairs so they can be sorted
 * without a context pointer (qsort has none in C11).
 *
 * Docs: docs/sampling.md
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- parameters --- */

void fs_sampler_params_default(fs_sampler_params *p, const fs_config *c) {
    p->temperature = 1.0;
    p->top_k = 0;
    p->top_p = 1.0;
    p->min_p = 0.0;
    p->repetition_penalty = 1.0;
    p->presence_penalty = 0.0;
    p->frequency_penalty = 0.0;
    p->seed = 0;
    if (!c) return;
    if (c->has_temperature) p->temperature = c->temperature;
    if (c->has_top_k) p->top_k = c->top_k;
    if (c->has_top_p) p->top_p = c->top_p;
    if (c->has_min_p) p->min_p = c->min_p;
    if (c->has_repetition_penalty) p->repetition_penalty = c->repetition_penalty;
}

int fs_sampler_params_check(const fs_sampler_params *p, fs_err *e) {
    if (!(p->temperature >= 0) || !isfinite(p->temperature))
        return fs_errf(e, "temperature must be a finite number >= 0, got %g", p->temperature);
    if (p->top_k < 0) return fs_errf(e, "top_k must be >= 0 (0 = off), got %d", p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return fs_errf(e, "top_p must be in (0, 1], got %g", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return fs_errf(e, "min_p must be in [0, 1], got %g", p->min_p);
    if (!(p->repetition_penalty > 0) || !isfinite(p->repetition_penalty))
        return fs_errf(e, "repetition_penalty must be a finite number > 0, got %g",
                       p->repetition_penalty);
    if (!isfinite(p->presence_penalty))
        return fs_errf(e, "presence_penalty must be finite, got %g", p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return fs_errf(e, "frequency_penalty must be finite, got %g", p->frequency_penalty);
    return 0;
}

/* --- the sampler --- */

enum { SEEN_ANY = 1, SEEN_GENERATED = 2 };

/* The sampler looks at all V logits (151,936 for Qwen3) once per token,
 * which on a GPU decoding ~1,000 tokens/s, or a server sampling 64 streams
 * a step, is not free: each pass over them costs ~50 us on one core. So
 * the first pass also records each block's largest logit, and the later
 * passes (the k-th largest, the candidates) skip every block whose largest
 * cannot pass. */
#define SCAN_BLOCK 16
/* Top-p over the whole vocabulary (top-k off) needs the candidates in
 * order only down to the nucleus' edge: a histogram of the probability
 * mass over NUCLEUS_BINS logit bins finds the bin where the mass reaches
 * top-p, and only the tokens above it are sorted (not V of them). */
#define NUCLEUS_BINS 2048

typedef struct cand {
    float logit;
    int id;
} cand;

struct fs_sampler {
    int V;
    fs_sampler_params p;
    fs_rng rng;
    unsigned char *seen; /* [V] SEEN_* flags */
    int *seen_ids;       /* [V] ids with a flag set, so penalties cost O(history) */
    int n_seen;
    int *count;          /* [V] times each id was generated (frequency penalty) */
    float *work;         /* [V] penalised logits */
    cand *cands;         /* [V] surviving candidates */
    double *prob;        /* [V] exp((logit - max) / T) of cands[i] */
    float *heap;         /* [V] min-heap for the k-th largest logit */
    float *bmax;         /* [V / SCAN_BLOCK] the largest logit of each block (scan) */
    double hist[NUCLEUS_BINS];   /* top-p without top-k: probability mass per logit bin */
};

int fs_sampler_new(fs_sampler **out, int n_vocab, const fs_sampler_params *p, fs_err *e) {
    *out = NULL;
    if (n_vocab <= 0) return fs_errf(e, "sampler: vocabulary size must be > 0, got %d", n_vocab);
    if (fs_sampler_params_check(p, e)) return -1;
    size_t V = (size_t)n_vocab;
    fs_sampler *s = fs_xcalloc(1, sizeof *s);
    s->V = n_vocab;
    s->p = *p;
    s->seen = fs_xcalloc(V, 1);
    s->seen_ids = fs_xmalloc(V * sizeof *s->seen_ids);
    s->count = fs_xcalloc(V, sizeof *s->count);
    s->work = fs_xmalloc(V * sizeof *s->work);
    s->cands = fs_xmalloc(V * sizeof *s->cands);
    s->prob = fs_xmalloc(V * sizeof *s->prob);
    s->heap = fs_xmalloc(V * sizeof *s->heap);
    s->bmax = fs_xmalloc((V + SCAN_BLOCK - 1) / SCAN_BLOCK * sizeof *s->bmax);
    fs_sampler_reset(s);
    *out = s;
    return 0;
}

void fs_sampler_free(fs_sampler *s) {
    if (!s) return;
    free(s->seen);
    free(s->seen_ids);
    free(s->count);
    free(s->work);
    free(s->cands);
    free(s->prob);
    free(s->heap);
    free(s->bmax);
    free(s);
}

int fs_sampler_n_vocab(const fs_sampler *s) { return s->V; }

/* Whether any penalty changes a logit (repetition 1, presence and
 * frequency 0: none does). */
static int penalized(const fs_sampler_params *p) {
    return p->repetition_penalty != 1.0 || p->presence_penalty != 0.0 || p->frequency_penalty != 0.0;
}

int fs_sampler_is_greedy(const fs_sampler *s) { return s->p.temperature == 0 && !penalized(&s->p); }

int fs_sampler_set_params(fs_sampler *s, const fs_sampler_params *p, fs_err *e) {
    if (fs_sampler_params_check(p, e)) return -1;
    s->p = *p;
    fs_sampler_reset(s);
    return 0;
}

void fs_sampler_reset(fs_sampler *s) {
    for (int i = 0; i < s->n_seen; i++) s->seen[s->seen_ids[i]] = 0, s->count[s->seen_ids[i]] = 0;
    s->n_seen = 0;
    fs_rng_seed(&s->rng, s->p.seed);
}

void fs_sampler_accept(fs_sampler *s, int id, int generated) {
    if (id < 0 || id >= s->V) return;
    if (!s->seen[id]) s->seen_ids[s->n_seen++] = id;
    s->seen[id] |= SEEN_ANY | (generated ? SEEN_GENERATED : 0);
    if (generated) s->count[id]++;
}

void fs_sampler_penalize(const fs_sampler *s, const float *logits, float *out) {
    if (out != logits) memcpy(out, logits, (size_t)s->V * sizeof *out);
    if (!penalized(&s->p)) return;
    double r = s->p.repetition_penalty, pp = s->p.presence_penalty, fp = s->p.frequency_penalty;
    for (int i = 0; i < s->n_seen; i++) {
        int id = s->seen_ids[i];
        double l = out[id];
        /* Dividing a positive logit and multiplying a negative one both make
         * the token less likely; a plain division would make negative
         * logits *more* likely. */
        if (r != 1.0) l = l < 0 ? l * r : l / r;
        if (pp != 0.0 && (s->seen[id] & SEEN_GENERATED)) l -= pp;
        if (fp != 0.0) l -= fp * s->count[id];
        out[id] = (float)l;
    }
}

/* Reject NaN and +inf; report whether anything is finite. The slow path
 * of scan (below), taken only when something is wrong: it names the first
 * bad token. */
static int check_logits(const float *x, int V, fs_err *e) {
    int any_finite = 0;
    for (int i = 0; i < V; i++) {
        if (isnan(x[i])) return fs_errf(e, "logit of token %d is NaN", i);
        if (isinf(x[i]) && x[i] > 0) return fs_errf(e, "logit of token %d is +inf", i);
        if (!isinf(x[i])) any_finite = 1;
    }
    if (!any_finite) return fs_errf(e, "every logit is -inf: no token can be sampled");
    return 0;
}

/* One pass over the penalised logits x: every block's largest (s->bmax)
 * and the largest logit. NaN, +inf, or nothing finite
 * is an error (check_logits says which token). Four lanes at a time (the
 * compiler's vector extension: one SSE register on x86-64, one NEON
 * register on ARM), because one lane at a time is a chain of dependent
 * max operations, ~4 cycles per logit: 200 us for Qwen3's vocabulary. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int i32x4 __attribute__((vector_size(16)));

static inline f32x4 max4(f32x4 a, f32x4 b) {   /* lane-wise a > b ? a : b */
    i32x4 m = a > b;
    return (f32x4)(((i32x4)a & m) | ((i32x4)b & ~m));
}

static int scan(fs_sampler *s, const float *x, float *hi_out, fs_err *e) {
    const int V = s->V, nb = (V + SCAN_BLOCK - 1) / SCAN_BLOCK;
    const f32x4 inf = {INFINITY, INFINITY, INFINITY, INFINITY};
    i32x4 bad4 = {0, 0, 0, 0};
    float hi = -INFINITY;
    int bad = 0, b = 0;
    for (; (b + 1) * SCAN_BLOCK <= V; b++) {   /* whole blocks: four vectors */
        f32x4 v[4];
        memcpy(v, x + b * SCAN_BLOCK, sizeof v);
        f32x4 m = max4(max4(v[0], v[1]), max4(v[2], v[3]));
        for (int j = 0; j < 4; j++) bad4 |= (v[j] != v[j]) | (v[j] == inf);   /* NaN, +inf */
        float r0 = m[0] > m[1] ? m[0] : m[1], r1 = m[2] > m[3] ? m[2] : m[3], r = r0 > r1 ? r0 : r1;
        s->bmax[b] = r;
        hi = r > hi ? r : hi;
    }
    for (int j = 0; j < 4; j++) bad |= bad4[j];
    if (b < nb) {   /* the last, partial block */
        float m = -INFINITY;
        for (int i = b * SCAN_BLOCK; i < V; i++) {
            float v = x[i];
            bad |= (v != v) | (v == INFINITY);
            m = v > m ? v : m;
        }
        s->bmax[b] = m;
        hi = m > hi ? m : hi;
    }
    if (bad || hi == -INFINITY) return check_logits(x, V, e) ? -1 : fs_errf(e, "logits: internal scan error");
    *hi_out = hi;
    return 0;
}

/* k-th largest of x[0..V): a size-k min-heap whose root is the smallest of
 * the k largest seen so far. O(V log k); k is small in practice (20). Once
 * the heap is full, a block whose largest does not beat the root changes
 * nothing and is skipped (most of them, after the first few thousand). */
static float kth_largest(const fs_sampler *s, float *heap, const float *x, int k) {
    const int V = s->V;
    int n = 0;
    for (int b = 0; b * SCAN_BLOCK < V; b++) {
        if (n == k && s->bmax[b] <= heap[0]) continue;
        int i1 = (b + 1) * SCAN_BLOCK < V ? (b + 1) * SCAN_BLOCK : V;
        for (int i = b * SCAN_BLOCK; i < i1; i++) {
            float v = x[i];
            int j;
            if (n < k) { /* sift up */
                j = n++;
                while (j > 0 && heap[(j - 1) / 2] > v) {
                    heap[j] = heap[(j - 1) / 2];
                    j = (j - 1) / 2;
                }
                heap[j] = v;
            } else if (v > heap[0]) { /* replace the root, sift down */
                j = 0;
                for (;;) {
                    int c = 2 * j + 1;
                    if (c >= k) break;
                    if (c + 1 < k && heap[c + 1] < heap[c]) c++;
                    if (heap[c] >= v) break;
                    heap[j] = heap[c];
                    j = c;
                }
                heap[j] = v;
            }
        }
    }
    return heap[0];
}

/* Descending logit, then ascending id: a total order, so the result does
 * not depend on how qsort breaks ties. */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The finite logits >= thr, as candidates in id order; blocks whose
 * largest is below thr are skipped. */
static int gather(fs_sampler *s, const float *w, float thr) {
    const int V = s->V;
    int n = 0;
    for (int b = 0; b * SCAN_BLOCK < V; b++) {
        if (s->bmax[b] < thr) continue;
        int i1 = (b + 1) * SCAN_BLOCK < V ? (b + 1) * SCAN_BLOCK : V;
        for (int i = b * SCAN_BLOCK; i < i1; i++)
            if (w[i] >= thr && !isinf(w[i])) s->cands[n++] = (cand){w[i], i};
    }
    return n;
}

/* Top-p over n candidates in id order, with no top-k before it: the
 * nucleus is a prefix of the candidates sorted by logit, so only that
 * prefix needs sorting. z (the mass of all n) comes first, with each
 * candidate's mass added to its logit bin (bin 0 holds the largest
 * logits); walking the bins from the top finds the bin where the mass
 * reaches top-p z. A token in a later bin has at least that much mass
 * before it, so top-p drops it whatever the order inside the bins: those
 * are dropped now, and the rest sorted. (The cut-off bin is found with a
 * margin of 1e-9 z, so that summing in another order cannot move it.)
 * Returns the candidates left, sorted; *z_out is z. */
/* The bin of logit l: 0 for the largest, maxl; the same arithmetic for
 * the histogram and for the cut, so a token lands in the same bin both
 * times. */
static inline int nucleus_bin(float l, float maxl, double scale) { return (int)(((double)maxl - l) * scale); }

static int nucleus(fs_sampler *s, int n, float maxl, double *z_out) {
    const double T = s->p.temperature;
    float minl = maxl;
    for (int i = 0; i < n; i++) minl = s->cands[i].logit < minl ? s->cands[i].logit : minl;
    const double scale = maxl > minl ? (NUCLEUS_BINS - 1) / ((double)maxl - minl) : 0.0;
    memset(s->hist, 0, sizeof s->hist);
    double z = 0;
    for (int i = 0; i < n; i++) {
        double p = exp(((double)s->cands[i].logit - maxl) / T);
        z += p;
        s->hist[nucleus_bin(s->cands[i].logit, maxl, scale)] += p;
    }
    double limit = s->p.top_p * z * (1.0 + 1e-9), before = 0;
    int last = NUCLEUS_BINS - 1;
    for (int b = 0; b < NUCLEUS_BINS; b++) {
        before += s->hist[b];
        if (before >= limit) {
            last = b;
            break;
        }
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (nucleus_bin(s->cands[i].logit, maxl, scale) <= last) s->cands[m++] = s->cands[i];
    qsort(s->cands, (size_t)m, sizeof *s->cands, cand_cmp);
    *z_out = z;
    return m;
}

int fs_sampler_sample(fs_sampler *s, const float *logits, fs_err *e) {
    const int V = s->V;
    const fs_sampler_params *p = &s->p;
    /* the penalised logits: a copy only when a penalty changes some */
    const float *w = logits;
    if (penalized(p)) {
        fs_sampler_penalize(s, logits, s->work);
        w = s->work;
    }
    float maxl = 0;
    if (scan(s, w, &maxl, e)) return -1;

    if (p->temperature == 0) {   /* the first (lowest) id of the largest logit */
        int b = 0;
        while (s->bmax[b] != maxl) b++;
        int i = b * SCAN_BLOCK;
        while (w[i] != maxl) i++;
        return i;
    }

    /* top-k: keep logit >= the k-th largest. Temperature does not change
     * the order, so it is applied later, inside the exponent. Without
     * top-k (or top-p), min-p alone lets through only logits with
     * exp((l - max) / T) >= min_p: a conservative bound on the logit skips
     * the rest before any exp (the exact test follows). */
    float thr = -INFINITY;
    if (p->top_k > 0 && p->top_k < V) thr = kth_largest(s, s->heap, w, p->top_k);
    else if (p->top_p >= 1.0 && p->min_p > 0)
        thr = (float)(maxl + p->temperature * (log(p->min_p) - 1e-6) - 1e-6 * (1 + fabs(maxl)));
    int n = gather(s, w, thr);

    /* prob[i] = exp((l_i - max) / T): softmax numerators, the max maps to 1.
     * top-p needs the candidates in descending order; the other steps do
     * not, so they are sorted only then - all n of them when top-k left
     * few, or just the nucleus when it did not (nucleus above). */
    double z = 0;
    int sorted_z = 1;   /* z summed below, over the sorted candidates */
    if (p->top_p < 1.0) {
        if (n > 1024 && thr == -INFINITY) {
            n = nucleus(s, n, maxl, &z);
            sorted_z = 0;
        } else {
            qsort(s->cands, (size_t)n, sizeof *s->cands, cand_cmp);
        }
    }
    for (int i = 0; i < n; i++) {
        s->prob[i] = exp(((double)s->cands[i].logit - maxl) / p->temperature);
        if (sorted_z) z += s->prob[i];
    }

    if (p->top_p < 1.0) {
        /* keep token i while the mass strictly before it is < top_p; the
         * first token always survives */
        double before = 0, limit = p->top_p * z;
        int keep = 0;
        while (keep < n && before < limit) before += s->prob[keep++];
        n = keep;
    }

    if (p->min_p > 0) {
        /* p_i >= min_p * p_max; with p_max's numerator 1 that is prob[i] >=
         * min_p. Normalisation cancels out, so it is the same before or
         * after top-p's renormalisation. */
        int m = 0;
        for (int i = 0; i < n; i++)
            if (s->prob[i] >= p->min_p) {
                s->cands[m] = s->cands[i];
                s->prob[m] = s->prob[i];
                m++;
            }
        n = m;
    }

    z = 0;
    for (int i = 0; i < n; i++) z += s->prob[i];
    double u = fs_rng_uniform(&s->rng) * z, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (u < acc) return s->cands[i].id;
    }
    return s->cands[n - 1].id; /* u rounded up to the very end of the sum */
}
