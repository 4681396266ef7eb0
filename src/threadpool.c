/* threadpool.c - persistent workers, one parallel loop at a time.
 *
 * Who runs which chunk. A parallel loop ("region") of n chunks is cut into
 * one contiguous share per thread (fs_split_range): thread t owns chunks
 * [lo_t, hi_t) and takes them front to back, lo_t += 1 at a time. A thread
 * whose share is empty steals the back half of another's - [mid, hi_u),
 * leaving [lo_u, mid) - runs its first chunk and makes the rest its own
 * share, until every share is empty. Each share is one 64-bit word on a
 * cache line of its own, changed only by compare-and-swap, so a chunk is
 * taken exactly once, and while nobody steals the threads never touch
 * each other's lines.
 *
 * Why shares and not one shared counter: a matmul chunk is a run of weight
 * rows, so consecutive chunks are consecutive bytes. With a shared counter
 * the threads take chunks alternately and each thread's stream jumps every
 * chunk, restarting the prefetch (matmul_float.c); with a share the stream
 * runs on from one chunk into the next - a stolen half too - so the
 * chunks can be small, and the barrier at the end waits for at most about
 * one small chunk. The stealing keeps what the shared counter gave: a
 * descheduled thread's chunks are done by the others.
 *
 * Which region a chunk belongs to. The caller publishes fn, arg and the
 * region number `cur` first, and opens the shares after them. A region
 * cannot end while one of its chunks is taken but not counted in `done`
 * (a thread counts its chunks when it finds no more to take), so a thread
 * that has just taken a chunk reads `cur` and knows whose chunk it is: if
 * that is not the region whose fn/arg it holds (it woke up late, or ran
 * on into the next region), it re-reads them. Between regions every share
 * is empty (all chunks were taken), so a late thread takes nothing.
 *
 * Waking. A worker spins on `gen` for a while (a new op usually follows
 * within microseconds in a forward pass), then yields the core for a
 * while, then sleeps on a condition variable. Lost wake-ups are avoided
 * with the usual two-flag handshake, all atomics sequentially consistent:
 * the worker increments `sleepers` and then re-reads `gen`; the caller
 * bumps `gen` and then reads `sleepers`. At least one of them sees the
 * other's write.
 *
 * Docs: docs/forward.md
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Waiting: SPIN_ITERS pause instructions (~50 us: the gap between two ops
 * of a forward pass), then up to YIELD_ITERS sched_yield calls (give the
 * core to whoever else wants it: on a busy machine a spinning worker would
 * otherwise steal time from the thread doing the work), then sleep. */
#define SPIN_ITERS 2000
#define YIELD_ITERS 2000

typedef struct {
    fs_threadpool *pool;
    int tid;
    pthread_t thread;
} worker;

/* One thread's share of the current region: chunks [lo, hi) and the
 * region's tag in one word (share_word below), alone on its cache line. */
typedef struct {
    _Alignas(64) atomic_uint_least64_t range;
} share;

struct fs_threadpool {
    int n;                        /* threads including the caller */
    worker *workers;              /* [n - 1] */
    share *shares;                /* [n] */
    _Atomic(fs_task_fn) fn;
    _Atomic(void *) arg;
    atomic_uint cur;              /* the region whose fn/arg are published */
    atomic_int done;              /* chunks finished in the current region */
    atomic_uint gen;              /* bumped to wake the workers */
    atomic_int sleepers;          /* workers blocked in cond_wait */
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

int fs_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

/* A share as one 64-bit word: the region's tag (its number mod 2^16) in
 * the top 16 bits, then hi and lo, 24 bits each (MAX_CHUNKS). */
#define MAX_CHUNKS 0xffffff
static inline uint64_t share_word(unsigned tag, uint32_t lo, uint32_t hi) {
    return (uint64_t)(tag & 0xffff) << 48 | (uint64_t)hi << 24 | lo;
}
static inline uint32_t share_lo(uint64_t w) { return (uint32_t)(w & MAX_CHUNKS); }
static inline uint32_t share_hi(uint64_t w) { return (uint32_t)(w >> 24 & MAX_CHUNKS); }
static inline unsigned share_tag(uint64_t w) { return (unsigned)(w >> 48); }

/* Take work: the front chunk of thread tid's own share, else the back
 * half of another's: the thief runs its first chunk now and makes the rest
 * its own share, so both threads keep reading one stream each, and the
 * next thief can split it again. Returns the first chunk c and sets *end:
 * chunks [c, *end) are the caller's to run (one, except in the case
 * below). -1 when every share is empty.
 *
 * Why the tag: the caller opens the shares one after the other, so a
 * thief may steal from a share of the new region while its own share
 * still holds the last region's (empty) word; publishing there would be
 * overwritten when the caller opens it. A thief therefore publishes only
 * into an own share of the victim's region, with a compare-and-swap from
 * the empty word it saw, and otherwise runs the stolen half itself. (A
 * thread that took nothing can see a region end and another begin
 * between two of its reads; every decision is a compare-and-swap of a
 * whole word, and the word says all there is to know about a share, so
 * it then simply takes chunks of the new region, which work() finds out
 * from `cur`.) */
static int take(fs_threadpool *p, int tid, int *end) {
    atomic_uint_least64_t *own = &p->shares[tid].range;
    uint64_t v = atomic_load(own);
    while (share_lo(v) < share_hi(v))
        if (atomic_compare_exchange_weak(own, &v, v + 1)) {   /* lo + 1 */
            *end = (int)share_lo(v) + 1;
            return (int)share_lo(v);
        }
    for (int k = 1; k < p->n; k++) {
        atomic_uint_least64_t *r = &p->shares[(tid + k) % p->n].range;
        uint64_t w = atomic_load(r);
        while (share_lo(w) < share_hi(w)) {
            uint32_t lo = share_lo(w), hi = share_hi(w), mid = lo + (hi - lo) / 2;   /* the victim keeps [lo, mid) */
            unsigned tag = share_tag(w);
            if (!atomic_compare_exchange_weak(r, &w, share_word(tag, lo, mid))) continue;
            *end = (int)hi;   /* unless published below */
            if (mid + 1 < hi && share_tag(v) == tag &&
                atomic_compare_exchange_strong(own, &v, share_word(tag, mid + 1, hi)))
                *end = (int)mid + 1;
            return (int)mid;
        }
    }
    return -1;
}

/* Take and run chunks until none is left. The chunks done are counted
 * once, at the end: `done` is the one line every thread writes, and an
 * atomic add per chunk would bounce it between the cores. (Until they are
 * counted the region cannot end, so every chunk taken here is of one
 * region.) */
static void work(fs_threadpool *p, int tid) {
    unsigned have = 0;   /* region of fn/arg below (0: none yet; regions start at 1) */
    fs_task_fn fn = NULL;
    void *arg = NULL;
    int ran = 0;
    for (;;) {
        int end, c = take(p, tid, &end);
        if (c < 0) break;
        unsigned r = atomic_load(&p->cur);   /* c's region: it cannot end before c is counted */
        if (r != have) {
            fn = atomic_load(&p->fn);
            arg = atomic_load(&p->arg);
            have = r;
        }
        for (; c < end; c++, ran++) fn(arg, c, tid);
    }
    if (ran) atomic_fetch_add(&p->done, ran);
}

static void *worker_main(void *w_) {
    worker *w = w_;
    fs_threadpool *p = w->pool;
    /* gen is 0 when the pool is created, and a worker may start running
     * after the caller already began (or even freed) the pool: starting from
     * 0 rather than from the current value means it never misses a bump. */
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && spins < SPIN_ITERS + YIELD_ITERS) {
            if (spins++ < SPIN_ITERS) cpu_relax();
            else sched_yield();
        }
        if (g == seen) {   /* still nothing: sleep */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load(&p->quit)) break;
        work(p, w->tid);
    }
    return NULL;
}

static void wake_workers(fs_threadpool *p, unsigned g) {
    atomic_store(&p->gen, g);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

fs_threadpool *fs_threadpool_new(int n_threads, fs_err *e) {
    if (n_threads <= 0) n_threads = fs_default_threads();
    fs_threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        fs_errf(e, "thread pool: out of memory");
        return NULL;
    }
    p->n = 1;
    /* the shares of all n_threads, so that the pool is whole while threads start */
    int slots = n_threads > 1 ? n_threads : 1;
    p->shares = aligned_alloc(64, (size_t)slots * sizeof *p->shares);
    if (!p->shares) {
        free(p);
        fs_errf(e, "thread pool: out of memory");
        return NULL;
    }
    for (int i = 0; i < slots; i++) atomic_init(&p->shares[i].range, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->cur, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            fs_threadpool_free(p);
            fs_errf(e, "thread pool: out of memory");
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].tid = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
                fs_threadpool_free(p);
                fs_errf(e, "thread pool: cannot create thread %d of %d", i + 2, n_threads);
                return NULL;
            }
            p->n++;
        }
    }
    return p;
}

void fs_threadpool_free(fs_threadpool *p) {
    if (!p) return;
    if (p->n > 1) {
        atomic_store(&p->quit, 1);
        wake_workers(p, atomic_load(&p->gen) + 1);
        for (int i = 0; i < p->n - 1; i++) pthread_join(p->workers[i].thread, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->workers);
    free(p->shares);
    free(p);
}

int fs_threadpool_size(const fs_threadpool *p) { return p->n; }

/* More than MAX_CHUNKS chunks: regions of at most MAX_CHUNKS, renumbered. */
typedef struct {
    fs_task_fn fn;
    void *arg;
    int first;
} part;
static void part_chunk(void *arg, int chunk, int tid) {
    const part *pt = arg;
    pt->fn(pt->arg, pt->first + chunk, tid);
}

void fs_threadpool_for(fs_threadpool *p, int n_chunks, fs_task_fn fn, void *arg) {
    if (n_chunks <= 0) return;
    if (p->n == 1 || n_chunks == 1) {
        for (int i = 0; i < n_chunks; i++) fn(arg, i, 0);
        return;
    }
    if (n_chunks > MAX_CHUNKS) {
        for (int first = 0; first < n_chunks; first += MAX_CHUNKS) {
            part pt = {fn, arg, first};
            fs_threadpool_for(p, n_chunks - first < MAX_CHUNKS ? n_chunks - first : MAX_CHUNKS, part_chunk, &pt);
        }
        return;
    }
    /* every share is empty here (the last region's chunks were all taken) */
    unsigned g = atomic_load(&p->gen) + 1;
    if (g == 0) g = 1;   /* 0 is work()'s "no region yet" */
    atomic_store(&p->fn, fn);
    atomic_store(&p->arg, arg);
    atomic_store(&p->done, 0);
    atomic_store(&p->cur, g);
    for (int t = 0; t < p->n; t++) {   /* open the shares */
        int lo, hi;
        fs_split_range(n_chunks, 1, t, p->n, &lo, &hi);
        atomic_store(&p->shares[t].range, share_word(g, (uint32_t)lo, (uint32_t)hi));
    }
    wake_workers(p, g);
    work(p, 0);
    int spins = 0;
    while (atomic_load(&p->done) < n_chunks) {   /* chunks a worker is still running */
        if (++spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
}

void fs_split_range(int n, int align, int tid, int nth, int *i0, int *i1) {
    if (align < 1) align = 1;
    int blocks = (n + align - 1) / align;
    int b0 = (int)((long long)blocks * tid / nth), b1 = (int)((long long)blocks * (tid + 1) / nth);
    *i0 = b0 * align < n ? b0 * align : n;
    *i1 = b1 * align < n ? b1 * align : n;
}
