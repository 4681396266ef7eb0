/* backend_ref.c - the CPU reference backend ("cpu-ref"): memory, the step,
 * and the op table.
 *
 * Memory is host memory. alloc() gives a zeroed f32 array; upload() of a
 * weight is a view: the buffer points at the tensor's bytes in the model's
 * mmap, so a 1.2 GB checkpoint costs no extra RAM and no load time (the
 * model must outlive the buffer). A KV cache is one array, [n_ctx, Hkv, D]
 * keys then the same of values, unpadded. read and write are memcpy.
 * reserve() allocates the step's arrays and the scratch of the ops (fs_ref,
 * ref.h); after it, nothing allocates. Every op is a plain scalar C
 * function in its own file; this file wires them into struct fs_backend
 * (backend.h).
 *
 * Docs: docs/forward.md
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ref.h"

/* n elements of dtype (F32, or F16 for a KV cache), zero-filled. */
static fs_buf *new_buf(fs_backend *b, size_t n, fs_dtype dtype, fs_err *e) {
    (void)b;
    size_t bytes, size = fs_dtype_size(dtype);
    if (!fs_mul_size(n, size, &bytes)) {
        fs_errf(e, "cpu-ref backend: buffer of %zu elements overflows size_t", n);
        return NULL;
    }
    fs_buf *buf = calloc(1, sizeof *buf);
    void *data = calloc(n ? n : 1, size);
    if (!buf || !data) {
        free(buf);
        free(data);
        fs_errf(e, "cpu-ref backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    buf->dtype = dtype;
    buf->n = n;
    buf->data = data;
    return buf;
}

static fs_buf *ref_alloc(fs_backend *b, size_t n, fs_err *e) { return new_buf(b, n, FS_DTYPE_F32, e); }

static fs_buf *ref_upload(fs_backend *b, const fs_tensor *t, fs_err *e) {
    (void)b;
    if (!t->data) {
        fs_errf(e, "cpu-ref backend: tensor %s has no data", t->name ? t->name : "(unnamed)");
        return NULL;
    }
    fs_buf *buf = calloc(1, sizeof *buf);
    if (!buf) {
        fs_errf(e, "cpu-ref backend: out of memory");
        return NULL;
    }
    buf->dtype = t->dtype;
    buf->n = 1;   /* elements (a Q8_0 / Q4_0 row has fewer bytes than elements) */
    for (int i = 0; i < t->ndim; i++) buf->n *= (size_t)t->shape[i];
    buf->cols = t->ndim == 2 ? (int)t->shape[1] : 0;
    buf->data = (void *)t->data;   /* read-only view: no op writes a weight */
    buf->is_view = 1;
    return buf;
}

static fs_buf *ref_kv_alloc(fs_backend *b, int n_ctx, int Hkv, int D, fs_err *e) {
    size_t stride = (size_t)Hkv * (size_t)D, n;
    if (n_ctx < 1 || !fs_mul_size(stride, 2 * (size_t)n_ctx, &n)) {
        fs_errf(e, "cpu-ref backend: KV cache of %d positions x %d x %d floats is not possible", n_ctx, Hkv, D);
        return NULL;
    }
    fs_buf *buf = new_buf(b, n, ref_ctx(b)->kv_dtype, e);
    if (!buf) return NULL;
    buf->n_ctx = n_ctx;
    buf->kv_stride = stride;
    return buf;
}

static void ref_free_buf(fs_backend *b, fs_buf *buf) {
    (void)b;
    if (!buf) return;
    if (!buf->is_view) free(buf->data);
    free(buf);
}

void fs_ref_write(fs_backend *b, fs_buf *dst, size_t off, const float *src, size_t n) {
    (void)b;
    memcpy(buf_f32_mut(dst) + off, src, n * sizeof(float));
}

void fs_ref_read(fs_backend *b, const fs_buf *src, size_t off, float *dst, size_t n) {
    (void)b;
    memcpy(dst, buf_f32(src) + off, n * sizeof(float));
}

static size_t ref_buf_bytes(const fs_backend *b, const fs_buf *buf) {
    (void)b;
    return buf->is_view ? 0 : buf->n * fs_dtype_size(buf->dtype);
}

/* ---- reserve: the scratch, allocated once ---- */

void *fs_ref_scratch(size_t n, size_t size, size_t *reserved, const char *what, fs_err *e) {
    size_t bytes = 0;
    void *p = NULL;
    if (!fs_mul_size(n ? n : 1, size, &bytes) || posix_memalign(&p, 64, (bytes + 63) / 64 * 64)) {
        fs_errf(e, "cpu backend: out of memory reserving %zu bytes for %s", bytes, what);
        return NULL;
    }
    *reserved += bytes;
    return p;
}

int fs_ref_reserve(fs_ref *r, const fs_reserve *rs, int with_w_rows, fs_err *e) {
    if (rs->kv_dtype != FS_DTYPE_F32 && rs->kv_dtype != FS_DTYPE_F16)
        return fs_errf(e, "cpu backend: a KV cache of %s is not supported (f32 or f16)", fs_dtype_name(rs->kv_dtype));
    if (rs->max_T < 1 || rs->max_seqs < 1 || rs->max_K < 1 || rs->n_ctx < 1 || rs->D < 2 || rs->D % 2 ||
        !rs->rope_inv_freq)
        return fs_errf(e, "cpu backend: reserve: max_T %d, max_seqs %d, max_K %d, n_ctx %d, D %d%s", rs->max_T,
                       rs->max_seqs, rs->max_K, rs->n_ctx, rs->D, rs->rope_inv_freq ? "" : ", no RoPE frequencies");
    fs_ref_free(r);
    size_t x_in_n;
    if (!fs_mul_size((size_t)rs->max_T, (size_t)rs->max_K, &x_in_n))
        return fs_errf(e, "cpu backend: reserve: %d x %d floats overflow size_t", rs->max_T, rs->max_K);
    size_t *n = &r->reserved;
    if (!(r->ids = fs_ref_scratch((size_t)rs->max_T, sizeof(int), n, "the step's ids", e)) ||
        !(r->pos = fs_ref_scratch((size_t)rs->max_T, sizeof(int), n, "the step's positions", e)) ||
        !(r->seq = fs_ref_scratch((size_t)rs->max_T, sizeof(int), n, "the step's sequences", e)) ||
        !(r->rope = fs_ref_scratch((size_t)rs->n_ctx * (size_t)rs->D, sizeof(float), n, "the RoPE table", e)) ||
        !(r->scores = fs_ref_scratch((size_t)rs->n_ctx, sizeof(float), n, "attention scores", e)) ||
        !(r->x_in = fs_ref_scratch(x_in_n, sizeof(float), n, "the matmul input", e)) ||
        (with_w_rows && !(r->w_rows = fs_ref_scratch((size_t)FS_REF_ROWS * (size_t)rs->max_K, sizeof(float), n,
                                                     "the matmul's weight rows", e)))) {
        fs_ref_free(r);
        return -1;
    }
    r->max_T = rs->max_T;
    r->T = 0;
    r->n_seq = 1;
    r->one_seq = 1;
    /* cos and sin of the f32 angle p * inv_freq[i] (one f32 product, as
     * HF computes it; rope_kv.c says why), in double, rounded once */
    int half = rs->D / 2;
    for (int p = 0; p < rs->n_ctx; p++) {
        float *cs = r->rope + (size_t)p * (size_t)rs->D;
        for (int i = 0; i < half; i++) {
            float angle = (float)p * rs->rope_inv_freq[i];
            cs[i] = (float)cos((double)angle);
            cs[half + i] = (float)sin((double)angle);
        }
    }
    r->rope_ctx = rs->n_ctx;
    r->rope_D = rs->D;
    r->kv_dtype = rs->kv_dtype;
    return 0;
}

void fs_ref_free(fs_ref *r) {
    free(r->ids);
    free(r->pos);
    free(r->seq);
    free(r->rope);
    free(r->scores);
    free(r->x_in);
    free(r->w_rows);
    r->ids = r->pos = r->seq = NULL, r->rope = r->scores = r->x_in = r->w_rows = NULL;
    r->max_T = r->rope_ctx = r->rope_D = 0;
    r->reserved = 0;
}

static int ref_reserve(fs_backend *b, const fs_reserve *rs, fs_err *e) { return fs_ref_reserve(ref_ctx(b), rs, 1, e); }

static size_t ref_reserved_bytes(const fs_backend *b) { return ((const fs_ref *)b->ctx)->reserved; }

/* ---- the step, and the small ops ---- */

void fs_ref_set_step(fs_backend *b, const fs_step *st) {
    fs_ref *r = ref_ctx(b);
    int T = st->T;
    if (T < 1 || T > r->max_T || (!st->ids && T != 1)) {   /* a caller's bug: the arrays below hold max_T */
        fprintf(stderr, "fs: %s: set_step: %d tokens, reserve() allowed %d\n", b->name, T, r->max_T);
        abort();
    }
    if (st->ids) memcpy(r->ids, st->ids, (size_t)T * sizeof *r->ids);
    else r->ids[0] = r->argmax_last < 0 ? 0 : r->argmax_last;   /* T = 1: the queued argmax (backend.h) */
    memcpy(r->pos, st->pos, (size_t)T * sizeof *r->pos);
    memcpy(r->seq, st->seq, (size_t)T * sizeof *r->seq);
    r->T = T;
    r->n_seq = st->n_seq;
    r->one_seq = 1;
    for (int t = 1; t < T; t++) r->one_seq &= r->seq[t] == r->seq[0] && r->pos[t] == r->pos[0] + t;
}

/* copy: dst[dst_off .. +n) = src[src_off .. +n)    f32 buffers */
void fs_ref_copy(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n) {
    (void)b;
    memmove(buf_f32_mut(dst) + dst_off, buf_f32(src) + src_off, n * sizeof(float));
}

void fs_ref_sync(fs_backend *b) { (void)b; }

void fs_ref_set_describe(fs_ref *r, const char *kernels) {
    char cpu[160];
    fs_bench_cpu_name(cpu, sizeof cpu);
    snprintf(r->describe, sizeof r->describe, "%s; %s", cpu, kernels);
}

const char *fs_ref_describe(fs_backend *b) { return ref_ctx(b)->describe; }

/* The reference is for checking results, not speed: it does not measure. */
static double ref_bandwidth(fs_backend *b, fs_buf *buf, size_t n) {
    (void)b, (void)buf, (void)n;
    return -1.0;
}

static void ref_destroy(fs_backend *b) {
    if (b->ctx) fs_ref_free(b->ctx);
    free(b->ctx);
    free(b);
}

fs_backend *fs_backend_ref_new(fs_err *e) {
    fs_backend *b = calloc(1, sizeof *b);
    fs_ref *r = calloc(1, sizeof *r);
    if (!b || !r) {
        free(b);
        free(r);
        fs_errf(e, "cpu-ref backend: out of memory");
        return NULL;
    }
    fs_ref_set_describe(r, "scalar reference kernels (double accumulation), 1 thread");
    b->name = "cpu-ref";
    b->ctx = r;
    b->alloc = ref_alloc;
    b->upload = ref_upload;
    b->kv_alloc = ref_kv_alloc;
    b->free_buf = ref_free_buf;
    b->reserve = ref_reserve;
    b->write = fs_ref_write;
    b->read = fs_ref_read;
    b->buf_bytes = ref_buf_bytes;
    b->set_step = fs_ref_set_step;
    b->embed = fs_ref_embed;
    b->rmsnorm = fs_ref_rmsnorm;
    b->matmul = fs_ref_matmul;
    b->rope_kv = fs_ref_rope_kv;
    b->attention = fs_ref_attention;
    b->copy = fs_ref_copy;
    b->argmax = fs_ref_argmax;
    b->argmax_rows = fs_ref_argmax_rows;
    b->argmax_queue = fs_ref_argmax_queue;
    b->argmax_take = fs_ref_argmax_take;
    b->sync = fs_ref_sync;
    b->describe = fs_ref_describe;
    b->reserved_bytes = ref_reserved_bytes;
    b->bandwidth = ref_bandwidth;
    b->destroy = ref_destroy;
    return b;
}
