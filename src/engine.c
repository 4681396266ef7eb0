/* engine.c - a model opened once, sequences on it, chat turns (see
 * engine.h for the API and the prefix rule).
 *
 * A turn, and why the KV cache is reused rather than rebuilt:
 *
 *   messages  [system] user assistant user assistant ... user
 *      | fs_chat_render (the checkpoint's template, generation prompt, thinking mode)
 *      v
 *   text      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
 *      | fs_tokenizer_encode
 *      v
 *   ids[n]    compared with the ids now in the KV cache
 *             p = longest common prefix
 *      | fs_session_truncate(p); fs_generate(ids + p, n - p)
 *      v
 *   reply     streamed; becomes the next assistant message
 *
 * Every turn the whole conversation is rendered again, exactly as a
 * stateless server would, and only the tokens after the common prefix are
 * prefilled. Usually that is the new user message, but not always: Qwen3's
 * template drops the <think> reasoning of assistant turns before the last
 * user message, and re-tokenizing a reply can split it differently from the
 * ids that were sampled (other templates have their own: Llama 3's puts
 * today's date in the system block, so a turn after midnight reuses
 * nothing). All show up as an earlier divergence point, so
 * the cache is cut there and what follows is recomputed: the prompt the
 * model sees is always exactly the rendered conversation.
 * (tests/test_chat_reuse.c checks the logits equal a from-scratch prefill.)
 *
 * Sampling: one sampler per sequence, so a seed makes a whole conversation
 * reproducible, and a reset restarts it from the same seed. The penalties'
 * token history is the sampler's: everything evaluated so far, including
 * reasoning the template later drops.
 *
 * Docs: docs/chat.md, docs/generate.md
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quant.h"

/* ---- the engine ---- */

struct fs_engine {
    char *dir;
    fs_model model;
    fs_tokenizer *tok;            /* NULL when not loaded */
    fs_forward *fwd;
    int chat_stop[FS_MAX_EOS + 1]; /* the eos ids, and the eos_token: where a reply ends */
    int n_chat_stop;
    fs_chat_template *tmpl;       /* the checkpoint's chat template, loaded at the first chat */
};

int fs_engine_kv_dtype(const char *name, fs_dtype *out) {
    if (!strcmp(name, "f32")) *out = FS_DTYPE_F32;
    else if (!strcmp(name, "f16")) *out = FS_DTYPE_F16;
    else return -1;
    return 0;
}

int fs_engine_open(fs_engine **out, const char *dir, const fs_engine_opts *o, fs_err *e) {
    static const fs_engine_opts defaults = {0};
    if (!o) o = &defaults;
    *out = NULL;
    fs_dtype to = FS_DTYPE_BF16;
    if (o->weights && fs_dtype_from_weights_name(o->weights, &to))
        return fs_errf(e, "weights: expected bf16, f16, f32, q8_0 or q4_0, got '%s'", o->weights);

    fs_engine *g = fs_xcalloc(1, sizeof *g);
    g->dir = fs_xstrdup(dir);
    if (fs_model_load(&g->model, dir, e)) {
        free(g->dir);
        free(g);
        return -1;
    }
    const fs_config *c = &g->model.cfg;
    if (o->weights && fs_model_convert(&g->model, to, e)) {
        fs_err_prefix(e, "%s: converting the weights to %s", dir, o->weights);
        goto fail;
    }
    if (o->tokenizer != FS_ENGINE_NO_TOKENIZER) {
        char path[4096];
        int present = fs_path_join(path, sizeof path, dir, "tokenizer.json") == 0 && fs_file_exists(path);
        if ((present || o->tokenizer == FS_ENGINE_TOKENIZER) && fs_tokenizer_load(&g->tok, dir, e)) goto fail;
    }
    /* A token the model has no row for would fail only when first met,
     * deep in a conversation: refuse such a pair now. */
    if (g->tok && fs_tokenizer_n_vocab(g->tok) > c->vocab) {
        fs_errf(e, "%s: tokenizer.json has %d tokens but the model only %d (vocab_size)", dir,
                fs_tokenizer_n_vocab(g->tok), c->vocab);
        goto fail;
    }
    fs_forward_opts fo = {.backend = o->backend, .n_threads = o->n_threads, .n_ctx = o->n_ctx, .max_seqs = o->max_seqs};
    if (!o->kv || !strcmp(o->kv, "auto")) fo.kv_auto = 1;   /* the backend's choice */
    else if (fs_engine_kv_dtype(o->kv, &fo.kv_dtype)) {
        fs_errf(e, "KV cache type '%s': expected auto, f32 or f16", o->kv);
        goto fail;
    }
    if (fs_forward_new(&g->fwd, &g->model, &fo, e)) goto fail;

    /* A chat reply ends at an eos id, or at tokenizer_config.json's
     * eos_token (Qwen: <|im_end|>, Llama 3 Instruct: <|eot_id|>; model.c);
     * a checkpoint without one keeps Qwen's <|im_end|>. */
    for (int i = 0; i < c->n_eos; i++) g->chat_stop[g->n_chat_stop++] = c->eos_ids[i];
    const char *reply_end = c->eos_token[0] ? c->eos_token : "<|im_end|>";
    int im_end = g->tok ? fs_tokenizer_token_id(g->tok, reply_end) : -1, have = 0;
    for (int i = 0; i < g->n_chat_stop; i++) have |= g->chat_stop[i] == im_end;
    if (im_end >= 0 && !have) g->chat_stop[g->n_chat_stop++] = im_end;
    *out = g;
    return 0;

fail:
    fs_engine_free(g);
    return -1;
}

void fs_engine_free(fs_engine *g) {
    if (!g) return;
    fs_forward_free(g->fwd);
    fs_tokenizer_free(g->tok);
    fs_model_free(&g->model);
    fs_chat_template_free(g->tmpl);
    free(g->dir);
    free(g);
}

const char *fs_engine_dir(const fs_engine *g) { return g->dir; }
const fs_model *fs_engine_model(const fs_engine *g) { return &g->model; }
const fs_tokenizer *fs_engine_tokenizer(const fs_engine *g) { return g->tok; }
fs_forward *fs_engine_forward(fs_engine *g) { return g->fwd; }
int fs_engine_n_ctx(const fs_engine *g) { return fs_forward_n_ctx(g->fwd); }

static int need_tokenizer(const fs_engine *g, fs_err *e) {
    if (g->tok) return 0;
    return fs_errf(e, "%s: no tokenizer loaded (tokenizer.json)", g->dir);
}

int fs_engine_encode(const fs_engine *g, const char *text, size_t len, int **ids, int *n, fs_err *e) {
    *ids = NULL;
    *n = 0;
    if (need_tokenizer(g, e)) return -1;
    return fs_tokenizer_encode(g->tok, text, len, ids, n, e);
}

int fs_engine_encode_prompt(const fs_engine *g, const char *text, size_t len, int **ids, int *n, fs_err *e) {
    *ids = NULL;
    *n = 0;
    if (need_tokenizer(g, e)) return -1;
    return fs_tokenizer_encode_opt(g->tok, text, len, 1, ids, n, e);
}

/* ---- sampling settings ---- */

/* Different in every run: the wall clock's seconds and nanoseconds, and
 * the process id for two runs started in the same nanosecond tick. */
static uint64_t clock_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

int fs_engine_sampler_params(const fs_engine *g, const fs_sampling *o, fs_sampler_params *p, fs_err *e) {
    fs_sampler_params_default(p, g ? &g->model.cfg : NULL);
    p->seed = clock_seed();
    unsigned set = o ? o->set : 0;
    if (set & FS_SET_TEMPERATURE) p->temperature = o->p.temperature;
    if (set & FS_SET_TOP_K) p->top_k = o->p.top_k;
    if (set & FS_SET_TOP_P) p->top_p = o->p.top_p;
    if (set & FS_SET_MIN_P) p->min_p = o->p.min_p;
    if (set & FS_SET_REPETITION_PENALTY) p->repetition_penalty = o->p.repetition_penalty;
    if (set & FS_SET_PRESENCE_PENALTY) p->presence_penalty = o->p.presence_penalty;
    if (set & FS_SET_SEED) p->seed = o->p.seed;
    if (set & FS_SET_FREQUENCY_PENALTY) p->frequency_penalty = o->p.frequency_penalty;
    return fs_sampler_params_check(p, e);
}

/* ---- a sequence ---- */

/* Stats before anything ran: an error until a call says otherwise. */
static void stats_init(fs_seq_stats *st) {
    memset(st, 0, sizeof *st);
    st->stop = FS_STOP_ERROR;
    st->stop_id = -1;
}

struct fs_seq {
    fs_engine *g;
    fs_session *s;
    fs_sampler *smp;
    fs_sampler_params sp;
    int n_ctx;
    int *tokens;                   /* [n_ctx] the ids in the cache, in order */
    int n_tokens;
    volatile sig_atomic_t *cancel;
    /* the last generation, sized before it starts */
    int *ids;                      /* sampled ids */
    int n_ids, cap_ids;
    char *text;                    /* emitted text */
    size_t n_text, cap_text;
    const fs_seq_gen *o;           /* the caller's callbacks, during a call */
    /* a stepped generation (fs_seq_start, fs_engine_step): tokens[0..n_want)
     * should be in the cache, n_tokens are; the rest is fed by the next step */
    int running, n_want, chat, greedy, max_new;
    fs_seq_gen go;                 /* the caller's options, copied */
    fs_stopper stopper;
    fs_detok detok;
    int text_state;                /* FS_STOPPER_*: MATCHED drops held text */
    char *piece;                   /* one token's text, FS_DETOK_MAX_OUT bytes */
    size_t piece_cap;
    fs_seq_stats st;
    double t_start, t_first;
};

int fs_seq_new(fs_seq **out, fs_engine *g, int n_ctx, const fs_sampler_params *sp, fs_err *e) {
    *out = NULL;
    fs_seq *q = fs_xcalloc(1, sizeof *q);
    q->g = g;
    if (sp) {
        q->sp = *sp;
    } else {
        fs_sampler_params_default(&q->sp, &g->model.cfg);
    }
    if (fs_session_new(&q->s, g->fwd, n_ctx, e) || fs_sampler_new(&q->smp, g->model.cfg.vocab, &q->sp, e)) {
        fs_seq_free(q);
        return -1;
    }
    q->n_ctx = fs_session_n_ctx(q->s);
    q->tokens = fs_xmalloc((size_t)q->n_ctx * sizeof *q->tokens);
    *out = q;
    return 0;
}

void fs_seq_free(fs_seq *q) {
    if (!q) return;
    fs_sampler_free(q->smp);
    fs_session_free(q->s);
    free(q->tokens);
    free(q->ids);
    free(q->text);
    free(q->piece);
    if (q->running) fs_stopper_free(&q->stopper);
    free(q);
}

void fs_seq_set_cancel(fs_seq *q, volatile sig_atomic_t *flag) {
    q->cancel = flag;
    fs_session_set_cancel(q->s, flag);
}

void fs_seq_reset(fs_seq *q) {
    fs_session_truncate(q->s, 0);
    q->n_tokens = 0;
    q->n_ids = 0;
    q->n_text = 0;
    fs_sampler_reset(q->smp);
}

int fs_seq_n_ctx(const fs_seq *q) { return q->n_ctx; }

const int *fs_seq_tokens(const fs_seq *q, int *n) {
    *n = q->n_tokens;
    return q->tokens;
}

const fs_sampler_params *fs_seq_sampler_params(const fs_seq *q) { return &q->sp; }
fs_engine *fs_seq_engine(fs_seq *q) { return q->g; }
fs_session *fs_seq_session(fs_seq *q) { return q->s; }

void fs_seq_last(const fs_seq *q, const int **ids, int *n_ids, const char **text, size_t *len) {
    if (ids) *ids = q->ids;
    if (n_ids) *n_ids = q->n_ids;
    if (text) *text = q->text;
    if (len) *len = q->n_text;
}

/* The generation loop's callbacks: keep the text, then pass it on. */
static int seq_emit(void *user, const char *text, size_t len) {
    fs_seq *q = user;
    if (q->n_text + len > q->cap_text) return 1; /* cannot happen: sized for the worst case */
    memcpy(q->text + q->n_text, text, len);
    q->n_text += len;
    return q->o->on_text ? q->o->on_text(q->o->user, text, len) : 0;
}

static void seq_progress(void *user, int done, int total) {
    fs_seq *q = user;
    if (q->o->on_prefill) q->o->on_prefill(q->o->user, done, total);
}

/* The start of every call: check the prompt, keep the longest common
 * prefix of the cache and ids (at most n - 1 tokens: the last one is
 * evaluated for its logits), truncate there. room: tokens the prompt must
 * leave free. Returns the prefix length p, or FS_SEQ_TOO_LONG / -1. */
static int seq_begin(fs_seq *q, const int *ids, int n, int room, const fs_seq_gen *o, fs_seq_stats *st,
                     fs_err *e) {
    if (q->running) return fs_errf(e, "the sequence is running a stepped generation (fs_seq_start)");
    st->prompt_tokens = n;
    q->n_ids = 0;
    q->n_text = 0;
    q->o = o;
    if (n < 1 || !ids) return fs_errf(e, "empty prompt: there is nothing to predict from");
    if (n > q->n_ctx - room) {
        if (room)
            fs_errf(e, "the prompt is %d tokens; the context of %d tokens holds at most %d with room for a reply", n,
                    q->n_ctx, q->n_ctx - room);
        else
            fs_errf(e, "the prompt is %d tokens, longer than the context of %d tokens", n, q->n_ctx);
        return FS_SEQ_TOO_LONG;
    }
    int V = q->g->model.cfg.vocab;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return fs_errf(e, "token id %d (position %d) is out of range: the model has V = %d", ids[i], i, V);
    int p = 0;
    while (p < q->n_tokens && p < n && q->tokens[p] == ids[p]) p++;
    if (p == n) p--;
    fs_session_truncate(q->s, p);
    q->n_tokens = p;
    st->reused = p;
    st->prefilled = n - p;
    return p;
}

/* The end of every call: record what the cache holds now - the prompt,
 * then the sampled ids but the last (generate.h) - and how much of the
 * prompt was evaluated (less than planned when cancelled); or, after a
 * failure, empty it so the next call starts from a known state. */
static int seq_end(fs_seq *q, const int *ids, int n, int p, int failed, fs_seq_stats *st) {
    if (failed) {
        fs_session_truncate(q->s, 0);
        q->n_tokens = 0;
        return -1;
    }
    int pos = fs_session_pos(q->s);
    for (int i = p; i < pos; i++) q->tokens[i] = i < n ? ids[i] : q->ids[i - n];
    q->n_tokens = pos;
    st->prefilled = (pos < n ? pos : n) - p;
    return 0;
}

int fs_seq_sync(fs_seq *q, const int *ids, int n, const fs_seq_gen *o, fs_seq_stats *st, fs_err *e) {
    static const fs_seq_gen none = {0};
    fs_seq_stats local;
    if (!st) st = &local;
    stats_init(st);
    int p = seq_begin(q, ids, n, 0, o ? o : &none, st, e);
    if (p < 0) return p;
    fs_gen_opts go = {0};
    go.on_prefill = seq_progress;
    go.user = q;
    go.cancel = q->cancel;
    double t0 = fs_now();
    int r = fs_prefill(q->s, ids + p, n - p, &go, e);
    st->prefill_s = fs_now() - t0;
    if (r < 0) return seq_end(q, ids, n, p, 1, st);
    for (int i = p; i < fs_session_pos(q->s); i++) fs_sampler_accept(q->smp, ids[i], 0);
    st->stop = r == FS_EVAL_CANCELLED ? FS_STOP_CANCELLED : FS_STOP_NONE;
    return seq_end(q, ids, n, p, 0, st);
}

/* Room for the reply's ids and text, grown when a generation needs more
 * (a sequence keeps it, so a server's slot allocates it once). */
static void reserve_reply(fs_seq *q, int n, int max_new_tokens) {
    int most = max_new_tokens < q->n_ctx - n + 1 ? max_new_tokens : q->n_ctx - n + 1;
    if (most + 1 > q->cap_ids) {
        q->cap_ids = most + 1;
        q->ids = fs_xrealloc(q->ids, (size_t)q->cap_ids * sizeof *q->ids);
    }
    size_t text_need = ((size_t)most + 1) * FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(q->g->tok));
    if (text_need > q->cap_text) {
        q->cap_text = text_need;
        q->text = fs_xrealloc(q->text, q->cap_text);
    }
}

/* fs_seq_generate and fs_seq_chat: sync and generate, stopping at stop[]. */
static int seq_generate(fs_seq *q, const int *ids, int n, int room, const int *stop, int n_stop,
                        const fs_seq_gen *o, fs_seq_stats *st, fs_err *e) {
    static const fs_seq_gen none = {0};
    fs_seq_stats local;
    if (!st) st = &local;
    stats_init(st);
    if (!o) o = &none;
    if (need_tokenizer(q->g, e)) return -1;
    if (o->max_new_tokens < 0) return fs_errf(e, "max_new_tokens must be >= 0, got %d", o->max_new_tokens);
    int p = seq_begin(q, ids, n, room, o, st, e);
    if (p < 0) return p;

    /* fs_generate samples at most min(max_new_tokens, n_ctx - n + 1)
     * tokens (the last one is never evaluated), and each decodes to at most
     * FS_DETOK_MAX_OUT bytes (one more for the final flush). */
    reserve_reply(q, n, o->max_new_tokens);

    fs_gen_opts go = {0};
    go.max_new_tokens = o->max_new_tokens;
    go.stop_ids = stop;
    go.n_stop_ids = n_stop;
    go.stop_strings = o->stop_strings;
    go.n_stop_strings = o->n_stop_strings;
    go.on_text = seq_emit;
    go.on_prefill = seq_progress;
    go.user = q;
    go.cancel = q->cancel;
    go.ids_out = q->ids;
    fs_gen_stats gs;
    int rc = fs_generate(q->s, q->g->tok, q->smp, ids + p, n - p, &go, &gs, e);
    q->n_ids = gs.generated_tokens;
    st->generated = gs.generated_tokens;
    st->prefill_s = gs.prefill_s;
    st->decode_s = gs.decode_s;
    st->stop = gs.stop;
    st->stop_id = gs.stop_id;
    return seq_end(q, ids, n, p, rc != 0, st);
}

int fs_seq_generate(fs_seq *q, const int *ids, int n, const fs_seq_gen *o, fs_seq_stats *st, fs_err *e) {
    const fs_config *c = &q->g->model.cfg;
    return seq_generate(q, ids, n, 0, c->eos_ids, c->n_eos, o, st, e);
}

/* -1 with the byte offset if s[0..n) is not UTF-8. */
static int check_utf8(const char *s, size_t n, const char *what, fs_err *e) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k == 0) return fs_errf(e, "%s is not valid UTF-8 (byte %zu)", what, i);
        i += (size_t)k;
    }
    return 0;
}

static int check_template(fs_engine *g, fs_err *e) {
    if (need_tokenizer(g, e)) return -1;
    return g->tmpl ? 0 : fs_chat_template_load(&g->tmpl, g->dir, e);
}

int fs_engine_chat_prompt(fs_engine *g, const fs_chat_msg *msgs, size_t n, int think, int **ids, int *n_ids,
                          fs_err *e) {
    *ids = NULL;
    *n_ids = 0;
    if (check_template(g, e)) return -1;
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "message %zu", i + 1);
        if (msgs[i].content && check_utf8(msgs[i].content, strlen(msgs[i].content), what, e)) return -1;
    }
    char *text = NULL;
    if (think < 0) think = fs_chat_template_thinking(g->tmpl) == FS_THINK_ON;
    fs_chat_opts o = {1, think != 0, NULL, NULL, 0};
    int rc = fs_chat_render(g->tmpl, msgs, n, &o, &text, e) || fs_tokenizer_encode(g->tok, text, strlen(text), ids, n_ids, e);
    free(text);
    return rc ? -1 : 0;
}

int fs_seq_chat(fs_seq *q, const fs_chat_msg *msgs, size_t n, int think, const fs_seq_gen *o, fs_seq_stats *st,
                fs_err *e) {
    fs_seq_stats local;
    if (!st) st = &local;
    stats_init(st);
    int *ids = NULL, n_ids = 0;
    if (fs_engine_chat_prompt(q->g, msgs, n, think, &ids, &n_ids, e)) return -1;
    /* room for the prompt and at least one token of the reply */
    int rc = seq_generate(q, ids, n_ids, 1, q->g->chat_stop, q->g->n_chat_stop, o, st, e);
    free(ids);
    return rc;
}

int fs_seq_set_sampler_params(fs_seq *q, const fs_sampler_params *sp, fs_err *e) {
    if (q->running) return fs_errf(e, "the sequence is running a stepped generation (fs_seq_start)");
    if (fs_sampler_set_params(q->smp, sp, e)) return -1;
    q->sp = *sp;
    return 0;
}

/* ---- stepped generation (continuous batching) ---- */

int fs_seq_start(fs_seq *q, const int *ids, int n, int chat, const fs_seq_gen *o, fs_err *e) {
    static const fs_seq_gen none = {0};
    if (!o) o = &none;
    stats_init(&q->st);
    if (need_tokenizer(q->g, e)) return -1;
    if (o->max_new_tokens < 0) return fs_errf(e, "max_new_tokens must be >= 0, got %d", o->max_new_tokens);
    q->go = *o;
    int p = seq_begin(q, ids, n, chat ? 1 : 0, &q->go, &q->st, e);
    if (p < 0) return p;
    if (fs_stopper_init(&q->stopper, o->stop_strings, o->n_stop_strings,
                        FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(q->g->tok)), e))
        return -1;
    memcpy(q->tokens + p, ids + p, (size_t)(n - p) * sizeof *ids);
    q->n_want = n;
    reserve_reply(q, n, o->max_new_tokens);
    if (!q->piece) {
        q->piece_cap = FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(q->g->tok));
        q->piece = fs_xmalloc(q->piece_cap);
    }
    /* a request of its own: the penalties see this prompt, not what ran before */
    fs_sampler_reset(q->smp);
    for (int i = 0; i < n; i++) fs_sampler_accept(q->smp, ids[i], 0);
    fs_detok_init(&q->detok);
    q->text_state = FS_STOPPER_GO;
    q->chat = chat;
    q->max_new = o->max_new_tokens;
    q->greedy = fs_sampler_is_greedy(q->smp) && !o->want_logits;
    q->st.stop = FS_STOP_NONE;
    q->t_start = fs_now();
    q->t_first = 0;
    q->running = 1;
    if (o->on_prefill) o->on_prefill(o->user, 0, n - p);
    return 0;
}

/* The end of a stepped generation, as fs_generate ends: unless a stop
 * string cut the text or the receiver went away, release what the
 * detokenizer and the stop-string matcher hold. */
static void seq_finish(fs_seq *q, fs_stop_reason why) {
    if (!q->running) return;
    if (why != FS_STOP_ERROR && q->text_state == FS_STOPPER_GO) {
        size_t n = fs_detok_flush(&q->detok, q->piece, q->piece_cap);
        if (fs_stopper_feed(&q->stopper, q->piece, n, seq_emit, q) == FS_STOPPER_MATCHED)
            why = FS_STOP_STRING;
        else
            fs_stopper_flush(&q->stopper, seq_emit, q);
    }
    fs_stopper_free(&q->stopper);
    if (why == FS_STOP_ERROR) { /* a failed forward pass: start from a known state */
        fs_session_truncate(q->s, 0);
        q->n_tokens = 0;
    }
    if (q->t_first > 0) q->st.decode_s = fs_now() - q->t_first;
    q->st.stop = why;
    q->n_want = q->n_tokens;
    q->running = 0;
}

void fs_seq_stop(fs_seq *q) { seq_finish(q, FS_STOP_CANCELLED); }
int fs_seq_running(const fs_seq *q) { return q->running; }
const fs_seq_stats *fs_seq_status(const fs_seq *q) { return &q->st; }

/* q's prompt, or its last token, is in the cache and its logits are
 * ready: sample the next token as fs_generate's loop does. */
static void seq_next(fs_seq *q, int argmax) {   /* argmax: the greedy pick if known, else -2 */
    fs_seq_stats *st = &q->st;
    if (st->generated >= q->max_new) return seq_finish(q, FS_STOP_MAX_TOKENS);
    if (q->cancel && *q->cancel) return seq_finish(q, FS_STOP_CANCELLED);
    int id = !q->greedy ? -1 : argmax != -2 ? argmax : fs_session_argmax(q->s);
    const float *logits = NULL;
    if (!q->greedy) {
        logits = fs_session_logits(q->s);
        id = fs_sampler_sample(q->smp, logits, NULL); /* fails only on NaN logits: FS_STOP_ERROR says it */
    }
    if (id < 0) return seq_finish(q, FS_STOP_ERROR);
    fs_sampler_accept(q->smp, id, 1);
    q->ids[q->n_ids++] = id;
    st->generated++;
    if (q->go.on_token) q->go.on_token(q->go.user, id, q->go.want_logits ? logits : NULL);

    const fs_config *c = &q->g->model.cfg;
    const int *stop = q->chat ? q->g->chat_stop : c->eos_ids;
    int n_stop = q->chat ? q->g->n_chat_stop : c->n_eos;
    for (int i = 0; i < n_stop; i++)
        if (id == stop[i]) {
            st->stop_id = id;
            return seq_finish(q, FS_STOP_EOS);
        }
    size_t n = fs_detok_push(&q->detok, q->g->tok, id, q->piece, q->piece_cap);
    q->text_state = fs_stopper_feed(&q->stopper, q->piece, n, seq_emit, q);
    if (q->text_state == FS_STOPPER_MATCHED) return seq_finish(q, FS_STOP_STRING);
    if (q->text_state == FS_STOPPER_CANCELLED) return seq_finish(q, FS_STOP_CANCELLED);
    if (st->generated >= q->max_new) return seq_finish(q, FS_STOP_MAX_TOKENS);
    if (q->n_tokens >= q->n_ctx) return seq_finish(q, FS_STOP_CTX_FULL);
    q->tokens[q->n_tokens] = id; /* fed by the next step */
    q->n_want = q->n_tokens + 1;
}

int fs_engine_step(fs_engine *g, fs_seq *const *qs, int n, int max_tokens, fs_err *e) {
    fs_forward *f = g->fwd;
    int budget = fs_forward_max_batch(f), max_seqs = fs_forward_max_seqs(f);
    if (max_tokens > 0 && max_tokens < budget) budget = max_tokens;
    fs_seq *fed[FS_MAX_SEQS];
    fs_session *ss[FS_MAX_SEQS];
    const int *ids[FS_MAX_SEQS];
    int cnt[FS_MAX_SEQS], m = 0;
    /* decoders first, one token each; then the prompts share the rest */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n && m < max_seqs && budget > 0; i++) {
            fs_seq *q = qs[i];
            int pending = q->running ? q->n_want - q->n_tokens : 0;
            if (pending < 1 || (pass == 0) != (q->t_first > 0 && pending == 1)) continue;
            int k = pending < budget ? pending : budget;
            fed[m] = q, ss[m] = q->s, ids[m] = q->tokens + q->n_tokens, cnt[m] = k;
            budget -= k;
            m++;
        }
    if (m == 0) return 0;
    if (fs_forward_batch(f, ss, ids, cnt, m, e)) {
        for (int i = 0; i < m; i++) seq_finish(fed[i], FS_STOP_ERROR);
        return -1;
    }
    /* the greedy picks of every session that samples now, in one pass */
    int picks[FS_MAX_SEQS], n_greedy = 0;
    for (int i = 0; i < m; i++) {
        picks[i] = -2;
        n_greedy += fed[i]->greedy && fed[i]->n_tokens + cnt[i] >= fed[i]->n_want;
    }
    if (n_greedy > 1) fs_forward_batch_argmax(f, picks);
    double now = fs_now();
    for (int i = 0; i < m; i++) {
        fs_seq *q = fed[i];
        q->n_tokens += cnt[i];
        if (q->n_tokens < q->n_want) { /* a prompt chunk: more to come */
            if (q->go.on_prefill) q->go.on_prefill(q->go.user, q->n_tokens - q->st.reused, q->n_want - q->st.reused);
            continue;
        }
        if (q->t_first == 0) { /* the prompt is in */
            q->t_first = now;
            q->st.prefill_s = now - q->t_start;
            if (q->go.on_prefill) q->go.on_prefill(q->go.user, q->st.prefilled, q->st.prefilled);
        }
        seq_next(q, picks[i]);
    }
    return m;
}

/* ---- a conversation ---- */

struct fs_conversation {
    fs_seq *q;
    char *system;       /* NULL: none */
    int think;
    fs_chat_msg *msgs;  /* user and assistant turns, contents owned */
    size_t n_msgs, cap_msgs;
    int turns;
};

int fs_conversation_new(fs_conversation **out, fs_seq *q, fs_err *e) {
    *out = NULL;
    if (check_template(q->g, e)) return -1;
    fs_conversation *c = fs_xcalloc(1, sizeof *c);
    c->q = q;
    c->think = fs_chat_template_thinking(q->g->tmpl) == FS_THINK_ON;
    *out = c;
    return 0;
}

static void push_msg(fs_conversation *c, const char *role, const char *content, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        c->cap_msgs = c->cap_msgs ? 2 * c->cap_msgs : 16;
        c->msgs = fs_xrealloc(c->msgs, c->cap_msgs * sizeof *c->msgs);
    }
    char *s = fs_xmalloc(len + 1);
    memcpy(s, content, len);
    s[len] = 0;
    fs_chat_msg m = {role, s, NULL, NULL, NULL};
    c->msgs[c->n_msgs++] = m;
}

static void pop_msg(fs_conversation *c) {
    if (c->n_msgs) free((char *)c->msgs[--c->n_msgs].content);
}

void fs_conversation_free(fs_conversation *c) {
    if (!c) return;
    while (c->n_msgs) pop_msg(c);
    free(c->msgs);
    free(c->system);
    free(c);
}

void fs_conversation_reset(fs_conversation *c) {
    while (c->n_msgs) pop_msg(c);
    c->turns = 0;
    fs_seq_reset(c->q);
}

void fs_conversation_set_system(fs_conversation *c, const char *text) {
    free(c->system);
    c->system = text && *text ? fs_xstrdup(text) : NULL;
}

const char *fs_conversation_system(const fs_conversation *c) { return c->system; }
void fs_conversation_set_think(fs_conversation *c, int on) { c->think = on != 0; }
int fs_conversation_think(const fs_conversation *c) { return c->think; }
int fs_conversation_thinking(const fs_conversation *c) { return fs_chat_template_thinking(c->q->g->tmpl); }
int fs_conversation_turns(const fs_conversation *c) { return c->turns; }
fs_seq *fs_conversation_seq(fs_conversation *c) { return c->q; }

int fs_conversation_turn(fs_conversation *c, const char *user_text, const fs_seq_gen *o, fs_seq_stats *st,
                         fs_err *e) {
    fs_seq_stats local;
    if (!st) st = &local;
    stats_init(st);
    size_t len = strlen(user_text);
    if (check_utf8(user_text, len, "the text", e)) return -1;
    push_msg(c, "user", user_text, len);

    /* [system] + the turns so far + this message */
    size_t n_all = c->n_msgs + (c->system ? 1 : 0), k = 0;
    fs_chat_msg *all = fs_xmalloc(n_all * sizeof *all);
    if (c->system) {
        fs_chat_msg s = {"system", c->system, NULL, NULL, NULL};
        all[k++] = s;
    }
    memcpy(all + k, c->msgs, c->n_msgs * sizeof *all);
    int rc = fs_seq_chat(c->q, all, n_all, c->think, o, st, e);
    free(all);
    if (rc || (st->stop == FS_STOP_CANCELLED && st->generated == 0)) {
        pop_msg(c);
        return rc;
    }
    const char *reply;
    size_t reply_len;
    fs_seq_last(c->q, NULL, NULL, &reply, &reply_len);
    push_msg(c, "assistant", reply, reply_len);
    c->turns++;
    return 0;
}
