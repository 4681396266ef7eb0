/* cli.h - the fs command line: what every subcommand shares.
 *
 * Contract (tests and tools rely on it): every command takes --help (and
 * `fs help CMD` prints the same); exit status 0 = ok, 1 = usage error,
 * 2 = bad input (unreadable model, malformed file, a failed write, ...),
 * 130 = cancelled (Ctrl-C, as a shell reports a SIGINT); errors are one
 * clear line on stderr, "fs CMD: message", printed before any statistics.
 * Each subcommand lives in its own cli/cmd_NAME.c and is listed in the
 * table in cli/main.c. The flags several commands share are parsed by
 * cli/opts.c; the model work is the engine's (src/engine.h).
 *
 * Docs: docs/map.md
 */
#ifndef FS_CLI_H
#define FS_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FS_EXIT_OK 0
#define FS_EXIT_USAGE 1
#define FS_EXIT_INPUT 2
#define FS_EXIT_CANCELLED 130

/* Print "fs CMD: message\n" to stderr and return code (so commands can
 * `return cli_fail(...)`). */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Subcommands: argv[0] is the command's name. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* "-h" or "--help". */
int cli_is_help(const char *arg);

/* ---- arguments ---- */

/* Is argv[*i] the flag `name` (or `alias`)? If so, store its value in *val
 * and advance *i, and return 1; 0 if it is another argument; -1 after
 * printing a usage error when the value is missing. */
int cli_flag(const char *cmd, int argc, char **argv, int *i, const char *name, const char *alias, const char **val);

/* Strict numbers: the whole string, no spaces, in range (a value out of
 * range is an error, never clamped or wrapped). On a bad value print
 * "fs CMD: FLAG: expected ..., got 'V'" and return -1. */
int cli_int(const char *cmd, const char *flag, const char *v, long lo, long hi, long *out);
int cli_u64(const char *cmd, const char *flag, const char *v, uint64_t *out);
/* Any finite number (a denormal included) in [lo, hi]. */
int cli_double(const char *cmd, const char *flag, const char *v, double lo, double hi, double *out);
/* The same checks, silent: 0 ok, -1 bad. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double lo, double hi, double *out);

/* The bytes of FILE, or of stdin when path is "-" (pipes and FIFOs work
 * too). *data is malloc'd and NUL-terminated. Prints the error and returns
 * FS_EXIT_INPUT, else 0. */
int cli_read_input(const char *cmd, const char *path, char **data, size_t *len);

/* ---- the model directory ---- */

/* For every command that takes a model: flag_value (-m), else $FS_MODEL,
 * else the tiny model that ships with fs (models/tiny, see
 * models/tiny/README.md), looked for next to the fs executable and in up
 * to three directories above it (so build/fs and build/NAME/fs both find
 * the repository's models/tiny), and in ../share/fs/models/tiny (where
 * `make install` puts it). The executable is found through /proc/self/exe
 * on Linux, else through the program path given to cli_set_program
 * (argv[0], searched in $PATH when it has no '/'). -m "" is an error.
 * Returns NULL after printing one error line that names every place it
 * looked. The returned string is static or flag_value/getenv's. */
const char *cli_model_dir(const char *cmd, const char *flag_value);
void cli_set_program(const char *argv0);

/* Does dir hold a whole model as fs pull fetches it (config, tokenizer,
 * every weight file)? A pull in progress keeps its files as FILE.part. */
int cli_model_complete(const char *dir);

/* ---- output ---- */

/* stdout: write (and flush, to stream); on the first failure remember why.
 * Returns 0, or -1 once stdout has failed. */
int cli_out(const void *s, size_t n, int flush);
/* At the end of a command: flush stdout. If any write failed, print
 * "fs CMD: cannot write: REASON" and return FS_EXIT_INPUT, else 0. */
int cli_out_close(const char *cmd);

/* stderr is a terminal: progress lines and the speed line are shown. */
int cli_tty_err(void);
#define CLI_FAINT "\x1b[2m"
#define CLI_RESET "\x1b[0m"
/* A transient status line on stderr (only on a terminal): drawn over the
 * previous one, dimmed, erased by cli_status_clear. */
void cli_status(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void cli_status_clear(void);

/* ---- Ctrl-C ---- */

/* Set by SIGINT while cli_sigint_catch is in effect; the engine's cancel
 * flag. cli_sigint_release restores the previous handler. */
extern volatile sig_atomic_t cli_interrupted;
void cli_sigint_catch(void);
void cli_sigint_release(void);

#endif
