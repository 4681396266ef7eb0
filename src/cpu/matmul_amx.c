/* matmul_amx.c - prefill GEMMs on AMX tiles (Intel Xeon since Sapphire
 * Rapids): y = x W^T for a whole prompt chunk, bf16 and Q8_0 / Q4_0
 * weights.
 *
 *   y[t, n] = sum_k x[t, k] * W[n, k]      x: [T, K]   W: [N, K]   y: [T, N]
 *
 * What a tile is. AMX adds eight 2-D registers, tmm0..tmm7, each up to 16
 * rows of 64 bytes (1 KiB), and a matrix unit (TMUL) that multiplies them:
 *
 *   tdpbf16ps C, A, B    C[16 x 16 f32] += A[16 x 32 bf16] . B[32 x 16 bf16]
 *   tdpbssd   C, A, B    C[16 x 16 i32] += A[16 x 64 i8]   . B[64 x 16 i8]
 *
 * one instruction being 8192 bf16 (16384 int8) multiply-adds - where an
 * AVX-512 FMA does 16. B is stored "pair-interleaved" (the VNNI layout):
 * row r of a bf16 B tile holds, for each of its 16 columns n, the two
 * values B[2r][n], B[2r+1][n] side by side (int8: 4 values, B[4r..4r+3][n]).
 * Here the columns are weight rows, so a B tile row r holds, for 16 weight
 * rows, their k = 2r, 2r+1 - the rows' own consecutive pairs, gathered.
 *
 *        A: 16 tokens x 32 k           B: 16 k-pairs x 16 weight rows
 *      +--------------------+         +--------------------------------+
 *   t0 | x[t0, k0..k0+31]   |    k0,1 | W[n0][k0,k0+1] ... W[n15][k0..] |
 *   .. |        ...         |   ...   |             ...                |
 *  t15 | x[t15, k0..k0+31]  | k30,31  | W[n0][k30,31] ...               |
 *      +--------------------+         +--------------------------------+
 *                    C[t, n] += sum_k A[t, k] B[k, n]   (16 x 16 f32)
 *
 * The shapes are set once per thread by a 64-byte tile configuration
 * (ldtilecfg): a palette number, then each tile's bytes per row and rows.
 *
 * bf16 weights. The f32 input is split into three bf16 parts, x = hi + mid
 * + lo exactly (fs_split_rows_avx512), and each part meets the same B
 * tiles: every bf16 product is exact in f32 and C accumulates in f32, so
 * this is an f32 dot product - the CPU's one semantic path, not a bf16
 * approximation of it - at a third of the tile unit's bf16 rate. Per
 * chunk, 32 weight rows are packed once into B tiles (all of K) and every
 * 32 tokens run against them with 2 x 2 C tiles (tmm0-3), A in tmm4-5 and
 * B in tmm6-7; C stays in the tiles for the whole of K.
 *
 * Q8_0 / Q4_0 weights. The input is already Q8_0 (quant_cpu.c). A block of
 * 32 has its own scale in x and in W, so C can only sum one block: per
 * block b, tdpbssd gives the 16 x 16 exact integer sums S (A = 16 tokens'
 * 32 int8, straight from the quantized input with its 34-byte block
 * stride; B = 16 weight rows, from the x8 layout's interleaved quads:
 * a pair of 8-row groups is a B tile as it is, Q4_0's nibbles unpacked to
 * q - 8), stores them, and AVX-512 adds S * d_w[n] * d_x[t] into f32
 * accumulators held in registers - the same integer sums and f32 products
 * as every other CPU kernel. The tile unit runs block b + 1 while the
 * vector unit scales block b (C in tmm0/1 alternately).
 *
 * The tile configuration. gcc 12's AMX intrinsics have been seen to drop
 * the stores that build a configuration in memory before _tile_loadconfig
 * reads it (another project: illegal instructions and crashes). Here the
 * configurations are constant tables in read-only data - nothing to store
 * - and every tile instruction is inline assembly whose operands are the
 * registers and memory it really uses; tests/test_cpu_kernels.c reads a
 * configuration back (sttilecfg) and compares it byte for byte.
 *
 * Linux gives a process the tile registers only when it asks
 * (backend_cpu.c, have_amx); without that, none of this runs.
 *
 * Docs: docs/cpu.md, docs/bench.md
 */
#include <string.h>

#include "cpu_backend.h"

/* The packed B tiles of one panel (bf16: 128 rows, 2 bytes a weight;
 * int8: 64 rows, 18 bytes per 16 weights) and 2 KiB of C tiles stored for
 * the epilogue. */
size_t fs_amx_pack_bytes(int K) {
    size_t Kp = ((size_t)K + 31) / 32 * 32;
    return Kp * 2 * 128 + 4096;
}

#if defined(__x86_64__) && defined(__linux__) && FS_HAVE_AVX512_TARGET
#include <immintrin.h>

#include "amx_tiles.h"

/* int8: C tmm0-1 (16 x 16 i32), A tmm2-3 (16 tokens x 32 i8), B tmm4-5
 * (8 quads x 16 rows x 4 i8) */
static const tilecfg cfg_int8 __attribute__((aligned(64))) = {{
    [0] = 1, ROWS(0, 64, 16), ROWS(1, 64, 16), ROWS(2, 32, 16), ROWS(3, 32, 16), ROWS(4, 64, 8), ROWS(5, 64, 8)}};

void fs_amx_config_roundtrip(uint8_t out[64]) {
    tile_config(&cfg_int8);
    __asm__ volatile("sttilecfg %0" : "=m"(*(tilecfg *)out));
    tile_release();
}

/* ---- bf16 ---- */

/* Pack weight rows [n, n + 32) (rows past N are zeros) into B tiles: for
 * k-step s (32 k) and half h (rows n + 16h ..), 1 KiB at pk + (2s + h)
 * KiB, row r = the 4-byte pair k = 32s + 2r, +1 of each of the 16 rows
 * (gathered with one vpgatherdd per tile row). K past the end: zeros. */
static TGT void pack_bf16(const uint16_t *W, int K, int N, int n, int Kp, uint8_t *pk) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    int pairs = K / 2;   /* whole pairs in a row */
    for (int h = 0; h < 2; h++) {
        int n0 = n + 16 * h, rows = N - n0 < 16 ? (N - n0 > 0 ? N - n0 : 0) : 16;
        __mmask16 valid = (__mmask16)((1u << rows) - 1);
        /* row c's dwords start c * K / 2 dwords after row 0's (K even) */
        __m512i base = _mm512_mullo_epi32(lane, _mm512_set1_epi32(K / 2));
        const int32_t *w32 = (const int32_t *)(W + (size_t)(rows ? n0 : 0) * (size_t)K);
        for (int s = 0; s < Kp / 32; s++) {
            uint8_t *tile = pk + ((size_t)s * 2 + (size_t)h) * 1024;
            for (int r = 0; r < 16; r++) {
                int pair = 16 * s + r;
                uint8_t *row = tile + 64 * r;
                if (K % 2 == 0 && pair < pairs) {
                    __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32(pair));
                    _mm512_storeu_si512((void *)row, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, idx, w32, 4));
                    continue;
                }
                for (int c = 0; c < 16; c++) {   /* odd K, or the pairs past K: element by element */
                    uint16_t e[2] = {0, 0};
                    for (int i = 0; i < 2 && c < rows; i++)
                        if (2 * pair + i < K) e[i] = W[(size_t)(n0 + c) * (size_t)K + (size_t)(2 * pair + i)];
                    memcpy(row + 4 * c, e, 4);
                }
            }
        }
    }
}

/* C tile i (16 tokens x 16 rows) to y rows t0.., columns n..: straight
 * from the tile when all of it is inside y, else through tmp. */
#define STORE_C(I, t0, n)                                                                                      \
    do {                                                                                                       \
        int rows_ = T - (t0) < 16 ? T - (t0) : 16, cols_ = N - (n) < 16 ? N - (n) : 16;                        \
        if (rows_ <= 0 || cols_ <= 0) break;                                                                   \
        float *dst_ = y + (size_t)(t0) * (size_t)N + (size_t)(n);                                              \
        if (rows_ == 16 && cols_ == 16) {                                                                      \
            TILE_STORE(I, dst_, (size_t)N * 4);                                                                \
        } else {                                                                                               \
            TILE_STORE_BLOCK(I, tmp);                                                                          \
            for (int r_ = 0; r_ < rows_; r_++) memcpy(dst_ + (size_t)r_ * (size_t)N, tmp + 16 * r_, (size_t)cols_ * 4); \
        }                                                                                                      \
    } while (0)

/* Rows [n0, n1): panels of ROWS_BF16 rows are packed once; then every
 * block of 32 tokens runs against each 32-row part of the panel, so the
 * tokens' A tiles are read from memory once per panel and from the cache
 * for its other parts (and the panel, 256 KiB - 768 KiB for Qwen3's K,
 * stays in L2 for all the tokens). */
#define ROWS_BF16 128

TGT void fs_amx_gemm_bf16(fs_cpu *f, const void *W, float *y, int T, int K, int N, int n0, int n1, int tid) {
    uint8_t *pk = f->tpack + (size_t)tid * f->tpack_stride;
    int Kp = f->xs_K, steps = Kp / 32;   /* the split's row length: K rounded up to 32 */
    float *tmp = (float *)(pk + (size_t)Kp * 2 * ROWS_BF16);
    size_t part = (size_t)f->xs_T * (size_t)Kp, lda = (size_t)Kp * 2, rb_bytes = (size_t)steps * 2048;
    const uint16_t *xs = f->xs;
    tile_config(&cfg_bf16);
    for (int n = n0; n < n1; n += ROWS_BF16) {
        int nr = n1 - n < ROWS_BF16 ? n1 - n : ROWS_BF16;
        for (int r = 0; r < nr; r += 32) pack_bf16(W, K, N, n + r, Kp, pk + (size_t)(r / 32) * rb_bytes);
        FENCE();
        for (int t0 = 0; t0 < T; t0 += 32) {
            int two = T - t0 > 16;   /* a second block of 16 tokens */
            const uint16_t *a = xs + (size_t)t0 * (size_t)Kp;
            for (int r = 0; r < nr; r += 32) {
                const uint8_t *b = pk + (size_t)(r / 32) * rb_bytes;
                TILE_ZERO(0);
                TILE_ZERO(1);
                TILE_ZERO(2);
                TILE_ZERO(3);
                for (int s = 0; s < steps; s++, b += 2048) {
                    TILE_LOAD(6, b, 64);
                    TILE_LOAD(7, b + 1024, 64);
                    for (int p = 0; p < 3; p++) {   /* hi, mid, lo: the same B tiles */
                        const uint16_t *ap = a + p * part + (size_t)s * 32;
                        TILE_LOAD(4, ap, lda);
                        TDPBF16PS(0, 4, 6);
                        TDPBF16PS(1, 4, 7);
                        if (two) {
                            TILE_LOAD(5, ap + 16 * (size_t)Kp, lda);
                            TDPBF16PS(2, 5, 6);
                            TDPBF16PS(3, 5, 7);
                        }
                    }
                }
                STORE_C(0, t0, n + r);
                STORE_C(1, t0, n + r + 16);
                if (two) {
                    STORE_C(2, t0 + 16, n + r);
                    STORE_C(3, t0 + 16, n + r + 16);
                }
            }
        }
    }
    tile_release();
}

/* ---- Q8_0 / Q4_0 ---- */

/* Pack rows [n, n + 16) - x8 groups g = n / 8 and g + 1 - into per-block
 * B tiles (512 bytes: 8 rows of 16 weight rows x 4 k) and their 16 scales
 * as f32 (64 bytes), 576 bytes per block. A missing second group is zeros. */
static TGT void pack_q(const uint8_t *W, fs_dtype dt, int N, int K, int n, uint8_t *pk) {
    int nb = K / FS_QK;
    int64_t G = N / 8, g = n / 8;
    size_t sbytes = fs_x8_super_bytes(dt);
    const __m256i low4 = _mm256_set1_epi8(15), eight = _mm256_set1_epi8(8);
    for (int b = 0; b < nb; b++) {
        uint8_t *tile = pk + (size_t)b * 576;
        float *dw = (float *)(tile + 512);
        for (int h = 0; h < 2; h++) {
            if (g + h >= G) {
                for (int r = 0; r < 8; r++) memset(tile + 64 * r + 32 * h, 0, 32);
                memset(dw + 8 * h, 0, 32);
                continue;
            }
            const uint8_t *sb = W + fs_x8_index(G, nb, g + h, b) * sbytes;
            _mm256_storeu_ps(dw + 8 * h, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)));
            if (dt == FS_DTYPE_Q8_0) {
                for (int r = 0; r < 8; r++) memcpy(tile + 64 * r + 32 * h, sb + 16 + 32 * r, 32);
            } else {
                for (int j = 0; j < 4; j++) {   /* quad j: low nibbles k 4j.., high nibbles k 16 + 4j.. */
                    __m256i v = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * j));
                    __m256i lo = _mm256_sub_epi8(_mm256_and_si256(v, low4), eight);
                    __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), eight);
                    _mm256_storeu_si256((__m256i *)(tile + 64 * j + 32 * h), lo);
                    _mm256_storeu_si256((__m256i *)(tile + 64 * (j + 4) + 32 * h), hi);
                }
            }
        }
    }
}

/* Block b's tile work for tokens t0..t0+15 and the 16 rows packed at pq:
 * tile C = tile A . tile B, stored to the 1 KiB block tmp + C KiB (C, A,
 * B: tile numbers, literal in the instructions). */
#define BLOCK_TILES(C, A, B, b)                                                                                \
    do {                                                                                                       \
        TILE_ZERO(C);                                                                                          \
        TILE_LOAD(A, x[(size_t)t0 * nbs + (size_t)(b)].qs, lda);                                               \
        TILE_LOAD(B, pq + (size_t)(b) * 576, 64);                                                              \
        TDPBSSD(C, A, B);                                                                                      \
        TILE_STORE_BLOCK(C, tmp + (C) * 256);                                                                  \
    } while (0)

/* One 16-row part of a panel for tokens t0 .. t0 + rows - 1 (rows <= R,
 * R a constant at each call: 4, 8, 12 or 16): the tile unit runs block
 * b + 1 while this thread scales block b into f32 accumulators, one per
 * token - only the R rows that can hold tokens (with 8 streams a step,
 * half the tile's rows are empty, and scaling them was half the work). */
static inline __attribute__((always_inline)) TGT void part_q(const fs_block_q8_0 *x, const fs_q8_0_sum *xs,
                                                            const uint8_t *pq, int32_t *tmp, float *yr, size_t N,
                                                            int t0, int rows, int cols, int nb, const int R) {
    size_t nbs = (size_t)nb, lda = nbs * sizeof(fs_block_q8_0);
    __mmask16 cm = (__mmask16)((1u << cols) - 1);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512 a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
    BLOCK_TILES(0, 2, 4, 0);
    for (int b = 0; b < nb; b++) {
        if (b + 1 < nb) {
            if ((b + 1) & 1) BLOCK_TILES(1, 3, 5, b + 1);
            else BLOCK_TILES(0, 2, 4, b + 1);
        }
        const int32_t *S = tmp + (b & 1) * 256;
        __m512 dw = _mm512_loadu_ps((const float *)(pq + (size_t)b * 576 + 512));
        const fs_q8_0_sum *xb = xs + (size_t)t0 * nbs + (size_t)b;
#define ROW(i)                                                                                                 \
    if ((i) < R)                                                                                               \
        a##i = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)(S + 16 * (i)))),           \
                               _mm512_mul_ps(dw, _mm512_set1_ps(xb[(size_t)(i) * nbs].d)), a##i);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
        ROW(8) ROW(9) ROW(10) ROW(11) ROW(12) ROW(13) ROW(14) ROW(15)
#undef ROW
    }
    __m512 acc[16] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15};
    for (int i = 0; i < rows; i++) _mm512_mask_storeu_ps(yr + (size_t)i * N, cm, acc[i]);
}

/* Panels of ROWS_Q rows (4 pairs of x8 groups) are packed once; every 16
 * tokens then run against each 16-row part, so the tokens' A tiles come
 * from the cache after the first part. */
#define ROWS_Q 64

TGT void fs_amx_gemm_q(fs_cpu *f, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                       int tid) {
    uint8_t *pk = f->tpack + (size_t)tid * f->tpack_stride;
    int nb = K / FS_QK;
    size_t part_bytes = (size_t)nb * 576;
    int32_t *tmp = (int32_t *)(pk + part_bytes * (ROWS_Q / 16));
    tile_config(&cfg_int8);
    for (int n = n0; n < n1; n += ROWS_Q) {
        int nr = n1 - n < ROWS_Q ? n1 - n : ROWS_Q;
        for (int r = 0; r < nr; r += 16) pack_q(W, dt, N, K, n + r, pk + (size_t)(r / 16) * part_bytes);
        FENCE();
        for (int t0 = 0; t0 < T; t0 += 16) {
            int rows = T - t0 < 16 ? T - t0 : 16;
            for (int r = 0; r < nr; r += 16) {
                const uint8_t *pq = pk + (size_t)(r / 16) * part_bytes;
                int cols = N - (n + r) < 16 ? N - (n + r) : 16;
                float *yr = y + (size_t)t0 * (size_t)N + (size_t)(n + r);
                if (rows <= 4) part_q(f->qx, f->qxs, pq, tmp, yr, (size_t)N, t0, rows, cols, nb, 4);
                else if (rows <= 8) part_q(f->qx, f->qxs, pq, tmp, yr, (size_t)N, t0, rows, cols, nb, 8);
                else if (rows <= 12) part_q(f->qx, f->qxs, pq, tmp, yr, (size_t)N, t0, rows, cols, nb, 12);
                else part_q(f->qx, f->qxs, pq, tmp, yr, (size_t)N, t0, rows, cols, nb, 16);
            }
        }
    }
    tile_release();
}

#else /* no AMX here: never called (fs_cpu_detect never sets amx) */

void fs_amx_config_roundtrip(uint8_t out[64]) { memset(out, 0, 64); }
void fs_amx_gemm_bf16(fs_cpu *f, const void *W, float *y, int T, int K, int N, int n0, int n1, int tid) {
    (void)f, (void)W, (void)y, (void)T, (void)K, (void)N, (void)n0, (void)n1, (void)tid;
}
void fs_amx_gemm_q(fs_cpu *f, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                   int tid) {
    (void)f, (void)W, (void)dt, (void)y, (void)T, (void)K, (void)N, (void)n0, (void)n1, (void)tid;
}

#endif
