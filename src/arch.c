/* arch.c - the table of architectures (arch.h) and RoPE's frequency table,
 * plain and Llama 3-scaled.
 *
 * A row per architecture is all that tells Qwen3, Llama and Qwen2 apart;
 * the loader (model.c) reads it to know which tensors to require, mkmodel.c
 * to know which to write, and the forward pass never sees it: it runs the
 * ops with whatever tensors the model has.
 *
 * Docs: docs/models.md
 */
#include "arch.h"

#include <math.h>
#include <string.h>


/* Each family's released instruct model's generation_config.json: the
 * default fs mkmodel writes (a random checkpoint "is" that model). */
static const char qwen3_generation[] =   /* Qwen/Qwen3-0.6B */
    "{\n"
    "  \"bos_token_id\": 151643,\n"
    "  \"do_sample\": true,\n"
    "  \"eos_token_id\": [\n    151645,\n    151643\n  ],\n"
    "  \"pad_token_id\": 151643,\n"
    "  \"temperature\": 0.6,\n"
    "  \"top_k\": 20,\n"
    "  \"top_p\": 0.95\n"
    "}\n";
static const char llama3_generation[] =   /* meta-llama/Llama-3.2-1B-Instruct */
    "{\n"
    "  \"bos_token_id\": 128000,\n"
    "  \"do_sample\": true,\n"
    "  \"eos_token_id\": [\n    128001,\n    128008,\n    128009\n  ],\n"
    "  \"temperature\": 0.6,\n"
    "  \"top_p\": 0.9\n"
    "}\n";
static const char qwen2_generation[] =   /* Qwen/Qwen2.5-0.5B-Instruct */
    "{\n"
    "  \"bos_token_id\": 151643,\n"
    "  \"do_sample\": true,\n"
    "  \"eos_token_id\": [\n    151645,\n    151643\n  ],\n"
    "  \"pad_token_id\": 151643,\n"
    "  \"repetition_penalty\": 1.05,\n"
    "  \"temperature\": 0.7,\n"
    "  \"top_k\": 20,\n"
    "  \"top_p\": 0.8\n"
    "}\n";

/* What differs, and nothing else. Defaults are transformers' config
 * classes' (Qwen3Config, LlamaConfig, Qwen2Config), so a config.json that
 * omits a field means what it means to the Python reference. */
static const fs_arch archs[] = {
    /* name                model_type qk_norm qkv_bias head_dim max_pos bias_flags */
    {"Qwen3ForCausalLM", "qwen3", 1, 0, 128, 32768, 1, qwen3_generation},
    {"LlamaForCausalLM", "llama", 0, 0, 0, 2048, 1, llama3_generation},
    {"Qwen2ForCausalLM", "qwen2", 0, 1, 0, 32768, 0, qwen2_generation},
};
#define N_ARCHS (int)(sizeof archs / sizeof archs[0])

const fs_arch *fs_arch_by_name(const char *name) {
    for (int i = 0; name && i < N_ARCHS; i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}

const char *fs_arch_names(void) { return "Qwen3ForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM"; }

const fs_arch *fs_arch_find(const fs_json *config, fs_err *e) {
    const fs_json *list = fs_json_get(config, "architectures");
    const char *first = NULL;
    for (const fs_json *a = fs_json_is(list, FS_JSON_ARRAY) ? list->child : NULL; a; a = a->next) {
        const fs_arch *found = fs_arch_by_name(fs_json_string(a));
        if (found) return found;
        if (!first) first = fs_json_string(a);
    }
    const char *mt = fs_json_string(fs_json_get(config, "model_type"));
    if (!first)   /* no "architectures": model_type decides */
        for (int i = 0; mt && i < N_ARCHS; i++)
            if (!strcmp(archs[i].model_type, mt)) return &archs[i];
    fs_errf(e, "config.json: unsupported architecture %.60s (model_type \"%.40s\"); fs runs %s", first ? first : "(none)",
            mt ? mt : "(missing)", fs_arch_names());
    return NULL;
}

/* Plain RoPE, as transformers' _compute_default_rope_parameters in float32,
 * each step rounded: inv_freq[i] = 1 / theta^(float(2i) / D).
 *
 * Llama 3 (_compute_llama3_parameters) then sorts the frequencies by their
 * wavelength 2 pi / f, measured against the context the model was first
 * trained on (original_max_position_embeddings, 8192):
 *   wavelength < 8192 / high_freq_factor   kept (fine detail, short range)
 *   wavelength > 8192 / low_freq_factor    divided by factor (long range:
 *                                          stretched so 8192 * factor
 *                                          positions look like 8192)
 *   in between                             a blend: with
 *     s = (8192 / wavelength - low) / (high - low),
 *     f' = (1 - s) * f / factor + s * f
 * Every operation is one f32 operation, as PyTorch evaluates the Python:
 * `2 * math.pi / f` is f.reciprocal() * 2pi (Tensor.__rtruediv__), Python
 * numbers are rounded to f32 where they meet a tensor, and the
 * comparisons are against f32 thresholds. The table is compared bit for bit
 * with transformers' (tests/test_forward_golden.c, the llama3 cases). */
void fs_rope_inv_freq(double theta, int D, const fs_rope_scaling *s, float *out) {
    for (int i = 0; i < D / 2; i++) {
        float expo = (float)(2 * i) / (float)D;
        float base_pow = (float)pow((float)theta, (double)expo);
        out[i] = 1.0f / base_pow;
    }
    if (!s || s->type != FS_ROPE_LLAMA3) return;
    const float two_pi = (float)6.283185307179586, factor = (float)s->factor;
    const float low = (float)s->low_freq_factor;
    const float old_ctx = (float)s->original_max_pos;
    const float low_wavelen = (float)(s->original_max_pos / s->low_freq_factor);
    const float high_wavelen = (float)(s->original_max_pos / s->high_freq_factor);
    const float span = (float)(s->high_freq_factor - s->low_freq_factor);
    for (int i = 0; i < D / 2; i++) {
        float f = out[i];
        float wavelen = (1.0f / f) * two_pi;
        float scaled = wavelen > low_wavelen ? f / factor : f;
        float smooth = ((1.0f / wavelen) * old_ctx - low) / span;
        float blended = ((1.0f - smooth) * scaled) / factor + smooth * scaled;
        int medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        out[i] = medium ? blended : scaled;
    }
}
