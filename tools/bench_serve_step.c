/* bench_serve_step.c - what a new request's first token costs while other
 * sequences decode, measured on the engine's steps (no HTTP, no threads),
 * the variants interleaved in one process so a noisy machine slows them
 * alike:
 *
 *   alone   a step carrying only a fresh short prompt (P tokens): the time
 *           to first token on an idle server
 *   decode  a step of the B decoding sequences alone
 *   joined  a step of the B decoders plus the fresh prompt: what the new
 *           request rides in on a busy server
 *
 * A request arrives at a random moment of a decode step, so on average it
 * waits half a step, then its prompt runs - riding along with the
 * decoders, or (fs serve's choice, src/serve_sched.c) in a step of its own:
 *   busy TTFT / idle TTFT  ~  (decode / 2 + joined) / alone     riding along
 *                          ~  (decode / 2 + alone) / alone      first
 *
 *   build/tools/bench_serve_step -m /tmp/q06-q4 -t 2 [-b 7] [-p 14] [-r 15]
 *
 * Docs: docs/serve.md
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int threads = 2, B = 7, P = 14, R = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-b")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) P = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) R = atoi(argv[i + 1]);
    }
    if (!dir || B < 1 || B + 1 > FS_MAX_SEQS || P < 1 || R < 1 || R > 100) {
        fprintf(stderr, "usage: bench_serve_step -m MODEL [-t THREADS] [-b DECODERS] [-p PROMPT] [-r ROUNDS]\n");
        return 1;
    }
    fs_err e = {{0}};
    fs_engine *g = NULL;
    fs_engine_opts o = {NULL, threads, 1024, NULL, FS_ENGINE_TOKENIZER, B + 1, NULL};
    if (fs_engine_open(&g, dir, &o, &e)) {
        fprintf(stderr, "bench_serve_step: %s\n", e.msg);
        return 1;
    }
    fs_sampling greedy;
    memset(&greedy, 0, sizeof greedy);
    greedy.set = FS_SET_TEMPERATURE; /* temperature 0 */
    fs_sampler_params sp;
    fs_engine_sampler_params(g, &greedy, &sp, &e);
    fs_seq *q[FS_MAX_SEQS];
    for (int i = 0; i <= B; i++)
        if (fs_seq_new(&q[i], g, 1024, &sp, &e)) {
            fprintf(stderr, "bench_serve_step: %s\n", e.msg);
            return 1;
        }
    /* the decoders: 8-token prompts, generating for the whole run */
    int prompt[64];
    fs_seq_gen go = {0};
    go.max_new_tokens = 900;
    for (int i = 0; i < B; i++) {
        for (int k = 0; k < 8; k++) prompt[k] = 1000 + 37 * i + k;
        fs_seq_start(q[i], prompt, 8, 0, &go, &e);
    }
    for (int k = 0; k < 16; k++) fs_engine_step(g, q, B, 0, &e); /* past their prefill, some context */

    double alone[100], decode[100], joined[100];
    fs_seq *probe = q[B];
    fs_seq_gen one = {0};
    one.max_new_tokens = 1;
    for (int r = 0; r < R; r++) {
        for (int k = 0; k < P; k++) prompt[k] = 2000 + 101 * r + k; /* a new prompt each time */
        fs_seq_start(probe, prompt, P, 0, &one, &e);
        double t0 = fs_now();
        fs_engine_step(g, &probe, 1, 0, &e);
        alone[r] = fs_now() - t0;

        t0 = fs_now();
        fs_engine_step(g, q, B, 0, &e);
        decode[r] = fs_now() - t0;

        prompt[0] += 50;
        fs_seq_start(probe, prompt, P, 0, &one, &e);
        t0 = fs_now();
        fs_engine_step(g, q, B + 1, 0, &e);
        joined[r] = fs_now() - t0;
    }
    double a = median(alone, R), d = median(decode, R), j = median(joined, R);
    printf("{\"decoders\": %d, \"prompt\": %d, \"rounds\": %d, \"alone_ms\": %.2f, \"decode_ms\": %.2f, "
           "\"joined_ms\": %.2f, \"ttft_ratio_riding\": %.2f, \"ttft_ratio_first\": %.2f}\n",
           B, P, R, 1e3 * a, 1e3 * d, 1e3 * j, (d / 2 + j) / a, (d / 2 + a) / a);
    for (int i = 0; i <= B; i++) fs_seq_free(q[i]);
    fs_engine_free(g);
    return 0;
}
