/* mkmodel.h - write a random checkpoint in the Hugging Face layout, of any
 * architecture of arch.h (Qwen3, Llama 3 / SmolLM2, Qwen2.5).
 *
 * Why: the engine is tested against Hugging Face transformers on small
 * models (hidden 64-128, 2-3 layers) whose weights are random but
 * reproducible: `fs mkmodel` writes them, the Python oracle loads the very
 * same files with transformers and records golden vectors. The same code
 * also writes a full-size Qwen3-0.6B-shaped checkpoint (1.2 GB bf16) for
 * speed tests, streaming tensor by tensor, so nothing is held in memory.
 *
 * Output (DIR):
 *   config.json             the input config; torch_dtype set to the chosen
 *                           dtype, architectures/model_type set to the
 *                           architecture found (a config with neither: Qwen3)
 *   generation_config.json  NAME.generation_config.json beside the input
 *                           NAME.json, else generation_config.json beside it,
 *                           else the family's defaults (arch.c)
 *   model.safetensors       or model-0000i-of-0000N.safetensors shards plus
 *                           model.safetensors.index.json
 *   tokenizer.json (+ tokenizer_config.json)  copied when asked
 *
 * Tensors, with HF names and shapes ([out, in] for linear weights):
 *   model.embed_tokens.weight                     [V, H]
 *   model.layers.N.input_layernorm.weight         [H]
 *   model.layers.N.self_attn.q_proj.weight        [Hq*D, H]
 *   model.layers.N.self_attn.k_proj.weight        [Hkv*D, H]
 *   model.layers.N.self_attn.v_proj.weight        [Hkv*D, H]
 *   model.layers.N.self_attn.o_proj.weight        [H, Hq*D]
 *   model.layers.N.self_attn.q_proj.bias          [Hq*D]   Qwen2 only
 *   model.layers.N.self_attn.k_proj.bias          [Hkv*D]  Qwen2 only
 *   model.layers.N.self_attn.v_proj.bias          [Hkv*D]  Qwen2 only
 *   model.layers.N.self_attn.q_norm.weight        [D]      Qwen3 only
 *   model.layers.N.self_attn.k_norm.weight        [D]      Qwen3 only
 *   model.layers.N.post_attention_layernorm.weight [H]
 *   model.layers.N.mlp.gate_proj.weight           [I, H]
 *   model.layers.N.mlp.up_proj.weight             [I, H]
 *   model.layers.N.mlp.down_proj.weight           [H, I]
 *   model.norm.weight                             [H]
 *   lm_head.weight                                [V, H]  only when untied
 *
 * Distribution (z below is "unit noise", mean 0, variance 1):
 *   embed_tokens, lm_head      z                  (logits = rmsnorm(x) . row,
 *                                                  so their std is ~sqrt(H):
 *                                                  clear top-1/top-2 margins)
 *   linear weights [out, in]   z * scale / sqrt(in)   (scale 2 by default)
 *   every norm weight          1 + 0.1 z
 *   q/k/v biases (Qwen2)       0.5 z              (visible next to q, k, v of
 *                                                  std ~2, without swamping them)
 * Why scale 2: with scale 1 each layer adds less to the residual stream than
 * the token's own embedding, and a tied model (lm_head = embed_tokens) then
 * just predicts its input token: the golden tests would not notice a broken
 * attention. With scale 2 the layers dominate; on the golden configs
 * (H 64-128, 2-3 layers) the logits have std 8-11 and the argmax differs
 * from the input token almost everywhere (measured with a reference
 * forward pass).
 * z is the sum of the four 16-bit fields of one xoshiro256** output, shifted
 * and scaled to mean 0, variance 1 (an Irwin-Hall(4) shape: bell-like,
 * bounded at +-3.46). Only integer arithmetic and correctly rounded IEEE
 * operations (+ - * / sqrt) are used, so a seed gives the same bytes on
 * every machine and compiler. Each tensor has its own stream, seeded from
 * (seed, tensor name), so sharding or file order never changes a value.
 *
 * Docs: docs/testing.md (golden tests), docs/weights.md (the layout).
 */
#ifndef FS_MKMODEL_H
#define FS_MKMODEL_H

#include <stdint.h>

#include "model.h"
#include "util.h"

#define FS_MKMODEL_DEFAULT_SCALE 2.0

typedef struct fs_mkmodel_opts {
    const char *config_path;    /* input config.json */
    const char *out_dir;        /* created if missing */
    uint64_t seed;
    fs_dtype dtype;             /* weight dtype written */
    int shards;                 /* 1 = model.safetensors; N>1 = N shards + index */
    const char *tokenizer_dir;  /* NULL: no tokenizer files */
    double scale;               /* linear weights' std is scale / sqrt(in);
                                   0 = FS_MKMODEL_DEFAULT_SCALE */
} fs_mkmodel_opts;

/* Write the checkpoint. Errors (bad config, unwritable directory, ...) come
 * back as one line in e. Stale model.safetensors / shard / index files in
 * out_dir are removed first so the directory describes exactly one model. */
int fs_mkmodel(const fs_mkmodel_opts *o, fs_err *e);

#endif
