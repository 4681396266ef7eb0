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
 * reads, the GB/s that speed implies, and its fraction of the memory
 * bandwidth the backend measures itself (its `bandwidth` hook over a
 * buffer it allocated: the CPU reads it with its threads, a GPU copies
 * device to device) - once after all tests, and "paired": -r more runs of
 * each tg test, each right after its own bandwidth measurement, so that a
 * machine whose bandwidth drifts (a shared VM) is compared with itself.
 * Last, the memory the run holds: the backend's weights, the KV cache and
 * the scratch (activations and the backend's own), and the peak RSS.
 *
 * The backend line names the kernels; the CPU's also shows each weight
 * dtype's decode plan - kernel, prefetch hint and distance - measured on
 * this machine the first time (cached per CPU), or again with --calibrate
 * (src/cpu/tune_cpu.c).
 *
 * Docs: docs/bench.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "engine.h"
#include "opts.h"

#define CMD "bench"
#define GROUPS (CLI_MODEL | CLI_RUNTIME)
#define MAX_LIST 16

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs bench [-m MODEL] [options]\n"
            "  Measure prefill (pp) and decode (tg) speed in tokens/s, median [min .. max]\n"
            "  over repeated runs, then the decode roofline: bytes read per token, the\n"
            "  GB/s achieved and its fraction of the memory bandwidth the backend measures\n"
            "  (once at the end; and paired: each tg test runs -r more times, each run\n"
            "  right after its own bandwidth measurement).\n");
    cli_opts_usage(f, GROUPS, 0);
    fprintf(f,
            "  --pp N,N,...                 prefill lengths (default 128,512; 0 = none)\n"
            "  --tg N,N,...                 decode lengths (default 128; 0 = none)\n"
            "  --depth D,D,...              tokens already in the cache before each test (default 0)\n"
            "  -r, --reps N                 timed runs per test (default 3)\n"
            "  --warmup N                   untimed runs per test before them (default 1)\n"
            "  --bw-mib N                   buffer for the bandwidth measurement in MiB, >= 64\n"
            "                               (default 1024; 0 = skip it and the paired runs)\n"
            "  --seed N                     seed of the random token ids (default 1)\n"
            "  --csv                        one CSV row per test instead of the table\n"
            "  --profile                    one more run of each test with every op timed alone:\n"
            "                               where a token's time goes (not with --csv)\n"
            "  --calibrate                  measure the CPU's decode plans again (kernel, prefetch),\n"
            "                               replacing the cached ones (FS_CALIBRATE=1)\n"
            "  (-c defaults to the largest depth + test.)\n"
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
    double prof_sec;      /* --profile: the profiled run's wall time (its ops in profs[i]) */
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
    fs_session_sync(s);   /* a GPU's decode steps are queued: the time is when the last one ends */
    return fs_now() - t0;
}

/* The backend's bandwidth, best of `passes` measurements; <= 0 if it
 * cannot measure. */
static double bandwidth(fs_backend *b, fs_buf *buf, size_t n, int passes) {
    double best = 0;
    for (int i = 0; i < passes; i++) {
        double bw = b->bandwidth(b, buf, n);
        if (bw > best) best = bw;
    }
    return best;
}

/* --pp / --tg / --depth: a list of up to MAX_LIST lengths. */
static int list_flag(const char *flag, const char *v, int *dst, int *n) {
    if (!parse_list(v, 0, 1 << 20, dst, n)) return 0;
    cli_fail(CMD, FS_EXIT_USAGE, "%s: expected up to %d comma-separated whole numbers, got '%s'", flag, MAX_LIST, v);
    return -1;
}

int fs_cmd_bench(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o, CMD, GROUPS, 0);
    int pp[MAX_LIST] = {128, 512}, n_pp = 2, tg[MAX_LIST] = {128}, n_tg = 1, dp[MAX_LIST] = {0}, n_dp = 1;
    long reps = 3, warmup = 1, bw_mib = 1024, seed = 1;
    int csv = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        int r = cli_opts_parse(&o, argc, argv, &i);
        if (r == 0) {
            if (!strcmp(a, "--csv")) {
                csv = r = 1;
            } else if (!strcmp(a, "--profile")) {
                profile = r = 1;
            } else if (!strcmp(a, "--calibrate")) {
                /* the CPU backend measures its decode plans when it is reserved
                 * (src/cpu/tune_cpu.c); this makes it measure even if cached */
                setenv("FS_CALIBRATE", "1", 1);
                r = 1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--pp", NULL, &v)) != 0) {
                if (r > 0 && list_flag(a, v, pp, &n_pp)) r = -1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--tg", NULL, &v)) != 0) {
                if (r > 0 && list_flag(a, v, tg, &n_tg)) r = -1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--depth", NULL, &v)) != 0) {
                if (r > 0 && list_flag(a, v, dp, &n_dp)) r = -1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "-r", "--reps", &v)) != 0) {
                if (r > 0 && cli_int(CMD, a, v, 1, 1000, &reps)) r = -1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--warmup", NULL, &v)) != 0) {
                if (r > 0 && cli_int(CMD, a, v, 0, 100, &warmup)) r = -1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--bw-mib", NULL, &v)) != 0) {
                if (r > 0 && cli_int(CMD, a, v, 0, 1 << 20, &bw_mib)) r = -1;
            } else if ((r = cli_flag(CMD, argc, argv, &i, "--seed", NULL, &v)) != 0) {
                if (r > 0 && cli_int(CMD, a, v, 0, INT32_MAX, &seed)) r = -1;
            }
        }
        if (r < 0) return FS_EXIT_USAGE;
        if (r == 0) return cli_fail(CMD, FS_EXIT_USAGE, "unknown argument '%s' (see --help)", a);
    }
    if (profile && csv)
        return cli_fail(CMD, FS_EXIT_USAGE, "--profile prints tables; it does not combine with --csv");
    if (bw_mib > 0 && bw_mib < 64)
        return cli_fail(CMD, FS_EXIT_USAGE, "--bw-mib: the buffer must be at least 64 MiB (or 0: none), got %ld", bw_mib);
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
    if (o.ctx && o.ctx < need)
        return cli_fail(CMD, FS_EXIT_USAGE, "-c %ld is too small: the largest test needs %d tokens", o.ctx, need);
    if (!o.ctx) o.ctx = need;
    const char *model_dir = cli_model_dir(CMD, o.model);
    if (!model_dir) return FS_EXIT_USAGE;

    int rc = FS_EXIT_INPUT;
    fs_err e = {{0}};
    fs_engine *g = NULL;
    fs_seq *q = NULL;
    int *ids = NULL;
    fs_backend *be = NULL;
    fs_buf *bw_buf = NULL;
    size_t bw_n = (size_t)bw_mib << 18; /* f32 elements */
    result res[3 * MAX_LIST * MAX_LIST];
    int n_res = 0;
    double *times = fs_xmalloc((size_t)reps * sizeof *times);
    fs_profile *profs = profile ? fs_xcalloc(3 * MAX_LIST * MAX_LIST, sizeof *profs) : NULL;

    double t_load = fs_now();
    if ((rc = cli_opts_open(&o, model_dir, FS_ENGINE_NO_TOKENIZER, &g)) != 0) goto out;
    rc = FS_EXIT_INPUT;
    t_load = fs_now() - t_load;
    if (fs_engine_n_ctx(g) < need) {
        cli_fail(CMD, FS_EXIT_INPUT, "the largest test needs %d tokens; the model allows %d", need, fs_engine_n_ctx(g));
        goto out;
    }
    if ((rc = cli_opts_seq(&o, g, &q)) != 0) goto out;
    rc = FS_EXIT_INPUT;
    fs_session *sess = fs_seq_session(q);
    /* bytes of a cached K or V element (--kv auto: the backend chose) */
    size_t kv_elem = fs_forward_kv_dtype(fs_engine_forward(g)) == FS_DTYPE_F16 ? 2 : 4;
    const fs_model *model = fs_engine_model(g);
    be = fs_forward_backend(fs_engine_forward(g));
    int V = model->cfg.vocab;
    ids = fs_xmalloc((size_t)need * sizeof *ids);
    uint64_t rng = (uint64_t)seed;
    for (int i = 0; i < need; i++) ids[i] = (int)(next_u64(&rng) % (uint64_t)V);

    char wbuf[16], tbuf[16];
    const char *wname = weights_label(model, wbuf, sizeof wbuf), *mname = base_name(model_dir);
    const char *backend_name = be->name;
    if (o.threads) snprintf(tbuf, sizeof tbuf, "%ld", o.threads);
    else snprintf(tbuf, sizeof tbuf, "auto");
    if (!csv) {
        /* The load maps the files (and a backend may copy the weights); a
         * file's pages are read on first use, so the warm-up runs count. */
        printf("model %s: L %d, H %d, V %d, %.1fM params; load %.3f s%s\n", mname, model->cfg.n_layers,
               model->cfg.hidden, V, (double)model->logical_params / 1e6, t_load,
               o.weights ? " (with the conversion)" : "");
        printf("backend: %s (%s; KV cache %s)\n", be->name, be->describe ? be->describe(be) : "", kv_elem == 2 ? "f16" : "f32");
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
                char name[48];
                if (depth) snprintf(name, sizeof name, "%s%d @ d%d", is_tg ? "tg" : "pp", n, depth);
                else snprintf(name, sizeof name, "%s%d", is_tg ? "tg" : "pp", n);
                for (int w = 0; w < warmup; w++) {
                    cli_status("%s: warm-up %d/%ld", name, w + 1, warmup);
                    if (run_once(sess, depth, is_tg, run_ids, n, &e) < 0) {
                        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                        goto out;
                    }
                }
                for (int r = 0; r < reps; r++) {
                    cli_status("%s: run %d/%ld", name, r + 1, reps);
                    double dt = run_once(sess, depth, is_tg, run_ids, n, &e);
                    if (dt < 0) {
                        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                        goto out;
                    }
                    times[r] = n / (dt > 1e-9 ? dt : 1e-9);
                }
                cli_status_clear();
                qsort(times, (size_t)reps, sizeof *times, cmp_double);
                result *R = &res[n_res++];
                snprintf(R->name, sizeof R->name, "%s", name);
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
                if (profs) {   /* one more run, its ops timed one by one (not counted above) */
                    cli_status("%s: profiled run", name);
                    fs_forward_profile(fs_engine_forward(g), &profs[n_res - 1]);
                    R->prof_sec = run_once(sess, depth, is_tg, run_ids, n, &e);
                    fs_forward_profile(fs_engine_forward(g), NULL);
                    cli_status_clear();
                    if (R->prof_sec < 0) {
                        cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                        goto out;
                    }
                }
            }
        }
    }

    /* Peak RSS first: the bandwidth buffer would otherwise be the peak. */
    size_t rss = fs_bench_peak_rss();
    double bw = 0;
    if (bw_mib > 0) {
        if (!be->bandwidth) {
            cli_fail(CMD, FS_EXIT_INPUT, "the %s backend cannot measure its bandwidth (--bw-mib 0 skips it)", be->name);
            goto out;
        }
        if (!(bw_buf = be->alloc(be, bw_n, &e))) {
            cli_fail(CMD, FS_EXIT_INPUT, "bandwidth buffer: %s", e.msg);
            goto out;
        }
        cli_status("measuring the memory bandwidth");
        bw = bandwidth(be, bw_buf, bw_n, 5);
        cli_status_clear();
        if (bw <= 0) {
            cli_fail(CMD, FS_EXIT_INPUT, "the %s backend could not measure its bandwidth", be->name);
            goto out;
        }
    }
    /* Paired roofline: on a shared machine the bandwidth drifts (the dev VM
     * saw 35 to 65 GB/s within minutes), so one measurement at the end
     * says little about the runs before it. Each tg test is run -r more
     * times, each run right after its own bandwidth measurement (best of 2
     * passes), and the fraction is taken pair by pair. */
    for (int i = 0; bw_buf && i < n_res; i++) {
        result *R = &res[i];
        if (!R->is_tg) continue;
        fs_decode_bytes b = fs_bench_decode_bytes(model, R->depth + (R->n + 1) / 2.0, kv_elem);
        fs_session_truncate(sess, 0);
        if (R->depth > 0 && fs_session_eval(sess, ids, R->depth, &e)) {
            cli_fail(CMD, FS_EXIT_INPUT, "depth prefill: %s", e.msg);
            goto out;
        }
        for (int r = 0; r < reps; r++) {
            cli_status("%s: paired run %d/%ld", R->name, r + 1, reps);
            double bw_r = bandwidth(be, bw_buf, bw_n, 2), dt;
            if ((dt = run_once(sess, R->depth, 1, ids + R->depth, R->n, &e)) < 0) {
                cli_fail(CMD, FS_EXIT_INPUT, "%s", e.msg);
                goto out;
            }
            times[r] = (double)b.total * (R->n / (dt > 1e-9 ? dt : 1e-9)) / bw_r;
        }
        cli_status_clear();
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        R->paired = 1;
        R->pf_min = times[0];
        R->pf_max = times[reps - 1];
        R->pf_med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    }
    size_t w_bytes = fs_forward_weight_bytes(fs_engine_forward(g)), kv_bytes = fs_session_kv_bytes(sess),
           scratch_bytes = fs_forward_scratch_bytes(fs_engine_forward(g));
    if (!csv && bw > 0)
        printf("\nmemory bandwidth (%s backend): %.2f GB/s (%s threads, %ld MiB buffer, best of 5)\n", be->name,
               bw / 1e9, tbuf, bw_mib);
    if (csv)
        printf("model,weights,backend,threads,test,n_prompt,n_gen,depth,reps,tok_s_median,tok_s_min,tok_s_max,"
               "bytes_per_token,eff_gb_s,bw_gb_s,bw_frac,bw_frac_paired,bw_frac_paired_min,bw_frac_paired_max,"
               "load_s,peak_rss_bytes,weight_bytes,kv_bytes,scratch_bytes\n");
    else
        printf("%sdecode roofline (weights + one embedding row + KV cache at the mean context of the run):\n",
               bw > 0 ? "" : "\n");
    for (int i = 0; i < n_res; i++) {
        const result *R = &res[i];
        /* Decode step i (0-based) attends over depth + i + 1 positions; the
         * run's mean is depth + (n + 1) / 2. */
        fs_decode_bytes b = fs_bench_decode_bytes(model, R->depth + (R->n + 1) / 2.0, kv_elem);
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
            printf("%.4f,%zu,%zu,%zu,%zu\n", t_load, rss, w_bytes, kv_bytes, scratch_bytes);
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
        const double MiB = 1048576.0;
        if (n_tg == 0) printf("  (no tg tests)\n");
        printf("memory: weights %.2f MiB, KV cache %.2f MiB, scratch %.2f MiB (on the %s backend); "
               "peak RSS %.1f MiB\n",
               w_bytes / MiB, kv_bytes / MiB, scratch_bytes / MiB, be->name, rss / MiB);
    }
    if (profs) {
        printf("\nprofile: one more run of each test, each op waited for and timed alone (--profile)\n");
        for (int i = 0; i < n_res; i++) fs_bench_print_profile(res[i].name, res[i].n, res[i].prof_sec, res[i].is_tg, &profs[i]);
    }
    rc = cli_out_close(CMD);

out:
    cli_status_clear();
    if (bw_buf) be->free_buf(be, bw_buf);
    free(times);
    free(profs);
    free(ids);
    fs_seq_free(q);
    fs_engine_free(g);
    return rc;
}
