/* cuda_driver.c - dlopen("libcuda.so.1") and find the driver API by name.
 *
 * The symbol names are the versions the CUDA 12/13 headers select: where
 * cuda.h says `#define cuMemAlloc cuMemAlloc_v2`, we ask for
 * "cuMemAlloc_v2". A name missing from the library means a driver older
 * than the API we were written against; the message says which.
 *
 * Docs: docs/gpu.md
 */
#include <stdio.h>
#include <string.h>

#include "cuda_driver.h"

#if defined(__linux__)
#include <dlfcn.h>
#define FS_CU_HAVE_DLOPEN 1
#endif

#ifdef FS_CU_HAVE_DLOPEN
/* Each slot of fs_cu_api and the exported name that fills it. When a name
 * has an older fallback (same signature), both are listed. */
typedef struct entry {
    size_t offset;
    const char *name, *fallback;
    int optional;   /* may be missing: the slot stays NULL */
} entry;

#define E(field, name) { offsetof(fs_cu_api, field), name, NULL, 0 }
static const entry entries[] = {
    E(Init, "cuInit"),
    E(DriverGetVersion, "cuDriverGetVersion"),
    E(GetErrorName, "cuGetErrorName"),
    E(GetErrorString, "cuGetErrorString"),
    E(DeviceGetCount, "cuDeviceGetCount"),
    E(DeviceGet, "cuDeviceGet"),
    E(DeviceGetName, "cuDeviceGetName"),
    E(DeviceGetAttribute, "cuDeviceGetAttribute"),
    E(DeviceTotalMem, "cuDeviceTotalMem_v2"),
    E(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    E(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    E(DevicePrimaryCtxSetFlags, "cuDevicePrimaryCtxSetFlags_v2"),
    E(CtxSetCurrent, "cuCtxSetCurrent"),
    E(MemGetInfo, "cuMemGetInfo_v2"),
    E(MemAlloc, "cuMemAlloc_v2"),
    E(MemFree, "cuMemFree_v2"),
    E(MemAllocHost, "cuMemAllocHost_v2"),
    E(MemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2"),
    E(MemFreeHost, "cuMemFreeHost"),
    E(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    E(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    E(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
    E(MemsetD32Async, "cuMemsetD32Async"),
    E(ModuleLoadData, "cuModuleLoadData"),
    E(ModuleUnload, "cuModuleUnload"),
    E(ModuleGetFunction, "cuModuleGetFunction"),
    E(ModuleGetGlobal, "cuModuleGetGlobal_v2"),
    E(FuncSetAttribute, "cuFuncSetAttribute"),
    E(LaunchKernel, "cuLaunchKernel"),
    { offsetof(fs_cu_api, LaunchKernelEx), "cuLaunchKernelEx", NULL, 1 },
    E(StreamCreate, "cuStreamCreate"),
    E(StreamDestroy, "cuStreamDestroy_v2"),
    E(StreamSynchronize, "cuStreamSynchronize"),
    E(StreamQuery, "cuStreamQuery"),
    E(StreamBeginCapture, "cuStreamBeginCapture_v2"),
    E(StreamEndCapture, "cuStreamEndCapture"),
    E(GraphInstantiate, "cuGraphInstantiateWithFlags"),
    E(GraphLaunch, "cuGraphLaunch"),
    E(GraphExecDestroy, "cuGraphExecDestroy"),
    E(GraphDestroy, "cuGraphDestroy"),
    E(EventCreate, "cuEventCreate"),
    E(EventDestroy, "cuEventDestroy_v2"),
    E(EventRecord, "cuEventRecord"),
    E(EventSynchronize, "cuEventSynchronize"),
    /* CUDA 12.8 added _v2 (same signature); older drivers have only v1. */
    { offsetof(fs_cu_api, EventElapsedTime), "cuEventElapsedTime_v2", "cuEventElapsedTime", 0 },
};
#undef E
#endif

int fs_cu_load(fs_cu_api *api, char *msg, size_t msg_len) {
    memset(api, 0, sizeof *api);
#ifndef FS_CU_HAVE_DLOPEN
    snprintf(msg, msg_len, "the CUDA backend needs Linux (libcuda.so.1)");
    return -1;
#else
    /* Kept open for the life of the process: the driver cannot be unloaded
     * safely while any context it created may still exist. */
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(msg, msg_len, "no NVIDIA driver: cannot load libcuda.so.1 (%s)", why ? why : "not found");
        return -1;
    }
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        void *f = dlsym(lib, entries[i].name);
        if (!f && entries[i].fallback) f = dlsym(lib, entries[i].fallback);
        if (!f && entries[i].optional) continue;
        if (!f) {
            snprintf(msg, msg_len, "the NVIDIA driver is too old: libcuda.so.1 has no %s", entries[i].name);
            return -1;
        }
        /* A data pointer to a function pointer: POSIX guarantees dlsym's
         * result converts; memcpy keeps ISO C quiet about it. */
        memcpy((char *)api + entries[i].offset, &f, sizeof f);
    }
    return 0;
#endif
}

const char *fs_cu_error(const fs_cu_api *api, CUresult r) {
    static char buf[256];
    const char *name = NULL, *str = NULL;
    if (api->GetErrorName) api->GetErrorName(r, &name);
    if (api->GetErrorString) api->GetErrorString(r, &str);
    snprintf(buf, sizeof buf, "%s (%s)", name ? name : "CUDA error", str ? str : "unknown");
    if (!name) snprintf(buf, sizeof buf, "CUDA error %d", r);
    return buf;
}
