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
 * buffer allocated once. On a terminal a progress line counts the windows.
 *
 * Docs: docs/bench.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "opts.h"
#include "quant.h"

#define CMD "perplexity"
#define GROUPS (CLI_MODEL | CLI_RUNTIME | CLI_PROMPT)
#define DEFAULT_WINDOW 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs perplexity [-m MODEL] (-f TEXT | -p TEXT | --ids-file IDS) [options]\n"
            "  Perplexity of a text: tokenize it (raw, no special tokens), cut it into\n"
            "  non-overlapping windows of -c tokens (default %d, the last one shorter), run\n"
            "  each from an empty cache; loss = mean -log p(next token), ppl = exp(loss).\n",
            DEFAULT_WINDOW);
    cli_opts_usage(f, GROUPS, 0);
    fprintf(f,
            "  --ids-file IDS               token ids instead of text (whole numbers separated by\n"
            "                               spaces, commas, newlines or [ ])\n"
            "  --max-windows N              evaluate only the first N windows (default: all)\n"
            "  --kl-base MODEL2             also run MODEL2 (same vocabulary) on every window:\n"
            "                               mean and max KL(MODEL2 || MODEL) per token, top-1\n"
            "                               agreement, MODEL2's ppl\n"
            "  --kl-base-weights W          the base at weights W: MODEL2, or MODEL itself when\n"
            "                               --kl-base is not given (e.g. --weights q8_0\n"
            "                               --kl-base-weights bf16: what quantization costs)\n"
            "  --json                       one JSON object instead of text\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable model or file, fewer than 2\n"
            "tokens, id out of range, vocabularies differ, stdout not writable).\n");
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

/* A model and its sequence (the main one or the KL base). */
typedef struct {
    fs_engine *g;
    fs_seq *q;
    float *logits; /* [C, V] */
    double nll;    /* sum over predicted tokens */
} evaluator;

/* Open a model for windows of C tokens (tokenizer: FS_ENGINE_TOKENIZER*,
 * engine.h). Returns 0 or an exit code, the
 * error already printed. */
static int open_eval(evaluator *ev, const cli_opts *o, const char *dir, int C, int tokenizer) {
    int rc = cli_opts_open(o, dir, tokenizer, &ev->g);
    if (!rc) rc = cli_opts_seq(o, ev->g, &ev->q);
    if (rc) return rc;
    if (fs_seq_n_ctx(ev->q) < C)
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: -c %d is longer than the model allows (%d)", dir, C,
                        fs_seq_n_ctx(ev->q));
    ev->logits = fs_xmalloc((size_t)C * (size_t)fs_engine_model(ev->g)->cfg.vocab * sizeof(float));
    return 0;
}

static void close_eval(evaluator *ev) {
    free(ev->logits);
    fs_seq_free(ev->q);
    fs_engine_free(ev->g);
}

/* Run one window from an empty cache; logits of all len positions. */
static int eval_window(evaluator *ev, const int *ids, int len, fs_err *e) {
    fs_session *s = fs_seq_session(ev->q);
    fs_session_truncate(s, 0);
    if (fs_session_eval_debug(s, ids, len, ev->logits, NULL, e)) return -1;
    if (!finite_rows(ev->logits, (size_t)len * (size_t)fs_engine_model(ev->g)->cfg.vocab))
        return fs_errf(e, "%s: a logit is NaN or infinite: the forward pass is broken", fs_engine_dir(ev->g));
    return 0;
}

int fs_cmd_perplexity(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o, CMD, GROUPS, 0);
    const char *ids_path = NULL, *base_dir = NULL, *base_weights = NULL;
    long max_windows = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_opts_parse(&o, argc, argv, &i);
        if (r == 0) {
            if (!strcmp(a, "--json")) {
                json = r = 1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--ids-file", NULL, &v)) != 0) {
                ids_path = v;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--kl-base", NULL, &v)) != 0) {
                base_dir = v;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--kl-base-weights", NULL, &v)) != 0) {
                base_weights = v;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--max-windows", NULL, &v)) != 0) {
                if (r > 0 && cli_int(CMD, a, v, 1, 1L << 30, &max_windows)) r = -1;
            }
        }
        if (r < 0) return FS_EXIT_USAGE;
        if (r == 0) return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
    }
    if ((o.file != NULL) + (o.prompt != NULL) + (ids_path != NULL) != 1)
        return cli_fail(CMD, FS_EXIT_USAGE, "give exactly one of -f TEXT, -p TEXT or --ids-file IDS");
    if (o.ctx == 0) o.ctx = DEFAULT_WINDOW;
    if (o.ctx < 2) return cli_fail(CMD, FS_EXIT_USAGE, "-c: a window needs at least 2 tokens, got %ld", o.ctx);
    fs_dtype to;
    if (base_weights && fs_dtype_from_weights_name(base_weights, &to))
        return cli_fail(CMD, FS_EXIT_USAGE, "--kl-base-weights: expected bf16, f16, f32, q8_0 or q4_0, got '%s'",
                        base_weights);
    const char *model_dir = cli_model_dir(CMD, o.model);
    if (!model_dir) return FS_EXIT_USAGE;
    if (base_weights && !base_dir) base_dir = model_dir;
    long C = o.ctx;

    int rc = FS_EXIT_INPUT;
    fs_err e = {{0}};
    evaluator M, B;
    memset(&M, 0, sizeof M);
    memset(&B, 0, sizeof B);
    char *data = NULL;
    size_t data_len = 0;
    int *ids = NULL, n = 0;
    double *win_nll = NULL;

    const char *in_path = o.file ? o.file : ids_path ? ids_path : "-p";
    if (o.prompt) {
        data = fs_xstrdup(o.prompt);
        data_len = strlen(data);
    } else if ((rc = cli_read_input(CMD, o.file ? o.file : ids_path, &data, &data_len)) != 0) {
        goto out;
    }
    rc = FS_EXIT_INPUT;
    if (ids_path && parse_ids(data, data_len, &ids, &n)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s: expected token ids (whole numbers >= 0)", ids_path);
        goto out;
    }
    /* Every input is checked before the base model is loaded. */
    if ((rc = open_eval(&M, &o, model_dir, (int)C, ids_path ? FS_ENGINE_NO_TOKENIZER : FS_ENGINE_TOKENIZER)) != 0)
        goto out;
    rc = FS_EXIT_INPUT;
    if (!ids_path && fs_engine_encode(M.g, data, data_len, &ids, &n, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s: %s", in_path, e.msg);
        goto out;
    }
    if (n < 2) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s: %d token%s, nothing to predict (need at least 2)", in_path, n,
                 n == 1 ? "" : "s");
        goto out;
    }
    int V = fs_engine_model(M.g)->cfg.vocab;
    for (int i = 0; i < n; i++)
        if (ids[i] >= V) {
            cli_fail(CMD, FS_EXIT_INPUT, "token id %d (position %d) is out of range: the model has V = %d", ids[i], i,
                     V);
            goto out;
        }
    if (base_dir) {
        cli_opts bo = o;
        bo.weights = base_weights;
        if ((rc = open_eval(&B, &bo, base_dir, (int)C, FS_ENGINE_NO_TOKENIZER)) != 0) goto out;
        rc = FS_EXIT_INPUT;
        if (fs_engine_model(B.g)->cfg.vocab != V) {
            cli_fail(CMD, FS_EXIT_INPUT, "--kl-base: vocabularies differ (V = %d vs %d)",
                     fs_engine_model(B.g)->cfg.vocab, V);
            goto out;
        }
    }

    /* The windows of the definition above: starts 0, C, 2C, ... < n - 1. */
    int n_windows = (int)((n - 2) / C) + 1;
    if (max_windows && n_windows > max_windows) n_windows = (int)max_windows;
    win_nll = fs_xmalloc((size_t)n_windows * sizeof *win_nll);
    long predicted = 0, evaluated = 0, agree = 0;
    double kl_sum = 0, kl_max = 0, t_model = 0, t0 = fs_now();
    for (int w = 0; w < n_windows; w++) {
        cli_status("window %d/%d", w + 1, n_windows);
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
    cli_status_clear();
    double seconds = fs_now() - t0, loss = M.nll / predicted, ppl = exp(loss);
    double tps = t_model > 0 ? evaluated / t_model : 0;
    long sum = 0;
    for (int i = 0; i < n; i++) sum += ids[i];

    if (json) {
        printf("{\"model\": ");
        json_str(model_dir);
        printf(", \"weights\": ");
        json_str(o.weights ? o.weights : "as stored");
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
        printf("model %s (weights %s), input %s\n", model_dir, o.weights ? o.weights : "as stored", in_path);
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
    rc = cli_out_close(CMD);

out:
    free(win_nll);
    free(ids);
    free(data);
    close_eval(&B);
    close_eval(&M);
    return rc;
}
