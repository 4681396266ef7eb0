/* cmd_quantize.c - `fs quantize MODEL OUT --weights q8_0|q4_0|f16|bf16|f32`:
 * convert a checkpoint once and store it, so later loads need no conversion.
 * An OUT that already holds a model.safetensors is left alone unless
 * --force says to replace it.
 *
 * OUT gets config.json, generation_config.json and the tokenizer files
 * copied as they are, and one model.safetensors holding the tensors the
 * architecture uses: every matrix (embed_tokens, the projections, lm_head
 * when untied) in the new format, the norms as stored. Q8_0 / Q4_0 tensors
 * carry the dtype strings "Q8_0" / "Q4_0" and their logical shape [N, K];
 * their bytes are N * K/32 blocks of 34 / 18 bytes (src/quant.h), so fs
 * mmaps them and runs on them directly (zero copy). Those dtype strings are
 * fs's own: Hugging Face's safetensors and transformers cannot load such a
 * file (f16 / bf16 / f32 outputs stay ordinary HF checkpoints).
 *
 * Tensors are laid out with no gaps (HF's reader requires that), f32 ones
 * first: every other tensor's size is even, so each one starts aligned to
 * its element (f32: 4 bytes; bf16, f16 and the blocks' f16 scale: 2). The
 * file is written to OUT/model.safetensors.tmp and renamed into place, so
 * a crash never leaves a half-written model.safetensors.
 *
 * Docs: docs/quantization.md
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "quant.h"

#define CMD "quantize"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs quantize MODEL OUT --weights q8_0|q4_0|f16|bf16|f32 [--force]\n"
            "  Write OUT, a copy of the checkpoint MODEL whose matrices (embed_tokens,\n"
            "  every projection, lm_head) are stored in the given format; norms stay as\n"
            "  stored. config, generation config and tokenizer files are copied.\n"
            "  q8_0 / q4_0: 8.5 / 4.5 bits per weight (GGUF's block layouts); fs loads\n"
            "  them directly, Hugging Face cannot (fs's own safetensors dtypes).\n"
            "  fs generate --weights q8_0 MODEL runs the same numbers without a file.\n"
            "  --force   replace OUT/model.safetensors if it exists (else: refused)\n"
            "Exit: 0 ok, 1 usage (OUT exists without --force), 2 bad input (unreadable\n"
            "model, unwritable OUT).\n");
}

static const char *copied_files[] = {"config.json", "generation_config.json", "tokenizer.json",
                                     "tokenizer_config.json", "chat_template.jinja"};

/* Write everything to path.tmp, then rename: readers see the old file or the
 * whole new one. */
static int copy_file(const char *src, const char *dst) {
    char *data;
    size_t len;
    fs_err e;
    if (fs_read_file(src, &data, &len, &e)) return cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f)) ok = 0;
    free(data);
    if (!ok || rename(tmp, dst)) {
        int err = errno;
        unlink(tmp);
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: cannot write: %s", dst, strerror(err));
    }
    return 0;
}

typedef struct {
    const fs_tensor *t;
    size_t begin;
} entry;

/* The tensors the architecture uses, f32 first (see the top). Their names
 * are the exact HF names the loader looked up, so they need no JSON
 * escaping. out has room for 2 + 14 L + 1 entries. */
static int list_tensors(const fs_model *m, entry *out) {
    const fs_tensor **all = fs_xmalloc((size_t)(3 + 14 * m->cfg.n_layers) * sizeof *all);
    int n = 0;
    all[n++] = &m->embed_tokens;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const fs_layer *L = &m->layers[l];
        const fs_tensor *ts[] = {&L->input_layernorm, &L->q_proj, &L->k_proj, &L->v_proj,
                                 &L->q_bias, &L->k_bias, &L->v_bias, &L->q_norm, &L->k_norm, &L->o_proj,
                                 &L->post_attention_layernorm, &L->gate_proj, &L->up_proj, &L->down_proj};
        for (int i = 0; i < 14; i++)
            if (ts[i]->data) all[n++] = ts[i];   /* the architecture's (arch.h): absent ones have no data */
    }
    all[n++] = &m->norm;
    if (!m->cfg.tie_embeddings) all[n++] = &m->lm_head;
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if ((all[i]->dtype == FS_DTYPE_F32) == (pass == 0)) out[k++].t = all[i];
    free(all);
    return k;
}

static void put_shape(FILE *f, const fs_tensor *t) {
    fputc('[', f);
    for (int i = 0; i < t->ndim; i++) fprintf(f, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    fputc(']', f);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes (as HF
 * does) so the data section starts 8-byte aligned. */
static char *build_header(const entry *es, int n, const char *weights, size_t *len) {
    char *buf = NULL;
    size_t cap = 0;
    FILE *f = open_memstream(&buf, &cap);
    if (!f) return NULL;
    fprintf(f, "{\"__metadata__\": {\"format\": \"pt\", \"fs_weights\": \"%s\"}", weights);
    for (int i = 0; i < n; i++) {
        const fs_tensor *t = es[i].t;
        fprintf(f, ", \"%s\": {\"dtype\": \"%s\", \"shape\": ", t->name, fs_dtype_name(t->dtype));
        put_shape(f, t);
        fprintf(f, ", \"data_offsets\": [%zu, %zu]}", es[i].begin, es[i].begin + t->nbytes);
    }
    fputc('}', f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    size_t padded = (cap + 7) / 8 * 8;
    char *out = realloc(buf, padded);
    if (!out) {
        free(buf);
        return NULL;
    }
    memset(out + cap, ' ', padded - cap);
    *len = padded;
    return out;
}

static int write_model(const fs_model *m, const char *out_dir, const char *weights) {
    entry *es = calloc((size_t)(16 + 14 * m->cfg.n_layers), sizeof *es);
    if (!es) return cli_fail(CMD, FS_EXIT_INPUT, "out of memory");
    int n = list_tensors(m, es);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        es[i].begin = off;
        off += es[i].t->nbytes;
    }
    size_t hlen = 0;
    char *header = build_header(es, n, weights, &hlen);
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = header ? fopen(tmp, "wb") : NULL;
    int ok = f != NULL;
    if (ok) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i)); /* little-endian */
        ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
        for (int i = 0; i < n && ok; i++) ok = fwrite(es[i].t->data, 1, es[i].t->nbytes, f) == es[i].t->nbytes;
    }
    int err = errno;
    if (f && fclose(f)) {
        err = errno;
        ok = 0;
    }
    free(header);
    free(es);
    if (!ok || rename(tmp, path)) {
        if (ok) err = errno;
        unlink(tmp);
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: cannot write: %s", path, strerror(err));
    }
    cli_status_clear();
    printf("wrote %s: %d tensors, %zu bytes (%s)\n", path, n, 8 + hlen + off, weights);
    return 0;
}

int fs_cmd_quantize(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *weights = NULL;
    int n_pos = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (cli_is_help(a)) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        if (!strcmp(a, "--force")) {
            force = 1;
        } else if ((r = cli_flag(CMD, argc, argv, &i, "--weights", NULL, &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            weights = v;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(CMD, FS_EXIT_USAGE, "unknown option '%s' (see --help)", a);
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            return cli_fail(CMD, FS_EXIT_USAGE, "unexpected argument '%s' (see --help)", a);
        }
    }
    if (n_pos < 2) return cli_fail(CMD, FS_EXIT_USAGE, "need MODEL and OUT (see --help)");
    if (!weights) return cli_fail(CMD, FS_EXIT_USAGE, "--weights is required: q8_0, q4_0, f16, bf16 or f32");
    fs_dtype to;
    if (fs_dtype_from_weights_name(weights, &to))
        return cli_fail(CMD, FS_EXIT_USAGE, "--weights: expected bf16, f16, f32, q8_0 or q4_0, got '%s'", weights);
    const char *src = pos[0], *out = pos[1];

    struct stat so, sd;
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: cannot create directory: %s", out, strerror(errno));
    if (stat(out, &sd) != 0 || !S_ISDIR(sd.st_mode)) return cli_fail(CMD, FS_EXIT_INPUT, "%s: not a directory", out);
    if (stat(src, &so) == 0 && so.st_dev == sd.st_dev && so.st_ino == sd.st_ino)
        return cli_fail(CMD, FS_EXIT_USAGE, "OUT must be a different directory from MODEL");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    if (!force && fs_file_exists(path))
        return cli_fail(CMD, FS_EXIT_USAGE, "%s exists (--force replaces it)", path);
    /* A leftover index in OUT would make the loader read shards instead. */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
    if (unlink(path) != 0 && errno != ENOENT)
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: cannot remove the stale index: %s", path, strerror(errno));

    fs_model m;
    memset(&m, 0, sizeof m);
    fs_err e = {{0}};
    cli_status("loading %s and converting it to %s ...", src, weights);
    if (fs_model_load(&m, src, &e)) return cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
    if (fs_model_convert(&m, to, &e)) {
        fs_model_free(&m);
        return cli_fail(CMD, FS_EXIT_INPUT, "%s: converting the weights to %s: %s", src, weights, e.msg);
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof copied_files / sizeof copied_files[0] && !rc; i++) {
        char from[4200];
        snprintf(from, sizeof from, "%s/%s", src, copied_files[i]);
        snprintf(path, sizeof path, "%s/%s", out, copied_files[i]);
        if (fs_file_exists(from)) rc = copy_file(from, path);
    }
    cli_status("writing %s/model.safetensors ...", out);
    if (!rc) rc = write_model(&m, out, weights);
    cli_status_clear();
    fs_model_free(&m);
    return rc ? rc : cli_out_close(CMD);
}
