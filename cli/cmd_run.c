/* cmd_run.c - `fs run`: the one command a newcomer needs.
 *
 *   fs run                             chat with the shipped tiny model (offline)
 *   fs run "Once upon a time"          one answer from the default model
 *   fs run Qwen/Qwen3-0.6B             pull it if needed, then chat
 *   fs run llama3.2-1b                 the same, by a short name fs knows
 *                                      (pull.c: meta-llama/Llama-3.2-1B-Instruct)
 *   fs run ./my-model "Why is the sky blue?"   one answer, then exit
 *
 * What the arguments are (at most two; -m and -p name them outright):
 *   MODEL PROMPT        two arguments: the first is the model, the second
 *                       the prompt.
 *   ARG                 one argument is the model if it is an existing
 *                       directory or a hub repo id (OWNER/NAME: one '/',
 *                       letters, digits, '-', '_', '.'), else the prompt for
 *                       the default model. A prompt cannot be a repo id
 *                       (those have no spaces), except a single word with a
 *                       slash ("either/or"): `fs run -p either/or` says it.
 *                       With -m or -p given, ARG is the other one.
 * The model:
 *   none                -m / $FS_MODEL / the shipped models/tiny
 *   an existing DIR     used as it is
 *   OWNER/NAME          a hub repo: if fs_pull_default_dir(repo) already
 *                       holds a complete model (config, tokenizer, every
 *                       weight file) it is used, else fs_pull fetches it
 *                       first (resuming whatever an earlier pull left), with
 *                       progress on stderr.
 * Then it is `fs chat` (cmd_chat.c), or, given a PROMPT, one user message
 * through the chat template, the reply on stdout, and exit (130 when
 * Ctrl-C stopped it; 2 when the prompt is not UTF-8, does not fit the
 * context, or stdout cannot be written).
 *
 * Docs: docs/chat.md, docs/pull.md
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "opts.h"
#include "pull.h"
#include "util.h"

#define CMD "run"

static void usage(FILE *f) {
    fprintf(f, "usage: fs run [MODEL] [PROMPT] [options]\n"
               "  Chat with a model (see fs chat), or answer PROMPT once and exit.\n"
               "  MODEL: a model directory, a Hugging Face repo id OWNER/NAME, or a short\n"
               "  name of `fs pull --list` (llama3.2-1b, qwen3-1.7b, ...), pulled into\n"
               "  ${FS_HOME:-~/.cache/fs}/models/OWNER/NAME unless it is already there\n"
               "  ($HF_ENDPOINT and $HF_TOKEN are honoured, as in fs pull). No MODEL: -m,\n"
               "  $FS_MODEL, else the shipped models/tiny (works offline).\n"
               "  One argument that is neither a directory nor OWNER/NAME is the PROMPT\n"
               "  (fs run \"Once upon a time\"); -p always names the prompt.\n"
               "  -p, --prompt TEXT            the prompt (instead of the PROMPT argument)\n");
    cli_chat_usage(f);
    fprintf(f, "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, failed download, a prompt\n"
               "that is not UTF-8 or does not fit the context, stdout not writable), 130 Ctrl-C.\n");
}

static const char *size_str(char *buf, size_t cap, int64_t bytes) {
    if (bytes < (1 << 20)) snprintf(buf, cap, "%.1f KiB", bytes / 1024.0);
    else if (bytes < (1LL << 30)) snprintf(buf, cap, "%.1f MiB", bytes / 1048576.0);
    else snprintf(buf, cap, "%.2f GiB", bytes / 1073741824.0);
    return buf;
}

/* Progress: one line per file; on a terminal a live byte count as well. */
static void on_progress(const fs_pull_progress *p, void *ctx) {
    int tty = *(int *)ctx;
    char a[32], b[32];
    switch (p->event) {
    case FS_PULL_START:
        if (p->resumed_from > 0) fprintf(stderr, "%s: resuming at %lld bytes\n", p->file, (long long)p->resumed_from);
        break;
    case FS_PULL_PROGRESS:
        if (tty) {
            if (p->total > 0)
                fprintf(stderr, "\r%s: %s / %s (%d%%)\x1b[K", p->file, size_str(a, sizeof a, p->done),
                        size_str(b, sizeof b, p->total), (int)(100.0 * p->done / p->total));
            else
                fprintf(stderr, "\r%s: %s\x1b[K", p->file, size_str(a, sizeof a, p->done));
        }
        break;
    case FS_PULL_VERIFY:
        if (tty) fprintf(stderr, "\r%s: verifying\x1b[K", p->file);
        break;
    case FS_PULL_DONE:
        fprintf(stderr, "%s%s: downloaded %s\n", tty ? "\r\x1b[K" : "", p->file, size_str(a, sizeof a, p->done));
        break;
    case FS_PULL_UP_TO_DATE:
        fprintf(stderr, "%s: up to date\n", p->file);
        break;
    case FS_PULL_ABSENT:
        break;
    case FS_PULL_RESTART:
        fprintf(stderr, "%s%s: the server ignored the resume request; starting over\n", tty ? "\r\x1b[K" : "",
                p->file);
        break;
    }
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* OWNER/NAME, or one of the short names fs knows (pull.c: "llama3.2-1b"). */
static int is_repo_id(const char *s) {
    fs_err e;
    return fs_pull_check_repo_id(s, &e) == 0 || fs_pull_find_known(s) != NULL;
}

/* The model directory for MODEL (a directory, or a repo pulled if need
 * be) into out. Returns 0 or an exit code (the error printed). */
static int resolve_model(const char *model, char *out, size_t cap) {
    fs_err e = {{0}};
    if (is_dir(model)) {
        snprintf(out, cap, "%s", model);
        return 0;
    }
    const fs_pull_known *k = fs_pull_find_known(model);
    if (k) model = k->repo;   /* a short name: its repo */
    if (fs_pull_check_repo_id(model, &e))
        return cli_fail(CMD, FS_EXIT_USAGE, "'%s' is neither a model directory nor a hub repo id (%s)", model, e.msg);
    if (fs_pull_default_dir(model, out, cap, &e)) return cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
    if (cli_model_complete(out)) return 0;
    int tty = cli_tty_err();
    fs_pull_opts po;
    memset(&po, 0, sizeof po);
    po.progress = on_progress;
    po.ctx = &tty;
    fprintf(stderr, "pulling %s into %s\n", model, out);
    if (fs_pull(model, out, &po, &e)) {
        if (tty) fprintf(stderr, "\n");
        return cli_fail(CMD, FS_EXIT_INPUT, "pull %s: %s", model, e.msg);
    }
    return 0;
}

int fs_cmd_run(int argc, char **argv) {
    cli_chat_opts co;
    cli_chat_opts_init(&co, CMD);
    const char *pos[2] = {NULL, NULL}, *prompt = NULL;
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_flag(CMD, argc, argv, &i, "-p", "--prompt", &prompt);
        if (r == 0) r = cli_chat_parse(&co, argc, argv, &i);
        if (r < 0) return FS_EXIT_USAGE;
        if (r > 0) continue;
        if (a[0] == '-' && a[1]) return cli_fail(CMD, FS_EXIT_USAGE, "unknown option '%s' (see --help)", a);
        if (n_pos == 2) return cli_fail(CMD, FS_EXIT_USAGE, "too many arguments: '%s' (see --help)", a);
        pos[n_pos++] = a;
    }
    /* sort the arguments into model and prompt (see the top) */
    const char *model = co.o.model;
    if (n_pos == 2) {
        if (model) return cli_fail(CMD, FS_EXIT_USAGE, "give the model once: as an argument or with -m");
        if (prompt) return cli_fail(CMD, FS_EXIT_USAGE, "give the prompt once: as PROMPT or with -p");
        model = pos[0];
        prompt = pos[1];
    } else if (n_pos == 1) {
        if (model && prompt) return cli_fail(CMD, FS_EXIT_USAGE, "unexpected argument '%s' (-m and -p are given)", pos[0]);
        if (model) prompt = pos[0];
        else if (prompt || is_dir(pos[0]) || is_repo_id(pos[0])) model = pos[0];
        else prompt = pos[0];
    }
    if (prompt && !*prompt) return cli_fail(CMD, FS_EXIT_USAGE, "the prompt is empty");

    char dir[4096];
    if (!model || !*model) {
        const char *d = cli_model_dir(CMD, model);
        if (!d) return FS_EXIT_USAGE;
        snprintf(dir, sizeof dir, "%s", d);
    } else {
        int rc = resolve_model(model, dir, sizeof dir);
        if (rc) return rc;
    }
    return cli_chat_main(&co, dir, prompt);
}
