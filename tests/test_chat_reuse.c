/* test_chat_reuse.c - `fs chat`'s KV cache reuse gives the same logits as
 * prefilling the whole conversation from scratch.
 *
 * fs chat (cli/cmd_chat.c) renders the whole conversation every turn,
 * keeps the longest common prefix of the new ids and the ids in the cache,
 * truncates the cache there and prefills only the rest. This test does the
 * same steps with the library on models/tiny:
 *
 *   session A: turn 1 prompt, a reply, then turn 2 via truncate + suffix
 *   session B: the whole turn-2 prompt prefilled at once
 *
 * and compares the logits of every suffix position (fs_session_eval_debug).
 * Cases: a greedy reply (the cache holds the sampled ids); a reply with a
 * <think> block, which the template drops from the re-rendered history, so
 * the cache diverges right after turn 1's generation prompt; and a
 * re-render identical to the cache (one token is re-evaluated so there are
 * logits to sample from). Then the same through cmd_chat.c's own turn()
 * (three turns, thinking switched off for the last): after each turn the
 * session's logits equal a fresh prefill of the ids chat believes are
 * cached. Last, the terminal display: <think>...</think> is dimmed even
 * when the tags arrive split across pieces, and piped output is verbatim.
 *
 * Bound: the two sessions do the same arithmetic on the same cached K/V,
 * except that A's suffix and B's whole prompt are different batches, and
 * the CPU matmul may group a batch's rows differently, so float sums can
 * round differently. Measured: max |diff| 7.6e-6 (logits of size ~10).
 * The test allows 1e-4, far below the margins that decide a greedy pick,
 * and far above rounding; a wrong position, a stale cache row or a missing
 * truncate moves logits by O(1).
 *
 * Docs: docs/chat.md, docs/kv-cache.md
 */
/* The chat command's own code is compiled in, so its turn() and display
 * logic are tested as they are (they are static to cli/cmd_chat.c). cli.c
 * first: it sets _XOPEN_SOURCE before any system header. */
#include "../cli/cli.c"
#include "../cli/cmd_chat.c"

#include <stdlib.h>
#include <unistd.h>

#include "chat_template.h"
#include "forward.h"
#include "generate.h"
#include "model.h"
#include "sampler.h"
#include "test.h"
#include "tokenizer.h"

#define TOL 1e-4
#define N_CTX 512

static fs_model model;
static fs_tokenizer *tok;
static double worst;

static int render(const fs_chat_msg *m, size_t n, int think, int **ids, int *n_ids) {
    fs_err e = {{0}};
    char *text = NULL;
    if (fs_chat_render(m, n, 1, think, &text, &e) ||
        fs_tokenizer_encode(tok, text, strlen(text), ids, n_ids, &e)) {
        fprintf(stderr, "render: %s\n", e.msg);
        free(text);
        return -1;
    }
    free(text);
    return 0;
}

static fs_session *new_session(void) {
    fs_session *s = NULL;
    fs_err e = {{0}};
    fs_session_opts o = {N_CTX, NULL, 1};
    if (fs_session_new(&s, &model, &o, &e)) fprintf(stderr, "session: %s\n", e.msg);
    return s;
}

/* Session A holds cached[0..n_cached). Continue it to the conversation
 * ids[0..n) the chat way, and compare every new position's logits with a
 * fresh session B that prefills ids at once. Returns the reused count. */
static int reuse_and_compare(fs_session *a, const int *cached, int n_cached, const int *ids, int n) {
    fs_err e = {{0}};
    int V = model.cfg.vocab;
    int p = 0;
    while (p < n_cached && p < n && cached[p] == ids[p]) p++;
    if (p == n) p--;
    fs_session_truncate(a, p);
    CHECK_EQ_INT(fs_session_pos(a), p);
    float *la = malloc((size_t)(n - p) * V * sizeof *la);
    float *lb = malloc((size_t)n * V * sizeof *lb);
    CHECK(fs_session_eval_debug(a, ids + p, n - p, la, NULL, &e) == 0);
    fs_session *b = new_session();
    CHECK(b && fs_session_eval_debug(b, ids, n, lb, NULL, &e) == 0);
    double md = 0;
    for (int t = 0; t < n - p; t++)
        for (int v = 0; v < V; v++) {
            double d = fabs((double)la[(size_t)t * V + v] - lb[(size_t)(p + t) * V + v]);
            if (d > md || d != d) md = d;
        }
    CHECKF(md <= TOL, "max |logit diff| %.3g over %d positions (reused %d)", md, n - p, p);
    /* the last-token logits the sampler sees agree too */
    double ml = 0;
    for (int v = 0; v < V; v++) {
        double d = fabs((double)fs_session_logits(a)[v] - fs_session_logits(b)[v]);
        if (d > ml) ml = d;
    }
    CHECK(ml <= TOL);
    if (md > worst) worst = md;
    fs_session_free(b);
    free(la);
    free(lb);
    return p;
}

/* Greedy reply of up to n_new tokens; returns the reply text (malloc'd),
 * stores the cache contents in cached/n_cached. */
typedef struct buf {
    char s[8192];
    size_t n;
} buf;
static int collect(void *u, const char *t, size_t len) {
    buf *b = u;
    if (b->n + len >= sizeof b->s) return 1;
    memcpy(b->s + b->n, t, len);
    b->n += len;
    b->s[b->n] = 0;
    return 0;
}

static void case_greedy(void) {
    fs_err e = {{0}};
    fs_session *a = new_session();
    fs_sampler_params sp;
    fs_sampler_params_default(&sp, &model.cfg);
    sp.temperature = 0;
    fs_sampler *smp = NULL;
    CHECK(fs_sampler_new(&smp, model.cfg.vocab, &sp, &e) == 0);

    fs_chat_msg m[3] = {{"user", "Tell me about the river.", NULL, NULL},
                        {"assistant", NULL, NULL, NULL},
                        {"user", "And then what happened?", NULL, NULL}};
    int *ids1 = NULL, n1 = 0;
    CHECK(render(m, 1, 1, &ids1, &n1) == 0);
    int out[24];
    buf reply = {{0}, 0};
    fs_gen_opts go = {0};
    go.max_new_tokens = 24;
    go.stop_ids = model.cfg.eos_ids;
    go.n_stop_ids = model.cfg.n_eos;
    go.on_text = collect;
    go.user = &reply;
    go.ids_out = out;
    fs_gen_stats st;
    CHECK(fs_generate(a, tok, smp, ids1, n1, &go, &st, &e) == 0);
    CHECK(st.generated_tokens > 0);
    int cached[N_CTX], nc = fs_session_pos(a);
    CHECK_EQ_INT(nc, n1 + st.generated_tokens - 1);
    for (int i = 0; i < nc; i++) cached[i] = i < n1 ? ids1[i] : out[i - n1];

    m[1].content = reply.s;
    int *ids2 = NULL, n2 = 0;
    CHECK(render(m, 3, 1, &ids2, &n2) == 0);
    int p = reuse_and_compare(a, cached, nc, ids2, n2);
    CHECKF(p >= n1, "reused %d, turn 1 prompt was %d tokens", p, n1); /* at least turn 1's prompt */
    printf("greedy reply: turn 2 is %d tokens, %d reused, %d prefilled\n", n2, p, n2 - p);
    free(ids1);
    free(ids2);
    fs_sampler_free(smp);
    fs_session_free(a);
}

static void case_think_stripped(void) {
    fs_err e = {{0}};
    fs_session *a = new_session();
    const char *reply = "<think>\nThe user greets me.\n</think>\n\nGood day to you.";
    fs_chat_msg m[3] = {{"user", "Good morning.", NULL, NULL},
                        {"assistant", reply, NULL, NULL},
                        {"user", "How are you?", NULL, NULL}};
    int *ids1 = NULL, n1 = 0, *rid = NULL, nr = 0;
    CHECK(render(m, 1, 1, &ids1, &n1) == 0);
    CHECK(fs_tokenizer_encode(tok, reply, strlen(reply), &rid, &nr, &e) == 0);
    /* the cache as chat leaves it: prompt + the reply's ids (as if sampled) */
    int cached[N_CTX], nc = 0;
    for (int i = 0; i < n1; i++) cached[nc++] = ids1[i];
    for (int i = 0; i < nr; i++) cached[nc++] = rid[i];
    CHECK(fs_session_eval(a, cached, nc, &e) == 0);

    int *ids2 = NULL, n2 = 0;
    CHECK(render(m, 3, 1, &ids2, &n2) == 0);
    int p = reuse_and_compare(a, cached, nc, ids2, n2);
    /* the re-render has no reasoning, so it diverges where the reply began */
    CHECK_EQ_INT(p, n1);
    CHECK(p < nc);
    printf("think stripped: cache %d tokens, turn 2 is %d tokens, %d reused\n", nc, n2, p);
    free(ids1);
    free(ids2);
    free(rid);
    fs_session_free(a);
}

static void case_identical(void) {
    fs_err e = {{0}};
    fs_session *a = new_session();
    fs_chat_msg m[1] = {{"user", "Once more.", NULL, NULL}};
    int *ids = NULL, n = 0;
    CHECK(render(m, 1, 0, &ids, &n) == 0);
    CHECK(fs_session_eval(a, ids, n, &e) == 0);
    int p = reuse_and_compare(a, ids, n, ids, n);
    CHECK_EQ_INT(p, n - 1);
    free(ids);
    fs_session_free(a);
}

/* Run fn with stdout going to a temporary file; return what it printed. */
static char *capture(void (*fn)(void *), void *arg) {
    static char got[4096];
    fflush(stdout);
    FILE *f = tmpfile();
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(f), STDOUT_FILENO);
    fn(arg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = 0;
    fclose(f);
    return got;
}

typedef struct turn_arg {
    chat *c;
    const char *text;
    int rc;
} turn_arg;
static void do_turn(void *a_) {
    turn_arg *a = a_;
    a->rc = turn(a->c, a->text);
}

/* The chat's cache, as it believes it to be, gives the same logits as a
 * fresh prefill of those ids. */
static void check_cache(chat *c) {
    fs_err e = {{0}};
    CHECK_EQ_INT(fs_session_pos(c->sess), c->n_cached);
    fs_session *b = new_session();
    CHECK(b && fs_session_eval(b, c->cached, c->n_cached, &e) == 0);
    double md = 0;
    for (int v = 0; v < model.cfg.vocab; v++) {
        double d = fabs((double)fs_session_logits(c->sess)[v] - fs_session_logits(b)[v]);
        if (d > md || d != d) md = d;
    }
    CHECKF(md <= TOL, "chat cache vs fresh prefill: max |diff| %.3g", md);
    if (md > worst) worst = md;
    fs_session_free(b);
}

static void case_cli_turns(void) {
    cli_chat_opts o;
    cli_chat_opts_init(&o);
    o.temp = 0;
    o.max_tokens = 10;
    o.ctx = N_CTX;
    o.threads = 1;
    chat c;
    memset(&c, 0, sizeof c);
    c.cmd = "chat";
    c.o = &o;
    fs_err e = {{0}};
    if (open_chat(&c, "models/tiny", &e)) {
        CHECKF(0, "open_chat: %s", e.msg);
        close_chat(&c);
        return;
    }
    turn_arg a = {&c, "Hello there", -1};
    capture(do_turn, &a);
    CHECK_EQ_INT(a.rc, 0);
    CHECK_EQ_INT(c.last_reused, 0);
    int first_prompt = c.last_new, after1 = c.n_cached;
    CHECK_EQ_INT(after1, first_prompt + 10 - 1); /* -n 10: the 10th token is not evaluated */
    check_cache(&c);

    a.text = "What did you see?";
    capture(do_turn, &a);
    CHECK_EQ_INT(a.rc, 0);
    CHECKF(c.last_reused >= first_prompt, "turn 2 reused %d of turn 1's %d prompt tokens", c.last_reused,
           first_prompt);
    printf("cli turn 2: %d reused (cache after turn 1: %d), %d prefilled\n", c.last_reused, after1, c.last_new);
    check_cache(&c);

    c.think = 0; /* /no_think: the generation prompt gains an empty think block */
    a.text = "Go on.";
    capture(do_turn, &a);
    CHECK_EQ_INT(a.rc, 0);
    CHECK_EQ_INT(c.turns, 3);
    CHECK(c.last_reused > after1);
    check_cache(&c);
    CHECK(strstr(c.msgs[c.n_msgs - 1].content, "<think>") == NULL);
    close_chat(&c);
}

typedef struct show_arg {
    int tty;
    const char *const *pieces;
} show_arg;
static void do_show(void *a_) {
    show_arg *a = a_;
    chat c;
    memset(&c, 0, sizeof c);
    c.tty = a->tty;
    c.reply_cap = 1024;
    c.reply = malloc(c.reply_cap);
    for (const char *const *p = a->pieces; *p; p++) on_text(&c, *p, strlen(*p));
    show(&c, 1);
    free(c.reply);
}

static void case_display(void) {
    const char *const split[] = {"<thi", "nk>\nhm", "m\n</th", "ink>\n\nYes <", "b> done", NULL};
    show_arg a = {1, split};
    CHECK_STR(capture(do_show, &a), FAINT "<think>\nhmm\n</think>" RESET "\n\nYes <b> done");
    a.tty = 0;
    CHECK_STR(capture(do_show, &a), "<think>\nhmm\n</think>\n\nYes <b> done");
    const char *const open_only[] = {"<think>", "still thinking <", NULL};
    a.tty = 1;
    a.pieces = open_only;
    CHECK_STR(capture(do_show, &a), FAINT "<think>still thinking <" RESET);
    const char *const plain[] = {"no ", "tags", " at all", NULL};
    a.pieces = plain;
    CHECK_STR(capture(do_show, &a), "no tags at all");
}

int main(void) {
    fs_err e = {{0}};
    const char *dir = "models/tiny";
    if (fs_model_load(&model, dir, &e) || fs_tokenizer_load(&tok, dir, &e)) {
        fprintf(stderr, "test_chat_reuse: cannot load %s (run from the repository root): %s\n", dir, e.msg);
        return 1;
    }
    case_greedy();
    case_think_stripped();
    case_identical();
    case_cli_turns();
    case_display();
    printf("largest |logit diff| between reuse and from-scratch prefill: %.3g (bound %.0e)\n", worst, TOL);
    fs_tokenizer_free(tok);
    fs_model_free(&model);
    return TEST_SUMMARY();
}
