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
    free(s);
}

int fs_sampler_n_vocab(const fs_sampler *s) { return s->V; }

int fs_sampler_is_greedy(const fs_sampler *s) {
    return s->p.temperature == 0 && s->p.repetition_penalty == 1 && s->p.presence_penalty == 0 &&
           s->p.frequency_penalty == 0;
}

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
    double r = s->p.repetition_penalty, pp = s->p.presence_penalty, fp = s->p.frequency_penalty;
    if (r == 1.0 && pp == 0.0 && fp == 0.0) return;
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

/* Reject NaN and +inf; report whether anything is finite. */
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

/* k-th largest of x[0..V): a size-k min-heap whose root is the smallest of
 * the k largest seen so far. O(V log k); k is small in practice (20). */
static float kth_largest(float *heap, const float *x, int V, int k) {
    int n = 0;
    for (int i = 0; i < V; i++) {
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

int fs_sampler_sample(fs_sampler *s, const float *logits, fs_err *e) {
    const int V = s->V;
    const fs_sampler_params *p = &s->p;
    float *w = s->work;
    fs_sampler_penalize(s, logits, w);
    if (check_logits(w, V, e)) return -1;

    if (p->temperature == 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (w[i] > w[best]) best = i; /* strict: the lowest id wins a tie */
        return best;
    }

    /* top-k: keep logit >= the k-th largest. Temperature does not change
     * the order, so it is applied later, inside the exponent. */
    float thr = -INFINITY;
    if (p->top_k > 0 && p->top_k < V) thr = kth_largest(s->heap, w, V, p->top_k);
    int n = 0;
    for (int i = 0; i < V; i++)
        if (w[i] >= thr && !isinf(w[i])) s->cands[n++] = (cand){w[i], i};

    /* top-p needs the candidates in descending order; the other steps do not,
     * so the (V log V) sort is skipped when top_p is off. */
    if (p->top_p < 1.0) qsort(s->cands, (size_t)n, sizeof *s->cands, cand_cmp);

    float maxl = s->cands[0].logit;
    for (int i = 1; i < n; i++)
        if (s->cands[i].logit > maxl) maxl = s->cands[i].logit;

    /* prob[i] = exp((l_i - max) / T): softmax numerators, the max maps to 1 */
    double z = 0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = exp(((double)s->cands[i].logit - maxl) / p->temperature);
        z += s->prob[i];
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
