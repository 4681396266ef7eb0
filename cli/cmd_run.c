/* cmd_run.c - `fs run`: the one command a newcomer needs.
 *
 *   fs run                             chat with the shipped tiny model (offline)
 *   fs run Qwen/Qwen3-0.6B             pull it if needed, then chat
 *   fs run ./my-model "Why is the sky blue?"   one answer, then exit
 *
 * Which model:
 *   no model argument   -m / $FS_MODEL / the shipped models/tiny
 *                       (cli_model_dir_default)
 *   an existing DIR     used as it is
 *   OWNER/NAME          a hub repo: if fs_pull_default_dir(repo) already
 *                       holds a complete model (config, tokenizer, every
 *                       weight file) it is used, else fs_pull fetches it
 *                       first (resuming whatever an earlier pull left), with
 *                       progress on stderr.
 * Then it is `fs chat` (cmd_chat.c), or, given a PROMPT, one user message
 * through the chat template, the reply on stdout, and exit.
 *
 * Docs: docs/chat.md, docs/pull.md
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "pull.h"
#include "util.h"

#define CMD "run"

static void usage(FILE *f) {
    fprintf(f, "usage: fs run [REPO_ID | DIR] [PROMPT] [options]\n"
               "  Chat with a model (see fs chat), or answer PROMPT once and exit.\n"
               "  No model: -m, $FS_MODEL, else the shipped models/tiny (works offline).\n"
               "  DIR: a model directory. REPO_ID (OWNER/NAME): a Hugging Face repo, pulled\n"
               "  into ${FS_HOME:-~/.cache/fs}/models/OWNER/NAME unless it is already there\n"
               "  ($HF_ENDPOINT and $HF_TOKEN are honoured, as in fs pull).\n"
               "  -p, --prompt TEXT        the prompt (instead of the second argument)\n");
    cli_chat_usage_options(f);
    fprintf(f, "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, failed download).\n");
}

static int exists(const char *dir, const char *name) {
    char p[4096];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p) return 0;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Does dir hold everything fs_pull would fetch? (A pull in progress keeps
 * its files as FILE.part, so a missing name means "not finished".) */
static int complete_model(const char *dir) {
    if (!exists(dir, "config.json") || !exists(dir, "tokenizer.json") || !exists(dir, "tokenizer_config.json"))
        return 0;
    if (exists(dir, "model.safetensors")) return 1;
    if (!exists(dir, "model.safetensors.index.json")) return 0;
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, "model.safetensors.index.json") >= sizeof p) return 0;
    char *text;
    size_t len;
    fs_err e = {{0}};
    if (fs_read_file(p, &text, &len, &e)) return 0;
    fs_json_doc doc;
    int ok = 0;
    if (!fs_json_parse(&doc, text, len, &e)) {
        const fs_json *wm = fs_json_get(doc.root, "weight_map");
        ok = fs_json_is(wm, FS_JSON_OBJECT);
        for (const fs_json *w = ok ? wm->child : NULL; w && ok; w = w->next) {
            const char *f = fs_json_string(w);
            ok = f && !strstr(f, "..") && exists(dir, f);
        }
        fs_json_free(&doc);
    }
    free(text);
    return ok;
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

int fs_cmd_run(int argc, char **argv) {
    cli_chat_opts o;
    cli_chat_opts_init(&o);
    const char *pos[2] = {NULL, NULL}, *prompt = NULL;
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_flag(argc, argv, &i, "-p", "--prompt", &prompt);
        if (r < 0) return FS_EXIT_USAGE;
        if (r > 0) continue;
        r = cli_chat_flag(CMD, argc, argv, &i, &o);
        if (r < 0) return FS_EXIT_USAGE;
        if (r > 0) continue;
        if (a[0] == '-' && a[1]) return cli_fail(CMD, FS_EXIT_USAGE, "unknown option '%s' (see --help)", a);
        if (n_pos == 2) return cli_fail(CMD, FS_EXIT_USAGE, "too many arguments: '%s' (see --help)", a);
        pos[n_pos++] = a;
    }
    if (n_pos == 2 && prompt) return cli_fail(CMD, FS_EXIT_USAGE, "give the prompt once: as PROMPT or with -p");
    if (n_pos == 2) prompt = pos[1];
    if (prompt && !*prompt) return cli_fail(CMD, FS_EXIT_USAGE, "the prompt is empty");
    if (pos[0] && o.model) return cli_fail(CMD, FS_EXIT_USAGE, "give the model once: as an argument or with -m");

    const char *dir;
    char pulled[4096];
    struct stat st;
    if (!pos[0]) {
        dir = cli_model_dir_default(CMD, o.model);
        if (!dir) return FS_EXIT_USAGE;
    } else if (stat(pos[0], &st) == 0 && S_ISDIR(st.st_mode)) {
        dir = pos[0];
    } else {
        fs_err e = {{0}};
        if (fs_pull_check_repo_id(pos[0], &e))
            return cli_fail(CMD, FS_EXIT_USAGE, "'%s' is neither a model directory nor a hub repo id (%s)", pos[0],
                            e.msg);
        if (fs_pull_default_dir(pos[0], pulled, sizeof pulled, &e)) return cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        if (!complete_model(pulled)) {
            int tty = isatty(STDERR_FILENO);
            fs_pull_opts po;
            memset(&po, 0, sizeof po);
            po.progress = on_progress;
            po.ctx = &tty;
            fprintf(stderr, "pulling %s into %s\n", pos[0], pulled);
            if (fs_pull(pos[0], pulled, &po, &e)) {
                if (tty) fprintf(stderr, "\n");
                return cli_fail(CMD, FS_EXIT_INPUT, "pull %s: %s", pos[0], e.msg);
            }
        }
        dir = pulled;
    }
    return cli_chat_main(CMD, dir, &o, prompt);
}
