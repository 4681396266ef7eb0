/* tune_cpu.c - the decode plans: for each weight dtype, which decode kernel
 * runs, which software prefetch it issues and how far ahead - chosen by
 * measuring them on this machine, not written down.
 *
 * Why measure. A decode step reads every weight once; its speed is how
 * well the kernel keeps the memory system busy, and the right way to do
 * that differs between CPUs. The non-temporal prefetch hint (prefetchnta)
 * was measured as a gain on an AMD Zen 5 and made decode 2.5x slower on
 * an Intel Xeon (bf16 tg64 10.4 -> 25.9 tok/s with prefetcht0 instead,
 * nothing else changed; docs/bench.md). A 512-bit kernel is a gain where
 * the core is the limit and nothing where the memory is. A constant
 * tuned on one machine is a guess on every other.
 *
 * What is measured. reserve() calls fs_cpu_tune once the weights are
 * uploaded. For each dtype that has matrices, the candidates run as decode
 * matmuls (T = 1, all threads, the real kernels and job split) over the
 * model's own weights, one sample of TUNE_SAMPLE bytes at a time, walking
 * through the matrices so that each sample reads memory the one before did
 * not - the way a decode step streams them. Three stages:
 *   1. the near prefetch: none, or T0 at 512 B to 16 KiB ahead, or NTA at
 *      1 to 16 KiB, each with the default far prefetch and kernel;
 *   2. the far prefetch (a second one, into L2 only): none, or 4, 8 or 16
 *      KiB ahead, with stage 1's near one (docs/cpu.md, "Two
 *      prefetches": on the Xeon of docs/bench.md the pair read the
 *      weights ~25% faster than either alone);
 *   3. the kernel: every decode kernel the CPU has for the dtype (AVX2,
 *      AVX-VNNI, AVX-512, AVX-512 BF16; on aarch64 NEON with or without
 *      sdot, quantized weights only), with stage 2's prefetches;
 *   4. where the CPU has AMX tiles (bf16, Q8_0, Q4_0): from how many
 *      tokens a matmul runs on them rather than on the 512-bit GEMM. Not
 *      a decode question but a batched step's (continuous batching runs
 *      4-64 tokens a step) and as much a per-CPU one: the tiles lost to
 *      the 512-bit paths up to 16 tokens on one Xeon (Q4_0 at 8 tokens
 *      269 against 513 tok/s) and had beaten the AVX2 GEMM from 4 on
 *      another. Matmuls of T = 64, 32, 16, 8 and the smallest (4; Q4_0
 *      5) tokens, tiles against no tiles, from the largest down: the
 *      plan's `tiles` is the smallest T from which the tiles won at every
 *      T measured (fs_cpu_tune_tiles). It needs a reserve of 64 tokens
 *      or more (any prompt's); a plan cached without it (tiles=0) gets
 *      this stage alone the next time one is there.
 * Samples of all candidates alternate, round after round (the order
 * rotated). On a shared machine the speed drifts with the neighbours'
 * load, within seconds, so a candidate is never compared with another's
 * sample from another moment: each round's times are divided by the
 * reference's in the same round (the default plan, far prefetch or
 * kernel), and a candidate scores the median of its ratios. It
 * replaces the reference only if that median is at least 3% lower - among
 * candidates that are equal within the noise the default stays, rather
 * than whichever was lucky. About 0.2-0.5 s for Qwen3-0.6B (stage 4:
 * ~0.1 s more a dtype).
 *
 * When. The first time a model's weights (dtype, count, size) run on a CPU
 * (its name, the kernel set, the thread count): the plan is then stored in
 * ${FS_HOME:-$HOME/.cache/fs}/cpu-tune.txt, one line per key, and read
 * back the next time (the key ends with the measuring method's number,
 * TUNE_METHOD, so plans an older method cached are measured again).
 * Weights under TUNE_MIN_BYTES are not measured (they fit in the caches,
 * where the prefetch hardly matters; the tests' models): they run the
 * defaults - prefetcht0 1 KiB ahead, prefetcht1 4 KiB ahead, and the
 * kernel below: the best plan measured on the Xeon of docs/bench.md (22%
 * ahead of the older default, prefetcht0 16 KiB ahead, there); on an AMD
 * Zen 5 NTA measured ~16% ahead of T0, which a calibrated plan finds.
 * FS_CALIBRATE=0 keeps the defaults, FS_CALIBRATE=1 measures again
 * (whatever the size) and replaces the cached line: `fs bench --calibrate`
 * (FS_CALIBRATE=verbose: the same, printing every candidate's score).
 * FS_DECODE_PLAN="kernel=avx512 prefetch=t0 ahead=1024 far=4096 tiles=32"
 * (the cache's syntax; without far=, no far prefetch; without tiles=, the
 * default) imposes a plan on every
 * dtype whose kernel the CPU has: a switch
 * to compare plans with `fs bench`, as FS_ISA compares kernel sets.
 *
 * Docs: docs/cpu.md, docs/bench.md, docs/learnings/amx-threshold.md
 */
#if !defined(__APPLE__)
#define _DEFAULT_SOURCE   /* mkdir, getpid with -std=c11 */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cpu_backend.h"

#define TUNE_MIN_BYTES (64u << 20)
#define TUNE_SAMPLE (24u << 20)
#define TUNE_ROUNDS 7
#define TUNE_MAX_ROUNDS 15
#define TUNE_MARGIN 0.03   /* a candidate replaces the reference only when 3% faster */
#define DEFAULT_AHEAD 1024
#define DEFAULT_FAR 4096
#define MAX_CAND 16
/* Part of the cache key: raised whenever the way plans are measured
 * changes, so a plan cached by an older method is measured again rather
 * than trusted. Method 1 took the minimum of samples; method 2 scores the
 * median of same-round ratios; method 3 adds the far prefetch and near
 * distances under 4 KiB. A Q4_0 plan found cached on the Xeon of
 * docs/cpu.md named the AVX2 kernel (t0, 4 KiB ahead), which decoded
 * 8-10% slower there than the AVX-512 kernel at 16 KiB in alternating
 * runs. */
#define TUNE_METHOD 3

static const char *const kernel_names[FS_DK_COUNT] = {"avx2", "avx-vnni", "avx512", "avx512-bf16", "neon", "dotprod"};
static const char *const prefetch_names[3] = {"none", "t0", "nta"};

/* ---- which kernels exist ---- */

static int kernel_ok(const fs_cpu *f, fs_dtype dt, int k) {
    /* NEON: the quantized x8 decode, with or without sdot (matmul_quant_neon.c) */
    if (f->isa == FS_ISA_NEON) return fs_dtype_is_quant(dt) && (k == FS_DK_NEON || (k == FS_DK_DOTPROD && f->dotprod));
    if (f->isa != FS_ISA_AVX2) return 0;
    int quant = fs_dtype_is_quant(dt);
    switch (k) {
    case FS_DK_AVX2: return 1;
    case FS_DK_VNNI: return quant && f->vnni;
    case FS_DK_AVX512: return f->avx512;
    case FS_DK_AVX512_BF16: return dt == FS_DTYPE_BF16 && f->bf16;
    }
    return 0;
}

/* The default kernel, where nothing was measured: for quantized weights
 * the widest the CPU has (the integer work per byte is the largest, and
 * the 512-bit kernel measured 7-9% ahead of AVX2 / AVX-VNNI on the Xeon of
 * docs/bench.md), for float weights AVX2 (widening 16-bit weights to f32 is
 * cheap in any width; the AVX2 kernel measured 9-13% ahead of the 512-bit
 * one and 12-20% ahead of vdpbf16ps there). On aarch64: sdot where the
 * CPU has it (a fifth of the instructions, matmul_quant_neon.c). */
static int default_kernel(const fs_cpu *f, fs_dtype dt) {
    if (f->isa == FS_ISA_NEON) return kernel_ok(f, dt, FS_DK_DOTPROD) ? FS_DK_DOTPROD : FS_DK_NEON;
    if (!fs_dtype_is_quant(dt)) return FS_DK_AVX2;
    if (kernel_ok(f, dt, FS_DK_AVX512)) return FS_DK_AVX512;
    if (kernel_ok(f, dt, FS_DK_VNNI)) return FS_DK_VNNI;
    return FS_DK_AVX2;
}

int fs_cpu_decode_kernel(const fs_cpu *f, fs_dtype dt) {
    int k = f->plan[dt].kernel;
    return kernel_ok(f, dt, k) ? k : default_kernel(f, dt);
}

void fs_cpu_plan_defaults(fs_cpu *f) {
    for (int dt = 0; dt < FS_CPU_NDTYPE; dt++)
        f->plan[dt] = (fs_cpu_plan){default_kernel(f, (fs_dtype)dt), FS_PF_T0, DEFAULT_AHEAD, FS_PLAN_DEFAULT, 0, DEFAULT_FAR, 0};
    f->tune_s = 0;
}

/* ---- picking the fastest ---- */

static int verbose;   /* FS_CALIBRATE=verbose: print every candidate's score to stderr */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int fs_cpu_tune_pick(int n, double (*run)(void *ctx, int c), void *ctx, int rounds, int ref, double margin) {
    double t[MAX_CAND], ratio[MAX_CAND][TUNE_MAX_ROUNDS], score[MAX_CAND] = {0};
    if (n > MAX_CAND) n = MAX_CAND;
    if (rounds > TUNE_MAX_ROUNDS) rounds = TUNE_MAX_ROUNDS;
    if (rounds < 1) rounds = 1;
    if (ref < 0 || ref >= n) ref = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            int c = (i + r) % n;   /* rotate, so no candidate always runs after the same one */
            t[c] = run(ctx, c);
        }
        for (int c = 0; c < n; c++) ratio[c][r] = t[c] / t[ref];
    }
    for (int c = 0; c < n; c++) {
        qsort(ratio[c], (size_t)rounds, sizeof ratio[c][0], cmp_double);
        score[c] = ratio[c][rounds / 2];
    }
    int pick = ref;
    for (int c = 0; c < n; c++)
        if (score[c] < score[pick]) pick = c;
    if (verbose)
        for (int c = 0; c < n; c++)
            fprintf(stderr, "  candidate %d: %.3f of the reference's time (median of %d rounds)%s\n", c, score[c], rounds,
                    c == ref ? " (reference)" : "");
    return score[pick] < 1.0 - margin ? pick : ref;
}

/* ---- the cache file ---- */

int fs_cpu_tune_path(char *buf, size_t n) {
    const char *home = getenv("FS_HOME");
    int len;
    if (home && *home) len = snprintf(buf, n, "%s/cpu-tune.txt", home);
    else if ((home = getenv("HOME")) && *home) len = snprintf(buf, n, "%s/.cache/fs/cpu-tune.txt", home);
    else return -1;
    return len > 0 && (size_t)len < n ? 0 : -1;
}

static int parse_plan(const char *v, fs_cpu_plan *p) {
    char kernel[32], pf[16];
    int ahead, far = 0, tiles = 0,
               got = sscanf(v, "kernel=%31s prefetch=%15s ahead=%d far=%d tiles=%d", kernel, pf, &ahead, &far, &tiles);
    if (got < 3 || ahead < 0 || ahead > (1 << 20) || far < 0 || far > (1 << 20)) return -1;
    if (tiles != 0 && (tiles < FS_AMX_MIN_T || tiles > (1 << 20))) return -1;
    int k = -1, h = -1;
    for (int i = 0; i < FS_DK_COUNT; i++)
        if (!strcmp(kernel, kernel_names[i])) k = i;
    for (int i = 0; i < 3; i++)
        if (!strcmp(pf, prefetch_names[i])) h = i;
    if (k < 0 || h < 0) return -1;
    *p = (fs_cpu_plan){k, h, ahead, FS_PLAN_CACHED, 0, far, tiles};
    return 0;
}

int fs_cpu_tune_load(const char *key, fs_cpu_plan *p) {
    char path[1024], line[1024];
    if (fs_cpu_tune_path(path, sizeof path)) return -1;
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    size_t kl = strlen(key);
    int found = -1;
    while (found && fgets(line, sizeof line, fp))
        if (!strncmp(line, key, kl) && line[kl] == '\t') found = parse_plan(line + kl + 1, p);
    fclose(fp);
    return found;
}

/* mkdir -p of the directory part of path. */
static void make_parent_dirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(buf, 0755);   /* an existing one is fine; a failure shows at fopen */
            *s = '/';
        }
}

/* The file is rewritten whole - every other key's line kept, this key's
 * replaced - into a temporary file renamed over it, so two processes
 * calibrating at once leave one complete file. */
int fs_cpu_tune_store(const char *key, const fs_cpu_plan *p) {
    char path[1024], tmp[1100], line[1024];
    if (fs_cpu_tune_path(path, sizeof path)) return -1;
    make_parent_dirs(path);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) return -1;
    FILE *in = fopen(path, "r");
    size_t kl = strlen(key);
    int lines = 0;
    while (in && lines < 10000 && fgets(line, sizeof line, in)) {
        if (!strncmp(line, key, kl) && line[kl] == '\t') continue;
        if (!strchr(line, '\n')) continue;   /* a truncated line: drop it */
        fputs(line, out);
        lines++;
    }
    if (in) fclose(in);
    fprintf(out, "%s\tkernel=%s prefetch=%s ahead=%d far=%d tiles=%d\n", key, kernel_names[p->kernel],
            prefetch_names[p->prefetch], p->ahead, p->far, p->tiles);
    int bad = ferror(out);
    bad |= fclose(out);
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- measuring ---- */

typedef struct {
    fs_cpu *f;
    fs_dtype dt;
    const fs_cpu_buf **w;   /* the dtype's matrices */
    int nw, cur;            /* the next one a sample starts with */
    size_t sample;          /* bytes per sample */
    fs_cpu_plan cand[MAX_CAND];
} tune_run;

static size_t weight_bytes(const fs_cpu_buf *W) {
    return fs_dtype_row_bytes(W->base.dtype, W->base.cols) * (W->base.n / (size_t)W->base.cols);
}

/* One matmul of T tokens with W (T = 1: a decode's), through the same job
 * and input preparation as matmul_cpu.c: x is the reserved input,
 * f->ref.x_in [T, K], and y the reserved f->y_add. */
static void matmul_once(fs_cpu *f, const fs_cpu_buf *W, int T) {
    int K = W->base.cols, N = (int)(W->base.n / (size_t)K);
    const float *x = f->ref.x_in;
    float *y = f->y_add;
    fs_cpu_job job;
    union {
        fs_float_job fl;
        fs_quant_job q;
    } arg;
    f->decode_rows = fs_cpu_pass_rows(&N, 1, fs_dtype_row_bytes(W->base.dtype, K), f->nth);
    if (fs_dtype_is_quant(W->base.dtype)) {
        fs_cpu_quantize_input(f, x, T, K, 1u << W->base.dtype);
        fs_cpu_quant_job(f, &arg.q, &W->base, y, T, K, N, &job);
    } else {
        if (fs_cpu_wants_split(f, W->base.dtype, T)) fs_cpu_split_input(f, x, T, K);
        fs_cpu_float_job(f, &arg.fl, &W->base, x, y, T, K, N, &job);
    }
    fs_threadpool_for(f->pool, job.chunks, job.fn, job.arg);
}

/* Seconds per byte of one sample with candidate c. */
static double run_candidate(void *arg, int c) {
    tune_run *t = arg;
    t->f->plan[t->dt] = t->cand[c];
    size_t done = 0;
    double t0 = fs_now();
    while (done < t->sample) {
        const fs_cpu_buf *W = t->w[t->cur];
        t->cur = (t->cur + 1) % t->nw;
        matmul_once(t->f, W, 1);
        done += weight_bytes(W);
    }
    return (fs_now() - t0) / (double)done;
}

static void describe_cands(const tune_run *t, int n, const char *stage) {
    fprintf(stderr, "calibration, %s decode, %s:", fs_dtype_name(t->dt), stage);
    for (int c = 0; c < n; c++)
        fprintf(stderr, " %d=%s/%s/%d/far %d", c, kernel_names[t->cand[c].kernel],
                prefetch_names[t->cand[c].prefetch], t->cand[c].ahead, t->cand[c].far);
    fprintf(stderr, "\n");
}

/* The three stages (see the top) for one dtype; the plan is left in f. */
static void calibrate(tune_run *t) {
    fs_cpu *f = t->f;
    fs_dtype dt = t->dt;
    int k0 = default_kernel(f, dt), n = 0, ref = 0;
    static const int aheads[] = {512, 1024, 2048, 4096, 16384}, fars[] = {0, 4096, 8192, 16384};
    t->cand[n++] = (fs_cpu_plan){k0, FS_PF_NONE, 0, FS_PLAN_CALIBRATED, 0, DEFAULT_FAR, 0};
    for (int h = FS_PF_T0; h <= FS_PF_NTA; h++)
        for (size_t a = 0; a < sizeof aheads / sizeof aheads[0]; a++) {
            if (h == FS_PF_NTA && (aheads[a] == 512 || aheads[a] == 2048)) continue;
            if (h == FS_PF_T0 && aheads[a] == DEFAULT_AHEAD) ref = n;   /* the default plan */
            t->cand[n++] = (fs_cpu_plan){k0, h, aheads[a], FS_PLAN_CALIBRATED, 0, DEFAULT_FAR, 0};
        }
    if (verbose) describe_cands(t, n, "prefetch");
    fs_cpu_plan pf = t->cand[fs_cpu_tune_pick(n, run_candidate, t, TUNE_ROUNDS, ref, TUNE_MARGIN)];
    n = ref = 0;
    for (size_t a = 0; a < sizeof fars / sizeof fars[0]; a++) {
        if (fars[a] && fars[a] <= pf.ahead) continue;   /* a far prefetch nearer than the near one is none */
        if (fars[a] == DEFAULT_FAR) ref = n;
        t->cand[n] = pf;
        t->cand[n++].far = fars[a];
    }
    if (verbose) describe_cands(t, n, "far prefetch");
    pf = t->cand[fs_cpu_tune_pick(n, run_candidate, t, TUNE_ROUNDS, ref, TUNE_MARGIN)];
    n = ref = 0;
    for (int k = 0; k < FS_DK_COUNT; k++)
        if (kernel_ok(f, dt, k)) {
            if (k == k0) ref = n;
            t->cand[n] = pf;
            t->cand[n++].kernel = k;
        }
    if (verbose && n > 1) describe_cands(t, n, "kernel");
    f->plan[dt] = n > 1 ? t->cand[fs_cpu_tune_pick(n, run_candidate, t, TUNE_ROUNDS, ref, TUNE_MARGIN)] : pf;
}

/* ---- stage 4: from how many tokens on the AMX tiles ---- */

#define TILES_MAX_T 64   /* the largest T measured; a smaller reserve skips the stage */

int fs_cpu_tune_tiles(int n, const int *Ts, int (*tiles_win)(void *ctx, int T), void *ctx) {
    int from = Ts[n - 1] + 1;
    for (int i = n - 1; i >= 0 && tiles_win(ctx, Ts[i]); i--) from = Ts[i];
    return from;
}

/* Whether the dtype's matmuls have a tile path here (matmul_float.c's
 * bf16, matmul_quant.c's Q8_0 / Q4_0) and its scratch was reserved. */
static int has_tiles(const fs_cpu *f, int dt) {
    return f->isa == FS_ISA_AVX2 && f->amx && f->tpack &&
           (dt == FS_DTYPE_BF16 || dt == FS_DTYPE_Q8_0 || dt == FS_DTYPE_Q4_0);
}

typedef struct {
    tune_run *t;
    int T;
} tiles_ctx;

/* Seconds per byte of one sample of T-token matmuls: candidate 0 on the
 * tiles, 1 not (the plan's threshold just above T). */
static double run_tiles(void *arg, int c) {
    tiles_ctx *tc = arg;
    tune_run *t = tc->t;
    t->f->plan[t->dt].tiles = c == 0 ? tc->T : tc->T + 1;
    size_t done = 0;
    double t0 = fs_now();
    while (done < t->sample) {
        const fs_cpu_buf *W = t->w[t->cur];
        t->cur = (t->cur + 1) % t->nw;
        matmul_once(t->f, W, tc->T);
        done += weight_bytes(W);
    }
    return (fs_now() - t0) / (double)done;
}

/* The tiles win at T unless not using them is 3% faster (the tiles are
 * the reference: the default before this was measured). */
static int tiles_win(void *arg, int T) {
    tiles_ctx *tc = arg;
    tc->T = T;
    int pick = fs_cpu_tune_pick(2, run_tiles, tc, TUNE_ROUNDS, 0, TUNE_MARGIN);
    if (verbose)
        fprintf(stderr, "calibration, %s matmuls of %d tokens: %s\n", fs_dtype_name(tc->t->dt), T,
                pick ? "not on tiles" : "tiles");
    return pick == 0;
}

/* Stage 4 for one dtype over its matrices whose output of TILES_MAX_T
 * tokens fits the reserved f->y_add (the tied embedding's 151,936 rows do
 * not); the answer is left in the plan. */
static void calibrate_tiles(const tune_run *d) {
    fs_cpu *f = d->f;
    const fs_cpu_buf **w = malloc((size_t)d->nw * sizeof *w);
    int nw = 0;
    size_t total = 0;
    for (int i = 0; w && i < d->nw; i++)
        if ((size_t)TILES_MAX_T * (d->w[i]->base.n / (size_t)d->w[i]->base.cols) <= f->y_add_n) {
            w[nw++] = d->w[i];
            total += weight_bytes(d->w[i]);
        }
    if (nw) {
        tune_run t = {f, d->dt, w, nw, 0, total < TUNE_SAMPLE ? total : TUNE_SAMPLE, {{0}}};
        tiles_ctx tc = {&t, 0};
        int Ts[5] = {fs_amx_default_t(d->dt), 8, 16, 32, TILES_MAX_T};
        f->plan[d->dt].tiles = fs_cpu_tune_tiles(5, Ts, tiles_win, &tc);
    }
    free(w);
}

void fs_cpu_tune(fs_cpu *f) {
    const char *env = getenv("FS_CALIBRATE");
    verbose = env && !strcmp(env, "verbose");
    int force = env && (!strcmp(env, "1") || !strcmp(env, "force") || verbose), off = env && !strcmp(env, "0");
    const char *forced = getenv("FS_DECODE_PLAN");   /* to compare plans: "kernel=K prefetch=P ahead=N far=N" */
    if (f->isa != FS_ISA_AVX2 && f->isa != FS_ISA_NEON) return;   /* only these kernels have choices */
    const fs_cpu_buf **w = malloc(((size_t)f->n_moved + 1) * sizeof *w);
    if (!w) return;
    char cpu[160], kernels[64];
    fs_bench_cpu_name(cpu, sizeof cpu);
    fs_cpu_kernels_name(fs_cpu_get_kernels(f), kernels, sizeof kernels);
    double t_start = fs_now();
    int measured = 0;
    for (int dt = 0; dt < FS_CPU_NDTYPE; dt++) {
        int nw = 0;
        size_t total = 0;
        if (f->isa == FS_ISA_NEON && !fs_dtype_is_quant((fs_dtype)dt)) continue;   /* one float kernel, no prefetch */
        for (int i = 0; i < f->n_moved; i++) {
            const fs_cpu_buf *W = f->moved[i].buf;
            if ((int)W->base.dtype == dt && W->base.cols > 0 && W->base.n / (size_t)W->base.cols >= 8) {
                w[nw++] = W;
                total += weight_bytes(W);
            }
        }
        f->plan[dt].matrices = nw;
        if (!nw) continue;
        char key[512];
        snprintf(key, sizeof key, "%s | %s kernels, %d threads | %s decode, %d matrices, %zu MiB | method %d", cpu,
                 kernels, f->nth, fs_dtype_name((fs_dtype)dt), nw, total >> 20, TUNE_METHOD);
        fs_cpu_plan p;
        if (forced && parse_plan(forced, &p) == 0 && kernel_ok(f, (fs_dtype)dt, p.kernel)) {
            p.how = FS_PLAN_FORCED;
            p.matrices = nw;
            f->plan[dt] = p;
            continue;
        }
        if (off) continue;
        int cached = !force && fs_cpu_tune_load(key, &p) == 0 && kernel_ok(f, (fs_dtype)dt, p.kernel);
        if (cached) {
            p.matrices = nw;
            f->plan[dt] = p;
        }
        /* stage 4 where it applies and this reserve can run it: always when
         * forced, else for a plan cached without it */
        int tiles = has_tiles(f, dt) && f->ref.max_T >= TILES_MAX_T && (force || !f->plan[dt].tiles);
        if (cached && !tiles) continue;
        if (!force && total < TUNE_MIN_BYTES) continue;
        if (!measured) {   /* the input rows the samples read: any values but zeros */
            int K = 0, rows = f->ref.max_T < TILES_MAX_T ? f->ref.max_T : TILES_MAX_T;
            for (int i = 0; i < f->n_moved; i++) K = f->moved[i].buf->base.cols > K ? f->moved[i].buf->base.cols : K;
            for (int i = 0; i < rows * K; i++) f->ref.x_in[i] = (float)((long)i * 7919 % 2001 - 1000) / 1000.0f;
        }
        tune_run t = {f, (fs_dtype)dt, w, nw, 0, total < TUNE_SAMPLE ? total : TUNE_SAMPLE, {{0}}};
        if (!cached) calibrate(&t);
        if (tiles) calibrate_tiles(&t);
        f->plan[dt].matrices = nw;
        f->plan[dt].how = FS_PLAN_CALIBRATED;
        measured = 1;
        fs_cpu_tune_store(key, &f->plan[dt]);   /* best effort: a read-only home only costs the next run */
    }
    free(w);
    if (measured) f->tune_s = fs_now() - t_start;
}

/* ---- describe ---- */

/* Appends pre, a distance in bytes ("N B", or "N KiB" when whole KiB),
 * then post to line[n..]; returns the new length (unchanged once full). */
static int put_bytes(char *line, size_t size, int n, const char *pre, int bytes, const char *post) {
    if (n <= 0 || (size_t)n >= size) return n;
    return n + snprintf(line + n, size - (size_t)n, bytes % 1024 ? "%s%d B%s" : "%s%d KiB%s", pre,
                        bytes % 1024 ? bytes : bytes >> 10, post);
}

void fs_cpu_describe(fs_cpu *f) {
    char kernels[64], line[448];
    int n = snprintf(line, sizeof line, "%s kernels, %d thread%s", fs_cpu_kernels_name(fs_cpu_get_kernels(f), kernels, sizeof kernels),
                     f->nth, f->nth == 1 ? "" : "s");
    for (int dt = 0; dt < FS_CPU_NDTYPE && n > 0 && (size_t)n < sizeof line; dt++) {
        const fs_cpu_plan *p = &f->plan[dt];
        if (!p->matrices) continue;
        n += snprintf(line + n, sizeof line - (size_t)n, "; %s decode: %s, prefetch %s", fs_dtype_name((fs_dtype)dt),
                      kernel_names[p->kernel], prefetch_names[p->prefetch]);
        if (p->prefetch != FS_PF_NONE) n = put_bytes(line, sizeof line, n, " ", p->ahead, " ahead");
        if (p->far) n = put_bytes(line, sizeof line, n, " + L2 ", p->far, " ahead");
        if (has_tiles(f, dt) && n > 0 && (size_t)n < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, ", AMX tiles from %d tokens", fs_amx_min_t(f, (fs_dtype)dt));
        if (n > 0 && (size_t)n < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s", p->how == FS_PLAN_CACHED ? " (cached)"
                                                                   : p->how == FS_PLAN_DEFAULT ? " (default)"
                                                                   : p->how == FS_PLAN_FORCED  ? " (FS_DECODE_PLAN)"
                                                                                               : " (calibrated)");
    }
    /* decode attention's prefetch (attention_cpu.c; none only when FS_ATTN_AHEAD=0 says so) */
    if (f->attn_ahead)
        n = put_bytes(line, sizeof line, n, "; attention: L2 ", f->attn_ahead,
                      f->attn_ahead == FS_ATTN_AHEAD ? " ahead" : " ahead (FS_ATTN_AHEAD)");
    else if (n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "; attention: no prefetch (FS_ATTN_AHEAD)");
    if (f->tune_s > 0 && n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, "; calibration %.2f s", f->tune_s);
    fs_ref_set_describe(&f->ref, line);
}
