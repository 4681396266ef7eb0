/* rope_kv_cpu.c - QK-norm, rotary position embedding and the K / V store,
 * threaded over tokens: the CPU backend's rope_kv.
 *
 *   q: [T, Hq, D]   k, v: [T, Hkv, D]   in place; then position pos[t]
 *   of caches[seq[t]] holds k[t] and v[t]   (the math: rope_kv.c)
 *
 * The arithmetic is exactly the reference's (rope_kv.c: the cos / sin
 * table reserve built, separate f32 products), so the rotation is
 * bit-identical to it (the q/k/v biases too: the same adds); the per-head rmsnorm is rmsnorm_cpu.c's (AVX2: the
 * sum of squares in another order, see there). Each chunk of the parallel
 * loop is one token: its q heads and k heads are normalised and rotated
 * (8 pairs at a time with AVX2, 4 with NEON: the loop runs over i inside a head,
 * contiguous), then its K and V rows are copied to their position, while
 * they are in cache (converted to f16 with F16C / NEON for an f16 cache,
 * the same bits as the reference's fs_f32_to_f16). A decode step is one chunk, run by the calling thread.
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <string.h>

#include "cpu_backend.h"

typedef struct {
    const fs_cpu *f;
    float *q, *k, *v;
    const fs_qkv_bias *bias;   /* NULL: none */
    const fs_buf *q_norm, *k_norm;
    float eps;
    fs_buf *const *caches;   /* each sequence's cache, by the step's seq[t] */
    int Hq, Hkv, D;
} rope_job;

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* One head, 8 pairs at a time: the same products and sums as the reference. */
static __attribute__((target("avx2"))) int rope_head_avx2(float *head, const float *c, const float *s, int half) {
    int i = 0;
    for (; i + 8 <= half; i += 8) {
        __m256 a = _mm256_loadu_ps(head + i), bb = _mm256_loadu_ps(head + half + i);
        __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
        _mm256_storeu_ps(head + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(bb, sv)));
        _mm256_storeu_ps(head + half + i, _mm256_add_ps(_mm256_mul_ps(bb, cv), _mm256_mul_ps(a, sv)));
    }
    return i;
}
#endif

/* heads heads of D floats at x: norm (if w), then rotate by c / s. */
static void heads(const rope_job *j, float *x, int heads, const fs_buf *w, const float *c, const float *s) {
    int D = j->D, half = D / 2;
    if (w) fs_cpu_rmsnorm_rows(j->f->isa, x, w, x, heads, D, j->eps);
    for (int h = 0; h < heads; h++) {
        float *head = x + (size_t)h * (size_t)D;
        int i = 0;
#if defined(__x86_64__) || defined(__i386__)
        if (j->f->isa == FS_ISA_AVX2) i = rope_head_avx2(head, c, s, half);
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
        if (j->f->isa == FS_ISA_NEON) i = fs_rope_head_neon(head, c, s, half);   /* ops_neon.c */
#endif
        fs_ref_rope_pairs(head, c, s, i, half);
    }
}

static void rope_chunk(void *arg, int t, int tid) {
    (void)tid;
    const rope_job *j = arg;
    const fs_ref *r = &j->f->ref;
    int p = r->pos[t];
    const fs_buf *cache = j->caches[r->seq[t]];
    size_t q_row = (size_t)j->Hq * (size_t)j->D, kv_row = (size_t)j->Hkv * (size_t)j->D;
    const float *c = r->rope + (size_t)p * (size_t)j->D, *s = c + j->D / 2;
    float *kt = j->k + (size_t)t * kv_row;
    if (j->bias) {   /* the reference's adds (rope_kv.c) */
        fs_ref_add_bias(j->q + (size_t)t * q_row, j->bias->q, q_row);
        fs_ref_add_bias(kt, j->bias->k, kv_row);
        fs_ref_add_bias(j->v + (size_t)t * kv_row, j->bias->v, kv_row);
    }
    heads(j, j->q + (size_t)t * q_row, j->Hq, j->q_norm, c, s);
    heads(j, kt, j->Hkv, j->k_norm, c, s);
    size_t at = (size_t)p * cache->kv_stride;
    if (cache->dtype == FS_DTYPE_F16) {   /* rounded to nearest even, as the reference (rope_kv.c) */
        fs_vnarrow_f16(j->f->isa, kv_keys16(cache) + at, kt, (int)kv_row);
        fs_vnarrow_f16(j->f->isa, kv_values16(cache) + at, j->v + (size_t)t * kv_row, (int)kv_row);
    } else {
        memcpy(kv_keys(cache) + at, kt, kv_row * sizeof(float));
        memcpy(kv_values(cache) + at, j->v + (size_t)t * kv_row, kv_row * sizeof(float));
    }
}

void fs_cpu_rope_kv(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm, const fs_buf *k_norm,
                    float eps, fs_buf *const *caches, int Hq, int Hkv, int D, const fs_qkv_bias *bias) {
    fs_cpu *f = cpu_ctx(b);
    rope_job j = {f, buf_f32_mut(q), buf_f32_mut(k), buf_f32_mut(v), bias, q_norm, k_norm, eps, caches, Hq, Hkv, D};
    fs_threadpool_for(f->pool, f->ref.T, rope_chunk, &j);
}
