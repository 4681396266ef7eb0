/* test_generate.c - the stop-string matcher on fake text streams (against a
 * plain "find the first stop string in the whole text" reference), then the
 * generation loop on a tiny random model with the real tokenizer (written
 * by fs_mkmodel from tests/data/gen_tiny.json into a temp directory). When
 * the real tokenizer is not there (make tokenizer fetches it), the loop's
 * part is skipped and the program exits 77: "skipped" for tests/run.sh.
 *
 * Docs: docs/generate.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "generate.h"
#include "mkmodel.h"
#include "test.h"

/* --- a receiver that records every chunk --- */

typedef struct sink {
    char buf[8192];
    size_t n;
    int chunks;
    int bad_utf8;   /* a chunk that is not whole UTF-8 characters */
    int cancel_at;  /* return non-zero on this chunk (1-based); 0 = never */
    struct progress *progress; /* prefill progress calls, or NULL */
} sink;

static int whole_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k == 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static int sink_emit(void *user, const char *text, size_t len) {
    sink *k = user;
    if (len == 0) k->bad_utf8++; /* empty chunks should never be sent */
    if (!whole_utf8(text, len)) k->bad_utf8++;
    if (k->n + len < sizeof k->buf) {
        memcpy(k->buf + k->n, text, len);
        k->n += len;
        k->buf[k->n] = 0;
    }
    k->chunks++;
    return k->cancel_at && k->chunks >= k->cancel_at;
}

/* Feed pieces; return the final state. */
static int run_pieces(const char *const *stops, int n_stops, const char *const *pieces, int n_pieces,
                      sink *k) {
    fs_stopper m;
    fs_err e = {{0}};
    memset(k, 0, sizeof *k);
    if (fs_stopper_init(&m, stops, n_stops, 16, &e)) {
        fprintf(stderr, "stopper_init: %s\n", e.msg);
        return -1;
    }
    int r = FS_STOPPER_GO;
    for (int i = 0; i < n_pieces && r == FS_STOPPER_GO; i++)
        r = fs_stopper_feed(&m, pieces[i], strlen(pieces[i]), sink_emit, k);
    if (r == FS_STOPPER_GO) r = fs_stopper_flush(&m, sink_emit, k);
    fs_stopper_free(&m);
    return r;
}

static void test_stopper_cases(void) {
    sink k;
    const char *stop1[] = {"<|end|>"};
    const char *p1[] = {"Hello <", "|en", "d|> world"};
    CHECK_EQ_INT(run_pieces(stop1, 1, p1, 3, &k), FS_STOPPER_MATCHED);
    CHECK_STR(k.buf, "Hello ");

    /* a false start is released once it cannot match any more */
    const char *stop2[] = {"abc"};
    fs_stopper m;
    fs_err e = {{0}};
    CHECK_EQ_INT(fs_stopper_init(&m, stop2, 1, 16, &e), 0);
    memset(&k, 0, sizeof k);
    CHECK_EQ_INT(fs_stopper_feed(&m, "xa", 2, sink_emit, &k), FS_STOPPER_GO);
    CHECK_STR(k.buf, "x");          /* "a" might start "abc" */
    CHECK_EQ_INT(fs_stopper_feed(&m, "b", 1, sink_emit, &k), FS_STOPPER_GO);
    CHECK_STR(k.buf, "x");          /* "ab" still might */
    CHECK_EQ_INT(fs_stopper_feed(&m, "d", 1, sink_emit, &k), FS_STOPPER_GO);
    CHECK_STR(k.buf, "xabd");
    CHECK_EQ_INT(fs_stopper_feed(&m, "ab", 2, sink_emit, &k), FS_STOPPER_GO);
    CHECK_EQ_INT(fs_stopper_flush(&m, sink_emit, &k), FS_STOPPER_GO);
    CHECK_STR(k.buf, "xabdab");     /* end of text releases the held "ab" */
    fs_stopper_free(&m);

    /* overlapping prefix: "aab" with stop "ab" */
    const char *p3[] = {"a", "a", "b", "zzz"};
    CHECK_EQ_INT(run_pieces(stop2 + 0, 1, p3, 4, &k), FS_STOPPER_GO);
    CHECK_STR(k.buf, "aabzzz");
    const char *stop_ab[] = {"ab"};
    CHECK_EQ_INT(run_pieces(stop_ab, 1, p3, 4, &k), FS_STOPPER_MATCHED);
    CHECK_STR(k.buf, "a");

    /* several stop strings: the earliest in the text wins */
    const char *stops4[] = {"world", "lo w", "o"};
    const char *p4[] = {"hel", "lo world"};
    CHECK_EQ_INT(run_pieces(stops4, 3, p4, 2, &k), FS_STOPPER_MATCHED);
    CHECK_STR(k.buf, "hel");

    /* the stop string at the very start: nothing is emitted */
    const char *p5[] = {"STOP", "more"};
    const char *stop5[] = {"STOP"};
    CHECK_EQ_INT(run_pieces(stop5, 1, p5, 2, &k), FS_STOPPER_MATCHED);
    CHECK_EQ_INT(k.n, 0);
    CHECK_EQ_INT(k.chunks, 0);

    /* no stop strings: pieces pass straight through */
    const char *p6[] = {"a", "bc", "", "d"};
    CHECK_EQ_INT(run_pieces(NULL, 0, p6, 4, &k), FS_STOPPER_GO);
    CHECK_STR(k.buf, "abcd");
    CHECK_EQ_INT(k.chunks, 3);

    /* multi-byte: the hold-back never splits a character */
    const char *stop7[] = {"é!"};
    const char *p7[] = {"caf", "é", "é", "?", "é", "!", "x"};
    CHECK_EQ_INT(run_pieces(stop7, 1, p7, 7, &k), FS_STOPPER_MATCHED);
    CHECK_STR(k.buf, "caféé?");
    CHECK_EQ_INT(k.bad_utf8, 0);

    /* a piece longer than max_piece (16) is sliced at character boundaries */
    const char *stop8[] = {"ZZ"};
    const char *p8[] = {"ééééééééééééééééééééé€€€€€€€€😀😀😀😀😀😀 tail ZZ hidden"};
    CHECK_EQ_INT(run_pieces(stop8, 1, p8, 1, &k), FS_STOPPER_MATCHED);
    CHECK_STR(k.buf, "ééééééééééééééééééééé€€€€€€€€😀😀😀😀😀😀 tail ");
    CHECK_EQ_INT(k.bad_utf8, 0);

    /* the receiver can cancel */
    const char *p9[] = {"one ", "two ", "three"};
    memset(&k, 0, sizeof k);
    CHECK_EQ_INT(fs_stopper_init(&m, stop5, 1, 16, &e), 0);
    k.cancel_at = 2;
    CHECK_EQ_INT(fs_stopper_feed(&m, p9[0], 4, sink_emit, &k), FS_STOPPER_GO);
    CHECK_EQ_INT(fs_stopper_feed(&m, p9[1], 4, sink_emit, &k), FS_STOPPER_CANCELLED);
    fs_stopper_free(&m);

    /* bad stop strings */
    const char *bad1[] = {"ok", ""};
    CHECK_EQ_INT(fs_stopper_init(&m, bad1, 2, 16, &e), -1);
    CHECK(strstr(e.msg, "empty") != NULL);
    const char *bad2[] = {"\xff\xfe"};
    CHECK_EQ_INT(fs_stopper_init(&m, bad2, 1, 16, &e), -1);
    CHECK(strstr(e.msg, "UTF-8") != NULL);
}

/* Random texts over a small alphabet (so stop strings occur often), random
 * cuts, random stop strings; the emitted text must equal the text up to
 * the first stop string, every chunk must be whole characters, and at any
 * moment at most (longest stop - 1) bytes may be held back. */
static void test_stopper_random(void) {
    static const char *alpha[] = {"a", "b", "c", " ", "é", "€", "😀"};
    fs_rng r;
    fs_rng_seed(&r, 2024);
    int wrong = 0, matched = 0, held_too_much = 0, bad_utf8 = 0;
    for (int trial = 0; trial < 3000; trial++) {
        char text[512];
        size_t tn = 0;
        size_t cuts[128];
        int ncut = 0;
        int nchars = 1 + (int)(fs_rng_next(&r) % 60);
        for (int c = 0; c < nchars; c++) {
            const char *ch = alpha[fs_rng_next(&r) % 7];
            memcpy(text + tn, ch, strlen(ch));
            tn += strlen(ch);
            if (fs_rng_next(&r) % 3 == 0 && ncut < 127) cuts[ncut++] = tn; /* token ends here */
        }
        cuts[ncut++] = tn;
        text[tn] = 0;
        char stopbuf[3][32];
        const char *stops[3];
        int nst = (int)(fs_rng_next(&r) % 4);
        size_t max_stop = 0;
        for (int s = 0; s < nst; s++) {
            size_t sn = 0;
            int len = 1 + (int)(fs_rng_next(&r) % 4);
            for (int c = 0; c < len; c++) {
                const char *ch = alpha[fs_rng_next(&r) % 7];
                memcpy(stopbuf[s] + sn, ch, strlen(ch));
                sn += strlen(ch);
            }
            stopbuf[s][sn] = 0;
            stops[s] = stopbuf[s];
            if (sn > max_stop) max_stop = sn;
        }
        /* reference: earliest occurrence of any stop string */
        size_t expect = tn;
        for (int s = 0; s < nst; s++) {
            const char *f = strstr(text, stops[s]);
            if (f && (size_t)(f - text) < expect) expect = (size_t)(f - text);
        }
        int expect_match = expect < tn; /* stop strings are non-empty */

        fs_stopper m;
        fs_err e = {{0}};
        sink k;
        memset(&k, 0, sizeof k);
        if (fs_stopper_init(&m, stops, nst, 8, &e)) { wrong++; continue; }
        int st = FS_STOPPER_GO;
        size_t fed = 0;
        for (int c = 0; c < ncut && st == FS_STOPPER_GO; c++) {
            st = fs_stopper_feed(&m, text + fed, cuts[c] - fed, sink_emit, &k);
            fed = cuts[c];
            if (st == FS_STOPPER_GO && nst > 0 && fed - k.n > max_stop - 1) held_too_much++;
        }
        if (st == FS_STOPPER_GO) fs_stopper_flush(&m, sink_emit, &k);
        fs_stopper_free(&m);
        matched += st == FS_STOPPER_MATCHED;
        if ((st == FS_STOPPER_MATCHED) != expect_match || k.n != expect || memcmp(k.buf, text, expect) != 0) {
            if (wrong++ < 3)
                fprintf(stderr, "trial %d: text \"%s\" got \"%s\" expected %zu bytes\n", trial, text, k.buf, expect);
        }
        bad_utf8 += k.bad_utf8;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(held_too_much, 0);
    CHECK_EQ_INT(bad_utf8, 0);
    CHECKF(matched > 300 && matched < 2900, "matched %d of 3000: the random cases should mix both outcomes", matched);
}

/* --- the loop on a tiny random model --- */

typedef struct world {
    fs_model model;
    fs_tokenizer *tok;
    fs_forward *fwd;
    fs_session *sess;
    fs_sampler *smp;
} world;

static int setup(world *w, const char *dir, int n_ctx, fs_sampler_params *p) {
    fs_err e = {{0}};
    fs_forward_opts fo = {.n_threads = 1, .n_ctx = n_ctx};
    if (fs_model_load(&w->model, dir, &e) || fs_tokenizer_load(&w->tok, dir, &e) ||
        fs_forward_new(&w->fwd, &w->model, &fo, &e) || fs_session_new(&w->sess, w->fwd, n_ctx, &e) ||
        fs_sampler_new(&w->smp, w->model.cfg.vocab, p, &e)) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static void teardown(world *w) {
    fs_sampler_free(w->smp);
    fs_session_free(w->sess);
    fs_forward_free(w->fwd);
    fs_tokenizer_free(w->tok);
    fs_model_free(&w->model);
}

/* on_prefill: remember the calls */
typedef struct progress {
    int calls, last_done, last_total, bad_order;
} progress;
static void on_prefill(void *user, int done, int total) {
    progress *pr = ((sink *)user)->progress;
    if (!pr) return;
    if (done < pr->last_done || (pr->calls == 0 && done != 0)) pr->bad_order++;
    pr->calls++;
    pr->last_done = done;
    pr->last_total = total;
}

static int gen(world *w, const int *prompt, int n_prompt, fs_gen_opts *o, sink *k, int *ids,
               fs_gen_stats *st, fs_err *e) {
    memset(k, 0, sizeof *k);
    o->on_text = sink_emit;
    o->on_prefill = on_prefill;
    o->user = k;
    o->ids_out = ids;
    fs_session_truncate(w->sess, 0);
    fs_sampler_reset(w->smp);
    return fs_generate(w->sess, w->tok, w->smp, prompt, n_prompt, o, st, e);
}

/* The cache holds prompt + ids[0 .. n_ids - 1) and the session's logits
 * are those of its last token: what a fresh prefill of them gives. */
static void check_state(world *w, const int *prompt, int n_prompt, const int *ids, int n_ids, const char *what) {
    fs_err e = {{0}};
    int n = n_prompt + n_ids - 1, all[128];
    CHECKF(fs_session_pos(w->sess) == n, "%s: pos %d, expected %d", what, fs_session_pos(w->sess), n);
    if (n > 128 || fs_session_pos(w->sess) != n) return;
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    memcpy(all + n_prompt, ids, (size_t)(n_ids - 1) * sizeof *all);
    int V = w->model.cfg.vocab;
    float *got = malloc((size_t)V * sizeof *got);
    memcpy(got, fs_session_logits(w->sess), (size_t)V * sizeof *got);
    fs_session *fresh = NULL;
    CHECK_EQ_INT(fs_session_new(&fresh, w->fwd, 64, &e), 0);
    CHECK_EQ_INT(fs_session_eval(fresh, all, n, &e), 0);
    const float *want = fs_session_logits(fresh);
    double md = 0;
    for (int i = 0; i < V; i++) md = fabs((double)got[i] - want[i]) > md ? fabs((double)got[i] - want[i]) : md;
    CHECKF(md <= 1e-4, "%s: logits after generate vs a fresh prefill: %g", what, md);
    fs_session_free(fresh);
    free(got);
}

/* queued: run every check with the backend marked as queueing its work,
 * so generate.c takes the path a GPU takes (the step for token i queued
 * before token i is read, undone when it ends the text) - on the CPU,
 * which implements the same queued argmax. */
static void test_loop(const char *dir, int queued) {
    world w;
    memset(&w, 0, sizeof w);
    fs_sampler_params p;
    fs_sampler_params_default(&p, NULL);
    p.temperature = 0;
    if (setup(&w, dir, 64, &p)) { CHECK(0); return; }
    fs_forward_backend(w.fwd)->queues = queued;
    printf("generation loop, %s\n", queued ? "queued greedy steps" : "one step at a time");
    fs_err e = {{0}};
    int *prompt = NULL, n_prompt = 0;
    const char *text = "The quick brown fox";
    CHECK_EQ_INT(fs_tokenizer_encode(w.tok, text, strlen(text), &prompt, &n_prompt, &e), 0);

    /* greedy, no stops: the streamed text is the decode of the ids, and the
     * ids follow the argmax of a forward pass over the whole sequence */
    int ids[64], ids2[64];
    sink k, k2;
    fs_gen_stats st;
    fs_gen_opts o = {0};
    o.max_new_tokens = 12;
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k, ids, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_MAX_TOKENS);
    CHECK_EQ_INT(st.generated_tokens, 12);
    CHECK_EQ_INT(st.prompt_tokens, n_prompt);
    CHECK_EQ_INT(fs_session_pos(w.sess), n_prompt + 11); /* the last token is not evaluated */
    check_state(&w, prompt, n_prompt, ids, 12, "max tokens");
    CHECK(st.prefill_s > 0 && st.decode_s > 0);
    char *dec = NULL;
    size_t dlen = 0;
    /* ids >= the tokenizer's vocabulary (padding rows) decode to nothing in
     * the stream; drop them for the whole-decode comparison */
    int kept[64], nk = 0;
    for (int i = 0; i < 12; i++) if (ids[i] < fs_tokenizer_n_vocab(w.tok)) kept[nk++] = ids[i];
    CHECK_EQ_INT(fs_tokenizer_decode(w.tok, kept, nk, &dec, &dlen, &e), 0);
    CHECKF(dlen == k.n && memcmp(dec, k.buf, dlen) == 0, "stream \"%s\" vs decode \"%s\"", k.buf, dec);
    CHECK_EQ_INT(k.bad_utf8, 0);
    free(dec);

    int all[128];
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    memcpy(all + n_prompt, ids, 11 * sizeof *ids);
    fs_session_truncate(w.sess, 0);
    CHECK_EQ_INT(fs_session_eval(w.sess, all, n_prompt + 11, &e), 0);
    const float *lg = fs_session_logits(w.sess);
    int best = 0;
    for (int i = 1; i < w.model.cfg.vocab; i++) if (lg[i] > lg[best]) best = i;
    CHECK_EQ_INT(best, ids[11]);

    /* the same again: identical */
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK(memcmp(ids, ids2, sizeof(int) * 12) == 0);
    CHECK_STR(k.buf, k2.buf);

    /* a stop id: the 5th greedy token becomes "eos" */
    int stop_id = ids[4];
    int first = 0;
    while (ids[first] != stop_id) first++; /* it may occur earlier */
    o.stop_ids = &stop_id;
    o.n_stop_ids = 1;
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_EOS);
    CHECK_EQ_INT(st.stop_id, stop_id);
    CHECK_EQ_INT(st.generated_tokens, first + 1);
    check_state(&w, prompt, n_prompt, ids2, st.generated_tokens, "stopped by an id");
    o.stop_ids = NULL;
    o.n_stop_ids = 0;

    /* a stop string taken from the middle of the greedy text */
    if (k.n >= 6) {
        char stop[4];
        size_t at = k.n / 2;
        while (at < k.n && ((unsigned char)k.buf[at] & 0xC0) == 0x80) at++;
        size_t sl = 0;
        while (sl < 2 && at + sl < k.n) {
            uint32_t cp;
            int n = fs_utf8_decode((unsigned char *)k.buf + at + sl, k.n - at - sl, &cp);
            if (n == 0 || sl + (size_t)n > 3) break;
            sl += (size_t)n;
        }
        memcpy(stop, k.buf + at, sl);
        stop[sl] = 0;
        const char *stops[] = {stop};
        size_t expect = (size_t)(strstr(k.buf, stop) - k.buf);
        o.stop_strings = stops;
        o.n_stop_strings = 1;
        CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
        CHECK_EQ_INT(st.stop, FS_STOP_STRING);
        CHECKF(k2.n == expect && memcmp(k2.buf, k.buf, expect) == 0, "stop \"%s\": got \"%s\"", stop, k2.buf);
        CHECK(st.generated_tokens <= 12);
        check_state(&w, prompt, n_prompt, ids2, st.generated_tokens, "stopped by a string");
        o.stop_strings = NULL;
        o.n_stop_strings = 0;
    } else {
        CHECKF(0, "greedy text too short for the stop-string check: \"%s\"", k.buf);
    }

    /* max 0: prefill only */
    o.max_new_tokens = 0;
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_MAX_TOKENS);
    CHECK_EQ_INT(st.generated_tokens, 0);
    CHECK_EQ_INT(k2.n, 0);
    CHECK_EQ_INT(fs_session_pos(w.sess), n_prompt);

    /* context full: 64 slots; a 60-token prompt leaves room for 4 evals,
     * so 5 tokens are sampled (the last from the final logits) */
    int longp[64];
    for (int i = 0; i < 64; i++) longp[i] = prompt[i % n_prompt];
    o.max_new_tokens = 50;
    CHECK_EQ_INT(gen(&w, longp, 60, &o, &k2, ids2, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_CTX_FULL);
    CHECK_EQ_INT(st.generated_tokens, 5);
    CHECK_EQ_INT(fs_session_pos(w.sess), 64);
    /* exactly full prompt: one token, no eval */
    CHECK_EQ_INT(gen(&w, longp, 64, &o, &k2, ids2, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_CTX_FULL);
    CHECK_EQ_INT(st.generated_tokens, 1);
    /* too long: an error, nothing evaluated */
    int big[65];
    for (int i = 0; i < 65; i++) big[i] = prompt[0];
    CHECK_EQ_INT(gen(&w, big, 65, &o, &k2, ids2, &st, &e), -1);
    CHECK(strstr(e.msg, "does not fit") != NULL);
    CHECK_EQ_INT(st.stop, FS_STOP_ERROR);
    CHECK_EQ_INT(fs_session_pos(w.sess), 0);
    /* empty prompt */
    CHECK_EQ_INT(gen(&w, prompt, 0, &o, &k2, ids2, &st, &e), -1);
    CHECK(strstr(e.msg, "empty prompt") != NULL);

    /* prefill progress: (0, n) first, then (n, n) after the one chunk */
    progress pr = {0, 0, 0, 0};
    o.max_new_tokens = 2;
    memset(&k2, 0, sizeof k2);
    k2.progress = &pr;
    o.on_text = sink_emit;
    o.on_prefill = on_prefill;
    o.user = &k2;
    o.ids_out = ids2;
    fs_session_truncate(w.sess, 0);
    CHECK_EQ_INT(fs_generate(w.sess, w.tok, w.smp, prompt, n_prompt, &o, &st, &e), 0);
    CHECK_EQ_INT(pr.calls, 2);
    CHECK_EQ_INT(pr.bad_order, 0);
    CHECK_EQ_INT(pr.last_done, n_prompt);
    CHECK_EQ_INT(pr.last_total, n_prompt);

    /* cancel flag, set before the start: nothing prefilled, nothing sampled */
    volatile sig_atomic_t cancel = 1;
    o.cancel = &cancel;
    o.max_new_tokens = 10;
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_CANCELLED);
    CHECK_EQ_INT(st.generated_tokens, 0);
    CHECK_EQ_INT(fs_session_pos(w.sess), 0);
    CHECK_EQ_INT(k2.n, 0);
    /* the same flag given to the session: the forward pass itself stops */
    o.cancel = NULL;
    fs_session_set_cancel(w.sess, &cancel);
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_CANCELLED);
    CHECK_EQ_INT(st.generated_tokens, 0);
    fs_session_set_cancel(w.sess, NULL);
    /* the receiver cancels after its first chunk */
    memset(&k2, 0, sizeof k2);
    o.on_text = sink_emit;
    o.user = &k2;
    o.ids_out = ids2;
    k2.cancel_at = 1;
    fs_session_truncate(w.sess, 0);
    fs_sampler_reset(w.smp);
    CHECK_EQ_INT(fs_generate(w.sess, w.tok, w.smp, prompt, n_prompt, &o, &st, &e), 0);
    CHECK_EQ_INT(st.stop, FS_STOP_CANCELLED);
    CHECK_EQ_INT(k2.chunks, 1);

    /* sampling with a seed: reproducible, and a different seed differs */
    fs_sampler_free(w.smp);
    fs_sampler_params_default(&p, &w.model.cfg); /* Qwen3 defaults from generation_config */
    CHECK_NEAR(p.temperature, 0.6, 1e-9);
    CHECK_EQ_INT(p.top_k, 20);
    p.temperature = 1.5; /* random weights: make the draws matter */
    p.top_k = 0;
    p.top_p = 1;
    p.seed = 7;
    CHECK_EQ_INT(fs_sampler_new(&w.smp, w.model.cfg.vocab, &p, &e), 0);
    o.max_new_tokens = 10;
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k, ids, &st, &e), 0);
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK(memcmp(ids, ids2, sizeof(int) * 10) == 0);
    fs_sampler_free(w.smp);
    p.seed = 8;
    CHECK_EQ_INT(fs_sampler_new(&w.smp, w.model.cfg.vocab, &p, &e), 0);
    CHECK_EQ_INT(gen(&w, prompt, n_prompt, &o, &k2, ids2, &st, &e), 0);
    CHECK(memcmp(ids, ids2, sizeof(int) * 10) != 0);

    free(prompt);
    teardown(&w);
}

int main(void) {
    test_stopper_cases();
    test_stopper_random();

    const char *tokdir = getenv("FS_TOKENIZER_DIR");
    if (!tokdir || !*tokdir) tokdir = "models/qwen3-tokenizer";
    char tokfile[1024];
    if (fs_path_join(tokfile, sizeof tokfile, tokdir, "tokenizer.json") || !fs_file_exists(tokfile)) {
        printf("SKIP: the generation loop needs the Qwen3 tokenizer, %s is missing (make tokenizer)\n", tokfile);
        return TEST_SUMMARY() ? 1 : 77;
    }
    char dir[] = "/tmp/fs-test-generate.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return TEST_SUMMARY();
    }
    fs_mkmodel_opts mo = {0};
    mo.config_path = "tests/data/gen_tiny.json";
    mo.out_dir = dir;
    mo.seed = 3;
    mo.dtype = FS_DTYPE_BF16;
    mo.shards = 1;
    mo.tokenizer_dir = tokdir;
    fs_err e = {{0}};
    int ok = fs_mkmodel(&mo, &e) == 0;
    CHECKF(ok, "mkmodel: %s", e.msg);
    if (ok) {
        test_loop(dir, 0);
        test_loop(dir, 1);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return TEST_SUMMARY();
}
