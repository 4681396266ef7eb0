/* argmax.cu - the index of the largest logit, on the device.
 *
 *   result = argmax_i x[i], i < n; the lowest index on ties; -1 if any x[i] is NaN
 *
 * Greedy decoding needs one integer per token, not V = 151936 logits, so
 * the search runs where the logits are and 4 bytes cross to the host.
 *
 * Rows: blockIdx.y is the row (argmax_rows: a batch's sessions' logits
 * side by side, each row with its own candidates, counter and result).
 *
 * Mapping. gridDim.x blocks stride over a row of x (coalesced), each thread
 * keeping its best (value, index); a block reduces its threads and writes
 * one candidate to scratch. The last block to finish (an atomic counter,
 * which it resets) reduces the candidates and writes the result. Order of
 * comparison: a larger value wins, an equal value with a lower index wins,
 * so the answer does not depend on the order threads finish.
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

#define ARGMAX_BLOCKS 128
#define ARGMAX_THREADS 256
#define ARGMAX_NAN (-2)   /* candidate index meaning "saw a NaN" */

struct cand {
    float v;
    int i;   /* -1: none yet; ARGMAX_NAN: a NaN */
};

__device__ __forceinline__ cand better(cand a, cand b) {
    if (a.i == ARGMAX_NAN || b.i == ARGMAX_NAN) return cand{0.0f, ARGMAX_NAN};
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

__device__ __forceinline__ cand block_best(cand c, cand *red) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        cand other = {__shfl_xor_sync(0xffffffffu, c.v, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
        c = better(c, other);
    }
    if (lane == 0) red[warp] = c;
    __syncthreads();
    if (warp == 0) {
        c = lane < ARGMAX_THREADS / 32 ? red[lane] : cand{0.0f, -1};
        for (int o = 16; o > 0; o >>= 1) {
            cand other = {__shfl_xor_sync(0xffffffffu, c.v, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
            c = better(c, other);
        }
    }
    return c;   /* valid in thread 0 */
}

/* ring, ring_count (0: none): the argmax that ends a recorded decode step
 * (backend_cuda.c) also writes its answer into the step's entry of the
 * host-mapped step ring, then that entry's done mark (the step's number +
 * 1), which the host polls; see kernel_args.h. */
extern "C" __global__ void __launch_bounds__(ARGMAX_THREADS) argmax(fs_cu_ptr x, int n, fs_cu_ptr part, fs_cu_ptr counter,
                                                                  fs_cu_ptr result, fs_cu_ptr ring, fs_cu_ptr ring_count) {
    pdl_launch_dependents();
    tl_mark(TL_ARGMAX, TL_START, 0);
    pdl_wait();
    tl_mark(TL_ARGMAX, TL_WAITED, 0);
    __shared__ cand red[32];
    __shared__ int is_last;
    const int row = blockIdx.y;
    const float *xs = (const float *)x + (size_t)row * (size_t)n;
    cand *parts = (cand *)part + (size_t)row * gridDim.x;
    counter += (size_t)row * sizeof(int);
    result += (size_t)row * sizeof(int);
    cand c = {0.0f, -1};
    for (int i = blockIdx.x * ARGMAX_THREADS + threadIdx.x; i < n; i += gridDim.x * ARGMAX_THREADS) {
        float v = xs[i];
        if (v != v) c.i = ARGMAX_NAN;
        else if (c.i == -1 || (c.i >= 0 && v > c.v)) c = cand{v, i};
    }
    c = block_best(c, red);
    if (threadIdx.x == 0) {
        parts[blockIdx.x] = c;
        __threadfence();
        is_last = atomicAdd((int *)counter, 1) == (int)gridDim.x - 1;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    c = cand{0.0f, -1};
    for (int b = threadIdx.x; b < (int)gridDim.x; b += ARGMAX_THREADS) {
        cand p = {__ldcg(&parts[b].v), __ldcg(&parts[b].i)};
        c = better(c, p);
    }
    c = block_best(c, red);
    if (threadIdx.x == 0) {
        int answer = c.i == ARGMAX_NAN ? -1 : c.i;
        *(int *)result = answer;
        *(int *)counter = 0;
        if (ring) {   /* the step that just ran is number count - 1 (its set_step_ring counted it) */
            unsigned k = *(const unsigned *)ring_count - 1u;
            volatile int *e = (volatile int *)ring + (k % FS_CU_RING) * FS_CU_RING_INTS;
            e[FS_CU_RING_ANSWER] = answer;
            __threadfence_system();   /* the answer reaches the host before its done mark */
            e[FS_CU_RING_DONE] = (int)(k + 1u);
        }
    }
}
