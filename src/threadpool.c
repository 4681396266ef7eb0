/* threadpool.c - persistent workers, one parallel loop at a time.
 *
 * Protocol. A parallel loop ("region") has a generation number g. The
 * caller publishes (fn, arg, n_chunks), then opens the chunk counter
 * `next` = (g << 32 | 0) and bumps `gen` to g. Threads take chunk i by
 * compare-and-swap of next from (g, i) to (g, i + 1), run it and count it
 * in `done`; the caller returns when done == n_chunks.
 *
 * The generation inside `next` is what makes late threads harmless: a
 * worker that wakes up after its region ended (or that read fn/arg of one
 * region while the caller was already publishing the next) fails its
 * compare-and-swap, because the counter carries another generation, and
 * goes back to waiting. Before publishing a new fn/arg the caller first
 * "closes" the counter (index 0xffffffff, never < n_chunks), so a stale
 * (g, i) can never be claimed against the new region's data.
 *
 * Waking. A worker spins on `gen` for a while (a new op usually follows
 * within microseconds in a forward pass), then yields the core for a
 * while, then sleeps on a condition variable. Lost wake-ups are avoided with the usual two-flag handshake,
 * all atomics sequentially consistent: the worker increments `sleepers`
 * and then re-reads `gen`; the caller bumps `gen` and then reads
 * `sleepers`. At least one of them sees the other's write.
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
#define CLOSED 0xffffffffu

typedef struct {
    fs_threadpool *pool;
    int tid;
    pthread_t thread;
} worker;

struct fs_threadpool {
    int n;                        /* threads including the caller */
    worker *workers;              /* [n - 1] */
    _Atomic(fs_task_fn) fn;
    _Atomic(void *) arg;
    atomic_int total;             /* chunks in the current region */
    atomic_uint_least64_t next;   /* (generation << 32) | next chunk */
    atomic_int done;              /* chunks finished in the current region */
    atomic_uint gen;
    atomic_int sleepers;          /* workers blocked in cond_wait */
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

int fs_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

/* Take and run chunks of region g until none is left (or g is over). */
static void work(fs_threadpool *p, unsigned g, int tid) {
    fs_task_fn fn = atomic_load(&p->fn);
    void *arg = atomic_load(&p->arg);
    uint64_t total = (uint64_t)atomic_load(&p->total);
    for (;;) {
        uint64_t v = atomic_load(&p->next);
        if ((unsigned)(v >> 32) != g || (v & 0xffffffffu) >= total) return;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1)) continue;
        fn(arg, (int)(v & 0xffffffffu), tid);
        atomic_fetch_add(&p->done, 1);
    }
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
        work(p, g, w->tid);
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
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->total, 0);
    atomic_init(&p->next, (uint64_t)CLOSED);
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
    free(p);
}

int fs_threadpool_size(const fs_threadpool *p) { return p->n; }

void fs_threadpool_for(fs_threadpool *p, int n_chunks, fs_task_fn fn, void *arg) {
    if (n_chunks <= 0) return;
    if (p->n == 1 || n_chunks == 1) {
        for (int i = 0; i < n_chunks; i++) fn(arg, i, 0);
        return;
    }
    unsigned g = atomic_load(&p->gen) + 1;
    atomic_store(&p->next, ((uint64_t)g << 32) | CLOSED);   /* close before touching fn/arg */
    atomic_store(&p->fn, fn);
    atomic_store(&p->arg, arg);
    atomic_store(&p->total, n_chunks);
    atomic_store(&p->done, 0);
    atomic_store(&p->next, (uint64_t)g << 32);               /* open */
    wake_workers(p, g);
    work(p, g, 0);
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
