/* repack.c - Q8_0 / Q4_0 weights interleaved by 8 rows ("x8"): the CPU
 * backend's in-memory layout for quantized matrices.
 *
 * In the file (GGUF's layout, quant.h) each row is a run of blocks. A
 * decode step reads one row after the other and spends ~11 instructions
 * per block of 32 weights: unpack, multiply, widen, one horizontal sum per
 * row, and a scale that has to be broadcast per block. Stored 8 rows
 * together, the same bytes become a GEMM panel: one 32-byte load holds a
 * 4-byte quad of each of the 8 rows, a broadcast 4-byte quad of x
 * multiplies all 8 at once (maddubs), the 8 int32 lanes are the 8 rows'
 * sums - no horizontal sum - and the 8 scales load as one vector. The
 * Q4_0 decode kernel then spends about 4.6 instructions per block of 32.
 *
 * The layout, for a matrix [N, K] with N % 8 == 0 and K % 32 == 0: rows are
 * grouped by 8 (group g = rows 8g .. 8g+7) and each group is nb = K / 32
 * "superblocks", one per block column b. Groups are stored in pairs, and a
 * pair stores its two superblocks of each block column side by side:
 *
 *   pair p = groups 2p, 2p+1:  [b 0: g 2p, g 2p+1] [b 1: g 2p, g 2p+1] ...
 *
 * (fs_x8_index in cpu_backend.h; a last group without a partner, N / 8 odd, is
 * stored alone). The decode kernel computes both groups of a pair with
 * x's broadcast quads loaded once, and still reads one sequential stream
 * (matmul_quant.c). A superblock is:
 *
 *   d[8]       the 8 rows' f16 scales of block b                   16 bytes
 *   qs[j][r]   for quad j and row r: row r's qs[4j .. 4j+3]        32 bytes per j
 *
 * that is qs byte 32 j + 4 r + i = row r's qs[4 j + i]. Q8_0 has 8 quads
 * (32 int8: quad j = weights 4j .. 4j+3); Q4_0 has 4 (16 bytes of
 * nibbles), and since a Q4_0 byte i holds weight i (low nibble) and weight
 * 16 + i (high nibble), quad vector j yields weights 4j .. 4j+3 of each row
 * with `& 15` and weights 16 + 4j .. with `>> 4`. A superblock is 272
 * (Q8_0) or 144 (Q4_0) bytes: exactly 8 blocks, so the layout costs no
 * memory - the bytes are only moved.
 *
 * The backend repacks at upload (once per session, in this file) only when
 * it runs AVX2 or NEON kernels: those are the ones that profit
 * (matmul_quant.c, matmul_quant_neon.c: the layout fits NEON's sdot as
 * well, whose 4-byte groups of x are picked by lane).
 * The file on disk never changes.
 *
 * Docs: docs/quantization.md
 */
#include <string.h>

#include "cpu_backend.h"

int fs_x8_ok(const fs_tensor *t) {
    return fs_dtype_is_quant(t->dtype) && t->ndim == 2 && t->shape[0] % 8 == 0 && t->shape[1] % FS_QK == 0 &&
           t->shape[0] > 0 && t->shape[1] > 0;
}

size_t fs_x8_super_bytes(fs_dtype dt) { return dt == FS_DTYPE_Q8_0 ? 8 * sizeof(fs_block_q8_0) : 8 * sizeof(fs_block_q4_0); }

void fs_x8_repack(const fs_tensor *t, uint8_t *dst, int64_t g0, int64_t g1) {
    int K = (int)t->shape[1], nb = K / FS_QK;
    int64_t G = t->shape[0] / 8;
    int quads = t->dtype == FS_DTYPE_Q8_0 ? 8 : 4;
    size_t row_bytes = fs_dtype_row_bytes(t->dtype, K), bb = row_bytes / (size_t)nb, sbytes = fs_x8_super_bytes(t->dtype);
    for (int64_t g = g0; g < g1; g++)
        for (int b = 0; b < nb; b++) {
            uint8_t *sb = dst + fs_x8_index(G, nb, g, b) * sbytes;
            for (int r = 0; r < 8; r++) {
                /* both block types are {uint16 d; bytes qs[]} */
                const uint8_t *blk = (const uint8_t *)t->data + (size_t)(8 * g + r) * row_bytes + (size_t)b * bb;
                memcpy(sb + 2 * r, blk, 2);
                for (int j = 0; j < quads; j++) memcpy(sb + 16 + 32 * j + 4 * r, blk + 2 + 4 * j, 4);
            }
        }
}

void fs_x8_dequant_row(const uint8_t *W, fs_dtype dt, int64_t N, int K, int64_t n, float *out) {
    int nb = K / FS_QK, r = (int)(n % 8);
    size_t sbytes = fs_x8_super_bytes(dt);
    for (int b = 0; b < nb; b++) {
        const uint8_t *sb = W + fs_x8_index(N / 8, nb, n / 8, b) * sbytes;
        uint16_t h;
        memcpy(&h, sb + 2 * r, 2);
        float d = fs_f16_to_f32(h), *o = out + (size_t)b * FS_QK;
        const uint8_t *q = sb + 16 + 4 * r;
        if (dt == FS_DTYPE_Q8_0) {
            for (int j = 0; j < 8; j++)
                for (int i = 0; i < 4; i++) o[4 * j + i] = d * (float)(int8_t)q[32 * j + i];
        } else {
            for (int j = 0; j < 4; j++)
                for (int i = 0; i < 4; i++) {
                    o[4 * j + i] = d * (float)((q[32 * j + i] & 15) - 8);
                    o[16 + 4 * j + i] = d * (float)((q[32 * j + i] >> 4) - 8);
                }
        }
    }
}
