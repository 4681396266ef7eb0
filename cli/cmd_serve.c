/* cmd_serve.c - `fs serve`: the OpenAI-compatible HTTP server.
 *
 *   fs serve -m MODEL                       http://127.0.0.1:8080, 4 slots
 *   fs serve -m MODEL --port 0 --parallel 8 -c 2048 --api-key KEY
 *   curl http://127.0.0.1:8080/v1/chat/completions \
 *        -d '{"messages": [{"role": "user", "content": "Hi"}]}'
 *
 * It loads the model once and serves until SIGINT or SIGTERM: then it
 * stops accepting, ends every running stream with a final event, and
 * exits 0. The sampling flags are the server's defaults (a request's own
 * fields win); -n is the default max_tokens (-1: until the context is
 * full or the model stops). The work is src/serve.c's.
 *
 * Docs: docs/serve.md
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opts.h"
#include "serve.h"

#define CMD "serve"
#define GROUPS (CLI_MODEL | CLI_RUNTIME | CLI_SAMPLING | CLI_VERBOSE)

static void usage(FILE *f) {
    fprintf(f, "usage: fs serve [-m MODEL] [--host ADDR] [--port N] [--parallel N] [-c N] [--api-key KEY]\n"
               "  Serve the OpenAI API (POST /v1/chat/completions, /v1/completions; GET /v1/models,\n"
               "  /health) and a chat page at /, with continuous batching: up to --parallel\n"
               "  requests decode together, one forward pass per token for all of them.\n");
    fprintf(f, "  %-28s %s\n", "--host ADDR", "address to listen on (default 127.0.0.1: this machine only)");
    fprintf(f, "  %-28s %s\n", "--port N", "port (default 8080; 0: any free one, printed when ready)");
    fprintf(f, "  %-28s %s\n", "--parallel N", "slots: requests generating at once, 1..64 (default 4)");
    fprintf(f, "  %-28s %s\n", "--api-key KEY", "require \"Authorization: Bearer KEY\" on /v1/ (or $FS_API_KEY)");
    fprintf(f, "  %-28s %s\n", "--alias NAME", "the model's id in the API (default: the directory's name)");
    fprintf(f, "  %-28s %s\n", "--queue N", "requests waiting for a slot at most; more get 503 (default 64)");
    fprintf(f, "  %-28s %s\n", "--max-body BYTES", "request body limit; larger get 413 (default 8388608)");
    fprintf(f, "  %-28s %s\n", "--step-tokens N", "tokens one forward step carries at most: long prompts are\n"
                                                   "                               prefilled in pieces of what the decoders leave (default 256)");
    cli_opts_usage(f, GROUPS, -1);
    fprintf(f, "  -c is each slot's context; the sampling flags are defaults a request's fields override;\n"
               "  -n -1 (the default) generates until the context is full or the model stops; -v logs\n"
               "  one line per request.\n"
               "Exit: 0 after SIGINT/SIGTERM, 1 usage, 2 bad input (unreadable model, address in use).\n");
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void ready(void *user, const char *url) {
    const char *desc = user;
    printf("fs serve: listening on %s (%s)\n", url, desc);
    fflush(stdout);
}

int fs_cmd_serve(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o, CMD, GROUPS, -1);
    fs_serve_opts so = {0};
    so.port = 8080;
    so.parallel = 4;
    so.api_key = getenv("FS_API_KEY");
    long v;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_opts_parse(&o, argc, argv, &i);
        if (r < 0) return FS_EXIT_USAGE;
        if (r > 0) continue;
        const char *val;
        if ((r = cli_flag(CMD, argc, argv, &i, "--host", NULL, &val))) {
            if (r < 0) return FS_EXIT_USAGE;
            so.host = val;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--port", NULL, &val))) {
            if (r < 0 || cli_int(CMD, "--port", val, 0, 65535, &v)) return FS_EXIT_USAGE;
            so.port = (int)v;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--parallel", "-np", &val))) {
            if (r < 0 || cli_int(CMD, "--parallel", val, 1, FS_MAX_SEQS, &v)) return FS_EXIT_USAGE;
            so.parallel = (int)v;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--api-key", NULL, &val))) {
            if (r < 0) return FS_EXIT_USAGE;
            if (!*val) return cli_fail(CMD, FS_EXIT_USAGE, "--api-key: the key is empty");
            so.api_key = val;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--alias", NULL, &val))) {
            if (r < 0) return FS_EXIT_USAGE;
            so.model_name = val;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--queue", NULL, &val))) {
            if (r < 0 || cli_int(CMD, "--queue", val, 1, 100000, &v)) return FS_EXIT_USAGE;
            so.queue = (int)v;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--max-body", NULL, &val))) {
            if (r < 0 || cli_int(CMD, "--max-body", val, 1024, 1L << 30, &v)) return FS_EXIT_USAGE;
            so.max_body = (size_t)v;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--step-tokens", NULL, &val))) {
            if (r < 0 || cli_int(CMD, "--step-tokens", val, 1, 4096, &v)) return FS_EXIT_USAGE;
            so.step_tokens = (int)v;
        } else {
            return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", argv[i]);
        }
    }
    if (o.max_tokens < -1) return cli_fail(CMD, FS_EXIT_USAGE, "-n: expected -1 or more");
    if (so.api_key && !*so.api_key) so.api_key = NULL;

    o.max_seqs = so.parallel;
    fs_engine *g = NULL;
    int rc = cli_opts_open(&o, NULL, FS_ENGINE_TOKENIZER, &g);
    if (rc) return rc;
    if (o.verbose) cli_opts_describe(&o, g, NULL);

    char desc[256];
    snprintf(desc, sizeof desc, "%d slots of %d tokens, %s backend%s", so.parallel,
             o.ctx ? (int)o.ctx : fs_engine_n_ctx(g), fs_forward_backend(fs_engine_forward(g))->name,
             so.api_key ? ", API key required" : "");
    so.n_ctx = (int)o.ctx;
    so.sampling = &o.sampling;
    so.stop = &stop_flag;
    so.log = o.verbose ? stderr : NULL;
    so.on_ready = ready;
    so.user = desc;
    so.default_max_tokens = (int)o.max_tokens;
    so.default_stops = o.stops;
    so.n_default_stops = o.n_stops;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    fs_err e = {{0}};
    rc = fs_serve(g, &so, &e) ? cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg) : FS_EXIT_OK;
    if (!rc) fprintf(stderr, "fs serve: stopped\n");
    fs_engine_free(g);
    return rc;
}
