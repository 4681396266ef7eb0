/* step.cu - set_step on the device: where the kernels find the step.
 *
 *   step[0] = T, step[1] = n_seq, step[2 + 3t ..] = id, pos, seq of token t
 *                                                           (kernel_args.h)
 *
 * The token ids and positions are not kernel arguments, because a
 * recorded decode step (a CUDA graph) replays the same arguments every
 * time; kernels read them from this array instead. For steps of up to
 * 330 tokens the host passes the step in this kernel's parameters (one
 * thread block copies them); longer steps are copied from pinned memory
 * (backend_cuda.c).
 *
 * Docs: docs/gpu.md
 */
#include "common.cuh"

/* set_step: the step (T, n_seq, each token's id, position and sequence)
 * from the launch's parameters into device memory, where every kernel of
 * the step reads it. It does not let
 * the next kernel launch early (no pdl_launch_dependents): rope_kv and
 * attention read the step before their wait, which is safe only because
 * nothing launched after set_step starts before the step is written. */
extern "C" __global__ void __launch_bounds__(256) set_step(fs_cu_step_args a) {
    pdl_wait();
    for (int i = threadIdx.x; i < a.n; i += blockDim.x) ((int *)a.step)[i] = a.v[i];
}

/* set_step_mapped: a one-token step from pinned host memory (read over the
 * bus when the kernel runs) into device memory. The first node of a
 * recorded decode step: the host writes T = 1, n_seq, the id, the position
 * and the sequence into that memory and launches the graph, one submission
 * per token. */
extern "C" __global__ void __launch_bounds__(32) set_step_mapped(const int *host, fs_cu_ptr step) {
    pdl_wait();
    if (threadIdx.x < FS_CU_STEP_TOK + FS_CU_TOK_INTS)
        ((int *)step)[threadIdx.x] = ((const volatile int *)host)[threadIdx.x];
}
