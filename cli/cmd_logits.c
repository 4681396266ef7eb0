/* cmd_logits.c - `fs logits`: run a prompt through the model and show the
 * distribution of the next token.
 *
 *   fs logits -m MODEL -p "The capital of France is" --top 5
 *   fs logits -m MODEL --ids "9707 11 1879" --dump-logits last.f32
 *
 * The probabilities are the plain softmax of the logits (temperature 1, no
 * penalties, no filtering): what the model itself says. --dump-logits
 * writes the last position's V logits as little-endian f32, for comparing
 * against the Python oracle byte for byte.
 *
 * Docs: docs/sampling.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "forward.h"
#include "model.h"
#include "tokenizer.h"

#define CMD "logits"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs logits -m MODEL (-p TEXT | --ids \"ID ID ...\") [options]\n"
            "  Run the prompt and print the K most likely next tokens: rank, id,\n"
            "  probability (softmax at temperature 1), logit, and the token's text\n"
            "  (escaped). -m defaults to $FS_MODEL, else the shipped models/tiny.\n"
            "  -p, --prompt TEXT      the prompt (needs MODEL/tokenizer.json)\n"
            "  --ids \"1 2 3\"          feed these token ids directly (space or comma\n"
            "                         separated; tokenizer.json is then optional)\n"
            "  --top K                how many tokens to list (default 10; 0 = none)\n"
            "  --dump-logits FILE     write the last position's logits: V little-endian f32\n"
            "  --ctx N                context length in tokens (default 4096, capped by the model)\n"
            "  -t, --threads N        CPU threads\n"
            "  --weights W            convert the weights at load: bf16, f16, f32, q8_0, q4_0\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, empty prompt, id out of\n"
            "range, prompt longer than the context).\n");
}

/* Token text for a terminal: printable ASCII as is, whole UTF-8 characters
 * as is, everything else (control bytes, the half of a character a
 * byte-level token often is) as \xNN. */
static void print_escaped(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int k = c >= 0x80 ? fs_utf8_decode((const unsigned char *)s + i, n - i, &cp) : 0;
        if (k > 0) { /* a whole multi-byte character */
            fwrite(s + i, 1, (size_t)k, stdout);
            i += (size_t)k;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        default:
            if (c >= 0x20 && c < 0x7f) putchar(c);
            else printf("\\x%02x", c);
        }
        i++;
    }
    putchar('"');
}

static int parse_ids(const char *s, int **ids, int *n) {
    size_t cap = strlen(s) / 2 + 1;
    int *out = fs_xmalloc(cap * sizeof *out);
    int k = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
            free(out);
            return -1;
        }
        out[k++] = (int)v;
        p = end;
    }
    *ids = out;
    *n = k;
    return 0;
}

static const float *sort_logits; /* qsort has no context argument */
static int by_logit(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    float lx = sort_logits[x], ly = sort_logits[y];
    if (lx != ly) return lx > ly ? -1 : 1; /* descending; NaN is rejected before */
    return (x > y) - (x < y);
}

static int dump(const char *path, const float *x, int V) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (int i = 0; i < V; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                              (unsigned char)(u >> 24)};
        fwrite(b, 1, 4, f);
    }
    int bad = ferror(f);
    return (fclose(f) || bad) ? -1 : 0;
}

int fs_cmd_logits(int argc, char **argv) {
    const char *model_flag = NULL, *prompt = NULL, *ids_arg = NULL, *dump_path = NULL, *weights = NULL;
    long top = 10, ctx = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return FS_EXIT_OK;
        }
#define VAL(name, alias) ((r = cli_flag(argc, argv, &i, name, alias, &v)) != 0)
        if (VAL("-m", "--model")) { if (r < 0) return FS_EXIT_USAGE; model_flag = v; }
        else if (VAL("--weights", NULL)) { if (r < 0) return FS_EXIT_USAGE; weights = v; }
        else if (VAL("-p", "--prompt")) { if (r < 0) return FS_EXIT_USAGE; prompt = v; }
        else if (VAL("--ids", NULL)) { if (r < 0) return FS_EXIT_USAGE; ids_arg = v; }
        else if (VAL("--dump-logits", NULL)) { if (r < 0) return FS_EXIT_USAGE; dump_path = v; }
        else if (VAL("--top", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 0, 1L << 30, &top))
                return cli_fail(CMD, FS_EXIT_USAGE, "--top: expected a whole number >= 0, got '%s'", v);
        } else if (VAL("--ctx", NULL)) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 1, 1 << 24, &ctx))
                return cli_fail(CMD, FS_EXIT_USAGE, "--ctx: expected a whole number >= 1, got '%s'", v);
        } else if (VAL("-t", "--threads")) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_parse_int(v, 1, 1024, &threads))
                return cli_fail(CMD, FS_EXIT_USAGE, "--threads: expected 1..1024, got '%s'", v);
        } else {
            return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
        }
#undef VAL
    }
    if (prompt && ids_arg) return cli_fail(CMD, FS_EXIT_USAGE, "give either -p or --ids, not both");
    if (!prompt && !ids_arg) return cli_fail(CMD, FS_EXIT_USAGE, "no prompt: use -p TEXT or --ids \"ID ...\"");
    if (cli_check_weights(CMD, weights)) return FS_EXIT_USAGE;
    int *ids = NULL, n_ids = 0;
    if (ids_arg && parse_ids(ids_arg, &ids, &n_ids))
        return cli_fail(CMD, FS_EXIT_USAGE, "--ids: expected token ids (whole numbers >= 0), got '%s'", ids_arg);
    const char *model_dir = cli_model_dir_default(CMD, model_flag);
    if (!model_dir) {
        free(ids);
        return FS_EXIT_USAGE;
    }

    int rc = FS_EXIT_INPUT;
    fs_err e = {{0}};
    fs_model model;
    memset(&model, 0, sizeof model);
    fs_tokenizer *tok = NULL;
    fs_session *sess = NULL;
    int *order = NULL;

    if (cli_load_model(CMD, model_dir, weights, &model)) goto out;
    /* the tokenizer is needed for -p; with --ids it only labels the tokens */
    char tpath[2048];
    int have_tok_file = fs_path_join(tpath, sizeof tpath, model_dir, "tokenizer.json") == 0 && fs_file_exists(tpath);
    if ((prompt || have_tok_file) && fs_tokenizer_load(&tok, model_dir, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    if (prompt && fs_tokenizer_encode(tok, prompt, strlen(prompt), &ids, &n_ids, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "prompt: %s", e.msg);
        goto out;
    }
    if (n_ids == 0) {
        cli_fail(CMD, FS_EXIT_INPUT, "empty prompt: Qwen3 has no BOS token, so there is nothing to predict from");
        goto out;
    }
    int V = model.cfg.vocab;
    for (int i = 0; i < n_ids; i++)
        if (ids[i] >= V) {
            cli_fail(CMD, FS_EXIT_INPUT, "token id %d is out of range: the model has V = %d", ids[i], V);
            goto out;
        }
    fs_session_opts so = {(int)ctx, NULL, (int)threads};
    if (fs_session_new(&sess, &model, &so, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    if (n_ids > fs_session_n_ctx(sess)) {
        cli_fail(CMD, FS_EXIT_INPUT, "the prompt is %d tokens, longer than the context of %d tokens (raise --ctx)",
                 n_ids, fs_session_n_ctx(sess));
        goto out;
    }
    double t0 = fs_now();
    if (fs_session_eval(sess, ids, n_ids, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    double dt = fs_now() - t0;
    const float *lg = fs_session_logits(sess);
    /* dump first: broken logits are exactly what one wants to look at */
    if (dump_path && dump(dump_path, lg, V)) {
        cli_fail(CMD, FS_EXIT_INPUT, "cannot write %s", dump_path);
        goto out;
    }
    for (int i = 0; i < V; i++)
        if (isnan(lg[i]) || (isinf(lg[i]) && lg[i] > 0)) {
            cli_fail(CMD, FS_EXIT_INPUT, "the logit of token %d is %s: the forward pass is broken", i,
                     isnan(lg[i]) ? "NaN" : "+inf");
            goto out;
        }

    /* softmax in double: p_i = exp(l_i - max) / sum_j exp(l_j - max) */
    order = fs_xmalloc((size_t)V * sizeof *order);
    for (int i = 0; i < V; i++) order[i] = i;
    sort_logits = lg;
    qsort(order, (size_t)V, sizeof *order, by_logit);
    double maxl = lg[order[0]], z = 0;
    for (int i = 0; i < V; i++) z += exp((double)lg[i] - maxl);
    printf("prompt: %d tokens, V = %d, forward %.3f s\n", n_ids, V, dt);
    if (top > V) top = V;
    if (top > 0) printf("%-5s %-8s %-10s %-11s %s\n", "rank", "id", "prob", "logit", "token");
    for (int r = 0; r < top; r++) {
        int id = order[r];
        printf("%-5d %-8d %-10.6f %-11.5f ", r + 1, id, exp((double)lg[id] - maxl) / z, lg[id]);
        size_t n;
        const char *b = tok ? fs_tokenizer_token_bytes(tok, id, &n) : NULL;
        if (b) print_escaped(b, n);
        else printf("%s", tok ? "(no token)" : "(no tokenizer)");
        putchar('\n');
    }
    rc = FS_EXIT_OK;

out:
    free(order);
    free(ids);
    fs_session_free(sess);
    fs_tokenizer_free(tok);
    fs_model_free(&model);
    return rc;
}
