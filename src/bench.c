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
 * The bandwidth it is compared with is measured by the backend itself
 * (backend.h, bandwidth: the CPU's is src/cpu/bandwidth_cpu.c).
 *
 * Docs: docs/bench.md
 */
#include <stdio.h>
#include <string.h>
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

fs_decode_bytes fs_bench_decode_bytes(const fs_model *m, double ctx, size_t kv_elem) {
    const fs_config *c = &m->cfg;
    fs_decode_bytes b = {0};
    for (int l = 0; l < c->n_layers; l++) {
        const fs_layer *ly = &m->layers[l];
        const fs_tensor *ts[] = {&ly->input_layernorm, &ly->q_proj, &ly->k_proj, &ly->v_proj,
                                 &ly->q_norm, &ly->k_norm, &ly->q_bias, &ly->k_bias, &ly->v_bias,
                                 &ly->o_proj, &ly->post_attention_layernorm, &ly->gate_proj, &ly->up_proj,
                                 &ly->down_proj};   /* absent ones (no data) count 0 */
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) b.weights += fs_bench_tensor_bytes(ts[i]);
    }
    b.weights += fs_bench_tensor_bytes(&m->norm) + fs_bench_tensor_bytes(&m->lm_head);
    /* Rows of a matrix all have the same size, quantized or not. */
    if (m->embed_tokens.ndim == 2 && m->embed_tokens.shape[0] > 0)
        b.embed_row = fs_bench_tensor_bytes(&m->embed_tokens) / (size_t)m->embed_tokens.shape[0];
    if (ctx < 0) ctx = 0;
    b.kv = (size_t)(2.0 * c->n_layers * ctx * c->n_kv_heads * c->head_dim * (double)kv_elem);
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

void fs_bench_print_profile(const char *name, double tokens, double sec, int decode, const fs_profile *p) {
    double n = tokens > 0 ? tokens : 1, ops = 0;
    if (!(sec > 0)) sec = 1e-9;
    printf("  %-15s %.3f ms a token (%.2f tok/s, ops timed alone)\n", name, 1e3 * sec / n, n / sec);
    printf("    %-10s %11s %10s %7s %12s %9s %9s\n", "op", "calls/token", "us/token", "share", "MB/token", "GB/s",
           "GFLOP/s");
    for (int op = 0; op < FS_PROF_OPS; op++) {
        /* attention's bytes: the keys and values each token attends over -
         * what a decode step reads; a prefill reads each once per tile */
        double t = p->sec[op], bytes = op != FS_PROF_ATTENTION ? p->weight_bytes[op] : decode ? p->kv_bytes : 0;
        ops += t;
        if (!p->calls[op]) continue;
        printf("    %-10s %11.1f %10.1f %6.1f%%", fs_profile_op_name(op), p->calls[op] / n, 1e6 * t / n, 100 * t / sec);
        if (bytes > 0 && t > 0) printf(" %12.2f %9.2f", bytes / n / 1e6, bytes / t / 1e9);
        else printf(" %12s %9s", "", "");
        if (p->flops[op] > 0 && t > 0) printf(" %9.1f", p->flops[op] / t / 1e9);
        printf("%s\n", op == FS_PROF_ATTENTION && bytes > 0 ? "   (KV cache)" : "");
    }
    double rest = sec - ops > 0 ? sec - ops : 0;
    printf("    %-10s %11s %10.1f %6.1f%%   (host between ops, the loop, launches)\n", "the rest", "", 1e6 * rest / n,
           100 * rest / sec);
}
