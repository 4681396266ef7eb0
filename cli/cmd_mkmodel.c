/* cmd_mkmodel.c - `fs mkmodel`: write a random, reproducible checkpoint
 * (HF layout) of any architecture fs runs (Qwen3, Llama, Qwen2; arch.h)
 * from a config.json. See src/mkmodel.h for the
 * tensors written and the weight distribution.
 *
 * Docs: docs/testing.md
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mkmodel.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: fs mkmodel --config CONFIG.json --out DIR [--seed S] [--dtype bf16|f16|f32]\n"
            "                  [--shards N] [--tokenizer DIR] [--scale X]\n"
            "\n"
            "Write a checkpoint with random weights, deterministic from the seed (same\n"
            "seed, same bytes on any machine), of the architecture CONFIG names\n"
            "(Qwen3ForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM; configs/ has real ones):\n"
            "  DIR/config.json             CONFIG with torch_dtype, architectures, model_type set\n"
            "  DIR/generation_config.json  NAME.generation_config.json or generation_config.json\n"
            "                              beside CONFIG (NAME.json), else the family's defaults\n"
            "  DIR/model.safetensors       or N shards + model.safetensors.index.json\n"
            "\n"
            "  --seed S        64-bit seed (default 0)\n"
            "  --dtype T       weight dtype: bf16 (default), f16 or f32\n"
            "  --shards N      split the weights into N files (default 1)\n"
            "  --tokenizer D   copy D/tokenizer.json and D/tokenizer_config.json\n"
            "  --scale X       std multiplier of the linear weights (default 2);\n"
            "                  weights are unit noise * X / sqrt(fan_in), embeddings unit\n"
            "                  noise, norm weights 1 + 0.1 * unit noise, biases 0.5 * unit noise\n");
}

int fs_cmd_mkmodel(int argc, char **argv) {
    const char *cmd = "mkmodel";
    fs_mkmodel_opts o = {0};
    o.dtype = FS_DTYPE_BF16;
    o.shards = 1;
    o.scale = FS_MKMODEL_DEFAULT_SCALE;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (cli_is_help(argv[i])) {
            help(stdout);
            return FS_EXIT_OK;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--config", NULL, &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            o.config_path = v;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--out", "-o", &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            o.out_dir = v;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--seed", NULL, &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_u64(cmd, "--seed", v, &o.seed)) return FS_EXIT_USAGE;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--dtype", NULL, &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            if (!strcmp(v, "bf16")) o.dtype = FS_DTYPE_BF16;
            else if (!strcmp(v, "f16")) o.dtype = FS_DTYPE_F16;
            else if (!strcmp(v, "f32")) o.dtype = FS_DTYPE_F32;
            else return cli_fail(cmd, FS_EXIT_USAGE, "--dtype must be bf16, f16 or f32, not '%s'", v);
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--shards", NULL, &v)) != 0) {
            long n;
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_int(cmd, "--shards", v, 1, 99999, &n)) return FS_EXIT_USAGE;
            o.shards = (int)n;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--tokenizer", NULL, &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            o.tokenizer_dir = v;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--scale", NULL, &v)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
            if (cli_double(cmd, "--scale", v, 1e-6, 1e6, &o.scale)) return FS_EXIT_USAGE;
        } else {
            help(stderr);
            return cli_fail(cmd, FS_EXIT_USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (!o.config_path || !o.out_dir) {
        help(stderr);
        return cli_fail(cmd, FS_EXIT_USAGE, "--config and --out are required");
    }
    fs_err e = {{0}};
    if (fs_mkmodel(&o, &e)) return cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
    return FS_EXIT_OK;
}
