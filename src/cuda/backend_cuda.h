/* backend_cuda.h - the CUDA backend's entry point (backend.c opens it).
 *
 * Docs: docs/gpu.md
 */
#ifndef FS_BACKEND_CUDA_H
#define FS_BACKEND_CUDA_H

#include "backend.h"

/* The CUDA backend on GPU 0. NULL + e with the reason when there is none
 * usable: an fs built without kernels (no nvcc at build time), no NVIDIA
 * driver (libcuda.so.1), no device, a driver or GPU too old, or less free
 * memory than o->need_bytes. */
fs_backend *fs_backend_cuda_new(const fs_backend_opts *o, fs_err *e);

/* How many matmuls have taken the staged GEMV (gemv_stage.cu) in this
 * process: tests/test_cuda.c checks that its staged passes stage some. */
extern long fs_cuda_staged_launches;
/* ... and the few-token tensor-core matmul (gemm_skinny.cu): the tests
 * check that their batched-step rows ran on it. */
extern long fs_cuda_skinny_launches;

#endif
