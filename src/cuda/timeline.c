/* timeline.c - FS_CUDA_TIMELINE=file: where a decode step's time goes,
 * kernel by kernel, measured inside the kernels.
 *
 * A decode step is ~170 kernels chained by programmatic launches and
 * replayed from a graph; timing them from the host sees only the whole.
 * With the variable set, the backend gives the kernels a buffer of events
 * (common.cuh, tl_mark: the first and last block of each decode kernel
 * write the GPU's nanosecond clock when their loads are issued, when their
 * wait for the previous kernel returns and when they end) and writes them
 * to the file when the backend is destroyed, one line an event:
 *
 *   t_ns kind phase last_block sm tag
 *
 * tools/gpu_timeline.py reads it: per kind of kernel, how long after its
 * predecessor it could start, and how long its own work after the wait
 * took - the numbers behind docs/gpu.md's "Where the gap is". A
 * measurement switch: the marks cost a clock read and an atomic in two
 * threads a kernel.
 *
 * Docs: docs/gpu.md
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_private.h"
#include "util.h"

#define TL_CAP (1u << 21) /* events kept (16 bytes each): ~1,350 decode steps of Qwen3-0.6B */

int fs_cuda_timeline_open(cuda_ctx *c, fs_err *e) {
    const char *path = getenv("FS_CUDA_TIMELINE");
    if (!path || !*path) return 0;
    if (c->persist || c->stage_bytes)   /* their kernels carry no (or partial) marks */
        return fs_errf(e, "cuda: FS_CUDA_TIMELINE: not with FS_CUDA_PERSIST or FS_CUDA_GEMV_STAGE");
    CUdeviceptr ev_sym, cap_sym, count_sym;
    size_t n;
    if (!c->cu.ModuleGetGlobal || c->cu.ModuleGetGlobal(&ev_sym, &n, c->mod, "tl_events") ||
        c->cu.ModuleGetGlobal(&cap_sym, &n, c->mod, "tl_cap") || c->cu.ModuleGetGlobal(&count_sym, &n, c->mod, "tl_count"))
        return fs_errf(e, "cuda: FS_CUDA_TIMELINE: this fs's kernels were built without the timeline "
                          "(make BUILD=build-tl CUDA_TIMELINE=1)");
    FILE *f = fopen(path, "w");   /* now, so that a path that cannot be written fails before the run */
    if (!f) return fs_errf(e, "cuda: FS_CUDA_TIMELINE: cannot write %s", path);
    CUresult r = c->cu.MemAlloc(&c->tl_buf, (size_t)TL_CAP * sizeof(fs_cu_tl_event));
    unsigned cap = TL_CAP, zero = 0;
    if (!r) r = c->cu.MemcpyHtoDAsync(ev_sym, &c->tl_buf, sizeof c->tl_buf, c->stream);
    if (!r) r = c->cu.MemcpyHtoDAsync(cap_sym, &cap, sizeof cap, c->stream);
    if (!r) r = c->cu.MemcpyHtoDAsync(count_sym, &zero, sizeof zero, c->stream);
    if (!r) r = c->cu.StreamSynchronize(c->stream);
    if (r) {
        fclose(f);
        if (c->tl_buf) c->cu.MemFree(c->tl_buf);
        c->tl_buf = 0;
        return fs_errf(e, "cuda: FS_CUDA_TIMELINE: %s", fs_cu_error(&c->cu, r));
    }
    c->tl_count = count_sym;
    c->tl_path = path;
    c->tl_file = f;
    return 0;
}

void fs_cuda_timeline_close(cuda_ctx *c) {
    if (!c->tl_buf) return;
    unsigned n = 0;
    fs_cu_tl_event *ev = NULL;
    CUresult r = c->cu.StreamSynchronize(c->stream);
    if (!r) r = c->cu.MemcpyDtoHAsync(&n, c->tl_count, sizeof n, c->stream);
    if (!r) r = c->cu.StreamSynchronize(c->stream);
    if (!r) {
        if (n >= TL_CAP) fprintf(stderr, "fs: FS_CUDA_TIMELINE: the buffer filled up: the first %u events kept\n", TL_CAP);
        if (n > TL_CAP) n = TL_CAP;
        ev = fs_xmalloc((size_t)n * sizeof *ev + 1);
        r = c->cu.MemcpyDtoHAsync(ev, c->tl_buf, (size_t)n * sizeof *ev, c->stream);
        if (!r) r = c->cu.StreamSynchronize(c->stream);
    }
    FILE *f = c->tl_file;
    if (r) {
        fprintf(stderr, "fs: FS_CUDA_TIMELINE: reading the events failed: %s\n", fs_cu_error(&c->cu, r));
        fclose(f);
    } else {
        int bad = fprintf(f, "# t_ns kind phase last_block sm tag (src/cuda/timeline.c)\n") < 0;
        for (unsigned i = 0; i < n && !bad; i++)
            bad = fprintf(f, "%llu %u %u %u %u %u\n", ev[i].t, ev[i].what & 0xff, (ev[i].what >> 8) & 0xf,
                          (ev[i].what >> 12) & 1, ev[i].what >> 16, ev[i].tag) < 0;
        if (fclose(f) != 0) bad = 1;
        if (bad) fprintf(stderr, "fs: FS_CUDA_TIMELINE: writing %s failed\n", c->tl_path);
        else fprintf(stderr, "fs: FS_CUDA_TIMELINE: %u events in %s\n", n, c->tl_path);
    }
    free(ev);
    c->tl_file = NULL;
    c->cu.MemFree(c->tl_buf);
    c->tl_buf = 0;
}
