/* kernels.cu - every kernel of the CUDA backend, as one compilation unit.
 *
 * nvcc turns this file into one fatbin (machine code for sm_80 and sm_90,
 * and PTX for newer GPUs to compile at load time), which the build embeds
 * in the fs binary as a byte array; backend_cuda.c loads it with
 * cuModuleLoadData and finds each kernel by name. Each op lives in its own
 * file, included here.
 *
 * Docs: docs/gpu.md
 */
#include "step.cu"
#include "embed.cu"
#include "rmsnorm.cu"
#include "gemv.cu"
#include "gemv_stage.cu"
#include "gemm.cu"
#include "gemm_skinny.cu"
#include "rope_kv.cu"
#include "attention.cu"
#include "attention_prefill.cu"
#include "attention_tc.cu"
#include "argmax.cu"
#include "persist.cu"
