/* backend.c - pick a backend by name.
 *
 * The one place that knows which backends exist. A CUDA or Metal backend
 * adds a line here and a folder beside src/cpu/; nothing else changes.
 * Names exist to compare backends; they never change results silently.
 *
 * Docs: docs/forward.md
 */
#include <string.h>

#include "backend.h"

fs_backend *fs_backend_new_opts(const char *name, int n_threads, fs_err *e) {
    if (!name || !strcmp(name, "cpu")) return fs_backend_fast_new(n_threads, e);
    if (!strcmp(name, "cpu-ref")) return fs_backend_cpu_new(e);   /* single-threaded */
    fs_errf(e, "unknown backend '%s' (available: cpu, cpu-ref)", name);
    return NULL;
}

fs_backend *fs_backend_new(const char *name, fs_err *e) { return fs_backend_new_opts(name, 0, e); }
