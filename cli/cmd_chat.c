/* cmd_chat.c - `fs chat`: talk to a model, one turn after another.
 *
 *   fs chat                        the shipped tiny model (or $FS_MODEL)
 *   fs chat -m MODEL --system "You are terse." --no-think
 *   printf 'Hi\n/stats\n' | fs chat --temp 0      scripted: one turn a line
 *
 * A turn, and why the KV cache is reused rather than rebuilt:
 *
 *   messages  [system] user assistant user assistant ... user
 *      | fs_chat_render (Qwen3's template, generation prompt, thinking mode)
 *      v
 *   text      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
 *      | fs_tokenizer_encode
 *      v
 *   ids[n]    compared with cached[], the ids now in the KV cache
 *             p = longest common prefix
 *      | fs_session_truncate(p); fs_generate(ids + p, n - p)
 *      v
 *   reply     streamed; becomes the next assistant message
 *
 * Every turn the whole conversation is rendered again, exactly as a
 * stateless server would, and only the tokens after the common prefix are
 * prefilled. Usually that is the new user message, but not always: the
 * template drops the <think> reasoning of assistant turns before the last
 * user message, and re-tokenizing a reply can split it differently from the
 * ids that were sampled. Both show up as an earlier divergence point, so
 * the cache is cut there and what follows is recomputed: the prompt the
 * model sees is always exactly the rendered conversation.
 * (tests/test_chat_reuse.c checks the logits equal a from-scratch prefill.)
 *
 * Output. On a terminal the reasoning block <think>...</think> is printed
 * dimmed (ANSI faint) and the answer plainly. When stdout is not a
 * terminal there are no escape codes at all: each reply is written exactly
 * as the model wrote it (reasoning inside its <think>...</think> tags),
 * followed by one newline. Command output (/stats, /help, ...) goes to
 * stdout as plain lines; notices (interrupted, context full, -n reached)
 * go to stderr.
 *
 * Input. On a terminal: the line editor of lineedit.h with history
 * (${FS_HOME:-~/.cache/fs}/chat_history). Otherwise one user turn per line
 * of stdin (empty lines skipped), ending at end of input with status 0.
 * Lines starting with '/' are commands; "//text" sends "/text".
 *
 * Ctrl-C while a reply streams stops that reply (SIGINT sets fs_generate's
 * cancel flag); what was written stays in the conversation as the
 * assistant turn. Ctrl-C at the prompt clears the line, Ctrl-D exits.
 *
 * Sampling: one sampler for the whole conversation, so --seed S makes a
 * whole session reproducible, and /reset restarts it from the same seed.
 * The penalties' token history is the sampler's (everything evaluated so
 * far, including reasoning the template later drops).
 *
 * Docs: docs/chat.md
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat_template.h"
#include "cli.h"
#include "forward.h"
#include "generate.h"
#include "lineedit.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

#define CMD "chat"
#define FAINT "\x1b[2m"
#define RESET "\x1b[0m"
#define HISTORY_MAX 1000

/* ---- options, shared with `fs run` ---- */

void cli_chat_opts_init(cli_chat_opts *o) {
    memset(o, 0, sizeof *o);
    o->think = 1;
    o->max_tokens = 1024;
    o->top_k = -1;
    o->temp = o->top_p = o->min_p = o->repeat_penalty = -1;
}

void cli_chat_usage_options(FILE *f) {
    fprintf(f,
            "  -m, --model MODEL        model directory (default: $FS_MODEL, else the shipped models/tiny)\n"
            "  --system TEXT            system prompt\n"
            "  --no-think               start with thinking off (Qwen3's enable_thinking=false)\n"
            "  -n, --max-tokens N       tokens per reply at most (default 1024)\n"
            "  --temp T                 temperature; 0 = greedy (default: generation_config, else 1)\n"
            "  --top-k K  --top-p P  --min-p M  --repeat-penalty R  --presence-penalty P\n"
            "                           as in fs generate (defaults: the model's generation_config)\n"
            "  --seed S                 sampling seed (default: from the clock)\n"
            "  --ctx N                  context length in tokens (default 4096, capped by the model)\n"
            "  -t, --threads N          CPU threads\n"
            "  -v, --verbose            model and cache details; per turn: prefilled N new tokens (M reused)\n");
}

static int bad_num(const char *cmd, const char *flag, const char *v) {
    cli_fail(cmd, FS_EXIT_USAGE, "%s: bad value '%s' (see --help)", flag, v);
    return -1;
}

int cli_chat_flag(const char *cmd, int argc, char **argv, int *i, cli_chat_opts *o) {
    const char *a = argv[*i], *v = NULL;
    int r;
    if (!strcmp(a, "--no-think")) { o->think = 0; return 1; }
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o->verbose = 1; return 1; }
#define VAL(name, alias) ((r = cli_flag(argc, argv, i, name, alias, &v)) != 0)
    if (VAL("-m", "--model")) {
        if (r > 0) o->model = v;
    } else if (VAL("--system", NULL)) {
        if (r > 0) o->system = v;
    } else if (VAL("-n", "--max-tokens")) {
        if (r > 0 && cli_parse_int(v, 1, 100000000, &o->max_tokens)) return bad_num(cmd, a, v);
    } else if (VAL("--ctx", NULL)) {
        if (r > 0 && cli_parse_int(v, 2, 1 << 24, &o->ctx)) return bad_num(cmd, a, v);
    } else if (VAL("-t", "--threads")) {
        if (r > 0 && cli_parse_int(v, 1, 1024, &o->threads)) return bad_num(cmd, a, v);
    } else if (VAL("--top-k", NULL)) {
        if (r > 0 && cli_parse_int(v, 0, 1L << 30, &o->top_k)) return bad_num(cmd, a, v);
    } else if (VAL("--temp", "--temperature")) {
        if (r > 0 && cli_parse_double(v, 0, 1e6, &o->temp)) return bad_num(cmd, a, v);
    } else if (VAL("--top-p", NULL)) {
        if (r > 0 && cli_parse_double(v, 1e-12, 1, &o->top_p)) return bad_num(cmd, a, v);
    } else if (VAL("--min-p", NULL)) {
        if (r > 0 && cli_parse_double(v, 0, 1, &o->min_p)) return bad_num(cmd, a, v);
    } else if (VAL("--repeat-penalty", "--repetition-penalty")) {
        if (r > 0 && cli_parse_double(v, 1e-6, 1e6, &o->repeat_penalty)) return bad_num(cmd, a, v);
    } else if (VAL("--presence-penalty", NULL)) {
        if (r > 0 && cli_parse_double(v, -1e6, 1e6, &o->presence_penalty)) return bad_num(cmd, a, v);
    } else if (VAL("--seed", NULL)) {
        if (r > 0) {
            char *end;
            errno = 0;
            if (!*v || *v == '-' || (o->seed = strtoull(v, &end, 10), *end) || errno) return bad_num(cmd, a, v);
            o->have_seed = 1;
        }
    } else {
        return 0;
    }
#undef VAL
    return r < 0 ? -1 : 1;
}

/* ---- the conversation ---- */

typedef struct chat {
    const char *cmd;
    const cli_chat_opts *o;
    fs_model model;
    fs_tokenizer *tok;
    fs_session *sess;
    fs_sampler *smp;
    int n_ctx;
    int stop_ids[FS_MAX_EOS + 1];
    int n_stop;

    int think;     /* enable_thinking for the next turn */
    char *system;  /* system prompt or NULL (owned) */
    fs_chat_msg *msgs; /* user/assistant turns; content owned */
    size_t n_msgs, cap_msgs;

    int *cached;   /* [n_ctx] the ids in the KV cache, in order */
    int n_cached;
    int *out_ids;  /* [max_tokens] one reply's sampled ids */

    /* the reply being streamed, and how much of it has been displayed */
    char *reply;
    size_t reply_n, reply_cap;
    size_t shown;
    int in_think;
    int tty;       /* stdout is a terminal: faint reasoning */

    /* statistics */
    int turns;
    int last_new, last_reused, last_generated;
    double last_prefill_s, last_decode_s;
} chat;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void push_msg(chat *c, const char *role, const char *content, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        c->cap_msgs = c->cap_msgs ? 2 * c->cap_msgs : 16;
        c->msgs = fs_xrealloc(c->msgs, c->cap_msgs * sizeof *c->msgs);
    }
    char *s = fs_xmalloc(len + 1);
    memcpy(s, content, len);
    s[len] = 0;
    fs_chat_msg m = {role, s, NULL, NULL};
    c->msgs[c->n_msgs++] = m;
}

static void pop_msg(chat *c) {
    if (c->n_msgs) free((char *)c->msgs[--c->n_msgs].content);
}

static void clear_conversation(chat *c) {
    while (c->n_msgs) pop_msg(c);
    fs_session_truncate(c->sess, 0);
    c->n_cached = 0;
    fs_sampler_reset(c->smp);
    c->turns = 0;
    c->last_new = c->last_reused = c->last_generated = 0;
    c->last_prefill_s = c->last_decode_s = 0;
}

/* Render [system] + msgs with the generation prompt and tokenize. */
static int render_ids(chat *c, int **ids, int *n, fs_err *e) {
    size_t n_all = c->n_msgs + (c->system ? 1 : 0);
    fs_chat_msg *all = fs_xmalloc((n_all ? n_all : 1) * sizeof *all);
    size_t k = 0;
    if (c->system) {
        fs_chat_msg s = {"system", c->system, NULL, NULL};
        all[k++] = s;
    }
    memcpy(all + k, c->msgs, c->n_msgs * sizeof *all);
    char *text = NULL;
    int rc = fs_chat_render(all, n_all, 1, c->think, &text, e);
    free(all);
    if (rc) return -1;
    rc = fs_tokenizer_encode(c->tok, text, strlen(text), ids, n, e);
    free(text);
    return rc;
}

/* ---- display ---- */

static void out(const char *s, size_t n) {
    fwrite(s, 1, n, stdout);
}

/* Longest k < len(tag) such that the last k bytes of s are tag's first k. */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t tl = strlen(tag);
    for (size_t k = tl - 1 < n ? tl - 1 : n; k > 0; k--)
        if (!memcmp(s + n - k, tag, k)) return k;
    return 0;
}

static const char *find(const char *s, size_t n, const char *tag) {
    size_t tl = strlen(tag);
    for (size_t i = 0; i + tl <= n; i++)
        if (!memcmp(s + i, tag, tl)) return s + i;
    return NULL;
}

/* Print the part of the reply not shown yet. On a terminal the text from
 * <think> to </think> is dimmed; a tag may arrive split over pieces, so a
 * tail that could begin one is held until the next piece (or final). */
static void show(chat *c, int final) {
    if (!c->tty) {
        out(c->reply + c->shown, c->reply_n - c->shown);
        c->shown = c->reply_n;
        return;
    }
    while (c->shown < c->reply_n) {
        const char *tag = c->in_think ? "</think>" : "<think>";
        const char *s = c->reply + c->shown;
        size_t n = c->reply_n - c->shown;
        const char *hit = find(s, n, tag);
        if (hit) {
            size_t before = (size_t)(hit - s), tl = strlen(tag);
            out(s, before);
            if (c->in_think) {
                out(tag, tl);
                out(RESET, strlen(RESET));
            } else {
                out(FAINT, strlen(FAINT));
                out(tag, tl);
            }
            c->in_think = !c->in_think;
            c->shown += before + tl;
            continue;
        }
        size_t keep = final ? 0 : partial_tag(s, n, tag);
        out(s, n - keep);
        c->shown += n - keep;
        break;
    }
    if (final && c->in_think) out(RESET, strlen(RESET));
}

static int on_text(void *user, const char *text, size_t len) {
    chat *c = user;
    if (c->reply_n + len > c->reply_cap) return 1; /* cannot happen: sized for the worst case */
    memcpy(c->reply + c->reply_n, text, len);
    c->reply_n += len;
    show(c, 0);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0; /* a closed pipe stops the reply */
}

static void context_full(chat *c, int need) {
    if (need > 0)
        fprintf(stderr, "context full (%d tokens): /reset to start over (this turn needs %d)\n", c->n_ctx, need);
    else
        fprintf(stderr, "context full (%d tokens): /reset to start over\n", c->n_ctx);
}

/* One user turn: render, reuse the cached prefix, prefill the rest, stream
 * the reply. Returns 0, or -1 when stdout went away or the engine failed. */
static int turn(chat *c, const char *user_text) {
    fs_err e = {{0}};
    push_msg(c, "user", user_text, strlen(user_text));
    int *ids = NULL, n = 0;
    if (render_ids(c, &ids, &n, &e)) {
        fprintf(stderr, "fs %s: %s\n", c->cmd, e.msg);
        pop_msg(c);
        return 0;
    }
    /* room for the prompt and at least one generated token */
    if (n >= c->n_ctx) {
        context_full(c, n + 1);
        pop_msg(c);
        free(ids);
        return 0;
    }
    int p = 0;
    while (p < c->n_cached && p < n && c->cached[p] == ids[p]) p++;
    if (p == n) p--; /* the last prompt token must be evaluated: its logits pick the first reply token */
    fs_session_truncate(c->sess, p);
    c->n_cached = p;

    c->reply_n = c->shown = 0;
    c->in_think = 0;
    fs_gen_opts go = {0};
    go.max_new_tokens = (int)c->o->max_tokens;
    go.stop_ids = c->stop_ids;
    go.n_stop_ids = c->n_stop;
    go.on_text = on_text;
    go.user = c;
    go.cancel = &interrupted;
    go.ids_out = c->out_ids;

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    fs_gen_stats st;
    memset(&st, 0, sizeof st);
    int gr = fs_generate(c->sess, c->tok, c->smp, ids + p, n - p, &go, &st, &e);
    sigaction(SIGINT, &old, NULL);
    show(c, 1);
    out("\n", 1);
    fflush(stdout);
    int pipe_gone = ferror(stdout);

    /* The cache now holds the prompt and every sampled id but the last. */
    int pos = fs_session_pos(c->sess);
    int k = 0;
    for (int i = p; i < pos; i++) c->cached[i] = i < n ? ids[i] : c->out_ids[k++];
    c->n_cached = pos;
    free(ids);

    if (gr) {
        fprintf(stderr, "fs %s: %s\n", c->cmd, e.msg);
        pop_msg(c);
        fs_session_truncate(c->sess, 0); /* start the next turn from a known state */
        c->n_cached = 0;
        return -1;
    }
    push_msg(c, "assistant", c->reply, c->reply_n);
    c->turns++;
    c->last_new = n - p;
    c->last_reused = p;
    c->last_generated = st.generated_tokens;
    c->last_prefill_s = st.prefill_s;
    c->last_decode_s = st.decode_s;
    if (c->o->verbose)
        fprintf(stderr, "prefilled %d new tokens (%d reused), generated %d, stop: %s\n", n - p, p,
                st.generated_tokens, fs_stop_reason_name(st.stop));
    if (st.stop == FS_STOP_CANCELLED && !pipe_gone) fprintf(stderr, "[interrupted]\n");
    if (st.stop == FS_STOP_MAX_TOKENS) fprintf(stderr, "[reply cut at %ld tokens (-n)]\n", c->o->max_tokens);
    if (st.stop == FS_STOP_CTX_FULL) context_full(c, 0);
    return pipe_gone ? -1 : 0;
}

static void help(void) {
    printf("commands:\n"
           "  /think        thinking mode on (the model reasons in <think>...</think> first)\n"
           "  /no_think     thinking mode off\n"
           "  /reset        forget the conversation and clear the cache\n"
           "  /system TEXT  set the system prompt (empty: none) and reset\n"
           "  /stats        turns, cache use, last reply's prefill and decode speed\n"
           "  /help         this list\n"
           "  /quit         leave (Ctrl-D too)\n"
           "  //text        send \"/text\" as a message\n"
           "Ctrl-C stops a reply while it streams; at the prompt it clears the line.\n");
}

static void stats(chat *c) {
    size_t kv = fs_session_kv_bytes(c->sess);
    printf("turns: %d, thinking: %s, system prompt: %s\n", c->turns, c->think ? "on" : "off",
           c->system ? "set" : "none");
    printf("cache: %d of %d tokens, KV cache %.2f MiB allocated (%.2f MiB in use)\n", c->n_cached, c->n_ctx,
           kv / 1048576.0, (double)kv * c->n_cached / c->n_ctx / 1048576.0);
    if (!c->turns) {
        printf("last reply: none yet\n");
        return;
    }
    double ptps = c->last_prefill_s > 0 ? c->last_new / c->last_prefill_s : 0;
    double dtps = c->last_decode_s > 0 ? c->last_generated / c->last_decode_s : 0;
    printf("last reply: prefilled %d new tokens (%d reused), prefill %.1f tok/s; generated %d tokens, "
           "decode %.1f tok/s\n",
           c->last_new, c->last_reused, ptps, c->last_generated, dtps);
}

/* A line starting with '/': 1 to quit, 0 otherwise. */
static int command(chat *c, const char *line) {
    const char *arg = strchr(line, ' ');
    size_t name_len = arg ? (size_t)(arg - line) : strlen(line);
    while (arg && *arg == ' ') arg++;
#define IS(s) (name_len == strlen(s) && !strncmp(line, s, name_len))
    if (IS("/quit") || IS("/exit") || IS("/bye")) return 1;
    if (IS("/help") || IS("/?")) help();
    else if (IS("/think")) {
        c->think = 1;
        printf("thinking on\n");
    } else if (IS("/no_think")) {
        c->think = 0;
        printf("thinking off\n");
    } else if (IS("/reset")) {
        clear_conversation(c);
        printf("conversation cleared\n");
    } else if (IS("/system")) {
        free(c->system);
        c->system = arg && *arg ? fs_xstrdup(arg) : NULL;
        clear_conversation(c);
        printf(c->system ? "system prompt set; conversation cleared\n"
                         : "system prompt removed; conversation cleared\n");
    } else if (IS("/stats")) stats(c);
    else printf("unknown command '%.*s' (/help lists them)\n", (int)name_len, line);
#undef IS
    fflush(stdout);
    return 0;
}

static void history_path(char *out_path, size_t cap, int make_dir) {
    const char *home = getenv("FS_HOME");
    char dir[2048];
    if (home && *home) snprintf(dir, sizeof dir, "%s", home);
    else if (getenv("HOME")) snprintf(dir, sizeof dir, "%s/.cache/fs", getenv("HOME"));
    else {
        out_path[0] = 0;
        return;
    }
    if (make_dir) { /* mkdir -p, best effort */
        for (char *s = dir + 1; *s; s++)
            if (*s == '/') {
                *s = 0;
                mkdir(dir, 0755);
                *s = '/';
            }
        mkdir(dir, 0755);
    }
    snprintf(out_path, cap, "%s/chat_history", dir);
}

static int open_chat(chat *c, const char *model_dir, fs_err *e) {
    const cli_chat_opts *o = c->o;
    if (fs_model_load(&c->model, model_dir, e)) return -1;
    if (fs_tokenizer_load(&c->tok, model_dir, e)) return -1;
    if (fs_chat_template_check_dir(model_dir, e)) return -1;
    fs_session_opts so = {(int)o->ctx, NULL, (int)o->threads};
    if (fs_session_new(&c->sess, &c->model, &so, e)) return -1;
    c->n_ctx = fs_session_n_ctx(c->sess);

    fs_sampler_params sp;
    fs_sampler_params_default(&sp, &c->model.cfg);
    if (o->temp >= 0) sp.temperature = o->temp;
    if (o->top_k >= 0) sp.top_k = (int)o->top_k;
    if (o->top_p >= 0) sp.top_p = o->top_p;
    if (o->min_p >= 0) sp.min_p = o->min_p;
    if (o->repeat_penalty >= 0) sp.repetition_penalty = o->repeat_penalty;
    sp.presence_penalty = o->presence_penalty;
    if (o->have_seed) {
        sp.seed = o->seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sp.seed = (unsigned long long)ts.tv_sec * 1000000007ULL ^ (unsigned long long)ts.tv_nsec ^
                  ((unsigned long long)getpid() << 32);
    }
    if (fs_sampler_new(&c->smp, c->model.cfg.vocab, &sp, e)) return -1;

    /* stop at the config's eos ids and at <|im_end|>, the end of a turn */
    for (int i = 0; i < c->model.cfg.n_eos; i++) c->stop_ids[c->n_stop++] = c->model.cfg.eos_ids[i];
    int im_end = fs_tokenizer_token_id(c->tok, "<|im_end|>");
    int have = 0;
    for (int i = 0; i < c->n_stop; i++) have |= c->stop_ids[i] == im_end;
    if (im_end >= 0 && !have) c->stop_ids[c->n_stop++] = im_end;

    c->cached = fs_xmalloc((size_t)c->n_ctx * sizeof *c->cached);
    /* fs_generate samples at most min(-n, n_ctx - pos + 1) tokens, and
     * each decodes to at most FS_DETOK_MAX_OUT bytes */
    long max_reply = (o->max_tokens < c->n_ctx ? o->max_tokens : c->n_ctx) + 1;
    c->out_ids = fs_xmalloc((size_t)max_reply * sizeof *c->out_ids);
    c->reply_cap = (size_t)max_reply * FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(c->tok));
    c->reply = fs_xmalloc(c->reply_cap);
    c->system = o->system && *o->system ? fs_xstrdup(o->system) : NULL;
    c->think = o->think;
    c->tty = isatty(STDOUT_FILENO);

    if (o->verbose) {
        const fs_config *g = &c->model.cfg;
        fprintf(stderr, "model: %s  L %d  H %d  Hq %d  Hkv %d  D %d  I %d  V %d\n", model_dir, g->n_layers,
                g->hidden, g->n_heads, g->n_kv_heads, g->head_dim, g->ffn, g->vocab);
        fprintf(stderr, "context: %d tokens  KV cache %.2f MiB\n", c->n_ctx, fs_session_kv_bytes(c->sess) / 1048576.0);
        fprintf(stderr, "sampling: temp %g  top-k %d  top-p %g  min-p %g  seed %llu\n", sp.temperature, sp.top_k,
                sp.top_p, sp.min_p, (unsigned long long)sp.seed);
    }
    return 0;
}

static void close_chat(chat *c) {
    while (c->n_msgs) pop_msg(c);
    free(c->msgs);
    free(c->system);
    free(c->cached);
    free(c->out_ids);
    free(c->reply);
    fs_sampler_free(c->smp);
    fs_session_free(c->sess);
    fs_tokenizer_free(c->tok);
    fs_model_free(&c->model);
}

int cli_chat_main(const char *cmd, const char *model_dir, const cli_chat_opts *o, const char *prompt) {
    chat c;
    memset(&c, 0, sizeof c);
    c.cmd = cmd;
    c.o = o;
    fs_err e = {{0}};
    if (open_chat(&c, model_dir, &e)) {
        close_chat(&c);
        return cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
    }
    int rc = FS_EXIT_OK;
    if (prompt) { /* one question, one answer */
        if (turn(&c, prompt)) rc = FS_EXIT_INPUT;
        close_chat(&c);
        return rc;
    }

    fs_lineedit *le = fs_lineedit_new(STDIN_FILENO, STDOUT_FILENO, HISTORY_MAX);
    int interactive = fs_lineedit_interactive(le);
    char hist[4096];
    history_path(hist, sizeof hist, interactive);
    if (interactive) {
        if (hist[0]) fs_lineedit_history_load(le, hist, &e); /* best effort */
        const fs_config *g = &c.model.cfg;
        printf("fs chat: %s (L %d, H %d, V %d), context %d tokens, thinking %s.\n"
               "/help for commands, Ctrl-C stops a reply, Ctrl-D quits.\n",
               model_dir, g->n_layers, g->hidden, g->vocab, c.n_ctx, c.think ? "on" : "off");
        fflush(stdout);
    }
    for (;;) {
        char *line = NULL;
        int r = fs_lineedit_read(le, interactive ? ">>> " : "", &line, &e);
        if (r == FS_LE_EOF) break;
        if (r == FS_LE_CANCEL) continue;
        if (r == FS_LE_ERROR) {
            rc = cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
            break;
        }
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) line[--len] = 0;
        if (!len) {
            free(line);
            continue;
        }
        if (interactive) {
            fs_lineedit_history_add(le, line);
            if (hist[0]) fs_lineedit_history_save(le, hist, &e); /* best effort */
        }
        int quit = 0;
        if (line[0] == '/' && line[1] != '/') quit = command(&c, line);
        else if (turn(&c, line[0] == '/' ? line + 1 : line)) quit = ferror(stdout) != 0;
        if (interactive && !quit) {
            putchar('\n');
            fflush(stdout);
        }
        free(line);
        if (quit) break;
    }
    fs_lineedit_free(le);
    close_chat(&c);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: fs chat [options]\n"
               "  Talk to a chat model: line editing and history on a terminal, one user turn\n"
               "  per line when stdin is not a terminal (replies then have no escape codes:\n"
               "  each is printed as the model wrote it, <think>...</think> included, plus a\n"
               "  newline; notices go to stderr). /help inside lists the commands.\n");
    cli_chat_usage_options(f);
    fprintf(f, "Exit: 0 at /quit or end of input, 1 usage, 2 bad input (unreadable model).\n");
}

int fs_cmd_chat(int argc, char **argv) {
    cli_chat_opts o;
    cli_chat_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_chat_flag(CMD, argc, argv, &i, &o);
        if (r < 0) return FS_EXIT_USAGE;
        if (r == 0) return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", argv[i]);
    }
    const char *dir = cli_model_dir_default(CMD, o.model);
    if (!dir) return FS_EXIT_USAGE;
    return cli_chat_main(CMD, dir, &o, NULL);
}
