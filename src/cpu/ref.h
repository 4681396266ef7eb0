/* cpu.h - private to the CPU backend: what a buffer is, and the ops.
 *
 * A CPU buffer is plain host memory. Activations are f32 arrays the backend
 * allocated; weights are views into the model's mmap (or the model's
 * converted copy, quant.c) in their dtype (bf16, f16, f32, Q8_0 or Q4_0) and
 * are converted to f32 element by element as the ops read them. Each op lives in its own file (src/cpu/OP.c) and opens with its
 * math and shapes; backend_cpu.c puts them into the fs_backend table.
 *
 * Numerics (the choice every op follows): inputs are f32 (or 16-bit weights
 * widened exactly to f32), every reduction - dot products, sums of squares,
 * softmax sums - is accumulated in double in a fixed left-to-right order, and
 * each result is rounded to f32 once, when stored. The scalar reference is
 * then closer to the exact answer than any f32 implementation, so its
 * distance to PyTorch's f32 is PyTorch's own rounding error, and faster
 * versions (SIMD, threads, GPU) are tested against it with a tolerance.
 *
 * Docs: docs/forward.md
 */
#ifndef FS_CPU_H
#define FS_CPU_H

#include "backend.h"

struct fs_buf {
    fs_dtype dtype;   /* F32 for everything alloc'd; a weight keeps its own */
    size_t n;         /* elements */
    void *data;
    int is_view;      /* 1: points into the model's mmap, not ours to free */
    int x8;           /* fast backend: Q8_0/Q4_0 rows interleaved by 8 (repack.c) */
    int refs;         /* fast backend: users of an arena buffer (a weight uploaded twice: 2) */
    int cols;         /* weights: K, the row length (0 for activations) */
    int arena;        /* fast backend: data lives in arena arena - 1 (0: not) */
};

static inline const float *cpu_f32(const fs_buf *b) { return (const float *)b->data; }
static inline float *cpu_f32_mut(fs_buf *b) { return (float *)b->data; }

/* Element i of a buffer of any dtype, as f32 (exact: bf16 and f16 widen
 * without rounding). For per-element reads outside the matmul inner loop. */
static inline float cpu_get(const fs_buf *b, size_t i) {
    switch (b->dtype) {
    case FS_DTYPE_BF16: return fs_bf16_to_f32(((const uint16_t *)b->data)[i]);
    case FS_DTYPE_F16: return fs_f16_to_f32(((const uint16_t *)b->data)[i]);
    case FS_DTYPE_Q8_0: case FS_DTYPE_Q4_0: {
        /* element i of block i / 32 (rows are whole blocks), d * q exactly as
         * fs_dequantize_row_* computes it */
        fs_tensor t = {.dtype = b->dtype, .data = b->data};
        return fs_tensor_get_f32(&t, i);
    }
    case FS_DTYPE_F32: break;
    }
    return ((const float *)b->data)[i];
}

void fs_cpu_embed(fs_backend *b, const fs_buf *table, const int *ids, int T, int H, fs_buf *out);
void fs_cpu_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps);
void fs_cpu_matmul(fs_backend *b, const fs_buf *x, const fs_buf *W, fs_buf *y, int T, int K, int N);
void fs_cpu_rope(fs_backend *b, fs_buf *x, int T, int heads, int D, int pos0, double theta);
void fs_cpu_attention(fs_backend *b, const fs_buf *q, const fs_buf *k_cache, const fs_buf *v_cache,
                      size_t kv_stride, fs_buf *out, fs_buf *scratch, int T, int pos0, int Hq, int Hkv, int D);
void fs_cpu_swiglu(fs_backend *b, const fs_buf *gate, const fs_buf *up, fs_buf *out, size_t n);
void fs_cpu_add(fs_backend *b, fs_buf *x, const fs_buf *y, size_t n);

#endif
