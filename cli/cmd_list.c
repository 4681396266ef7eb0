/* cmd_list.c - `fs list`: the models in the cache, with their sizes.
 *
 *   fs list
 *   models in /home/me/.cache/fs/models:
 *     Qwen/Qwen3-0.6B      1.40 GiB
 *     acme/rand            2.1 MiB   incomplete (fs pull acme/rand resumes it)
 *
 * The cache is where fs pull and fs run put a hub model:
 * ${FS_HOME:-~/.cache/fs}/models/OWNER/NAME (src/pull.h). A directory is
 * "incomplete" when a file is missing or still FILE.part (a pull was
 * interrupted). The size counts every file, parts included: what the
 * directory takes on disk.
 *
 * Docs: docs/pull.md
 */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "pull.h"
#include "util.h"

#define CMD "list"
#define PATH_CAP 4096

static void usage(FILE *f) {
    fprintf(f, "usage: fs list\n"
               "  List the models in the cache, ${FS_HOME:-~/.cache/fs}/models/OWNER/NAME\n"
               "  (where fs pull and fs run put them), with the size each takes on disk.\n"
               "Exit: 0 ok, 1 usage, 2 the cache cannot be read.\n");
}

typedef struct entry {
    char name[512]; /* OWNER/NAME */
    int64_t bytes;
    int complete;
} entry;

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Bytes of the regular files directly in dir. */
static int64_t dir_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[PATH_CAP];
        struct stat st;
        if (fs_path_join(p, sizeof p, dir, de->d_name) == 0 && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            sum += st.st_size;
    }
    closedir(d);
    return sum;
}

static int by_name(const void *a, const void *b) { return strcmp(((const entry *)a)->name, ((const entry *)b)->name); }

static const char *size_str(char *buf, size_t cap, int64_t bytes) {
    if (bytes < (1 << 20)) snprintf(buf, cap, "%.1f KiB", bytes / 1024.0);
    else if (bytes < (1LL << 30)) snprintf(buf, cap, "%.1f MiB", bytes / 1048576.0);
    else snprintf(buf, cap, "%.2f GiB", bytes / 1073741824.0);
    return buf;
}

int fs_cmd_list(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        return cli_fail(CMD, FS_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[i]);
    }
    char root[PATH_CAP];
    fs_err e = {{0}};
    if (fs_pull_models_dir(root, sizeof root, &e)) return cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);

    entry *es = NULL;
    size_t n = 0, cap = 0;
    DIR *owners = opendir(root);
    struct dirent *o;
    while (owners && (o = readdir(owners))) {
        char odir[PATH_CAP];
        if (o->d_name[0] == '.' || fs_path_join(odir, sizeof odir, root, o->d_name) || !is_dir(odir)) continue;
        DIR *names = opendir(odir);
        struct dirent *m;
        while (names && (m = readdir(names))) {
            char mdir[PATH_CAP];
            if (m->d_name[0] == '.' || fs_path_join(mdir, sizeof mdir, odir, m->d_name) || !is_dir(mdir)) continue;
            if (n == cap) es = fs_xrealloc(es, (cap = cap ? 2 * cap : 16) * sizeof *es);
            snprintf(es[n].name, sizeof es[n].name, "%s/%s", o->d_name, m->d_name);
            es[n].bytes = dir_bytes(mdir);
            es[n].complete = cli_model_complete(mdir);
            n++;
        }
        if (names) closedir(names);
    }
    if (owners) closedir(owners);

    if (n == 0) {
        printf("no models in %s (fs pull OWNER/NAME or fs run OWNER/NAME downloads one)\n", root);
    } else {
        qsort(es, n, sizeof *es, by_name);
        size_t w = 4;
        for (size_t i = 0; i < n; i++) w = strlen(es[i].name) > w ? strlen(es[i].name) : w;
        printf("models in %s:\n", root);
        for (size_t i = 0; i < n; i++) {
            char s[32];
            printf("  %-*s  %10s", (int)w, es[i].name, size_str(s, sizeof s, es[i].bytes));
            if (!es[i].complete) printf("  incomplete (fs pull %s resumes it)", es[i].name);
            putchar('\n');
        }
    }
    free(es);
    return cli_out_close(CMD);
}
