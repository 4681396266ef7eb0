/* cli.c - what every fs subcommand shares (see cli.h): messages, strict
 * numbers, the default model, checked output, the status line, Ctrl-C.
 *
 * Docs: docs/map.md
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

int cli_fail(const char *cmd, int code, const char *fmt, ...) {
    cli_status_clear();
    fprintf(stderr, "fs %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

/* ---- arguments ---- */

int cli_flag(const char *cmd, int argc, char **argv, int *i, const char *name, const char *alias, const char **val) {
    const char *a = argv[*i];
    if (strcmp(a, name) != 0 && !(alias && strcmp(a, alias) == 0)) return 0;
    if (*i + 1 >= argc) {
        cli_fail(cmd, FS_EXIT_USAGE, "%s needs a value (see --help)", a);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

/* strtol and friends skip leading spaces and accept a sign; a strict
 * number starts with a digit (or '-' and a digit where negatives make
 * sense), so " -5" and "+5" are refused rather than read. */
int cli_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || (!(*s >= '0' && *s <= '9') && !(*s == '-' && s[1] >= '0' && s[1] <= '9'))) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s) return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1; /* would not fit: an error, not a wrap */
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !((*s >= '0' && *s <= '9') || *s == '.' || (*s == '-' && s[1] && s[1] != ' '))) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* ERANGE on underflow (1e-320: a denormal, or 0) is a value; on
     * overflow (1e999) it is not */
    if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) >= 1) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_int(const char *cmd, const char *flag, const char *v, long lo, long hi, long *out) {
    if (!cli_parse_int(v, lo, hi, out)) return 0;
    cli_fail(cmd, FS_EXIT_USAGE, "%s: expected a whole number in %ld..%ld, got '%s'", flag, lo, hi, v);
    return -1;
}

int cli_u64(const char *cmd, const char *flag, const char *v, uint64_t *out) {
    if (!cli_parse_u64(v, out)) return 0;
    cli_fail(cmd, FS_EXIT_USAGE, "%s: expected a whole number in 0..18446744073709551615, got '%s'", flag, v);
    return -1;
}

int cli_double(const char *cmd, const char *flag, const char *v, double lo, double hi, double *out) {
    if (!cli_parse_double(v, lo, hi, out)) return 0;
    cli_fail(cmd, FS_EXIT_USAGE, "%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, v);
    return -1;
}

int cli_read_input(const char *cmd, const char *path, char **data, size_t *len) {
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return cli_fail(cmd, FS_EXIT_INPUT, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return cli_fail(cmd, FS_EXIT_INPUT, "%s: is a directory", path);
    }
    /* read to the end whatever it is (file, pipe, FIFO, terminal) */
    size_t cap = 1 << 16, n = 0;
    char *buf = fs_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) buf = fs_xrealloc(buf, cap *= 2);
    }
    int err = ferror(f) ? errno : 0;
    if (!is_stdin) fclose(f);
    if (err) {
        free(buf);
        return cli_fail(cmd, FS_EXIT_INPUT, "%s: %s", is_stdin ? "stdin" : path, strerror(err));
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
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

const char *cli_model_dir(const char *cmd, const char *flag_value) {
    if (flag_value) {
        if (*flag_value) return flag_value;
        cli_fail(cmd, FS_EXIT_USAGE, "-m: the model directory is an empty string");
        return NULL;
    }
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

static int has_file(const char *dir, const char *name) {
    char p[CLI_PATH_CAP];
    return fs_path_join(p, sizeof p, dir, name) == 0 && is_file(p);
}

int cli_model_complete(const char *dir) {
    if (!has_file(dir, "config.json") || !has_file(dir, "tokenizer.json") || !has_file(dir, "tokenizer_config.json"))
        return 0;
    if (has_file(dir, "model.safetensors")) return 1;
    char p[CLI_PATH_CAP];
    if (fs_path_join(p, sizeof p, dir, "model.safetensors.index.json") || !is_file(p)) return 0;
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
            ok = f && !strstr(f, "..") && has_file(dir, f);
        }
        fs_json_free(&doc);
    }
    free(text);
    return ok;
}

/* ---- output ---- */

static int out_errno; /* why stdout failed first (0: it has not) */

int cli_out(const void *s, size_t n, int flush) {
    if (out_errno) return -1;
    errno = 0;
    if ((n && fwrite(s, 1, n, stdout) != n) || (flush && fflush(stdout))) {
        out_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int cli_out_close(const char *cmd) {
    static int reported;
    errno = 0;
    if ((fflush(stdout) || ferror(stdout)) && !out_errno) out_errno = errno ? errno : EIO;
    if (!out_errno) return 0;
    if (!reported) cli_fail(cmd, FS_EXIT_INPUT, "cannot write: %s", strerror(out_errno));
    reported = 1;
    return FS_EXIT_INPUT;
}

int cli_tty_err(void) {
    static int tty = -1;
    if (tty < 0) tty = isatty(STDERR_FILENO);
    return tty;
}

static int status_shown;

void cli_status(const char *fmt, ...) {
    if (!cli_tty_err()) return;
    fputs("\r" CLI_FAINT, stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(CLI_RESET "\x1b[K", stderr);
    fflush(stderr);
    status_shown = 1;
}

void cli_status_clear(void) {
    if (!status_shown) return;
    fputs("\r\x1b[K", stderr);
    fflush(stderr);
    status_shown = 0;
}

/* ---- Ctrl-C ---- */

volatile sig_atomic_t cli_interrupted;
static struct sigaction old_sigint;

static void on_sigint(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

void cli_sigint_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    cli_interrupted = 0;
    sigaction(SIGINT, &sa, &old_sigint);
}

void cli_sigint_release(void) { sigaction(SIGINT, &old_sigint, NULL); }
