/* matmul_avx512.c - the decode kernels for x86-64 with AVX-512: a matrix
 * times one token's vector, 16 lanes at a time.
 *
 *   y[n] = sum_k x[k] * W[n, k]      rows [n0, n1) of y[N]   (T = 1)
 *
 * Decode is bound by memory: every weight byte is read once per token. A
 * 512-bit kernel does the same work as the AVX2 one (matmul_avx2.c,
 * matmul_quant.c) in about half the instructions, which matters where one
 * core must pull its share of the bandwidth through a limited window of
 * instructions in flight - and is worth nothing where it need not. So
 * these are candidates, not replacements: the decode plan (tune_cpu.c)
 * measures them against the 256-bit ones on each machine and keeps the
 * faster.
 *
 * Three kernels:
 *   gemv1       f32 / f16 / bf16 weights widened to f32 (bf16: shift left
 *               by 16; f16: vcvtph2ps), FMA into 4 accumulators.
 *   gemv1_bf16  bf16 weights with vdpbf16ps (AVX512_BF16): 32 bf16 weights
 *               times 32 bf16 inputs into 16 f32 lanes (each the sum of two
 *               products) per instruction. The input is not rounded to bf16:
 *               it is split into three bf16 parts x = hi + mid + lo
 *               (fs_split_rows_avx512, below), each multiplied in turn, and
 *               every product of two bf16 is exact in f32 - so the result
 *               is an f32 dot product like the others.
 *   x8          Q8_0 / Q4_0 weights in the x8 layout (repack.c), with
 *               512-bit vpdpbusd (AVX512_VNNI).
 * and, for prefill where there is no AMX, the quantized GEMM on 16-row
 * panels with vpdpbusd (qgemm16, below) and the f32 register tile.
 *
 * The x8 kernel. A superblock holds 8 rows x 32 weights as 8 "quads" of 32
 * bytes (quad j: 4 consecutive k of each of the 8 rows). One 64-byte load
 * takes two quads, so the 16 int32 lanes of a vpdpbusd are 8 rows x 2
 * quads; the input's matching bytes must then be quad 2p in lanes 0-7 and
 * quad 2p+1 in lanes 8-15 - the same for every row group, so they are laid
 * out once per token (fs_expand_x_avx512: 4 such vectors per block, 256
 * bytes, plus the same bytes + 128 for Q8_0, below). The two halves of
 * each lane group carry the same 8 rows and the same scales, so they stay
 * apart in the f32 accumulator and are added once, at the end of the row.
 * vpdpbusd multiplies unsigned bytes by signed ones:
 *   Q4_0: nibbles q = w + 8 (0..15) are the unsigned operand, x the signed
 *         one: sum w x = sum q x - 8 sum x (as the AVX2 kernels). The high
 *         nibbles go in as (v & 0xf0) = 16 q and the sum is divided by 16.
 *   Q8_0: AVX-512 has no vpsignb, so not the sign trick: x + 128 (0..255)
 *         is the unsigned operand and the signed weights the other, and
 *         sum w x = sum w (x + 128) - 128 sum w, with sum w from a second
 *         vpdpbusd against bytes of 1 - two independent chains.
 *
 * Compiled without -m flags: each function carries a target attribute and
 * runs only after cpuid said yes (backend_cpu.c).
 *
 * Docs: docs/cpu.md, docs/bench.md
 */
#include <string.h>

#include "cpu_backend.h"

#if (defined(__x86_64__) || defined(__i386__)) && FS_HAVE_AVX512_TARGET
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c,avx2")))
#define TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c,avx2")))
#define INL static inline __attribute__((always_inline)) TGT

/* The plan's prefetch of address p (hint a constant at each call). */
#define PREFETCH(p, hint)                                                                                      \
    do {                                                                                                       \
        if ((hint) == FS_PF_T0) _mm_prefetch((const char *)(p), _MM_HINT_T0);                                  \
        else if ((hint) == FS_PF_NTA) _mm_prefetch((const char *)(p), _MM_HINT_NTA);                           \
    } while (0)

/* The plan's two prefetches for the bytes at p: the near one (hint) at p
 * + ahead, and the far one into L2 at p + far, where far is not 0. */
#define PREFETCH_AT(p, hint, ahead, far)                                                                       \
    do {                                                                                                       \
        PREFETCH((const char *)(p) + (ahead), hint);                                                           \
        if (far) _mm_prefetch((const char *)(p) + (far), _MM_HINT_T1);                                         \
    } while (0)

/* Run BODY with HINT the plan's prefetch as a constant. */
#define WITH_HINT(plan, BODY)                                                                                  \
    switch ((plan)->prefetch) {                                                                                \
    case FS_PF_T0: { const int HINT = FS_PF_T0; BODY; } break;                                                 \
    case FS_PF_NTA: { const int HINT = FS_PF_NTA; BODY; } break;                                               \
    default: { const int HINT = FS_PF_NONE; BODY; } break;                                                     \
    }

/* ---- gemv1: f32 / f16 / bf16 widened to f32 ---- */

/* 16 weights from element i as f32 (dt a constant at each call site);
 * m selects the lanes to load (the rest are 0: tails). */
INL __m512 load16(const void *W, fs_dtype dt, size_t i, __mmask16 m) {
    switch (dt) {
    case FS_DTYPE_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)W + i)), 16));
    case FS_DTYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)W + i));
    default: break;
    }
    return _mm512_maskz_loadu_ps(m, (const float *)W + i);
}

INL void gemv1_dt(const float *x, const void *W, fs_dtype dt, float *y, int K, int n0, int n1, const int hint,
                  size_t ahead, size_t far) {
    size_t Ks = (size_t)K, es = dt == FS_DTYPE_F32 ? 4 : 2;
    const __mmask16 all = 0xffff;
    for (int n = n0; n < n1; n++) {
        size_t r0 = (size_t)n * Ks;
        const char *row = (const char *)W + r0 * es;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 64 <= K; k += 64) {   /* 64 k: 2 lines of 16-bit weights, 4 of f32 */
            for (size_t o = 0; o < 64 * es; o += 64) PREFETCH_AT(row + (size_t)k * es + o, hint, ahead, far);
            a0 = _mm512_fmadd_ps(load16(W, dt, r0 + k, all), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(load16(W, dt, r0 + k + 16, all), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(load16(W, dt, r0 + k + 32, all), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(load16(W, dt, r0 + k + 48, all), _mm512_loadu_ps(x + k + 48), a3);
        }
        for (; k < K; k += 16) {   /* the tail, 16 or fewer at a time (masked: no reads past the row) */
            __mmask16 m = K - k >= 16 ? all : (__mmask16)((1u << (K - k)) - 1);
            a0 = _mm512_fmadd_ps(load16(W, dt, r0 + k, m), _mm512_maskz_loadu_ps(m, x + k), a0);
        }
        y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

TGT void fs_gemv1_avx512(const float *x, const void *W, fs_dtype dt, float *y, int K, int n0, int n1,
                         const fs_cpu_plan *plan) {
    size_t ahead = (size_t)plan->ahead, far = (size_t)plan->far;
    switch (dt) {
    case FS_DTYPE_BF16: WITH_HINT(plan, gemv1_dt(x, W, FS_DTYPE_BF16, y, K, n0, n1, HINT, ahead, far)) break;
    case FS_DTYPE_F16: WITH_HINT(plan, gemv1_dt(x, W, FS_DTYPE_F16, y, K, n0, n1, HINT, ahead, far)) break;
    default: WITH_HINT(plan, gemv1_dt(x, W, FS_DTYPE_F32, y, K, n0, n1, HINT, ahead, far)) break;
    }
}

/* ---- gemvT: a few tokens (a batched decode step) straight from the rows ---- */

/* y[t, n + r] for t < nt (<= 6) tokens and r < nr (1 or 4) rows, f32 /
 * f16 / bf16 weights read where they are stored. A server's batched
 * decode step multiplies each weight by only a few tokens: the GEMM's
 * panel (fs_gemm_avx2: widen 32 rows x 256 k to f32, store, reload) then
 * costs as much as the products, while here each 16 weights are widened
 * once in a register and used for every token - per 16 k, 4 weight
 * vectors and per token one load of x and 4 FMAs into 4 x 6 accumulators,
 * so each input vector (from L2 once the tokens' rows outgrow L1) serves
 * four rows. Each sum is reduced across its lanes once, at the end. The
 * next rows are prefetched a slice per k step (next, next_bytes). */
INL void gemvT_rows(const int nt, const int nr, const float *x, const void *W, fs_dtype dt, float *y, int K, int N,
                    int n, const char *next, size_t next_bytes) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0,
           c5 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0, d4 = a0, d5 = a0;
    const size_t Ks = (size_t)K, r0 = (size_t)n * Ks;
    const size_t steps = (size_t)(K + 15) / 16, step = (next_bytes + steps - 1) / steps;   /* bytes of next a k step */
    const char *pf = next;
    for (int k = 0; k < K; k += 16) {
        __mmask16 m = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
        if (pf) {
            for (size_t o = 0; o < step; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
            pf += step;
        }
        __m512 w0 = load16(W, dt, r0 + (size_t)k, m), w1 = w0, w2 = w0, w3 = w0, xv;
        if (nr > 1) {
            w1 = load16(W, dt, r0 + Ks + (size_t)k, m);
            w2 = load16(W, dt, r0 + 2 * Ks + (size_t)k, m);
            w3 = load16(W, dt, r0 + 3 * Ks + (size_t)k, m);
        }
#define TOK(i)                                                                                                 \
    if (nt > i) {                                                                                              \
        xv = _mm512_maskz_loadu_ps(m, x + (size_t)(i) * Ks + (size_t)k);                                        \
        a##i = _mm512_fmadd_ps(w0, xv, a##i);                                                                  \
        if (nr > 1) {                                                                                          \
            b##i = _mm512_fmadd_ps(w1, xv, b##i);                                                              \
            c##i = _mm512_fmadd_ps(w2, xv, c##i), d##i = _mm512_fmadd_ps(w3, xv, d##i);                        \
        }                                                                                                      \
    }
        TOK(0) TOK(1) TOK(2) TOK(3) TOK(4) TOK(5)
#undef TOK
    }
    __m512 acc[4][6] = {{a0, a1, a2, a3, a4, a5}, {b0, b1, b2, b3, b4, b5}, {c0, c1, c2, c3, c4, c5},
                        {d0, d1, d2, d3, d4, d5}};
    for (int i = 0; i < nt; i++)
        for (int r = 0; r < nr; r++) y[(size_t)i * (size_t)N + (size_t)n + (size_t)r] = _mm512_reduce_add_ps(acc[r][i]);
}

/* Rows [n0, n1) for nt tokens: four rows at a time, then the last N % 4. */
INL void gemvT_dt(const int nt, const float *x, const void *W, fs_dtype dt, float *y, int K, int N, int n0, int n1) {
    const size_t rb = (size_t)K * (dt == FS_DTYPE_F32 ? 4 : 2);   /* bytes of a row */
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const char *next = n + 8 <= N ? (const char *)W + (size_t)(n + 4) * rb : NULL;   /* past the chunk too */
        gemvT_rows(nt, 4, x, W, dt, y, K, N, n, next, 4 * rb);
    }
    for (; n < n1; n++) gemvT_rows(nt, 1, x, W, dt, y, K, N, n, NULL, 0);
}

/* T tokens in passes of at most FS_GEMVT_T, as even as possible (8 = 4 + 4:
 * a pass of 2 would read the rows again for little work). */
TGT void fs_gemvT_avx512(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1) {
    int passes = (T + FS_GEMVT_T - 1) / FS_GEMVT_T, per = (T + passes - 1) / passes;
    for (int t = 0; t < T; t += per) {
        int nt = T - t < per ? T - t : per;
        const float *xt = x + (size_t)t * (size_t)K;
        float *yt = y + (size_t)t * (size_t)N;
        /* nt and the dtype constants in each copy */
#define DT(k)                                                                                                  \
    switch (dt) {                                                                                              \
    case FS_DTYPE_BF16: gemvT_dt(k, xt, W, FS_DTYPE_BF16, yt, K, N, n0, n1); break;                            \
    case FS_DTYPE_F16: gemvT_dt(k, xt, W, FS_DTYPE_F16, yt, K, N, n0, n1); break;                              \
    default: gemvT_dt(k, xt, W, FS_DTYPE_F32, yt, K, N, n0, n1); break;                                        \
    }
        switch (nt) {
        case 6: DT(6) break;
        case 5: DT(5) break;
        case 4: DT(4) break;
        case 3: DT(3) break;
        case 2: DT(2) break;
        default: DT(1) break;
        }
#undef DT
    }
}

/* ---- the input split into three bf16 parts ---- */

/* x = hi + mid + lo exactly, each part a bf16: hi is x with its low 16
 * bits cut off (truncation, not rounding: it never overflows to
 * infinity), mid the same of x - hi, lo of x - hi - mid. An f32 has 24
 * significant bits and a bf16 8, and each subtraction is exact, so three
 * parts hold all of them (the parts could only lose bits below the
 * smallest normal f32, ~1e-38, which AMX and vdpbf16ps flush to zero).
 * An infinite or NaN x keeps itself in hi (NaN as a quiet NaN) and zeros
 * in mid and lo. Rows [0, rows) of x (row stride ldx), K values each, to
 * part p's row r at xs + p * part + r * ldk, zero-padded from K to ldk. */
INL __m512i bf16_bits(__m512 v) { return _mm512_srli_epi32(_mm512_castps_si512(v), 16); }

TGT void fs_split_rows_avx512(const float *x, size_t ldx, int rows, int K, uint16_t *xs, size_t part, int ldk) {
    const __m512i quiet = _mm512_set1_epi32(0x40);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        uint16_t *hi = xs + (size_t)r * (size_t)ldk, *mid = hi + part, *lo = mid + part;
        for (int k = 0; k < ldk; k += 16) {
            __mmask16 m = K - k >= 16 ? 0xffff : K > k ? (__mmask16)((1u << (K - k)) - 1) : 0;
            __m512 v = _mm512_maskz_loadu_ps(m, xr + k);
            __m512i h = bf16_bits(v);
            __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            h = _mm512_mask_or_epi32(h, nan, h, quiet);
            __m512 r1 = _mm512_sub_ps(v, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
            r1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r1, r1, _CMP_ORD_Q), r1);   /* inf - inf: 0, not NaN */
            __m512i md = bf16_bits(r1);
            __m512 r2 = _mm512_sub_ps(r1, _mm512_castsi512_ps(_mm512_slli_epi32(md, 16)));
            _mm256_storeu_si256((__m256i *)(hi + k), _mm512_cvtepi32_epi16(h));
            _mm256_storeu_si256((__m256i *)(mid + k), _mm512_cvtepi32_epi16(md));
            _mm256_storeu_si256((__m256i *)(lo + k), _mm512_cvtepi32_epi16(bf16_bits(r2)));
        }
    }
}

/* ---- gemv1_bf16: vdpbf16ps on the three parts ---- */

#define INL_BF16 static inline __attribute__((always_inline)) TGT_BF16

INL_BF16 __m512 dpbf16(__m512 acc, __m512i w, const uint16_t *x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)_mm512_loadu_si512((const void *)x));
}

/* One row at a time; per 64 weights (two lines) 6 vdpbf16ps into 6
 * accumulators (hi, mid, lo of each line). The weights past K are masked
 * off (the next row's bytes), the parts are zero-padded to a multiple of
 * 32 (fs_cpu_split_input). */
INL_BF16 void gemv1_bf16_hint(const uint16_t *xs, size_t stride, const uint16_t *W, float *y, int K, int n0, int n1,
                              const int hint, size_t ahead, size_t far) {
    const uint16_t *xh = xs, *xm = xs + stride, *xl = xs + 2 * stride;
    for (int n = n0; n < n1; n++) {
        const uint16_t *w = W + (size_t)n * (size_t)K;
        __m512 h0 = _mm512_setzero_ps(), m0 = h0, l0 = h0, h1 = h0, m1 = h0, l1 = h0;
        int k = 0;
        for (; k + 64 <= K; k += 64) {
            PREFETCH_AT(w + k, hint, ahead, far);
            PREFETCH_AT(w + k + 32, hint, ahead, far);
            __m512i v0 = _mm512_loadu_si512((const void *)(w + k)), v1 = _mm512_loadu_si512((const void *)(w + k + 32));
            h0 = dpbf16(h0, v0, xh + k), m0 = dpbf16(m0, v0, xm + k), l0 = dpbf16(l0, v0, xl + k);
            h1 = dpbf16(h1, v1, xh + k + 32), m1 = dpbf16(m1, v1, xm + k + 32), l1 = dpbf16(l1, v1, xl + k + 32);
        }
        for (; k < K; k += 32) {
            __mmask32 m = K - k >= 32 ? 0xffffffffu : (__mmask32)((1u << (K - k)) - 1);
            __m512i v = _mm512_maskz_loadu_epi16(m, w + k);
            h0 = dpbf16(h0, v, xh + k), m0 = dpbf16(m0, v, xm + k), l0 = dpbf16(l0, v, xl + k);
        }
        __m512 hs = _mm512_add_ps(h0, h1), ms = _mm512_add_ps(m0, m1), ls = _mm512_add_ps(l0, l1);
        y[n] = _mm512_reduce_add_ps(_mm512_add_ps(hs, _mm512_add_ps(ms, ls)));
    }
}

TGT_BF16 void fs_gemv1_avx512_bf16(const uint16_t *xs, size_t xs_stride, const void *W, float *y, int K, int n0,
                                   int n1, const fs_cpu_plan *plan) {
    size_t ahead = (size_t)plan->ahead, far = (size_t)plan->far;
    WITH_HINT(plan, gemv1_bf16_hint(xs, xs_stride, W, y, K, n0, n1, HINT, ahead, far))
}

/* ---- x8: Q8_0 / Q4_0 with 512-bit vpdpbusd ---- */

/* Per block b, 512 bytes at qxe + 512 b: [0, 256) four vectors, vector p
 * = the 4-byte quad 2p of x's block in lanes 0-7 and quad 2p+1 in lanes
 * 8-15 (signed, for Q4_0); [256, 512) the same bytes + 128 (unsigned, for
 * Q8_0). */
TGT void fs_expand_x_avx512(const fs_block_q8_0 *x, int8_t *qxe, int nb) {
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b++) {
        int8_t *e = qxe + (size_t)b * 512;
        for (int p = 0; p < 4; p++) {
            int64_t two;   /* quads 2p and 2p+1 */
            memcpy(&two, x[b].qs + 8 * p, 8);
            __m512i v = _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(_mm_cvtsi64_si128(two)));
            _mm512_storeu_si512((void *)(e + 64 * p), v);
            _mm512_storeu_si512((void *)(e + 256 + 64 * p), _mm512_xor_si512(v, flip));
        }
    }
}

/* 8 rows' int32 sums (lanes r and r + 8 hold halves of row r's sum) of
 * one superblock sb against the expanded block e. */
INL __m512i sums_q4(const uint8_t *sb, const int8_t *e, int32_t sx) {
    const __m512i low4 = _mm512_set1_epi8(15), high4 = _mm512_set1_epi8((char)0xf0);
    __m512i v0 = _mm512_loadu_si512((const void *)(sb + 16)), v1 = _mm512_loadu_si512((const void *)(sb + 80));
    __m512i s = _mm512_maskz_set1_epi32(0x00ff, -8 * sx);   /* - 8 sum x, once per row */
    __m512i h = _mm512_setzero_si512();
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(v0, low4), _mm512_loadu_si512((const void *)e));
    h = _mm512_dpbusd_epi32(h, _mm512_and_si512(v0, high4), _mm512_loadu_si512((const void *)(e + 128)));
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(v1, low4), _mm512_loadu_si512((const void *)(e + 64)));
    h = _mm512_dpbusd_epi32(h, _mm512_and_si512(v1, high4), _mm512_loadu_si512((const void *)(e + 192)));
    return _mm512_add_epi32(s, _mm512_srai_epi32(h, 4));
}

INL __m512i sums_q8(const uint8_t *sb, const int8_t *e) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i s = _mm512_setzero_si512(), w = s;
    for (int m = 0; m < 4; m++) {
        __m512i v = _mm512_loadu_si512((const void *)(sb + 16 + 64 * m));
        s = _mm512_dpbusd_epi32(s, _mm512_loadu_si512((const void *)(e + 256 + 64 * m)), v);   /* sum w (x + 128) */
        w = _mm512_dpbusd_epi32(w, ones, v);                                                   /* sum w */
    }
    return _mm512_sub_epi32(s, _mm512_slli_epi32(w, 7));
}

/* acc += the block's sums times (scale of each row) x (scale of x). */
INL __m512 scale_add(__m512 acc, __m512i s, const uint8_t *sb, float dx) {
    __m512 dw = _mm512_cvtph_ps(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sb)));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc);
}

/* Row r's two halves added: 8 floats to y. */
INL void store8(float *y, __m512 acc) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
}

/* Groups [g0, g1) of 8 rows, token t. A pair of groups (repack.c) is one
 * stream: block b of both, then block b + 1; a group without its partner
 * in [g0, g1) runs alone. */
INL void x8_hint(const fs_quant_job *j, int t, int g0, int g1, const int q4, const int hint, size_t ahead,
                 size_t far) {
    int nb = j->K / FS_QK;
    int64_t G = j->N / 8;
    size_t sbytes = fs_x8_super_bytes(j->dt);
    const fs_q8_0_sum *xs = j->f->qxs + (size_t)t * (size_t)nb;
    const int8_t *e = j->f->qxe + (size_t)t * (size_t)nb * 512;
    float *y = j->y + (size_t)t * (size_t)j->N;
    for (int g = g0; g < g1;) {
        const uint8_t *sb = (const uint8_t *)j->W + fs_x8_index(G, nb, g, 0) * sbytes;
        __m512 acc = _mm512_setzero_ps(), acc1 = acc;
        int pair = g % 2 == 0 && g + 1 < g1;
        size_t step = (fs_x8_index(G, nb, g, 1) - fs_x8_index(G, nb, g, 0)) * sbytes;
        for (int b = 0; b < nb; b++, sb += step) {
            for (size_t o = 0; o < step; o += 64) PREFETCH_AT(sb + o, hint, ahead, far);
            const int8_t *eb = e + (size_t)b * 512;
            acc = scale_add(acc, q4 ? sums_q4(sb, eb, xs[b].s) : sums_q8(sb, eb), sb, xs[b].d);
            if (pair) acc1 = scale_add(acc1, q4 ? sums_q4(sb + sbytes, eb, xs[b].s) : sums_q8(sb + sbytes, eb),
                                       sb + sbytes, xs[b].d);
        }
        store8(y + (size_t)g * 8, acc);
        if (pair) store8(y + (size_t)g * 8 + 8, acc1);
        g += pair ? 2 : 1;
    }
}

TGT void fs_x8_avx512(const fs_quant_job *j, int t, int g0, int g1) {
    const fs_cpu_plan *plan = &j->f->plan[j->dt];
    size_t ahead = (size_t)plan->ahead, far = (size_t)plan->far;
    if (j->dt == FS_DTYPE_Q4_0) WITH_HINT(plan, x8_hint(j, t, g0, g1, 1, HINT, ahead, far))
    else WITH_HINT(plan, x8_hint(j, t, g0, g1, 0, HINT, ahead, far))
}

/* ---- the quantized GEMM: 16 rows x up to 12 tokens with vpdpbusd ---- */

/* Prefill and batched steps (T >= FS_GEMM_MIN_T) with Q8_0 / Q4_0 x8
 * weights where the CPU has AVX-512 VNNI but no AMX. The 256-bit GEMM of
 * matmul_quant.c spends maddubs + add (+ a madd per block) per 32
 * products of 8 rows; one 512-bit vpdpbusd does 64 products of 16 rows
 * into int32 lanes - a quarter of the instructions.
 *
 *   pack   rows n .. n+15 are the two groups of an x8 pair; per block b
 *          quad j (4 consecutive k) of all 16 rows is one 64-byte vector,
 *          group g's 8 rows in bytes 0-31, group g+1's in 32-63:
 *             pq[b][j] = g: row0 k4j..4j+3 | .. | row7 || g+1: row0 .. row7
 *          and the 16 rows' scales as f32, pd[b][0..15]. The weights go
 *          in as vpdpbusd's unsigned operand: Q4_0 nibbles q = w + 8
 *          (0..15), Q8_0 bytes w ^ 0x80 = w + 128 (0..255).
 *   tile   per token t and block b the int32 accumulator starts at
 *          -c sum x (c = 8 or 128, sum x from the input's quantization:
 *          sum (w + c) x - c sum x = sum w x), then for j = 0..7
 *             s[t] += vpdpbusd(pq[b][j], x[t] quad j broadcast)
 *          and f[t] += float(s[t]) * d_w[0..15] * d_x[t, b]. Each weight
 *          vector is loaded once for the tile's tokens.
 * A block's int32 sum is exact (at most 32 x 255 x 127 < 2^31), so the
 * result is the 256-bit GEMM's up to the order of the f32 sums. */
/* The 32 bytes of vector j of superblock sa (group g) and of sb (group g
 * + 1, the same block) as one 512-bit vector: a quad of each of the 16
 * rows (Q4_0: quads j and j + 4, in the low and high nibbles). */
INL __m512i pair_vec(const uint8_t *sa, const uint8_t *sb, int j) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(sa + 16 + 32 * j))),
                              _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * j)), 1);
}

/* vpdpbusd's unsigned operand from a pair vector v: Q4_0's low nibbles
 * (high = 0: quad j) or high ones (quad j + 4), Q8_0's bytes w + 128. */
INL __m512i pair_weights(__m512i v, int q4, int high) {
    if (q4) return _mm512_and_si512(high ? _mm512_srli_epi16(v, 4) : v, _mm512_set1_epi8(15));
    return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
}

/* The 16 rows' scales of the block (f16, each superblock's first 16
 * bytes) as f32: group g's in lanes 0-7, g + 1's in 8-15. */
INL __m512 pair_scales(const uint8_t *sa, const uint8_t *sb) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sa))),
                              _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), 1);
}

TGT void fs_qpack16_avx512(const void *W, fs_dtype dt, int N, int K, int n, uint8_t *pq, float *pd) {
    int nb = K / FS_QK, q4 = dt == FS_DTYPE_Q4_0;
    size_t sbytes = fs_x8_super_bytes(dt);
    for (int b = 0; b < nb; b++) {
        const uint8_t *sa = (const uint8_t *)W + fs_x8_index(N / 8, nb, n / 8, b) * sbytes;
        const uint8_t *sb = (const uint8_t *)W + fs_x8_index(N / 8, nb, n / 8 + 1, b) * sbytes;
        _mm512_storeu_ps(pd + (size_t)b * 16, pair_scales(sa, sb));
        uint8_t *p = pq + (size_t)b * 512;
        if (q4)
            for (int j = 0; j < 4; j++) {   /* low nibbles: quads 0-3, high: 4-7 (pack_panel_x8) */
                __m512i v = pair_vec(sa, sb, j);
                _mm512_storeu_si512((void *)(p + 64 * j), pair_weights(v, 1, 0));
                _mm512_storeu_si512((void *)(p + 64 * (j + 4)), pair_weights(v, 1, 1));
            }
        else
            for (int j = 0; j < 8; j++) _mm512_storeu_si512((void *)(p + 64 * j), pair_weights(pair_vec(sa, sb, j), 0, 0));
    }
}

/* nt (<= FS_QTILE_T512) tokens x 16 rows; x, xs: token i's blocks at + i *
 * xstride; y: token i's 16 outputs at y + i * ldy. The weight vectors come
 * from the packed panel pq / pd, or (direct, a single token tile: a
 * batched decode step) straight from the x8 pair at src, made in
 * registers exactly as fs_qpack16_avx512 stores them - a pack would cost
 * as much as the products of so few tokens. next: the next pair's
 * superblocks, prefetched into L2 a block per block (NULL: none). */
INL void qtile16(const int nt, const int c, const int direct, const uint8_t *pq, const float *pd, const uint8_t *src,
                 size_t sbytes, int nb, const fs_block_q8_0 *x, size_t xstride, const fs_q8_0_sum *xs, float *y,
                 size_t ldy, const uint8_t *next) {
    const size_t pstep = 2 * sbytes;   /* a block of the pair: both groups' superblocks */
    __m512 f0 = _mm512_setzero_ps(), f1 = f0, f2 = f0, f3 = f0, f4 = f0, f5 = f0, f6 = f0, f7 = f0, f8 = f0,
           f9 = f0, f10 = f0, f11 = f0;
    for (int b = 0; b < nb; b++) {
        __m512i s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, w;
        if (next)
            for (size_t o = 0; o < pstep; o += 64) _mm_prefetch((const char *)next + (size_t)b * pstep + o, _MM_HINT_T1);
#define TOK(i) \
    if (nt > i) s##i = _mm512_set1_epi32(-c * xs[(size_t)(i) * xstride + (size_t)b].s);
        TOK(0) TOK(1) TOK(2) TOK(3) TOK(4) TOK(5) TOK(6) TOK(7) TOK(8) TOK(9) TOK(10) TOK(11)
#undef TOK
        /* every token's sums += w times its quad jj of block b */
#define TOK(i, jj)                                                                            \
    if (nt > i) {                                                                             \
        int32_t q;                                                                            \
        memcpy(&q, x[(size_t)(i) * xstride + (size_t)b].qs + 4 * (jj), 4);                   \
        s##i = _mm512_dpbusd_epi32(s##i, w, _mm512_set1_epi32(q));                            \
    }
#define DOT(jj) TOK(0, jj) TOK(1, jj) TOK(2, jj) TOK(3, jj) TOK(4, jj) TOK(5, jj) TOK(6, jj) TOK(7, jj) \
                TOK(8, jj) TOK(9, jj) TOK(10, jj) TOK(11, jj)
        __m512 dw;
        if (!direct) {
            const uint8_t *pb = pq + (size_t)b * 512;
            for (int j = 0; j < 8; j++) {
                w = _mm512_loadu_si512((const void *)(pb + 64 * j));
                DOT(j)
            }
            dw = _mm512_loadu_ps(pd + (size_t)b * 16);
        } else {
            const uint8_t *sa = src + (size_t)b * pstep, *sb = sa + sbytes;
            for (int j = 0; j < (c == 8 ? 4 : 8); j++) {   /* as fs_qpack16_avx512 stores them */
                __m512i v = pair_vec(sa, sb, j);
                w = pair_weights(v, c == 8, 0);
                DOT(j)
                if (c == 8) {
                    w = pair_weights(v, 1, 1);
                    DOT(j + 4)
                }
            }
            dw = pair_scales(sa, sb);
        }
#undef DOT
#undef TOK
#define TOK(i)                                                                                                \
    if (nt > i)                                                                                               \
        f##i = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s##i),                                                      \
                               _mm512_mul_ps(dw, _mm512_set1_ps(xs[(size_t)(i) * xstride + (size_t)b].d)), f##i);
        TOK(0) TOK(1) TOK(2) TOK(3) TOK(4) TOK(5) TOK(6) TOK(7) TOK(8) TOK(9) TOK(10) TOK(11)
#undef TOK
    }
    __m512 f[12] = {f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11};
    for (int i = 0; i < nt; i++) _mm512_storeu_ps(y + (size_t)i * ldy, f[i]);
}

/* Rows n .. n+15 (an x8 pair) for all T tokens, up to FS_QTILE_T512 a
 * tile, the tiles as equal as can be (fs_tile_next). Up to FS_QDIRECT_T
 * tokens (a batched decode step): the tiles read the pair as it is
 * stored, the second and later ones from L1 / L2. More (a prompt): the
 * pair packed once into the thread's pq / pd first. Either
 * way the first token tile prefetches the next pair (more = 1: rows n +
 * 16 .. n + 31 exist), so that the weights stream while the products are
 * computed. */
TGT void fs_qgemm16_avx512(const fs_quant_job *j, int n, uint8_t *pq, float *pd, int more) {
    int nb = j->K / FS_QK, q4 = j->dt == FS_DTYPE_Q4_0, direct = j->T <= FS_QDIRECT_T;
    size_t xstride = (size_t)nb, ldy = (size_t)j->N, sbytes = fs_x8_super_bytes(j->dt);
    const uint8_t *src = (const uint8_t *)j->W + fs_x8_index(j->N / 8, nb, n / 8, 0) * sbytes;
    const uint8_t *next = more ? (const uint8_t *)j->W + fs_x8_index(j->N / 8, nb, n / 8 + 2, 0) * sbytes : NULL;
    if (!direct) fs_qpack16_avx512(j->W, j->dt, j->N, j->K, n, pq, pd);
    for (int t = 0, nt; t < j->T; t += nt, next = NULL) {
        const fs_block_q8_0 *x = j->f->qx + (size_t)t * xstride;
        const fs_q8_0_sum *xs = j->f->qxs + (size_t)t * xstride;
        float *y = j->y + (size_t)t * ldy + (size_t)n;
        nt = fs_tile_next(j->T - t, FS_QTILE_T512);
        /* nt, the format and direct constants in each call: each its own loop */
#define CALL(k, c, d) qtile16(k, c, d, pq, pd, src, sbytes, nb, x, xstride, xs, y, ldy, next)
#define CASE(k)                                                                                              \
    case k:                                                                                                  \
        if (direct) q4 ? CALL(k, 8, 1) : CALL(k, 128, 1);                                                    \
        else q4 ? CALL(k, 8, 0) : CALL(k, 128, 0);                                                           \
        break;
        switch (nt) {
        CASE(12) CASE(11) CASE(10) CASE(9) CASE(8) CASE(7) CASE(6) CASE(5) CASE(4) CASE(3) CASE(2)
        default: CASE(1)
        }
#undef CASE
#undef CALL
    }
}

/* ---- the f32 register tile, 512-bit ---- */

/* y[i * ldy + r] (+)= sum_{k < kc} x[i * ldx + k] * w_k[r], for i < nt
 * (<= FS_TILE_T512) and r < ncols (<= 32), where w_k[r] is pw0[k * ldw + r]
 * for r < 16 and pw1[k * ldw + r - 16] above: two 16-column panels side
 * by side. The AVX2 tile (matmul_avx2.c) with 512-bit vectors and twice
 * the tokens: per k two loads of the panels, and per token one broadcast
 * of x and two FMAs, into 24 accumulators - 24 FMAs of 16 lanes per 14
 * loads, where a 12 x 16 tile would spend 13 loads on 12 FMAs (the loads,
 * not the FMAs, then set the pace). */
INL void tile32(const int nt, const float *x, size_t ldx, const float *pw0, const float *pw1, size_t ldw, int kc,
                float *y, size_t ldy, int accum, int ncols) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512 a8 = a0, a9 = a0, a10 = a0, a11 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0;
    __m512 b6 = a0, b7 = a0, b8 = a0, b9 = a0, b10 = a0, b11 = a0;
    for (int k = 0; k < kc; k++) {
        __m512 w0 = _mm512_loadu_ps(pw0 + (size_t)k * ldw), w1 = _mm512_loadu_ps(pw1 + (size_t)k * ldw), xb;
#define TOK(i)                                                                                                 \
    if (nt > i) {                                                                                              \
        xb = _mm512_set1_ps(x[(size_t)(i) * ldx + (size_t)k]);                                                 \
        a##i = _mm512_fmadd_ps(xb, w0, a##i);                                                                  \
        b##i = _mm512_fmadd_ps(xb, w1, b##i);                                                                  \
    }
        TOK(0) TOK(1) TOK(2) TOK(3) TOK(4) TOK(5) TOK(6) TOK(7) TOK(8) TOK(9) TOK(10) TOK(11)
#undef TOK
    }
    __m512 c[12][2] = {{a0, b0}, {a1, b1}, {a2, b2}, {a3, b3}, {a4, b4}, {a5, b5},
                       {a6, b6}, {a7, b7}, {a8, b8}, {a9, b9}, {a10, b10}, {a11, b11}};
    __mmask16 m0 = ncols >= 16 ? 0xffff : (__mmask16)((1u << ncols) - 1);
    __mmask16 m1 = ncols >= 32 ? 0xffff : ncols > 16 ? (__mmask16)((1u << (ncols - 16)) - 1) : 0;
    for (int i = 0; i < nt; i++) {
        float *yi = y + (size_t)i * ldy;
        if (accum) {
            c[i][0] = _mm512_add_ps(c[i][0], _mm512_maskz_loadu_ps(m0, yi));
            c[i][1] = _mm512_add_ps(c[i][1], _mm512_maskz_loadu_ps(m1, yi + 16));
        }
        _mm512_mask_storeu_ps(yi, m0, c[i][0]);
        _mm512_mask_storeu_ps(yi + 16, m1, c[i][1]);
    }
}

TGT void fs_tile_avx512(int nt, const float *x, size_t ldx, const float *pw0, const float *pw1, size_t ldw, int kc,
                        float *y, size_t ldy, int accum, int ncols) {
    switch (nt) {
#define CASE(n) case n: tile32(n, x, ldx, pw0, pw1, ldw, kc, y, ldy, accum, ncols); break;
    CASE(12) CASE(11) CASE(10) CASE(9) CASE(8) CASE(7) CASE(6) CASE(5) CASE(4) CASE(3) CASE(2)
#undef CASE
    default: tile32(1, x, ldx, pw0, pw1, ldw, kc, y, ldy, accum, ncols); break;
    }
}

#else /* no AVX-512 compiler support: never called (fs_cpu_detect never sets avx512) */

void fs_tile_avx512(int nt, const float *x, size_t ldx, const float *pw0, const float *pw1, size_t ldw, int kc,
                    float *y, size_t ldy, int accum, int ncols) {
    fs_tile_avx2(nt, x, ldx, pw0, ldw, kc, y, ldy, accum, ncols < 16 ? ncols : 16);
    if (ncols > 16) fs_tile_avx2(nt, x, ldx, pw1, ldw, kc, y + 16, ldy, accum, ncols - 16);
}

void fs_gemv1_avx512(const float *x, const void *W, fs_dtype dt, float *y, int K, int n0, int n1,
                     const fs_cpu_plan *plan) {
    (void)plan;
    fs_gemv_scalar(x, W, dt, y, 1, K, n1, n0, n1);
}
void fs_gemv1_avx512_bf16(const uint16_t *xs, size_t xs_stride, const void *W, float *y, int K, int n0, int n1,
                          const fs_cpu_plan *plan) {
    (void)xs, (void)xs_stride, (void)W, (void)y, (void)K, (void)n0, (void)n1, (void)plan;
}
void fs_split_rows_avx512(const float *x, size_t ldx, int rows, int K, uint16_t *xs, size_t part, int ldk) {
    (void)x, (void)ldx, (void)rows, (void)K, (void)xs, (void)part, (void)ldk;
}
void fs_x8_avx512(const fs_quant_job *j, int t, int g0, int g1) { (void)j, (void)t, (void)g0, (void)g1; }
void fs_gemvT_avx512(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1) {
    fs_gemv_scalar(x, W, dt, y, T, K, N, n0, n1);
}
void fs_qgemm16_avx512(const fs_quant_job *j, int n, uint8_t *pq, float *pd, int more) {
    (void)j, (void)n, (void)pq, (void)pd, (void)more;
}
void fs_expand_x_avx512(const fs_block_q8_0 *x, int8_t *qxe, int nb) { (void)x, (void)qxe, (void)nb; }

#endif
