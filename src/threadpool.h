/* threadpool.h - a small pool of persistent worker threads.
 *
 * The CPU backend splits every big op (matmul rows, attention heads)
 * across cores. Creating a thread costs tens of microseconds and a decode
 * step issues a few hundred ops, so the threads are created once, when the
 * backend is created, and then wait for work. fs_threadpool_for runs a
 * parallel loop over chunks 0 .. n-1 (the caller is thread 0 and works
 * too) and returns when every chunk is done - a parallel for with a
 * barrier at its end.
 *
 * Each thread owns a contiguous share of the chunks and runs it front to
 * back; a thread that finishes its share takes the back half of what
 * another has left and runs that front to back (work stealing). Contiguous,
 * because a matmul's chunks are runs of weight rows: each thread then
 * reads one sequential stream that the prefetch can run ahead of, however
 * small the chunks. Stealing, because on a busy machine (or with more
 * threads than cores) a thread can be descheduled for milliseconds: with
 * fixed shares everybody would wait for it, here the others do its
 * chunks, and the barrier waits for about one chunk at most.
 *
 * Waiting workers first spin for a short while (a new op usually follows
 * within microseconds) and then sleep on a condition variable, so an idle
 * session does not burn CPU.
 *
 * Plain pthreads and C11 atomics: no OpenMP, builds with Apple clang.
 *
 * Docs: docs/forward.md
 */
#ifndef FS_THREADPOOL_H
#define FS_THREADPOOL_H

#include "util.h"

typedef struct fs_threadpool fs_threadpool;

/* fn(arg, chunk, tid): run chunk `chunk` on thread tid (0 .. size-1; tid
 * indexes per-thread scratch). */
typedef void (*fs_task_fn)(void *arg, int chunk, int tid);

/* n_threads <= 0 means one per online CPU. NULL (e filled) on failure. */
fs_threadpool *fs_threadpool_new(int n_threads, fs_err *e);
void fs_threadpool_free(fs_threadpool *p);
int fs_threadpool_size(const fs_threadpool *p);

/* Run fn for chunks 0 .. n_chunks-1 across the threads and wait until all
 * are done. Not reentrant: call it from one thread at a time, never from
 * inside fn. */
void fs_threadpool_for(fs_threadpool *p, int n_chunks, fs_task_fn fn, void *arg);

/* The part [*i0, *i1) of the range [0, n) that thread tid of nth owns:
 * contiguous, sizes differing by at most `align` (chunk boundaries are
 * multiples of align, align >= 1). */
void fs_split_range(int n, int align, int tid, int nth, int *i0, int *i1);

/* The default thread count: online CPUs (at least 1). */
int fs_default_threads(void);

#endif
