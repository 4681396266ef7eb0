/* test_engine.c - the engine layer (src/engine.h) on models/tiny:
 *
 *   1. opening: options, a --weights conversion, the tokenizer modes, and
 *      errors (a missing directory, an unknown weights name);
 *   2. sampling settings: the model's generation_config, overrides, a seed
 *      from the clock unless one is given, bad values refused;
 *   3. limits: a prompt longer than the context (FS_SEQ_TOO_LONG, nothing
 *      changed), an id out of range, an empty prompt;
 *   4. greedy decoding through fs_session_argmax picks the tokens the
 *      sampler's greedy rule picks on the host logits;
 *   5. several sequences on one engine, their calls interleaved, give what
 *      each gives alone; fs_seq_reset restarts a sampled sequence exactly;
 *   6. a cancel flag raised from another thread during a long prefill
 *      stops it within a fraction of a second, the cache holding whole
 *      chunks (fs_seq_tokens says which), and a later sync reuses them.
 *
 * Docs: docs/generate.md
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "test.h"

#define DIR "models/tiny"

static fs_engine *g;

static fs_seq *seq(double temperature, uint64_t seed, int n_ctx) {
    fs_sampling o;
    memset(&o, 0, sizeof o);
    o.set = FS_SET_TEMPERATURE | FS_SET_SEED;
    o.p.temperature = temperature;
    o.p.seed = seed;
    fs_sampler_params sp;
    fs_seq *q = NULL;
    fs_err e = {{0}};
    if (fs_engine_sampler_params(g, &o, &sp, &e) || fs_seq_new(&q, g, n_ctx, &sp, &e))
        fprintf(stderr, "seq: %s\n", e.msg);
    return q;
}

static void test_open(void) {
    fs_err e = {{0}};
    fs_engine *x = NULL;
    CHECK(fs_engine_open(&x, "models/no-such-model", NULL, &e) == -1);
    CHECK(x == NULL && e.msg[0]);
    fs_engine_opts o = {NULL, 1, 128, "q5_1", FS_ENGINE_TOKENIZER, 0, NULL};
    CHECK(fs_engine_open(&x, DIR, &o, &e) == -1);
    CHECKF(strstr(e.msg, "q5_1") != NULL, "%s", e.msg);

    /* converted at load: the matrices become Q8_0, the norms stay */
    o.weights = "q8_0";
    o.tokenizer = FS_ENGINE_NO_TOKENIZER;
    CHECK(fs_engine_open(&x, DIR, &o, &e) == 0);
    if (x) {
        const fs_model *m = fs_engine_model(x);
        CHECK(m->layers[0].q_proj.dtype == FS_DTYPE_Q8_0);
        CHECK(fs_engine_tokenizer(x) == NULL);
        CHECK_EQ_INT(fs_engine_n_ctx(x), 128);
        int *ids = NULL, n = 0;
        CHECK(fs_engine_encode(x, "hi", 2, &ids, &n, &e) == -1); /* no tokenizer loaded */
        /* ids need no tokenizer */
        fs_seq *q = NULL;
        int some[3] = {1, 2, 3};
        CHECK(fs_seq_new(&q, x, 0, NULL, &e) == 0);
        CHECK(q && fs_seq_sync(q, some, 3, NULL, NULL, &e) == 0);
        fs_seq_gen go = {0};
        go.max_new_tokens = 2;
        CHECK(fs_seq_generate(q, some, 3, &go, NULL, &e) == -1); /* text out needs one */
        fs_seq_free(q);
        fs_engine_free(x);
    }
}

static void test_sampling(void) {
    fs_err e = {{0}};
    fs_sampler_params a, b;
    /* models/tiny/generation_config.json: temperature 0.8, top_k 40, top_p 0.95 */
    CHECK(fs_engine_sampler_params(g, NULL, &a, &e) == 0);
    CHECK_NEAR(a.temperature, 0.8, 0);
    CHECK_EQ_INT(a.top_k, 40);
    CHECK_NEAR(a.top_p, 0.95, 0);
    CHECK_NEAR(a.min_p, 0, 0);
    CHECK_NEAR(a.repetition_penalty, 1, 0);
    /* the seed comes from the clock: two calls, two seeds */
    struct timespec ts = {0, 2000};
    nanosleep(&ts, NULL);
    CHECK(fs_engine_sampler_params(g, NULL, &b, &e) == 0);
    CHECK(a.seed != b.seed);

    fs_sampling o;
    memset(&o, 0, sizeof o);
    o.set = FS_SET_TOP_K | FS_SET_SEED | FS_SET_PRESENCE_PENALTY;
    o.p.top_k = 3;
    o.p.seed = 42;
    o.p.presence_penalty = -0.5;
    o.p.temperature = 123; /* not set: ignored */
    CHECK(fs_engine_sampler_params(g, &o, &a, &e) == 0);
    CHECK_EQ_INT(a.top_k, 3);
    CHECK_EQ_INT(a.seed, 42);
    CHECK_NEAR(a.presence_penalty, -0.5, 0);
    CHECK_NEAR(a.temperature, 0.8, 0);
    o.set |= FS_SET_TOP_P;
    o.p.top_p = 0;
    CHECK(fs_engine_sampler_params(g, &o, &a, &e) == -1);
    CHECKF(strstr(e.msg, "top_p") != NULL, "%s", e.msg);
    /* without a model: the library's defaults */
    CHECK(fs_engine_sampler_params(NULL, NULL, &a, &e) == 0);
    CHECK_NEAR(a.temperature, 1, 0);
}

static void test_limits(void) {
    fs_err e = {{0}};
    fs_seq *q = seq(0, 1, 64);
    if (!q) return;
    CHECK_EQ_INT(fs_seq_n_ctx(q), 64);
    int ids[80];
    for (int i = 0; i < 80; i++) ids[i] = 100 + i;
    fs_seq_stats st;
    CHECK(fs_seq_sync(q, ids, 10, NULL, &st, &e) == 0);
    CHECK(fs_seq_sync(q, ids, 65, NULL, &st, &e) == FS_SEQ_TOO_LONG);
    CHECKF(strstr(e.msg, "65") && strstr(e.msg, "64"), "%s", e.msg);
    int n;
    fs_seq_tokens(q, &n);
    CHECK_EQ_INT(n, 10); /* nothing changed */
    CHECK(fs_seq_sync(q, ids, 64, NULL, &st, &e) == 0); /* a full context is fine for a sync */
    CHECK_EQ_INT(st.reused, 10);
    fs_chat_msg m = {"user", "Tell me everything about the river and the town and the people.", NULL, NULL, NULL};
    fs_seq_gen go = {0};
    go.max_new_tokens = 4;
    fs_seq *small = seq(0, 1, 8);
    CHECK(small && fs_seq_chat(small, &m, 1, 1, &go, &st, &e) == FS_SEQ_TOO_LONG);
    fs_seq_free(small);

    ids[3] = fs_engine_model(g)->cfg.vocab;
    CHECK(fs_seq_sync(q, ids, 5, NULL, &st, &e) == -1);
    CHECKF(strstr(e.msg, "out of range") != NULL, "%s", e.msg);
    fs_seq_tokens(q, &n);
    CHECK_EQ_INT(n, 64); /* refused before anything changed */
    CHECK(fs_seq_sync(q, ids, 0, NULL, &st, &e) == -1);
    fs_seq_free(q);
}

/* Greedy through fs_session_argmax (fs_generate's path for temperature 0)
 * against the sampler's greedy rule on the host logits, step by step. */
static void test_greedy_argmax(void) {
    fs_err e = {{0}};
    fs_seq *a = seq(0, 1, 256), *b = seq(0, 1, 256);
    if (!a || !b) return;
    int *prompt = NULL, n = 0;
    const char *text = "In the beginning God created the heaven and the earth.";
    CHECK(fs_engine_encode(g, text, strlen(text), &prompt, &n, &e) == 0);
    fs_seq_gen go = {0};
    go.max_new_tokens = 24;
    fs_seq_stats st;
    CHECK(fs_seq_generate(a, prompt, n, &go, &st, &e) == 0);
    const int *ids;
    int n_ids;
    fs_seq_last(a, &ids, &n_ids, NULL, NULL);
    CHECK(n_ids > 0);

    fs_sampler *smp = NULL;
    fs_sampler_params sp;
    fs_sampler_params_default(&sp, NULL);
    sp.temperature = 0;
    CHECK(fs_sampler_new(&smp, fs_engine_model(g)->cfg.vocab, &sp, &e) == 0);
    fs_session *s = fs_seq_session(b);
    CHECK(fs_session_eval(s, prompt, n, &e) == 0);
    int same = 0;
    for (int i = 0; i < n_ids; i++) {
        int id = fs_sampler_sample(smp, fs_session_logits(s), &e);
        same += id == ids[i];
        if (id != ids[i] || fs_session_eval(s, &id, 1, &e)) break;
    }
    CHECK_EQ_INT(same, n_ids);
    fs_sampler_free(smp);
    free(prompt);
    fs_seq_free(a);
    fs_seq_free(b);
}

/* Two sampled sequences whose calls alternate give what each gives alone. */
static void test_interleaved(void) {
    fs_err e = {{0}};
    const char *texts[2] = {"The river ran through the town", "And it came to pass"};
    int *p[2] = {NULL, NULL}, n[2] = {0, 0};
    for (int k = 0; k < 2; k++) CHECK(fs_engine_encode(g, texts[k], strlen(texts[k]), &p[k], &n[k], &e) == 0);
    fs_seq_gen go = {0};
    go.max_new_tokens = 12;
    int alone[2][3][16], n_alone[2][3];
    for (int k = 0; k < 2; k++) {
        fs_seq *q = seq(0.9, 100 + k, 256);
        for (int t = 0; t < 3 && q; t++) { /* three generations in a row on one sequence */
            const int *ids;
            CHECK(fs_seq_generate(q, p[k], n[k], &go, NULL, &e) == 0);
            fs_seq_last(q, &ids, &n_alone[k][t], NULL, NULL);
            memcpy(alone[k][t], ids, sizeof(int) * (size_t)n_alone[k][t]);
        }
        fs_seq_free(q);
    }
    fs_seq *q[2] = {seq(0.9, 100, 256), seq(0.9, 101, 256)};
    int agree = 0;
    for (int t = 0; t < 3; t++)
        for (int k = 0; k < 2; k++) {
            const int *ids;
            int m;
            CHECK(q[k] && fs_seq_generate(q[k], p[k], n[k], &go, NULL, &e) == 0);
            fs_seq_last(q[k], &ids, &m, NULL, NULL);
            agree += m == n_alone[k][t] && !memcmp(ids, alone[k][t], sizeof(int) * (size_t)m);
        }
    CHECK_EQ_INT(agree, 6);
    /* reset: the same sequence, the same seed, the same first generation */
    const int *ids;
    int m;
    fs_seq_reset(q[0]);
    int held;
    fs_seq_tokens(q[0], &held);
    CHECK_EQ_INT(held, 0);
    CHECK(fs_seq_generate(q[0], p[0], n[0], &go, NULL, &e) == 0);
    fs_seq_last(q[0], &ids, &m, NULL, NULL);
    CHECK(m == n_alone[0][0] && !memcmp(ids, alone[0][0], sizeof(int) * (size_t)m));
    for (int k = 0; k < 2; k++) {
        fs_seq_free(q[k]);
        free(p[k]);
    }
}

typedef struct canceller {
    volatile sig_atomic_t *flag;
    double delay_s, raised_at;
} canceller;

static void *raise_later(void *arg) {
    canceller *c = arg;
    struct timespec ts = {(time_t)c->delay_s, (long)((c->delay_s - (time_t)c->delay_s) * 1e9)};
    nanosleep(&ts, NULL);
    c->raised_at = fs_now();
    *c->flag = 1;
    return NULL;
}

static void test_cancel_thread(void) {
    fs_err e = {{0}};
    fs_engine *x = NULL;
    /* the CPU backend: a GPU would finish before there is anything to stop */
    fs_engine_opts o = {"cpu", 1, 2048, NULL, FS_ENGINE_NO_TOKENIZER, 0, NULL};
    CHECK(fs_engine_open(&x, DIR, &o, &e) == 0);
    if (!x) return;
    fs_seq *q = NULL;
    CHECK(fs_seq_new(&q, x, 0, NULL, &e) == 0);
    int n = 2000, *ids = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = (i * 31 + 7) % fs_engine_model(x)->cfg.vocab;
    /* how long the whole prefill takes here (sanitizers, a loaded machine) */
    double t0 = fs_now();
    CHECK(fs_seq_sync(q, ids, n, NULL, NULL, &e) == 0);
    double full = fs_now() - t0;
    fs_seq_reset(q);

    volatile sig_atomic_t flag = 0;
    fs_seq_set_cancel(q, &flag);
    canceller c = {&flag, 0.3 * full, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, raise_later, &c) == 0);
    fs_seq_stats st;
    t0 = fs_now();
    int r = fs_seq_sync(q, ids, n, NULL, &st, &e);
    double t1 = fs_now();
    pthread_join(th, NULL);
    int held;
    fs_seq_tokens(q, &held);
    CHECK_EQ_INT(r, 0);
    CHECK(st.stop == FS_STOP_CANCELLED);
    CHECKF(held < n && held == fs_session_pos(fs_seq_session(q)), "held %d of %d, pos %d", held, n,
           fs_session_pos(fs_seq_session(q)));
    /* stopped at a layer boundary: far sooner than the rest of the prefill */
    double late = t1 - c.raised_at;
    CHECKF(late < 0.5 && t1 - t0 < 0.9 * full, "full prefill %.3f s, raised at %.3f s, returned %.3f s later", full,
           c.raised_at - t0, late);
    printf("cancel: full prefill %.3f s; raised at %.3f s, returned %.4f s later with %d of %d tokens cached\n", full,
           c.raised_at - t0, late, held, n);

    flag = 0;
    CHECK(fs_seq_sync(q, ids, n, NULL, &st, &e) == 0);
    CHECK_EQ_INT(st.reused, held);
    CHECK(st.stop == FS_STOP_NONE);
    free(ids);
    fs_seq_free(q);
    fs_engine_free(x);
}

int main(void) {
    fs_err e = {{0}};
    fs_engine_opts o = {NULL, 1, 0, NULL, FS_ENGINE_TOKENIZER, 0, NULL};
    if (fs_engine_open(&g, DIR, &o, &e)) {
        fprintf(stderr, "test_engine: cannot open %s (run from the repository root): %s\n", DIR, e.msg);
        return 1;
    }
    test_open();
    test_sampling();
    test_limits();
    test_greedy_argmax();
    test_interleaved();
    test_cancel_thread();
    fs_engine_free(g);
    return TEST_SUMMARY();
}
