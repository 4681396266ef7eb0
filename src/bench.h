/* bench.h - what `fs bench` measures besides tokens per second: the bytes a
 * decoded token has to read, the process's peak memory, the machine's
 * name. (The memory read bandwidth is the backend's to measure:
 * backend.h, bandwidth.)
 *
 * Why bytes per token: decoding one token multiplies a single activation
 * row by every weight matrix, so each weight byte is read once and used for
 * one multiply-add. The CPU waits on memory, not arithmetic, and the best
 * possible decode speed is  read bandwidth / bytes per token  (the
 * "roofline"). Comparing the achieved GB/s with a read bandwidth measured
 * in the same run says how close the engine is to that ceiling.
 *
 * Shape legend: T tokens, H hidden, Hq/Hkv heads, D head dim, I ffn width,
 * V vocab, L layers.
 *
 * Docs: docs/bench.md
 */
#ifndef FS_BENCH_H
#define FS_BENCH_H

#include <stddef.h>

#include "forward.h"
#include "model.h"
#include "util.h"

/* Bytes one decode step reads at a given context depth. */
typedef struct fs_decode_bytes {
    size_t weights;    /* every layer's projections and norms, final norm, lm_head */
    size_t embed_row;  /* the one row of embed_tokens the token looks up */
    size_t kv;         /* the K and V cache rows attention reads: 2 L ctx Hkv D kv_elem */
    size_t total;
} fs_decode_bytes;

/* Bytes of a tensor as stored (its dtype: f32/f16/bf16 today; block
 * quantized formats are counted by their real size, scales included). */
size_t fs_bench_tensor_bytes(const fs_tensor *t);

/* The bytes a decode step reads when ctx tokens (itself included) are in
 * the cache, of kv_elem bytes an element (4: f32, 2: --kv f16). Counted from the model's tensors, so it follows whatever dtype
 * the weights have. */
fs_decode_bytes fs_bench_decode_bytes(const fs_model *m, double ctx, size_t kv_elem);

/* A line naming this machine's CPU for the report, e.g. "AMD EPYC (x86
 * family 26 model 2), 2 CPUs online" (Linux: /proc/cpuinfo; elsewhere the
 * count only). */
void fs_bench_cpu_name(char *buf, size_t n);

/* Peak resident set size of this process in bytes (0 if unknown). */
size_t fs_bench_peak_rss(void);

/* Number of online CPUs (at least 1). */
int fs_bench_n_cpus(void);

/* A profiled run's table (fs_forward_profile), to stdout: `tokens` tokens
 * in `sec` seconds; per op its calls, us and share a token, what it moved
 * - weights, or for decode steps (decode = 1) attention's keys and values
 * - in MB a token and GB/s, the matmuls' GFLOP/s, and "the rest": what
 * the ops do not account for (the host between ops, the caller's loop, a
 * GPU's launches). */
void fs_bench_print_profile(const char *name, double tokens, double sec, int decode, const fs_profile *p);

#endif
