/* cmd_perplexity.c - `fs perplexity`: how well a model predicts a text, and
 * how far it drifts from a base model (another checkpoint, or the same one
 * at other weights).
 *
 *   fs perplexity -m MODEL -f heldout.txt --ctx 256
 *   fs perplexity -m MODEL_Q8 -f heldout.txt --kl-base MODEL_BF16
 *   fs perplexity -m MODEL --weights q4_0 -f heldout.txt --kl-base-weights bf16
 *
 * The evaluation is the one scripts/train_tiny.py uses for
 * models/tiny/eval.json (its "definition" field), so the numbers compare:
 *   ids     = encode(the whole file as one string, no special tokens)
 *   windows = ids[k C : (k+1) C] for k = 0, 1, ... while k C < n - 1
 *             (the last window is shorter; it always predicts >= 1 token)
 *   each window starts from an empty cache;
 *   loss    = sum over windows and positions j = 1 .. len-1 of
 *             -log softmax(logits[j-1])[ids[j]]  /  number of predicted tokens
 *   ppl     = exp(loss)
 * log-softmax is computed in double: log p_v = x_v - (m + log sum_u e^(x_u - m)),
 * m = max_u x_u, so no exponent overflows.
 *
 * With a base model B (same vocabulary), at every predicted position:
 *   KL(B || M) = sum_v p_B(v) (log p_B(v) - log p_M(v))     (nats, >= 0)
 * reported as the mean over positions and the maximum, plus how often the
 * two argmaxes agree (top-1 agreement) and the base model's own ppl.
 *
 * Logits of every position come from fs_session_eval_debug into one [C, V]
 * buffer allocated once.
 *
 * Docs: docs/bench.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "forward.h"
#include "model.h"
#include "tokenizer.h"

#define CMD "perplexity"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs perplexity -m MODEL (-f TEXT | --ids-file IDS) [options]\n"
            "  Perplexity of a text: tokenize it (raw, no special tokens), cut it into\n"
            "  non-overlapping windows of --ctx tokens (the last one shorter), run each\n"
            "  from an empty cache; loss = mean -log p(next token), ppl = exp(loss).\n"
            "  -m defaults to $FS_MODEL.\n"
            "  -f, --file TEXT        the text file (UTF-8)\n"
            "  --ids-file IDS         token ids instead of text (whole numbers separated by\n"
            "                         spaces, commas, newlines or [ ])\n"
            "  --ctx N                window length in tokens (default 256)\n"
            "  --max-windows N        evaluate only the first N windows (default: all)\n"
            "  --kl-base MODEL2       also run MODEL2 (same vocabulary) on every window:\n"
            "                         mean and max KL(MODEL2 || MODEL) per token, top-1\n"
            "                         agreement, MODEL2's ppl\n"
            "  --weights W            convert MODEL's weights at load: bf16, f16, f32, q8_0, q4_0\n"
            "  --kl-base-weights W    the base at weights W: MODEL2, or MODEL itself when\n"
            "                         --kl-base is not given (e.g. --weights q8_0\n"
            "                         --kl-base-weights bf16: what quantization costs)\n"
            "  --json                 one JSON object instead of text\n"
            "  -t, --threads N        CPU threads\n"
            "  --backend NAME         backend (default: the default backend)\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable model or file, fewer than 2\n"
            "tokens, id out of range, vocabularies differ).\n");
}

/* Whole numbers separated by spaces, commas, newlines or brackets. */
static int parse_ids(const char *s, size_t len, int **ids, int *n) {
    int *out = fs_xmalloc((len / 2 + 1) * sizeof *out);
    int k = 0;
    size_t i = 0;
    for (;;) {
        while (i < len && strchr(" ,\t\r\n[]", s[i]) && s[i]) i++;
        if (i >= len) break;
        if (s[i] < '0' || s[i] > '9') {
            free(out);
            return -1;
        }
        long v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i++] - '0');
            if (v > INT32_MAX) {
                free(out);
                return -1;
            }
        }
        out[k++] = (int)v;
    }
    *ids = out;
    *n = k;
    return 0;
}

/* log sum_v e^(x_v), in double. */
static double log_sum_exp(const float *x, int V) {
    double m = x[0];
    for (int v = 1; v < V; v++) m = x[v] > m ? x[v] : m;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - m);
    return m + log(s);
}

static int argmax(const float *x, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[best]) best = v;
    return best;
}

/* KL(p_b || p_m) of two logit rows, given their log-sum-exps. */
static double kl_row(const float *xb, double lse_b, const float *xm, double lse_m, int V) {
    double kl = 0;
    for (int v = 0; v < V; v++) {
        double lb = (double)xb[v] - lse_b, lm = (double)xm[v] - lse_m;
        kl += exp(lb) * (lb - lm);
    }
    return kl;
}

static int finite_rows(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* A model and its session (the main one or the KL base). */
typedef struct {
    fs_model model;
    fs_session *sess;
    float *logits; /* [C, V] */
    double nll;    /* sum over predicted tokens */
} evaluator;

/* Make the session and the logits buffer of a loaded model. Returns 0 or
 * an exit code, the error already printed. */
static int open_session(evaluator *ev, int C, const char *backend, int threads) {
    fs_err e = {{0}};
    fs_session_opts so = {C, backend, threads};
    if (fs_session_new(&ev->sess, &ev->model, &so, &e))
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: %s", ev->model.dir, e.msg);
    if (fs_session_n_ctx(ev->sess) < C)
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: --ctx %d is longer than the model allows (%d)", ev->model.dir, C,
                        fs_session_n_ctx(ev->sess));
    ev->logits = fs_xmalloc((size_t)C * (size_t)ev->model.cfg.vocab * sizeof(float));
    return 0;
}

static void close_eval(evaluator *ev) {
    free(ev->logits);
    fs_session_free(ev->sess);
    fs_model_free(&ev->model);
}

/* Run one window from an empty cache; logits of all len positions. */
static int eval_window(evaluator *ev, const int *ids, int len, fs_err *e) {
    fs_session_truncate(ev->sess, 0);
    if (fs_session_eval_debug(ev->sess, ids, len, ev->logits, NULL, e)) return -1;
    if (!finite_rows(ev->logits, (size_t)len * (size_t)ev->model.cfg.vocab))
        return fs_errf(e, "%s: a logit is NaN or infinite: the forward pass is broken", ev->model.dir);
    return 0;
}

int fs_cmd_perplexity(int argc, char **argv) {
    const char *model_flag = NULL, *text_path = NULL, *ids_path = NULL, *base_dir = NULL, *backend = NULL,
               *weights = NULL, *base_weights = NULL;
    long C = 256, max_windows = 0, threads = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return FS_EXIT_OK;
        }
#define VAL(name, alias) ((r = cli_flag(argc, argv, &i, name, alias, &v)) != 0)
        if (!strcmp(a, "--json")) json = 1;
        else if (VAL("-m", "--model")) { if (r < 0) return FS_EXIT_USAGE; model_flag = v; }
        else if (VAL("-f", "--file")) { if (r < 0) return FS_EXIT_USAGE; text_path = v; }
        else if (VAL("--ids-file", NULL)) { if (r < 0) return FS_EXIT_USAGE; ids_path = v; }
        else if (VAL("--kl-base", NULL)) { if (r < 0) return FS_EXIT_USAGE; base_dir = v; }
        else if (VAL("--backend", NULL)) { if (r < 0) return FS_EXIT_USAGE; backend = v; }
        else if (VAL("--weights", NULL)) { if (r < 0) return FS_EXIT_USAGE; weights = v; }
        else if (VAL("--kl-base-weights", NULL)) { if (r < 0) return FS_EXIT_USAGE; base_weights = v; }
        else if (VAL("--ctx", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 2, 1 << 24, &C))
                return cli_fail(CMD, FS_EXIT_USAGE, "--ctx: expected a whole number >= 2, got '%s'", v);
        } else if (VAL("--max-windows", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 1, 1L << 30, &max_windows))
                return cli_fail(CMD, FS_EXIT_USAGE, "--max-windows: expected a whole number >= 1, got '%s'", v);
        } else if (VAL("-t", "--threads")) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 1, 1024, &threads))
                return cli_fail(CMD, FS_EXIT_USAGE, "--threads: expected 1..1024, got '%s'", v);
        } else {
            return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
        }
#undef VAL
    }
    if (!text_path == !ids_path) return cli_fail(CMD, FS_EXIT_USAGE, "give exactly one of -f TEXT or --ids-file IDS");
    if (cli_check_weights(CMD, weights) || cli_check_weights(CMD, base_weights)) return FS_EXIT_USAGE;
    const char *model_dir = cli_model_dir(CMD, model_flag);
    if (!model_dir) return FS_EXIT_USAGE;
    if (base_weights && !base_dir) base_dir = model_dir;

    int rc = FS_EXIT_INPUT;
    fs_err e = {{0}};
    evaluator M, B;
    memset(&M, 0, sizeof M);
    memset(&B, 0, sizeof B);
    fs_tokenizer *tok = NULL;
    char *data = NULL;
    size_t data_len = 0;
    int *ids = NULL, n = 0;
    double *win_nll = NULL;

    const char *in_path = text_path ? text_path : ids_path;
    if (fs_read_file(in_path, &data, &data_len, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    if (ids_path && parse_ids(data, data_len, &ids, &n)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s: expected token ids (whole numbers >= 0)", ids_path);
        goto out;
    }
    /* Every input is checked before a session (threads, KV cache) exists. */
    if ((rc = cli_load_model(CMD, model_dir, weights, &M.model)) != 0) goto out;
    rc = FS_EXIT_INPUT;
    if (text_path) {
        if (fs_tokenizer_load(&tok, model_dir, &e) ||
            fs_tokenizer_encode(tok, data, data_len, &ids, &n, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "%s: %s", text_path, e.msg);
            goto out;
        }
    }
    if (n < 2) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s: %d token%s, nothing to predict (need at least 2)", in_path, n,
                 n == 1 ? "" : "s");
        goto out;
    }
    if (C > M.model.cfg.max_pos) {
        cli_fail(CMD, FS_EXIT_INPUT, "--ctx %ld is longer than the model allows (max_position_embeddings %d)", C,
                 M.model.cfg.max_pos);
        goto out;
    }
    int V = M.model.cfg.vocab;
    for (int i = 0; i < n; i++)
        if (ids[i] >= V) {
            cli_fail(CMD, FS_EXIT_INPUT, "token id %d (position %d) is out of range: the model has V = %d", ids[i], i,
                     V);
            goto out;
        }
    if (base_dir) {
        if ((rc = cli_load_model(CMD, base_dir, base_weights, &B.model)) != 0) goto out;
        rc = FS_EXIT_INPUT;
        if (B.model.cfg.vocab != V) {
            cli_fail(CMD, FS_EXIT_INPUT, "--kl-base: vocabularies differ (V = %d vs %d)", B.model.cfg.vocab, V);
            goto out;
        }
    }

    if ((rc = open_session(&M, (int)C, backend, (int)threads)) != 0 ||
        (base_dir && (rc = open_session(&B, (int)C, backend, (int)threads)) != 0))
        goto out;
    rc = FS_EXIT_INPUT;

    /* The windows of the definition above: starts 0, C, 2C, ... < n - 1. */
    int n_windows = (int)((n - 2) / C) + 1;
    if (max_windows && n_windows > max_windows) n_windows = (int)max_windows;
    win_nll = fs_xmalloc((size_t)n_windows * sizeof *win_nll);
    long predicted = 0, evaluated = 0, agree = 0;
    double kl_sum = 0, kl_max = 0, t_model = 0, t0 = fs_now();
    for (int w = 0; w < n_windows; w++) {
        size_t start = (size_t)w * (size_t)C;
        int len = (size_t)n - start < (size_t)C ? (int)((size_t)n - start) : (int)C;
        const int *wid = ids + start;
        double tm = fs_now();
        if (eval_window(&M, wid, len, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
            goto out;
        }
        t_model += fs_now() - tm;
        if (base_dir && eval_window(&B, wid, len, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "--kl-base: %s", e.msg);
            goto out;
        }
        double wsum = 0, bsum = 0;
        for (int j = 0; j + 1 < len; j++) {
            const float *xm = M.logits + (size_t)j * V;
            double lse_m = log_sum_exp(xm, V);
            wsum += lse_m - xm[wid[j + 1]];
            if (base_dir) {
                const float *xb = B.logits + (size_t)j * V;
                double lse_b = log_sum_exp(xb, V);
                bsum += lse_b - xb[wid[j + 1]];
                double kl = kl_row(xb, lse_b, xm, lse_m, V);
                kl_sum += kl;
                kl_max = kl > kl_max ? kl : kl_max;
                agree += argmax(xb, V) == argmax(xm, V);
            }
        }
        M.nll += wsum;
        B.nll += bsum;
        win_nll[w] = wsum / (len - 1);
        predicted += len - 1;
        evaluated += len;
    }
    double seconds = fs_now() - t0, loss = M.nll / predicted, ppl = exp(loss);
    double tps = t_model > 0 ? evaluated / t_model : 0;
    long sum = 0;
    for (int i = 0; i < n; i++) sum += ids[i];

    if (json) {
        printf("{\"model\": ");
        json_str(model_dir);
        printf(", \"weights\": ");
        json_str(weights ? weights : "as stored");
        printf(", \"input\": ");
        json_str(in_path);
        printf(", \"context\": %ld, \"tokens\": %d, \"windows\": %d, \"evaluated_tokens\": %ld, "
               "\"predicted_tokens\": %ld,\n \"loss\": %.17g, \"ppl\": %.17g, \"seconds\": %.3f, "
               "\"tok_per_s\": %.2f, \"ids_sum\": %ld, \"ids_head\": [",
               C, n, n_windows, evaluated, predicted, loss, ppl, seconds, tps, sum);
        for (int i = 0; i < n && i < 16; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("],\n \"window_loss\": [");
        for (int w = 0; w < n_windows; w++) printf("%s%.17g", w ? ", " : "", win_nll[w]);
        printf("]");
        if (base_dir) {
            printf(",\n \"kl\": {\"base\": ");
            json_str(base_dir);
            printf(", \"base_weights\": ");
            json_str(base_weights ? base_weights : "as stored");
            printf(", \"base_loss\": %.17g, \"base_ppl\": %.17g, \"mean\": %.17g, \"max\": %.17g, "
                   "\"top1_agreement\": %.17g}",
                   B.nll / predicted, exp(B.nll / predicted), kl_sum / predicted, kl_max,
                   (double)agree / predicted);
        }
        printf("}\n");
    } else {
        printf("model %s (weights %s), input %s\n", model_dir, weights ? weights : "as stored", in_path);
        printf("tokens %d (id sum %ld), windows %d of %ld (each from an empty cache), predicted %ld\n", n, sum,
               n_windows, C, predicted);
        printf("mean NLL %.6f nats, ppl %.4f\n", loss, ppl);
        if (base_dir) {
            printf("base %s (weights %s): mean NLL %.6f, ppl %.4f\n", base_dir,
                   base_weights ? base_weights : "as stored", B.nll / predicted, exp(B.nll / predicted));
            printf("KL(base || model) per token: mean %.6g, max %.6g nats; top-1 agreement %.2f%%\n",
                   kl_sum / predicted, kl_max, 100.0 * agree / predicted);
        }
        printf("time %.2f s, model %.1f tok/s (every position's logits)\n", seconds, tps);
    }
    rc = FS_EXIT_OK;

out:
    free(win_nll);
    free(ids);
    free(data);
    fs_tokenizer_free(tok);
    close_eval(&B);
    close_eval(&M);
    return rc;
}
