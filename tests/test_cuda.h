/* test_cuda.h - what tests/test_cuda.c shares with tests/cuda_bench.c.
 * Docs: docs/gpu.md */
#ifndef FS_TEST_CUDA_H
#define FS_TEST_CUDA_H

#include "backend.h"

extern fs_backend *B;   /* the CUDA backend under test */

/* A weight made from random floats: its stored bytes, the f32 values they
 * stand for (what a reference multiplies by), and the uploaded buffer. */
typedef struct weight {
    fs_tensor t;
    void *data;
    float *deq;
    fs_buf *buf;
} weight;

float frand(void);   /* uniform in [-1, 1) */
void make_weight(weight *w, fs_dtype dt, int N, int K, float scale);
void free_weight(weight *w);
fs_buf *dev_f32(const float *x, size_t n);   /* alloc + write (x may be NULL) */
/* set_step of T tokens of one sequence at positions pos0 .. pos0 + T - 1 */
void set_seq_step(const int *ids, int T, int pos0);

/* tests/cuda_bench.c: `test_cuda --bench [dtypes...]` */
int bench_cuda(int argc, char **argv);

#endif
