/* attention_amx.c - prefill attention's two products on AMX tiles.
 *
 * The tiled prefill attention (attention_cpu.c, tiled_chunk) takes one kv
 * head and a slab of query rows: S = Q K^T over the keys each row may
 * see, a softmax per row, O = P V. On a CPU with AMX the two products run
 * here on the tile unit (amx_tiles.h; what a tile is: matmul_amx.c):
 *
 *   S[16 queries x 16 keys]   += Q[16 x 32 d]     . K^T[32 d x 16 keys]
 *   O[16 queries x 16 d]      += P[16 x 32 keys]  . V[32 keys x 16 d]
 *
 * Exactly, not in bf16. Both operands are f32 here (the query, the cached
 * keys and values, the probabilities), so each is split into three bf16
 * parts, x = hi + mid + lo exactly (fs_split_rows_avx512), and all nine
 * products of parts meet in the f32 accumulator: every bf16 product is
 * exact in f32, so S and O are f32 dot products like the AVX-512 path's,
 * their sums in another order - nine tile instructions where bf16 data
 * would need one, still 16 x 16 x 32 products each. An f16 cache's keys
 * and values have 11 significant bits: two parts hold them exactly (the
 * third is zero), so there it is six.
 *
 * Layouts. A tiles are the parts' rows as they are (16 rows of 32 bf16 at
 * a row stride). B tiles are "pair-interleaved": row r holds, for each of
 * 16 columns, the two values of contraction index 2r and 2r + 1:
 *   K^T: column c = key c, pair = dims (2r, 2r+1) of that key: a 16 x 16
 *        transpose of 32-bit pairs, gathered once per chunk (pack);
 *   V:   column c = dim c, pair = keys (2r, 2r+1): two value rows
 *        interleaved element by element, once per chunk (pack).
 * Both packs are reused by every query tile and every query head of the
 * kv head. Per thread the scratch holds them for n_ctx keys: 12 bytes a
 * key and dimension (fs_amx_attn_bytes), which reserve allows only up to
 * a bound (backend_cpu.c); past it the AVX-512 path runs.
 *
 * Docs: docs/cpu.md
 */
#include <string.h>

#include "cpu_backend.h"

#define CEIL(a, b) (((a) + (b) - 1) / (b))

/* The scratch, by offsets (bytes, 64-aligned), for n keys of head dim D. */
typedef struct {
    size_t kpack, vpack, qparts, s, pparts, stage, ctmp, total;
    int ldS;   /* S's row stride (floats): keys rounded up to 32 */
} amx_attn_layout;

static size_t al64(size_t n) { return (n + 63) / 64 * 64; }

static amx_attn_layout layout(int n, int D) {
    amx_attn_layout L;
    size_t steps = (size_t)D / 32, dgs = (size_t)D / 16, nk16 = (size_t)CEIL(n, 16), nk32 = (size_t)CEIL(n, 32);
    L.ldS = (int)(nk32 * 32);
    size_t off = 0;
    L.kpack = off, off += al64(nk16 * steps * 3 * 1024);
    L.vpack = off, off += al64(nk32 * dgs * 3 * 1024);
    L.qparts = off, off += al64((size_t)3 * 16 * (size_t)D * 2);
    L.s = off, off += al64((size_t)16 * (size_t)L.ldS * 4);
    L.pparts = off, off += al64((size_t)3 * 16 * (size_t)L.ldS * 2);
    L.stage = off, off += al64((size_t)32 * (size_t)D * (4 + 6));   /* 32 rows f32, then their 3 bf16 parts */
    L.ctmp = off, off += 1024;
    L.total = off;
    return L;
}

size_t fs_amx_attn_bytes(int n_ctx, int D) { return layout(n_ctx, D).total; }

#if defined(__x86_64__) && defined(__linux__) && FS_HAVE_AVX512_TARGET
#include <immintrin.h>

#include "amx_tiles.h"

/* Rows [r0, r0 + rows) of a cache's keys or values (f32, or f16 widened)
 * split into three bf16 parts: part p's row i at parts + p * 32 * D + i * D;
 * rows past `rows` (up to 32) are zeros. */
static TGT void split_rows(const void *src, int f16, size_t row, int r0, int rows, int D, uint8_t *stage,
                           uint16_t *parts) {
    float *w = (float *)stage;
    const float *x = (const float *)src + (size_t)r0 * row;
    size_t ld = row;
    if (f16) {
        for (int i = 0; i < rows; i++) {
            const uint16_t *h = (const uint16_t *)src + (size_t)(r0 + i) * row;
            for (int d = 0; d < D; d += 16)
                _mm512_storeu_ps(w + (size_t)i * D + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + d))));
        }
        x = w, ld = (size_t)D;
    }
    fs_split_rows_avx512(x, ld, rows, D, parts, (size_t)32 * D, D);
    for (int p = 0; p < 3; p++)
        memset(parts + (size_t)p * 32 * D + (size_t)rows * D, 0, (size_t)(32 - rows) * D * 2);
}

TGT void fs_amx_attn_pack(const void *k, const void *v, int f16, size_t row, int nk, int D, uint8_t *sc) {
    amx_attn_layout L = layout(nk, D);
    int steps = D / 32, dgs = D / 16;
    uint16_t *parts = (uint16_t *)(sc + L.stage + al64((size_t)32 * D * 4));
    int n_parts = f16 ? 2 : 3;   /* an f16 value's lo part is zero: not packed, not multiplied */
    /* K^T: per 16 keys and 32 dims, tile row r = dim pair r of each key */
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i rowoff = _mm512_mullo_epi32(lane, _mm512_set1_epi32(D / 2));
    for (int kb = 0; kb < CEIL(nk, 16); kb++) {
        int rows = nk - kb * 16 < 16 ? nk - kb * 16 : 16;
        split_rows(k, f16, row, kb * 16, rows, D, sc + L.stage, parts);
        for (int s = 0; s < steps; s++)
            for (int p = 0; p < n_parts; p++) {
                uint8_t *tile = sc + L.kpack + ((size_t)(kb * steps + s) * 3 + (size_t)p) * 1024;
                const int *base = (const int *)(parts + (size_t)p * 32 * D);
                for (int r = 0; r < 16; r++) {
                    __m512i idx = _mm512_add_epi32(rowoff, _mm512_set1_epi32(16 * s + r));
                    _mm512_storeu_si512((void *)(tile + 64 * r), _mm512_i32gather_epi32(idx, base, 4));
                }
            }
    }
    /* V: per 32 keys and 16 dims, tile row r = keys 2r and 2r + 1 interleaved */
    __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                     20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int kb = 0; kb < CEIL(nk, 32); kb++) {
        int rows = nk - kb * 32 < 32 ? nk - kb * 32 : 32;
        split_rows(v, f16, row, kb * 32, rows, D, sc + L.stage, parts);
        for (int dg = 0; dg < dgs; dg++)
            for (int p = 0; p < n_parts; p++) {
                uint8_t *tile = sc + L.vpack + ((size_t)(kb * dgs + dg) * 3 + (size_t)p) * 1024;
                const uint16_t *pp = parts + (size_t)p * 32 * D + (size_t)dg * 16;
                for (int r = 0; r < 16; r++) {
                    __m256i lo = _mm256_loadu_si256((const __m256i *)(pp + (size_t)(2 * r) * D));
                    __m256i hi = _mm256_loadu_si256((const __m256i *)(pp + (size_t)(2 * r + 1) * D));
                    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                    _mm512_storeu_si512((void *)(tile + 64 * r), _mm512_permutexvar_epi16(inter, z));
                }
            }
    }
}

/* The nine products of parts: C (tmm0) += A_a (tmm1-3) . B_b (tmm4-6).
 * (Three accumulators, each a chain of three, measured no faster: 312-316
 * against 298-299 us a token of attention at pp512, CPU A.) */
#define NINE()                                                                                               \
    do {                                                                                                     \
        TDPBF16PS(0, 1, 4);                                                                                  \
        TDPBF16PS(0, 1, 5);                                                                                  \
        TDPBF16PS(0, 1, 6);                                                                                  \
        TDPBF16PS(0, 2, 4);                                                                                  \
        TDPBF16PS(0, 2, 5);                                                                                  \
        TDPBF16PS(0, 2, 6);                                                                                  \
        TDPBF16PS(0, 3, 4);                                                                                  \
        TDPBF16PS(0, 3, 5);                                                                                  \
        TDPBF16PS(0, 3, 6);                                                                                  \
    } while (0)

/* ... and the six of a B with two parts (an f16 cache's keys and values:
 * 11 significant bits, so hi + mid hold them exactly and lo is zero) */
#define SIX()                                                                                                \
    do {                                                                                                     \
        TDPBF16PS(0, 1, 4);                                                                                  \
        TDPBF16PS(0, 1, 5);                                                                                  \
        TDPBF16PS(0, 2, 4);                                                                                  \
        TDPBF16PS(0, 2, 5);                                                                                  \
        TDPBF16PS(0, 3, 4);                                                                                  \
        TDPBF16PS(0, 3, 5);                                                                                  \
    } while (0)

/* One step of 32 along the contraction: A's three parts (a0, a1, a2, lda
 * bytes a row) and B's (tiles from b: three, or two), then the products. */
#define STEP(a0, a1, a2, lda, b, b_parts)                                                                   \
    do {                                                                                                     \
        TILE_LOAD(1, (a0), (lda));                                                                           \
        TILE_LOAD(2, (a1), (lda));                                                                           \
        TILE_LOAD(3, (a2), (lda));                                                                           \
        TILE_LOAD(4, (b), 64);                                                                               \
        TILE_LOAD(5, (b) + 1024, 64);                                                                        \
        if ((b_parts) == 3) {                                                                                \
            TILE_LOAD(6, (b) + 2048, 64);                                                                    \
            NINE();                                                                                          \
        } else {                                                                                             \
            SIX();                                                                                           \
        }                                                                                                    \
    } while (0)

TGT void fs_amx_attn_rows(fs_isa isa, const float *q, size_t q_row, int nt, int n_first, int nk, int D, float scale,
                          int kv_parts, float *out, size_t out_row, uint8_t *sc) {
    amx_attn_layout L = layout(nk, D);
    int steps = D / 32, dgs = D / 16;
    int nkb = n_first + nt - 1, nkb32 = CEIL(nkb, 32) * 32;   /* keys of the tile's last row */
    uint16_t *qp = (uint16_t *)(sc + L.qparts), *pp = (uint16_t *)(sc + L.pparts);
    float *S = (float *)(sc + L.s), *ctmp = (float *)(sc + L.ctmp);
    size_t qpart = (size_t)16 * D, ppart = (size_t)16 * L.ldS;
    fs_split_rows_avx512(q, q_row, nt, D, qp, qpart, D);
    for (int p = 0; p < 3; p++) memset(qp + p * qpart + (size_t)nt * D, 0, (size_t)(16 - nt) * D * 2);
    FENCE();
    tile_config(&cfg_bf16);
    /* S = Q K^T, 16 keys a tile */
    for (int kg = 0; kg < CEIL(nkb, 16); kg++) {
        TILE_ZERO(0);
        for (int s = 0; s < steps; s++) {
            const uint8_t *b = sc + L.kpack + (size_t)(kg * steps + s) * 3 * 1024;
            STEP(qp + 32 * s, qp + qpart + 32 * s, qp + 2 * qpart + 32 * s, D * 2, b, kv_parts);
        }
        TILE_STORE(0, S + 16 * kg, (size_t)L.ldS * 4);
    }
    /* the softmax of each row, as tiled_chunk does it */
    float inv_l[16];
    for (int i = 0; i < nt; i++) {
        float *r = S + (size_t)i * L.ldS;
        int n = n_first + i;   /* causal: this row's keys */
        float m = fs_vscale_max(isa, r, scale, n);   /* r[c] *= scale; the largest */
        float l = fs_vexp_sum(isa, r, m, n);   /* r[c] = e^(r[c] - m) */
        for (int c = n; c < nkb; c++) r[c] = 0.0f;
        inv_l[i] = 1.0f / l;
    }
    fs_split_rows_avx512(S, (size_t)L.ldS, nt, nkb, pp, ppart, nkb32);
    for (int p = 0; p < 3; p++) memset(pp + p * ppart + (size_t)nt * nkb32, 0, (size_t)(16 - nt) * nkb32 * 2);
    FENCE();
    /* O = P V, 16 dims a tile */
    for (int dg = 0; dg < dgs; dg++) {
        TILE_ZERO(0);
        for (int s = 0; s < nkb32 / 32; s++) {
            const uint8_t *b = sc + L.vpack + (size_t)(s * dgs + dg) * 3 * 1024;
            STEP(pp + 32 * s, pp + ppart + 32 * s, pp + 2 * ppart + 32 * s, nkb32 * 2, b, kv_parts);
        }
        TILE_STORE_BLOCK(0, ctmp);
        for (int i = 0; i < nt; i++)
            _mm512_storeu_ps(out + (size_t)i * out_row + 16 * dg,
                             _mm512_mul_ps(_mm512_loadu_ps(ctmp + 16 * i), _mm512_set1_ps(inv_l[i])));
    }
    tile_release();
}

#else

void fs_amx_attn_pack(const void *k, const void *v, int f16, size_t row, int nk, int D, uint8_t *sc) {
    (void)k, (void)v, (void)f16, (void)row, (void)nk, (void)D, (void)sc;
}
void fs_amx_attn_rows(fs_isa isa, const float *q, size_t q_row, int nt, int n_first, int nk, int D, float scale,
                      int kv_parts, float *out, size_t out_row, uint8_t *sc) {
    (void)isa, (void)q, (void)q_row, (void)nt, (void)n_first, (void)nk, (void)D, (void)scale, (void)kv_parts, (void)out,
        (void)out_row, (void)sc;
}

#endif
