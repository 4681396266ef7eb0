/* backend.c - open a backend by name.
 *
 * The one place that knows which backends exist. A Metal backend would add
 * a line here and a folder beside src/cpu/ and src/cuda/; nothing else
 * changes. Names exist to compare backends; they never change results
 * silently.
 *
 * Docs: docs/forward.md
 */
#include <string.h>

#include "backend.h"

/* The constructors, one per backend folder. A GPU backend returns NULL,
 * with the reason in e, where it cannot run: no driver, no GPU, too little
 * free memory for o->need_bytes, fs built without its kernels. */
fs_backend *fs_backend_ref_new(fs_err *e);                              /* src/cpu/backend_ref.c */
fs_backend *fs_backend_cpu_new(int n_threads, fs_err *e);               /* src/cpu/backend_cpu.c */
fs_backend *fs_backend_cuda_new(const fs_backend_opts *o, fs_err *e);   /* src/cuda/backend_cuda.c */

const char *fs_backend_names(void) { return "auto, cuda, cpu, cpu-ref"; }

fs_backend *fs_backend_open(const fs_backend_opts *o, fs_err *e) {
    static const fs_backend_opts defaults = {0};
    if (!o) o = &defaults;
    const char *name = o->name ? o->name : "auto";
    int n_threads = o->n_threads;
    if (!strcmp(name, "auto")) {   /* the GPU where it can run, else the CPU, without a word */
        fs_err why;
        fs_backend *b = fs_backend_cuda_new(o, &why);
        return b ? b : fs_backend_cpu_new(n_threads, e);
    }
    if (!strcmp(name, "cuda")) return fs_backend_cuda_new(o, e);
    if (!strcmp(name, "cpu")) return fs_backend_cpu_new(n_threads, e);
    if (!strcmp(name, "cpu-ref")) return fs_backend_ref_new(e);   /* single-threaded */
    fs_errf(e, "unknown backend '%s' (available: %s)", name, fs_backend_names());
    return NULL;
}
