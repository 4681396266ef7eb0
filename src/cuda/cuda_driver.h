/* cuda_driver.h - the part of NVIDIA's driver API the CUDA backend uses,
 * loaded at run time.
 *
 * fs links no CUDA library. fs_cu_load() dlopen()s libcuda.so.1 (installed
 * with the NVIDIA driver, not with the toolkit) and looks up each entry
 * point below by name, so one fs binary runs on machines with and without a
 * GPU. On a machine without the driver the load fails with a clear reason
 * and fs runs on the CPU.
 *
 * The declarations are ours, written from the driver API reference (cuda.h
 * need not be installed to build fs): handles are opaque pointers, a device
 * address is a 64-bit integer, every call returns a CUresult (0 = success).
 * Several entry points exist in more than one version; the header's macros
 * map cuMemAlloc to cuMemAlloc_v2 and so on, and here we name the exported
 * symbol we mean directly (the table in cuda_driver.c).
 *
 * Docs: docs/gpu.md
 */
#ifndef FS_CUDA_DRIVER_H
#define FS_CUDA_DRIVER_H

#include <stddef.h>

typedef int CUresult;                 /* 0 = CUDA_SUCCESS */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

/* The few constants we pass (values from the driver API reference). */
enum {
    FS_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    FS_CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    FS_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    FS_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    FS_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    FS_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    FS_CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9,
    FS_CU_STREAM_NON_BLOCKING = 1,
    FS_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    FS_CU_EVENT_DEFAULT = 0,
    FS_CU_ERROR_NOT_READY = 600,   /* cuStreamQuery: work still in flight */
    FS_CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
};

/* cuLaunchKernelEx's launch description (CUlaunchConfig) and one
 * attribute (CUlaunchAttribute: an id, then a 64-byte value union). */
typedef struct fs_cu_launch_attr {
    int id;
    char pad[4];
    union {
        int value;
        unsigned long long align;
        char bytes[64];
    } v;
} fs_cu_launch_attr;

typedef struct fs_cu_launch_config {
    unsigned grid_x, grid_y, grid_z, block_x, block_y, block_z, smem_bytes;
    CUstream stream;
    fs_cu_launch_attr *attrs;
    unsigned n_attrs;
} fs_cu_launch_config;

/* The entry points, one function pointer each. */
typedef struct fs_cu_api {
    CUresult (*Init)(unsigned flags);
    CUresult (*DriverGetVersion)(int *version);
    CUresult (*GetErrorName)(CUresult r, const char **s);
    CUresult (*GetErrorString)(CUresult r, const char **s);
    CUresult (*DeviceGetCount)(int *n);
    CUresult (*DeviceGet)(CUdevice *d, int ordinal);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice d);
    CUresult (*DeviceGetAttribute)(int *v, int attr, CUdevice d);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice d);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *c, CUdevice d);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice d);
    CUresult (*DevicePrimaryCtxSetFlags)(CUdevice d, unsigned flags);
    CUresult (*CtxSetCurrent)(CUcontext c);
    CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total_bytes);
    CUresult (*MemAlloc)(CUdeviceptr *p, size_t bytes);
    CUresult (*MemFree)(CUdeviceptr p);
    CUresult (*MemAllocHost)(void **p, size_t bytes);
    CUresult (*MemHostGetDevicePointer)(CUdeviceptr *d, void *p, unsigned flags);
    CUresult (*MemFreeHost)(void *p);
    CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s);
    CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream s);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
    CUresult (*MemsetD32Async)(CUdeviceptr dst, unsigned v, size_t n, CUstream s);
    CUresult (*ModuleLoadData)(CUmodule *m, const void *image);
    CUresult (*ModuleUnload)(CUmodule m);
    CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
    CUresult (*ModuleGetGlobal)(CUdeviceptr *p, size_t *bytes, CUmodule m, const char *name);
    CUresult (*FuncSetAttribute)(CUfunction f, int attr, int value);
    CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned smem, CUstream s, void **params, void **extra);
    /* CUDA 12.0+; NULL on older drivers (then no programmatic launches) */
    CUresult (*LaunchKernelEx)(const fs_cu_launch_config *config, CUfunction f, void **params, void **extra);
    CUresult (*StreamCreate)(CUstream *s, unsigned flags);
    CUresult (*StreamDestroy)(CUstream s);
    CUresult (*StreamSynchronize)(CUstream s);
    CUresult (*StreamQuery)(CUstream s);
    CUresult (*StreamBeginCapture)(CUstream s, int mode);
    CUresult (*StreamEndCapture)(CUstream s, CUgraph *g);
    CUresult (*GraphInstantiate)(CUgraphExec *x, CUgraph g, unsigned long long flags);
    CUresult (*GraphLaunch)(CUgraphExec x, CUstream s);
    CUresult (*GraphExecDestroy)(CUgraphExec x);
    CUresult (*GraphDestroy)(CUgraph g);
    CUresult (*EventCreate)(CUevent *ev, unsigned flags);
    CUresult (*EventDestroy)(CUevent ev);
    CUresult (*EventRecord)(CUevent ev, CUstream s);
    CUresult (*EventSynchronize)(CUevent ev);
    CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
} fs_cu_api;

/* Load libcuda.so.1 and every entry point into *api. 0, or -1 with why in
 * msg (no driver installed, or one too old to export a symbol we need). */
int fs_cu_load(fs_cu_api *api, char *msg, size_t msg_len);

/* "CUDA_ERROR_OUT_OF_MEMORY (out of memory)" for r, in a static buffer. */
const char *fs_cu_error(const fs_cu_api *api, CUresult r);

#endif
