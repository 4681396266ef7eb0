/* test_engine_step.c - stepped generation (engine.h: fs_seq_start,
 * fs_engine_step), what fs serve's continuous batching runs on, against
 * fs_seq_generate on models/tiny with the reference backend (where a
 * batched step must be bit for bit the separate evals):
 *
 *   1. several sequences with different prompts, stepped together with a
 *      small token budget (so prompts are prefilled over several steps
 *      while others decode), sample exactly the ids and text
 *      fs_seq_generate gives each alone - greedy, and seeded sampling with
 *      penalties;
 *   2. the callbacks: on_token hears every sampled id (with the logits it
 *      was drawn from when asked), on_text the same text fs_seq_last has;
 *   3. stop strings, max_new_tokens, eos stop a stepped sequence as they
 *      stop fs_generate;
 *   4. prefix caching: a second request that extends the first reuses its
 *      cache (status->reused) and still gives the from-scratch ids;
 *   5. fs_seq_stop ends a sequence between steps (cancelled); the others
 *      go on unchanged.
 *
 * Docs: docs/serve.md
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "test.h"

#define DIR "models/tiny"
#define N_SEQ 4

static fs_engine *g;

typedef struct {
    char text[4096];
    size_t n_text;
    int ids[512], n_ids, n_logits;
} heard;

static int on_text(void *user, const char *t, size_t n) {
    heard *h = user;
    if (h->n_text + n < sizeof h->text) memcpy(h->text + h->n_text, t, n), h->n_text += n;
    return 0;
}

static void on_token(void *user, int id, const float *logits) {
    heard *h = user;
    if (h->n_ids < 512) h->ids[h->n_ids++] = id;
    h->n_logits += logits != NULL;
}

static fs_sampler_params params(double temperature, uint64_t seed, double presence, double frequency) {
    fs_sampling o;
    memset(&o, 0, sizeof o);
    o.set = FS_SET_TEMPERATURE | FS_SET_SEED | FS_SET_PRESENCE_PENALTY | FS_SET_FREQUENCY_PENALTY;
    o.p.temperature = temperature;
    o.p.seed = seed;
    o.p.presence_penalty = presence;
    o.p.frequency_penalty = frequency;
    fs_sampler_params sp;
    fs_err e = {{0}};
    if (fs_engine_sampler_params(g, &o, &sp, &e)) fprintf(stderr, "params: %s\n", e.msg);
    return sp;
}

static int *encode(const char *text, int *n) {
    int *ids = NULL;
    fs_err e = {{0}};
    if (fs_engine_encode(g, text, strlen(text), &ids, n, &e)) fprintf(stderr, "encode: %s\n", e.msg);
    return ids;
}

/* What fs_seq_generate gives alone, on a fresh sequence. */
static void alone(const int *ids, int n, const fs_sampler_params *sp, int max_new, const char *stop, heard *out,
                  fs_seq_stats *st) {
    fs_seq *q = NULL;
    fs_err e = {{0}};
    memset(out, 0, sizeof *out);
    if (fs_seq_new(&q, g, 256, sp, &e)) return;
    const char *stops[1] = {stop};
    fs_seq_gen go = {0};
    go.max_new_tokens = max_new;
    go.stop_strings = stops;
    go.n_stop_strings = stop ? 1 : 0;
    go.on_text = on_text;
    go.user = out;
    CHECK(fs_seq_generate(q, ids, n, &go, st, &e) == 0);
    const int *got;
    fs_seq_last(q, &got, &out->n_ids, NULL, NULL);
    memcpy(out->ids, got, (size_t)out->n_ids * sizeof *got);
    fs_seq_free(q);
}

static void test_batched_equals_alone(int budget) {
    static const char *prompts[N_SEQ] = {
        "The old house at the end of the lane was",
        "Once upon a time",
        "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
        "darkness was upon the face of the deep.",
        "It is a truth universally acknowledged, that a single man",
    };
    fs_sampler_params sps[N_SEQ] = {params(0, 1, 0, 0), params(0.8, 7, 0, 0), params(0, 2, 0.5, 0.3),
                                    params(1.1, 3, 0.2, 0.4)};
    const char *stops[N_SEQ] = {NULL, NULL, NULL, " the"};
    int max_new[N_SEQ] = {20, 25, 15, 30};
    fs_seq *qs[N_SEQ];
    heard got[N_SEQ], want[N_SEQ];
    int *ids[N_SEQ], n[N_SEQ];
    fs_seq_stats want_st[N_SEQ];
    fs_err e = {{0}};
    for (int i = 0; i < N_SEQ; i++) {
        ids[i] = encode(prompts[i], &n[i]);
        alone(ids[i], n[i], &sps[i], max_new[i], stops[i], &want[i], &want_st[i]);
        CHECK(fs_seq_new(&qs[i], g, 256, NULL, &e) == 0);
        CHECK(fs_seq_set_sampler_params(qs[i], &sps[i], &e) == 0);
        memset(&got[i], 0, sizeof got[i]);
    }
    /* the sequences start at different steps, as requests arrive; the
     * stop strings must outlive their generation (engine.h) */
    const char *stop_lists[N_SEQ][1];
    int steps = 0, started = 0;
    for (;;) {
        if (started < N_SEQ && steps % 3 == 0) {
            int i = started++;
            stop_lists[i][0] = stops[i];
            fs_seq_gen go = {0};
            go.max_new_tokens = max_new[i];
            go.stop_strings = stops[i] ? stop_lists[i] : NULL;
            go.n_stop_strings = stops[i] ? 1 : 0;
            go.on_text = on_text;
            go.on_token = on_token;
            go.want_logits = i == 1;
            go.user = &got[i];
            CHECK(fs_seq_start(qs[i], ids[i], n[i], 0, &go, &e) == 0);
            CHECK(fs_seq_running(qs[i]));
        }
        int r = fs_engine_step(g, qs, N_SEQ, budget, &e);
        CHECKF(r >= 0, "step: %s", e.msg);
        steps++;
        if (r <= 0 && started == N_SEQ) break;
        if (steps > 1000) break;
    }
    for (int i = 0; i < N_SEQ; i++) {
        const fs_seq_stats *st = fs_seq_status(qs[i]);
        CHECKF(got[i].n_ids == want[i].n_ids && !memcmp(got[i].ids, want[i].ids, (size_t)want[i].n_ids * sizeof(int)),
               "budget %d, sequence %d: %d ids stepped, %d alone", budget, i, got[i].n_ids, want[i].n_ids);
        CHECKF(got[i].n_text == want[i].n_text && !memcmp(got[i].text, want[i].text, want[i].n_text),
               "budget %d, sequence %d: text [%.*s] vs [%.*s]", budget, i, (int)got[i].n_text, got[i].text,
               (int)want[i].n_text, want[i].text);
        CHECK(st->stop == want_st[i].stop && st->generated == want_st[i].generated);
        CHECK(st->prompt_tokens == n[i] && st->reused == 0 && st->prefilled == n[i]);
        CHECK(!fs_seq_running(qs[i]));
        const char *text;
        size_t len;
        fs_seq_last(qs[i], NULL, NULL, &text, &len);
        CHECK(len == got[i].n_text && !memcmp(text, got[i].text, len));
    }
    CHECK(got[1].n_logits == got[1].n_ids && got[0].n_logits == 0);
    CHECK(want_st[3].stop == FS_STOP_STRING || want_st[3].stop == FS_STOP_MAX_TOKENS);

    /* 4. the next request extends sequence 0's: its prefix is reused */
    int n_all = n[0] + got[0].n_ids - 1;
    int *all = malloc((size_t)n_all * sizeof *all);
    memcpy(all, ids[0], (size_t)n[0] * sizeof *all);
    memcpy(all + n[0], got[0].ids, (size_t)(got[0].n_ids - 1) * sizeof *all);
    heard again = {0}, fresh;
    fs_seq_stats fresh_st;
    alone(all, n_all, &sps[0], 10, NULL, &fresh, &fresh_st);
    fs_seq_gen go = {0};
    go.max_new_tokens = 10;
    go.on_text = on_text;
    go.on_token = on_token;
    go.user = &again;
    CHECK(fs_seq_start(qs[0], all, n_all, 0, &go, &e) == 0);
    while (fs_engine_step(g, qs, 1, budget, &e) > 0) {}
    CHECKF(fs_seq_status(qs[0])->reused == n_all - 1, "reused %d of %d", fs_seq_status(qs[0])->reused, n_all);
    CHECK(again.n_ids == fresh.n_ids && !memcmp(again.ids, fresh.ids, (size_t)fresh.n_ids * sizeof(int)));
    free(all);

    for (int i = 0; i < N_SEQ; i++) {
        fs_seq_free(qs[i]);
        free(ids[i]);
    }
}

static void test_stop(void) {
    fs_seq *a = NULL, *b = NULL;
    fs_err e = {{0}};
    fs_sampler_params sp = params(0, 1, 0, 0);
    CHECK(fs_seq_new(&a, g, 128, &sp, &e) == 0 && fs_seq_new(&b, g, 128, &sp, &e) == 0);
    int n, *ids = encode("Once upon a time", &n);
    heard ha = {0}, hb = {0}, want;
    fs_seq_stats st;
    alone(ids, n, &sp, 12, NULL, &want, &st);
    fs_seq_gen go = {0};
    go.max_new_tokens = 12;
    go.on_token = on_token;
    go.user = &ha;
    CHECK(fs_seq_start(a, ids, n, 0, &go, &e) == 0);
    go.user = &hb;
    CHECK(fs_seq_start(b, ids, n, 0, &go, &e) == 0);
    CHECK(fs_seq_start(b, ids, n, 0, &go, &e) == -1); /* one generation at a time */
    fs_seq *qs[2] = {a, b};
    for (int k = 0; k < 4; k++) fs_engine_step(g, qs, 2, 0, &e);
    fs_seq_stop(a);
    CHECK(!fs_seq_running(a) && fs_seq_status(a)->stop == FS_STOP_CANCELLED);
    while (fs_engine_step(g, qs, 2, 0, &e) > 0) {}
    CHECK(ha.n_ids == 4 && hb.n_ids == want.n_ids && !memcmp(hb.ids, want.ids, (size_t)want.n_ids * sizeof(int)));
    int n_cached;
    fs_seq_tokens(a, &n_cached);
    CHECK_EQ_INT(n_cached, n + 3); /* the prompt and the tokens fed back; the 4th was never evaluated */
    /* a prompt over the context: refused, nothing starts */
    int *big = calloc(200, sizeof *big);
    CHECK(fs_seq_start(a, big, 200, 0, &go, &e) == FS_SEQ_TOO_LONG && !fs_seq_running(a));
    free(big);
    free(ids);
    fs_seq_free(a);
    fs_seq_free(b);
}

int main(void) {
    fs_err e = {{0}};
    fs_engine_opts o = {"cpu-ref", 1, 256, NULL, FS_ENGINE_TOKENIZER, N_SEQ, NULL};
    if (fs_engine_open(&g, DIR, &o, &e)) {
        fprintf(stderr, "test_engine_step: %s\n", e.msg);
        return 1;
    }
    test_batched_equals_alone(0);
    test_batched_equals_alone(7);
    test_stop();
    fs_engine_free(g);
    return TEST_SUMMARY();
}
