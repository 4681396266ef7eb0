/* kernel_args.h - what the host (plain C) passes to the kernels (CUDA C++).
 *
 * Included by both sides, so a struct here has the same layout in
 * backend_cuda.c and in a kernel's parameter list: only fixed-size fields,
 * device addresses as 64-bit integers, ordered so that no padding depends
 * on the compiler. A kernel takes one of these structs by value
 * (cuLaunchKernel copies it into the launch), which keeps each launch to a
 * single parameter and each kernel's signature readable.
 *
 * Docs: docs/gpu.md
 */
#ifndef FS_CUDA_KERNEL_ARGS_H
#define FS_CUDA_KERNEL_ARGS_H

typedef unsigned long long fs_cu_ptr;   /* a device address (CUdeviceptr) */

/* Weight dtypes as the kernels see them: the values of fs_dtype (tensor.h),
 * restated so this header needs nothing else. */
enum { FS_CU_F32 = 0, FS_CU_F16 = 1, FS_CU_BF16 = 2, FS_CU_Q8_0 = 3, FS_CU_Q4_0 = 4 };

/* The step (backend.h's fs_step), in device memory: set_step writes it,
 * kernels read it (so a recorded decode step replays with the current
 * token and position).
 *   step[FS_CU_STEP_T]      T, tokens in the step
 *   step[FS_CU_STEP_NSEQ]   n_seq, sequences
 *   step[FS_CU_STEP_TOK + FS_CU_TOK_INTS * t + FS_CU_TOK_ID]   token t's id
 *                                          ... + FS_CU_TOK_POS   its position in its sequence
 *                                          ... + FS_CU_TOK_SEQ   its sequence: an index into
 *                                                                the op's caches (fs_cu_caches)
 * A token's three ints sit together, so a one-token step is the same 5
 * ints (T, n_seq, id, pos, seq) whatever the step's size. */
enum { FS_CU_STEP_T = 0, FS_CU_STEP_NSEQ = 1, FS_CU_STEP_TOK = 2 };
enum { FS_CU_TOK_ID = 0, FS_CU_TOK_POS = 1, FS_CU_TOK_SEQ = 2, FS_CU_TOK_INTS = 3 };

/* The step ring: how a recorded one-token step (a CUDA graph) gets its
 * token and position without anything else in the stream between two
 * replays (a kernel or a copy there costs ~100-300 us a token on the H200:
 * src/cuda/NOTES.md, session 4). The host writes step k's five ints into
 * entry k mod FS_CU_RING of pinned, device-mapped memory and launches the
 * graph; the graph's first kernel (set_step_ring) reads the entry its own
 * counter points at, copies it to the step and counts; the graph's last
 * kernel (argmax) writes the greedy pick into the same entry and then its
 * done mark, k + 1, which the host polls. An entry:
 *   [0 .. 4]  T = 1, n_seq, id, pos, seq (as the step holds them)
 *   [5]       1: the id is the last argmax's answer (a greedy chain), not [2]
 *   [6]       the argmax's answer        [7] done mark: k + 1 once [6] is written
 * The host writes entry k only after step k - FS_CU_RING has read it (the
 * consumed count that set_step_ring writes back to host memory). */
#define FS_CU_RING 64
#define FS_CU_RING_INTS 8
enum { FS_CU_RING_FROM_ARGMAX = 5, FS_CU_RING_ANSWER = 6, FS_CU_RING_DONE = 7 };

/* set_step's kernel carries a step of up to FS_CU_STEP_INLINE tokens in
 * its parameters (4 KB at most): no pinned buffer to share with a copy in
 * flight, no copy engine. Longer steps are copied. (It was meant to save
 * the ~125 us that a step's 12-byte copy seemed to cost before a replayed
 * step; it did not - whatever precedes the graph launch costs that:
 * src/cuda/NOTES.md, run 6.) */
#define FS_CU_STEP_INLINE 330
typedef struct fs_cu_step_args {
    fs_cu_ptr step;
    fs_cu_ptr id_from;   /* non-0 (T = 1): token 0's id is the int there - the last
                            queued argmax (backend.h), -1 read as 0 - not v's */
    int n;   /* ints of v: 2 + 3 T */
    int v[FS_CU_STEP_TOK + FS_CU_TOK_INTS * FS_CU_STEP_INLINE];
} fs_cu_step_args;

/* The KV caches one rope_kv or attention call reads and writes: this
 * layer's cache of each sequence of the step, indexed by the step's seq[t]
 * (up to forward.h's FS_MAX_SEQS). Each holds K then V, each [Hkv, n_ctx,
 * D] f32 - or f16 where the caches were made f16 (f16 = 1, the same for
 * every cache of a model: `--kv f16`): one head's positions are
 * contiguous. Sessions may differ in n_ctx, so each cache carries its own.
 * Entries past the step's n_seq are 0. */
#define FS_CU_MAX_SEQS 64
/* A GEMM's K is cut into at most this many slices (gemm.cu, ops_cuda.c). */
#define FS_CU_GEMM_SPLIT_MAX 16
/* The pipelined GEMM's stages in shared memory (gemm.cu, gemm_pipe): 4;
 * a build may set 2 or 3 (-DFS_CU_GEMM_STAGES=N in CFLAGS and NVCC_FLAGS)
 * to measure what the depth buys. */
#ifndef FS_CU_GEMM_STAGES
#define FS_CU_GEMM_STAGES 4
#endif

typedef struct fs_cu_caches {
    fs_cu_ptr p[FS_CU_MAX_SEQS];
    int n_ctx[FS_CU_MAX_SEQS];
    int f16;
} fs_cu_caches;

/* One linear layer of a matmul call (backend.h's fs_linear), on the device.
 * Quantized weights are stored as two arrays (see backend_cuda.c, upload):
 *   w       the quants, row-major: Q8_0 [N, K] int8, Q4_0 [N, K/2] bytes
 *           (each 16 bytes one block: low nibbles weights 0-15, high 16-31)
 *   scales  [N, K/32] f16, one per block of 32 weights
 * Float weights: w is [N, K] in their dtype, scales is 0. */
typedef struct fs_cu_linear {
    fs_cu_ptr w, scales, y;
    int N;       /* rows of this weight */
    int add;     /* 0: y = x W^T, 1: y += x W^T */
    int row0;    /* first row of this layer in the call's rows, concatenated */
    int tile0;   /* GEMM: first column tile of this layer */
} fs_cu_linear;

/* Warps of a decode GEMV block (gemv.cu, ops_cuda.c): 8. Every block
 * reads and prepares the whole input row, so half as many blocks read it
 * half as often: tg128 on an H100 +3.5% bf16, +4.6% q8_0, +3.7% q4_0
 * over 4 warps (src/cuda/NOTES.md, session 15, call 7). A build may set another, for the
 * host and the kernels at once: make BUILD=build-w16 GEMV_WARPS=16. */
#ifndef FS_CU_GEMV_WARPS
#define FS_CU_GEMV_WARPS 8
#endif
#if FS_CU_GEMV_WARPS % 4 != 0 || FS_CU_GEMV_WARPS < 4 || FS_CU_GEMV_WARPS > 32
#error "FS_CU_GEMV_WARPS: a multiple of 4 from 4 to 32 (the split GEMV gives each row 4 warps)"
#endif

/* One event of the timeline build (common.cuh tl_mark, timeline.c). */
typedef struct fs_cu_tl_event {
    unsigned long long t;   /* %globaltimer, ns */
    unsigned what;          /* kind | phase << 8 | last block << 12 | SM << 16 */
    unsigned tag;           /* the call's weight or cache address >> 8 */
} fs_cu_tl_event;

#define FS_CU_MM_MAX 4
#define FS_CU_PF_MAX 4

/* A matmul call: y_i (+)= in W_i^T for up to 4 layers sharing the input.
 * in[t, k] = x[t, k]                                  (norm = up = 0)
 *          = norm[k] * (x[t, k] * rms_scale(x[t, :]))  (norm)
 *          = silu(x[t, k]) * up[t, k]                  (up: SwiGLU) */
typedef struct fs_cu_mm {
    fs_cu_linear out[FS_CU_MM_MAX];
    fs_cu_ptr x, norm, up;
    fs_cu_ptr xb;        /* GEMM: the input rounded to bf16, [T, K] (scratch) */
    fs_cu_ptr part;      /* GEMM split over K: partial tiles [tiles][k_split][64 * 64] (scratch) */
    fs_cu_ptr counter;   /* GEMM split over K: one arrival count per tile, 0 between calls */
    /* GEMV: weights of later ops (backend.h's prefetch hint) that this
     * launch asks the L2 cache to load while it runs: n_pf ranges */
    fs_cu_ptr pf[FS_CU_PF_MAX];
    unsigned long long pf_bytes[FS_CU_PF_MAX];
    int n_pf;
    int pf_late;         /* 1: ask after the kernel's own work instead of before it (A/B) */
    int n_out;
    int dtype;           /* of every W in this call */
    int norm_dtype;
    float eps;
    int T, K;
    int N_total;         /* rows of all layers of the call */
    int k_split;         /* GEMM: slices of K, one block each (1: no split) */
    /* the staged GEMV (gemv_stage.cu): rows per block, and where in the
     * block's shared memory the norm's weights, the rows' weights and
     * their scales begin (bytes; the input row is at 0) */
    int stage_rows, stage_norm_off, stage_w_off, stage_s_off;
} fs_cu_mm;

/* rope_kv (backend.h): q/k/v biases, QK-norm, RoPE and the K/V store. */
typedef struct fs_cu_rope {
    fs_cu_caches caches;
    fs_cu_ptr q, k, v, q_norm, k_norm, inv_freq, step;
    fs_cu_ptr q_bias, k_bias, v_bias;   /* 0: none (only Qwen2 has them) */
    int q_norm_dtype, k_norm_dtype;
    int q_bias_dtype, k_bias_dtype, v_bias_dtype;
    float eps;
    int Hq, Hkv, D;
} fs_cu_rope;

/* attention (backend.h). Each cache holds K then V, each [Hkv, n_ctx, D]
 * (fs_cu_caches): one head's positions are contiguous, so a split of the
 * context is one contiguous range of memory. The decode kernel takes the
 * tokens t0 .. t0 + gridDim.z - 1 of the step, each against its own
 * sequence's cache; it splits the context into n_split ranges of `chunk`
 * positions and combines them (see attention.cu); by the token's place in
 * the launch, part_o [tokens, Hq, n_split, D], part_ml [tokens, Hq,
 * n_split, 2] and counter [tokens, Hkv] are its scratch. */
typedef struct fs_cu_attn {
    fs_cu_caches caches;
    fs_cu_ptr q, out, step;
    fs_cu_ptr part_o, part_ml, counter;
    int Hq, Hkv, D;
    int n_split, chunk;
    int t0;
    int min_keys;   /* keys per range at least (attention.cu) */
    int pf;         /* what a block asks L2 for before it waits: bit 0 its keys, bit 1 its values */
} fs_cu_attn;

/* The persistent decode step (persist.cu): the ops of a recorded
 * one-token step, as a program that one launch runs from start to end.
 * An instruction is one op call, with the arguments its own kernel would
 * have had. */
enum { FS_CU_OP_MM = 1, FS_CU_OP_ROPE = 2, FS_CU_OP_ATTN = 3 };
typedef struct fs_cu_instr {
    int op;     /* FS_CU_OP_* */
    int pad;
    union {
        fs_cu_mm mm;       /* a one-token matmul (T = 1) */
        fs_cu_rope rope;   /* rope_kv of the step's token */
        fs_cu_attn attn;   /* decode attention: n_split ranges of each kv head */
    } u;
} fs_cu_instr;

/* Shared memory a persistent block streams weights through: slots of
 * FS_CU_PS_SLOT bytes (each one chunk of whole weight rows). */
#define FS_CU_PS_SLOT 16384
#define FS_CU_PS_MAX_SLOTS 16
/* A persistent block: 8 warps run the ops, one more copies the weights. */
#define FS_CU_PS_WARPS 8
#define FS_CU_PS_THREADS (FS_CU_PS_WARPS * 32 + 32)

typedef struct fs_cu_persist {
    fs_cu_ptr prog;    /* fs_cu_instr[n] */
    fs_cu_ptr sync;    /* two unsigned: barrier arrivals, blocks finished (both 0 between launches) */
    int n;             /* instructions */
    int n_slot;        /* weight slots in shared memory (<= FS_CU_PS_MAX_SLOTS) */
    int region;        /* bytes after the slots: the matmul input row, or attention's scores */
    int flags;         /* FS_CU_PS_* */
    fs_cu_ptr prof;    /* 0, or timestamps (FS_CUDA_PERSIST_PROF): [n][blocks][3] ns, each
                          instruction's start, input ready, end, per block */
} fs_cu_persist;
/* flags: the barrier as a release add and acquire loads, without the two
 * full fences (an A/B switch: FS_CUDA_PERSIST=2) */
#define FS_CU_PS_LIGHT_BARRIER 1
/* ... and rope_kv folded into the attention after it (FS_CUDA_PERSIST=3) */
#define FS_CU_PS_FUSE_ROPE 2

#endif
