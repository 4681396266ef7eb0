/* bench_quant.c - the Q8_0 / Q4_0 dot-product kernels in isolation.
 *
 *   build/tools/bench_quant [K N]      (default K = 1024, N = 3072: Qwen3-0.6B's gate_proj)
 *
 * One thread computes y[n] = w_n . x for every row n of an [N, K] weight
 * matrix (x already quantized to Q8_0), the way a decode step's matmul
 * does, repeated for about a second. Reports GB/s of weight bytes read and
 * the time per matrix, for the row kernels the CPU backend's decode calls
 * when the weights are not repacked (src/cpu/quant_cpu.c: the scalar ones,
 * which are quant.c's _ref, and this machine's SIMD ones), plus the
 * activation quantizer. The matrix is bigger than L2, so this is the
 * streaming rate a decode step can hope for.
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy
 * machine time-slicing the benchmark does not distort the rate.
 *
 * Docs: docs/quantization.md
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu_backend.h"
#include "quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile float sink;

static const char *isa_name(fs_isa isa) {
    char buf[64];
    static char out[2][64];
    fs_cpu_kernels k = {isa, 0, 0, 0, 0};
    return strcpy(out[isa == FS_ISA_SCALAR], fs_cpu_kernels_name(k, buf, sizeof buf));
}

/* All N rows against x, repeated for about a second, with the kernels of isa. */
static void bench_rows(fs_isa isa, int q4, const void *W, size_t row_bytes, const fs_block_q8_0 *xq,
                       const fs_q8_0_sum *sums, float *out, int K, int N) {
    double t0 = now(), t;
    long reps = 0;
    do {
        if (q4) fs_cpu_dot_rows_q4_0(isa, K, W, N, xq, sums, out);
        else fs_cpu_dot_rows_q8_0(isa, K, W, N, xq, sums, out);
        sink = out[0];
        reps++;
        t = now() - t0;
    } while (t < 1.0);
    double bytes = (double)row_bytes * N * (double)reps;
    char name[40];
    snprintf(name, sizeof name, "%s x q8_0 (%s)", q4 ? "q4_0" : "q8_0", isa_name(isa));
    printf("%-22s %8.2f GB/s   %8.1f us per [%d, %d] matrix\n", name, bytes / t / 1e9, t / (double)reps * 1e6, N, K);
}

int main(int argc, char **argv) {
    int K = argc > 1 ? atoi(argv[1]) : 1024, N = argc > 2 ? atoi(argv[2]) : 3072;
    if (K <= 0 || K % FS_QK || N <= 0) {
        fprintf(stderr, "usage: bench_quant [K N]   (K a positive multiple of 32)\n");
        return 1;
    }
    float *row = malloc((size_t)K * sizeof *row);
    size_t rb8 = fs_dtype_row_bytes(FS_DTYPE_Q8_0, K), rb4 = fs_dtype_row_bytes(FS_DTYPE_Q4_0, K);
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
    /* decode as the engine runs it: all N rows in one call, with x's block
     * sums computed once */
    fs_q8_0_sum *sums = malloc((size_t)K / FS_QK * sizeof *sums);
    float *out = malloc((size_t)N * sizeof *out);
    fs_q8_0_sums(xq, K, sums);
    fs_isa isas[2] = {FS_ISA_SCALAR, fs_cpu_detect().isa};
    for (int i = 0; i < (isas[1] == FS_ISA_SCALAR ? 1 : 2); i++)
        for (int q4 = 0; q4 < 2; q4++)
            bench_rows(isas[i], q4, q4 ? (const void *)W4 : (const void *)W8, q4 ? rb4 : rb8, xq, sums, out, K, N);

    for (int i = 0; i < (isas[1] == FS_ISA_SCALAR ? 1 : 2); i++) {
        double t0 = now(), t;
        long reps = 0;
        do { /* the CPU-time clock is a system call: read it every 1000 rows */
            for (int r = 0; r < 1000; r++) fs_cpu_quantize_x(isas[i], row, xq, sums, K);
            reps += 1000;
            t = now() - t0;
        } while (t < 0.5);
        char name[40];
        snprintf(name, sizeof name, "quantize_x (%s)", isa_name(isas[i]));
        printf("%-22s %8.2f GB/s   %8.3f us per row of %d (f32 read)\n", name, 4.0 * K * reps / t / 1e9,
               t / (double)reps * 1e6, K);
    }
    free(sums);
    free(out);
    free(row);
    free(W8);
    free(W4);
    free(xq);
    return 0;
}
