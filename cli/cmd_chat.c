/* cmd_chat.c - `fs chat`: talk to a model, one turn after another.
 *
 *   fs chat                        the shipped tiny model (or $FS_MODEL)
 *   fs chat -m MODEL --system "You are terse." --no-think
 *
 * Thinking mode starts as the model's default (chat_template.h,
 * fs_chat_template_thinking: on for Qwen3, off for models/tiny, whose
 * tokenizer_config.json says "enable_thinking": false; no switch at all
 * for a template that never reads enable_thinking); --think / --no-think
 * and /think, /no_think override it. The banner says which it is.
 *   printf 'Hi\n/stats\n' | fs chat --temp 0      scripted: one turn a line
 *
 * The turns themselves - the chat template, the KV cache kept across
 * turns, what a cut-short reply leaves in the history - are the engine's
 * (src/engine.c, fs_conversation). This file reads input, runs commands
 * and prints.
 *
 * Output. On a terminal the reasoning block <think>...</think> is printed
 * dimmed (ANSI faint) and the answer plainly, and after each reply one dim
 * line on stderr gives the speed. When stdout is not a terminal there are
 * no escape codes at all: each reply is written exactly as the model wrote
 * it (reasoning inside its <think>...</think> tags), followed by one
 * newline. Command output (/stats, /help, ...) goes to stdout as plain
 * lines; notices (interrupted, context full, -n reached) go to stderr.
 *
 * Input. On a terminal: the line editor of lineedit.h with history
 * (${FS_HOME:-~/.cache/fs}/chat_history); a paste of several lines is one
 * turn (bracketed paste). Otherwise one user turn per line of stdin (empty
 * lines skipped), ending at end of input with status 0. Either way a line
 * starting with """ opens a block that runs to a line ending with """: one
 * turn of several lines, as in ollama. Lines starting with '/' are
 * commands; "//text" sends "/text".
 *
 * Ctrl-C while a reply is computed (its prefill too) stops that reply; what
 * was written stays in the conversation as the assistant turn. Ctrl-C at
 * the prompt clears the line, Ctrl-D exits.
 *
 * Docs: docs/chat.md
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "lineedit.h"
#include "opts.h"

#define GROUPS (CLI_MODEL | CLI_RUNTIME | CLI_SAMPLING | CLI_VERBOSE)
#define DEFAULT_TOKENS 1024
#define HISTORY_MAX 1000
#define BLOCK "\"\"\""

/* ---- options, shared with `fs run` ---- */

void cli_chat_opts_init(cli_chat_opts *c, const char *cmd) {
    memset(c, 0, sizeof *c);
    cli_opts_init(&c->o, cmd, GROUPS, DEFAULT_TOKENS);
    c->think = -1; /* the model's default */
}

int cli_chat_parse(cli_chat_opts *c, int argc, char **argv, int *i) {
    int r = cli_opts_parse(&c->o, argc, argv, i);
    if (r) return r;
    if (!strcmp(argv[*i], "--no-think") || !strcmp(argv[*i], "--think")) {
        c->think = argv[*i][2] == 't';
        return 1;
    }
    return cli_flag(c->o.cmd, argc, argv, i, "--system", NULL, &c->system);
}

void cli_chat_usage(FILE *f) {
    cli_opts_usage(f, GROUPS, DEFAULT_TOKENS);
    fprintf(f, "  %-28s %s\n  %-28s %s\n  %-28s %s\n", "--system TEXT", "system prompt", "--think",
            "start with thinking on (default: the model's own default)", "--no-think",
            "start with thinking off (Qwen3's enable_thinking=false)");
}

/* ---- the reply on screen ---- */

/* A streaming filter (opts.h): on a terminal, text from <think> to
 * </think> is dimmed. A tag may arrive split over pieces, so the bytes
 * that match the start of the next tag are held until it completes or
 * fails. */
void cli_think_display_text(cli_think_display *d, const char *s, size_t n) {
    if (!d->tty) {
        cli_out(s, n, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *tag = d->in_think ? "</think>" : "<think>";
        if (s[i] == tag[d->matched]) {
            if (tag[++d->matched]) continue;
            /* the whole tag: dim from <think>, plain after </think> */
            if (!d->in_think) cli_out(CLI_FAINT, strlen(CLI_FAINT), 0);
            cli_out(tag, strlen(tag), 0);
            if (d->in_think) cli_out(CLI_RESET, strlen(CLI_RESET), 0);
            d->in_think = !d->in_think;
            d->matched = 0;
            continue;
        }
        /* not the tag after all: what was held is text. Neither tag has a
         * proper suffix that is also its prefix, so s[i] can only start
         * the tag afresh. */
        cli_out(tag, d->matched, 0);
        d->matched = s[i] == tag[0];
        if (!d->matched) cli_out(s + i, 1, 0);
    }
}

void cli_think_display_end(cli_think_display *d) {
    if (d->tty) {
        const char *tag = d->in_think ? "</think>" : "<think>";
        cli_out(tag, d->matched, 0);
        if (d->in_think) cli_out(CLI_RESET, strlen(CLI_RESET), 0);
    }
    d->matched = 0;
    d->in_think = 0;
}

/* ---- the conversation ---- */

typedef struct chat {
    const cli_chat_opts *co;
    const char *cmd;
    fs_engine *g;
    fs_seq *q;
    fs_conversation *c;
    cli_think_display d;
    int one_shot;          /* fs run DIR PROMPT: no /reset to suggest */
    fs_seq_stats last;     /* the last kept turn, for /stats */
} chat;

static int on_text(void *user, const char *text, size_t len) {
    chat *ch = user;
    cli_think_display_text(&ch->d, text, len);
    return cli_out(NULL, 0, 1); /* flush; a closed pipe or a full disk stops the reply */
}

static void context_full(chat *ch, int need) {
    int n_ctx = fs_seq_n_ctx(ch->q);
    if (need > 0)
        fprintf(stderr, "context full (%d tokens): /reset to start over (this turn needs %d)\n", n_ctx, need);
    else
        fprintf(stderr, "context full (%d tokens): /reset to start over\n", n_ctx);
}

/* One user turn. Returns FS_EXIT_OK, or the exit code of a turn that
 * failed (the chat loop goes on unless stdout is gone; a one-shot run
 * exits with it). */
static int turn(chat *ch, const char *user_text) {
    fs_err e = {{0}};
    const cli_opts *o = &ch->co->o;
    fs_seq_gen go = {0};
    go.max_new_tokens = (int)o->max_tokens;
    go.stop_strings = o->stops;
    go.n_stop_strings = o->n_stops;
    go.on_text = on_text;
    go.on_prefill = cli_prefill_progress;
    go.user = ch;
    fs_seq_stats st;
    cli_sigint_catch();
    int r = fs_conversation_turn(ch->c, user_text, &go, &st, &e);
    cli_sigint_release();
    cli_status_clear();
    cli_think_display_end(&ch->d);

    if (r == FS_SEQ_TOO_LONG) {
        if (ch->one_shot) return cli_fail(ch->cmd, FS_EXIT_INPUT, "%s (raise -c/--ctx)", e.msg);
        context_full(ch, st.prompt_tokens + 1);
        return FS_EXIT_INPUT;
    }
    /* a reply (even an empty or a cut one) ends with a newline; a turn
     * cancelled before its first token left none */
    int dropped = st.stop == FS_STOP_CANCELLED && st.generated == 0;
    if (st.generated > 0 || (r == 0 && !dropped)) cli_out("\n", 1, 1);
    if (r) return cli_fail(ch->cmd, FS_EXIT_INPUT, "%s", e.msg);
    if (cli_out(NULL, 0, 1)) return cli_out_close(ch->cmd); /* "cannot write", before any statistics */
    if (!dropped) ch->last = st;
    if (o->verbose)
        fprintf(stderr, "prefilled %d new tokens (%d reused), generated %d, stop: %s\n", st.prefilled, st.reused,
                st.generated, fs_stop_reason_name(st.stop));
    if (st.stop == FS_STOP_CANCELLED) fprintf(stderr, "[interrupted]\n");
    if (st.stop == FS_STOP_MAX_TOKENS) fprintf(stderr, "[reply cut at %ld tokens (-n)]\n", o->max_tokens);
    if (st.stop == FS_STOP_CTX_FULL) {
        if (ch->one_shot) fprintf(stderr, "[reply cut: the context of %d tokens is full]\n", fs_seq_n_ctx(ch->q));
        else context_full(ch, 0);
    }
    cli_speed_line(&st);
    return st.stop == FS_STOP_CANCELLED ? FS_EXIT_CANCELLED : FS_EXIT_OK;
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
           "  \"\"\"           start a message of several lines; a line ending with \"\"\" ends it\n"
           "Ctrl-C stops a reply; at the prompt it clears the line.\n");
}

static void stats(chat *ch) {
    int n_ctx = fs_seq_n_ctx(ch->q), cached;
    fs_seq_tokens(ch->q, &cached);
    size_t kv = fs_session_kv_bytes(fs_seq_session(ch->q));
    printf("turns: %d, thinking: %s, system prompt: %s\n", fs_conversation_turns(ch->c),
           fs_conversation_thinking(ch->c) == FS_THINK_NONE ? "none (no switch in the chat template)"
           : fs_conversation_think(ch->c)                   ? "on"
                                                            : "off",
           fs_conversation_system(ch->c) ? "set" : "none");
    printf("cache: %d of %d tokens, KV cache %.2f MiB allocated (%.2f MiB in use)\n", cached, n_ctx,
           kv / 1048576.0, (double)kv * cached / n_ctx / 1048576.0);
    if (!fs_conversation_turns(ch->c)) {
        printf("last reply: none yet\n");
        return;
    }
    const fs_seq_stats *st = &ch->last;
    double ptps = st->prefill_s > 0 ? st->prefilled / st->prefill_s : 0;
    double dtps = st->decode_s > 0 ? st->generated / st->decode_s : 0;
    printf("last reply: prefilled %d new tokens (%d reused), prefill %.1f tok/s; generated %d tokens, "
           "decode %.1f tok/s\n",
           st->prefilled, st->reused, ptps, st->generated, dtps);
}

static void reset(chat *ch) {
    fs_conversation_reset(ch->c);
    memset(&ch->last, 0, sizeof ch->last);
}

/* A line starting with '/': 1 to quit, 0 otherwise. */
static int command(chat *ch, const char *line) {
    const char *arg = strchr(line, ' ');
    size_t name_len = arg ? (size_t)(arg - line) : strlen(line);
    while (arg && *arg == ' ') arg++;
    int is_quit = 0;
#define IS(s) (name_len == strlen(s) && !strncmp(line, s, name_len))
    if (IS("/quit") || IS("/exit") || IS("/bye")) is_quit = 1;
    else if (IS("/help") || IS("/?")) help();
    else if ((IS("/think") || IS("/no_think")) && fs_conversation_thinking(ch->c) == FS_THINK_NONE)
        printf("this model's chat template has no thinking switch (it never reads enable_thinking)\n");
    else if (IS("/think")) {
        fs_conversation_set_think(ch->c, 1);
        printf("thinking on\n");
    } else if (IS("/no_think")) {
        fs_conversation_set_think(ch->c, 0);
        printf("thinking off\n");
    } else if (IS("/reset")) {
        reset(ch);
        printf("conversation cleared\n");
    } else if (IS("/system")) {
        fs_conversation_set_system(ch->c, arg);
        reset(ch);
        printf(fs_conversation_system(ch->c) ? "system prompt set; conversation cleared\n"
                                             : "system prompt removed; conversation cleared\n");
    } else if (IS("/stats")) stats(ch);
    else printf("unknown command '%.*s' (/help lists them)\n", (int)name_len, line);
#undef IS
    cli_out(NULL, 0, 1);
    return is_quit;
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

static void trim_end(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
}

static int ends_with_block(const char *s) {
    size_t n = strlen(s);
    return n >= 3 && !strcmp(s + n - 3, BLOCK);
}

/* One user input: a line, or a """ block - the rest of the first line,
 * then whole lines up to one that ends with """ (that line's text before
 * the quotes included), joined with newlines. End of input inside a block
 * sends what was read; Ctrl-C drops the block. Returns an FS_LE_ code. */
static int read_input(fs_lineedit *le, int interactive, char **out, fs_err *e) {
    char *line = NULL;
    int r = fs_lineedit_read(le, interactive ? ">>> " : "", &line, e);
    if (r != FS_LE_OK) return r;
    trim_end(line);
    if (strncmp(line, BLOCK, 3) != 0) {
        *out = line;
        return FS_LE_OK;
    }
    size_t cap = strlen(line) + 64, len = 0;
    char *buf = fs_xmalloc(cap);
    const char *first = line + 3;
    int done = ends_with_block(first) && strlen(first) >= 3;
    len = strlen(first) - (done ? 3 : 0);
    memcpy(buf, first, len);
    free(line);
    while (!done) {
        r = fs_lineedit_read(le, interactive ? "... " : "", &line, e);
        if (r == FS_LE_EOF) break;
        if (r != FS_LE_OK) {
            free(buf);
            return r;
        }
        trim_end(line);
        done = ends_with_block(line);
        size_t k = strlen(line) - (done ? 3 : 0);
        if (len + k + 2 > cap) buf = fs_xrealloc(buf, cap = 2 * (len + k + 2));
        if (len && !(done && k == 0)) buf[len++] = '\n'; /* a lone closing """ adds no line */
        memcpy(buf + len, line, k);
        len += k;
        free(line);
    }
    buf[len] = 0;
    *out = buf;
    return FS_LE_OK;
}

/* What the banner says about thinking: what the model offers, what is on
 * now, and why. */
static void think_banner(const chat *ch, char *buf, size_t cap) {
    int mode = fs_conversation_thinking(ch->c), on = fs_conversation_think(ch->c);
    if (mode == FS_THINK_NONE)
        snprintf(buf, cap, "no thinking mode (its chat template has no switch)");
    else if (ch->co->think >= 0)
        snprintf(buf, cap, "thinking %s (%s; the model's default is %s)", on ? "on" : "off",
                 on ? "--think" : "--no-think", mode == FS_THINK_ON ? "on" : "off");
    else
        snprintf(buf, cap, "thinking %s (the model's default; %s)", on ? "on" : "off",
                 on ? "/no_think turns it off" : "/think turns it on");
}

static void close_chat(chat *ch) {
    fs_conversation_free(ch->c);
    fs_seq_free(ch->q);
    fs_engine_free(ch->g);
}

int cli_chat_main(const cli_chat_opts *co, const char *model_dir, const char *prompt) {
    chat ch;
    memset(&ch, 0, sizeof ch);
    ch.co = co;
    ch.cmd = co->o.cmd;
    ch.one_shot = prompt != NULL;
    ch.d.tty = isatty(STDOUT_FILENO);
    fs_err e = {{0}};
    int rc = cli_opts_open(&co->o, model_dir, FS_ENGINE_TOKENIZER, &ch.g);
    if (!rc) rc = cli_opts_seq(&co->o, ch.g, &ch.q);
    if (!rc && fs_conversation_new(&ch.c, ch.q, &e)) rc = cli_fail(ch.cmd, FS_EXIT_INPUT, "%s", e.msg);
    if (rc) {
        close_chat(&ch);
        return rc;
    }
    fs_seq_set_cancel(ch.q, &cli_interrupted);
    fs_conversation_set_system(ch.c, co->system);
    if (co->think >= 0) fs_conversation_set_think(ch.c, co->think);
    if (co->o.verbose) cli_opts_describe(&co->o, ch.g, ch.q);

    if (prompt) { /* one question, one answer */
        rc = turn(&ch, prompt);
        int out_rc = cli_out_close(ch.cmd);
        close_chat(&ch);
        return rc ? rc : out_rc;
    }

    fs_lineedit *le = fs_lineedit_new(STDIN_FILENO, STDOUT_FILENO, HISTORY_MAX);
    int interactive = fs_lineedit_interactive(le);
    char hist[4096];
    history_path(hist, sizeof hist, interactive);
    if (interactive) {
        if (hist[0]) fs_lineedit_history_load(le, hist, &e); /* best effort */
        const fs_config *g = &fs_engine_model(ch.g)->cfg;
        char think[128];
        think_banner(&ch, think, sizeof think);
        printf("fs chat: %s (L %d, H %d, V %d), context %d tokens, %s.\n"
               "/help for commands, \"\"\" for several lines, Ctrl-C stops a reply, Ctrl-D quits.\n",
               fs_engine_dir(ch.g), g->n_layers, g->hidden, g->vocab, fs_seq_n_ctx(ch.q), think);
        cli_out(NULL, 0, 1);
    }
    for (;;) {
        char *line = NULL;
        int r = read_input(le, interactive, &line, &e);
        if (r == FS_LE_EOF) break;
        if (r == FS_LE_CANCEL) continue;
        if (r == FS_LE_ERROR) {
            rc = cli_fail(ch.cmd, FS_EXIT_INPUT, "%s", e.msg);
            break;
        }
        if (!line[0]) {
            free(line);
            continue;
        }
        if (interactive) {
            fs_lineedit_history_add(le, line);
            if (hist[0]) fs_lineedit_history_save(le, hist, &e); /* best effort */
        }
        int quit = 0;
        if (line[0] == '/' && line[1] != '/') quit = command(&ch, line);
        else turn(&ch, line[0] == '/' ? line + 1 : line);
        if (cli_out(NULL, 0, 1)) quit = 1; /* stdout is gone: nobody reads the replies */
        if (interactive && !quit) {
            putchar('\n');
            cli_out(NULL, 0, 1);
        }
        free(line);
        if (quit) break;
    }
    fs_lineedit_free(le);
    close_chat(&ch);
    int out_rc = cli_out_close(co->o.cmd);
    return rc ? rc : out_rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: fs chat [options]\n"
               "  Talk to a chat model: line editing and history on a terminal, one user turn\n"
               "  per line when stdin is not a terminal (replies then have no escape codes:\n"
               "  each is printed as the model wrote it, <think>...</think> included, plus a\n"
               "  newline; notices go to stderr). A line starting with \"\"\" begins a message of\n"
               "  several lines, up to a line ending with \"\"\". /help inside lists the commands.\n");
    cli_chat_usage(f);
    fprintf(f, "Exit: 0 at /quit or end of input, 1 usage, 2 bad input (unreadable model,\n"
               "stdout not writable).\n");
}

int fs_cmd_chat(int argc, char **argv) {
    cli_chat_opts co;
    cli_chat_opts_init(&co, "chat");
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_chat_parse(&co, argc, argv, &i);
        if (r < 0) return FS_EXIT_USAGE;
        if (r == 0) return cli_fail("chat", FS_EXIT_USAGE, "unknown argument '%s' (see --help)", argv[i]);
    }
    return cli_chat_main(&co, NULL, NULL);
}
