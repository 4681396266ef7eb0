/* test_chat_reuse.c - a sequence that reuses its KV cache (engine.h) gives
 * the same logits as prefilling the same ids from scratch.
 *
 * A chat renders the whole conversation every turn; the sequence keeps
 * the longest common prefix of the new ids and the ids in its cache,
 * truncates there and prefills only the rest (src/engine.c). Here, on
 * models/tiny, after every such step the logits the sampler would see are
 * compared with those of a fresh sequence that prefills the ids the first
 * one says its cache holds (fs_seq_tokens). Cases:
 *   - a greedy reply (the cache holds the sampled ids), then turn 2;
 *   - a reply with a <think> block, which the template drops from the
 *     re-rendered history: the cache diverges right after turn 1's
 *     generation prompt;
 *   - a re-render identical to the cache: one token is evaluated again so
 *     there are logits to sample from;
 *   - fs_conversation itself over three turns (thinking switched off for
 *     the last), and a turn cancelled before its first token, which leaves
 *     no messages behind;
 *   - the same model with another chat template (chat_template.jinja):
 *     the prompt is that template's, and turn 2 still reuses the prefix;
 *   - a prefill cancelled between two chunks: the cache holds exactly the
 *     chunk that finished, and the next sync reuses it.
 *
 * Bound: the two sequences do the same arithmetic on the same cached K/V,
 * except that the suffix and the whole prompt are different batches, and
 * the CPU matmul may group a batch's rows differently, so float sums can
 * round differently. Measured: max |diff| 7.6e-6 (logits of size ~10).
 * The test allows 1e-4, far below the margins that decide a greedy pick,
 * and far above rounding; a wrong position, a stale cache row or a missing
 * truncate moves logits by O(1). The caches are f32 (--kv f32): with the
 * cpu backend's default f16 cache, a 1e-6 difference in a K or V value
 * can round it to the neighbouring f16, and the logits then differ by up
 * to ~5e-4 (measured) - rounding, not reuse, which is what this tests.
 *
 * Docs: docs/chat.md, docs/kv-cache.md
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "test.h"

#define TOL 1e-4
#define N_CTX 2048

static fs_engine *g;
static double worst;

static fs_seq *new_seq(double temperature) {
    fs_sampling o;
    memset(&o, 0, sizeof o);
    o.set = FS_SET_TEMPERATURE | FS_SET_SEED;
    o.p.temperature = temperature;
    o.p.seed = 7;
    fs_sampler_params sp;
    fs_seq *q = NULL;
    fs_err e = {{0}};
    if (fs_engine_sampler_params(g, &o, &sp, &e) || fs_seq_new(&q, g, N_CTX, &sp, &e))
        fprintf(stderr, "seq: %s\n", e.msg);
    return q;
}

static int render(const fs_chat_msg *m, size_t n, int think, int **ids, int *n_ids) {
    fs_err e = {{0}};
    if (fs_engine_chat_prompt(g, m, n, think, ids, n_ids, &e)) {
        fprintf(stderr, "render: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* q's session holds what q says it holds, and its logits are those of a
 * fresh prefill of those ids. */
static void check_cache(fs_seq *q) {
    fs_err e = {{0}};
    int n;
    const int *ids = fs_seq_tokens(q, &n);
    CHECK_EQ_INT(fs_session_pos(fs_seq_session(q)), n);
    fs_seq *b = new_seq(0);
    CHECK(b && fs_seq_sync(b, ids, n, NULL, NULL, &e) == 0);
    const float *la = fs_session_logits(fs_seq_session(q)), *lb = fs_session_logits(fs_seq_session(b));
    double md = 0;
    for (int v = 0; v < fs_engine_model(g)->cfg.vocab; v++) {
        double d = fabs((double)la[v] - lb[v]);
        if (d > md || d != d) md = d;
    }
    CHECKF(md <= TOL, "reused cache vs fresh prefill of %d tokens: max |logit diff| %.3g", n, md);
    if (md > worst) worst = md;
    fs_seq_free(b);
}

static void case_greedy(void) {
    fs_err e = {{0}};
    fs_seq *a = new_seq(0);
    fs_chat_msg m[3] = {{"user", "Tell me about the river.", NULL, NULL, NULL},
                        {"assistant", NULL, NULL, NULL, NULL},
                        {"user", "And then what happened?", NULL, NULL, NULL}};
    fs_seq_gen go = {0};
    go.max_new_tokens = 24;
    fs_seq_stats st;
    CHECK(fs_seq_chat(a, m, 1, 1, &go, &st, &e) == 0);
    CHECK(st.generated > 0);
    CHECK_EQ_INT(st.reused, 0);
    int n1 = st.prompt_tokens, nc;
    fs_seq_tokens(a, &nc);
    CHECK_EQ_INT(nc, n1 + st.generated - 1); /* the last sampled token is never evaluated */
    check_cache(a);

    const char *reply;
    size_t len;
    fs_seq_last(a, NULL, NULL, &reply, &len);
    char *r = malloc(len + 1);
    memcpy(r, reply, len);
    r[len] = 0;
    m[1].content = r;
    int *ids2 = NULL, n2 = 0;
    CHECK(render(m, 3, 1, &ids2, &n2) == 0);
    CHECK(fs_seq_sync(a, ids2, n2, NULL, &st, &e) == 0);
    CHECKF(st.reused >= n1, "reused %d, turn 1 prompt was %d tokens", st.reused, n1);
    CHECK_EQ_INT(st.reused + st.prefilled, n2);
    check_cache(a);
    printf("greedy reply: turn 2 is %d tokens, %d reused, %d prefilled\n", n2, st.reused, st.prefilled);
    free(ids2);
    free(r);
    fs_seq_free(a);
}

static void case_think_stripped(void) {
    fs_err e = {{0}};
    fs_seq *a = new_seq(0);
    const char *reply = "<think>\nThe user greets me.\n</think>\n\nGood day to you.";
    fs_chat_msg m[3] = {{"user", "Good morning.", NULL, NULL, NULL},
                        {"assistant", reply, NULL, NULL, NULL},
                        {"user", "How are you?", NULL, NULL, NULL}};
    int *ids1 = NULL, n1 = 0, *rid = NULL, nr = 0;
    CHECK(render(m, 1, 1, &ids1, &n1) == 0);
    CHECK(fs_engine_encode(g, reply, strlen(reply), &rid, &nr, &e) == 0);
    /* the cache as a chat turn leaves it: prompt + the reply's ids */
    int cached[N_CTX], nc = 0;
    for (int i = 0; i < n1; i++) cached[nc++] = ids1[i];
    for (int i = 0; i < nr; i++) cached[nc++] = rid[i];
    CHECK(fs_seq_sync(a, cached, nc, NULL, NULL, &e) == 0);

    int *ids2 = NULL, n2 = 0;
    fs_seq_stats st;
    CHECK(render(m, 3, 1, &ids2, &n2) == 0);
    CHECK(fs_seq_sync(a, ids2, n2, NULL, &st, &e) == 0);
    /* the re-render has no reasoning, so it diverges where the reply began */
    CHECK_EQ_INT(st.reused, n1);
    check_cache(a);
    printf("think stripped: cache %d tokens, turn 2 is %d tokens, %d reused\n", nc, n2, st.reused);
    free(ids1);
    free(ids2);
    free(rid);
    fs_seq_free(a);
}

static void case_identical(void) {
    fs_err e = {{0}};
    fs_seq *a = new_seq(0);
    fs_chat_msg m[1] = {{"user", "Once more.", NULL, NULL, NULL}};
    int *ids = NULL, n = 0;
    fs_seq_stats st;
    CHECK(render(m, 1, 0, &ids, &n) == 0);
    CHECK(fs_seq_sync(a, ids, n, NULL, &st, &e) == 0);
    CHECK_EQ_INT(st.reused, 0);
    CHECK(fs_seq_sync(a, ids, n, NULL, &st, &e) == 0);
    CHECK_EQ_INT(st.reused, n - 1);
    CHECK_EQ_INT(st.prefilled, 1);
    check_cache(a);
    free(ids);
    fs_seq_free(a);
}

static void case_conversation(void) {
    fs_err e = {{0}};
    fs_seq *q = new_seq(0);
    fs_conversation *c = NULL;
    CHECK(fs_conversation_new(&c, q, &e) == 0);
    /* models/tiny's default (tokenizer_config.json "enable_thinking": false) */
    CHECK_EQ_INT(fs_conversation_thinking(c), FS_THINK_OFF);
    CHECK_EQ_INT(fs_conversation_think(c), 0);
    /* thinking on: the template renders turn 1's reply as it was generated, so
     * turn 2 can reuse all of it (off, it drops that reply's empty think block) */
    fs_conversation_set_think(c, 1);
    fs_seq_gen go = {0};
    go.max_new_tokens = 10;
    fs_seq_stats st;
    CHECK(fs_conversation_turn(c, "Hello there", &go, &st, &e) == 0);
    CHECK_EQ_INT(st.reused, 0);
    int first_prompt = st.prompt_tokens, after1;
    fs_seq_tokens(q, &after1);
    CHECK_EQ_INT(after1, first_prompt + 10 - 1); /* -n 10: the 10th token is not evaluated */
    check_cache(q);

    CHECK(fs_conversation_turn(c, "What did you see?", &go, &st, &e) == 0);
    CHECKF(st.reused >= first_prompt, "turn 2 reused %d of turn 1's %d prompt tokens", st.reused, first_prompt);
    printf("conversation turn 2: %d reused (cache after turn 1: %d), %d prefilled\n", st.reused, after1,
           st.prefilled);
    check_cache(q);

    /* a turn cancelled before its first token leaves no trace in the history */
    volatile sig_atomic_t stop = 1;
    fs_seq_set_cancel(q, &stop);
    CHECK(fs_conversation_turn(c, "Never mind.", &go, &st, &e) == 0);
    CHECK(st.stop == FS_STOP_CANCELLED);
    CHECK_EQ_INT(st.generated, 0);
    CHECK_EQ_INT(fs_conversation_turns(c), 2);
    int held;
    fs_seq_tokens(q, &held); /* the common prefix it truncated to; nothing evaluated */
    CHECK_EQ_INT(fs_session_pos(fs_seq_session(q)), held);
    stop = 0;

    /* /think or /no_think: the generation prompt gains or loses the empty think block */
    fs_conversation_set_think(c, !fs_conversation_think(c));
    CHECK(fs_conversation_turn(c, "Go on.", &go, &st, &e) == 0);
    CHECK_EQ_INT(fs_conversation_turns(c), 3);
    CHECK(st.reused > after1);
    check_cache(q);
    const char *reply;
    size_t len;
    fs_seq_last(q, NULL, NULL, &reply, &len);
    CHECK(len > 0);

    /* invalid UTF-8 is refused before anything runs, with the offset into what was typed */
    int before;
    fs_seq_tokens(q, &before);
    CHECK(fs_conversation_turn(c, "ok \xff", &go, &st, &e) == -1);
    CHECKF(strstr(e.msg, "byte 3") != NULL, "message: %s", e.msg);
    CHECK_EQ_INT(fs_conversation_turns(c), 3);
    int after;
    fs_seq_tokens(q, &after);
    CHECK_EQ_INT(after, before);

    fs_conversation_reset(c);
    fs_seq_tokens(q, &after);
    CHECK_EQ_INT(after, 0);
    CHECK_EQ_INT(fs_conversation_turns(c), 0);
    fs_conversation_free(c);
    fs_seq_free(q);
}

/* Reuse knows no template: the same model with another chat template
 * (a chat_template.jinja beside it, which wins over tokenizer_config.json)
 * renders its own format, and turn 2 still reuses the common prefix. */
static void case_other_template(void) {
    fs_err e = {{0}};
    char dir[] = "/tmp/fs_reuse_XXXXXX", src[4096], dst[4096];
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "generation_config.json"};
    char cwd[2048];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(src, sizeof src, "%s/models/tiny/%s", cwd, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        CHECK(symlink(src, dst) == 0);
    }
    snprintf(dst, sizeof dst, "%s/chat_template.jinja", dir);
    FILE *f = fopen(dst, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{%- for m in messages %}<|im_start|>{{ m.role | upper }}: {{ m.content | trim }}<|im_end|>\n{% endfor %}"
              "{%- if add_generation_prompt %}<|im_start|>ASSISTANT: {% endif %}\n", f);
        fclose(f);
    }
    fs_engine *saved = g;
    fs_engine_opts o = {.n_threads = 1, .n_ctx = N_CTX, .tokenizer = FS_ENGINE_TOKENIZER, .kv = "f32"};
    if (fs_engine_open(&g, dir, &o, &e)) {
        CHECKF(0, "%s", e.msg);
        g = saved;
        return;
    }
    fs_chat_msg m = {"user", "  Hello there ", NULL, NULL, NULL};
    int *ids = NULL, n = 0, *want = NULL, nw = 0;
    const char *text = "<|im_start|>USER: Hello there<|im_end|>\n<|im_start|>ASSISTANT: ";
    CHECK(fs_engine_chat_prompt(g, &m, 1, 1, &ids, &n, &e) == 0);
    CHECK(fs_engine_encode(g, text, strlen(text), &want, &nw, &e) == 0);
    CHECKF(n == nw && n > 0 && !memcmp(ids, want, (size_t)n * sizeof *ids), "the prompt is not the template's (%d vs %d ids)", n, nw);
    free(ids);
    free(want);

    fs_seq *q = new_seq(0);
    fs_conversation *c = NULL;
    CHECK(fs_conversation_new(&c, q, &e) == 0);
    fs_seq_gen go = {0};
    go.max_new_tokens = 8;
    fs_seq_stats st;
    CHECK(fs_conversation_turn(c, "Hello there", &go, &st, &e) == 0);
    int first_prompt = st.prompt_tokens;
    CHECK(fs_conversation_turn(c, "And then?", &go, &st, &e) == 0);
    CHECKF(st.reused >= first_prompt - 1, "turn 2 reused %d of turn 1's %d prompt tokens", st.reused, first_prompt);
    printf("another template: turn 2 reused %d tokens (turn 1's prompt: %d)\n", st.reused, first_prompt);
    check_cache(q);
    fs_conversation_free(c);
    fs_seq_free(q);
    fs_engine_free(g);
    g = saved;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        unlink(dst);
    }
    snprintf(dst, sizeof dst, "%s/chat_template.jinja", dir);
    unlink(dst);
    rmdir(dir);
}

/* on_prefill: raise the flag once the first chunk is in. */
static void stop_after_first_chunk(void *user, int done, int total) {
    (void)total;
    if (done >= FS_PREFILL_CHUNK) *(volatile sig_atomic_t *)user = 1;
}

static void case_cancel_between_chunks(void) {
    fs_err e = {{0}};
    fs_seq *q = new_seq(0);
    int ids[3 * FS_PREFILL_CHUNK / 2];
    int n = (int)(sizeof ids / sizeof ids[0]), V = fs_engine_model(g)->cfg.vocab;
    for (int i = 0; i < n; i++) ids[i] = (i * 7919 + 13) % V;
    volatile sig_atomic_t stop = 0;
    fs_seq_set_cancel(q, &stop);
    fs_seq_gen go = {0};
    go.on_prefill = stop_after_first_chunk;
    go.user = (void *)&stop;
    fs_seq_stats st;
    CHECK(fs_seq_sync(q, ids, n, &go, &st, &e) == 0);
    CHECK(st.stop == FS_STOP_CANCELLED);
    CHECK_EQ_INT(st.prefilled, FS_PREFILL_CHUNK); /* what was evaluated, not what was planned */
    int held;
    const int *t = fs_seq_tokens(q, &held);
    CHECK_EQ_INT(held, FS_PREFILL_CHUNK);
    CHECK(memcmp(t, ids, sizeof(int) * FS_PREFILL_CHUNK) == 0);
    CHECK_EQ_INT(fs_session_pos(fs_seq_session(q)), FS_PREFILL_CHUNK);

    stop = 0;
    go.on_prefill = NULL;
    CHECK(fs_seq_sync(q, ids, n, &go, &st, &e) == 0);
    CHECK(st.stop == FS_STOP_NONE);
    CHECK_EQ_INT(st.reused, FS_PREFILL_CHUNK);
    check_cache(q);
    fs_seq_free(q);
}

int main(void) {
    fs_err e = {{0}};
    const char *dir = "models/tiny";
    fs_engine_opts o = {NULL, 1, N_CTX, NULL, FS_ENGINE_TOKENIZER, 0, "f32"};
    if (fs_engine_open(&g, dir, &o, &e)) {
        fprintf(stderr, "test_chat_reuse: cannot open %s (run from the repository root): %s\n", dir, e.msg);
        return 1;
    }
    case_greedy();
    case_think_stripped();
    case_identical();
    case_conversation();
    case_other_template();
    case_cancel_between_chunks();
    printf("largest |logit diff| between reuse and from-scratch prefill: %.3g (bound %.0e)\n", worst, TOL);
    fs_engine_free(g);
    return TEST_SUMMARY();
}
