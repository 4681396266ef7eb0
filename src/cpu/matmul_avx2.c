/* matmul_avx2.c - the matmul kernels for x86-64 with AVX2, FMA and F16C.
 *
 *   y[t, n] = sum_k x[t, k] * W[n, k]      rows [n0, n1) of y[T, N]
 *
 * Compiled without any -m flag: each function carries
 * __attribute__((target("avx2,fma,f16c"))) and is only called after
 * fs_cpu_detect() found those features (backend_cpu.c).
 *
 * 16-bit weights to f32, 8 at a time, in registers:
 *   bf16: zero-extend the 8 u16 to 32 bits and shift left by 16 - a bf16 is
 *         the top half of an f32, so this is exact;
 *   f16:  the F16C instruction vcvtph2ps (_mm256_cvtph_ps), also exact.
 *
 * GEMV (decode, T = 1): one row at a time with 4 accumulators and a
 * software prefetch far ahead as the decode plan says (gemv1_dt); for T = 2..3, 4 weight rows at a
 * time, 2 accumulators per row, so x is reused by the 4 rows from
 * registers. Both are bound by memory bandwidth, not by arithmetic. GEMM
 * (prefill): see matmul_float.c for the 6 x 16 tile.
 *
 * Docs: docs/forward.md
 */
#include "cpu_backend.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TGT

/* 8 weights starting at element i, as f32. dt is a constant at every call
 * site (the callers are specialised per dtype), so the switch folds away. */
INL __m256 load8(const void *W, fs_dtype dt, size_t i) {
    switch (dt) {
    case FS_DTYPE_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)W + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case FS_DTYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)W + i)));
    default: break;
    }
    return _mm256_loadu_ps((const float *)W + i);
}

INL float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- GEMV ---- */

/* Issue the prefetch of a decode plan (cpu_backend.h) for address p. The
 * hint must be a constant in the instruction, so each is its own case;
 * callers pass hint as a constant and the switch folds away. */
INL void prefetch(const char *p, const int hint) {
    switch (hint) {
    case FS_PF_T0: _mm_prefetch(p, _MM_HINT_T0); break;
    case FS_PF_NTA: _mm_prefetch(p, _MM_HINT_NTA); break;
    default: break;
    }
}

/* Decode (T = 1): one row after the other, so each thread reads a single
 * sequential stream of W - the access pattern memory systems serve best -
 * and asks for the line `ahead` bytes ahead of where it reads: the
 * hardware prefetcher alone keeps fewer lines in flight than the memory
 * system can serve. Which prefetch hint and how far ahead is the decode
 * plan's: T0 (into every cache level), NTA (close to the core without
 * displacing cached data: a weight is read once per token) or none. NTA
 * measured a gain on an AMD Zen 5 and 2.5x slower on an Intel Xeon
 * (docs/bench.md), so the plan is measured per machine (tune_cpu.c).
 * Prefetching past the end of the thread's rows or of W is harmless: a
 * prefetch never faults. */
INL void gemv1_dt(const float *x, const void *W, fs_dtype dt, float *y, int K, int n0, int n1, const int hint,
                  size_t ahead, size_t far) {
    size_t Ks = (size_t)K, es = dt == FS_DTYPE_F32 ? 4 : 2;
    for (int n = n0; n < n1; n++) {
        size_t r0 = (size_t)n * Ks;
        const char *row = (const char *)W + r0 * es;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 32 <= K; k += 32) {
            prefetch(row + (size_t)k * es + ahead, hint);   /* 32 k = one line of bf16 */
            if (es == 4) prefetch(row + (size_t)k * es + ahead + 64, hint);
            if (far) {   /* the plan's second prefetch, into L2 */
                _mm_prefetch(row + (size_t)k * es + far, _MM_HINT_T1);
                if (es == 4) _mm_prefetch(row + (size_t)k * es + far + 64, _MM_HINT_T1);
            }
            a0 = _mm256_fmadd_ps(load8(W, dt, r0 + k), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(load8(W, dt, r0 + k + 8), _mm256_loadu_ps(x + k + 8), a1);
            a2 = _mm256_fmadd_ps(load8(W, dt, r0 + k + 16), _mm256_loadu_ps(x + k + 16), a2);
            a3 = _mm256_fmadd_ps(load8(W, dt, r0 + k + 24), _mm256_loadu_ps(x + k + 24), a3);
        }
        for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(load8(W, dt, r0 + k), _mm256_loadu_ps(x + k), a0);
        float s0 = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; k < K; k++) s0 += x[k] * fs_cpu_weight(W, dt, r0 + k);
        y[n] = s0;
    }
}

/* gemv1_dt with the hint a constant in each copy. */
INL void gemv1_plan(const float *x, const void *W, fs_dtype dt, float *y, int K, int n0, int n1, int hint,
                    size_t ahead, size_t far) {
    switch (hint) {
    case FS_PF_T0: gemv1_dt(x, W, dt, y, K, n0, n1, FS_PF_T0, ahead, far); break;
    case FS_PF_NTA: gemv1_dt(x, W, dt, y, K, n0, n1, FS_PF_NTA, ahead, far); break;
    default: gemv1_dt(x, W, dt, y, K, n0, n1, FS_PF_NONE, ahead, far); break;
    }
}

INL void gemv_dt(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                 int hint, size_t ahead, size_t far) {
    size_t Ks = (size_t)K;
    int n = n0;
    if (T == 1) {
        gemv1_plan(x, W, dt, y, K, n0, n1, hint, ahead, far);
        return;
    }
    for (; n + 4 <= n1; n += 4) {
        size_t r0 = (size_t)n * Ks, r1 = r0 + Ks, r2 = r1 + Ks, r3 = r2 + Ks;
        /* The next 4-row block, prefetched a slice per step so that it is
         * all requested by the time this block is done. Hardware
         * prefetchers stop at 4 KiB page boundaries; this does not. */
        const char *next = (const char *)W + (r0 + 4 * Ks) * (dt == FS_DTYPE_F32 ? 4 : 2);
        const char *next_end = (const char *)W + (size_t)n1 * Ks * (dt == FS_DTYPE_F32 ? 4 : 2);
        size_t pf_step = (dt == FS_DTYPE_F32 ? 4 : 2) * 4 * 16;   /* bytes of W one k-step consumes */
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * Ks;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int k = 0;
            const char *pf = next;
            for (; k + 16 <= K; k += 16) {
                if (t == 0 && pf < next_end) {
                    for (size_t o = 0; o < pf_step; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
                    pf += pf_step;
                }
                __m256 x0 = _mm256_loadu_ps(xt + k), x1 = _mm256_loadu_ps(xt + k + 8);
                a0 = _mm256_fmadd_ps(load8(W, dt, r0 + k), x0, a0);
                b0 = _mm256_fmadd_ps(load8(W, dt, r0 + k + 8), x1, b0);
                a1 = _mm256_fmadd_ps(load8(W, dt, r1 + k), x0, a1);
                b1 = _mm256_fmadd_ps(load8(W, dt, r1 + k + 8), x1, b1);
                a2 = _mm256_fmadd_ps(load8(W, dt, r2 + k), x0, a2);
                b2 = _mm256_fmadd_ps(load8(W, dt, r2 + k + 8), x1, b2);
                a3 = _mm256_fmadd_ps(load8(W, dt, r3 + k), x0, a3);
                b3 = _mm256_fmadd_ps(load8(W, dt, r3 + k + 8), x1, b3);
            }
            for (; k + 8 <= K; k += 8) {
                __m256 x0 = _mm256_loadu_ps(xt + k);
                a0 = _mm256_fmadd_ps(load8(W, dt, r0 + k), x0, a0);
                a1 = _mm256_fmadd_ps(load8(W, dt, r1 + k), x0, a1);
                a2 = _mm256_fmadd_ps(load8(W, dt, r2 + k), x0, a2);
                a3 = _mm256_fmadd_ps(load8(W, dt, r3 + k), x0, a3);
            }
            float s0 = hsum(_mm256_add_ps(a0, b0)), s1 = hsum(_mm256_add_ps(a1, b1));
            float s2 = hsum(_mm256_add_ps(a2, b2)), s3 = hsum(_mm256_add_ps(a3, b3));
            for (; k < K; k++) {
                s0 += xt[k] * fs_cpu_weight(W, dt, r0 + k);
                s1 += xt[k] * fs_cpu_weight(W, dt, r1 + k);
                s2 += xt[k] * fs_cpu_weight(W, dt, r2 + k);
                s3 += xt[k] * fs_cpu_weight(W, dt, r3 + k);
            }
            float *yt = y + (size_t)t * (size_t)N + (size_t)n;
            yt[0] = s0, yt[1] = s1, yt[2] = s2, yt[3] = s3;
        }
    }
    for (; n < n1; n++) {   /* the last N % 4 rows */
        size_t r0 = (size_t)n * Ks;
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * Ks;
            __m256 a0 = _mm256_setzero_ps();
            int k = 0;
            for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(load8(W, dt, r0 + k), _mm256_loadu_ps(xt + k), a0);
            float s0 = hsum(a0);
            for (; k < K; k++) s0 += xt[k] * fs_cpu_weight(W, dt, r0 + k);
            y[(size_t)t * (size_t)N + (size_t)n] = s0;
        }
    }
}

TGT void fs_gemv_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                      const fs_cpu_plan *plan) {
    int hint = plan->prefetch;
    size_t ahead = (size_t)plan->ahead, far = (size_t)plan->far;
    switch (dt) {
    case FS_DTYPE_BF16: gemv_dt(x, W, FS_DTYPE_BF16, y, T, K, N, n0, n1, hint, ahead, far); break;
    case FS_DTYPE_F16: gemv_dt(x, W, FS_DTYPE_F16, y, T, K, N, n0, n1, hint, ahead, far); break;
    default: gemv_dt(x, W, FS_DTYPE_F32, y, T, K, N, n0, n1, hint, ahead, far); break;
    }
}

/* ---- GEMM ---- */

/* The register tile: nt (<= 6) tokens x 16 rows over kc values of k.
 *   x:  token i's values at x + i * ldx (k = 0 .. kc-1)
 *   pw: the packed panel, pw[k * ldw + r] (ldw = 16 for the GEMM's panels;
 *       attention passes the V cache itself, ldw = its row stride)
 *   y:  token i's 16 outputs at y + i * ldy; add to them if accum,
 *       only the first ncols are written (the panel's real rows). */
INL void tile(const int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
              int accum, int ncols) {
    /* 12 named accumulators: compilers keep named __m256 variables in
     * registers, while an array indexed in a loop may live in memory. nt is
     * a constant at each call site, so the `if (nt > i)` tests fold away. */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *x4 = x + 4 * ldx, *x5 = x + 5 * ldx;
    for (int k = 0; k < kc; k++) {
        __m256 w0 = _mm256_loadu_ps(pw + (size_t)k * ldw), wb = _mm256_loadu_ps(pw + (size_t)k * ldw + 8), xb;
#define TOKEN(i)                                                                                                 \
    if (nt > i) {                                                                                                \
        xb = _mm256_broadcast_ss(x##i + k);                                                                      \
        c##i##0 = _mm256_fmadd_ps(xb, w0, c##i##0);                                                              \
        c##i##1 = _mm256_fmadd_ps(xb, wb, c##i##1);                                                              \
    }
        TOKEN(0) TOKEN(1) TOKEN(2) TOKEN(3) TOKEN(4) TOKEN(5)
#undef TOKEN
    }
    __m256 c[FS_TILE_T][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < nt; i++) {
        float *yi = y + (size_t)i * ldy;
        if (ncols == 16) {
            if (accum) {
                c[i][0] = _mm256_add_ps(c[i][0], _mm256_loadu_ps(yi));
                c[i][1] = _mm256_add_ps(c[i][1], _mm256_loadu_ps(yi + 8));
            }
            _mm256_storeu_ps(yi, c[i][0]);
            _mm256_storeu_ps(yi + 8, c[i][1]);
        } else {
            float tmp[16];
            _mm256_storeu_ps(tmp, c[i][0]);
            _mm256_storeu_ps(tmp + 8, c[i][1]);
            for (int r = 0; r < ncols; r++) yi[r] = accum ? yi[r] + tmp[r] : tmp[r];
        }
    }
}

/* Pack a full panel (16 rows, kc a multiple of 8) with SIMD: convert 8
 * rows x 8 k to f32 in registers, transpose the 8 x 8 block (unpack,
 * shuffle, permute: the textbook AVX sequence) and store each column - one
 * k, 8 rows - where the tile reads it. fs_pack_panel is the scalar
 * version, used for partial panels. */
INL void pack_dt(const void *W, fs_dtype dt, int K, int n, int k0, int kc, float *pack) {
    for (int rb = 0; rb < 16; rb += 8) {
        size_t base = (size_t)(n + rb) * (size_t)K + (size_t)k0;
        for (int k = 0; k < kc; k += 8) {
            __m256 r0 = load8(W, dt, base + k), r1 = load8(W, dt, base + (size_t)K + k);
            __m256 r2 = load8(W, dt, base + 2 * (size_t)K + k), r3 = load8(W, dt, base + 3 * (size_t)K + k);
            __m256 r4 = load8(W, dt, base + 4 * (size_t)K + k), r5 = load8(W, dt, base + 5 * (size_t)K + k);
            __m256 r6 = load8(W, dt, base + 6 * (size_t)K + k), r7 = load8(W, dt, base + 7 * (size_t)K + k);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *p = pack + (size_t)k * 16 + (size_t)rb;
            _mm256_store_ps(p + 0 * 16, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_store_ps(p + 1 * 16, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_store_ps(p + 2 * 16, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_store_ps(p + 3 * 16, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_store_ps(p + 4 * 16, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_store_ps(p + 5 * 16, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_store_ps(p + 6 * 16, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_store_ps(p + 7 * 16, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    }
}

static TGT void pack_panel_avx2(const void *W, fs_dtype dt, int K, int n, int rows, int k0, int kc, float *pack) {
    if (rows != 16 || kc % 8) {
        fs_pack_panel(W, dt, K, n, rows, k0, kc, pack);
        return;
    }
    switch (dt) {
    case FS_DTYPE_BF16: pack_dt(W, FS_DTYPE_BF16, K, n, k0, kc, pack); break;
    case FS_DTYPE_F16: pack_dt(W, FS_DTYPE_F16, K, n, k0, kc, pack); break;
    default: pack_dt(W, FS_DTYPE_F32, K, n, k0, kc, pack); break;
    }
}

TGT void fs_gemm_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                      float *pack, int wide) {
    if (wide) {   /* AVX-512: two panels (32 rows), up to 12 tokens a tile, as equal as can be (matmul_avx512.c) */
        float *pack1 = pack + FS_PANEL_K * FS_PANEL_N;
        for (int n = n0; n < n1; n += 2 * FS_PANEL_N) {
            int rows = n1 - n < 2 * FS_PANEL_N ? n1 - n : 2 * FS_PANEL_N;
            for (int k0 = 0; k0 < K; k0 += FS_PANEL_K) {
                int kc = K - k0 < FS_PANEL_K ? K - k0 : FS_PANEL_K;
                pack_panel_avx2(W, dt, K, n, rows < 16 ? rows : 16, k0, kc, pack);
                if (rows > 16) pack_panel_avx2(W, dt, K, n + 16, rows - 16, k0, kc, pack1);
                for (int t = 0, nt; t < T; t += nt)
                    fs_tile_avx512(nt = fs_tile_next(T - t, FS_TILE_T512), x + (size_t)t * (size_t)K + (size_t)k0,
                                   (size_t)K, pack, rows > 16 ? pack1 : pack, 16, kc,
                                   y + (size_t)t * (size_t)N + (size_t)n, (size_t)N, k0 > 0, rows);
            }
        }
        return;
    }
    for (int n = n0; n < n1; n += FS_PANEL_N) {
        int rows = n1 - n < FS_PANEL_N ? n1 - n : FS_PANEL_N;
        for (int k0 = 0; k0 < K; k0 += FS_PANEL_K) {
            int kc = K - k0 < FS_PANEL_K ? K - k0 : FS_PANEL_K;
            pack_panel_avx2(W, dt, K, n, rows, k0, kc, pack);
            for (int t = 0; t < T; t += FS_TILE_T) {
                const float *xt = x + (size_t)t * (size_t)K + (size_t)k0;
                float *yt = y + (size_t)t * (size_t)N + (size_t)n;
                int acc = k0 > 0;
                switch (T - t < FS_TILE_T ? T - t : FS_TILE_T) {
                case 6: tile(6, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 5: tile(5, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 4: tile(4, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 3: tile(3, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 2: tile(2, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                default: tile(1, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                }
            }
        }
    }
}

TGT void fs_tile_avx2(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                      int accum, int ncols) {
    switch (nt) {
    case 6: tile(6, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 5: tile(5, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 4: tile(4, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 3: tile(3, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 2: tile(2, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    default: tile(1, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    }
}

#else /* not x86: never called (fs_cpu_detect never picks AVX2) */

void fs_tile_avx2(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                  int accum, int ncols) {
    for (int i = 0; i < nt; i++)
        for (int r = 0; r < ncols; r++) {
            float acc = 0.0f;
            for (int k = 0; k < kc; k++) acc += x[(size_t)i * ldx + (size_t)k] * pw[(size_t)k * ldw + (size_t)r];
            y[(size_t)i * ldy + (size_t)r] = accum ? y[(size_t)i * ldy + (size_t)r] + acc : acc;
        }
}

void fs_gemv_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  const fs_cpu_plan *plan) {
    (void)plan;
    fs_gemv_scalar(x, W, dt, y, T, K, N, n0, n1);
}
void fs_gemm_avx2(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack, int wide) {
    (void)wide;
    fs_gemm_scalar(x, W, dt, y, T, K, N, n0, n1, pack);
}

#endif
