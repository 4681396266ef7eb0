/* safetensors.c - mmap one .safetensors file and validate its header.
 *
 * Nothing is copied: a tensor's data pointer is base + 8 + N + begin, inside
 * a read-only MAP_PRIVATE mapping, so a 1.2 GB checkpoint "loads" in
 * microseconds and the page cache shares it between processes. Because the
 * engine will index into these bytes in its hot loops without further
 * checks, every number in the header is checked here, once, with
 * overflow-safe arithmetic (see safetensors.h for the list).
 *
 * Docs: docs/weights.md
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE   /* madvise */
#else
#define _DEFAULT_SOURCE    /* madvise */
#endif
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* HF's reader refuses headers above 100 MB; a real one is a few hundred KB. */
#define ST_MAX_HEADER 100000000ull
/* Offsets and dims must be exact integers in a double: 2^53. */
#define ST_MAX_INT 9007199254740992LL

int fs_st_dtype(const char *s, fs_dtype *out) {
    if (!s) return -1;
    if (!strcmp(s, "BF16")) *out = FS_DTYPE_BF16;
    else if (!strcmp(s, "F16")) *out = FS_DTYPE_F16;
    else if (!strcmp(s, "F32")) *out = FS_DTYPE_F32;
    else if (!strcmp(s, "Q8_0")) *out = FS_DTYPE_Q8_0;   /* fs's own (quant.h); not HF's */
    else if (!strcmp(s, "Q4_0")) *out = FS_DTYPE_Q4_0;
    else return -1;
    return 0;
}

void fs_st_close(fs_safetensors *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    memset(f, 0, sizeof *f);
}

const fs_tensor *fs_st_find(const fs_safetensors *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* Format a shape as "[3072, 1024]" for messages. */
static void shape_str(char *out, size_t cap, const int64_t *shape, int ndim) {
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

/* One header entry -> t (name already set). begin/end are relative to the
 * data section. */
static int parse_entry(const fs_safetensors *f, const fs_json *v, fs_tensor *t, uint64_t *begin,
                       uint64_t *end, fs_err *e) {
    const char *nm = t->name;
    if (!fs_json_is(v, FS_JSON_OBJECT))
        return fs_errf(e, "%s: tensor %s: header entry is not a JSON object", f->name, nm);

    const fs_json *dt = fs_json_get(v, "dtype");
    const char *ds = fs_json_string(dt);
    if (!ds) return fs_errf(e, "%s: tensor %s: missing or non-string \"dtype\"", f->name, nm);
    if (fs_st_dtype(ds, &t->dtype))
        return fs_errf(e, "%s: tensor %s: unsupported dtype \"%.32s\" (supported: BF16, F16, F32, Q8_0, Q4_0)",
                       f->name, nm, ds);

    const fs_json *sh = fs_json_get(v, "shape");
    if (!fs_json_is(sh, FS_JSON_ARRAY))
        return fs_errf(e, "%s: tensor %s: missing or non-array \"shape\"", f->name, nm);
    if (sh->len > FS_MAX_DIMS)
        return fs_errf(e, "%s: tensor %s: shape has %zu dims, at most %d are supported", f->name, nm, sh->len,
                       FS_MAX_DIMS);
    t->ndim = (int)sh->len;
    /* The element count is a product of untrusted numbers: check each step,
     * so [2^40, 2^40] is an error rather than a small wrapped size. */
    size_t elems = 1;
    int d = 0;
    for (const fs_json *x = sh->child; x; x = x->next, d++) {
        int64_t dim;
        if (!fs_json_int(x, 0, ST_MAX_INT, &dim))
            return fs_errf(e, "%s: tensor %s: shape[%d] is not a non-negative integer", f->name, nm, d);
        t->shape[d] = dim;
        if (!fs_mul_size(elems, (size_t)dim, &elems))
            return fs_errf(e, "%s: tensor %s: shape overflows (element count too large)", f->name, nm);
    }
    /* Q8_0 / Q4_0 store a logical shape [.., K] as blocks of 32 along K:
     * K must be a multiple of 32, and the bytes are rows * K/32 * 34 (18). */
    int overflow;
    size_t nbytes = fs_tensor_bytes(t->dtype, t->ndim, t->shape, &overflow);
    if (overflow) return fs_errf(e, "%s: tensor %s: shape overflows (byte size too large)", f->name, nm);
    if (fs_dtype_is_quant(t->dtype) && (t->ndim == 0 || t->shape[t->ndim - 1] % 32))
        return fs_errf(e, "%s: tensor %s: %s needs a last dimension that is a multiple of 32", f->name, nm, ds);

    const fs_json *off = fs_json_get(v, "data_offsets");
    int64_t b, en;
    if (!fs_json_is(off, FS_JSON_ARRAY) || off->len != 2 || !fs_json_int(off->child, 0, ST_MAX_INT, &b) ||
        !fs_json_int(off->child->next, 0, ST_MAX_INT, &en))
        return fs_errf(e, "%s: tensor %s: \"data_offsets\" must be [begin, end] of non-negative integers", f->name,
                       nm);
    if (b > en)
        return fs_errf(e, "%s: tensor %s: data_offsets begin %lld > end %lld", f->name, nm, (long long)b,
                       (long long)en);
    size_t data_size = f->size - f->data_start;
    if ((uint64_t)en > data_size)
        return fs_errf(e, "%s: tensor %s: data_offsets [%lld, %lld] out of range: data section is %zu bytes",
                       f->name, nm, (long long)b, (long long)en, data_size);
    if ((uint64_t)(en - b) != nbytes) {
        char s[128];
        shape_str(s, sizeof s, t->shape, t->ndim);
        return fs_errf(e, "%s: tensor %s: %s %s needs %zu bytes, data_offsets give %lld", f->name, nm, ds, s,
                       nbytes, (long long)(en - b));
    }
    /* Block formats start with an f16 scale: 2-byte alignment, like F16. */
    size_t esz = fs_dtype_is_quant(t->dtype) ? 2 : fs_dtype_size(t->dtype);
    if ((f->data_start + (size_t)b) % esz)
        return fs_errf(e, "%s: tensor %s: data at file offset %zu is not aligned to its %zu-byte elements",
                       f->name, nm, f->data_start + (size_t)b, esz);
    /* Header-only parse (fs_st_check_header): the data is not in memory. */
    t->data = f->base ? f->base + f->data_start + (size_t)b : NULL;
    t->nbytes = nbytes;
    t->file_backed = 1;
    *begin = (uint64_t)b;
    *end = (uint64_t)en;
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    const fs_tensor *x = *(const fs_tensor *const *)a, *y = *(const fs_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Parse the header in buf[0..len) of a file of file_size bytes. Normally
 * file_size == len (the whole file is in memory); fs_st_check_header passes
 * the header alone, a file_size as large as a file can be, and keeps no data
 * pointers (f->base NULL). */
static int parse(fs_safetensors *f, const void *buf, size_t len, size_t file_size, const char *name, fs_err *e) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name ? name : "(buffer)");
    f->base = file_size == len ? buf : NULL;
    f->size = file_size;
    const uint8_t *p = buf;
    if (len < 8) return fs_errf(e, "%s: file is %zu bytes, too short for the 8-byte header length", f->name, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | p[i]; /* little-endian u64 */
    if (n > len - 8)
        return fs_errf(e, "%s: header length %llu runs past the end of the file (%zu bytes after the length)",
                       f->name, (unsigned long long)n, len - 8);
    if (n > ST_MAX_HEADER)
        return fs_errf(e, "%s: header length %llu exceeds the 100 MB limit", f->name, (unsigned long long)n);
    if (n < 2 || p[8] != '{')
        return fs_errf(e, "%s: header is not a JSON object (must start with '{')", f->name);
    f->data_start = 8 + (size_t)n;

    fs_json_doc doc;
    if (fs_json_parse(&doc, (const char *)p + 8, (size_t)n, e))
        return fs_err_prefix(e, "%s: header (offsets from byte 8)", f->name);
    const fs_json *root = doc.root;
    if (!fs_json_is(root, FS_JSON_OBJECT)) {
        fs_json_free(&doc);
        return fs_errf(e, "%s: header is not a JSON object", f->name);
    }

    f->tensors = fs_xcalloc(root->len ? root->len : 1, sizeof *f->tensors);
    span *spans = fs_xcalloc(root->len ? root->len : 1, sizeof *spans);
    int rc = 0;
    for (const fs_json *v = root->child; v; v = v->next) {
        if (v->key_len == 12 && !memcmp(v->key, "__metadata__", 12)) {
            if (!fs_json_is(v, FS_JSON_OBJECT) && !fs_json_is(v, FS_JSON_NULL)) {
                rc = fs_errf(e, "%s: \"__metadata__\" is not an object", f->name);
                break;
            }
            continue;
        }
        if (strlen(v->key) != v->key_len || v->key_len == 0) {
            rc = fs_errf(e, "%s: a tensor name is empty or contains a NUL byte", f->name);
            break;
        }
        fs_tensor *t = &f->tensors[f->n_tensors];
        t->name = fs_xstrdup(v->key);
        f->n_tensors++;
        span *s = &spans[f->n_tensors - 1];
        s->idx = f->n_tensors - 1;
        if ((rc = parse_entry(f, v, t, &s->begin, &s->end, e))) break;
    }
    fs_json_free(&doc);

    if (!rc && f->n_tensors > 1) {
        /* Duplicate names: JSON allows them, but which one would be meant? */
        const fs_tensor **byname = fs_xmalloc((size_t)f->n_tensors * sizeof *byname);
        for (int i = 0; i < f->n_tensors; i++) byname[i] = &f->tensors[i];
        qsort(byname, (size_t)f->n_tensors, sizeof *byname, cmp_name);
        for (int i = 1; i < f->n_tensors && !rc; i++)
            if (!strcmp(byname[i - 1]->name, byname[i]->name))
                rc = fs_errf(e, "%s: tensor %s: appears twice in the header", f->name, byname[i]->name);
        free(byname);
    }
    if (!rc) {
        /* Overlap: sort by begin; every non-empty tensor must start at or
         * after the furthest end seen so far. */
        qsort(spans, (size_t)f->n_tensors, sizeof *spans, cmp_span);
        uint64_t max_end = 0, data_end = 0;
        int max_idx = -1;
        for (int i = 0; i < f->n_tensors; i++) {
            /* the data section ends at the furthest offset any tensor names,
             * an empty one's too: parse_entry holds every tensor's offsets
             * to the data section, so a file of that length must parse */
            if (spans[i].end > data_end) data_end = spans[i].end;
            if (spans[i].begin == spans[i].end) continue;
            if (max_idx >= 0 && spans[i].begin < max_end) {
                rc = fs_errf(e, "%s: tensor %s: data_offsets [%llu, %llu] overlap tensor %s (ends at %llu)", f->name,
                             f->tensors[spans[i].idx].name, (unsigned long long)spans[i].begin,
                             (unsigned long long)spans[i].end, f->tensors[max_idx].name,
                             (unsigned long long)max_end);
                break;
            }
            if (spans[i].end > max_end) {
                max_end = spans[i].end;
                max_idx = spans[i].idx;
            }
        }
        f->data_end = f->data_start + (size_t)data_end;
    }
    if (!rc) {
        /* Keep the table in data order: that is "file order" for fs inspect. */
        fs_tensor *sorted = fs_xcalloc((size_t)(f->n_tensors ? f->n_tensors : 1), sizeof *sorted);
        for (int i = 0; i < f->n_tensors; i++) sorted[i] = f->tensors[spans[i].idx];
        free(f->tensors);
        f->tensors = sorted;
    }
    free(spans);
    if (rc) {
        f->base = NULL; /* not ours to unmap here */
        fs_st_close(f);
    }
    return rc;
}

int fs_st_parse(fs_safetensors *f, const void *buf, size_t len, const char *name, fs_err *e) {
    return parse(f, buf, len, len, name, e);
}

int fs_st_check_header(const void *head, size_t len, const char *name, uint64_t *file_size, fs_err *e) {
    fs_safetensors f;
    /* 2^62: any data_offsets (at most 2^53) fit, so only a cut header fails. */
    if (parse(&f, head, len, (size_t)1 << 62, name, e)) return -1;
    *file_size = f.data_end;
    fs_st_close(&f);
    return 0;
}

int fs_st_open(fs_safetensors *f, const char *path, const char *name_for_errors, fs_err *e) {
    memset(f, 0, sizeof *f);
    const char *nm = name_for_errors ? name_for_errors : path;
    /* O_NONBLOCK: a FIFO in the file's place must not hang the open. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return fs_errf(e, "%s: %s", nm, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fs_errf(e, "%s: not a regular file", nm);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return fs_errf(e, "%s: file is %zu bytes, too short for the 8-byte header length", nm, size);
    }
    void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file alive */
    if (base == MAP_FAILED) return fs_errf(e, "%s: mmap failed: %s", nm, strerror(errno));
    if (fs_st_parse(f, base, size, nm, e)) {
        munmap(base, size);
        return -1;
    }
    f->mapped = 1;
    return 0;
}

void fs_st_prefault_pages(const void *p, size_t n) {
#ifdef MADV_POPULATE_READ
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p || !n) return;
    uintptr_t a = (uintptr_t)p / (uintptr_t)page * (uintptr_t)page;
    madvise((void *)a, (uintptr_t)p + n - a, MADV_POPULATE_READ);   /* advice only (Linux 5.14+) */
#else
    (void)p;
    (void)n;
#endif
}

void fs_st_release_pages(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p || !n) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t z = ((uintptr_t)p + n) / (uintptr_t)page * (uintptr_t)page;
    if (z > a) madvise((void *)a, z - a, MADV_DONTNEED);   /* advice only: failure changes nothing */
}
