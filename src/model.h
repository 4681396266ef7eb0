/* model.h - a checkpoint in memory: config, tensors, weights.
 *
 * The architectures (Qwen3, Llama 3 / SmolLM2, Qwen2.5) and what differs
 * between them are a table in arch.h; here a tensor an architecture does
 * not have (q_norm for Llama, q_proj.bias for Qwen3) has data == NULL.
 *
 * A model directory holds config.json, model.safetensors (or shards
 * model-0000N-of-0000M.safetensors listed in model.safetensors.index.json),
 * tokenizer.json and optionally tokenizer_config.json and
 * generation_config.json. The safetensors files are mmap'd: a tensor's data
 * pointer points straight into the page cache, nothing is copied.
 *
 * Shape legend (used in code, docs and CLI output):
 *   T tokens, H hidden, Hq query heads, Hkv key/value heads, D head dim,
 *   I ffn width, V vocab, L layers.
 * Weights keep their Hugging Face names so a learner can map
 * "model.layers.3.self_attn.q_proj.weight" to layers[3].q_proj.
 * A linear weight is stored [out, in] (PyTorch's nn.Linear): y = x W^T.
 *
 * Docs: docs/weights.md
 */
#ifndef FS_MODEL_H
#define FS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "tensor.h"
#include "util.h"

#define FS_MAX_EOS 8

typedef struct fs_config {
    /* config.json */
    const fs_arch *arch;   /* the row of arch.c's table; NULL in hand-built configs */
    int n_layers;          /* L   num_hidden_layers */
    int hidden;            /* H   hidden_size */
    int n_heads;           /* Hq  num_attention_heads */
    int n_kv_heads;        /* Hkv num_key_value_heads */
    int head_dim;          /* D   head_dim (Qwen3-0.6B: 128, not H/Hq = 64) */
    int ffn;               /* I   intermediate_size */
    int vocab;             /* V   vocab_size */
    int max_pos;           /* max_position_embeddings */
    double rope_theta;
    fs_rope_scaling rope_scaling;  /* rope_scaling / rope_parameters (Llama 3: "llama3") */
    double rms_eps;        /* rms_norm_eps */
    int tie_embeddings;    /* tie_word_embeddings: lm_head reuses embed_tokens */
    char torch_dtype[16];  /* as declared, e.g. "bfloat16" */
    int bos_id;            /* -1 if none */
    int eos_ids[FS_MAX_EOS];   /* union of config.json and generation_config.json */
    int n_eos;
    /* tokenizer_config.json's eos_token ("<|im_end|>", "<|eot_id|>"): where
     * a chat reply ends; its id comes from the tokenizer. "" when absent. */
    char eos_token[64];

    /* generation_config.json defaults (has_* = 0 when absent) */
    int has_temperature, has_top_k, has_top_p, has_min_p, has_repetition_penalty;
    double temperature, top_p, min_p, repetition_penalty;
    int top_k;
} fs_config;

typedef struct fs_layer {
    fs_tensor input_layernorm;          /* [H] */
    fs_tensor q_proj;                   /* [Hq*D, H] */
    fs_tensor k_proj;                   /* [Hkv*D, H] */
    fs_tensor v_proj;                   /* [Hkv*D, H] */
    fs_tensor q_bias, k_bias, v_bias;   /* [Hq*D], [Hkv*D], [Hkv*D]  Qwen2 only */
    fs_tensor q_norm;                   /* [D]  Qwen3 QK-norm, per head */
    fs_tensor k_norm;                   /* [D] */
    fs_tensor o_proj;                   /* [H, Hq*D] */
    fs_tensor post_attention_layernorm; /* [H] */
    fs_tensor gate_proj;                /* [I, H] */
    fs_tensor up_proj;                  /* [I, H] */
    fs_tensor down_proj;                /* [H, I] */
} fs_layer;

typedef struct fs_model {
    char dir[1024];
    fs_config cfg;
    fs_tensor embed_tokens;  /* [V, H] */
    fs_layer *layers;        /* [L] */
    fs_tensor norm;          /* [H] final RMSNorm */
    fs_tensor lm_head;       /* [V, H]; a copy of embed_tokens when tied */

    /* every tensor found in the checkpoint, in file order (for fs inspect) */
    fs_tensor *tensors;
    int n_tensors;
    size_t stored_params;    /* elements actually stored in the files */
    size_t logical_params;   /* parameters of the architecture (tied counted once) */

    void *priv;              /* the mmaps; private to model.c */
} fs_model;

/* Parse config.json (+ generation_config.json and tokenizer_config.json's
 * eos_token when present) from dir. */
int fs_config_load(fs_config *c, const char *dir, fs_err *e);

/* Load a model directory: config, every safetensors file (mmap), validation
 * of every tensor the architecture needs (name, dtype, exact shape from the
 * config). Errors name the file, the tensor, the expected and actual value. */
int fs_model_load(fs_model *m, const char *dir, fs_err *e);
void fs_model_free(fs_model *m);

/* Unmap the pages of the checkpoint files from this process (the page
 * cache keeps them): for after a backend has copied the weights it reads.
 * Views into the files stay valid; a page read again is mapped again. */
void fs_model_release_pages(const fs_model *m);

/* Memory owned by the model (freed by fs_model_free), for weights converted
 * at load time by fs_model_convert (quant.c). NULL when out of memory. */
void *fs_model_own(fs_model *m, size_t bytes);


/* The file (e.g. "model-00001-of-00002.safetensors") that holds
 * m->tensors[i], or NULL when i is out of range. For fs inspect. */
const char *fs_model_tensor_file(const fs_model *m, int i);

#endif
