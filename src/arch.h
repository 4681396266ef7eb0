/* arch.h - the model architectures fs runs, described as data.
 *
 * Qwen3, Llama 3 (and SmolLM2, the same architecture) and Qwen2.5 are one
 * decoder block with a few switches. Everything that differs between them
 * is a row of one table (arch.c) - the forward pass has no per-family
 * branch: a tensor the table says is absent (q_norm for Llama, q_proj.bias
 * for Qwen3) is simply NULL for the backend's ops.
 *
 *                     Qwen3          Llama 3 / SmolLM2   Qwen2 (Qwen2.5)
 *   QK-norm           yes            no                  no
 *   q/k/v biases      no             no                  yes
 *   head_dim default  128            H / Hq              H / Hq
 *   max_pos default   32768          2048                32768
 * and, read from config.json for every architecture: tied or untied
 * lm_head, Hq / Hkv (GQA), rope_theta, rope_scaling ("llama3" or none).
 *
 * RoPE scaling (Llama 3.1 / 3.2): the frequency table of plain RoPE is
 * rescaled once, at load time (fs_rope_inv_freq); the rotation itself does
 * not change, so every backend gets it for free.
 *
 * Docs: docs/models.md
 */
#ifndef FS_ARCH_H
#define FS_ARCH_H

#include "json.h"
#include "util.h"

typedef struct fs_arch {
    const char *name;         /* config.json "architectures": "Qwen3ForCausalLM" */
    const char *model_type;   /* config.json "model_type": "qwen3" */
    int qk_norm;              /* q_norm, k_norm [D]: RMSNorm of every q and k head before RoPE */
    int qkv_bias;             /* q_proj, k_proj, v_proj carry a bias (o_proj never) */
    int head_dim;             /* head_dim when config.json has none; 0: hidden / heads */
    int max_pos;              /* max_position_embeddings when config.json has none */
    int bias_flags;           /* 1: config.json's attention_bias / mlp_bias are read
                                 (and refused when true); 0: the biases are fixed
                                 by the architecture (Qwen2: q/k/v always) */
    const char *generation_config;  /* what fs mkmodel writes when none is given:
                                       the family's released instruct model's */
} fs_arch;

/* The architecture config.json names: the first entry of "architectures"
 * that fs knows, else "model_type". NULL with e filled ("unsupported
 * architecture X; fs runs: ...") when neither names one. */
const fs_arch *fs_arch_find(const fs_json *config, fs_err *e);

/* By exact name ("LlamaForCausalLM"); NULL if unknown. */
const fs_arch *fs_arch_by_name(const char *name);

/* "Qwen3ForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM", for messages. */
const char *fs_arch_names(void);

/* RoPE's scaling, from config.json's rope_scaling (or transformers 5's
 * rope_parameters). */
typedef enum { FS_ROPE_DEFAULT = 0, FS_ROPE_LLAMA3 } fs_rope_type;

typedef struct fs_rope_scaling {
    fs_rope_type type;
    double factor;             /* llama3: 8 (3.1) or 32 (3.2) */
    double low_freq_factor;    /* llama3: 1 */
    double high_freq_factor;   /* llama3: 4 */
    int original_max_pos;      /* llama3: original_max_position_embeddings, 8192 */
} fs_rope_scaling;

/* RoPE's inverse frequencies, [D/2], in float32 step by step as
 * transformers computes them (plain: 1 / theta^(2i/D); llama3: then
 * rescaled by wavelength, see arch.c). */
void fs_rope_inv_freq(double theta, int D, const fs_rope_scaling *s, float *out);

#endif
