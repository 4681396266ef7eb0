/* safetensors.h - read one .safetensors file: mmap it, check every byte of
 * the header, hand out tensors that point straight into the mapping.
 *
 * The format (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N, little-endian u64: length of the header
 *   [N bytes]  JSON object: name -> {"dtype": "BF16", "shape": [V, H],
 *              "data_offsets": [begin, end]}, plus an optional
 *              "__metadata__" object of strings
 *   [rest]     the data section; a tensor's bytes are data[begin..end),
 *              row-major (C order), little-endian
 *
 * Validation (each failure is one message naming the file and the tensor):
 * N fits in the file, the header is a JSON object, every entry has a
 * supported dtype (BF16, F16, F32, or fs's own block formats Q8_0 / Q4_0,
 * stored [N, K] with K % 32 == 0 in N * K/32 blocks of 34 / 18 bytes, see
 * quant.h; HF's readers reject those), a shape of at most FS_MAX_DIMS
 * non-negative dims whose product does not overflow, data_offsets with
 * begin <= end inside the data section, end - begin == elements * dtype
 * size, each tensor aligned to its element size (HF's writer pads the
 * header so this always holds; it lets the engine read a bf16 array through
 * a uint16_t pointer), no two tensors overlapping, no duplicate names.
 *
 * Docs: docs/weights.md
 */
#ifndef FS_SAFETENSORS_H
#define FS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"
#include "util.h"

typedef struct fs_safetensors {
    char name[256];          /* file name used in error messages */
    const uint8_t *base;     /* the whole file (mmap or caller's buffer) */
    size_t size;
    size_t data_start;       /* 8 + N: where the data section begins */
    size_t data_end;         /* data_start + the largest data_offsets end */
    fs_tensor *tensors;      /* in data order (sorted by begin offset) */
    int n_tensors;
    int mapped;              /* 1 if base is our mmap (munmap on close) */
} fs_safetensors;

/* Open and mmap path read-only, then parse it. name_for_errors is how the
 * file is called in messages (e.g. "model-00001-of-00002.safetensors");
 * NULL uses the path. */
int fs_st_open(fs_safetensors *f, const char *path, const char *name_for_errors, fs_err *e);

/* Parse a whole file image already in memory (the fuzzer's entry point).
 * buf must outlive f: tensors point into it. */
int fs_st_parse(fs_safetensors *f, const void *buf, size_t len, const char *name, fs_err *e);

/* Check the header of a file that may not be all there yet (fs pull checks
 * a download before promoting it): head holds the file's first len bytes,
 * at least the 8 + N of its header. Every check of fs_st_parse is made
 * except that the data may lie past head; *file_size is the size the whole
 * file must have, data_end (HF's writer leaves no bytes after the last
 * tensor, and HF's reader refuses any). */
int fs_st_check_header(const void *head, size_t len, const char *name, uint64_t *file_size, fs_err *e);

/* Unmap (if mapped) and free the tensor table. Safe on a zeroed struct. */
void fs_st_close(fs_safetensors *f);

/* The tensor called name, or NULL. O(n). */
const fs_tensor *fs_st_find(const fs_safetensors *f, const char *name);

/* Parse a safetensors dtype string; -1 when not one we support. */
int fs_st_dtype(const char *s, fs_dtype *out);

/* The whole pages inside [p, p + n), which must lie in a mapping made by
 * this file (a tensor with file_backed set), are dropped from the
 * process: a backend that copied a tensor (repacked, or uploaded to a
 * GPU) calls it so the checkpoint is not resident twice. The mapping stays
 * valid - a later read faults the bytes back in from the file. */
void fs_st_release_pages(const void *p, size_t n);
/* Map the file pages under [p, p + n) in one call (Linux: MADV_POPULATE_READ)
 * instead of one page fault per 4 KiB when a copy reads them. */
void fs_st_prefault_pages(const void *p, size_t n);

#endif
