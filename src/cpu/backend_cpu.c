/* backend_fast.c - the fast CPU backend ("cpu", the default).
 *
 * It is the reference backend ("cpu-ref", backend_cpu.c) with the hot ops
 * replaced: the same buffers (host memory, weights as views into the mmap,
 * except repacked quantized matrices and the KV cache, see below) and the
 * same cheap ops (add, copy), plus
 *   matmul     SIMD (AVX2 / NEON / scalar) on all threads  matmul_fast.c, matmul_quant.c
 *   attention  threads; GEMM tiles for a prompt            attention_fast.c
 *   rope       threads over tokens                         rope_fast.c
 *   swiglu     threads, f32 exp (8 at a time with AVX2)    swiglu_fast.c
 *   rmsnorm    AVX2 (still summing squares in double)      rmsnorm_fast.c
 *
 * Everything it needs is allocated here, once: the thread pool (created
 * when the session creates the backend; no thread is ever started per op)
 * and each thread's weight-panel buffer for the GEMM.
 *
 * Docs: docs/forward.md
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE   /* MAP_ANON, madvise */
#else
#define _DEFAULT_SOURCE    /* MAP_ANONYMOUS, madvise */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fast.h"
#include "quant.h"
#include "safetensors.h"

/* Repacked weights and big activation buffers go to arenas: anonymous
 * mappings of at least ARENA_BYTES, 2 MiB aligned and marked for
 * transparent huge pages, handed out front to back. A decode step streams every weight once, and with 4
 * KiB pages that is a TLB miss every 4 KiB - 155k page walks per Q8_0
 * token, each a two-level (guest + host) walk in a VM. On the dev VM,
 * alternating runs of tg64 with malloc'd (4 KiB-page) and arena weights:
 * Q8_0 31 / 69 / 17 / 64 tok/s vs 75 / 76 / 77 / 72, Q4_0 77 / 105 / 64 /
 * 103 vs 119 / 124 / 122 / 105 - the small pages fell apart whenever the
 * host was busy. An arena is reset when its last buffer is freed; all are
 * unmapped with the backend. */
#define ARENA_BYTES (64u << 20)
#define HUGE_PAGE (2u << 20)

/* len bytes of zero-filled anonymous memory, marked for transparent huge
 * pages (advice: without THP, plain pages); NULL if it cannot be mapped. */
static void *map_huge(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE);
#endif
    return p;
}

/* Room for element n of an array of *cap elements of elem bytes: arr
 * itself, or arr grown to twice its capacity (first: the first one) - the
 * caller stores the result; NULL, arr untouched, when out of memory. The
 * upload path returns an error then rather than abort (fs_xrealloc). */
static void *reserve(void *arr, int *cap, int n, int first, size_t elem) {
    if (n < *cap) return arr;
    int c = *cap ? 2 * *cap : first;
    void *p = realloc(arr, (size_t)c * elem);
    if (p) *cap = c;
    return p;
}

static void *arena_alloc(fs_fast *f, size_t bytes, int *arena) {
    bytes = (bytes + 63) / 64 * 64;
    struct fs_arena *a = f->n_arenas ? &f->arenas[f->n_arenas - 1] : NULL;
    if (!a || a->len - a->used < bytes) {
        struct fs_arena *grown = reserve(f->arenas, &f->cap_arenas, f->n_arenas, 8, sizeof *f->arenas);
        if (!grown) return NULL;
        f->arenas = grown;
        size_t len = bytes > ARENA_BYTES ? (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE : ARENA_BYTES;
        size_t map_len = len + HUGE_PAGE;   /* room to align the start */
        char *map = map_huge(map_len);
        if (!map) return NULL;
        char *base = (char *)(((uintptr_t)map + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
        a = &f->arenas[f->n_arenas++];
        *a = (struct fs_arena){map, base, map_len, len, 0, 0};
    }
    void *p = a->base + a->used;
    a->used += bytes;
    a->live++;
    *arena = (int)(a - f->arenas) + 1;
    return p;
}

static void arena_free(fs_fast *f, int arena) {
    struct fs_arena *a = &f->arenas[arena - 1];
    if (--a->live > 0) return;
    madvise(a->base, a->used, MADV_DONTNEED);   /* give the memory back, keep the range */
    a->used = 0;
}

/* Weights. The reference backend's weights are views into the mmap'd file,
 * which the kernel maps with 4 KiB pages. This backend moves every weight
 * that is file-backed into the huge-page arenas above:
 *   - Q8_0 / Q4_0 matrices, when the AVX2 kernels run, repacked into the
 *     x8 layout (repack.c) on the way - the same number of bytes;
 *   - everything else (bf16, f16, f32 matrices, quantized ones x8 cannot
 *     take, the 1-D norm weights) copied as it is, where the OS has
 *     transparent huge pages (Linux; elsewhere a copy would buy nothing,
 *     and they stay views).
 * The file's pages are then released (fs_st_release_pages), so the process
 * does not hold the weights twice, and nothing reads the file afterwards:
 * the session releases the whole mapping once every weight is uploaded
 * (fs_model_release_pages). That matters for the small ones too: the page
 * cache may hold the file in 2 MiB folios, and a fault maps a whole folio
 * - the 112 norm weights of Qwen3-0.6B, 2-4 KiB each, read as views, kept
 * 160 MB of the Q8_0 file mapped (peak RSS 918 MiB, 760 without). A
 * tensor uploaded twice (Qwen3's tied embedding and lm_head) shares one
 * copy: uploads of the same data are counted in buf->refs. Measured on
 * the dev VM (tg128, bf16, alternating runs): see docs/forward.md. The
 * big ones are moved in pieces of MOVE_PIECE bytes (whole groups of 8
 * rows): a piece of the file is read in, moved, and released, so at most a
 * piece is resident twice, not the 165 MB Q8_0 embedding. */
#define MOVE_PIECE (8u << 20)
/* Weights below SMALL_MOVE bytes (the norms) are copied to the heap, not
 * the arenas: squeezed between the big matrices they would shift them off
 * the 2 MiB boundaries, and every arena would end in a part-used huge
 * page (+28 MB of RSS for bf16). */
#define SMALL_MOVE (1u << 20)

static fs_buf *fast_upload(fs_backend *b, const fs_tensor *t, fs_err *e) {
    fs_fast *f = fast_ctx(b);
    if (!t->data || t->ndim < 1 || t->ndim > 2) return f->cpu_upload(b, t, e);
    int x8 = f->isa == FS_ISA_AVX2 && fs_x8_ok(t);
#ifdef MADV_HUGEPAGE
    int copy = !x8 && t->file_backed;   /* a weight in memory we own is not also in the file's pages */
#else
    int copy = 0;
#endif
    if (!x8 && !copy) return f->cpu_upload(b, t, e);
    int64_t N = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
    size_t numel = (size_t)(t->ndim == 2 ? N * cols : N);
    for (int i = 0; i < f->n_moved; i++)
        if (f->moved[i].src == t->data && f->moved[i].buf->dtype == t->dtype && f->moved[i].buf->cols == (int)cols &&
            f->moved[i].buf->n == numel && f->moved[i].buf->x8 == x8) {
            f->moved[i].buf->refs++;
            return f->moved[i].buf;
        }
    struct fs_moved *grown = reserve(f->moved, &f->cap_moved, f->n_moved, 64, sizeof *f->moved);
    if (!grown) goto oom;
    f->moved = grown;
    fs_buf *buf = calloc(1, sizeof *buf);
    int arena = 0;
    void *data = NULL;
    if (buf && t->nbytes >= SMALL_MOVE) data = arena_alloc(f, t->nbytes, &arena);
    else if (buf) data = aligned_alloc(64, (t->nbytes + 63) / 64 * 64);
    if (!data) {
        free(buf);
        goto oom;
    }
    if (t->ndim == 1) N = 1;   /* one row */
    size_t row_bytes = t->nbytes / (size_t)N;
    int64_t rows = (int64_t)(MOVE_PIECE / row_bytes) / 8 * 8;
    if (rows < 8) rows = 8;
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
        int64_t r1 = r0 + rows < N ? r0 + rows : N;
        const char *src = (const char *)t->data + (size_t)r0 * row_bytes;
        size_t n = (size_t)(r1 - r0) * row_bytes;
        if (t->file_backed) fs_st_prefault_pages(src, n);
        if (x8) fs_x8_repack(t, data, r0 / 8, r1 / 8);
        else memcpy((char *)data + (size_t)r0 * row_bytes, src, n);
        if (t->file_backed) fs_st_release_pages(src, n);   /* not resident twice */
    }
    buf->dtype = t->dtype;
    buf->n = numel;
    buf->cols = (int)cols;
    buf->data = data;
    buf->x8 = x8;
    buf->refs = 1;
    buf->arena = arena;
    f->moved[f->n_moved].src = t->data;
    f->moved[f->n_moved++].buf = buf;
    return buf;
oom:
    fs_errf(e, "cpu backend: out of memory %s %s (%zu bytes)", x8 ? "repacking" : "copying",
            t->name ? t->name : "a weight", t->nbytes);
    return NULL;
}

/* Big activation buffers - the KV cache, 2 x n_ctx x Hkv x D floats per
 * layer, and a prefill's activations - go to the arenas too: zero-filled
 * and only backed by memory where written, like calloc, but in 2 MiB
 * pages. A decode step writes one new K and V row per layer, 4 KiB each
 * for Qwen3-0.6B, and attention reads each kv head's rows, 512 B every
 * 4 KiB: with 4 KiB pages the step faulted 56 times when the rows were
 * new (~17 us each on the dev VM), and walked the page tables at every
 * row (a two-level walk in a VM). Measured on the dev VM with a 256-token
 * cache (1 MiB per layer and K or V, which used to be malloc'd), per Q4_0
 * decode step: the K and V row copies 400 -> 29 us, attention 604 -> 518
 * us. One arena holds many layers' caches, so even a small cache gets huge
 * pages. */
#define ARENA_MIN_ACT (256u << 10)

static fs_buf *fast_alloc(fs_backend *b, size_t n, fs_err *e) {
    fs_fast *f = fast_ctx(b);
    size_t bytes;
    if (!fs_mul_size(n, sizeof(float), &bytes) || bytes < ARENA_MIN_ACT) return f->cpu_alloc(b, n, e);
    fs_buf *buf = calloc(1, sizeof *buf);
    int arena = 0;
    void *p = buf ? arena_alloc(f, bytes, &arena) : NULL;
    if (!p) {
        free(buf);
        fs_errf(e, "cpu backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    buf->dtype = FS_DTYPE_F32;
    buf->n = n;
    buf->data = p;
    buf->refs = 1;
    buf->arena = arena;
    return buf;
}

static void fast_free_buf(fs_backend *b, fs_buf *buf) {
    fs_fast *f = fast_ctx(b);
    if (!buf) return;
    if (buf->refs > 1) {   /* a weight uploaded twice: freed with its last user */
        buf->refs--;
        return;
    }
    for (int i = 0; i < f->n_moved; i++)
        if (f->moved[i].buf == buf) {
            f->moved[i] = f->moved[--f->n_moved];
            break;
        }
    if (!buf->arena) {   /* the reference's buffers and the small moved weights (malloc'd) */
        f->cpu_free_buf(b, buf);
        return;
    }
    arena_free(f, buf->arena);
    free(buf);
}

static size_t fast_buf_bytes(const fs_backend *b, const fs_buf *buf) {
    if (buf->x8) return fs_quant_row_bytes(buf->dtype, buf->cols) * (buf->n / (size_t)buf->cols);
    return fast_ctx((fs_backend *)b)->cpu_buf_bytes(b, buf);
}

/* embed: a row of an x8 table is spread over its group's superblocks. */
static void fast_embed(fs_backend *b, const fs_buf *table, const int *ids, int T, int H, fs_buf *out) {
    if (!table->x8) {
        fs_cpu_embed(b, table, ids, T, H, out);
        return;
    }
    for (int t = 0; t < T; t++)
        fs_x8_dequant_row(table->data, table->dtype, (int64_t)(table->n / (size_t)H), H, ids[t],
                          cpu_f32_mut(out) + (size_t)t * (size_t)H);
}

static void fast_destroy(fs_backend *b) {
    fs_fast *f = fast_ctx(b);
    if (f) {
        fs_threadpool_free(f->pool);
        free(f->pack);
        free(f->qx);
        free(f->qxs);
        free(f->qpack);
        free(f->attn);
        free(f->moved);
        for (int i = 0; i < f->n_arenas; i++) munmap(f->arenas[i].map, f->arenas[i].map_len);
        free(f->arenas);
        free(f->rope_cs);
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
    f->rope_T = -1;   /* no rope table yet */
    f->isa = fs_fast_detect_isa();
    f->vnni = fs_fast_detect_vnni(f->isa);
    void *pack = NULL;
    if (posix_memalign(&pack, 64, (size_t)f->nth * FS_PANEL_K * FS_PANEL_N * sizeof(float))) {
        fast_destroy(b);
        fs_errf(e, "cpu backend: out of memory");
        return NULL;
    }
    f->pack = pack;
    f->cpu_alloc = b->alloc;
    f->cpu_upload = b->upload;
    f->cpu_free_buf = b->free_buf;
    f->cpu_buf_bytes = b->buf_bytes;
    b->alloc = fast_alloc;
    b->upload = fast_upload;
    b->free_buf = fast_free_buf;
    b->buf_bytes = fast_buf_bytes;
    b->embed = fast_embed;
    b->name = "cpu";
    b->matmul = fs_fast_matmul;
    b->matmul_n = fs_fast_matmul_n;
    b->attention = fs_fast_attention;
    b->rope = fs_fast_rope;
    b->swiglu = fs_fast_swiglu;
    b->rmsnorm = fs_fast_rmsnorm;
    b->add = fs_fast_add;
    return b;
}
