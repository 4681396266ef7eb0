/* tensor.h - what a tensor is: a dtype, a shape and bytes.
 *
 * Shared by the checkpoint reader (safetensors.c), the model (model.h),
 * the weight formats (quant.h) and every backend (backend.h), so none of
 * them needs the others' headers for it.
 *
 * Docs: docs/weights.md
 */
#ifndef FS_TENSOR_H
#define FS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FS_DTYPE_F32,
    FS_DTYPE_F16,
    FS_DTYPE_BF16,
    /* Block-quantized (quant.h): 32 weights per block, one f16 scale each.
     * Only matrices [N, K] with K a multiple of 32 are stored this way; the
     * safetensors dtype strings "Q8_0" / "Q4_0" are fs's own (HF cannot
     * read them). */
    FS_DTYPE_Q8_0,
    FS_DTYPE_Q4_0,
} fs_dtype;

const char *fs_dtype_name(fs_dtype t);   /* "F32", "F16", "BF16", "Q8_0", "Q4_0" */
/* Bytes per element for F32/F16/BF16; 0 for the block formats, where an
 * element has no whole-byte size: use fs_dtype_row_bytes for those. */
size_t fs_dtype_size(fs_dtype t);
int fs_dtype_is_quant(fs_dtype t);       /* Q8_0 or Q4_0 */
/* Bytes of k consecutive elements of one row (k a multiple of 32 for the
 * block formats); 0 when k is not a valid row length for t. */
size_t fs_dtype_row_bytes(fs_dtype t, int64_t k);
/* Bytes a tensor of this dtype and shape must have: the rows of the last
 * dimension times fs_dtype_row_bytes. 0 when the shape is impossible for
 * the dtype (a block format whose last dim is not a multiple of 32, or a
 * block format with ndim 0). Sets *overflow when the size overflows. */
size_t fs_tensor_bytes(fs_dtype t, int ndim, const int64_t *shape, int *overflow);

#define FS_MAX_DIMS 4

typedef struct fs_tensor {
    const char *name;        /* HF name, e.g. "model.norm.weight" */
    fs_dtype dtype;
    int ndim;
    int64_t shape[FS_MAX_DIMS];
    const void *data;        /* into the mmap; NULL if absent */
    size_t nbytes;
    int file_backed;         /* data is the read-only file mapping itself (not a
                                converted copy): its pages can be dropped and
                                are read back from the file if touched again */
} fs_tensor;

/* Element i of a 1-D or flattened tensor, converted to f32 (slow; for tests
 * and the scalar reference path). */
float fs_tensor_get_f32(const fs_tensor *t, size_t i);

#endif
