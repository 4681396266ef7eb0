/* bench_quant.c - the Q8_0 / Q4_0 dot-product kernels in isolation.
 *
 *   build/tools/bench_quant [K N]      (default K = 1024, N = 3072: Qwen3-0.6B's gate_proj)
 *
 * One thread computes y[n] = w_n . x for every row n of an [N, K] weight
 * matrix (x already quantized to Q8_0), the way a decode step's matmul
 * does, repeated for about a second. Reports GB/s of weight bytes read and
 * the time per matrix, for the SIMD kernel (fs_vec_dot_*) and the scalar
 * reference (_ref), the many-rows kernels the decode matmul calls
 * (fs_vec_dot_*_rows), plus the activation quantizer. The matrix is bigger
 * than L2, so this is the streaming rate a decode step can hope for.
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy
 * machine time-slicing the benchmark does not distort the rate.
 *
 * Docs: docs/quantization.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef float (*dot_fn)(int k, const void *w, const fs_block_q8_0 *x);

static volatile float sink;

static void bench(const char *name, float (*dot)(int, const void *, const fs_block_q8_0 *), const void *W,
                  size_t row_bytes, const fs_block_q8_0 *xq, int K, int N) {
    double t0 = now(), t;
    long reps = 0;
    do {
        float acc = 0;
        for (int n = 0; n < N; n++) acc += dot(K, (const char *)W + (size_t)n * row_bytes, xq);
        sink = acc;
        reps++;
        t = now() - t0;
    } while (t < 1.0);
    double bytes = (double)row_bytes * N * (double)reps;
    printf("%-22s %8.2f GB/s   %8.1f us per [%d, %d] matrix\n", name, bytes / t / 1e9, t / (double)reps * 1e6, N,
           K);
}

static float d88(int k, const void *w, const fs_block_q8_0 *x) { return fs_vec_dot_q8_0_q8_0(k, w, x); }
static float d88r(int k, const void *w, const fs_block_q8_0 *x) { return fs_vec_dot_q8_0_q8_0_ref(k, w, x); }
static float d48(int k, const void *w, const fs_block_q8_0 *x) { return fs_vec_dot_q4_0_q8_0(k, w, x); }
static float d48r(int k, const void *w, const fs_block_q8_0 *x) { return fs_vec_dot_q4_0_q8_0_ref(k, w, x); }

int main(int argc, char **argv) {
    int K = argc > 1 ? atoi(argv[1]) : 1024, N = argc > 2 ? atoi(argv[2]) : 3072;
    if (K <= 0 || K % FS_QK || N <= 0) {
        fprintf(stderr, "usage: bench_quant [K N]   (K a positive multiple of 32)\n");
        return 1;
    }
    float *row = malloc((size_t)K * sizeof *row);
    size_t rb8 = fs_quant_row_bytes(FS_DTYPE_Q8_0, K), rb4 = fs_quant_row_bytes(FS_DTYPE_Q4_0, K);
    char *W8 = malloc(rb8 * (size_t)N), *W4 = malloc(rb4 * (size_t)N);
    fs_block_q8_0 *xq = malloc(rb8);
    unsigned s = 12345;
    for (int n = 0; n <= N; n++) {
        for (int i = 0; i < K; i++) {
            s = s * 1103515245u + 12345u;
            row[i] = (float)((int)(s >> 8 & 0xffff) - 32768) / 32768.0f;
        }
        if (n == N) {
            fs_quantize_row_q8_0(row, xq, K);
        } else {
            fs_quantize_row_q8_0(row, (fs_block_q8_0 *)(W8 + (size_t)n * rb8), K);
            fs_quantize_row_q4_0(row, (fs_block_q4_0 *)(W4 + (size_t)n * rb4), K);
        }
    }
    bench("q8_0 x q8_0 (simd)", d88, W8, rb8, xq, K, N);
    bench("q8_0 x q8_0 (_ref)", d88r, W8, rb8, xq, K, N);
    bench("q4_0 x q8_0 (simd)", d48, W4, rb4, xq, K, N);
    bench("q4_0 x q8_0 (_ref)", d48r, W4, rb4, xq, K, N);

    /* decode as the engine runs it: all N rows in one call, with x's block
     * sums computed once (fs_vec_dot_*_rows) */
    fs_q8_0_sum *sums = malloc((size_t)K / FS_QK * sizeof *sums);
    float *out = malloc((size_t)N * sizeof *out);
    fs_q8_0_sums(xq, K, sums);
    for (int q4 = 0; q4 < 2; q4++) {
        double t0 = now(), t;
        long reps = 0;
        do {
            if (q4) fs_vec_dot_q4_0_q8_0_rows(K, (const fs_block_q4_0 *)W4, N, xq, sums, out);
            else fs_vec_dot_q8_0_q8_0_rows(K, (const fs_block_q8_0 *)W8, N, xq, sums, out);
            sink = out[0];
            reps++;
            t = now() - t0;
        } while (t < 1.0);
        double bytes = (double)(q4 ? rb4 : rb8) * N * (double)reps;
        printf("%-22s %8.2f GB/s   %8.1f us per [%d, %d] matrix\n", q4 ? "q4_0 x q8_0 (_rows)" : "q8_0 x q8_0 (_rows)",
               bytes / t / 1e9, t / (double)reps * 1e6, N, K);
    }
    free(sums);
    free(out);

    double t0 = now(), t;
    long reps = 0;
    do { /* the CPU-time clock is a system call: read it every 1000 rows */
        for (int i = 0; i < 1000; i++) fs_quantize_row_q8_0(row, xq, K);
        reps += 1000;
        t = now() - t0;
    } while (t < 0.5);
    printf("%-22s %8.2f GB/s   %8.3f us per row of %d (f32 read)\n", "quantize_row_q8_0", 4.0 * K * reps / t / 1e9,
           t / (double)reps * 1e6, K);
    free(row);
    free(W8);
    free(W4);
    free(xq);
    return 0;
}
