/* bench.c - bytes per decoded token, memory read bandwidth, peak RSS.
 *
 * Decode roofline. One decode step (T = 1) reads:
 *   per layer: input_layernorm [H], q_proj [Hq*D, H], k_proj, v_proj
 *              [Hkv*D, H], q_norm, k_norm [D], o_proj [H, Hq*D],
 *              post_attention_layernorm [H], gate_proj, up_proj [I, H],
 *              down_proj [H, I]
 *   then:      norm [H], lm_head [V, H] (all of it, even when tied)
 *   plus:      one row of embed_tokens [V, H]
 *   and:       the KV cache up to the current position: 2 L ctx Hkv D f32
 * Activations are a few KB and stay in cache; they are not counted.
 *
 * Read bandwidth. Threads sum 64-bit words of disjoint slices of one large
 * buffer. Integer addition keeps the loop exact and lets the compiler
 * vectorise it without -ffast-math; four accumulators hide the add
 * latency, so the loop is limited by memory, not by the adder.
 *
 * Docs: docs/bench.md
 */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE   /* MAP_ANON */
#else
#define _DEFAULT_SOURCE    /* MAP_ANONYMOUS, madvise */
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

size_t fs_bench_tensor_bytes(const fs_tensor *t) {
    if (!t->data) return 0;
    /* nbytes is what the tensor occupies as stored, which is the right count
     * for every dtype, block-quantized ones included (their scales are part
     * of the rows). The fallback covers a tensor built without nbytes. */
    if (t->nbytes) return t->nbytes;
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n * fs_dtype_size(t->dtype);
}

fs_decode_bytes fs_bench_decode_bytes(const fs_model *m, double ctx) {
    const fs_config *c = &m->cfg;
    fs_decode_bytes b = {0};
    for (int l = 0; l < c->n_layers; l++) {
        const fs_layer *ly = &m->layers[l];
        const fs_tensor *ts[] = {&ly->input_layernorm, &ly->q_proj, &ly->k_proj, &ly->v_proj,
                                 &ly->q_norm, &ly->k_norm, &ly->o_proj, &ly->post_attention_layernorm,
                                 &ly->gate_proj, &ly->up_proj, &ly->down_proj};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) b.weights += fs_bench_tensor_bytes(ts[i]);
    }
    b.weights += fs_bench_tensor_bytes(&m->norm) + fs_bench_tensor_bytes(&m->lm_head);
    /* Rows of a matrix all have the same size, quantized or not. */
    if (m->embed_tokens.ndim == 2 && m->embed_tokens.shape[0] > 0)
        b.embed_row = fs_bench_tensor_bytes(&m->embed_tokens) / (size_t)m->embed_tokens.shape[0];
    if (ctx < 0) ctx = 0;
    b.kv = (size_t)(2.0 * c->n_layers * ctx * c->n_kv_heads * c->head_dim * sizeof(float));
    b.total = b.weights + b.embed_row + b.kv;
    return b;
}

int fs_bench_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

size_t fs_bench_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0) return 0;
#ifdef __APPLE__
    return (size_t)ru.ru_maxrss; /* macOS reports bytes */
#else
    return (size_t)ru.ru_maxrss * 1024; /* Linux and the BSDs report KiB */
#endif
}

typedef struct {
    uint64_t *p;
    size_t n;          /* words in this thread's slice */
    int fill;          /* 1: write the slice (first touch), 0: sum it */
    uint64_t sum;
} bw_slice;

static void *bw_worker(void *arg) {
    bw_slice *s = arg;
    if (s->fill) {
        /* Written by the thread that will read it: on a NUMA machine the
         * pages land on that thread's node. Non-zero so no page can stay a
         * shared zero page. */
        for (size_t i = 0; i < s->n; i++) s->p[i] = i;
        return NULL;
    }
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= s->n; i += 4) {
        a0 += s->p[i];
        a1 += s->p[i + 1];
        a2 += s->p[i + 2];
        a3 += s->p[i + 3];
    }
    for (; i < s->n; i++) a0 += s->p[i];
    s->sum = a0 + a1 + a2 + a3;
    return NULL;
}

/* One pass over the buffer with n threads; returns its seconds or -1. */
static double bw_pass(uint64_t *buf, size_t words, int n, int fill, uint64_t *sum) {
    pthread_t tid[256];
    bw_slice sl[256];
    size_t per = words / (size_t)n;
    double t0 = fs_now();
    int started = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        sl[i].p = buf + (size_t)i * per;
        sl[i].n = i == n - 1 ? words - (size_t)i * per : per;
        sl[i].fill = fill;
        sl[i].sum = 0;
        if (i == 0) continue; /* the calling thread takes slice 0 */
        if (pthread_create(&tid[i], NULL, bw_worker, &sl[i]) != 0) {
            ok = 0;
            break;
        }
        started = i;
    }
    bw_worker(&sl[0]);
    for (int i = 1; i <= started; i++) pthread_join(tid[i], NULL);
    double dt = fs_now() - t0;
    if (!ok) return -1;
    for (int i = 0; i < n; i++) *sum += sl[i].sum;
    return dt;
}

struct fs_bw_probe {
    uint64_t *buf;
    size_t words, map_len;
    int n_threads;
    uint64_t sum, want_per_pass;
    int passes_done;
};

fs_bw_probe *fs_bw_probe_new(size_t bytes, int n_threads, fs_err *e) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) {
        fs_errf(e, "read bandwidth: at most 256 threads (got %d)", n_threads);
        return NULL;
    }
    size_t words = bytes / sizeof(uint64_t);
    if (words < (size_t)n_threads * 4) {
        fs_errf(e, "read bandwidth: buffer of %zu bytes is too small", bytes);
        return NULL;
    }
    fs_bw_probe *p = calloc(1, sizeof *p);
    /* Mapped like the backend's weight arenas (transparent huge pages where
     * the OS has them): the probe should measure the memory, not the cost
     * of 4 KiB page walks, or it would understate what the weights get. */
    size_t map_len = words * sizeof(uint64_t);
    void *m = p ? mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0) : MAP_FAILED;
    uint64_t *buf = m == MAP_FAILED ? NULL : m;
#ifdef MADV_HUGEPAGE
    if (buf) madvise(buf, map_len, MADV_HUGEPAGE);
#endif
    if (!buf) {
        free(p);
        fs_errf(e, "read bandwidth: cannot allocate %zu MiB", bytes >> 20);
        return NULL;
    }
    p->buf = buf;
    p->words = words;
    p->map_len = map_len;
    p->n_threads = n_threads;
    uint64_t sum = 0;
    if (bw_pass(buf, words, n_threads, 1, &sum) < 0) {
        fs_bw_probe_free(p);
        fs_errf(e, "read bandwidth: cannot start %d threads", n_threads);
        return NULL;
    }
    /* The sum of 0 .. per-1 over the slices is known; checking it keeps the
     * compiler from discarding the reads and catches a torn pass. */
    size_t per = words / (size_t)n_threads;
    for (int i = 0; i < n_threads; i++) {
        uint64_t k = i == n_threads - 1 ? words - (size_t)i * per : per;
        p->want_per_pass += k * (k - 1) / 2;
    }
    return p;
}

int fs_bw_probe_measure(fs_bw_probe *p, int passes, double *bytes_per_s, fs_err *e) {
    if (passes < 1) passes = 1;
    double best = -1;
    for (int i = 0; i < passes; i++) {
        double dt = bw_pass(p->buf, p->words, p->n_threads, 0, &p->sum);
        if (dt < 0) return fs_errf(e, "read bandwidth: cannot start %d threads", p->n_threads);
        p->passes_done++;
        if (dt > 0 && (best < 0 || dt < best)) best = dt;
    }
    if (p->sum != p->want_per_pass * (uint64_t)p->passes_done) return fs_errf(e, "read bandwidth: checksum mismatch");
    if (best <= 0) return fs_errf(e, "read bandwidth: timer resolution too coarse for %zu bytes", p->words * 8);
    *bytes_per_s = (double)(p->words * sizeof(uint64_t)) / best;
    return 0;
}

void fs_bw_probe_free(fs_bw_probe *p) {
    if (!p) return;
    if (p->buf) munmap(p->buf, p->map_len);
    free(p);
}

void fs_bench_cpu_name(char *buf, size_t n) {
    char name[128] = "", fam[16] = "", mod[16] = "", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f) && !(name[0] && fam[0] && mod[0])) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1;
        v += strspn(v, " \t");
        v[strcspn(v, "\n")] = 0;
        if (!name[0] && !strncmp(line, "model name", 10)) snprintf(name, sizeof name, "%s", v);
        else if (!fam[0] && !strncmp(line, "cpu family", 10)) snprintf(fam, sizeof fam, "%s", v);
        else if (!mod[0] && !strncmp(line, "model\t", 6)) snprintf(mod, sizeof mod, "%s", v);
    }
    if (f) fclose(f);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (name[0] && fam[0]) snprintf(buf, n, "%s (x86 family %s model %s), %ld CPUs online", name, fam, mod, cpus);
    else if (name[0]) snprintf(buf, n, "%s, %ld CPUs online", name, cpus);
    else snprintf(buf, n, "%ld CPUs online", cpus);
}
