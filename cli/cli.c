/* cli.c - shared helpers for the fs subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
