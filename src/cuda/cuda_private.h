/* cuda_private.h - private to src/cuda/: the CUDA backend's state and
 * buffers, shared by backend_cuda.c (memory, the step, recorded steps) and
 * ops_cuda.c (one launcher per op).
 *
 * Docs: docs/gpu.md
 */
#ifndef FS_CUDA_PRIVATE_H
#define FS_CUDA_PRIVATE_H

#include <stdio.h>

#include "backend.h"
#include "cuda/backend_cuda.h"
#include "cuda_driver.h"
#include "kernel_args.h"

enum { CUDA_BUF_ACT, CUDA_BUF_WEIGHT, CUDA_BUF_KV };

struct fs_buf {
    CUdeviceptr p;        /* f32 elements; a weight's values or quants; the KV cache */
    CUdeviceptr scales;   /* Q8_0 / Q4_0: f16 scales [rows, cols/32] (inside the same allocation); else 0 */
    size_t bytes;         /* device bytes of the allocation */
    int kind;
    fs_dtype dtype;       /* F32 for activations and the cache */
    int rows, cols;       /* weights: [rows, cols]; a vector is [1, n] */
    int n_ctx, Hkv, D;    /* KV cache: K then V, each [Hkv, n_ctx, D] f32 */
    const void *host;     /* weights: the tensor data uploaded (a tied lm_head shares it) */
    size_t host_bytes;
    int refs;
    fs_buf *next;         /* weights: the list of uploads */
};

/* Kernels by name, loaded from the embedded fatbin. Indexed by dtype
 * where there is one per weight format (fs_dtype order). */
typedef struct cuda_kernels {
    CUfunction embed, set_step, set_step_ring, rmsnorm, rope_kv, argmax;
    /* attention, per KV cache type: [0] f32, [1] f16 */
    CUfunction attention_decode_128[2], attention_decode_256[2], attention_prefill[2], attention_tc_64[2], attention_tc_128[2];
    CUfunction gemv[5], gemv_split[5], gemv_any, gemm[5], mm_input_bf16;
    CUfunction gemv_stage[5];  /* the staged GEMV (sm_90; 0 elsewhere) */
    CUfunction gemm_pipe[5];   /* the pipelined GEMM: bf16, q8_0, q4_0 (0 elsewhere, or where it does not fit) */
    CUfunction gemm_pipe128;   /* its 128x128 tiles, bf16 (a prefill chunk: T > 64) */
    CUfunction decode_persist; /* a recorded decode step as one launch (persist.cu) */
    CUfunction gemm_skinny[5][4][3];   /* a few tokens (gemm_skinny.cu): bf16, f16, q8_0, q4_0; up to 8, 16,
                                          32, 64 tokens; 8, 2 or 1 row groups a block */
} cuda_kernels;

typedef struct cuda_ctx {
    fs_cu_api cu;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUstream stream;
    fs_dtype kv_dtype;   /* of the KV caches kv_alloc makes: F32, or F16 (--kv f16) */
    cuda_kernels k;
    int sm_count, cc_major, cc_minor, driver_version;
    int programmatic;     /* kernels launched with programmatic dependencies (fs_cuda_launch) */
    int pdl_max_T;        /* ... in steps of up to this many tokens (64; FS_CUDA_PDL_T for A/B runs) */
    size_t total_mem;
    char name[256], desc[512];

    /* scratch from reserve: one allocation, carved */
    CUdeviceptr scratch;
    size_t scratch_bytes;
    CUdeviceptr step, xb, part_o, part_ml, att_counter, argmax_part, argmax_counter, argmax_result, inv_freq;
    CUdeviceptr gemm_part, gemm_counter;   /* split-K GEMM: partial tiles, arrival counts */
#define GEMM_SPLIT 4                       /* scratch: partial tiles for GEMM_SPLIT x SMs blocks */
    int gemm_split_max;                    /* FS_CU_GEMM_SPLIT_MAX, or FS_CUDA_GEMM_SPLIT (A/B runs) */
#define ATT_BATCH_TOKENS 64                /* tokens per decode attention launch of a step that mixes
                                              sequences (its partials' scratch; backend_cuda.c) */
    int gemm_split_tiles;                  /* tiles the split-K scratch holds */
    int gemm_kind;                         /* FS_CUDA_GEMM: 0 pipe, 1 old (the first kernel only), 2 pipe64 */
    int no_skinny;                         /* FS_CUDA_SKINNY=0: 2 <= T <= 64 on the GEMM too (A/B runs) */
    int max_T, max_seqs, max_K, n_ctx, Hq, Hkv, D, max_split;
    int att_tokens;       /* tokens one decode attention launch takes (its scratch's size) */
    int att_min_keys;     /* decode attention: keys per range at least (FS_CUDA_ATT_MIN_KEYS, default 64) */
    int *step_host;       /* [2 + 3 max_T], pinned: the step as set_step sends it */
    CUevent step_sent;    /* recorded after the copy of step_host */
    int *result_host;     /* pinned: argmax's answer (argmax_rows: max_seqs of them) */
    int step_pending;     /* a T = 1 step set but not yet on the device */
    int pend_queued_id;   /* ...whose token is the last queued argmax (set_step with no ids) */
    /* The step ring (kernel_args.h): recorded steps take their step from
     * host-mapped memory, so a token is one graph launch and nothing else. */
    int *ring;                 /* pinned, mapped: [FS_CU_RING][FS_CU_RING_INTS] */
    CUdeviceptr ring_dev;      /* the same memory, as the device sees it */
    unsigned *consumed;        /* pinned, mapped: steps whose entry set_step_ring has read */
    CUdeviceptr consumed_dev;
    CUdeviceptr ring_count;    /* device: recorded steps started (set_step_ring counts) */
    unsigned ring_next;        /* host: recorded steps launched */
    /* The last replay, while nothing has been launched after it: its number
     * and the logits its closing argmax read (0: none), so an argmax of
     * those logits is read from the ring instead of computed again. */
    unsigned replayed_k;
    fs_cu_ptr replayed_x;
    fs_cu_ptr cap_argmax_x;    /* inside record: the logits the recorded argmax reads */
    long long slot_k[2];       /* argmax_queue's slots: a ring step's number, or -1: queued_host */
    int *queued_host;     /* [2] pinned: argmax_queue's answers, one per slot */
    CUevent queued_done[2];   /* recorded after each slot's copy */
    int pend[FS_CU_STEP_TOK + FS_CU_TOK_INTS];   /* that step, as the device will hold it */

    /* the current step, host copy: grid sizes, and which attention kernel */
    int T, n_seq;
    int one_seq;          /* every token of one sequence, at consecutive positions (a prompt) */
    fs_cu_step_args step_args;   /* set_step's kernel parameters (4 KB: not on the stack) */
    fs_buf *weights;      /* uploaded weights, for sharing a tied lm_head */

    /* the prefetch hint (backend.h) not yet given to a GEMV launch */
    int n_pf;
    fs_cu_ptr pf[FS_CU_PF_MAX];
    unsigned long long pf_bytes[FS_CU_PF_MAX];
    size_t stage_bytes;   /* the staged GEMV's shared memory per block at most (0: not used;
                             FS_CUDA_GEMV_STAGE=KB) */
    int no_prefetch;      /* hints are ignored (the default; FS_CUDA_PREFETCH=1 acts on them) */
    int prefetch_late;    /* FS_CUDA_PREFETCH=late: GEMVs ask at their end, not their start */

    /* The persistent decode step (persist.c, persist.cu): while a step is
     * recorded, its matmuls, rope_kv and attention become a program, sent
     * as one launch of decode_persist. */
    int persist;          /* FS_CUDA_PERSIST=1 (sm_90): record programs (2: light barriers; 0, the default: not) */
    int ps_prof;          /* FS_CUDA_PERSIST_PROF=1: time each instruction; report when the record is freed */
    int ps_slots;         /* its blocks' weight slots (0: the GPU cannot run it) */
    int ps_region;        /* bytes of shared memory after them: input row, attention */
    fs_cu_instr *prog;    /* host: the program of the step being recorded */
    int n_prog, prog_cap; /* its instructions; room in prog and prog_dev */
    int prog_sent;        /* instructions already launched (a launch of another op ends a program) */
    int prog_full;        /* this record ran out of room: the next gets twice as much */
    CUdeviceptr prog_dev; /* the record's copy: two counters, then the instructions */

    /* FS_CUDA_TIMELINE (timeline.c): the kernels' event buffer, 0 if off */
    CUdeviceptr tl_buf, tl_count;
    const char *tl_path;
    FILE *tl_file;        /* opened by open, written and closed by close */

    int capturing;        /* inside record: errors are remembered, not fatal */
    CUresult capture_err;
    const char *capture_what;
} cuda_ctx;

static inline cuda_ctx *cuda_of(const fs_backend *b) { return (cuda_ctx *)b->ctx; }

/* A failed driver call inside an op. Ops cannot fail (backend.h): a launch
 * or copy that does means a broken context (a kernel fault) or a bug, so
 * it is fatal - printed and aborted, like running out of memory in
 * fs_xmalloc - except while recording, where record() reports it. */
void fs_cuda_check(cuda_ctx *c, CUresult r, const char *what);

/* Launch f on the backend's stream with one by-value argument struct (or
 * the params array of a kernel with several). */
void fs_cuda_launch(cuda_ctx *c, CUfunction f, unsigned gx, unsigned gy, unsigned threads, unsigned smem,
                    void **params, const char *what);
void fs_cuda_launch3(cuda_ctx *c, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned threads, unsigned smem,
                     void **params, const char *what);

/* The decode attention's number of context splits for a cache of n_ctx
 * positions (attention.cu): fixed per cache, never per position. */
int fs_cuda_attn_splits(int n_ctx, int group, int D);
size_t fs_cuda_attn_smem(int n_ctx, int n_split, int group, int D);
/* Shared memory of the prefill attention blocks (attention_prefill.cu,
 * attention_tc.cu). */
size_t fs_cuda_prefill_smem(int D);
size_t fs_cuda_tc_smem(int D);
/* Shared memory of a GEMV block for inputs of K floats (gemv.cu's padding). */
size_t fs_cuda_gemv_smem(int K);
/* The pipelined GEMM's kernels (ops_cuda.c): looked up, given their shared
 * memory; FS_CUDA_GEMM read. Called once the module is loaded. */
int fs_cuda_gemm_init(cuda_ctx *c, fs_err *e);

/* The persistent decode step (persist.c). init: after reserve, its
 * shared memory (0, or ps_slots = 0 where it cannot run). begin / end
 * bracket a record (end: after the capture; uploads the program and
 * returns its device memory, which the record frees, or 0). The take_*
 * calls add an op to the program being recorded and return 1, or 0 when
 * the op must be launched as usual (not recording, or a shape the kernel
 * does not take). flush launches the instructions not yet sent. */
void fs_cuda_persist_init(cuda_ctx *c);
void fs_cuda_persist_begin(cuda_ctx *c);
CUdeviceptr fs_cuda_persist_end(cuda_ctx *c, int ok, int **prof_info, int *n);
/* With FS_CUDA_PERSIST_PROF=1: the last replay's timings of the program
 * in prog (n instructions, info: op, rows and K of each), summed by kind
 * of instruction, to stderr; frees info. */
void fs_cuda_persist_report(cuda_ctx *c, CUdeviceptr prog, int n, int *info);
int fs_cuda_persist_mm(cuda_ctx *c, const fs_cu_mm *a);
int fs_cuda_persist_rope(cuda_ctx *c, const fs_cu_rope *a);
int fs_cuda_persist_attn(cuda_ctx *c, const fs_cu_attn *a, size_t smem);
void fs_cuda_persist_flush(cuda_ctx *c);
extern long fs_cuda_persist_launches;   /* programs launched (test_cuda, test_forward count them) */

/* FS_CUDA_TIMELINE=file (timeline.c): open after the module is loaded (0,
 * or -1 with why), close before the module is unloaded (writes the file). */
int fs_cuda_timeline_open(cuda_ctx *c, fs_err *e);
void fs_cuda_timeline_close(cuda_ctx *c);

/* The ops (ops_cuda.c), installed into struct fs_backend by backend_cuda.c. */
void fs_cuda_embed(fs_backend *b, const fs_buf *table, int H, fs_buf *out);
void fs_cuda_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps);
void fs_cuda_matmul(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n);
void fs_cuda_rope_kv(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm, const fs_buf *k_norm,
                     float eps, fs_buf *const *caches, int Hq, int Hkv, int D, const fs_qkv_bias *bias);
void fs_cuda_attention(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv, int D);
void fs_cuda_prefetch(fs_backend *b, const fs_buf *const *w, int n);
void fs_cuda_copy(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n);
int fs_cuda_argmax(fs_backend *b, const fs_buf *x, int n);
void fs_cuda_argmax_rows(fs_backend *b, const fs_buf *x, int rows, int n, int *out);
void fs_cuda_argmax_queue(fs_backend *b, const fs_buf *x, int n, int slot);
int fs_cuda_argmax_take(fs_backend *b, int slot);

#endif
