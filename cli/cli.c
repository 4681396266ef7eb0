/* cli.c - shared helpers for the fs subcommands (see cli.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "quant.h"

int cli_fail(const char *cmd, int code, const char *fmt, ...) {
    fprintf(stderr, "fs %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

const char *cli_model_dir(const char *cmd, const char *flag_value) {
    if (flag_value && *flag_value) return flag_value;
    const char *env = getenv("FS_MODEL");
    if (env && *env) return env;
    cli_fail(cmd, FS_EXIT_USAGE, "no model given: use -m MODEL_DIR or set FS_MODEL");
    return NULL;
}

int cli_flag(int argc, char **argv, int *i, const char *name, const char *alias, const char **val) {
    const char *a = argv[*i];
    int match = strcmp(a, name) == 0 || (alias && strcmp(a, alias) == 0);
    if (!match) return 0;
    if (!val) return 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fs: option %s needs a value\n", a);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || isnan(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* ---- the default model ------------------------------------------------
 *
 * `fs run` with nothing else must work offline, so the tiny model shipped
 * in the repository (models/tiny) is the fallback. It is found relative to
 * the executable, not the current directory: `fs` run from anywhere finds
 * the model that came with it. */

#define CLI_PATH_CAP 4096

static const char *program_path; /* main's argv[0], if it told us */

void cli_set_program(const char *argv0) { program_path = argv0; }

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The absolute path of the running executable into out, or -1. */
static int exe_path(char *out, size_t cap) {
#ifdef __linux__
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n > 0 && (size_t)n < cap - 1) {
        out[n] = 0;
        return 0;
    }
#endif
    const char *a = program_path;
    if (!a || !*a) return -1;
    char *r = NULL;
    if (strchr(a, '/')) {
        r = realpath(a, NULL);
    } else {
        /* a bare name was found through $PATH: search it the same way */
        const char *path = getenv("PATH");
        while (path && *path && !r) {
            const char *colon = strchr(path, ':');
            size_t len = colon ? (size_t)(colon - path) : strlen(path);
            char cand[CLI_PATH_CAP];
            if (len + strlen(a) + 2 < sizeof cand) {
                snprintf(cand, sizeof cand, "%.*s/%s", (int)(len ? len : 1), len ? path : ".", a);
                if (is_file(cand) && access(cand, X_OK) == 0) r = realpath(cand, NULL);
            }
            path = colon ? colon + 1 : NULL;
        }
    }
    if (!r) return -1;
    int ok = strlen(r) < cap;
    if (ok) strcpy(out, r);
    free(r);
    return ok ? 0 : -1;
}

const char *cli_model_dir_default(const char *cmd, const char *flag_value) {
    if (flag_value && *flag_value) return flag_value;
    const char *env = getenv("FS_MODEL");
    if (env && *env) return env;

    static char found[CLI_PATH_CAP];
    char exe[CLI_PATH_CAP];
    if (exe_path(exe, sizeof exe)) {
        cli_fail(cmd, FS_EXIT_USAGE,
                 "no model given (-m MODEL_DIR or FS_MODEL), and the fs executable could not be located "
                 "to find the shipped models/tiny");
        return NULL;
    }
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0; /* the executable's directory */
    /* exe_dir/models/tiny, exe_dir/../models/tiny, ... three levels up,
     * then exe_dir/../share/fs/models/tiny */
    char dir[CLI_PATH_CAP];
    snprintf(dir, sizeof dir, "%s", exe);
    for (int up = 0; up <= 4; up++) {
        const char *rel = up < 4 ? "models/tiny" : "../share/fs/models/tiny";
        char cand[CLI_PATH_CAP], cfg[CLI_PATH_CAP + 16];
        if (up == 4) snprintf(dir, sizeof dir, "%s", exe);
        if ((size_t)snprintf(cand, sizeof cand, "%s/%s", dir, rel) >= sizeof cand) break;
        snprintf(cfg, sizeof cfg, "%s/config.json", cand);
        if (is_dir(cand) && is_file(cfg)) {
            char *r = realpath(cand, NULL);
            snprintf(found, sizeof found, "%s", r ? r : cand);
            free(r);
            return found;
        }
        if (up < 3) {
            char *s = strrchr(dir, '/');
            if (!s) break;
            if (s == dir) s[1] = 0; /* reached "/" */
            else *s = 0;
        }
    }
    cli_fail(cmd, FS_EXIT_USAGE,
             "no model given: use -m MODEL_DIR or set FS_MODEL (no shipped model found: looked for "
             "models/tiny/config.json in %s and up to 3 directories above it, and in %s/../share/fs/models/tiny)",
             exe, exe);
    return NULL;
}

/* ---- loading a model for a command (--weights) ---- */

int cli_check_weights(const char *cmd, const char *weights) {
    fs_dtype to;
    if (!weights || fs_dtype_from_weights_name(weights, &to) == 0) return 0;
    return cli_fail(cmd, FS_EXIT_USAGE, "--weights: expected bf16, f16, f32, q8_0 or q4_0, got '%s'", weights);
}

int cli_load_model(const char *cmd, const char *dir, const char *weights, fs_model *m) {
    fs_dtype to = FS_DTYPE_BF16;
    if (cli_check_weights(cmd, weights)) return FS_EXIT_USAGE;
    if (weights) fs_dtype_from_weights_name(weights, &to);
    fs_err e = {{0}};
    if (fs_model_load(m, dir, &e)) return cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
    if (weights && fs_model_convert(m, to, &e)) {
        fs_model_free(m);
        return cli_fail(cmd, FS_EXIT_INPUT, "%s: --weights %s: %s", dir, weights, e.msg);
    }
    return 0;
}
