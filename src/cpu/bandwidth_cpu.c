/* bandwidth_cpu.c - the memory read bandwidth the CPU backend's threads
 * get, for fs bench's decode roofline (docs/bench.md).
 *
 *   bandwidth = bytes of the buffer / seconds of the fastest of BW_PASSES
 *               passes in which every thread reads its slice once
 *
 * Decoding one token reads every weight once, so the best possible decode
 * speed is this bandwidth divided by the bytes a token reads. It is
 * measured the way the matmuls read: by the backend's own threads (the
 * pool, one slice each), over a buffer from alloc - for a large buffer one
 * of the huge-page arenas the weights live in, so it measures the memory
 * and not the cost of 4 KiB page walks.
 *
 * Each thread sums the 64-bit words of its slice. Integer addition keeps
 * the loop exact and lets the compiler vectorise it without -ffast-math;
 * four accumulators hide the add latency, so the loop is limited by
 * memory, not by the adder. The buffer is first filled with a known
 * pattern by the thread that will read each slice (on a NUMA machine its
 * pages land on that thread's node; non-zero, so no page can stay the
 * shared zero page), and every pass's sum is checked against it, which
 * also keeps the compiler from discarding the reads.
 *
 * Docs: docs/bench.md
 */
#include "cpu_backend.h"

#define BW_PASSES 3

typedef struct {
    uint64_t *p;
    size_t words;
    int slices;
    int fill;          /* 1: write the pattern, 0: sum */
    uint64_t *sums;    /* slice c's sum at sums[8 c] (one cache line each) */
} bw_job;

static void bw_slice(void *arg, int c, int tid) {
    (void)tid;
    const bw_job *j = arg;
    size_t per = j->words / (size_t)j->slices, n = c == j->slices - 1 ? j->words - (size_t)c * per : per;
    uint64_t *p = j->p + (size_t)c * per;
    if (j->fill) {
        for (size_t i = 0; i < n; i++) p[i] = i;
        return;
    }
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
    }
    for (; i < n; i++) a0 += p[i];
    j->sums[(size_t)c * 8] = a0 + a1 + a2 + a3;
}

double fs_cpu_bandwidth(fs_backend *b, fs_buf *buf, size_t n) {
    fs_cpu *f = cpu_ctx(b);
    bw_job j = {(uint64_t *)buf->data, n * sizeof(float) / sizeof(uint64_t), f->nth, 1, f->bw_sums};
    if (j.words < (size_t)f->nth * 4) return -1.0;
    fs_threadpool_for(f->pool, j.slices, bw_slice, &j);
    /* what each pass must sum to: 0 + 1 + ... + (k - 1) per slice of k words */
    uint64_t want = 0;
    size_t per = j.words / (size_t)j.slices;
    for (int c = 0; c < j.slices; c++) {
        uint64_t k = c == j.slices - 1 ? j.words - (size_t)c * per : per;
        want += k * (k - 1) / 2;
    }
    j.fill = 0;
    double best = -1.0;
    for (int pass = 0; pass < BW_PASSES; pass++) {
        double t0 = fs_now();
        fs_threadpool_for(f->pool, j.slices, bw_slice, &j);
        double dt = fs_now() - t0;
        uint64_t got = 0;
        for (int c = 0; c < j.slices; c++) got += j.sums[(size_t)c * 8];
        if (got != want) return -1.0;
        if (dt > 0 && (best < 0 || dt < best)) best = dt;
    }
    return best > 0 ? (double)(j.words * sizeof(uint64_t)) / best : -1.0;
}
