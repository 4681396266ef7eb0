/* cmd_bench.c - `fs bench`: prefill and decode speed, like llama-bench.
 *
 *   fs bench -m MODEL --pp 128,512 --tg 128 --depth 0,2048 -r 3 -t 2
 *
 * Tests, for every depth d:
 *   pp N @ d  prefill N tokens in one fs_session_eval call, starting with d
 *             tokens already in the cache (d = 0: an empty cache). Timed:
 *             the eval call only.
 *   tg N @ d  decode N tokens one call each (T = 1) after the d-token
 *             prefix. Each step feeds the next id of a fixed random
 *             sequence, not the argmax of the logits: the work of a step
 *             does not depend on which id it gets, and this keeps sampling
 *             out of the measurement.
 * All ids come from one seeded generator, so every run sees the same
 * tokens. The d-token prefix is prefilled once per depth (untimed); each
 * run rewinds to it with fs_session_truncate. One warm-up run of each test
 * (not counted) faults the mmap'd weights in and warms the caches; then -r
 * runs give the median and the range of tokens/s.
 *
 * --weights converts the weights at load (q8_0, q4_0, ...: src/quant.h), and
 * the load time then includes the conversion.
 *
 * After the table: the decode roofline (bench.h): bytes a decoded token
 * reads, the GB/s that speed implies, and its fraction of the read
 * bandwidth measured in this same process with the same thread count -
 * once after all tests, and "paired": -r more runs of each tg test, each
 * right after its own bandwidth measurement, so that a machine whose
 * bandwidth drifts (a shared VM) is compared with itself.
 *
 * Docs: docs/bench.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bench.h"
#include "cli.h"
#include "forward.h"
#include "model.h"

#define CMD "bench"
#define MAX_LIST 16

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs bench -m MODEL [options]\n"
            "  Measure prefill (pp) and decode (tg) speed in tokens/s, median [min .. max]\n"
            "  over repeated runs, then the decode roofline: bytes read per token, the\n"
            "  GB/s achieved and its fraction of the measured memory read bandwidth\n"
            "  (once at the end; and paired: each tg test runs -r more times, each run\n"
            "  right after its own bandwidth measurement).\n"
            "  -m defaults to $FS_MODEL.\n"
            "  --pp N,N,...       prefill lengths (default 128,512; 0 = none)\n"
            "  --tg N,N,...       decode lengths (default 128; 0 = none)\n"
            "  --depth D,D,...    tokens already in the cache before each test (default 0)\n"
            "  -r, --reps N       timed runs per test (default 3)\n"
            "  --warmup N         untimed runs per test before them (default 1)\n"
            "  -t, --threads N    CPU threads (default: the backend's)\n"
            "  --backend NAME     backend to measure (default: the default backend)\n"
            "  --weights W        convert the weights at load: bf16, f16, f32, q8_0, q4_0\n"
            "  --ctx N            context length (default: the largest depth + test)\n"
            "  --bw-mib N         buffer for the read-bandwidth measurement in MiB\n"
            "                     (default 1024; 0 = skip it and the paired runs)\n"
            "  --seed N           seed of the random token ids (default 1)\n"
            "  --csv              one CSV row per test instead of the table\n"
            "Decode feeds fixed random ids (not the argmax): the cost of a step does not\n"
            "depend on the id.\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable model, context too long).\n");
}

/* "128,512" -> {128, 512}. Each value in [lo, hi]. */
static int parse_list(const char *s, long lo, long hi, int *out, int *n) {
    *n = 0;
    const char *p = s;
    for (;;) {
        char buf[32];
        size_t k = strcspn(p, ",");
        if (k == 0 || k >= sizeof buf || *n >= MAX_LIST) return -1;
        memcpy(buf, p, k);
        buf[k] = 0;
        long v;
        if (cli_parse_int(buf, lo, hi, &v)) return -1;
        out[(*n)++] = (int)v;
        if (!p[k]) return 0;
        p += k + 1;
    }
}

/* splitmix64: a tiny, well-mixed generator; ids only need to be fixed. */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    char name[48];     /* "pp512 @ d2048" */
    int is_tg, n, depth, reps;
    double med, min, max; /* tokens/s */
    int paired;           /* tg with a bandwidth probe: the fractions below */
    double pf_med, pf_min, pf_max;
} result;

/* The dtype of the weight matrices, lower case ("bf16"), or "mixed". */
static const char *weights_label(const fs_model *m, char *buf, size_t cap) {
    fs_dtype d = m->lm_head.dtype;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const fs_layer *ly = &m->layers[l];
        const fs_tensor *ts[] = {&ly->q_proj, &ly->k_proj, &ly->v_proj, &ly->o_proj,
                                 &ly->gate_proj, &ly->up_proj, &ly->down_proj};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            if (ts[i]->dtype != d) return "mixed";
    }
    const char *n = fs_dtype_name(d);
    size_t i = 0;
    for (; n[i] && i + 1 < cap; i++) buf[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    buf[i] = 0;
    return buf;
}

static const char *base_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    static char buf[256];
    size_t start = n;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t len = n - start < sizeof buf - 1 ? n - start : sizeof buf - 1;
    memcpy(buf, dir + start, len);
    buf[len] = 0;
    return buf;
}

/* One timed run: rewind to the depth prefix, then prefill n ids (pp) or
 * decode them one by one (tg). Returns seconds, or -1 with e filled. */
static double run_once(fs_session *s, int depth, int is_tg, const int *ids, int n, fs_err *e) {
    fs_session_truncate(s, depth);
    double t0 = fs_now();
    if (!is_tg) {
        if (fs_session_eval(s, ids, n, e)) return -1;
    } else {
        for (int i = 0; i < n; i++)
            if (fs_session_eval(s, ids + i, 1, e)) return -1;
    }
    return fs_now() - t0;
}

int fs_cmd_bench(int argc, char **argv) {
    const char *model_flag = NULL, *backend = NULL, *weights = NULL;
    int pp[MAX_LIST] = {128, 512}, n_pp = 2, tg[MAX_LIST] = {128}, n_tg = 1, dp[MAX_LIST] = {0}, n_dp = 1;
    long reps = 3, warmup = 1, threads = 0, ctx = 0, bw_mib = 1024, seed = 1;
    int csv = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return FS_EXIT_OK;
        }
#define VAL(name, alias) ((r = cli_flag(argc, argv, &i, name, alias, &v)) != 0)
#define NUM(flag, lo, hi, dst)                                                                     \
    do {                                                                                           \
        if (r < 0) return FS_EXIT_USAGE;                                                           \
        if (cli_parse_int(v, lo, hi, &dst))                                                        \
            return cli_fail(CMD, FS_EXIT_USAGE, "%s: expected a whole number in %ld..%ld, got '%s'", \
                            flag, (long)(lo), (long)(hi), v);                                      \
    } while (0)
#define LIST(flag, dst, n)                                                                           \
    do {                                                                                             \
        if (r < 0) return FS_EXIT_USAGE;                                                             \
        if (parse_list(v, 0, 1 << 20, dst, &n))                                                      \
            return cli_fail(CMD, FS_EXIT_USAGE, "%s: expected up to %d comma-separated whole numbers, got '%s'", \
                            flag, MAX_LIST, v);                                                      \
    } while (0)
        if (!strcmp(a, "--csv")) csv = 1;
        else if (VAL("-m", "--model")) { if (r < 0) return FS_EXIT_USAGE; model_flag = v; }
        else if (VAL("--backend", NULL)) { if (r < 0) return FS_EXIT_USAGE; backend = v; }
        else if (VAL("--weights", NULL)) { if (r < 0) return FS_EXIT_USAGE; weights = v; }
        else if (VAL("--pp", NULL)) LIST("--pp", pp, n_pp);
        else if (VAL("--tg", NULL)) LIST("--tg", tg, n_tg);
        else if (VAL("--depth", NULL)) LIST("--depth", dp, n_dp);
        else if (VAL("-r", "--reps")) NUM("--reps", 1, 1000, reps);
        else if (VAL("--warmup", NULL)) NUM("--warmup", 0, 100, warmup);
        else if (VAL("-t", "--threads")) NUM("--threads", 1, 1024, threads);
        else if (VAL("--ctx", NULL)) NUM("--ctx", 1, 1 << 24, ctx);
        else if (VAL("--bw-mib", NULL)) NUM("--bw-mib", 0, 1 << 20, bw_mib);
        else if (VAL("--seed", NULL)) NUM("--seed", 0, INT32_MAX, seed);
        else return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
#undef VAL
#undef NUM
#undef LIST
    }
    /* a lone 0 means "no such tests"; drop zeros from the lists */
    int k = 0;
    for (int i = 0; i < n_pp; i++) if (pp[i] > 0) pp[k++] = pp[i];
    n_pp = k;
    k = 0;
    for (int i = 0; i < n_tg; i++) if (tg[i] > 0) tg[k++] = tg[i];
    n_tg = k;
    if (n_pp + n_tg == 0) return cli_fail(CMD, FS_EXIT_USAGE, "nothing to measure: --pp and --tg are both 0");
    int need = 0;
    for (int d = 0; d < n_dp; d++) {
        for (int i = 0; i < n_pp; i++) need = dp[d] + pp[i] > need ? dp[d] + pp[i] : need;
        for (int i = 0; i < n_tg; i++) need = dp[d] + tg[i] > need ? dp[d] + tg[i] : need;
    }
    if (ctx && ctx < need)
        return cli_fail(CMD, FS_EXIT_USAGE, "--ctx %ld is too small: the largest test needs %d tokens", ctx, need);
    if (cli_check_weights(CMD, weights)) return FS_EXIT_USAGE;
    /* An unknown backend is a usage error: ask the registry before loading
     * (with one thread: naming a backend needs no worker threads). */
    fs_err e = {{0}};
    fs_backend *probe = fs_backend_new_opts(backend, 1, &e);
    if (!probe) return cli_fail(CMD, FS_EXIT_USAGE, "--backend: %s", e.msg);
    const char *backend_name = backend ? backend : probe->name;
    probe->destroy(probe);
    const char *model_dir = cli_model_dir(CMD, model_flag);
    if (!model_dir) return FS_EXIT_USAGE;

    int rc = FS_EXIT_INPUT;
    fs_model model;
    memset(&model, 0, sizeof model);
    fs_session *sess = NULL;
    int *ids = NULL;
    fs_bw_probe *probe_bw = NULL;
    result res[3 * MAX_LIST * MAX_LIST];
    int n_res = 0;
    double *times = fs_xmalloc((size_t)reps * sizeof *times);

    double t_load = fs_now();
    if ((rc = cli_load_model(CMD, model_dir, weights, &model)) != 0) goto out;
    rc = FS_EXIT_INPUT;
    t_load = fs_now() - t_load;
    if (model.cfg.max_pos < need) {
        cli_fail(CMD, FS_EXIT_INPUT, "the largest test needs %d tokens; the model allows %d", need,
                 model.cfg.max_pos);
        goto out;
    }
    fs_session_opts so = {ctx ? (int)ctx : need, backend, (int)threads};
    if (fs_session_new(&sess, &model, &so, &e)) {
        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
        goto out;
    }
    if (fs_session_n_ctx(sess) < need) {
        cli_fail(CMD, FS_EXIT_INPUT, "the largest test needs %d tokens; the model allows %d", need,
                 fs_session_n_ctx(sess));
        goto out;
    }
    int V = model.cfg.vocab;
    ids = fs_xmalloc((size_t)need * sizeof *ids);
    uint64_t rng = (uint64_t)seed;
    for (int i = 0; i < need; i++) ids[i] = (int)(next_u64(&rng) % (uint64_t)V);

    char wbuf[16], tbuf[16];
    const char *wname = weights_label(&model, wbuf, sizeof wbuf), *mname = base_name(model_dir);
    if (threads) snprintf(tbuf, sizeof tbuf, "%ld", threads);
    else snprintf(tbuf, sizeof tbuf, "auto");
    if (!csv) {
        /* The load maps the files; their pages are read on first use (the
         * warm-up), so a short load time is not a short first token. */
        printf("model %s: L %d, H %d, V %d, %.1fM params; load %.3f s (mmap%s)\n", mname, model.cfg.n_layers,
               model.cfg.hidden, V, (double)model.logical_params / 1e6, t_load,
               weights ? " + conversion" : ": pages are read during the warm-up");
        char cpu[256];
        fs_bench_cpu_name(cpu, sizeof cpu);
        printf("cpu: %s; fast kernels: %s\n", cpu, fs_backend_cpu_isa());
        printf("\n%-16s %-7s %-8s %-7s %-15s %s\n", "model", "weights", "backend", "threads", "test",
               "tok/s median [min .. max]");
        fflush(stdout);
    }

    for (int d = 0; d < n_dp; d++) {
        int depth = dp[d];
        fs_session_truncate(sess, 0);
        if (depth > 0 && fs_session_eval(sess, ids, depth, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "depth prefill: %s", e.msg);
            goto out;
        }
        for (int is_tg = 0; is_tg < 2; is_tg++) {
            int n_list = is_tg ? n_tg : n_pp;
            for (int t = 0; t < n_list; t++) {
                int n = is_tg ? tg[t] : pp[t];
                const int *run_ids = ids + depth; /* continue the same sequence */
                for (int w = 0; w < warmup; w++)
                    if (run_once(sess, depth, is_tg, run_ids, n, &e) < 0) {
                        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                        goto out;
                    }
                for (int r = 0; r < reps; r++) {
                    double dt = run_once(sess, depth, is_tg, run_ids, n, &e);
                    if (dt < 0) {
                        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                        goto out;
                    }
                    times[r] = n / (dt > 1e-9 ? dt : 1e-9);
                }
                qsort(times, (size_t)reps, sizeof *times, cmp_double);
                result *R = &res[n_res++];
                if (depth) snprintf(R->name, sizeof R->name, "%s%d @ d%d", is_tg ? "tg" : "pp", n, depth);
                else snprintf(R->name, sizeof R->name, "%s%d", is_tg ? "tg" : "pp", n);
                R->is_tg = is_tg;
                R->n = n;
                R->depth = depth;
                R->reps = (int)reps;
                R->min = times[0];
                R->max = times[reps - 1];
                R->med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
                if (!csv) {
                    printf("%-16s %-7s %-8s %-7s %-15s %.2f [%.2f .. %.2f]\n", mname, wname, backend_name, tbuf,
                           R->name, R->med, R->min, R->max);
                    fflush(stdout);
                }
            }
        }
    }

    /* Peak RSS first: the bandwidth buffer would otherwise be the peak. */
    size_t rss = fs_bench_peak_rss();
    int bw_threads = threads ? (int)threads : fs_bench_n_cpus();
    double bw = 0;
    if (bw_mib > 0) {
        probe_bw = fs_bw_probe_new((size_t)bw_mib << 20, bw_threads, &e);
        if (!probe_bw || fs_bw_probe_measure(probe_bw, 5, &bw, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
            goto out;
        }
    }
    /* Paired roofline: on a shared machine the bandwidth drifts (the dev VM
     * saw 35 to 65 GB/s within minutes), so one measurement at the end
     * says little about the runs before it. Each tg test is run -r more
     * times, each run right after its own bandwidth measurement (best of 2
     * passes), and the fraction is taken pair by pair. */
    for (int i = 0; probe_bw && i < n_res; i++) {
        result *R = &res[i];
        if (!R->is_tg) continue;
        fs_decode_bytes b = fs_bench_decode_bytes(&model, R->depth + (R->n + 1) / 2.0);
        fs_session_truncate(sess, 0);
        if (R->depth > 0 && fs_session_eval(sess, ids, R->depth, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "depth prefill: %s", e.msg);
            goto out;
        }
        for (int r = 0; r < reps; r++) {
            double bw_r, dt;
            if (fs_bw_probe_measure(probe_bw, 2, &bw_r, &e) ||
                (dt = run_once(sess, R->depth, 1, ids + R->depth, R->n, &e)) < 0) {
                cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                goto out;
            }
            times[r] = (double)b.total * (R->n / (dt > 1e-9 ? dt : 1e-9)) / bw_r;
        }
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        R->paired = 1;
        R->pf_min = times[0];
        R->pf_max = times[reps - 1];
        R->pf_med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    }
    if (!csv && bw > 0)
        printf("\nmemory read bandwidth: %.2f GB/s (%d threads, %ld MiB buffer, best of 5)\n", bw / 1e9, bw_threads,
               bw_mib);
    if (csv)
        printf("model,weights,backend,threads,test,n_prompt,n_gen,depth,reps,tok_s_median,tok_s_min,tok_s_max,"
               "bytes_per_token,eff_gb_s,bw_gb_s,bw_frac,bw_frac_paired,bw_frac_paired_min,bw_frac_paired_max,"
               "load_s,peak_rss_bytes\n");
    else
        printf("%sdecode roofline (weights + one embedding row + KV cache at the mean context of the run):\n",
               bw > 0 ? "" : "\n");
    for (int i = 0; i < n_res; i++) {
        const result *R = &res[i];
        /* Decode step i (0-based) attends over depth + i + 1 positions; the
         * run's mean is depth + (n + 1) / 2. */
        fs_decode_bytes b = fs_bench_decode_bytes(&model, R->depth + (R->n + 1) / 2.0);
        double eff = R->is_tg ? (double)b.total * R->med : 0;
        if (csv) {
            printf("%s,%s,%s,%s,%s,%d,%d,%d,%d,%.4f,%.4f,%.4f,", mname, wname, backend_name, tbuf, R->name,
                   R->is_tg ? 0 : R->n, R->is_tg ? R->n : 0, R->depth, R->reps, R->med, R->min, R->max);
            if (R->is_tg) printf("%zu,%.4f,", b.total, eff / 1e9);
            else printf(",,");
            if (bw > 0) printf("%.4f,", bw / 1e9);
            else printf(",");
            if (R->is_tg && bw > 0) printf("%.4f,", eff / bw);
            else printf(",");
            if (R->paired) printf("%.4f,%.4f,%.4f,", R->pf_med, R->pf_min, R->pf_max);
            else printf(",,,");
            printf("%.4f,%zu\n", t_load, rss);
        } else if (R->is_tg) {
            printf("  %-15s %.1f MB/token (weights %.1f + KV %.1f) x %.2f tok/s = %.2f GB/s", R->name,
                   b.total / 1e6, (b.weights + b.embed_row) / 1e6, b.kv / 1e6, R->med, eff / 1e9);
            if (bw > 0) printf(" = %.1f%% of %.2f GB/s\n", 100 * eff / bw, bw / 1e9);
            else printf("\n");
            if (R->paired)
                printf("  %-15s paired, bandwidth measured before each of %d more runs: %.1f%% [%.1f .. %.1f]\n",
                       "", R->reps, 100 * R->pf_med, 100 * R->pf_min, 100 * R->pf_max);
        }
    }
    if (!csv) {
        if (n_tg == 0) printf("  (no tg tests)\n");
        printf("peak RSS %.1f MiB; KV cache %.1f MiB, scratch %.1f MiB\n", rss / 1048576.0,
               fs_session_kv_bytes(sess) / 1048576.0, fs_session_scratch_bytes(sess) / 1048576.0);
    }
    rc = FS_EXIT_OK;

out:
    fs_bw_probe_free(probe_bw);
    free(times);
    free(ids);
    fs_session_free(sess);
    fs_model_free(&model);
    return rc;
}
