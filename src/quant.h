/* quant.h - 8-bit and 4-bit block-quantized weights (Q8_0, Q4_0).
 *
 * The layouts are GGUF's, so a learner can compare with llama.cpp:
 *   Q8_0: blocks of 32 weights, one f16 scale d, 32 int8 q:  w = d * q
 *         34 bytes per 32 weights (8.5 bits per weight)
 *   Q4_0: blocks of 32 weights, one f16 scale d, 16 bytes of nibbles
 *         (low nibbles hold weights 0..15, high nibbles 16..31):
 *         w = d * (q - 8), q in 0..15;  18 bytes per 32 weights (4.5 bits)
 * A quantized matrix [N, K] stores each row as K/32 consecutive blocks;
 * K must be a multiple of 32 (Qwen3's are).
 *
 * The CPU backend's matmul quantizes the activations too (one row of x to
 * Q8_0) and runs integer dot products (fs_vec_dot_*_ref below, and its
 * SIMD kernels in src/cpu/). The reference backend instead dequantizes
 * weight rows and dots in high precision, so it measures the error of the
 * weight format alone.
 *
 * Docs: docs/quantization.md
 */
#ifndef FS_QUANT_H
#define FS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "util.h"

#define FS_QK 32

typedef struct fs_block_q8_0 {
    uint16_t d;        /* f16 scale */
    int8_t qs[FS_QK];
} fs_block_q8_0;

typedef struct fs_block_q4_0 {
    uint16_t d;        /* f16 scale */
    uint8_t qs[FS_QK / 2];
} fs_block_q4_0;

/* k must be a multiple of FS_QK. */
void fs_quantize_row_q8_0(const float *x, fs_block_q8_0 *y, int k);
void fs_quantize_row_q4_0(const float *x, fs_block_q4_0 *y, int k);
void fs_dequantize_row_q8_0(const fs_block_q8_0 *x, float *y, int k);
void fs_dequantize_row_q4_0(const fs_block_q4_0 *x, float *y, int k);

/* A row's k values as f32, for a row of any dtype (Q8_0 / Q4_0: k a
 * multiple of FS_QK): exact for bf16, f16 and f32; d * q for the block
 * formats, bit for bit what fs_dequantize_row_* gives. */
void fs_row_to_f32(fs_dtype t, const void *row, int k, float *out);

/* sum_i w[i] * x[i] over k values (k multiple of FS_QK), with x already
 * quantized to Q8_0: per block the exact integer sum of the 32 products,
 * times d_w * d_x in f32, added in block order. The test oracle, and the
 * CPU backend's scalar kernel (its SIMD ones are in src/cpu/quant_cpu.c). */
float fs_vec_dot_q8_0_q8_0_ref(int k, const fs_block_q8_0 *w, const fs_block_q8_0 *x);
float fs_vec_dot_q4_0_q8_0_ref(int k, const fs_block_q4_0 *w, const fs_block_q8_0 *x);

/* What every weight row's dot product with one Q8_0 activation block
 * needs besides its bytes: the scale as f32 and the sum of the 32 q (the
 * Q4_0 kernels multiply the unsigned nibble q_w = w + 8 and subtract
 * 8 * sum q_x afterwards; see src/cpu/quant_cpu.c). One per block of x. */
typedef struct fs_q8_0_sum {
    float d;
    int32_t s;
} fs_q8_0_sum;
void fs_q8_0_sums(const fs_block_q8_0 *x, int k, fs_q8_0_sum *out);

/* Convert the model's matrices (embed_tokens, every projection, lm_head;
 * norms stay as stored) to `to` (FS_DTYPE_Q8_0, FS_DTYPE_Q4_0, FS_DTYPE_F16,
 * FS_DTYPE_BF16 or FS_DTYPE_F32) in memory owned by the model. Called once
 * after fs_model_load, before any session is created. */
int fs_model_convert(fs_model *m, fs_dtype to, fs_err *e);

/* "bf16", "f16", "f32", "q8_0", "q4_0" -> dtype; -1 if unknown. */
int fs_dtype_from_weights_name(const char *s, fs_dtype *out);

#endif
