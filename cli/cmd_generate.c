/* cmd_generate.c - `fs generate`: continue a raw prompt (no chat template),
 * streaming the text to stdout as it is produced.
 *
 *   fs generate -m MODEL -p "Once upon a time" -n 64 --temp 0
 *   fs generate -m MODEL -f prompt.txt --seed 1 --stop "\n\n" --json
 *
 * Sampling defaults come from the model's generation_config.json (Qwen3:
 * temperature 0.6, top-k 20, top-p 0.95); each flag overrides one value.
 * Generation stops at an eos id of the config (not printed), at a --stop
 * string (not printed, nor anything after it), after -n tokens, or when the
 * context is full. Ctrl-C stops it cleanly, and the statistics are still
 * printed.
 *
 * An empty prompt is an error (exit 2): Qwen3 has no BOS token, so there is
 * no position to predict from. (HF's generate() cannot start from zero
 * tokens either.)
 *
 * Docs: docs/generate.md
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "forward.h"
#include "generate.h"
#include "json.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

#define CMD "generate"
#define MAX_STOPS 16

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs generate -m MODEL (-p TEXT | -f FILE) [options]\n"
            "  Continue the raw prompt (no chat template) and stream the text to stdout;\n"
            "  statistics go to stderr. -m defaults to $FS_MODEL, else the shipped models/tiny.\n"
            "  -p, --prompt TEXT        the prompt\n"
            "  -f, --file FILE          read the prompt from FILE\n"
            "  -n, --max-tokens N       tokens to generate (default 256; 0 = prefill only)\n"
            "  --temp T                 temperature; 0 = greedy (default: generation_config, else 1)\n"
            "  --top-k K                keep the K most likely tokens; 0 = off (default: config)\n"
            "  --top-p P                nucleus: smallest set with mass >= P; 1 = off\n"
            "  --min-p M                drop tokens with p < M * p_max; 0 = off\n"
            "  --repeat-penalty R       HF repetition penalty on prompt + generated tokens; 1 = off\n"
            "  --presence-penalty P     subtract P from tokens already generated; 0 = off\n"
            "  --seed S                 sampling seed (default: from the clock; see --verbose)\n"
            "  --stop STR               stop before STR (repeatable, up to %d)\n"
            "  --ctx N                  context length in tokens (default 4096, capped by the model)\n"
            "  -t, --threads N          CPU threads (default: backend's choice)\n"
            "  --weights W              convert the weights at load: bf16, f16, f32, q8_0, q4_0\n"
            "                           (default: as stored; see fs quantize to store them)\n"
            "  --json                   print one JSON object at the end instead of streaming:\n"
            "                           ids, text, prompt_tokens, generated_tokens, prefill_tok_s,\n"
            "                           decode_tok_s, prefill_s, decode_s, stop_reason, seed\n"
            "  -v, --verbose            print the model, KV cache size and sampling settings\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, empty prompt, prompt longer\n"
            "than the context, generation failure).\n",
            MAX_STOPS);
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static int stream_out(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0; /* a closed pipe stops generation */
}

typedef struct textbuf {
    char *p;
    size_t n, cap;
} textbuf;

/* --json: collect into a buffer sized up front (the loop never allocates). */
static int collect(void *user, const char *text, size_t len) {
    textbuf *b = user;
    if (b->n + len > b->cap) return 1; /* cannot happen: cap is the worst case */
    memcpy(b->p + b->n, text, len);
    b->n += len;
    return 0;
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
    if (cli_parse_double(v, lo, hi, out)) {
        cli_fail(CMD, FS_EXIT_USAGE, "%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, v);
        return -1;
    }
    return 0;
}

int fs_cmd_generate(int argc, char **argv) {
    const char *model_flag = NULL, *prompt = NULL, *file = NULL, *weights = NULL;
    const char *stops[MAX_STOPS];
    int n_stops = 0, json = 0, verbose = 0;
    long n_new = 256, ctx = 0, threads = 0, top_k = -1;
    double temp = -1, top_p = -1, min_p = -1, rep = -1, pres = 0;
    int have_seed = 0;
    unsigned long long seed = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { verbose = 1; continue; }
#define VAL(name, alias) ((r = cli_flag(argc, argv, &i, name, alias, &v)) != 0)
        if (VAL("-m", "--model")) { if (r < 0) return FS_EXIT_USAGE; model_flag = v; }
        else if (VAL("--weights", NULL)) { if (r < 0) return FS_EXIT_USAGE; weights = v; }
        else if (VAL("-p", "--prompt")) { if (r < 0) return FS_EXIT_USAGE; prompt = v; }
        else if (VAL("-f", "--file")) { if (r < 0) return FS_EXIT_USAGE; file = v; }
        else if (VAL("-n", "--max-tokens")) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 0, 100000000, &n_new))
                return cli_fail(CMD, FS_EXIT_USAGE, "-n: expected a whole number >= 0, got '%s'", v);
        } else if (VAL("--ctx", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 1, 1 << 24, &ctx))
                return cli_fail(CMD, FS_EXIT_USAGE, "--ctx: expected a whole number >= 1, got '%s'", v);
        } else if (VAL("-t", "--threads")) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 1, 1024, &threads))
                return cli_fail(CMD, FS_EXIT_USAGE, "--threads: expected 1..1024, got '%s'", v);
        } else if (VAL("--top-k", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 0, 1L << 30, &top_k))
                return cli_fail(CMD, FS_EXIT_USAGE, "--top-k: expected a whole number >= 0, got '%s'", v);
        } else if (VAL("--temp", "--temperature")) {
            if (r < 0 || parse_num(a, v, 0, 1e6, &temp)) return FS_EXIT_USAGE;
        } else if (VAL("--top-p", NULL)) {
            if (r < 0 || parse_num(a, v, 1e-12, 1, &top_p)) return FS_EXIT_USAGE;
        } else if (VAL("--min-p", NULL)) {
            if (r < 0 || parse_num(a, v, 0, 1, &min_p)) return FS_EXIT_USAGE;
        } else if (VAL("--repeat-penalty", "--repetition-penalty")) {
            if (r < 0 || parse_num(a, v, 1e-6, 1e6, &rep)) return FS_EXIT_USAGE;
        } else if (VAL("--presence-penalty", NULL)) {
            if (r < 0 || parse_num(a, v, -1e6, 1e6, &pres)) return FS_EXIT_USAGE;
        } else if (VAL("--seed", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            char *end;
            if (!*v || *v == '-' || (seed = strtoull(v, &end, 10), *end))
                return cli_fail(CMD, FS_EXIT_USAGE, "--seed: expected a whole number >= 0, got '%s'", v);
            have_seed = 1;
        } else if (VAL("--stop", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (n_stops == MAX_STOPS) return cli_fail(CMD, FS_EXIT_USAGE, "at most %d --stop strings", MAX_STOPS);
            if (!*v) return cli_fail(CMD, FS_EXIT_USAGE, "--stop: the stop string is empty");
            stops[n_stops++] = v;
        } else {
            return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
        }
#undef VAL
    }
    if (prompt && file) return cli_fail(CMD, FS_EXIT_USAGE, "give either -p or -f, not both");
    if (!prompt && !file) return cli_fail(CMD, FS_EXIT_USAGE, "no prompt: use -p TEXT or -f FILE (see --help)");
    if (cli_check_weights(CMD, weights)) return FS_EXIT_USAGE;
    const char *model_dir = cli_model_dir_default(CMD, model_flag);
    if (!model_dir) return FS_EXIT_USAGE;

    int rc = FS_EXIT_INPUT;
    fs_err e = {{0}};
    fs_model model;
    memset(&model, 0, sizeof model);
    fs_tokenizer *tok = NULL;
    fs_session *sess = NULL;
    fs_sampler *smp = NULL;
    char *file_text = NULL;
    size_t file_len = 0;
    int *ids = NULL, n_ids = 0, *out_ids = NULL;
    textbuf text = {0};

    if (file && fs_read_file(file, &file_text, &file_len, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    if (cli_load_model(CMD, model_dir, weights, &model)) goto out;
    if (fs_tokenizer_load(&tok, model_dir, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    const char *ptext = file ? file_text : prompt;
    size_t plen = file ? file_len : strlen(prompt);
    if (fs_tokenizer_encode(tok, ptext, plen, &ids, &n_ids, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "prompt: %s", e.msg);
        goto out;
    }
    if (n_ids == 0) {
        cli_fail(CMD, FS_EXIT_INPUT, "empty prompt: Qwen3 has no BOS token, so there is nothing to continue");
        goto out;
    }

    fs_session_opts so = {(int)ctx, NULL, (int)threads};
    if (fs_session_new(&sess, &model, &so, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    int n_ctx = fs_session_n_ctx(sess);
    if (n_ids > n_ctx) {
        cli_fail(CMD, FS_EXIT_INPUT, "the prompt is %d tokens, longer than the context of %d tokens (raise --ctx)",
                 n_ids, n_ctx);
        goto out;
    }

    fs_sampler_params sp;
    fs_sampler_params_default(&sp, &model.cfg);
    if (temp >= 0) sp.temperature = temp;
    if (top_k >= 0) sp.top_k = (int)top_k;
    if (top_p >= 0) sp.top_p = top_p;
    if (min_p >= 0) sp.min_p = min_p;
    if (rep >= 0) sp.repetition_penalty = rep;
    sp.presence_penalty = pres;
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned long long)ts.tv_sec * 1000000007ULL ^ (unsigned long long)ts.tv_nsec ^
               ((unsigned long long)getpid() << 32);
    }
    sp.seed = seed;
    if (fs_sampler_new(&smp, model.cfg.vocab, &sp, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }

    if (verbose) {
        const fs_config *c = &model.cfg;
        fprintf(stderr, "model: %s  L %d  H %d  Hq %d  Hkv %d  D %d  I %d  V %d\n", model_dir, c->n_layers,
                c->hidden, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn, c->vocab);
        fprintf(stderr, "context: %d tokens  KV cache %.2f MiB  scratch %.2f MiB\n", n_ctx,
                fs_session_kv_bytes(sess) / 1048576.0, fs_session_scratch_bytes(sess) / 1048576.0);
        fprintf(stderr, "sampling: temp %g  top-k %d  top-p %g  min-p %g  repeat-penalty %g  presence-penalty %g  seed %llu\n",
                sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repetition_penalty, sp.presence_penalty, seed);
        fprintf(stderr, "stop ids:");
        for (int i = 0; i < c->n_eos; i++) fprintf(stderr, " %d", c->eos_ids[i]);
        fprintf(stderr, "\n");
    }

    /* fs_generate samples at most n_ctx - n_ids + 1 tokens (the last one
     * is never evaluated), which bounds the output buffers */
    long room = (long)n_ctx - n_ids + 1;
    int max_new = (int)(n_new < room ? n_new : room);
    out_ids = fs_xmalloc(((size_t)max_new + 1) * sizeof *out_ids);
    if (json) {
        text.cap = ((size_t)max_new + 1) * FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(tok));
        text.p = fs_xmalloc(text.cap + 1);
    }

    fs_gen_opts o = {0};
    o.max_new_tokens = (int)n_new;
    o.stop_ids = model.cfg.eos_ids;
    o.n_stop_ids = model.cfg.n_eos;
    o.stop_strings = stops;
    o.n_stop_strings = n_stops;
    o.on_text = json ? collect : stream_out;
    o.user = json ? (void *)&text : NULL;
    o.cancel = &interrupted;
    o.ids_out = out_ids;
    void (*old)(int) = signal(SIGINT, on_sigint);
    fs_gen_stats st;
    int gr = fs_generate(sess, tok, smp, ids, n_ids, &o, &st, &e);
    signal(SIGINT, old == SIG_ERR ? SIG_DFL : old);

    double prefill_tps = st.prefill_s > 0 ? st.prompt_tokens / st.prefill_s : 0;
    double decode_tps = st.decode_s > 0 ? st.generated_tokens / st.decode_s : 0;
    if (json) {
        printf("{\"ids\": [");
        for (int i = 0; i < st.generated_tokens; i++) printf(i ? ", %d" : "%d", out_ids[i]);
        printf("], \"text\": ");
        fs_json_write_string(stdout, text.p, text.n);
        printf(", \"prompt_tokens\": %d, \"generated_tokens\": %d, \"prefill_tok_s\": %.3f, "
               "\"decode_tok_s\": %.3f, \"prefill_s\": %.6f, \"decode_s\": %.6f, \"stop_reason\": \"%s\", "
               "\"seed\": %llu}\n",
               st.prompt_tokens, st.generated_tokens, prefill_tps, decode_tps, st.prefill_s, st.decode_s,
               fs_stop_reason_name(st.stop), seed);
    } else if (st.generated_tokens > 0 && isatty(STDOUT_FILENO)) {
        fputc('\n', stderr); /* keep the statistics off the last line of text */
    }
    fflush(stdout);
    fprintf(stderr, "prompt: %d tokens, prefill %.2f tok/s (%.3f s)\n", st.prompt_tokens, prefill_tps, st.prefill_s);
    fprintf(stderr, "generated: %d tokens, decode %.2f tok/s (%.3f s)\n", st.generated_tokens, decode_tps,
            st.decode_s);
    fprintf(stderr, "stop: %s\n", fs_stop_reason_name(st.stop));
    if (gr) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    rc = FS_EXIT_OK;

out:
    free(text.p);
    free(out_ids);
    free(ids);
    free(file_text);
    fs_sampler_free(smp);
    fs_session_free(sess);
    fs_tokenizer_free(tok);
    fs_model_free(&model);
    return rc;
}
