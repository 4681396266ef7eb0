/* cmd_pull.c - `fs pull REPO_ID [--dir DIR] [--revision REV]`: download a
 * model from the Hugging Face hub (see src/pull.h for how).
 *
 * stdout gets one line, the model directory, so scripts can write
 *   fs run -m "$(fs pull Qwen/Qwen3-0.6B)"
 * stderr gets the progress: a live bar when it is a terminal, one plain line
 * per file otherwise (logs and CI).
 *
 * Docs: docs/pull.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pull.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs pull REPO_ID|NAME [--dir DIR] [--revision REV]\n"
            "       fs pull --list\n"
            "\n"
            "Download a model (config, tokenizer, safetensors weights) from the\n"
            "Hugging Face hub and print the directory it is in.\n"
            "\n"
            "  REPO_ID          OWNER/NAME, e.g. Qwen/Qwen3-0.6B\n"
            "  NAME             a short name fs knows, e.g. llama3.2-1b (--list shows them)\n"
            "  --list           the models fs knows: name, repo, architecture, gated\n"
            "  --dir DIR        download into DIR (default:\n"
            "                   ${FS_HOME:-$HOME/.cache/fs}/models/OWNER/NAME)\n"
            "  --revision REV   branch, tag or commit (default: main)\n"
            "\n"
            "Interrupted downloads resume where they stopped when run again;\n"
            "files already complete are skipped.\n"
            "\n"
            "Gated repos (Meta's Llama): accept the licence on huggingface.co with your\n"
            "account, then set HF_TOKEN to an access token of that account.\n"
            "Environment: HF_TOKEN (access token for gated or private repos),\n"
            "HF_ENDPOINT (default https://huggingface.co), FS_HOME.\n"
            "Needs the curl program.\n");
}

/* "1.5 MB": decimal units, as download sizes are usually quoted. */
static void human(char *out, size_t cap, double bytes) {
    const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) bytes /= 1000, u++;
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

typedef struct view {
    int tty;       /* stderr is a terminal: draw a bar */
    int bar_drawn; /* a bar line is on screen and must be cleared */
} view;

static void clear_bar(view *v) {
    if (v->bar_drawn) fputs("\r\033[K", stderr);
    v->bar_drawn = 0;
}

static void on_progress(const fs_pull_progress *p, void *ctx) {
    view *v = ctx;
    char done[32], total[32], rate[32];
    human(done, sizeof done, (double)p->done);
    human(total, sizeof total, (double)(p->total > 0 ? p->total : 0));
    double moved = (double)(p->done - p->resumed_from);
    human(rate, sizeof rate, p->seconds > 0.05 ? moved / p->seconds : 0);

    switch (p->event) {
    case FS_PULL_START:
        if (p->resumed_from > 0) {
            clear_bar(v);
            fprintf(stderr, "%s: resuming at %s\n", p->file, done);
        }
        break;
    case FS_PULL_PROGRESS:
        if (!v->tty || p->seconds < 0.3) break; /* no flicker for small files */
        if (p->total > 0) {
            double frac = (double)p->done / (double)p->total;
            if (frac > 1) frac = 1;
            char bar[31];
            int fill = (int)(frac * 30);
            for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
            bar[30] = 0;
            fprintf(stderr, "\r\033[K%-28.28s [%s] %3.0f%% %s / %s  %s/s", p->file, bar, frac * 100, done, total, rate);
        } else {
            fprintf(stderr, "\r\033[K%-28.28s %s  %s/s", p->file, done, rate);
        }
        v->bar_drawn = 1;
        break;
    case FS_PULL_VERIFY:
        if (!v->tty) break;
        clear_bar(v);
        fprintf(stderr, "%s: checking sha256...", p->file);
        v->bar_drawn = 1;
        break;
    case FS_PULL_DONE:
        clear_bar(v);
        fprintf(stderr, "%s: %s downloaded in %.1f s (%s/s)\n", p->file, done, p->seconds, rate);
        break;
    case FS_PULL_UP_TO_DATE:
        clear_bar(v);
        fprintf(stderr, "%s: up to date (%s)\n", p->file, done);
        break;
    case FS_PULL_ABSENT:
        clear_bar(v);
        if (!strcmp(p->file, "model.safetensors"))
            fprintf(stderr, "%s: not in this repo; looking for shards\n", p->file);
        else
            fprintf(stderr, "%s: not in this repo (optional, skipped)\n", p->file);
        break;
    case FS_PULL_RESTART:
        clear_bar(v);
        fprintf(stderr, "%s: the server does not support resuming; starting over\n", p->file);
        break;
    }
    fflush(stderr);
}

int fs_cmd_pull(int argc, char **argv) {
    const char *repo = NULL, *dir = NULL, *revision = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        if ((r = cli_flag("pull", argc, argv, &i, "--dir", NULL, &dir)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            continue;
        }
        if ((r = cli_flag("pull", argc, argv, &i, "--revision", NULL, &revision)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            continue;
        }
        if (!strcmp(argv[i], "--list")) {
            int n;
            const fs_pull_known *k = fs_pull_known_models(&n);
            for (int j = 0; j < n; j++)
                printf("%-13s %-36s %s%s\n", k[j].name, k[j].repo, k[j].arch, k[j].gated ? "  gated (HF_TOKEN)" : "");
            return cli_out_close("pull");
        }
        if (argv[i][0] == '-') return cli_fail("pull", FS_EXIT_USAGE, "unknown option %s (see fs pull --help)", argv[i]);
        if (repo) return cli_fail("pull", FS_EXIT_USAGE, "one repo id at a time (got '%s' and '%s')", repo, argv[i]);
        repo = argv[i];
    }
    if (!repo) {
        usage(stderr);
        return FS_EXIT_USAGE;
    }
    fs_err e = {{0}};
    const fs_pull_known *k = fs_pull_find_known(repo);
    if (k) repo = k->repo;   /* a short name (or a known repo in another case): the hub's spelling */
    /* A malformed id or revision is a usage error (exit 1); everything that
     * goes wrong talking to the hub is exit 2. */
    if (fs_pull_check_repo_id(repo, &e)) return cli_fail("pull", FS_EXIT_USAGE, "%s", e.msg);
    if (revision && fs_pull_check_revision(revision, &e)) return cli_fail("pull", FS_EXIT_USAGE, "%s", e.msg);
    if (dir && !*dir) return cli_fail("pull", FS_EXIT_USAGE, "--dir needs a directory");

    char default_dir[4096];
    if (!dir) {
        if (fs_pull_default_dir(repo, default_dir, sizeof default_dir, &e))
            return cli_fail("pull", FS_EXIT_USAGE, "%s", e.msg);
        dir = default_dir;
    }

    view v = {isatty(2), 0};
    fs_pull_opts opts = {0};
    opts.revision = revision;
    opts.progress = on_progress;
    opts.ctx = &v;
    int rc = fs_pull(repo, dir, &opts, &e);
    clear_bar(&v);
    if (rc) return cli_fail("pull", FS_EXIT_INPUT, "%s", e.msg);

    printf("%s\n", dir);
    return cli_out_close("pull");
}
