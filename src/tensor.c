/* tensor.c - dtype sizes, tensor byte counts, one element as f32
 * (see tensor.h).
 *
 * Docs: docs/weights.md
 */
#include "tensor.h"

#include <string.h>

#include "util.h"

const char *fs_dtype_name(fs_dtype t) {
    switch (t) {
    case FS_DTYPE_F32: return "F32";
    case FS_DTYPE_F16: return "F16";
    case FS_DTYPE_BF16: return "BF16";
    case FS_DTYPE_Q8_0: return "Q8_0";
    case FS_DTYPE_Q4_0: return "Q4_0";
    }
    return "?";
}

size_t fs_dtype_size(fs_dtype t) {
    switch (t) {
    case FS_DTYPE_F32: return 4;
    case FS_DTYPE_F16: return 2;
    case FS_DTYPE_BF16: return 2;
    case FS_DTYPE_Q8_0:
    case FS_DTYPE_Q4_0: return 0;
    }
    return 0;
}

int fs_dtype_is_quant(fs_dtype t) { return t == FS_DTYPE_Q8_0 || t == FS_DTYPE_Q4_0; }

/* Block sizes in bytes: a 2-byte f16 scale + 32 int8 (Q8_0) or 16 bytes of
 * nibbles (Q4_0); quant.h has the layouts. */
size_t fs_dtype_row_bytes(fs_dtype t, int64_t k) {
    if (k < 0) return 0;
    switch (t) {
    case FS_DTYPE_F32:
    case FS_DTYPE_F16:
    case FS_DTYPE_BF16: return (size_t)k * fs_dtype_size(t);
    case FS_DTYPE_Q8_0: return k % 32 ? 0 : (size_t)(k / 32) * 34;
    case FS_DTYPE_Q4_0: return k % 32 ? 0 : (size_t)(k / 32) * 18;
    }
    return 0;
}

size_t fs_tensor_bytes(fs_dtype t, int ndim, const int64_t *shape, int *overflow) {
    *overflow = 0;
    if (fs_dtype_is_quant(t)) {
        if (ndim < 1 || shape[ndim - 1] % 32) return 0;
        size_t rows = 1, bytes;
        for (int i = 0; i < ndim - 1; i++)
            if (!fs_mul_size(rows, (size_t)shape[i], &rows)) *overflow = 1;
        if (*overflow || !fs_mul_size(rows, fs_dtype_row_bytes(t, shape[ndim - 1]), &bytes)) {
            *overflow = 1;
            return 0;
        }
        return bytes;
    }
    size_t n = fs_dtype_size(t), bytes = n;
    for (int i = 0; i < ndim; i++)
        if (!fs_mul_size(bytes, (size_t)shape[i], &bytes)) {
            *overflow = 1;
            return 0;
        }
    return bytes;
}

float fs_tensor_get_f32(const fs_tensor *t, size_t i) {
    /* memcpy, not a cast: keeps the read well-defined for any alignment. */
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case FS_DTYPE_F32: {
        float v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    case FS_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, p + i * 2, 2);
        return fs_f16_to_f32(h);
    }
    case FS_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, p + i * 2, 2);
        return fs_bf16_to_f32(h);
    }
    case FS_DTYPE_Q8_0: {
        /* Rows are whole blocks (K % 32 == 0), so element i of the
         * flattened tensor is element i % 32 of block i / 32. */
        const unsigned char *b = p + (i / 32) * 34;
        uint16_t h;
        memcpy(&h, b, 2);
        return fs_f16_to_f32(h) * (float)(int8_t)b[2 + i % 32];
    }
    case FS_DTYPE_Q4_0: {
        const unsigned char *b = p + (i / 32) * 18;
        uint16_t h;
        memcpy(&h, b, 2);
        int j = (int)(i % 32);
        int q = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
        return fs_f16_to_f32(h) * (float)(q - 8);
    }
    }
    return 0.0f;
}
