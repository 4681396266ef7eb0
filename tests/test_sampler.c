/* test_sampler.c - the sampler against an independent, slow reading of the
 * same rules (sort everything, filter, normalise), plus the PRNG, the
 * penalties and bad logits. Every random number here comes from a fixed
 * seed, so the statistical checks cannot flake.
 *
 * Docs: docs/sampling.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "test.h"

static fs_sampler_params params(double t, int k, double tp, double mp, uint64_t seed) {
    fs_sampler_params p;
    fs_sampler_params_default(&p, NULL);
    p.temperature = t;
    p.top_k = k;
    p.top_p = tp;
    p.min_p = mp;
    p.seed = seed;
    return p;
}

static fs_sampler *make(int V, fs_sampler_params p) {
    fs_sampler *s = NULL;
    fs_err e = {{0}};
    if (fs_sampler_new(&s, V, &p, &e)) {
        fprintf(stderr, "fs_sampler_new: %s\n", e.msg);
        exit(1);
    }
    return s;
}

/* The reference: which tokens may be drawn, and with what probability. */
static const float *ref_logits;
static int ref_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    float lx = ref_logits[x], ly = ref_logits[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : 1;
}

static void reference(const float *l, int V, fs_sampler_params p, int *allowed, double *prob) {
    int *idx = malloc((size_t)V * sizeof *idx);
    for (int i = 0; i < V; i++) idx[i] = i;
    ref_logits = l; /* descending logit, ascending id */
    qsort(idx, (size_t)V, sizeof *idx, ref_cmp);
    for (int i = 0; i < V; i++) allowed[i] = !isinf(l[i]);
    if (p.top_k > 0 && p.top_k < V)
        for (int i = 0; i < V; i++)
            if (l[i] < l[idx[p.top_k - 1]]) allowed[i] = 0;
    double lmax = l[idx[0]], z = 0;
    for (int i = 0; i < V; i++) {
        prob[i] = allowed[i] ? exp(((double)l[i] - lmax) / p.temperature) : 0;
        z += prob[i];
    }
    for (int i = 0; i < V; i++) prob[i] /= z;
    if (p.top_p < 1) {
        double before = 0;
        for (int r = 0; r < V; r++) {
            int i = idx[r];
            if (!allowed[i]) continue;
            if (before >= p.top_p) allowed[i] = 0;
            before += prob[i];
        }
    }
    double pmax = 0;
    for (int i = 0; i < V; i++) if (allowed[i] && prob[i] > pmax) pmax = prob[i];
    for (int i = 0; i < V; i++)
        if (allowed[i] && prob[i] < p.min_p * pmax) allowed[i] = 0;
    z = 0;
    for (int i = 0; i < V; i++) { if (!allowed[i]) prob[i] = 0; z += prob[i]; }
    for (int i = 0; i < V; i++) prob[i] /= z;
    free(idx);
}

static void fill_logits(fs_rng *r, float *l, int V, int kind) {
    for (int i = 0; i < V; i++) {
        double u = fs_rng_uniform(r);
        switch (kind) {
        case 0: l[i] = (float)(u * 10 - 5); break;                  /* flat-ish */
        case 1: l[i] = (float)(u * 40 - 20); break;                 /* peaked */
        case 2: l[i] = (float)((int)(u * 4)); break;                /* many ties */
        default: l[i] = u < 0.3 ? -INFINITY : (float)(u * 6); break; /* banned tokens */
        }
    }
}

static void test_rng(void) {
    fs_rng a, b;
    /* splitmix64's published first output for state 0: pins the seeding so
     * a seed means the same stream on every machine and every version */
    fs_rng_seed(&a, 0);
    CHECK(a.s[0] == 0xe220a8397b1dcdafULL);
    fs_rng_seed(&a, 42);
    fs_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= fs_rng_next(&a) == fs_rng_next(&b);
    CHECK(same);
    fs_rng_seed(&b, 43);
    int diff = 0;
    for (int i = 0; i < 100; i++) diff += fs_rng_next(&a) != fs_rng_next(&b);
    CHECK(diff > 95);
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = fs_rng_uniform(&a);
        if (u < lo) lo = u;
        if (u > hi) hi = u;
        sum += u;
    }
    CHECK(lo >= 0 && lo < 0.001 && hi < 1 && hi > 0.999);
    CHECK_NEAR(sum / 100000, 0.5, 0.01);
}

static void test_greedy(void) {
    float l[6] = {1, 3, -2, 3, 0.5f, -INFINITY};
    fs_sampler *s = make(6, params(0, 20, 0.95, 0, 7));
    fs_err e = {{0}};
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 1); /* tie 1 vs 3: lowest id */
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 1); /* and no randomness */
    l[4] = 3.5f;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 4);
    /* the penalties apply in greedy mode too (as in HF): 3.5/2 < 3 */
    fs_sampler_free(s);
    fs_sampler_params p = params(0, 0, 1, 0, 0);
    p.repetition_penalty = 2;
    s = make(6, p);
    fs_sampler_accept(s, 4, 0);
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 1);
    fs_sampler_free(s);

    /* a large random vocabulary: greedy == a plain argmax */
    int V = 151936;
    float *big = malloc((size_t)V * sizeof *big);
    fs_rng r;
    fs_rng_seed(&r, 5);
    fill_logits(&r, big, V, 1);
    int best = 0;
    for (int i = 1; i < V; i++) if (big[i] > big[best]) best = i;
    s = make(V, params(0, 0, 1, 0, 0));
    CHECK_EQ_INT(fs_sampler_sample(s, big, &e), best);
    fs_sampler_free(s);
    free(big);
}

static void test_seed(void) {
    int V = 1000;
    float *l = malloc((size_t)V * sizeof *l);
    fs_rng r;
    fs_rng_seed(&r, 1);
    fill_logits(&r, l, V, 0);
    int a[200], b[200], c[200];
    fs_err e = {{0}};
    fs_sampler *s1 = make(V, params(1.0, 0, 1, 0, 1234));
    fs_sampler *s2 = make(V, params(1.0, 0, 1, 0, 1234));
    fs_sampler *s3 = make(V, params(1.0, 0, 1, 0, 1235));
    for (int i = 0; i < 200; i++) {
        a[i] = fs_sampler_sample(s1, l, &e);
        b[i] = fs_sampler_sample(s2, l, &e);
        c[i] = fs_sampler_sample(s3, l, &e);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* reset replays the stream from the seed */
    fs_sampler_reset(s1);
    int same = 1;
    for (int i = 0; i < 200; i++) same &= fs_sampler_sample(s1, l, &e) == a[i];
    CHECK(same);
    fs_sampler_free(s1);
    fs_sampler_free(s2);
    fs_sampler_free(s3);
    free(l);
}

/* Draw many times; every token must be in the reference's allowed set, and
 * with enough draws per token the counts must match its probabilities. */
static void check_dist(const float *l, int V, fs_sampler_params p, int draws, const char *what) {
    int *allowed = malloc((size_t)V * sizeof *allowed);
    double *prob = malloc((size_t)V * sizeof *prob);
    long *count = calloc((size_t)V, sizeof *count);
    reference(l, V, p, allowed, prob);
    fs_sampler *s = make(V, p);
    fs_err e = {{0}};
    int outside = 0, errors = 0;
    for (int d = 0; d < draws; d++) {
        int id = fs_sampler_sample(s, l, &e);
        if (id < 0 || id >= V) { errors++; continue; }
        if (!allowed[id]) outside++;
        count[id]++;
    }
    CHECKF(errors == 0, "%s: %d errors (%s)", what, errors, e.msg);
    CHECKF(outside == 0, "%s: %d draws outside the allowed set", what, outside);
    /* chi-square over allowed tokens; cells with expected count < 5 are
     * pooled. The bound is far in the tail (df + 6 sqrt(2 df) + 10), and
     * the fixed seed makes the outcome deterministic. */
    double chi = 0, pool_obs = 0, pool_exp = 0;
    int df = -1;
    for (int i = 0; i < V; i++) {
        if (!allowed[i]) continue;
        double ex = prob[i] * draws;
        if (ex < 5) { pool_obs += count[i]; pool_exp += ex; continue; }
        chi += (count[i] - ex) * (count[i] - ex) / ex;
        df++;
    }
    if (pool_exp >= 5) { chi += (pool_obs - pool_exp) * (pool_obs - pool_exp) / pool_exp; df++; }
    if (df < 1) df = 1;
    double bound = df + 6 * sqrt(2.0 * df) + 10;
    CHECKF(chi < bound, "%s: chi-square %.1f >= %.1f (df %d)", what, chi, bound, df);
    fs_sampler_free(s);
    free(allowed);
    free(prob);
    free(count);
}

static void test_filters(void) {
    int V = 64;
    float l[64];
    fs_rng r;
    fs_rng_seed(&r, 99);
    struct { double t; int k; double tp, mp; } cfg[] = {
        {1.0, 0, 1.0, 0},      /* plain sampling */
        {0.6, 20, 0.95, 0},    /* Qwen3's defaults */
        {1.0, 5, 1.0, 0},
        {1.0, 1, 1.0, 0},      /* top-1 = greedy with ties */
        {1.0, 1000, 1.0, 0},   /* top_k > V */
        {1.5, 0, 0.5, 0},
        {0.7, 0, 0.9, 0.05},
        {1.0, 0, 1.0, 0.2},
        {2.0, 10, 0.8, 0.1},
        {0.3, 0, 0.99, 0},
    };
    char what[128];
    for (int kind = 0; kind < 4; kind++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            fill_logits(&r, l, V, kind);
            fs_sampler_params p = params(cfg[c].t, cfg[c].k, cfg[c].tp, cfg[c].mp, 1000 + c);
            snprintf(what, sizeof what, "kind %d T %g k %d p %g minp %g", kind, cfg[c].t,
                     cfg[c].k, cfg[c].tp, cfg[c].mp);
            check_dist(l, V, p, 20000, what);
        }

    /* a known distribution, checked cell by cell: logits log(p) */
    float k4[4] = {(float)log(0.1), (float)log(0.2), (float)log(0.3), (float)log(0.4)};
    check_dist(k4, 4, params(1.0, 0, 1.0, 0, 3), 100000, "known 0.1/0.2/0.3/0.4");
    /* top-p 0.6 keeps 0.4 and 0.3 (mass before 0.3 is 0.4 < 0.6), drops 0.2 */
    int allowed[4];
    double prob[4];
    reference(k4, 4, params(1.0, 0, 0.6, 0, 3), allowed, prob);
    CHECK(allowed[3] && allowed[2] && !allowed[1] && !allowed[0]);
    CHECK_NEAR(prob[3], 0.4 / 0.7, 1e-6);
    check_dist(k4, 4, params(1.0, 0, 0.6, 0, 4), 50000, "known, top-p 0.6");
    /* min-p 0.45: keep p >= 0.18, i.e. 0.2, 0.3, 0.4 */
    reference(k4, 4, params(1.0, 0, 1.0, 0.45, 3), allowed, prob);
    CHECK(allowed[3] && allowed[2] && allowed[1] && !allowed[0]);
    check_dist(k4, 4, params(1.0, 0, 1.0, 0.45, 5), 50000, "known, min-p 0.45");

    /* the real vocabulary size with Qwen3's defaults: only the top 20 */
    int BV = 151936;
    float *big = malloc((size_t)BV * sizeof *big);
    fill_logits(&r, big, BV, 1);
    check_dist(big, BV, params(0.6, 20, 0.95, 0, 11), 2000, "V=151936 Qwen3 defaults");
    check_dist(big, BV, params(1.0, 0, 0.9, 0, 12), 40, "V=151936 top-p only (the nucleus' bins)");
    free(big);
}

/* The shortcuts of a large vocabulary (sampler.c): blocks of 16 skipped by
 * their largest logit, top-p by the nucleus' bins when top-k is off, min-p
 * alone by a bound on the logit. V = 5003 leaves a partial last block;
 * -inf tokens sit among the rest. */
static void test_large_vocab(void) {
    const int V = 5003;
    float *l = malloc((size_t)V * sizeof *l);
    fs_rng r;
    fs_rng_seed(&r, 4242);
    struct { double t; int k; double tp, mp; } cfg[] = {
        {1.0, 0, 0.9, 0},      /* the nucleus path: top-p over all V */
        {0.7, 0, 0.5, 0.01},   /* ... then min-p */
        {1.0, 0, 1.0, 0.3},    /* min-p alone: the logit bound */
        {0.5, 0, 1.0, 1.0},    /* min-p 1: the largest logits only */
        {0.8, 40, 0.95, 0},    /* top-k: the k-th largest with blocks skipped */
        {1.0, 0, 0.999, 0},    /* a nucleus of almost everything */
    };
    char what[128];
    for (int kind = 0; kind < 4; kind++)
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            fill_logits(&r, l, V, kind);
            for (int i = 7; i < V; i += 97) l[i] = -INFINITY;
            fs_sampler_params p = params(cfg[c].t, cfg[c].k, cfg[c].tp, cfg[c].mp, 77 + c);
            snprintf(what, sizeof what, "V=%d kind %d T %g k %d p %g minp %g", V, kind, cfg[c].t, cfg[c].k,
                     cfg[c].tp, cfg[c].mp);
            /* allowed sets of up to ~5,000 tokens: cells pooled; a nucleus of
             * almost all of them is sorted each draw, so fewer draws there */
            check_dist(l, V, p, cfg[c].tp > 0.99 ? 300 : 2000, what);
        }
    /* a peaked nucleus: one logit far above the rest, a few close to it */
    for (int i = 0; i < V; i++) l[i] = (float)(fs_rng_uniform(&r) * 2);
    l[4000] = 12, l[17] = 11.5f, l[5002] = 11;   /* the last one in the partial block */
    check_dist(l, V, params(1.0, 0, 0.9, 0, 5), 20000, "V=5003 peaked nucleus");
    check_dist(l, V, params(1.0, 0, 0.99, 0, 6), 20000, "V=5003 peaked nucleus, top-p 0.99");
    /* greedy: the first of equal largest logits, across blocks */
    fs_err e = {{0}};
    l[4000] = 13, l[40] = 13;
    fs_sampler *s = make(V, params(0, 0, 1, 0, 1));
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 40);
    l[40] = 0;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 4000);
    l[5002] = 14;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), 5002);
    /* bad logits found wherever they are, the first named */
    l[5001] = NAN;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), -1);
    CHECK(strstr(e.msg, "token 5001") != NULL);
    l[100] = INFINITY;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), -1);
    CHECK(strstr(e.msg, "+inf") && strstr(e.msg, "token 100"));
    fs_sampler_free(s);
    free(l);
}

static void test_penalties(void) {
    float l[5] = {2, -2, 0, 4, -1};
    float out[5];
    fs_sampler_params p = params(1, 0, 1, 0, 0);
    p.repetition_penalty = 2;
    p.presence_penalty = 0.5;
    fs_sampler *s = make(5, p);
    fs_sampler_penalize(s, l, out);
    CHECK(memcmp(l, out, sizeof l) == 0); /* nothing seen yet */
    fs_sampler_accept(s, 0, 0); /* prompt: repetition only */
    fs_sampler_accept(s, 1, 1); /* generated: both */
    fs_sampler_accept(s, 2, 1);
    fs_sampler_accept(s, 0, 0); /* seen twice: penalised once (a set) */
    fs_sampler_accept(s, 99, 1); /* out of range: ignored */
    fs_sampler_penalize(s, l, out);
    CHECK_NEAR(out[0], 1.0, 0);        /* 2 / 2 */
    CHECK_NEAR(out[1], -4.5, 0);       /* -2 * 2 - 0.5 */
    CHECK_NEAR(out[2], -0.5, 0);       /* 0 stays 0, then - 0.5 */
    CHECK_NEAR(out[3], 4.0, 0);        /* unseen */
    CHECK_NEAR(out[4], -1.0, 0);
    fs_sampler_reset(s);
    fs_sampler_penalize(s, l, out);
    CHECK(memcmp(l, out, sizeof l) == 0);
    fs_sampler_free(s);

    /* a penalty below 1 rewards repetition; presence < 0 too */
    p.repetition_penalty = 0.5;
    p.presence_penalty = -1;
    s = make(5, p);
    fs_sampler_accept(s, 4, 1);
    fs_sampler_penalize(s, l, out);
    CHECK_NEAR(out[4], 0.5, 0); /* -1 * 0.5 + 1 */
    fs_sampler_free(s);
}

static void test_bad_logits(void) {
    float l[4] = {1, NAN, 2, 0};
    fs_err e = {{0}};
    fs_sampler *s = make(4, params(0.8, 0, 1, 0, 1));
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), -1);
    CHECK(strstr(e.msg, "NaN") && strstr(e.msg, "token 1"));
    l[1] = INFINITY;
    e.msg[0] = 0;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), -1);
    CHECK(strstr(e.msg, "+inf") != NULL);
    for (int i = 0; i < 4; i++) l[i] = -INFINITY;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), -1);
    CHECK(strstr(e.msg, "-inf") != NULL);
    fs_sampler_free(s);
    s = make(4, params(0, 0, 1, 0, 1)); /* greedy checks too */
    l[2] = NAN;
    CHECK_EQ_INT(fs_sampler_sample(s, l, &e), -1);
    /* -inf tokens are banned, never drawn, even at high temperature */
    float m[4] = {-INFINITY, 0, -INFINITY, 0};
    fs_sampler_free(s);
    s = make(4, params(100, 0, 1, 0, 2));
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        int id = fs_sampler_sample(s, m, &e);
        bad += id != 1 && id != 3;
    }
    CHECK_EQ_INT(bad, 0);
    fs_sampler_free(s);
}

static void test_params(void) {
    fs_sampler_params p;
    fs_err e = {{0}};
    fs_config c;
    memset(&c, 0, sizeof c);
    c.has_temperature = c.has_top_k = c.has_top_p = 1;
    c.temperature = 0.6;
    c.top_k = 20;
    c.top_p = 0.95;
    fs_sampler_params_default(&p, &c);
    CHECK_NEAR(p.temperature, 0.6, 0);
    CHECK_EQ_INT(p.top_k, 20);
    CHECK_NEAR(p.top_p, 0.95, 0);
    CHECK_NEAR(p.min_p, 0, 0);
    CHECK_NEAR(p.repetition_penalty, 1, 0);
    CHECK_EQ_INT(fs_sampler_params_check(&p, &e), 0);
    fs_sampler_params_default(&p, NULL);
    CHECK_NEAR(p.temperature, 1, 0);
    CHECK_EQ_INT(p.top_k, 0);
    fs_sampler_params q = p; q.temperature = -1;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    CHECK(strstr(e.msg, "temperature") != NULL);
    q = p; q.top_p = 0;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    q = p; q.top_p = 1.5;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    q = p; q.min_p = -0.1;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    q = p; q.top_k = -3;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    q = p; q.repetition_penalty = 0;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    q = p; q.presence_penalty = NAN;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    q = p; q.temperature = NAN;
    CHECK_EQ_INT(fs_sampler_params_check(&q, &e), -1);
    fs_sampler *s = NULL;
    CHECK_EQ_INT(fs_sampler_new(&s, 0, &p, &e), -1);
    CHECK(s == NULL);
}

int main(void) {
    test_rng();
    test_greedy();
    test_seed();
    test_filters();
    test_large_vocab();
    test_penalties();
    test_bad_logits();
    test_params();
    return TEST_SUMMARY();
}
