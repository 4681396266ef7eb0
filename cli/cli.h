/* cli.h - the fs command line: shared helpers for the subcommands.
 *
 * Contract (tests and tools rely on it): every command takes --help; exit
 * status 0 = ok, 1 = usage error, 2 = bad input (unreadable model, malformed
 * file, ...); errors are one clear line on stderr, "fs CMD: message".
 * Each subcommand lives in its own cli/cmd_NAME.c and is listed in the
 * table in cli/main.c.
 */
#ifndef FS_CLI_H
#define FS_CLI_H

#include <stdio.h>

#define FS_EXIT_OK 0
#define FS_EXIT_USAGE 1
#define FS_EXIT_INPUT 2

/* Print "fs CMD: message\n" to stderr and return code (so commands can
 * `return cli_fail(...)`). */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Model directory from -m/--model or the FS_MODEL environment variable.
 * Returns NULL (after printing a usage error) when neither is given. */
const char *cli_model_dir(const char *cmd, const char *flag_value);

/* Is a[i] the flag `name`? If it takes a value, stores it in *val and
 * advances *i; reports a usage error (returns -1) when the value is missing. */
int cli_flag(int argc, char **argv, int *i, const char *name, const char *alias, const char **val);

/* Parse numbers strictly (whole string, in range). 0 ok, -1 bad. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *s, double lo, double hi, double *out);

/* Subcommands. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

#endif
