/* fuzz_safetensors.c - libFuzzer target for the safetensors header checks.
 *
 * The input bytes are a whole .safetensors file image, parsed in memory via
 * fs_st_parse (no files). When parsing succeeds, every promise the parser
 * makes is re-checked: each tensor lies inside the buffer, its byte count is
 * elements * dtype size, its data is aligned to the element size, and no two
 * non-empty tensors overlap. Every element is read through
 * fs_tensor_get_f32, so ASan catches any out-of-bounds pointer.
 * fs_st_check_header (the header alone, as fs pull checks a download) must
 * agree with fs_st_parse: a file that parses has a header that passes and
 * announces data_end; a header that passes and announces exactly the
 * input's length belongs to a file that parses.
 *
 *   make fuzz && build/fuzz/fuzz_safetensors fuzz/corpus/safetensors -max_total_time=300
 *
 * Docs: docs/weights.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Copy into an exactly sized heap buffer so ASan sees the real end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    fs_safetensors f;
    fs_err e;
    uint64_t n = 0, need = 0;
    for (int i = 7; size >= 8 && i >= 0; i--) n = n << 8 | buf[i];
    int header_ok = size >= 8 && n <= size - 8 && fs_st_check_header(buf, (size_t)(8 + n), "fuzz.safetensors", &need, &e) == 0;
    int parsed = fs_st_parse(&f, buf, size, "fuzz.safetensors", &e) == 0;
    if (parsed && (!header_ok || need != f.data_end || f.data_end > size)) abort();
    if (header_ok && need == size && !parsed) abort();
    if (parsed) {
        for (int i = 0; i < f.n_tensors; i++) {
            const fs_tensor *t = &f.tensors[i];
            const uint8_t *p = t->data;
            if (p < buf || p + t->nbytes > buf + size) abort();
            size_t n = 1;
            for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
            int ovf;
            if (fs_tensor_bytes(t->dtype, t->ndim, t->shape, &ovf) != t->nbytes || ovf) abort();
            if ((size_t)(p - buf) % (fs_dtype_is_quant(t->dtype) ? 2 : fs_dtype_size(t->dtype))) abort();
            volatile float sink = 0;
            for (size_t k = 0; k < n; k++) sink += fs_tensor_get_f32(t, k);
            (void)sink;
            if (fs_st_find(&f, t->name) == NULL) abort();
            for (int j = i + 1; j < f.n_tensors; j++) {
                const fs_tensor *u = &f.tensors[j];
                const uint8_t *q = u->data;
                if (t->nbytes && u->nbytes && p < q + u->nbytes && q < p + t->nbytes) abort();
            }
        }
        fs_st_close(&f);
    } else if (strncmp(e.msg, "fuzz.safetensors: ", 18) != 0) {
        abort(); /* every error names the file */
    }
    free(buf);
    return 0;
}
