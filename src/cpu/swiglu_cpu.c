/* swiglu_cpu.c - out = silu(gate) * up, threaded, in f32: the input of
 * the CPU backend's down_proj matmul (matmul_cpu.c).
 *
 *   gate, up, out: [n] (out may be gate);  silu(g) = g / (1 + e^-g)
 *
 * The reference (swiglu.c) evaluates exp in double; here in f32, in chunks
 * of 4096 elements shared by the threads: 8 at a time with AVX2
 * (exp_avx2.h), 4 with NEON (ops_neon.c, exp_neon.h), expf otherwise. A prefill of 512 tokens through Qwen3-0.6B
 * needs exp 44 million times, so this is not free; a decode step's 3072
 * are one chunk, run by the calling thread alone.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "cpu_backend.h"

#if defined(__x86_64__) || defined(__i386__)
#include "exp_avx2.h"
#define TGT __attribute__((target("avx2,fma")))
/* i0 .. i1 with i1 - i0 a multiple of 8 */
static TGT void swiglu_avx2(const float *g, const float *u, float *o, size_t i0, size_t i1) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (size_t i = i0; i < i1; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 e = fs_exp8(_mm256_xor_ps(gv, sign));   /* e^-g */
        __m256 silu = _mm256_div_ps(gv, _mm256_add_ps(one, e));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
}
#endif

typedef struct {
    const float *g, *u;
    float *o;
    size_t n;
    fs_isa isa;
} swiglu_job;

#define CHUNK 4096

static void swiglu_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    const swiglu_job *j = arg;
    size_t i0 = (size_t)chunk * CHUNK, i1 = i0 + CHUNK < j->n ? i0 + CHUNK : j->n;
#if defined(__x86_64__) || defined(__i386__)
    if (j->isa == FS_ISA_AVX2) {
        size_t i8 = i0 + (i1 - i0) / 8 * 8;
        swiglu_avx2(j->g, j->u, j->o, i0, i8);
        i0 = i8;
    }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (j->isa == FS_ISA_NEON) i0 = fs_swiglu_neon(j->g, j->u, j->o, i0, i1);   /* ops_neon.c */
#endif
    for (size_t i = i0; i < i1; i++) {
        float g = j->g[i];
        float silu = g / (1.0f + expf(-g));
        j->o[i] = silu * j->u[i];
    }
}

void fs_cpu_swiglu(fs_cpu *f, const float *g, const float *u, float *o, size_t n) {
    swiglu_job j = {g, u, o, n, f->isa};
    fs_threadpool_for(f->pool, (int)((n + CHUNK - 1) / CHUNK), swiglu_chunk, &j);
}
