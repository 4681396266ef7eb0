/* cmd_generate.c - `fs generate`: continue a raw prompt (no chat template),
 * streaming the text to stdout as it is produced.
 *
 *   fs generate -m MODEL -p "Once upon a time" -n 64 --temp 0
 *   fs generate -m MODEL -f prompt.txt --seed 1 --stop "\n\n" --json
 *   cat prompt.txt | fs generate -f -
 *
 * Sampling defaults come from the model's generation_config.json (Qwen3:
 * temperature 0.6, top-k 20, top-p 0.95); each flag overrides one value.
 * Generation stops at an eos id of the config (not printed), at a --stop
 * string (not printed, nor anything after it), after -n tokens, or when the
 * context is full. Ctrl-C stops it, the prefill included; the statistics
 * are still printed and the exit status is 130.
 *
 * An empty prompt is an error (exit 2): Qwen3 has no BOS token, so there is
 * no position to predict from. (HF's generate() cannot start from zero
 * tokens either.)
 *
 * Docs: docs/generate.md
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine.h"
#include "json.h"
#include "opts.h"

#define CMD "generate"
#define GROUPS (CLI_MODEL | CLI_RUNTIME | CLI_PROMPT | CLI_SAMPLING | CLI_VERBOSE)
#define DEFAULT_TOKENS 256

static void usage(FILE *f) {
    fprintf(f, "usage: fs generate [-m MODEL] (-p TEXT | -f FILE) [options]\n"
               "  Continue the raw prompt (no chat template) and stream the text to stdout;\n"
               "  statistics go to stderr.\n");
    cli_opts_usage(f, GROUPS, DEFAULT_TOKENS);
    fprintf(f, "  %-28s %s\n", "--json",
            "print one JSON object at the end instead of streaming: ids, text,\n"
            "                               prompt_tokens, generated_tokens, prefill_tok_s, decode_tok_s,\n"
            "                               prefill_s, decode_s, stop_reason, seed");
    fprintf(f, "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, empty prompt, prompt longer\n"
               "than the context, generation failure, stdout not writable), 130 Ctrl-C.\n");
}

static int stream_out(void *user, const char *text, size_t len) {
    (void)user;
    return cli_out(text, len, 1); /* a closed pipe or a full disk stops generation */
}

int fs_cmd_generate(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o, CMD, GROUPS, DEFAULT_TOKENS);
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_opts_parse(&o, argc, argv, &i);
        if (r < 0) return FS_EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--json")) json = 1;
        else return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", argv[i]);
    }

    int rc;
    fs_err e = {{0}};
    fs_engine *g = NULL;
    fs_seq *q = NULL;
    char *text = NULL;
    size_t len = 0;
    int *ids = NULL, n_ids = 0;
    if ((rc = cli_opts_prompt(&o, &text, &len)) || (rc = cli_opts_open(&o, NULL, FS_ENGINE_TOKENIZER, &g))) goto out;
    rc = FS_EXIT_INPUT;
    if (fs_engine_encode_prompt(g, text, len, &ids, &n_ids, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "prompt: %s", e.msg);
        goto out;
    }
    if (n_ids == 0) {
        cli_fail(CMD, FS_EXIT_INPUT, "empty prompt: this tokenizer adds no BOS token, so there is nothing to continue");
        goto out;
    }
    if ((rc = cli_opts_seq(&o, g, &q))) goto out;
    rc = FS_EXIT_INPUT;
    if (o.verbose) cli_opts_describe(&o, g, q);

    fs_seq_gen go = {0};
    go.max_new_tokens = (int)o.max_tokens;
    go.stop_strings = o.stops;
    go.n_stop_strings = o.n_stops;
    go.on_text = json ? NULL : stream_out;
    go.on_prefill = cli_prefill_progress;
    fs_seq_stats st;
    fs_seq_set_cancel(q, &cli_interrupted);
    cli_sigint_catch();
    int gr = fs_seq_generate(q, ids, n_ids, &go, &st, &e);
    cli_sigint_release();
    cli_status_clear();

    double prefill_tps = st.prefill_s > 0 ? st.prefilled / st.prefill_s : 0;
    double decode_tps = st.decode_s > 0 ? st.generated / st.decode_s : 0;
    if (gr == FS_SEQ_TOO_LONG) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s (raise -c/--ctx)", e.msg);
        goto out;
    }
    if (json && gr == 0) {
        const int *out_ids;
        int n_out;
        const char *out_text;
        size_t out_len;
        fs_seq_last(q, &out_ids, &n_out, &out_text, &out_len);
        printf("{\"ids\": [");
        for (int i = 0; i < n_out; i++) printf(i ? ", %d" : "%d", out_ids[i]);
        printf("], \"text\": ");
        fs_json_write_string(stdout, out_text, out_len);
        printf(", \"prompt_tokens\": %d, \"generated_tokens\": %d, \"prefill_tok_s\": %.3f, "
               "\"decode_tok_s\": %.3f, \"prefill_s\": %.6f, \"decode_s\": %.6f, \"stop_reason\": \"%s\", "
               "\"seed\": %llu}\n",
               st.prompt_tokens, st.generated, prefill_tps, decode_tps, st.prefill_s, st.decode_s,
               fs_stop_reason_name(st.stop), (unsigned long long)fs_seq_sampler_params(q)->seed);
    } else if (st.generated > 0 && isatty(STDOUT_FILENO)) {
        fputc('\n', stderr); /* keep the statistics off the last line of text */
    }
    /* errors first, then the statistics */
    int out_rc = cli_out_close(CMD);
    if (gr) cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
    fprintf(stderr, "prompt: %d tokens, prefill %.2f tok/s (%.3f s)\n", st.prompt_tokens, prefill_tps, st.prefill_s);
    fprintf(stderr, "generated: %d tokens, decode %.2f tok/s (%.3f s)\n", st.generated, decode_tps, st.decode_s);
    fprintf(stderr, "stop: %s\n", fs_stop_reason_name(st.stop));
    if (gr || out_rc) goto out;
    rc = st.stop == FS_STOP_CANCELLED ? FS_EXIT_CANCELLED : FS_EXIT_OK;

out:
    free(ids);
    free(text);
    fs_seq_free(q);
    fs_engine_free(g);
    return rc;
}
