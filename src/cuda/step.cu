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
    const int id0 = FS_CU_STEP_TOK + FS_CU_TOK_ID;
    for (int i = threadIdx.x; i < a.n; i += blockDim.x)
        if (i != id0 || !a.id_from) ((int *)a.step)[i] = a.v[i];
    if (a.id_from && threadIdx.x == 0) {   /* the token the device chose (argmax_queue) */
        int id = *(const int *)a.id_from;
        ((int *)a.step)[id0] = id < 0 ? 0 : id;
    }
}

/* set_step_ring: the first kernel of a recorded one-token step. Takes
 * entry `*count mod FS_CU_RING` of the host-mapped step ring
 * (kernel_args.h), writes it as the step (with the last argmax's answer as
 * the token if the entry asks for it), counts, and tells the host that
 * the entry may be reused (consumed, in host memory). One thread: five
 * ints. Its successors in the graph may read the step before their wait,
 * so, like set_step, it never lets them start early. */
extern "C" __global__ void __launch_bounds__(32) set_step_ring(fs_cu_ptr ring, fs_cu_ptr count, fs_cu_ptr consumed,
                                                               fs_cu_ptr step, fs_cu_ptr argmax_result) {
    tl_mark(TL_STEP, TL_START, 0);
    pdl_wait();
    tl_mark(TL_STEP, TL_WAITED, 0);
    if (threadIdx.x != 0) return;
    unsigned k = *(const unsigned *)count;
    const volatile int *e = (const volatile int *)ring + (k % FS_CU_RING) * FS_CU_RING_INTS;
    int *st = (int *)step;
    for (int i = 0; i < FS_CU_STEP_TOK + FS_CU_TOK_INTS; i++) st[i] = e[i];
    if (e[FS_CU_RING_FROM_ARGMAX]) {
        int id = *(const int *)argmax_result;
        st[FS_CU_STEP_TOK + FS_CU_TOK_ID] = id < 0 ? 0 : id;
    }
    *(unsigned *)count = k + 1u;
    *(volatile unsigned *)consumed = k + 1u;
}
