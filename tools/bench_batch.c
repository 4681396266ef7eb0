/* bench_batch.c - what continuous batching buys: N sessions decoded
 * together, one fs_forward_batch call per step, against the same N
 * sessions decoded one after another, one fs_session_eval each.
 *
 *   build/tools/bench_batch -m MODEL [-t THREADS] [--backend NAME]
 *                           [-n 1,2,4,8] [--steps 32] [--depth 64] [-r 3]
 *                           [--profile]
 *
 * For each N: N sessions on one forward pass (max_seqs = the largest N)
 * each hold a prompt of `depth` tokens (prefilled once, not timed); then
 * `steps` decode steps of one token per session are timed, separately and
 * batched, alternating over r rounds (a busy machine drifts; alternation
 * spreads the drift over both), each round starting again from the same
 * prompt (fs_session_truncate). Printed per N: the median aggregate
 * tokens/s (N * steps / time) of each, and their ratio.
 *
 * Why batching helps a decode step: one token's matmuls are matrix-vector
 * products that read every weight once and do 2 flops per weight read, so
 * a step is bound by memory bandwidth. N tokens in one step read the
 * weights once for all of them (matrix-matrix), while attention and the
 * cache stay per session. The ids are fixed, not sampled: both ways
 * compute the same tokens.
 *
 * --profile: for each N, one more batched run with every op timed alone
 * (fs bench --profile's table, src/bench.h): where a batched step's time
 * goes - the weights read once for all N tokens, attention once per
 * session.
 *
 * Docs: docs/forward.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "forward.h"
#include "model.h"
#include "util.h"

#define MAX_N 64

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_batch -m MODEL [-t THREADS] [--backend NAME] [-n 1,2,4,8] [--steps 32] "
                    "[--depth 64] [-r 3] [--profile]\n");
    exit(1);
}

/* The token session i decodes at step k (any valid ids will do). */
static int token(int i, int k, int V) { return (int)(((unsigned)k * 7919u + (unsigned)i * 104729u + 13u) % (unsigned)V); }

/* Seconds for `steps` decode steps of sessions s[0 .. n), batched or one
 * session at a time, from position depth. */
static double run(fs_forward *f, fs_session **s, int n, int steps, int depth, int batched, int V) {
    fs_err e;
    int ids[MAX_N], ones[MAX_N];
    const int *idp[MAX_N];
    for (int i = 0; i < n; i++) {
        fs_session_truncate(s[i], depth);
        ones[i] = 1;
        idp[i] = &ids[i];
    }
    double t0 = fs_now();
    for (int k = 0; k < steps; k++) {
        for (int i = 0; i < n; i++) ids[i] = token(i, k, V);
        if (batched) {
            if (fs_forward_batch(f, s, idp, ones, n, &e)) {
                fprintf(stderr, "bench_batch: %s\n", e.msg);
                exit(1);
            }
        } else {
            for (int i = 0; i < n; i++)
                if (fs_session_eval(s[i], &ids[i], 1, &e)) {
                    fprintf(stderr, "bench_batch: %s\n", e.msg);
                    exit(1);
                }
        }
    }
    /* a decode step on a GPU is only queued (forward.h): the clock stops
     * when the last one has run */
    fs_backend *be = fs_forward_backend(f);
    be->sync(be);
    return fs_now() - t0;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *backend = "cpu", *ns = "1,2,4,8";
    int threads = 0, steps = 32, depth = 64, rounds = 3, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--profile")) {
            profile = 1;
            continue;
        }
        if (!v) usage();
        if (!strcmp(a, "-m")) dir = v;
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "-n")) ns = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--depth")) depth = atoi(v);
        else if (!strcmp(a, "-r")) rounds = atoi(v);
        else usage();
        i++;
    }
    int list[MAX_N], n_list = 0, max_n = 1;
    for (const char *p = ns; *p && n_list < MAX_N;) {
        int n = atoi(p);
        if (n < 1 || n > MAX_N) usage();
        list[n_list++] = n;
        if (n > max_n) max_n = n;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    if (!dir || steps < 1 || depth < 1 || rounds < 1 || n_list == 0) usage();

    fs_err e;
    fs_model m;
    fs_forward *f = NULL;
    if (fs_model_load(&m, dir, &e)) {
        fprintf(stderr, "bench_batch: %s\n", e.msg);
        return 1;
    }
    /* the backend's own KV cache type, as fs serve and fs generate take it (--kv auto) */
    fs_forward_opts fo = {.backend = backend, .n_threads = threads, .n_ctx = depth + steps, .max_seqs = max_n,
                          .kv_auto = 1};
    if (fs_forward_new(&f, &m, &fo, &e)) {
        fprintf(stderr, "bench_batch: %s\n", e.msg);
        return 1;
    }
    if (fs_forward_max_seqs(f) < max_n) {
        fprintf(stderr, "bench_batch: N %d: one call carries at most %d sessions here\n", max_n, fs_forward_max_seqs(f));
        return 1;
    }
    int V = m.cfg.vocab;
    fs_session *s[MAX_N];
    int *prompt = fs_xmalloc((size_t)depth * sizeof(int));
    for (int i = 0; i < max_n; i++) {
        for (int j = 0; j < depth; j++) prompt[j] = token(i, -1 - j, V);
        if (fs_session_new(&s[i], f, 0, &e) || fs_session_eval(s[i], prompt, depth, &e)) {
            fprintf(stderr, "bench_batch: %s\n", e.msg);
            return 1;
        }
    }
    fs_backend *be = fs_forward_backend(f);
    printf("%s (%s weights), backend %s: %s; KV cache %s\n", dir, fs_dtype_name(m.layers[0].q_proj.dtype), be->name,
           be->describe(be), fs_dtype_name(fs_forward_kv_dtype(f)));
    printf("%d decode steps from depth %d, median of %d alternating rounds\n", steps, depth, rounds);
    printf("%4s %14s %14s %8s\n", "N", "separate tok/s", "batched tok/s", "gain");
    double *t_sep = fs_xmalloc((size_t)rounds * sizeof(double)), *t_bat = fs_xmalloc((size_t)rounds * sizeof(double));
    for (int li = 0; li < n_list; li++) {
        int n = list[li];
        run(f, s, n, 2, depth, 1, V);   /* warm up both paths */
        run(f, s, n, 2, depth, 0, V);
        for (int r = 0; r < rounds; r++) {
            t_sep[r] = run(f, s, n, steps, depth, 0, V);
            t_bat[r] = run(f, s, n, steps, depth, 1, V);
        }
        qsort(t_sep, (size_t)rounds, sizeof(double), cmp_double);
        qsort(t_bat, (size_t)rounds, sizeof(double), cmp_double);
        double sep = n * steps / t_sep[rounds / 2], bat = n * steps / t_bat[rounds / 2];
        printf("%4d %14.1f %14.1f %7.2fx\n", n, sep, bat, bat / sep);
        fflush(stdout);
    }
    for (int li = 0; profile && li < n_list; li++) {
        int n = list[li];
        fs_profile p;
        char name[32];
        memset(&p, 0, sizeof p);
        fs_forward_profile(f, &p);
        double t = run(f, s, n, steps, depth, 1, V);
        fs_forward_profile(f, NULL);
        snprintf(name, sizeof name, "N %d batched", n);
        if (li == 0) printf("\nprofile: one more batched run of each N, each op timed alone (per token of all N)\n");
        fs_bench_print_profile(name, (double)n * steps, t, 1, &p);
    }
    free(t_sep);
    free(t_bat);
    free(prompt);
    for (int i = 0; i < max_n; i++) fs_session_free(s[i]);
    fs_forward_free(f);
    fs_model_free(&m);
    return 0;
}
