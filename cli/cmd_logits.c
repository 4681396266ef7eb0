/* cmd_logits.c - `fs logits`: run a prompt through the model and show the
 * distribution of the next token.
 *
 *   fs logits -m MODEL -p "The capital of France is" --top 5
 *   fs logits -m MODEL --ids "9707 11 1879" --dump-logits last.f32
 *   fs logits -f prompt.txt                 the shipped models/tiny
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
#include "engine.h"
#include "opts.h"

#define CMD "logits"
#define GROUPS (CLI_MODEL | CLI_RUNTIME | CLI_PROMPT)

static void usage(FILE *f) {
    fprintf(f, "usage: fs logits [-m MODEL] (-p TEXT | -f FILE | --ids \"ID ID ...\") [options]\n"
               "  Run the prompt and print the K most likely next tokens: rank, id,\n"
               "  probability (softmax at temperature 1), logit, and the token's text\n"
               "  (escaped).\n");
    cli_opts_usage(f, GROUPS, 0);
    fprintf(f, "  %-28s %s\n", "--ids \"1 2 3\"",
            "feed these token ids directly (space or comma separated;\n"
            "                               tokenizer.json is then optional)");
    fprintf(f, "  %-28s %s\n", "--top K", "how many tokens to list (default 10; 0 = none)");
    fprintf(f, "  %-28s %s\n", "--dump-logits FILE", "write the last position's logits: V little-endian f32");
    fprintf(f, "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, empty prompt, id out of\n"
               "range, prompt longer than the context, stdout not writable).\n");
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
    cli_opts o;
    cli_opts_init(&o, CMD, GROUPS, 0);
    const char *ids_arg = NULL, *dump_path = NULL;
    long top = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_opts_parse(&o, argc, argv, &i);
        if (r == 0) {
            if ((r = cli_flag(CMD, argc, argv, &i, "--ids", NULL, &v)) != 0) {
                ids_arg = v;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--dump-logits", NULL, &v)) != 0) {
                dump_path = v;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--top", NULL, &v)) != 0) {
                if (r > 0 && cli_int(CMD, "--top", v, 0, 1L << 30, &top)) r = -1;
            }
        }
        if (r < 0) return FS_EXIT_USAGE;
        if (r == 0) return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
    }
    int n_given = (o.prompt != NULL) + (o.file != NULL) + (ids_arg != NULL);
    if (n_given > 1) return cli_fail(CMD, FS_EXIT_USAGE, "give one of -p, -f and --ids");
    if (n_given == 0) return cli_fail(CMD, FS_EXIT_USAGE, "no prompt: use -p TEXT, -f FILE or --ids \"ID ...\"");
    int *ids = NULL, n_ids = 0;
    if (ids_arg && parse_ids(ids_arg, &ids, &n_ids))
        return cli_fail(CMD, FS_EXIT_USAGE, "--ids: expected token ids (whole numbers >= 0), got '%s'", ids_arg);

    int rc;
    fs_err e = {{0}};
    fs_engine *g = NULL;
    fs_seq *q = NULL;
    char *text = NULL;
    size_t len = 0;
    int *order = NULL;
    /* the tokenizer is needed for text; with --ids it only labels the tokens */
    if ((!ids_arg && (rc = cli_opts_prompt(&o, &text, &len))) ||
        (rc = cli_opts_open(&o, NULL, ids_arg ? FS_ENGINE_TOKENIZER_IF_PRESENT : FS_ENGINE_TOKENIZER, &g)))
        goto out;
    rc = FS_EXIT_INPUT;
    const fs_tokenizer *tok = fs_engine_tokenizer(g);
    if (!ids_arg && fs_engine_encode(g, text, len, &ids, &n_ids, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "prompt: %s", e.msg);
        goto out;
    }
    if (n_ids == 0) {
        cli_fail(CMD, FS_EXIT_INPUT, "empty prompt: Qwen3 has no BOS token, so there is nothing to predict from");
        goto out;
    }
    if ((rc = cli_opts_seq(&o, g, &q))) goto out;
    rc = FS_EXIT_INPUT;
    double t0 = fs_now();
    fs_seq_gen go = {0};
    go.on_prefill = cli_prefill_progress;
    int sr = fs_seq_sync(q, ids, n_ids, &go, NULL, &e);
    cli_status_clear();
    if (sr) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s%s", e.msg, sr == FS_SEQ_TOO_LONG ? " (raise -c/--ctx)" : "");
        goto out;
    }
    double dt = fs_now() - t0;
    int V = fs_engine_model(g)->cfg.vocab;
    const float *lg = fs_session_logits(fs_seq_session(q));
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
    rc = cli_out_close(CMD);

out:
    free(order);
    free(ids);
    free(text);
    fs_seq_free(q);
    fs_engine_free(g);
    return rc;
}
