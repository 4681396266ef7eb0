/* attention_cpu.c - grouped-query causal attention, threaded, one pass:
 * the CPU backend's attention.
 *
 *   q: [T, Hq, D]   caches: keys and values [n_ctx, Hkv, D] (ref.h) of
 *   each sequence   out: [T, Hq, D]
 *   out[t,h] = sum_{j <= pos[t]} softmax_j(q[t,h] . k[j,g] / sqrt(D)) v[j,g],
 *   g = h / (Hq / Hkv), k and v those of caches[seq[t]]  (the step's pos, seq)
 *
 * Same math as attention.c (the reference); three differences for speed:
 *
 * Threads. The T * Hkv (token, kv head) pairs are independent chunks of
 * the pool's parallel loop (the query heads sharing a kv head go together,
 * so K and V are read once for them); threads take them one at a time,
 * which balances the causal triangle (later tokens have more keys) by
 * itself.
 *
 * Online softmax (one pass, no scores row). Keys are processed in blocks of
 * BLOCK: compute the block's scores, and if the block's maximum m_b exceeds
 * the running maximum m, rescale what is accumulated so far (the output
 * row o and the sum of exponentials l) by exp(m - m_b). At the end
 * out = o / l. This equals the two-pass softmax up to rounding, reads each
 * key and value once, and needs only BLOCK floats of scores on the stack,
 * so threads need no shared scratch.
 *
 * Two kernels a block (vec_cpu.c), both reading the cache in address
 * order, position by position: fs_vdot_heads gives every head's score of
 * each position (the query heads of a kv head two at a time, sharing each
 * load of the key), fs_vmix_heads adds each position's values times the
 * heads' probabilities into their o rows (4 positions a pass, so o is
 * loaded and stored once per 4). In between, per head: the block's
 * maximum, the rescale, and exp and its sum (fs_vexp_sum). Both kernels
 * prefetch the cache into L2 FS_ATTN_AHEAD bytes ahead of their reads:
 * with the arithmetic in the way, one core's hardware prefetchers alone
 * kept too few lines in flight (tools/bench_attention, 2-vCPU Xeon, depth
 * 4096, f16 cache: 1.06 -> 0.86 ms a layer; f32: no change).
 *
 * A step that mixes sequences (a server's batched decode step) takes the
 * per-token path above: each (token, kv head) chunk reads its own
 * sequence's cache up to its own position.
 *
 * Prefill on AVX2 or NEON (T >= FS_GEMM_MIN_T, D a multiple of 16, every token of
 * one sequence at consecutive positions pos0 .. pos0 + T - 1): attention of a
 * whole prompt is two matrix products per head, S = Q K^T and O = P V, so
 * it runs on the GEMM's 6 x 16 register tile (fs_tile_avx2, fs_tile_neon;
 * with AVX-512 12 x 32, fs_tile_avx512) instead of one query at a time. A chunk is (kv head g, a slab of SLAB tokens):
 *   - pack K_g once, in panels of 16 keys laid out d-major (the tile's
 *     weight panel: pk[d * 16 + r] is key r's component d);
 *   - for each query head of the group, 6 (12) queries at a time: S (a row
 *     of scores per query, 16 keys per tile), then a plain two-pass softmax per row
 *     (max, then exp and sum 8 at a time with fs_exp8; keys beyond the
 *     query's position get probability 0), then
 *     O = P V with the V cache itself as the tile's panel (16 columns of d
 *     per tile, the row stride of the cache as the panel stride), then
 *     O /= sum.
 * Scores are stored for 6 (12) queries x all keys, beside the packed K, in the
 * thread's part of the scratch reserve() sized for n_ctx keys.
 *
 * An f16 cache (`--kv f16`, half the bytes): decode widens each value to
 * f32 in a register as it loads it (vcvtph2ps, fcvtl); prefill widens a
 * head's keys before packing them and its values before O = P V, and
 * runs the f32 tile on the copy. The widening is exact, so the f16 path
 * differs from the f32 one only by the rounding of the stored K and V.
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <math.h>

#include "cpu_backend.h"

#define BLOCK FS_ATTN_BLOCK

typedef struct {
    fs_isa isa;
    size_t ahead;            /* bytes ahead of the cache reads to prefetch into L2 (0: none) */
    const float *q;
    fs_buf *const *caches;   /* each sequence's cache */
    const int *pos, *seq;    /* the step: token t is at pos[t] of caches[seq[t]] */
    float *out;
    int Hq, Hkv, D;
    int n_hr;                /* kv head ranges per token (1: every kv head a chunk) */
    int splits;              /* key ranges per (token, kv head); 1: no split */
    float *part;             /* splits > 1: [T * Hkv * splits * group][D + 2] each range's
                                unnormalised output, then its running max and sum */
} attn_job;

/* One chunk = one token, a range of its kv heads and a range of its keys:
 * it = (t * n_hr + hr) * splits + sp. Each kv head's query heads (Hq /
 * Hkv of them, 2 for Qwen3-0.6B) walk the keys together, so each key and
 * value is read from memory once for all of them.
 *
 * Reading in address order. The cache is position-major (ref.h):
 * position p's kv heads sit side by side, 4 KB for Qwen3-0.6B. A chunk of
 * one kv head would read rows of 512 bytes 4 KB apart - a stride the
 * hardware prefetchers of the Xeon it was measured on did not follow. So
 * a chunk takes every kv head of its token (n_hr = 1) and reads each
 * position's row whole, then the next: the cache in address order
 * (tools/bench_attention at depth 4096, 2-vCPU Xeon, wall time a layer,
 * 2 threads: one kv head a chunk ~2.4 (f32) / ~1.6 (f16) ms, every kv
 * head 1.40 / 0.86 ms). FS_ATTN_ALL_HEADS=0 keeps one kv head a chunk
 * (n_hr = Hkv), for the comparison.
 *
 * Enough chunks for the threads. A decode step of one token is one such
 * chunk; the pool wants 2 a thread. With many keys, each token's keys are
 * cut into `splits` ranges of whole blocks, each at least 4 blocks; a
 * range leaves its output unnormalised with its running max m_s and sum
 * l_s, and the caller combines them: out = sum_s e^(m_s - M) o_s / sum_s
 * e^(m_s - M) l_s with M = max_s m_s - the online softmax's own
 * rescaling, done once more. With few keys (a short context), the kv
 * heads are cut into n_hr ranges instead: each position's row is then
 * read in n_hr contiguous pieces. */
#define MAX_GROUP FS_ATTN_MAX_GROUP
#define MAX_HEADS FS_ATTN_MAX_HEADS

/* Token t's query heads of kv heads g_lo .. g_hi - 1 over key range sp of
 * j->splits: the online softmax above, one block of keys at a time, each
 * kv head's group of query heads together. */
static void attn_part(const attn_job *j, int t, int sp, int g_lo, int g_hi) {
    int group = j->Hq / j->Hkv, D = j->D;
    float scale = (float)(1.0 / sqrt((double)D));
    const fs_buf *cache = j->caches[j->seq[t]];
    size_t kv_row = cache->kv_stride;             /* one position in the cache */
    int n_keys = j->pos[t] + 1;                   /* causal: positions 0 .. pos[t] */
    int per = (n_keys + j->splits - 1) / j->splits;
    per = (per + BLOCK - 1) / BLOCK * BLOCK;      /* whole blocks */
    int j_lo = sp * per, j_hi = j_lo + per < n_keys ? j_lo + per : n_keys;   /* may be empty */
    /* An f16 cache is read as it is stored: the kernels widen each value
     * to f32 in registers as they load it (exact). */
    int f16 = cache->dtype == FS_DTYPE_F16;
    size_t first = (size_t)g_lo * (size_t)D;     /* kv head g_lo within a position's row */
    const void *K = f16 ? (const void *)(kv_keys16(cache) + first) : (const void *)(kv_keys(cache) + first);
    const void *V = f16 ? (const void *)(kv_values16(cache) + first) : (const void *)(kv_values(cache) + first);
    size_t esize = f16 ? sizeof(uint16_t) : sizeof(float);
    const float *qt = j->q + ((size_t)t * (size_t)j->Hq + (size_t)g_lo * (size_t)group) * (size_t)D;
    float m[MAX_HEADS], l[MAX_HEADS], s[MAX_HEADS * BLOCK];   /* per head: running max, sum of exp, scores */
    float *acc[MAX_HEADS];                        /* per head: where o accumulates */
    int n_kv = g_hi - g_lo, n_h = n_kv * group;   /* heads here: h = (g - g_lo) * group + hh */
    for (int h = 0; h < n_h; h++) {
        int g = g_lo + h / group, hh = h % group;
        acc[h] = j->splits > 1 ? j->part + ((((size_t)t * (size_t)j->Hkv + (size_t)g) * (size_t)j->splits + (size_t)sp) *
                                                (size_t)group + (size_t)hh) * (size_t)(D + 2)
                               : j->out + ((size_t)t * (size_t)j->Hq + (size_t)(g * group + hh)) * (size_t)D;
        for (int d = 0; d < D; d++) acc[h][d] = 0.0f;
        m[h] = -INFINITY, l[h] = 0.0f;
    }
    for (int j0 = j_lo; j0 < j_hi; j0 += BLOCK) {
        int nb = j_hi - j0 < BLOCK ? j_hi - j0 : BLOCK;
        size_t at = (size_t)j0 * kv_row * esize;  /* bytes to position j0's row */
        /* every head's scores of the block, reading its keys position by
         * position: rows of the cache in the order they lie in memory */
        fs_vdot_heads(j->isa, j->ahead, qt, (const char *)K + at, f16, kv_row, nb, n_kv, group, D, s, BLOCK);
        for (int h = 0; h < n_h; h++) {
            float *sh = s + (size_t)h * BLOCK, bmax = -INFINITY;
            for (int b = 0; b < nb; b++) {
                sh[b] *= scale;
                if (sh[b] > bmax) bmax = sh[b];
            }
            if (bmax > m[h]) {   /* new maximum: rescale what we have */
                float corr = expf(m[h] - bmax);   /* exp(-inf) = 0 on the first block */
                if (l[h] > 0.0f) fs_vscale(j->isa, acc[h], corr, D);
                l[h] *= corr;
                m[h] = bmax;
            }
            l[h] += fs_vexp_sum(j->isa, sh, m[h], nb);   /* scores become (unnormalised) probabilities */
        }
        fs_vmix_heads(j->isa, j->ahead, acc, s, BLOCK, (const char *)V + at, f16, kv_row, nb, n_kv, group, D);
    }
    for (int h = 0; h < n_h; h++) {
        if (j->splits > 1) {   /* the caller combines the ranges */
            acc[h][D] = m[h], acc[h][D + 1] = l[h];
            continue;
        }
        fs_vscale(j->isa, acc[h], 1.0f / l[h], D);
    }
}

/* One chunk: it = (t * n_hr + hr) * splits + sp (above). */
static void attn_chunk(void *arg, int it, int tid) {
    const attn_job *j = arg;
    int sp = it % j->splits, c = it / j->splits, hr = c % j->n_hr, t = c / j->n_hr;
    attn_part(j, t, sp, hr * j->Hkv / j->n_hr, (hr + 1) * j->Hkv / j->n_hr);
}

/* out[t, h] from the ranges' partial outputs (attn_chunk, splits > 1). */
static void attn_combine(const attn_job *j, int T) {
    int group = j->Hq / j->Hkv, D = j->D, S = j->splits;
    for (int c = 0; c < T * j->Hkv; c++)
        for (int hh = 0; hh < group; hh++) {
            int t = c / j->Hkv, g = c % j->Hkv;
            float *o = j->out + ((size_t)t * (size_t)j->Hq + (size_t)(g * group + hh)) * (size_t)D;
            const float *p0 = j->part + ((size_t)c * (size_t)S * (size_t)group + (size_t)hh) * (size_t)(D + 2);
            size_t next = (size_t)group * (size_t)(D + 2);   /* from one range to the next */
            float M = -INFINITY, L = 0.0f;
            for (int sp = 0; sp < S; sp++)
                if (p0[sp * next + (size_t)D] > M) M = p0[sp * next + (size_t)D];
            for (int d = 0; d < D; d++) o[d] = 0.0f;
            for (int sp = 0; sp < S; sp++) {
                const float *p = p0 + sp * next;
                if (p[D + 1] == 0.0f) continue;   /* an empty range */
                float w = expf(p[D] - M);
                L += w * p[D + 1];
                for (int d = 0; d < D; d++) o[d] += w * p[d];
            }
            fs_vscale(j->isa, o, 1.0f / L, D);
        }
}

/* How many key ranges to cut each chunk's keys into: enough for 2 chunks
 * a thread, each range at least min_blocks blocks, and the partial outputs
 * (chunks x splits x `heads` slots of D + 2 floats) within the scratch
 * reserve sized: FS_ATTN_MAX_PARTS(nth) x FS_ATTN_MAX_GROUP slots. One kv
 * head a chunk counts FS_ATTN_MAX_GROUP slots a part; every kv head of a
 * token a chunk, all Hq of them (cutting the kv heads into ranges after
 * that does not change the count). */
static int attn_splits(int chunks, int heads, int nth, int max_keys, int min_blocks) {
    if (chunks >= 2 * nth) return 1;
    int splits = (2 * nth + chunks - 1) / chunks;
    if (splits > max_keys / (min_blocks * BLOCK)) splits = max_keys / (min_blocks * BLOCK);
    long room = (long)FS_ATTN_MAX_PARTS(nth) * FS_ATTN_MAX_GROUP / ((long)chunks * heads);
    if (splits > room) splits = (int)room;
    return splits < 2 ? 1 : splits;
}

#define SLAB 64
#define TILE_ROWS (FS_TILE_T512 > FS_TILE_T ? FS_TILE_T512 : FS_TILE_T)   /* queries per tile, at most */

typedef struct {
    const fs_cpu *f;
    const float *q;
    const fs_buf *cache;
    float *out;
    size_t kv_stride;
    int T, pos0, Hq, Hkv, D, nslab, ldS;
} tiled_job;

/* The 6 x 16 register tile of the ISA (fs_tile_avx2 or fs_tile_neon). */
static void tile16(fs_isa isa, int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y,
                   size_t ldy, int accum, int ncols) {
    if (isa == FS_ISA_NEON) fs_tile_neon(nt, x, ldx, pw, ldw, kc, y, ldy, accum, ncols);
    else fs_tile_avx2(nt, x, ldx, pw, ldw, kc, y, ldy, accum, ncols);
}

static void tiled_chunk(void *arg, int chunk, int tid) {
    const tiled_job *j = arg;
    int g = chunk / j->nslab, slab = j->nslab - 1 - chunk % j->nslab;   /* heaviest slabs first */
    int t0 = slab * SLAB, t1 = t0 + SLAB < j->T ? t0 + SLAB : j->T;
    int D = j->D, group = j->Hq / j->Hkv, ldS = j->ldS;
    size_t kv_row = j->kv_stride, q_row = (size_t)j->Hq * (size_t)D;
    float *pk = (float *)j->f->attn + (size_t)tid * j->f->attn_stride;
    float *S = pk + (size_t)ldS * (size_t)D;
    int f16 = j->cache->dtype == FS_DTYPE_F16;
    const float *kg = f16 ? NULL : kv_keys(j->cache) + (size_t)g * (size_t)D;
    const float *vg = f16 ? NULL : kv_values(j->cache) + (size_t)g * (size_t)D;
    float scale = (float)(1.0 / sqrt((double)D));
    int nk = j->pos0 + t1, npan = (nk + 15) / 16;

    /* On AMX: both products on tiles, 16 query rows at a time (attention_amx.c) */
    if (j->f->amx && j->f->amx_attn && D % 32 == 0) {
        uint8_t *sc = (uint8_t *)pk;
        size_t go = (size_t)g * (size_t)D;
        const void *kp = f16 ? (const void *)(kv_keys16(j->cache) + go) : (const void *)(kv_keys(j->cache) + go);
        const void *vp = f16 ? (const void *)(kv_values16(j->cache) + go) : (const void *)(kv_values(j->cache) + go);
        fs_amx_attn_pack(kp, vp, f16, kv_row, nk, D, sc);
        for (int hh = 0; hh < group; hh++) {
            size_t h = (size_t)(g * group + hh) * (size_t)D;
            for (int t = t0; t < t1; t += 16) {
                int nt = t1 - t < 16 ? t1 - t : 16;
                fs_amx_attn_rows(j->f->isa, j->q + (size_t)t * q_row + h, q_row, nt, j->pos0 + t + 1, nk, D, scale,
                                 f16 ? 2 : 3, j->out + (size_t)t * q_row + h, q_row, sc);
            }
        }
        return;
    }

    /* An f16 cache: the keys are widened to f32 (into pv) before packing,
     * then V is widened there, and the O = P V tile reads that copy. */
    if (f16) {
        float *pv = S + (size_t)TILE_ROWS * (size_t)ldS;
        fs_vwiden_f16(j->f->isa, pv, kv_keys16(j->cache) + (size_t)g * (size_t)D, kv_row, nk, D);
        kg = pv, kv_row = (size_t)D;
    }

    /* K_g for keys 0 .. pos0 + t1 - 1, padded with zero keys to whole panels */
    for (int p = 0; p < npan; p++) {
        float *panel = pk + (size_t)p * (size_t)D * 16;
        for (int r = 0; r < 16; r++) {
            int key = p * 16 + r;
            const float *kr = kg + (size_t)key * kv_row;
            for (int d = 0; d < D; d++) panel[(size_t)d * 16 + (size_t)r] = key < nk ? kr[d] : 0.0f;
        }
    }
    if (f16) {
        float *pv = S + (size_t)TILE_ROWS * (size_t)ldS;
        fs_vwiden_f16(j->f->isa, pv, kv_values16(j->cache) + (size_t)g * (size_t)D, j->kv_stride, nk, D);
        vg = pv;
    }
    /* with AVX-512 the tile is 12 queries x 32 (two panels) instead of 6 x 16 */
    int wide = j->f->avx512, tile_t = wide ? FS_TILE_T512 : FS_TILE_T;
    for (int hh = 0; hh < group; hh++) {
        int h = g * group + hh;
        for (int t = t0; t < t1; t += tile_t) {
            int nt = t1 - t < tile_t ? t1 - t : tile_t;
            int nkb = j->pos0 + t + nt, npb = (nkb + 15) / 16;   /* keys of the block's last query */
            const float *qb = j->q + (size_t)t * q_row + (size_t)h * (size_t)D;
            float *ob = j->out + (size_t)t * q_row + (size_t)h * (size_t)D;
            if (wide)   /* panels p and p + 1 side by side (a last odd one alone: its partner repeats it, unstored) */
                for (int p = 0; p < npb; p += 2) {
                    const float *p0 = pk + (size_t)p * (size_t)D * 16, *p1 = p + 1 < npb ? p0 + (size_t)D * 16 : p0;
                    fs_tile_avx512(nt, qb, q_row, p0, p1, 16, D, S + (size_t)p * 16, (size_t)ldS, 0, p + 1 < npb ? 32 : 16);
                }
            else
                for (int p = 0; p < npb; p++)
                    tile16(j->f->isa, nt, qb, q_row, pk + (size_t)p * (size_t)D * 16, 16, D, S + (size_t)p * 16,
                           (size_t)ldS, 0, 16);
            float inv_l[TILE_ROWS];
            for (int i = 0; i < nt; i++) {
                float *row = S + (size_t)i * (size_t)ldS;
                int n = j->pos0 + t + i + 1;   /* causal: keys 0 .. pos0 + t + i */
                float m = fs_vscale_max(j->f->isa, row, scale, n);
                float l = fs_vexp_sum(j->f->isa, row, m, n);   /* row[c] = e^(row[c] - m) */
                for (int c = n; c < nkb; c++) row[c] = 0.0f;
                inv_l[i] = 1.0f / l;
            }
            if (wide)
                for (int d0 = 0; d0 < D; d0 += 32)
                    fs_tile_avx512(nt, S, (size_t)ldS, vg + d0, D - d0 > 16 ? vg + d0 + 16 : vg + d0, kv_row, nkb,
                                   ob + d0, q_row, 0, D - d0 < 32 ? D - d0 : 32);
            else
                for (int d0 = 0; d0 < D; d0 += 16)
                    tile16(j->f->isa, nt, S, (size_t)ldS, vg + d0, kv_row, nkb, ob + d0, q_row, 0, 16);
            for (int i = 0; i < nt; i++) fs_vscale(j->f->isa, ob + (size_t)i * q_row, inv_l[i], D);
        }
    }
}

/* The tiled path's per-thread scratch: the packed K of up to n_ctx keys
 * (padded to whole panels of 16), and TILE_ROWS rows of their scores. */
size_t fs_cpu_attn_stride(int n_ctx, int D, int f16) {
    size_t ldS = ((size_t)n_ctx + 15) / 16 * 16;
    return ((f16 ? 2 : 1) * ldS * (size_t)D + (size_t)TILE_ROWS * ldS + 15) / 16 * 16;
}

int fs_cpu_attn_tiled(fs_isa isa, int T, int D) {
    return (isa == FS_ISA_AVX2 || isa == FS_ISA_NEON) && T >= FS_GEMM_MIN_T && D % 16 == 0;
}

void fs_cpu_attention(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv, int D) {
    fs_cpu *f = cpu_ctx(b);
    const fs_ref *r = &f->ref;
    int T = r->T;
    if (r->one_seq && fs_cpu_attn_tiled(f->isa, T, D)) {   /* one sequence's prompt */
        const fs_buf *cache = caches[r->seq[0]];
        int pos0 = r->pos[0], ldS = (pos0 + T + 15) / 16 * 16;   /* keys, padded to whole panels */
        tiled_job tj = {f, buf_f32(q), cache, buf_f32_mut(out), cache->kv_stride, T, pos0,
                        Hq, Hkv, D, (T + SLAB - 1) / SLAB, ldS};
        fs_threadpool_for(f->pool, Hkv * tj.nslab, tiled_chunk, &tj);
        return;
    }
    if (Hq / Hkv > MAX_GROUP) {   /* no model we know; the reference handles any group */
        fs_ref_attention(b, q, caches, out, Hq, Hkv, D);
        return;
    }
    int max_keys = 0;
    for (int t = 0; t < T; t++) max_keys = r->pos[t] + 1 > max_keys ? r->pos[t] + 1 : max_keys;
    /* every kv head of a token a chunk, its keys cut into ranges of 4
     * blocks or more, then its kv heads into ranges if there are still
     * fewer than 2 chunks a thread (and at most MAX_HEADS query heads a
     * chunk); FS_ATTN_ALL_HEADS=0: one kv head a chunk, ranges of 2 blocks */
    int group = Hq / Hkv, n_hr, splits = 1;
    if (!f->attn_all_heads) {
        n_hr = Hkv;
        if (f->attn_part) splits = attn_splits(T * Hkv, MAX_GROUP, f->nth, max_keys, 2);
    } else {
        if (f->attn_part) splits = attn_splits(T, Hq, f->nth, max_keys, 4);
        int have = T * splits, want = 2 * f->nth, per = MAX_HEADS / group;   /* kv heads a chunk, at most */
        n_hr = have >= want ? 1 : (want + have - 1) / have;
        if (n_hr < (Hkv + per - 1) / per) n_hr = (Hkv + per - 1) / per;
        if (n_hr > Hkv) n_hr = Hkv;
    }
    attn_job j = {f->isa, (size_t)f->attn_ahead, buf_f32(q), caches, r->pos, r->seq, buf_f32_mut(out), Hq, Hkv, D,
                  n_hr, splits, f->attn_part};
    fs_threadpool_for(f->pool, T * n_hr * splits, attn_chunk, &j);
    if (splits > 1) attn_combine(&j, T);
}
