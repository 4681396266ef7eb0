/* cmd_inspect.c - `fs inspect [[-m] MODEL]`: what is in a checkpoint.
 *
 * Loads the model directory exactly as inference would (so every shape check
 * runs) and prints the architecture in the shape legend of docs/weights.md,
 * the parameter counts, and one row per tensor in file order:
 *
 *   name                                  dtype  shape         bytes  file
 *
 * "stored" counts the elements in the files; "logical" counts the
 * parameters of the architecture, with a tied embedding counted once (so a
 * tied checkpoint that still stores lm_head.weight has stored > logical).
 *
 * Docs: docs/weights.md
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model.h"

static void usage(FILE *f) {
    fprintf(f, "usage: fs inspect [[-m] MODEL]\n\n"
               "Print a checkpoint's architecture, parameter counts and tensor table.\n"
               "MODEL is a model directory (config.json + *.safetensors); it may be given\n"
               "as the positional argument or with -m/--model; default: $FS_MODEL, else\n"
               "the shipped models/tiny.\n");
}

/* 596049920 -> "596.0M" */
static void human_count(char *out, size_t cap, size_t n) {
    if (n >= 1000000000) snprintf(out, cap, "%.2fB", n / 1e9);
    else if (n >= 1000000) snprintf(out, cap, "%.1fM", n / 1e6);
    else if (n >= 1000) snprintf(out, cap, "%.1fK", n / 1e3);
    else snprintf(out, cap, "%zu", n);
}

static void shape_str(char *out, size_t cap, const fs_tensor *t) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

int fs_cmd_inspect(int argc, char **argv) {
    const char *flag = NULL, *pos = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_flag("inspect", argc, argv, &i, "--model", "-m", &flag);
        if (r < 0) return FS_EXIT_USAGE;
        if (r > 0) continue;
        if (a[0] == '-' && a[1]) return cli_fail("inspect", FS_EXIT_USAGE, "unknown option %s (see --help)", a);
        if (pos) return cli_fail("inspect", FS_EXIT_USAGE, "more than one model directory given");
        pos = a;
    }
    if (pos && flag) return cli_fail("inspect", FS_EXIT_USAGE, "model given twice (positional and -m)");
    const char *dir = cli_model_dir("inspect", pos ? pos : flag);
    if (!dir) return FS_EXIT_USAGE;

    fs_model m;
    fs_err e;
    if (fs_model_load(&m, dir, &e)) return cli_fail("inspect", FS_EXIT_INPUT, "%s", e.msg);
    const fs_config *c = &m.cfg;

    printf("model        %s\n", m.dir);
    const fs_arch *ar = c->arch;   /* what differs between the families: arch.h */
    printf("architecture %s (decoder-only transformer, GQA%s%s, SwiGLU FFN, RoPE%s)\n", ar->name,
           ar->qk_norm ? " + QK-norm" : "", ar->qkv_bias ? " + q/k/v biases" : "",
           c->rope_scaling.type == FS_ROPE_LLAMA3 ? " with Llama 3 scaling" : "");
    printf("  layers     L   = %d\n", c->n_layers);
    printf("  hidden     H   = %d\n", c->hidden);
    printf("  heads      Hq  = %d\n", c->n_heads);
    printf("  KV heads   Hkv = %d  (%d query heads share each K/V head)\n", c->n_kv_heads,
           c->n_heads / c->n_kv_heads);
    printf("  head_dim   D   = %d\n", c->head_dim);
    printf("  FFN width  I   = %d\n", c->ffn);
    printf("  vocab      V   = %d\n", c->vocab);
    printf("  max positions  %d\n", c->max_pos);
    printf("  rope theta     %.10g\n", c->rope_theta);
    if (c->rope_scaling.type == FS_ROPE_LLAMA3)
        printf("  rope scaling   llama3: factor %g, low_freq_factor %g, high_freq_factor %g, original context %d\n",
               c->rope_scaling.factor, c->rope_scaling.low_freq_factor, c->rope_scaling.high_freq_factor,
               c->rope_scaling.original_max_pos);
    printf("  rms eps        %.10g\n", c->rms_eps);
    printf("  embeddings     %s\n", c->tie_embeddings ? "tied (lm_head = embed_tokens)" : "untied (own lm_head)");
    if (c->tie_embeddings)
        for (int i = 0; i < m.n_tensors; i++)
            if (!strcmp(m.tensors[i].name, "lm_head.weight"))
                printf("  note           lm_head.weight is stored but unused: tied, so HF (and fs) use embed_tokens\n");
    printf("  dtype          %s\n", c->torch_dtype[0] ? c->torch_dtype : "(not declared)");
    printf("  bos / eos      %d /", c->bos_id);
    for (int i = 0; i < c->n_eos; i++) printf(" %d", c->eos_ids[i]);
    printf("%s\n", c->n_eos ? "" : " (none)");
    if (c->eos_token[0]) printf("  chat ends at   %s (tokenizer_config.json's eos_token)\n", c->eos_token);

    char a[32], b[32];
    human_count(a, sizeof a, m.logical_params);
    human_count(b, sizeof b, m.stored_params);
    printf("parameters   %s logical (%zu), %s stored (%zu)\n", a, m.logical_params, b, m.stored_params);

    size_t name_w = 4, total_bytes = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        size_t n = strlen(m.tensors[i].name);
        if (n > name_w) name_w = n;
        total_bytes += m.tensors[i].nbytes;
    }
    printf("\ntensors      %d, %zu bytes\n", m.n_tensors, total_bytes);
    int n_quant = 0;
    for (int i = 0; i < m.n_tensors; i++) n_quant += fs_dtype_is_quant(m.tensors[i].dtype);
    if (n_quant)
        printf("note         %d tensors are Q8_0/Q4_0 blocks (written by fs quantize): fs's own dtype strings,\n"
               "             so Hugging Face safetensors/transformers cannot load this checkpoint\n",
               n_quant);
    printf("%-*s  %-5s  %-14s  %12s  %s\n", (int)name_w, "name", "dtype", "shape", "bytes", "file");
    for (int i = 0; i < m.n_tensors; i++) {
        const fs_tensor *t = &m.tensors[i];
        char s[96];
        shape_str(s, sizeof s, t);
        printf("%-*s  %-5s  %-14s  %12zu  %s\n", (int)name_w, t->name, fs_dtype_name(t->dtype), s, t->nbytes,
               fs_model_tensor_file(&m, i));
    }
    fs_model_free(&m);
    return cli_out_close("inspect");
}
