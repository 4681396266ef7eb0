/* bench_sampler.c - the time to pick one token from a whole vocabulary.
 *
 *   build/tools/bench_sampler [V]      (default V = 151936: Qwen3's vocabulary)
 *
 * The host samples every token it decodes, so this is time the device
 * waits for on a GPU (a decode step there is ~1 ms) and time a server
 * spends per stream per step. Logits are drawn from a normal distribution
 * (standard deviation 3, a spread like a language model's); each setting
 * is timed over at least half a second of thread CPU time
 * (CLOCK_THREAD_CPUTIME_ID, so a busy machine does not distort it), and
 * the first 256 ids drawn are summed, so that two builds can be checked
 * to draw the same tokens.
 *
 * Docs: docs/sampling.md
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sampler.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int V = argc > 1 ? atoi(argv[1]) : 151936;
    if (V < 1) {
        fprintf(stderr, "usage: bench_sampler [V >= 1]\n");
        return 2;
    }
    float *x = malloc((size_t)V * sizeof *x);
    fs_rng r;
    fs_rng_seed(&r, 1);
    for (int i = 0; i < V; i++) {   /* Box-Muller */
        double u = fs_rng_uniform(&r), v = fs_rng_uniform(&r);
        x[i] = (float)(3.0 * sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
    }
    static const struct {
        const char *name;
        double t;
        int k;
        double tp, mp, rep;
    } cfg[] = {
        {"greedy", 0, 0, 1, 0, 1},
        {"Qwen3 defaults (T 0.6, top-k 20, top-p 0.95)", 0.6, 20, 0.95, 0, 1},
        {"top-k 40, repetition penalty 1.1", 0.8, 40, 1, 0, 1.1},
        {"top-p 0.95 alone (top-k 0)", 0.8, 0, 0.95, 0, 1},
        {"min-p 0.05 alone", 0.8, 0, 1, 0.05, 1},
        {"plain (T 1, nothing cut)", 1, 0, 1, 0, 1},
    };
    printf("V = %d\n", V);
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        fs_sampler_params p;
        fs_sampler_params_default(&p, NULL);
        p.temperature = cfg[c].t, p.top_k = cfg[c].k, p.top_p = cfg[c].tp, p.min_p = cfg[c].mp;
        p.repetition_penalty = cfg[c].rep, p.seed = 7;
        fs_sampler *s;
        fs_err e = {{0}};
        if (fs_sampler_new(&s, V, &p, &e)) {
            fprintf(stderr, "bench_sampler: %s\n", e.msg);
            return 1;
        }
        for (int i = 0; i < 64; i++) fs_sampler_accept(s, (i * 7919) % V, 1);   /* a history for the penalty */
        long n = 0, sum = 0;
        double t0 = now(), t;
        do {
            int id = fs_sampler_sample(s, x, &e);
            if (id < 0) {
                fprintf(stderr, "bench_sampler: %s\n", e.msg);
                return 1;
            }
            if (n++ < 256) sum += id;
        } while ((t = now() - t0) < 0.5 || n < 256);
        printf("%-48s %9.1f us per token   (the first 256 ids sum to %ld)\n", cfg[c].name, t / n * 1e6, sum);
        fs_sampler_free(s);
    }
    free(x);
    return 0;
}
