/* amx_tiles.h - private to src/cpu/: Intel AMX's tile registers as the
 * CPU kernels use them (matmul_amx.c, attention_amx.c): the tile
 * configuration as constant data, and every tile instruction as inline
 * assembly (matmul_amx.c's header comment says why: gcc 12's intrinsics
 * have been seen to drop the configuration's stores). Included only
 * where the AVX-512 target attributes are available (x86-64 Linux).
 *
 * Docs: docs/cpu.md
 */
#ifndef FS_CPU_AMX_TILES_H
#define FS_CPU_AMX_TILES_H

#include <stdint.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c,avx2")))

/* ---- the tile instructions ---- */

typedef struct {
    uint8_t b[64];
} tilecfg;
/* byte 0: palette 1; bytes 16 + 2i: tile i's bytes per row (u16);
 * byte 48 + i: tile i's rows. */
#define ROWS(i, bytes, rows) [16 + 2 * (i)] = (bytes), [48 + (i)] = (rows)
/* bf16: every tile 16 rows x 64 bytes (the GEMM: C tmm0-3, A tmm4-5, B
 * tmm6-7; attention: C tmm0, A tmm1-3, B tmm4-6) */
static const tilecfg cfg_bf16 __attribute__((aligned(64))) = {{
    [0] = 1, ROWS(0, 64, 16), ROWS(1, 64, 16), ROWS(2, 64, 16), ROWS(3, 64, 16),
    ROWS(4, 64, 16), ROWS(5, 64, 16), ROWS(6, 64, 16), ROWS(7, 64, 16)}};
/* The instructions as inline assembly. Tile loads read memory the
 * compiler does not see (16 rows at a stride): the loops put a compiler
 * barrier (FENCE) after writing what the tiles will load, rather than a
 * "memory" clobber on every load, which would make the compiler keep the
 * epilogue's accumulators in memory. A store to a 16 x 64-byte block
 * names that block as its output; a store to y clobbers memory. */
static inline void tile_config(const tilecfg *c) { __asm__ volatile("ldtilecfg %0" : : "m"(*c)); }
static inline void tile_release(void) { __asm__ volatile("tilerelease" ::: "memory"); }
#define FENCE() __asm__ volatile("" ::: "memory")
#define TILE_LOAD(T, base, stride) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #T : : "r"(base), "r"((size_t)(stride)))
#define TILE_STORE_BLOCK(T, block) \
    __asm__ volatile("tilestored %%tmm" #T ", (%1,%2,1)" : "=m"(*(uint8_t(*)[1024])(block)) : "r"(block), "r"((size_t)64))
#define TILE_STORE(T, base, stride) \
    __asm__ volatile("tilestored %%tmm" #T ", (%0,%1,1)" : : "r"(base), "r"((size_t)(stride)) : "memory")
#define TILE_ZERO(T) __asm__ volatile("tilezero %%tmm" #T ::)
#define TDPBF16PS(C, A, B) __asm__ volatile("tdpbf16ps %%tmm" #B ", %%tmm" #A ", %%tmm" #C ::)
#define TDPBSSD(C, A, B) __asm__ volatile("tdpbssd %%tmm" #B ", %%tmm" #A ", %%tmm" #C ::)

#endif
