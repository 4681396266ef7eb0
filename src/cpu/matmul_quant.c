/* matmul_quant.c - the linear layer with Q8_0 / Q4_0 weights, y = x W^T.
 *
 *   y[t, n] = sum_k x[t, k] * W[n, k]     x: [T, K] f32   W: [N, K] Q8_0 or Q4_0   y: [T, N] f32
 *
 * First x is quantized to Q8_0, one row per token (quant_cpu.c): 32 int8 per
 * block plus one scale. Then every output is a sum over blocks b of
 *   d_w[n, b] * d_x[t, b] * S[n, t, b],   S = sum of 32 int8 x int8 products
 * where S is exact integer arithmetic and only the block sum is f32.
 *
 * Decode (T < FS_GEMM_MIN_T): every weight byte is read once per token,
 * so the job is to stream W with little work per byte. With the AVX2 (or
 * NEON) kernels the backend stored W interleaved by 8 rows at upload (x8,
 * repack.c) and x8_groups below computes 8 rows per step with the integer
 * tile of the prefill GEMM (one token) - with AVX2, AVX-VNNI or AVX-512
 * (matmul_avx512.c), whichever the decode plan says (tune_cpu.c), with its
 * prefetch. Otherwise (N % 8 != 0, or another
 * ISA) threads split the rows and quant_cpu.c's row kernels dot each row
 * with each token.
 *
 * Prefill (T >= FS_GEMM_MIN_T, AVX2): a GEMM on integer tiles (and with
 * AMX, for T >= fs_amx_min_t(f, dtype), on the matrix unit's tiles: matmul_amx.c;
 * with AVX-512 VNNI, 16-row panels on 512-bit vpdpbusd: matmul_avx512.c;
 * what follows is the 256-bit form of the same idea). The idea is
 * the one of the f32 GEMM (matmul_float.c) - unpack a panel of weights once,
 * reuse it for every token - with int8 products instead of f32 FMAs:
 *
 *   pack   8 weight rows, all of K, are unpacked (Q4_0 nibbles -> bytes
 *          0..15) and interleaved so that one 32-byte vector holds 4
 *          consecutive k of each of the 8 rows (a "quad" per row):
 *             pq[b][j] = row0 k4j..4j+3 | row1 k4j..4j+3 | ... | row7
 *          plus the 8 rows' scales of block b as f32: pd[b][0..7].
 *   tile   for NT tokens at a time and each block b, 8 steps j:
 *             xq = token t's 4 bytes k4j..4j+3, broadcast to all 8 lanes
 *             acc[t] += maddubs(pq[b][j], xq)     (int16 pair sums)
 *          lane r of acc[t] then holds the products of row r only, so
 *          after the block one madd (pairs -> int32) gives the 8 rows' S,
 *          which are converted to f32 and scaled by pd[b] * d_x[t, b].
 *          The 8 lanes are 8 output rows: the tile ends with one 8-float
 *          store per token, and no horizontal sums at all.
 *
 * _mm256_maddubs_epi16 multiplies unsigned bytes by signed bytes, so:
 *   Q4_0: the weights are stored as q in 0..15 (w = q - 8): maddubs(q, x)
 *         is exact and sum (q - 8) x = sum q x - 8 sum x, with 8 sum x one
 *         integer per (token, block) computed with the quantization of x.
 *         A pair sum is at most 2 * 15 * 127 = 3810, so the 8 steps of a
 *         block add up in int16 (8 * 3810 < 32767).
 *   Q8_0: the weights are signed; the sign trick of quant_cpu.c (|w| times x
 *         with w's sign) is applied per step, and each step widens to
 *         int32 (a pair sum can reach 2 * 128 * 127 = 32512).
 *
 * Per 32 multiply-adds of one row and token, the Q4_0 tile spends about 2
 * instructions (maddubs + add) where the row-by-row dot product spends 10.
 *
 * On aarch64 the same x8 layout and the same packed panels run on NEON,
 * with sdot and smmla where the CPU has them (matmul_quant_neon.c); this
 * file only picks those kernels.
 *
 * Docs: docs/quantization.md
 */
#include <string.h>

#include "cpu_backend.h"

/* Rows per packed panel: one AVX2 register holds a 4-byte quad of each. */
#define QP_ROWS 8
/* Tokens per register tile: NT int16 + NT f32 accumulators (+ the weight
 * quad, the broadcast and the constants) fit AVX2's 16 registers. */
#define QP_NT 4


/* ---- decode: row by row ---- */

/* Rows [n0, n1) against every token (quant_cpu.c's many-rows dot products). */
static void rows_dot(const fs_quant_job *j, int n0, int n1) {
    size_t row_bytes = fs_dtype_row_bytes(j->dt, j->K), nb = (size_t)j->K / FS_QK;
    const void *wr = (const char *)j->W + (size_t)n0 * row_bytes;
    for (int t = 0; t < j->T; t++) {
        float *y = j->y + (size_t)t * (size_t)j->N + (size_t)n0;
        const fs_block_q8_0 *x = j->f->qx + (size_t)t * nb;
        const fs_q8_0_sum *xs = j->f->qxs + (size_t)t * nb;
        if (j->dt == FS_DTYPE_Q8_0) fs_cpu_dot_rows_q8_0(j->f->isa, j->K, wr, n1 - n0, x, xs, y);
        else fs_cpu_dot_rows_q4_0(j->f->isa, j->K, wr, n1 - n0, x, xs, y);
    }
}

/* The rows n0 .. n1 - 1 of chunk `chunk` (j->rows each, the last cut at N). */
static void chunk_rows(const fs_quant_job *j, int chunk, int *n0, int *n1) {
    *n0 = chunk * j->rows;
    *n1 = *n0 + j->rows < j->N ? *n0 + j->rows : j->N;
}

static void rows_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    const fs_quant_job *j = arg;
    int n0, n1;
    chunk_rows(j, chunk, &n0, &n1);
    rows_dot(j, n0, n1);
}

/* ---- decode with x8 weights ---- */

/* Portable version: groups [g0, g1) of 8 rows, token t. The same integer
 * block sums as the AVX2 kernel below; it documents the layout and runs
 * when the kernels are switched to scalar after the upload (tests). */
static void x8_groups_scalar(const fs_quant_job *j, int t, int g0, int g1) {
    int nb = j->K / FS_QK, q4 = j->dt == FS_DTYPE_Q4_0;
    size_t sbytes = fs_x8_super_bytes(j->dt);
    const fs_block_q8_0 *x = j->f->qx + (size_t)t * (size_t)nb;
    for (int g = g0; g < g1; g++) {
        float acc[8] = {0};
        for (int b = 0; b < nb; b++) {
            const uint8_t *sb = (const uint8_t *)j->W + fs_x8_index(j->N / 8, nb, g, b) * sbytes;
            for (int r = 0; r < 8; r++) {
                int sumi = 0;
                const uint8_t *q = sb + 16 + 4 * r;
                for (int jj = 0; jj < (q4 ? 4 : 8); jj++)
                    for (int i = 0; i < 4; i++) {
                        if (q4) {
                            sumi += ((q[32 * jj + i] & 15) - 8) * x[b].qs[4 * jj + i];
                            sumi += ((q[32 * jj + i] >> 4) - 8) * x[b].qs[16 + 4 * jj + i];
                        } else {
                            sumi += (int8_t)q[32 * jj + i] * x[b].qs[4 * jj + i];
                        }
                    }
                uint16_t h;
                memcpy(&h, sb + 2 * r, 2);
                acc[r] += (float)sumi * (fs_f16_to_f32(h) * fs_f16_to_f32(x[b].d));
            }
        }
        memcpy(j->y + (size_t)t * (size_t)j->N + (size_t)g * 8, acc, sizeof acc);
    }
}

static void x8_groups(const fs_quant_job *j, int t, int g0, int g1);
static void x8_groups_vnni(const fs_quant_job *j, int t, int g0, int g1);

static void x8_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    const fs_quant_job *j = arg;
    int n0, n1;
    chunk_rows(j, chunk, &n0, &n1);
    int kernel = j->f->isa == FS_ISA_AVX2 || j->f->isa == FS_ISA_NEON ? fs_cpu_decode_kernel(j->f, j->dt) : -1;
    for (int t = 0; t < j->T; t++) {
        switch (kernel) {
        case FS_DK_AVX512: fs_x8_avx512(j, t, n0 / 8, n1 / 8); break;
        case FS_DK_VNNI: x8_groups_vnni(j, t, n0 / 8, n1 / 8); break;
        case FS_DK_AVX2: x8_groups(j, t, n0 / 8, n1 / 8); break;
#if defined(__ARM_NEON) && defined(__aarch64__)
        case FS_DK_NEON: fs_x8_neon(j, t, n0 / 8, n1 / 8, 0); break;
        case FS_DK_DOTPROD: fs_x8_neon(j, t, n0 / 8, n1 / 8, 1); break;
#endif
        default: x8_groups_scalar(j, t, n0 / 8, n1 / 8); break;
        }
    }
}

/* ---- prefill: packed integer GEMM (AVX2) ---- */

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TGT

/* 8 x 8 transpose of 32-bit elements: in[r] holds row r's 8 quads, out[j]
 * gets quad j of rows 0..7 (the same unpack / shuffle / permute sequence as
 * the f32 panel pack in matmul_avx2.c; the bytes are just carried along). */
INL void transpose8(const __m256i in[8], __m256i out[8]) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_castsi256_ps(in[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    u[0] = _mm256_shuffle_ps(t[0], t[2], 0x44), u[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
    u[2] = _mm256_shuffle_ps(t[1], t[3], 0x44), u[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
    u[4] = _mm256_shuffle_ps(t[4], t[6], 0x44), u[5] = _mm256_shuffle_ps(t[4], t[6], 0xEE);
    u[6] = _mm256_shuffle_ps(t[5], t[7], 0x44), u[7] = _mm256_shuffle_ps(t[5], t[7], 0xEE);
    for (int i = 0; i < 4; i++) {
        out[i] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        out[i + 4] = _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
}

/* Pack rows n .. n+7 (all K) into pq / pd, the layout described at the top. */
static TGT void pack_panel(const void *W, fs_dtype dt, int K, int n, uint8_t *pq, float *pd) {
    int nb = K / FS_QK;
    size_t row_bytes = fs_dtype_row_bytes(dt, K);
    const uint8_t *base = (const uint8_t *)W + (size_t)n * row_bytes;
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int b = 0; b < nb; b++) {
        __m256i v[8], q[8];
        for (int r = 0; r < QP_ROWS; r++) {
            const uint8_t *row = base + (size_t)r * row_bytes;
            if (dt == FS_DTYPE_Q4_0) {
                const fs_block_q4_0 *blk = (const fs_block_q4_0 *)row + b;
                __m128i raw = _mm_loadu_si128((const __m128i *)blk->qs);
                /* low nibbles are k 0..15, high nibbles k 16..31 */
                __m256i both = _mm256_insertf128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
                v[r] = _mm256_and_si256(both, low4);
                pd[(size_t)b * QP_ROWS + (size_t)r] = _cvtsh_ss(blk->d);
            } else {
                const fs_block_q8_0 *blk = (const fs_block_q8_0 *)row + b;
                v[r] = _mm256_loadu_si256((const __m256i *)blk->qs);
                pd[(size_t)b * QP_ROWS + (size_t)r] = _cvtsh_ss(blk->d);
            }
        }
        transpose8(v, q);
        for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)(pq + ((size_t)b * 8 + (size_t)j) * 32), q[j]);
    }
}

/* The same panel from x8 weights: the quads are already interleaved, so
 * packing only unpacks Q4_0's nibbles and widens the scales. */
static TGT void pack_panel_x8(const void *W, fs_dtype dt, int N, int K, int n, uint8_t *pq, float *pd) {
    int nb = K / FS_QK;
    size_t sbytes = fs_x8_super_bytes(dt);
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int b = 0; b < nb; b++) {
        const uint8_t *sb = (const uint8_t *)W + fs_x8_index(N / 8, nb, n / 8, b) * sbytes;
        _mm256_storeu_ps(pd + (size_t)b * 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)));
        uint8_t *p = pq + (size_t)b * 256;
        if (dt == FS_DTYPE_Q4_0)
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * j));
                _mm256_storeu_si256((__m256i *)(p + 32 * j), _mm256_and_si256(v, low4));
                _mm256_storeu_si256((__m256i *)(p + 32 * (j + 4)), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
            }
        else memcpy(p, sb + 16, 256);
    }
}

/* The decode plan's prefetch (cpu_backend.h) of address p; hint is a
 * constant at every call, so only one case is compiled in. */
#define PREFETCH(p, hint)                                                                                      \
    do {                                                                                                       \
        if ((hint) == FS_PF_T0) _mm_prefetch((p), _MM_HINT_T0);                                                 \
        else if ((hint) == FS_PF_NTA) _mm_prefetch((p), _MM_HINT_NTA);                                          \
    } while (0)
/* Both of the plan's prefetches for the bytes at p: the near one at p +
 * ahead, the far one into L2 at p + far (where far is not 0). */
#define PREFETCH_AT(p, hint, ahead, far)                                                                       \
    do {                                                                                                       \
        PREFETCH((p) + (ahead), hint);                                                                         \
        if (far) _mm_prefetch((p) + (far), _MM_HINT_T1);                                                       \
    } while (0)

/* 4 bytes at p as one int32, broadcast to 8 lanes. */
INL __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* One superblock's 8 integer sums with AVX2 (Q4_0: minus 8 sum x). Q4_0
 * sums its maddubs pairs in int16, in two accumulators (low and high
 * nibbles) so two short chains run side by side; Q8_0 widens each step. */
INL __m256i sums_avx2(int q4, const uint8_t *sb, const int8_t *xq, int32_t sx) {
    const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    if (q4) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0;
        for (int q = 0; q < 4; q++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_and_si256(v, low4), bcast4(xq + 4 * q)));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4),
                                                           bcast4(xq + 16 + 4 * q)));
        }
        /* 4 x 3810 per accumulator, and their sum 8 x 3810 < 32767 */
        return _mm256_sub_epi32(_mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones), _mm256_set1_epi32(8 * sx));
    }
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    for (int q = 0; q < 8; q += 2) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
        __m256i w = _mm256_loadu_si256((const __m256i *)(sb + 48 + 32 * q));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v, v),
                                                                         _mm256_sign_epi8(bcast4(xq + 4 * q), v)), ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w),
                                                                         _mm256_sign_epi8(bcast4(xq + 4 * q + 4), w)), ones));
    }
    return _mm256_add_epi32(s0, s1);
}

/* The same sums for the two groups of a pair (repack.c stores their
 * superblocks of a block column side by side, sa and sb): x's broadcast
 * quads are loaded once for both, and the two groups' chains (low / high
 * nibbles, even / odd quads) run side by side. */
INL void sums2_avx2(int q4, const uint8_t *sa, const uint8_t *sb, const int8_t *xq, int32_t sx, __m256i *ra,
                    __m256i *rb) {
    const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
    if (q4) {
        for (int q = 0; q < 4; q++) {
            __m256i xl = bcast4(xq + 4 * q), xh = bcast4(xq + 16 + 4 * q);
            __m256i v = _mm256_loadu_si256((const __m256i *)(sa + 16 + 32 * q));
            __m256i w = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
            a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(_mm256_and_si256(v, low4), xl));
            a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), xh));
            b0 = _mm256_add_epi16(b0, _mm256_maddubs_epi16(_mm256_and_si256(w, low4), xl));
            b1 = _mm256_add_epi16(b1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 4), low4), xh));
        }
        __m256i s8 = _mm256_set1_epi32(8 * sx);   /* as sums_avx2: 8 x 3810 < 32767 */
        *ra = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_add_epi16(a0, a1), ones), s8);
        *rb = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_add_epi16(b0, b1), ones), s8);
        return;
    }
    for (int q = 0; q < 8; q += 2) {
        __m256i x0 = bcast4(xq + 4 * q), x1 = bcast4(xq + 4 * q + 4);
        __m256i v = _mm256_loadu_si256((const __m256i *)(sa + 16 + 32 * q));
        __m256i v1 = _mm256_loadu_si256((const __m256i *)(sa + 48 + 32 * q));
        __m256i w = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(sb + 48 + 32 * q));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(x0, v)), ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(x1, v1)), ones));
        b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x0, w)), ones));
        b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x1, w1)), ones));
    }
    *ra = _mm256_add_epi32(a0, a1);
    *rb = _mm256_add_epi32(b0, b1);
}

/* Decode from x8 weights: groups [g0, g1) of 8 rows against token t.
 * Groups are stored in pairs (repack.c), so a pair is one sequential
 * stream of 288-byte (Q4_0) steps, and SUMS2 computes both groups'
 * superblocks of a block column with x loaded once: per superblock (8
 * rows x 32 weights) the Q4_0 kernel loads 4 vectors, unpacks each into 2
 * quad vectors (and, shift + and) and multiplies each with the broadcast
 * quad of x (maddubs), summing in int16; one madd widens, 8 sum x is
 * subtracted, and one FMA with the 8 scales finishes the block. Sharing
 * x between the two groups halves the loads and broadcasts of x (measured
 * faster both from memory and in cache, docs/bench.md). A group without
 * its partner in [g0, g1) (the last one when N / 8 is odd) runs alone, two
 * blocks per step into two accumulators so the dependency chains stay
 * short. The weights are prefetched ahead as the dtype's decode plan says
 * (cpu_backend.h; NAME##_hint has the hint as a constant, NAME picks it).
 * The same driver runs the AVX-VNNI kernels below; SUMS / SUMS2 are the
 * superblock kernels (sums_avx2 / sums2_avx2, sums_vnni / sums2_vnni). */
#define X8_GROUPS(NAME, TARGET, SUMS, SUMS2)                                                                   \
    static inline __attribute__((always_inline)) TARGET void NAME##_hint(const fs_quant_job *j, int t, int g0,       \
                                                                         int g1, const int hint, size_t ahead,       \
                                                                         size_t far) {                               \
        int nb = j->K / FS_QK, q4 = j->dt == FS_DTYPE_Q4_0;                                                    \
        int64_t G = j->N / 8;                                                                                  \
        size_t sbytes = fs_x8_super_bytes(j->dt);                                                              \
        const fs_block_q8_0 *x = j->f->qx + (size_t)t * (size_t)nb;                                               \
        const fs_q8_0_sum *xs = j->f->qxs + (size_t)t * (size_t)nb;                                                \
        float *y = j->y + (size_t)t * (size_t)j->N;                                                            \
        for (int g = g0; g < g1;) {                                                                            \
            const uint8_t *sb = (const uint8_t *)j->W + fs_x8_index(G, nb, g, 0) * sbytes;                     \
            __m256 acc = _mm256_setzero_ps(), acc1 = acc;                                                      \
            if (g % 2 == 0 && g + 1 < g1) { /* a pair */                                                       \
                for (int b = 0; b < nb; b++, sb += 2 * sbytes) {                                               \
                    for (size_t o = 0; o < 2 * sbytes; o += 64)                                                \
                        PREFETCH_AT((const char *)sb + o, hint, ahead, far);                                           \
                    __m256i s, s1;                                                                             \
                    if (q4) SUMS2(1, sb, sb + sbytes, x[b].qs, xs[b].s, &s, &s1);                              \
                    else SUMS2(0, sb, sb + sbytes, x[b].qs, 0, &s, &s1);                                       \
                    __m256 dx = _mm256_set1_ps(xs[b].d);                                                       \
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),                                               \
                                          _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb)), dx), acc); \
                    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1),                                             \
                                           _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + sbytes))), dx), acc1); \
                }                                                                                              \
                _mm256_storeu_ps(y + (size_t)g * 8, acc);                                                      \
                _mm256_storeu_ps(y + (size_t)g * 8 + 8, acc1);                                                 \
                g += 2;                                                                                        \
                continue;                                                                                      \
            }                                                                                                  \
            /* one group: its superblocks are step bytes apart (2 superblocks if it has a partner) */        \
            size_t step = (fs_x8_index(G, nb, g, 1) - fs_x8_index(G, nb, g, 0)) * sbytes;                     \
            int b = 0;                                                                                         \
            for (; b + 2 <= nb; b += 2, sb += 2 * step) { /* two blocks, two accumulators */                   \
                for (size_t o = 0; o < 2 * step; o += 64)                                                      \
                    PREFETCH_AT((const char *)sb + o, hint, ahead, far);                                               \
                __m256i s = q4 ? SUMS(1, sb, x[b].qs, xs[b].s) : SUMS(0, sb, x[b].qs, 0);                      \
                __m256i s1 = q4 ? SUMS(1, sb + step, x[b + 1].qs, xs[b + 1].s) : SUMS(0, sb + step, x[b + 1].qs, 0); \
                __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb));                             \
                __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + step)));                   \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(xs[b].d)), acc); \
                acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(dw1, _mm256_set1_ps(xs[b + 1].d)), acc1); \
            }                                                                                                  \
            for (; b < nb; b++, sb += step) {                                                                  \
                for (size_t o = 0; o < step; o += 64)                                                          \
                    PREFETCH_AT((const char *)sb + o, hint, ahead, far);                                               \
                __m256i s = q4 ? SUMS(1, sb, x[b].qs, xs[b].s) : SUMS(0, sb, x[b].qs, 0);                      \
                __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)sb));                             \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(xs[b].d)), acc); \
            }                                                                                                  \
            _mm256_storeu_ps(y + (size_t)g * 8, _mm256_add_ps(acc, acc1));                                     \
            g++;                                                                                               \
        }                                                                                                      \
    }                                                                                                          \
    static TARGET void NAME(const fs_quant_job *j, int t, int g0, int g1) {                                        \
        const fs_cpu_plan *p = &j->f->plan[j->dt];                                                             \
        switch (p->prefetch) {                                                                                 \
        case FS_PF_T0: NAME##_hint(j, t, g0, g1, FS_PF_T0, (size_t)p->ahead, (size_t)p->far); break;           \
        case FS_PF_NTA: NAME##_hint(j, t, g0, g1, FS_PF_NTA, (size_t)p->ahead, (size_t)p->far); break;         \
        default: NAME##_hint(j, t, g0, g1, FS_PF_NONE, 0, (size_t)p->far); break;                              \
        }                                                                                                      \
    }

/* (q4 is tested outside SUMS so that each call has a constant q4 and its
 * own loop.) The one driver is a macro because each kernel set needs its
 * own compiled copy: the VNNI superblock kernel can only be inlined into a
 * function compiled for AVX-VNNI. */
X8_GROUPS(x8_groups, TGT, sums_avx2, sums2_avx2)

/* The same with AVX-VNNI: vpdpbusd multiplies unsigned by signed bytes and
 * adds each group of 4 products straight into an int32 lane, so one
 * instruction replaces maddubs + the int16 add (+ the final madd). The
 * accumulator starts at -8 sum x (Q4_0's offset). Q8_0 keeps the sign
 * trick. Per Q4_0 superblock: 8 dpbusd instead of 8 maddubs + 8 adds + 1
 * madd, ~25% fewer instructions, which matters where the Q4_0 decode
 * matmuls are compute-bound rather than memory-bound (docs/bench.md,
 * docs/quantization.md). */
#if FS_HAVE_VNNI_TARGET
#define TGT_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
/* One superblock's 8 integer sums: Q4_0 (minus 8 sum x) or Q8_0. The
 * high nibbles need no shift here: vpdpbusd sums in int32 without
 * saturating, so (v & 0xf0) = 16 q_hi goes in as it is and the sum is
 * divided by 16 (exactly, an arithmetic shift) once per superblock - one
 * instruction instead of four. The vpdpbusd go into two accumulators (low
 * / high nibbles, even / odd quads) so that two chains of 4 (Q8_0: 4)
 * dependent instructions run side by side instead of one of 8, and the
 * caller takes two blocks per step into two f32 accumulators: short
 * dependency chains keep the multiply units busy when the weights come
 * from cache (measured, docs/bench.md). */
static inline __attribute__((always_inline)) TGT_VNNI __m256i sums_vnni(int q4, const uint8_t *sb, const int8_t *xq,
                                                                       int32_t sx) {
    const __m256i low4 = _mm256_set1_epi8(15);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    if (q4) {
        const __m256i high4 = _mm256_set1_epi8((char)0xf0);
        s0 = _mm256_set1_epi32(-8 * sx);
        for (int q = 0; q < 4; q++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
            s0 = _mm256_dpbusd_avx_epi32(s0, _mm256_and_si256(v, low4), bcast4(xq + 4 * q));
            s1 = _mm256_dpbusd_avx_epi32(s1, _mm256_and_si256(v, high4), bcast4(xq + 16 + 4 * q));
        }
        return _mm256_add_epi32(s0, _mm256_srai_epi32(s1, 4));
    } else {
        for (int q = 0; q < 8; q += 2) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
            __m256i w = _mm256_loadu_si256((const __m256i *)(sb + 48 + 32 * q));
            s0 = _mm256_dpbusd_avx_epi32(s0, _mm256_sign_epi8(v, v), _mm256_sign_epi8(bcast4(xq + 4 * q), v));
            s1 = _mm256_dpbusd_avx_epi32(s1, _mm256_sign_epi8(w, w), _mm256_sign_epi8(bcast4(xq + 4 * q + 4), w));
        }
    }
    return _mm256_add_epi32(s0, s1);
}

/* sums2_avx2 with vpdpbusd (see sums_vnni). */
static inline __attribute__((always_inline)) TGT_VNNI void sums2_vnni(int q4, const uint8_t *sa, const uint8_t *sb,
                                                                     const int8_t *xq, int32_t sx, __m256i *ra,
                                                                     __m256i *rb) {
    const __m256i low4 = _mm256_set1_epi8(15);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
    if (q4) {
        const __m256i high4 = _mm256_set1_epi8((char)0xf0);
        a0 = b0 = _mm256_set1_epi32(-8 * sx);
        for (int q = 0; q < 4; q++) {
            __m256i xl = bcast4(xq + 4 * q), xh = bcast4(xq + 16 + 4 * q);
            __m256i v = _mm256_loadu_si256((const __m256i *)(sa + 16 + 32 * q));
            __m256i w = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
            a0 = _mm256_dpbusd_avx_epi32(a0, _mm256_and_si256(v, low4), xl);
            a1 = _mm256_dpbusd_avx_epi32(a1, _mm256_and_si256(v, high4), xh);
            b0 = _mm256_dpbusd_avx_epi32(b0, _mm256_and_si256(w, low4), xl);
            b1 = _mm256_dpbusd_avx_epi32(b1, _mm256_and_si256(w, high4), xh);
        }
        *ra = _mm256_add_epi32(a0, _mm256_srai_epi32(a1, 4));
        *rb = _mm256_add_epi32(b0, _mm256_srai_epi32(b1, 4));
        return;
    }
    for (int q = 0; q < 8; q += 2) {
        __m256i x0 = bcast4(xq + 4 * q), x1 = bcast4(xq + 4 * q + 4);
        __m256i v = _mm256_loadu_si256((const __m256i *)(sa + 16 + 32 * q));
        __m256i v1 = _mm256_loadu_si256((const __m256i *)(sa + 48 + 32 * q));
        __m256i w = _mm256_loadu_si256((const __m256i *)(sb + 16 + 32 * q));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(sb + 48 + 32 * q));
        a0 = _mm256_dpbusd_avx_epi32(a0, _mm256_sign_epi8(v, v), _mm256_sign_epi8(x0, v));
        a1 = _mm256_dpbusd_avx_epi32(a1, _mm256_sign_epi8(v1, v1), _mm256_sign_epi8(x1, v1));
        b0 = _mm256_dpbusd_avx_epi32(b0, _mm256_sign_epi8(w, w), _mm256_sign_epi8(x0, w));
        b1 = _mm256_dpbusd_avx_epi32(b1, _mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x1, w1));
    }
    *ra = _mm256_add_epi32(a0, a1);
    *rb = _mm256_add_epi32(b0, b1);
}

X8_GROUPS(x8_groups_vnni, TGT_VNNI, sums_vnni, sums2_vnni)
#else
static void x8_groups_vnni(const fs_quant_job *j, int t, int g0, int g1) { x8_groups(j, t, g0, g1); }
#endif

/* 4 bytes of token i's block b at quad j, broadcast to 8 lanes. */
#define XQUAD(i, j) _mm256_set1_epi32(xquad(x + (size_t)(i) * xstride + (size_t)b, j))
INL int32_t xquad(const fs_block_q8_0 *blk, int j) {
    int32_t v;
    memcpy(&v, blk->qs + 4 * j, 4);
    return v;
}

/* nt (<= 4) tokens x 8 rows. x, xs: token i's blocks at + i * xstride;
 * y: token i's 8 outputs at y + i * ldy. */
INL void tile(const int q4, const int nt, const uint8_t *pq, const float *pd, int nb, const fs_block_q8_0 *x,
              size_t xstride, const fs_q8_0_sum *xs, float *y, size_t ldy) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 f0 = _mm256_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
    for (int b = 0; b < nb; b++) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        const uint8_t *pb = pq + (size_t)b * 256;
        for (int j = 0; j < 8; j++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(pb + 32 * j));
            if (q4) {
                /* w holds 0..15: unsigned as it is; int16 sums cannot overflow */
#define TOK(i) \
    if (nt > i) s##i = _mm256_add_epi16(s##i, _mm256_maddubs_epi16(w, XQUAD(i, j)));
                TOK(0) TOK(1) TOK(2) TOK(3)
#undef TOK
            } else {
                __m256i aw = _mm256_sign_epi8(w, w);
#define TOK(i)                                                                                      \
    if (nt > i)                                                                                     \
        s##i = _mm256_add_epi32(                                                                    \
            s##i, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(XQUAD(i, j), w)), ones));
                TOK(0) TOK(1) TOK(2) TOK(3)
#undef TOK
            }
        }
        __m256 dw = _mm256_loadu_ps(pd + (size_t)b * 8);
        /* Q4_0: int16 pairs -> int32, minus 8 * sum x; Q8_0: already int32 */
#define FIN(i)                                                                                           \
    if (nt > i) {                                                                                        \
        __m256i si = s##i;                                                                               \
        if (q4) si = _mm256_sub_epi32(_mm256_madd_epi16(si, ones), _mm256_set1_epi32(8 * xs[(size_t)(i) * xstride + (size_t)b].s)); \
        __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(xs[(size_t)(i) * xstride + (size_t)b].d));                          \
        f##i = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), d, f##i);                                         \
    }
        FIN(0) FIN(1) FIN(2) FIN(3)
#undef FIN
    }
    __m256 f[QP_NT] = {f0, f1, f2, f3};
    for (int i = 0; i < nt; i++) _mm256_storeu_ps(y + (size_t)i * ldy, f[i]);
}
#undef XQUAD

/* All tokens against the packed panel of rows n .. n+7. */
static TGT void panel_tokens(const fs_quant_job *j, const uint8_t *pq, const float *pd, int n) {
    int nb = j->K / FS_QK, q4 = j->dt == FS_DTYPE_Q4_0;
    size_t xstride = (size_t)nb, ldy = (size_t)j->N;
    for (int t = 0; t < j->T; t += QP_NT) {
        const fs_block_q8_0 *x = j->f->qx + (size_t)t * xstride;
        const fs_q8_0_sum *sx = j->f->qxs + (size_t)t * xstride;
        float *y = j->y + (size_t)t * ldy + (size_t)n;
        int nt = j->T - t < QP_NT ? j->T - t : QP_NT;
        /* q4 and nt are constants in each call, so each is its own loop */
        if (q4) switch (nt) {
            case 4: tile(1, 4, pq, pd, nb, x, xstride, sx, y, ldy); break;
            case 3: tile(1, 3, pq, pd, nb, x, xstride, sx, y, ldy); break;
            case 2: tile(1, 2, pq, pd, nb, x, xstride, sx, y, ldy); break;
            default: tile(1, 1, pq, pd, nb, x, xstride, sx, y, ldy); break;
            }
        else switch (nt) {
            case 4: tile(0, 4, pq, pd, nb, x, xstride, sx, y, ldy); break;
            case 3: tile(0, 3, pq, pd, nb, x, xstride, sx, y, ldy); break;
            case 2: tile(0, 2, pq, pd, nb, x, xstride, sx, y, ldy); break;
            default: tile(0, 1, pq, pd, nb, x, xstride, sx, y, ldy); break;
            }
    }
}

/* Thread tid's panel buffer for panels of `rows` rows: the packed quants,
 * and after them (*pd) the scales. */
static uint8_t *chunk_panel(const fs_quant_job *j, int tid, int rows, float **pd) {
    uint8_t *pq = (uint8_t *)j->f->qpack + (size_t)tid * j->f->qpack_stride;
    *pd = (float *)(pq + (size_t)j->K * rows);
    return pq;
}

/* With AVX-512 VNNI (and x8 weights): the pairs of x8 groups as 16-row
 * panels on 512-bit vpdpbusd (matmul_avx512.c), a last group alone (N / 8
 * odd) as an 8-row panel here. */
static void gemm512_chunk(void *arg, int chunk, int tid) {
    const fs_quant_job *j = arg;
    int n0, n1;
    chunk_rows(j, chunk, &n0, &n1);
    float *pd;
    uint8_t *pq = chunk_panel(j, tid, 2 * QP_ROWS, &pd);
    int n = n0;
    /* the next pair is prefetched even past the chunk: chunks are small
     * (8 a thread) and a thread takes its next one after this one */
    for (; n + 2 * QP_ROWS <= n1; n += 2 * QP_ROWS) fs_qgemm16_avx512(j, n, pq, pd, n + 4 * QP_ROWS <= j->N);
    if (n + QP_ROWS <= n1) {
        pack_panel_x8(j->W, j->dt, j->N, j->K, n, pq, pd);
        panel_tokens(j, pq, pd, n);
    }
}

static void gemm_chunk(void *arg, int chunk, int tid) {
    const fs_quant_job *j = arg;
    int n0, n1;
    chunk_rows(j, chunk, &n0, &n1);
    float *pd;
    uint8_t *pq = chunk_panel(j, tid, QP_ROWS, &pd);
    int n = n0;
    for (; n + QP_ROWS <= n1; n += QP_ROWS) {
        if (j->x8) pack_panel_x8(j->W, j->dt, j->N, j->K, n, pq, pd);
        else pack_panel(j->W, j->dt, j->K, n, pq, pd);
        panel_tokens(j, pq, pd, n);
    }
    rows_dot(j, n, n1);   /* the last N % 8 rows */
}
#define HAVE_QGEMM 1

/* Prefill on AMX tiles (matmul_amx.c). */
static void amx_chunk(void *arg, int chunk, int tid) {
    const fs_quant_job *j = arg;
    int n0, n1;
    chunk_rows(j, chunk, &n0, &n1);
    fs_amx_gemm_q(j->f, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1, tid);
}
#else
static void x8_groups(const fs_quant_job *j, int t, int g0, int g1) { x8_groups_scalar(j, t, g0, g1); }
static void x8_groups_vnni(const fs_quant_job *j, int t, int g0, int g1) { x8_groups_scalar(j, t, g0, g1); }
#endif

/* ---- the job ---- */

/* 16 rows: the 512-bit GEMM's panels (the 8-row ones use the first half) */
size_t fs_cpu_qpack_bytes(int K) { return (size_t)K * 2 * QP_ROWS + (size_t)(K / FS_QK) * 2 * QP_ROWS * sizeof(float); }

/* Quantize x [T, K] to Q8_0 (f->qx) with its per-block scales and sums
 * (f->qxs), once for all the quantized matmuls that read this x. */
void fs_cpu_quantize_input(fs_cpu *f, const float *x, int T, int K, unsigned dts) {
    size_t nb = (size_t)K / FS_QK;
    for (int t = 0; t < T; t++)
        fs_cpu_quantize_x(f->isa, x + (size_t)t * (size_t)K, f->qx + (size_t)t * nb, f->qxs + (size_t)t * nb, K);
    /* The AVX-512 decode kernel reads x's quads laid out for it
     * (matmul_avx512.c): 16 bytes for every byte of x (0.1-0.4 us for K =
     * 1024-3072 on CPU A), written here and read by every thread. They
     * are laid out only when a weight of the pass runs that kernel, not
     * whenever the CPU has AVX-512: the plan may name the 256-bit one,
     * which reads x as it is. */
    int wide = 0;
    for (int dt = 0; dt < FS_CPU_NDTYPE; dt++)
        if (dts >> dt & 1u) wide |= fs_cpu_decode_kernel(f, (fs_dtype)dt) == FS_DK_AVX512;
    if (f->isa == FS_ISA_AVX2 && f->avx512 && f->qxe && T < FS_GEMM_MIN_T && wide)
        for (int t = 0; t < T; t++) fs_expand_x_avx512(f->qx + (size_t)t * nb, f->qxe + (size_t)t * nb * 512, (int)nb);
}

void fs_cpu_quant_job(fs_cpu *f, fs_quant_job *j, const fs_buf *W, float *y, int T, int K, int N, fs_cpu_job *job) {
    int x8 = cpu_buf(W)->x8;
    *j = (fs_quant_job){f, W->data, W->dtype, y, T, K, N, 0, x8};
    fs_task_fn fn;
#ifdef HAVE_QGEMM
    if (f->isa == FS_ISA_AVX2 && f->amx && f->tpack && T >= fs_amx_min_t(f, W->dtype) && x8) {
        j->rows = fs_cpu_chunk_rows(N, f->nth, 16, 4);   /* whole pairs of x8 groups: B tiles */
        fn = amx_chunk;
    } else if (f->isa == FS_ISA_AVX2 && f->avx512 && x8 && T >= FS_GEMM_MIN_T) {
        j->rows = fs_cpu_chunk_rows(N, f->nth, 2 * QP_ROWS, 8);   /* whole x8 pairs: 16-row panels */
        fn = gemm512_chunk;
    } else if (f->isa == FS_ISA_AVX2 && T >= FS_GEMM_MIN_T && N >= QP_ROWS) {
        j->rows = fs_cpu_chunk_rows(N, f->nth, QP_ROWS, 8);
        fn = gemm_chunk;
    } else
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (f->isa == FS_ISA_NEON && f->qpack && T >= FS_GEMM_MIN_T && N >= QP_ROWS) {
        j->rows = fs_cpu_chunk_rows(N, f->nth, QP_ROWS, 8);   /* whole 8-row panels (matmul_quant_neon.c) */
        fn = fs_qgemm_neon_chunk;
    } else
#endif
    {
        /* the pass's chunk rows: whole pairs of x8 groups (16 rows), so no pair is split */
        j->rows = f->decode_rows;
        fn = x8 ? x8_chunk : rows_chunk;
    }
    *job = (fs_cpu_job){fn, j, j->rows, (N + j->rows - 1) / j->rows};
}
