/* backend_fast.c - the fast CPU backend ("cpu", the default).
 *
 * It is the reference backend ("cpu-ref", backend_cpu.c) with the hot ops
 * replaced: the same buffers (host memory, weights as views into the mmap)
 * and the same cheap ops (embed, rmsnorm, add, copy), plus
 *   matmul     SIMD (AVX2 / NEON / scalar) on all threads  matmul_fast.c
 *   attention  threads over (token, head), online softmax  attention_fast.c
 *   rope       threads over tokens                         rope_fast.c
 *   swiglu     threads, f32 exp                            swiglu_fast.c
 *
 * Everything it needs is allocated here, once: the thread pool (created
 * when the session creates the backend; no thread is ever started per op)
 * and each thread's weight-panel buffer for the GEMM.
 *
 * Docs: docs/forward.md
 */
#include <stdlib.h>

#include "fast.h"

static void fast_destroy(fs_backend *b) {
    fs_fast *f = fast_ctx(b);
    if (f) {
        fs_threadpool_free(f->pool);
        free(f->pack);
        free(f->qx);
        free(f->qxs);
        free(f->qpack);
        free(f->attn);
        free(f);
    }
    free(b);
}

fs_backend *fs_backend_fast_new(int n_threads, fs_err *e) {
    fs_backend *b = fs_backend_cpu_new(e);
    if (!b) return NULL;
    fs_fast *f = calloc(1, sizeof *f);
    if (!f) {
        b->destroy(b);
        fs_errf(e, "cpu backend: out of memory");
        return NULL;
    }
    b->ctx = f;
    b->destroy = fast_destroy;
    f->pool = fs_threadpool_new(n_threads, e);
    if (!f->pool) {
        fast_destroy(b);
        return NULL;
    }
    f->nth = fs_threadpool_size(f->pool);
    f->isa = fs_fast_detect_isa();
    void *pack = NULL;
    if (posix_memalign(&pack, 64, (size_t)f->nth * FS_PANEL_K * FS_PANEL_N * sizeof(float))) {
        fast_destroy(b);
        fs_errf(e, "cpu backend: out of memory");
        return NULL;
    }
    f->pack = pack;
    b->name = "cpu";
    b->matmul = fs_fast_matmul;
    b->attention = fs_fast_attention;
    b->rope = fs_fast_rope;
    b->swiglu = fs_fast_swiglu;
    return b;
}
