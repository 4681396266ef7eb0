/* persist.cu - a whole decode step in one launch: the persistent kernel.
 *
 * A one-token step of Qwen3-0.6B is ~170 small ops. Launched one by one
 * (even replayed from a CUDA graph, even overlapped by programmatic
 * launches) each costs ~1.4 us of launch and drain before its weights
 * flow, and a kernel can only start loading its weights once its blocks
 * are on an SM - after the kernel before it has left. So the memory sat
 * idle between ops: 0.83 ms a step where the weights alone take 0.28.
 *
 * This kernel runs the step's ops as a program (kernel_args.h,
 * fs_cu_instr: the matmuls, rope_kv and attention of every layer and the
 * lm_head, recorded by persist.c) with one block per SM that never leaves:
 *
 *   - between two instructions, a grid-wide barrier (an arrival count in
 *     global memory) - each op reads what the whole grid wrote before;
 *   - weights do not depend on anything, so one warp of each block (the
 *     producer) walks the whole program from the start and copies this
 *     block's share of every matmul's rows into a ring of shared-memory
 *     slots (FS_CU_PS_SLOT bytes each, Hopper's bulk copy engine, an
 *     mbarrier per slot), as far ahead as the ring allows - across the
 *     barriers, across attention, across layers. The memory streams
 *     weights while the other warps wait at a barrier;
 *   - the other 8 warps (the consumers) run each instruction: a matmul's
 *     rows from the slots, its input row prepared (normalized or SwiGLU'd)
 *     in shared memory; rope_kv and decode attention through the same
 *     device functions as their own kernels (rope_kv.cu, attention.cu).
 *
 * Mapping of a matmul. Its N rows (all its layers', concatenated) are cut
 * into gridDim.x equal shares, one per block; a share into chunks of the
 * rows that fit a slot (8 rows of K = 1024 bf16). Row i of a share is
 * warp i mod 8's: lane l takes 16-byte vectors l, l + 32, ... of the row
 * from shared memory (the same vec<> decoding as gemv.cu), a shuffle sum
 * ends it, lane 0 stores. Every warp waits for every chunk (so no warp
 * can run a whole ring ahead of another) and then releases it; the
 * producer refills a slot when all 8 warps have released it.
 *
 * Correctness rules. Activations written by other blocks are read through
 * L2 (__ldcg): an SM's L1 may hold a stale line of a buffer that another
 * block rewrote since (the same q, x, ... every layer). A barrier is
 * __threadfence, the count, a spin on the count with an acquire load,
 * __threadfence; its waits trap after 2 s, so a bug is a launch error,
 * not a hang. The last block to finish resets the counts for the next
 * launch. The grid is one block per SM (the shared memory allows no
 * second), so every block is resident and the barriers can complete.
 * sm_90 only (bulk copies); elsewhere the kernel is empty and the host
 * never records programs (persist.c).
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define PS_WARPS FS_CU_PS_WARPS

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900

/* The consumers' barrier: named barrier 1, the 8 consumer warps only (the
 * producer warp runs its own loop and never joins). */
__device__ __forceinline__ void ps_sync() { asm volatile("bar.sync 1, %0;" ::"n"(PS_WARPS * 32) : "memory"); }
struct ps_block_sync {
    __device__ void operator()() const { ps_sync(); }
};

__device__ __forceinline__ void mbar_arrive(unsigned long long *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}

__device__ __forceinline__ unsigned ld_acquire(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ unsigned long long gtime() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

/* Every block has finished the instruction before: `target` arrivals. */
__device__ __forceinline__ void ps_grid_sync(unsigned *arrivals, unsigned target, int light) {
    ps_sync();
    if (threadIdx.x == 0) {
        if (light) {
            asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(arrivals) : "memory");
        } else {
            __threadfence();
            atomicAdd(arrivals, 1u);
        }
        unsigned long long t0 = 0;
        while (ld_acquire(arrivals) < target) {
            unsigned long long now;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
            if (!t0) t0 = now;
            else if (now - t0 > 2000000000ull) __trap();
        }
        if (!light) __threadfence();
    }
    ps_sync();
}

/* A block's share of a matmul's rows, and how they sit in the slots:
 * rows r0 .. r0 + rows - 1 (of the call's concatenated rows), rc rows a
 * chunk, each row wrow bytes of weights then (quantized) srow bytes of
 * scales - a chunk of n rows is its n weight rows, then their n scale
 * rows. */
struct ps_geo {
    int r0, rows, rc, wrow, srow;
};
__device__ __forceinline__ ps_geo ps_share(const fs_cu_mm &a) {
    ps_geo g;
    const int dt = a.dtype, E = dt == FS_CU_F32 ? 4 : dt == FS_CU_Q8_0 ? 16 : dt == FS_CU_Q4_0 ? 32 : 8;
    g.r0 = (int)((long long)a.N_total * blockIdx.x / gridDim.x);
    g.rows = (int)((long long)a.N_total * (blockIdx.x + 1) / gridDim.x) - g.r0;
    g.wrow = a.K / E * 16;
    g.srow = dt == FS_CU_Q8_0 || dt == FS_CU_Q4_0 ? a.K / 32 * 2 : 0;
    g.rc = FS_CU_PS_SLOT / (g.wrow + g.srow);   /* >= 1: persist.c takes no wider rows */
    return g;
}

/* The producer (one thread): every chunk of every matmul of the program,
 * in order, into slot q mod n_slot (q counts the block's chunks), once
 * the consumers have released that slot's previous use. */
__device__ void ps_produce(const fs_cu_persist &p, unsigned char *ring, unsigned long long *full,
                           unsigned long long *empty) {
    const fs_cu_instr *prog = (const fs_cu_instr *)p.prog;
    unsigned q = 0;
    for (int i = 0; i < p.n; i++) {
        if (prog[i].op != FS_CU_OP_MM) continue;
        const fs_cu_mm &a = prog[i].u.mm;
        const ps_geo g = ps_share(a);
        for (int c0 = 0; c0 < g.rows; c0 += g.rc, q++) {
            const int slot = (int)(q % (unsigned)p.n_slot);
            const unsigned use = q / (unsigned)p.n_slot;
            if (use > 0) mbar_wait(&empty[slot], (use - 1) & 1);
            const int n = min(g.rc, g.rows - c0);
            unsigned char *dst = ring + (size_t)slot * FS_CU_PS_SLOT;
            mbar_arrive_expect(&full[slot], (unsigned)(n * (g.wrow + g.srow)));
            /* the chunk's rows, one copy per layer they belong to */
            for (int row = g.r0 + c0, k = 0, end = g.r0 + c0 + n; row < end;) {
                const fs_cu_linear &L = a.out[layer_of(a, row)];
                const int cnt = min(end, L.row0 + L.N) - row;
                const size_t in_layer = (size_t)(row - L.row0);
                bulk_copy(dst + (size_t)k * g.wrow, (const unsigned char *)L.w + in_layer * g.wrow,
                          (unsigned)(cnt * g.wrow), &full[slot]);
                if (g.srow)
                    bulk_copy(dst + (size_t)n * g.wrow + (size_t)k * g.srow,
                              (const unsigned char *)L.scales + in_layer * g.srow, (unsigned)(cnt * g.srow), &full[slot]);
                k += cnt;
                row += cnt;
            }
        }
    }
}

/* The matmul's input row in shared memory (gemv.cu's padded layout), by
 * the 256 consumer threads: x read through L2, normalized or SwiGLU'd as
 * gemv.cu's load_input does it. */
__device__ void ps_input(const fs_cu_mm &a, float *xs, float *red) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, K4 = a.K / 4, NT = PS_WARPS * 32;
    const float4 *x = (const float4 *)a.x, *up = (const float4 *)a.up;
    /* a row of up to 4 float4 a thread (K <= 4096) is normalized in
     * registers, its norm weights loaded with it; a longer one in two
     * passes over shared memory */
    const bool regs = a.norm && K4 <= NT * 4;
    float4 v[4], u[4], w[4];
    float ss = 0.0f;
    for (int base = tid; base < K4; base += NT * 4) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int i = base + j * NT;
            if (i < K4) {
                v[j] = __ldcg(x + i);
                if (up) u[j] = __ldcg(up + i);
                if (regs) w[j] = weight4_at(a.norm, a.norm_dtype, 4 * i);
            }
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int i = base + j * NT;
            if (i >= K4) break;
            if (up) {
                v[j] = make_float4(swiglu(v[j].x, u[j].x), swiglu(v[j].y, u[j].y), swiglu(v[j].z, u[j].z), swiglu(v[j].w, u[j].w));
            } else {
                ss = fmaf(v[j].x, v[j].x, ss);
                ss = fmaf(v[j].y, v[j].y, ss);
                ss = fmaf(v[j].z, v[j].z, ss);
                ss = fmaf(v[j].w, v[j].w, ss);
            }
            if (!regs) *(float4 *)(xs + xpad(4 * i)) = v[j];
        }
    }
    if (a.norm) {
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        ps_sync();
        float t = lane < PS_WARPS ? red[lane] : 0.0f;
        const float scale = rms_scale(warp_sum(t), a.K, a.eps);
        if (regs) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int i = tid + j * NT;
                if (i >= K4) break;
                *(float4 *)(xs + xpad(4 * i)) =
                    make_float4(__fmul_rn(w[j].x, __fmul_rn(v[j].x, scale)), __fmul_rn(w[j].y, __fmul_rn(v[j].y, scale)),
                                __fmul_rn(w[j].z, __fmul_rn(v[j].z, scale)), __fmul_rn(w[j].w, __fmul_rn(v[j].w, scale)));
            }
        } else {
            for (int i = tid; i < K4; i += NT) {
                float4 wn = weight4_at(a.norm, a.norm_dtype, 4 * i), *xv = (float4 *)(xs + xpad(4 * i)), vv = *xv;
                *xv = make_float4(__fmul_rn(wn.x, __fmul_rn(vv.x, scale)), __fmul_rn(wn.y, __fmul_rn(vv.y, scale)),
                                  __fmul_rn(wn.z, __fmul_rn(vv.z, scale)), __fmul_rn(wn.w, __fmul_rn(vv.w, scale)));
            }
        }
    }
    ps_sync();
}

/* The consumers' side of a matmul: each chunk of the block's share as it
 * lands; a warp takes R rows of a chunk at a time, so each read of x from
 * shared memory serves R rows (R = 4 where a block has many rows: the
 * input's reads, not the weights', would bound a row at a time). */
template <int DT, int R>
__device__ void ps_rows(const fs_cu_mm &a, const ps_geo &g, const float *xs, const unsigned char *ring,
                        unsigned long long *full, unsigned long long *empty, unsigned &q, int n_slot) {
    constexpr int E = vec<DT>::E;
    constexpr bool QUANT = DT == FS_CU_Q8_0 || DT == FS_CU_Q4_0;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nvec = a.K / E;
    int groups_before = 0;   /* row groups of the earlier chunks: group j of the share is warp j mod 8's */
    for (int c0 = 0; c0 < g.rows; c0 += g.rc, q++) {
        const int slot = (int)(q % (unsigned)n_slot);
        const unsigned use = q / (unsigned)n_slot;
        const int n = min(g.rc, g.rows - c0), ng = (n + R - 1) / R;
        const unsigned char *base = ring + (size_t)slot * FS_CU_PS_SLOT;
        mbar_wait(&full[slot], use & 1);
        for (int j = (warp - groups_before % PS_WARPS + PS_WARPS) % PS_WARPS; j < ng; j += PS_WARPS) {
            const int i0 = j * R, nr = min(R, n - i0);
            const uint4 *wv[R];
            const uint16_t *sv[R];
            float *y[R], y0[R], acc[R];
            bool add[R];
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int i = i0 + (r < nr ? r : 0);   /* past the chunk's end: row i0 again, not stored */
                wv[r] = (const uint4 *)(base + (size_t)i * g.wrow);
                sv[r] = (const uint16_t *)(base + (size_t)n * g.wrow + (size_t)i * g.srow);
                /* where the row goes, and (adding to y) y's value, asked
                 * for before the products so the load overlaps them */
                const int row = g.r0 + c0 + i;
                const fs_cu_linear &L = a.out[layer_of(a, row)];
                y[r] = (float *)L.y + (row - L.row0);
                add[r] = L.add;
                y0[r] = lane == 0 && add[r] && r < nr ? __ldcg(y[r]) : 0.0f;
                acc[r] = 0.0f;
            }
#pragma unroll 2
            for (int v = lane; v < nvec; v += 32) {
                const float *xv = xs + xpad(v * E);
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float s = vec<DT>::dot(wv[r][v], xv);
                    acc[r] = QUANT ? fmaf(f16_to_f32(sv[r][v * E / 32]), s, acc[r]) : acc[r] + s;
                }
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                float t = warp_sum(acc[r]);
                if (lane == 0 && r < nr) *y[r] = add[r] ? y0[r] + t : t;
            }
        }
        groups_before += ng;
        __syncwarp();
        if (lane == 0) mbar_arrive(&empty[slot]);
    }
}

/* R = 4 for a block with many rows in chunks of at least 4 (qkv, gate/up,
 * lm_head), else 1 (o_proj, down_proj: ~8 rows a block, a row a warp) */
template <int DT>
__device__ __forceinline__ void ps_matmul(const fs_cu_mm &a, const ps_geo &g, const float *xs, const unsigned char *ring,
                                          unsigned long long *full, unsigned long long *empty, unsigned &q, int n_slot) {
    if (g.rc >= 4 && g.rows >= 3 * PS_WARPS) ps_rows<DT, 4>(a, g, xs, ring, full, empty, q, n_slot);
    else ps_rows<DT, 1>(a, g, xs, ring, full, empty, q, n_slot);
}

#endif

extern "C" __global__ void __launch_bounds__(FS_CU_PS_THREADS, 1) decode_persist(fs_cu_persist p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    __shared__ __align__(8) unsigned long long full[FS_CU_PS_MAX_SLOTS], empty[FS_CU_PS_MAX_SLOTS];
    __shared__ float red[32];
    __shared__ att_shared att;
    /* the instruction being run and the next, copied from the program
     * before the barrier that precedes it: its fields are then read from
     * shared memory, not each a round trip to L2 */
    __shared__ __align__(16) fs_cu_instr ibuf[2];
    unsigned char *ring = (unsigned char *)dyn_smem;
    float *region = (float *)(ring + (size_t)p.n_slot * FS_CU_PS_SLOT);
    if (threadIdx.x == 0) {
        for (int s = 0; s < p.n_slot; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], PS_WARPS);
        }
        mbar_init_fence();
    }
    __syncthreads();
    if (threadIdx.x >= PS_WARPS * 32) {   /* the producer warp: one thread copies, the rest leave */
        if (threadIdx.x == PS_WARPS * 32) ps_produce(p, ring, full, empty);
        return;
    }
    pdl_wait();
    const fs_cu_instr *prog = (const fs_cu_instr *)p.prog;
    unsigned *arrivals = (unsigned *)p.sync, *finished = arrivals + 1;
    unsigned q = 0, barriers = 0;
    const int warp = threadIdx.x >> 5, light = p.flags & FS_CU_PS_LIGHT_BARRIER;
    unsigned long long *prof = (unsigned long long *)p.prof;
    auto stamp = [&](int i, int k) {
        if (threadIdx.x == 0) prof[((size_t)i * gridDim.x + blockIdx.x) * 3 + k] = gtime();
    };
    auto fetch = [&](int i) {   /* prog[i] into ibuf[i & 1], by the consumer threads */
        const int2 *src = (const int2 *)(prog + i);
        int2 *dst = (int2 *)&ibuf[i & 1];
        for (int k = threadIdx.x; k < (int)(sizeof(fs_cu_instr) / 8); k += PS_WARPS * 32) dst[k] = __ldg(src + k);
    };
    fetch(0);
    ps_sync();
    /* FS_CU_PS_FUSE_ROPE: a rope_kv followed by attention runs inside the
     * attention (attention.cu, rp): no barrier between them, and no pass
     * of its own */
    const int fuse = p.flags & FS_CU_PS_FUSE_ROPE;
    int fused_prev = 0;   /* instruction i - 1 was a rope_kv left to this attention */
    for (int i = 0; i < p.n; i++) {
        const fs_cu_instr &in = ibuf[i & 1];   /* fetched during instruction i - 1 */
        if (i > 0) {
            if (prof) {
                ps_sync();
                stamp(i - 1, 2);
            }
            if (fused_prev) ps_sync();   /* no barrier; instruction i's copy is complete */
            else ps_grid_sync(arrivals, ++barriers * gridDim.x, light);
        }
        /* past the barrier every thread is done with instruction i - 1,
         * whose buffer takes i + 1 now (seen by all after the next barrier);
         * after a fused rope_kv, whose arguments attention still reads, later */
        if (i + 1 < p.n && !fused_prev) fetch(i + 1);
        if (prof) stamp(i, 0);
        const int op = in.op;
        const int fuse_now = fuse && op == FS_CU_OP_ROPE && i + 1 < p.n && __ldg(&prog[i + 1].op) == FS_CU_OP_ATTN;
        if (op != FS_CU_OP_MM && prof) stamp(i, 1);
        if (op == FS_CU_OP_MM) {
            const fs_cu_mm &a = in.u.mm;
            const ps_geo g = ps_share(a);
            ps_input(a, region, red);
            if (prof) stamp(i, 1);
            switch (a.dtype) {
            case FS_CU_BF16: ps_matmul<FS_CU_BF16>(a, g, region, ring, full, empty, q, p.n_slot); break;
            case FS_CU_F16: ps_matmul<FS_CU_F16>(a, g, region, ring, full, empty, q, p.n_slot); break;
            case FS_CU_F32: ps_matmul<FS_CU_F32>(a, g, region, ring, full, empty, q, p.n_slot); break;
            case FS_CU_Q8_0: ps_matmul<FS_CU_Q8_0>(a, g, region, ring, full, empty, q, p.n_slot); break;
            default: ps_matmul<FS_CU_Q4_0>(a, g, region, ring, full, empty, q, p.n_slot); break;
            }
        } else if (op == FS_CU_OP_ROPE && !fuse_now) {
            const fs_cu_rope &a = in.u.rope;
            const int warps = a.Hq + 2 * a.Hkv;   /* one token */
            for (int gw = blockIdx.x * PS_WARPS + warp; gw < warps; gw += gridDim.x * PS_WARPS) rope_kv_warp(a, gw);
        } else if (op == FS_CU_OP_ATTN) {
            /* ranges s of kv heads g, the low ranges (which hold keys at
             * any context) spread over the blocks first */
            const fs_cu_attn &a = in.u.attn;
            const fs_cu_rope *rp = fused_prev ? &ibuf[(i - 1) & 1].u.rope : nullptr;
            const int items = a.n_split * a.Hkv;
            for (int it = blockIdx.x; it < items; it += gridDim.x) {
                const int s = it / a.Hkv, g = it % a.Hkv;
                if (a.caches.f16) attention_decode<4, 1>(a, s, g, 0, region, att, ps_block_sync(), rp);
                else attention_decode<4, 0>(a, s, g, 0, region, att, ps_block_sync(), rp);
                ps_sync();   /* the next range reuses the shared memory */
            }
            if (fused_prev) {   /* the rope_kv's buffer is free now */
                ps_sync();
                if (i + 1 < p.n) fetch(i + 1);
            }
        }
        fused_prev = fuse_now;
    }
    /* the last block out resets the counts (every block has passed every
     * barrier by then) */
    ps_sync();
    if (prof) stamp(p.n - 1, 2);
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(finished, 1u) == gridDim.x - 1) {
            *arrivals = 0;
            *finished = 0;
            __threadfence();
        }
    }
#endif
}
