/* backend_cpu.c - the CPU reference backend ("cpu-ref"): memory, and the op table.
 *
 * Memory is host memory. alloc() gives a zeroed f32 array; upload() of a
 * weight is a view: the buffer points at the tensor's bytes in the model's
 * mmap, so a 1.2 GB checkpoint costs no extra RAM and no load time. read and
 * write are memcpy. Every op is a plain scalar C function in its own file;
 * this file only wires them into struct fs_backend (backend.h).
 *
 * Docs: docs/forward.md
 */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static fs_buf *cpu_alloc(fs_backend *b, size_t n, fs_err *e) {
    (void)b;
    size_t bytes;
    if (!fs_mul_size(n, sizeof(float), &bytes)) {
        fs_errf(e, "cpu backend: buffer of %zu floats overflows size_t", n);
        return NULL;
    }
    fs_buf *buf = calloc(1, sizeof *buf);
    void *data = calloc(n ? n : 1, sizeof(float));
    if (!buf || !data) {
        free(buf);
        free(data);
        fs_errf(e, "cpu backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    buf->dtype = FS_DTYPE_F32;
    buf->n = n;
    buf->data = data;
    return buf;
}

static fs_buf *cpu_upload(fs_backend *b, const fs_tensor *t, fs_err *e) {
    (void)b;
    if (!t->data) {
        fs_errf(e, "cpu backend: tensor %s has no data", t->name ? t->name : "(unnamed)");
        return NULL;
    }
    fs_buf *buf = calloc(1, sizeof *buf);
    if (!buf) {
        fs_errf(e, "cpu backend: out of memory");
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

static void cpu_free_buf(fs_backend *b, fs_buf *buf) {
    (void)b;
    if (!buf) return;
    if (!buf->is_view) free(buf->data);
    free(buf);
}

static void cpu_write(fs_backend *b, fs_buf *dst, size_t off, const float *src, size_t n) {
    (void)b;
    memcpy(cpu_f32_mut(dst) + off, src, n * sizeof(float));
}

static void cpu_read(fs_backend *b, const fs_buf *src, size_t off, float *dst, size_t n) {
    (void)b;
    memcpy(dst, cpu_f32(src) + off, n * sizeof(float));
}

static size_t cpu_buf_bytes(const fs_backend *b, const fs_buf *buf) {
    (void)b;
    return buf->is_view ? 0 : buf->n * sizeof(float);
}

/* copy: dst[dst_off .. +n) = src[src_off .. +n)    f32 buffers */
static void cpu_copy(fs_backend *b, const fs_buf *src, size_t src_off, fs_buf *dst, size_t dst_off, size_t n) {
    (void)b;
    memmove(cpu_f32_mut(dst) + dst_off, cpu_f32(src) + src_off, n * sizeof(float));
}

static void cpu_sync(fs_backend *b) { (void)b; }

static void cpu_destroy(fs_backend *b) { free(b); }

fs_backend *fs_backend_cpu_new(fs_err *e) {
    fs_backend *b = calloc(1, sizeof *b);
    if (!b) {
        fs_errf(e, "cpu backend: out of memory");
        return NULL;
    }
    b->name = "cpu-ref";
    b->alloc = cpu_alloc;
    b->upload = cpu_upload;
    b->free_buf = cpu_free_buf;
    b->write = cpu_write;
    b->read = cpu_read;
    b->buf_bytes = cpu_buf_bytes;
    b->embed = fs_cpu_embed;
    b->rmsnorm = fs_cpu_rmsnorm;
    b->matmul = fs_cpu_matmul;
    b->rope = fs_cpu_rope;
    b->copy = cpu_copy;
    b->attention = fs_cpu_attention;
    b->swiglu = fs_cpu_swiglu;
    b->add = fs_cpu_add;
    b->sync = cpu_sync;
    b->destroy = cpu_destroy;
    return b;
}
