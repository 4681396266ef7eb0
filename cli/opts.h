/* opts.h - the flags fs commands share, parsed in one place with one set
 * of limits and messages, and the engine they open.
 *
 *   CLI_MODEL     -m/--model MODEL      (else $FS_MODEL, else the shipped models/tiny)
 *   CLI_RUNTIME   --backend NAME  -t/--threads N  -c/--ctx N  --weights W  --kv T
 *   CLI_PROMPT    -p/--prompt TEXT  -f/--file FILE ("-" reads stdin)
 *   CLI_SAMPLING  -n/--max-tokens N  --temp T  --top-k K  --top-p P  --min-p M
 *                 --repeat-penalty R  --presence-penalty P  --seed S  --stop STR
 *   CLI_VERBOSE   -v/--verbose
 *
 * A command says which groups it takes (cli_opts_init), offers every
 * argument to cli_opts_parse first, and handles the rest (its own flags,
 * positional arguments) itself. Its --help prints cli_opts_usage's lines
 * for the groups it takes, so the help and the parser cannot disagree.
 *
 * Docs: docs/map.md
 */
#ifndef FS_CLI_OPTS_H
#define FS_CLI_OPTS_H

#include <stdio.h>

#include "engine.h"

#define CLI_MAX_STOPS 16

enum {
    CLI_MODEL = 1 << 0,
    CLI_RUNTIME = 1 << 1,
    CLI_PROMPT = 1 << 2,
    CLI_SAMPLING = 1 << 3,
    CLI_VERBOSE = 1 << 4,
};

typedef struct cli_opts {
    const char *cmd;              /* "generate": for messages */
    unsigned groups;              /* CLI_* the command takes */
    const char *model;            /* -m, or NULL */
    const char *backend, *weights, *kv;
    long threads, ctx;            /* 0: the defaults */
    const char *prompt, *file;
    long max_tokens;              /* the command's default until -n */
    fs_sampling sampling;         /* what the flags override (engine.h) */
    const char *stops[CLI_MAX_STOPS];
    int n_stops;
    int verbose;
    int max_seqs;                 /* sequences stepped together (fs serve's --parallel); 0: 1 */
} cli_opts;

void cli_opts_init(cli_opts *o, const char *cmd, unsigned groups, long max_tokens);

/* argv[*i] is a shared flag of one of o's groups: consume it and its
 * value, return 1. Not one: 0. A bad or missing value: print the usage
 * error and return -1. */
int cli_opts_parse(cli_opts *o, int argc, char **argv, int *i);

/* The help lines of the given groups. */
void cli_opts_usage(FILE *f, unsigned groups, long max_tokens);

/* The prompt of -p or -f, malloc'd (*text NUL-terminated). Prints the
 * error and returns FS_EXIT_INPUT; FS_EXIT_USAGE when neither was given
 * or both were. */
int cli_opts_prompt(const cli_opts *o, char **text, size_t *len);

/* Open the model: dir (NULL: -m, $FS_MODEL, models/tiny), the runtime
 * flags, tokenizer as engine.h's FS_ENGINE_TOKENIZER*. On a terminal a
 * "loading" line shows while it loads. Prints the error and returns an
 * exit code, else 0. */
int cli_opts_open(const cli_opts *o, const char *dir, int tokenizer, fs_engine **g);

/* A sequence with the sampling flags over the model's defaults, the
 * context of -c. Prints the error and returns an exit code, else 0. */
int cli_opts_seq(const cli_opts *o, fs_engine *g, fs_seq **q);

/* -v: the model's shape, backend, context and memory, sampling settings
 * (on stderr). */
void cli_opts_describe(const cli_opts *o, fs_engine *g, fs_seq *q);

/* A progress callback for fs_seq_gen.on_prefill: "prefill 1024/3000
 * tokens" on a terminal when the prompt takes more than one chunk. */
void cli_prefill_progress(void *user, int done, int total);

/* One dimmed line on stderr, on a terminal only: prompt tokens and their
 * speed, generated tokens and theirs. */
void cli_speed_line(const fs_seq_stats *st);

/* ---- the chat loop, shared by `fs chat` and `fs run` (cli/cmd_chat.c) ---- */

typedef struct cli_chat_opts {
    cli_opts o;          /* the shared flags: model, runtime, sampling, -v */
    const char *system;  /* --system TEXT, or NULL */
    int think;           /* thinking mode at start: -1 the model's default, --think 1, --no-think 0 */
} cli_chat_opts;

void cli_chat_opts_init(cli_chat_opts *c, const char *cmd);
/* cli_opts_parse, plus --system, --think and --no-think. */
int cli_chat_parse(cli_chat_opts *c, int argc, char **argv, int *i);
void cli_chat_usage(FILE *f);
/* Load dir (NULL: -m, $FS_MODEL, models/tiny) and chat on stdin/stdout
 * until /quit or end of input; with prompt != NULL answer that one user
 * message instead and return. Returns an FS_EXIT_ code. */
int cli_chat_main(const cli_chat_opts *c, const char *dir, const char *prompt);

/* A reply on screen: with tty set, the <think>...</think> block is dimmed
 * (ANSI faint), tags split across pieces included; without, the text goes
 * to stdout (cli_out) exactly as given. _end releases what a partial tag
 * held and closes an open block. Zero-initialize, set tty. */
typedef struct cli_think_display {
    int tty;
    int in_think;
    size_t matched; /* bytes of the awaited tag seen so far */
} cli_think_display;
void cli_think_display_text(cli_think_display *d, const char *s, size_t n);
void cli_think_display_end(cli_think_display *d);

#endif
