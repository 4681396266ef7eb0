/* bench_attention.c - one decode step's attention at a long context, alone.
 *
 *   build/tools/bench_attention [-t THREADS] [--kv f32|f16] [--depth N] [--layers L]
 *                               (defaults: the backend's threads, f32, 4096, 28)
 *
 * The CPU backend's attention for one token at position N (N + 1 keys),
 * Qwen3-0.6B's heads (16 query heads, 8 KV heads of 128), over L layers'
 * caches in turn - 28 x 33.6 MB at the default depth in f32, more than any
 * CPU's caches, as in a real step - for about a second of wall time.
 * Prints microseconds per layer (wall, and CPU time summed over the
 * threads) and the GB/s of cache read, next to the backend's bandwidth
 * probe: `fs bench --depth 4096` gives the whole token;
 * this gives the part that grows with the context, with nothing else in
 * the way, so a change to the kernel can be A/B'd in seconds.
 *
 * Docs: docs/kv-cache.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "util.h"
#include "cpu/ref.h"

/* CPU time of every thread of the process: on a machine shared with other
 * jobs, the work done, not the time slices lost to them */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int threads = 0, depth = 4096, layers = 28;
    fs_dtype kv = FS_DTYPE_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--depth") && i + 1 < argc) depth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc) {
            const char *k = argv[++i];
            if (!strcmp(k, "f16")) kv = FS_DTYPE_F16;
            else if (strcmp(k, "f32")) return fprintf(stderr, "bench_attention: --kv f32 or f16\n"), 1;
        } else {
            fprintf(stderr, "usage: bench_attention [-t THREADS] [--kv f32|f16] [--depth N] [--layers L]\n");
            return 1;
        }
    }
    if (depth < 0 || layers < 1 || threads < 0) return fprintf(stderr, "bench_attention: bad argument\n"), 1;
    const int Hq = 16, Hkv = 8, D = 128, n_ctx = depth + 1;
    fs_err e = {{0}};
    fs_backend_opts o = {"cpu", threads, 0};
    fs_backend *b = fs_backend_open(&o, &e);
    if (!b) return fprintf(stderr, "bench_attention: %s\n", e.msg), 1;
    float inv[64];
    for (int i = 0; i < D / 2; i++) inv[i] = 1.0f;
    fs_reserve r = {.max_T = 1, .max_seqs = 1, .max_K = 1024, .max_N = 1024, .n_ctx = n_ctx, .Hq = Hq, .Hkv = Hkv,
                    .D = D, .rope_inv_freq = inv, .kv_dtype = kv};
    if (b->reserve(b, &r, &e)) return fprintf(stderr, "bench_attention: %s\n", e.msg), 1;
    fs_buf **cache = malloc((size_t)layers * sizeof *cache);
    size_t esize = kv == FS_DTYPE_F16 ? 2 : 4;
    for (int l = 0; l < layers; l++) {
        if (!(cache[l] = b->kv_alloc(b, n_ctx, Hkv, D, &e))) return fprintf(stderr, "bench_attention: %s\n", e.msg), 1;
        /* small values, every page written (an untouched page would read as the shared zero page) */
        size_t n = (size_t)2 * (size_t)n_ctx * cache[l]->kv_stride;
        for (size_t i = 0; i < n; i++) {
            unsigned u = (unsigned)(i * 2654435761u) >> 22;   /* 0 .. 1023 */
            if (kv == FS_DTYPE_F16) ((uint16_t *)cache[l]->data)[i] = (uint16_t)(0x3000 + u);   /* 0.125 .. 0.25 */
            else ((float *)cache[l]->data)[i] = (float)u * 1e-4f;
        }
    }
    float *qh = malloc((size_t)Hq * D * sizeof *qh);
    for (int i = 0; i < Hq * D; i++) qh[i] = (float)((i * 7919) % 101) * 0.01f - 0.5f;
    fs_buf *q = b->alloc(b, (size_t)Hq * D, &e), *out = b->alloc(b, (size_t)Hq * D, &e);
    if (!q || !out) return fprintf(stderr, "bench_attention: %s\n", e.msg), 1;
    b->write(b, q, 0, qh, (size_t)Hq * D);
    int pos = depth, seq = 0, id = 0;
    fs_step st = {1, &id, &pos, &seq, 1};
    b->set_step(b, &st);
    /* the bandwidth probe on a buffer of its own (it overwrites what it reads) */
    fs_buf *probe = b->alloc(b, (size_t)64 << 20, &e);
    if (!probe) return fprintf(stderr, "bench_attention: %s\n", e.msg), 1;
    double bw = b->bandwidth ? b->bandwidth(b, probe, (size_t)64 << 20) : 0;
    b->free_buf(b, probe);
    for (int l = 0; l < layers; l++) b->attention(b, q, &cache[l], out, Hq, Hkv, D);   /* warm-up */
    b->sync(b);
    long calls = 0;
    double t0 = fs_now(), c0 = cpu_now(), t;
    do {
        for (int l = 0; l < layers; l++) b->attention(b, q, &cache[l], out, Hq, Hkv, D);
        b->sync(b);
        calls += layers;
    } while ((t = fs_now() - t0) < 1.0);
    double bytes = 2.0 * (double)n_ctx * Hkv * D * (double)esize;   /* K and V read once */
    double cpu = cpu_now() - c0;
    printf("attention, depth %d, kv %s, %s: %.1f us per layer (%.1f us of CPU time), %.2f GB/s of cache (probe %.2f GB/s)\n",
           depth, kv == FS_DTYPE_F16 ? "f16" : "f32", b->describe(b), t / calls * 1e6, cpu / calls * 1e6,
           bytes * calls / t / 1e9, bw / 1e9);
    for (int l = 0; l < layers; l++) b->free_buf(b, cache[l]);
    b->free_buf(b, q), b->free_buf(b, out);
    b->destroy(b);
    free(cache), free(qh);
    return 0;
}
