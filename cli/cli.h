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

/* Model directory for the commands that can run offline (run, chat,
 * generate, logits): -m/--model, else $FS_MODEL, else the tiny model that
 * ships with fs (models/tiny, see models/tiny/README.md), looked for next to
 * the fs executable and in up to three directories above it (so build/fs
 * and build/NAME/fs both find the repository's models/tiny), and in
 * ../share/fs/models/tiny (an installed layout). The executable is found
 * through /proc/self/exe on Linux, else through the program path given to
 * cli_set_program (argv[0], searched in $PATH when it has no '/').
 * Returns NULL after printing one error line that names every place it
 * looked. The returned string is static or flag_value/getenv's. */
const char *cli_model_dir_default(const char *cmd, const char *flag_value);

/* Remember main's argv[0] for cli_model_dir_default (needed where there is
 * no /proc/self/exe, e.g. macOS). */
void cli_set_program(const char *argv0);

/* ---- loading a model for a command (--weights) ---- */

struct fs_model;
/* fs_model_load(dir), then, when weights is not NULL, fs_model_convert to
 * that format: "bf16", "f16", "f32", "q8_0" or "q4_0" (src/quant.h). The
 * conversion happens once, here, before any session exists. Errors are
 * printed as "fs CMD: ..."; returns 0, FS_EXIT_USAGE (unknown weights name,
 * checked before anything is loaded) or FS_EXIT_INPUT. */
int cli_load_model(const char *cmd, const char *dir, const char *weights, struct fs_model *m);
/* 0 if weights is NULL or a known name; else prints a usage error and
 * returns FS_EXIT_USAGE (lets a command reject it before other work). */
int cli_check_weights(const char *cmd, const char *weights);

/* ---- the chat loop, shared by `fs chat` and `fs run` (cli/cmd_chat.c) ---- */

typedef struct cli_chat_opts {
    const char *model;      /* -m/--model as given, or NULL */
    const char *system;     /* --system TEXT, or NULL */
    int think;              /* thinking mode at start (1; --no-think: 0) */
    long max_tokens;        /* -n: tokens per reply */
    long ctx, threads;      /* 0 = defaults */
    long top_k;             /* -1 = from the model's generation_config */
    double temp, top_p, min_p, repeat_penalty; /* < 0 = from the model */
    double presence_penalty;
    int have_seed;
    unsigned long long seed;
    int verbose;
} cli_chat_opts;

void cli_chat_opts_init(cli_chat_opts *o);
/* If argv[*i] is one of the chat options, consume it (and its value) and
 * return 1; return 0 if it is not one; -1 after printing a usage error. */
int cli_chat_flag(const char *cmd, int argc, char **argv, int *i, cli_chat_opts *o);
/* The option lines of the usage text, for the --help of chat and run. */
void cli_chat_usage_options(FILE *f);
/* Load model_dir and chat on stdin/stdout until /quit or end of input; with
 * prompt != NULL answer that one user message instead and return. Returns
 * an FS_EXIT_ code. */
int cli_chat_main(const char *cmd, const char *model_dir, const cli_chat_opts *o, const char *prompt);

/* Subcommands. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

#endif
