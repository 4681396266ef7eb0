/* opts.c - the shared flags (see opts.h): one table gives each flag its
 * group, names, value and help line; the parser and the usage text both
 * read it. Limits: numbers are parsed strictly (cli.h), and the sampling
 * values are checked by the sampler's own rules (fs_sampler_params_check),
 * so a bad value is refused here, as a usage error, with the same words a
 * server would use.
 *
 * Docs: docs/map.md
 */
#include "opts.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "quant.h"

enum {
    F_MODEL, F_BACKEND, F_THREADS, F_CTX, F_WEIGHTS, F_KV, F_PROMPT, F_FILE, F_MAX_TOKENS, F_TEMP, F_TOP_K,
    F_TOP_P, F_MIN_P, F_REPEAT, F_PRESENCE, F_SEED, F_STOP, F_VERBOSE,
};

typedef struct flag_spec {
    unsigned group;
    int kind;
    const char *name, *alias; /* alias may be NULL */
    const char *arg;          /* the value's name in the help, NULL: takes none */
    const char *help;
} flag_spec;

static const flag_spec flags[] = {
    {CLI_MODEL, F_MODEL, "-m", "--model", "MODEL", "model directory (default: $FS_MODEL, else the shipped models/tiny)"},
    {CLI_RUNTIME, F_BACKEND, "--backend", NULL, "NAME", "auto (default: the GPU if usable, else cpu), cuda, cpu, cpu-ref"},
    {CLI_RUNTIME, F_THREADS, "-t", "--threads", "N", "CPU threads (default: the backend's choice)"},
    {CLI_RUNTIME, F_CTX, "-c", "--ctx", "N", "context length in tokens (default 4096, capped by the model)"},
    {CLI_RUNTIME, F_WEIGHTS, "--weights", NULL, "W", "convert the weights at load: bf16, f16, f32, q8_0, q4_0"},
    {CLI_RUNTIME, F_KV, "--kv", NULL, "T", "KV cache elements: auto (default: f16 on the cpu backend, f32 on cpu-ref and cuda), f32, or f16 (half the bytes every step reads at long context)"},
    {CLI_PROMPT, F_PROMPT, "-p", "--prompt", "TEXT", "the prompt"},
    {CLI_PROMPT, F_FILE, "-f", "--file", "FILE", "read the prompt from FILE (- : stdin)"},
    {CLI_SAMPLING, F_MAX_TOKENS, "-n", "--max-tokens", "N", "tokens to generate at most (default %ld)"},
    {CLI_SAMPLING, F_TEMP, "--temp", "--temperature", "T", "temperature; 0 = greedy (default: generation_config, else 1)"},
    {CLI_SAMPLING, F_TOP_K, "--top-k", NULL, "K", "keep the K most likely tokens; 0 = off (default: config)"},
    {CLI_SAMPLING, F_TOP_P, "--top-p", NULL, "P", "nucleus: the smallest set with mass >= P; 1 = off"},
    {CLI_SAMPLING, F_MIN_P, "--min-p", NULL, "M", "drop tokens with p < M * p_max; 0 = off"},
    {CLI_SAMPLING, F_REPEAT, "--repeat-penalty", "--repetition-penalty", "R", "HF repetition penalty on prompt + generated tokens; 1 = off"},
    {CLI_SAMPLING, F_PRESENCE, "--presence-penalty", NULL, "P", "subtract P from tokens already generated; 0 = off"},
    {CLI_SAMPLING, F_SEED, "--seed", NULL, "S", "sampling seed, 0..2^64-1 (default: from the clock; -v shows it)"},
    {CLI_SAMPLING, F_STOP, "--stop", NULL, "STR", "stop before STR (repeatable, up to 16)"},
    {CLI_VERBOSE, F_VERBOSE, "-v", "--verbose", NULL, "details: model, backend, memory, sampling, per-run statistics"},
};

#define N_FLAGS (sizeof flags / sizeof flags[0])

void cli_opts_init(cli_opts *o, const char *cmd, unsigned groups, long max_tokens) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->groups = groups;
    o->max_tokens = max_tokens;
}

void cli_opts_usage(FILE *f, unsigned groups, long max_tokens) {
    for (size_t k = 0; k < N_FLAGS; k++) {
        const flag_spec *s = &flags[k];
        if (!(s->group & groups)) continue;
        char names[64], help[160];
        snprintf(names, sizeof names, "%s%s%s%s%s", s->name, s->alias ? ", " : "", s->alias ? s->alias : "",
                 s->arg ? " " : "", s->arg ? s->arg : "");
        snprintf(help, sizeof help, s->help, max_tokens); /* only -n's line has a %ld */
        fprintf(f, "  %-28s %s\n", names, help);
    }
}

/* Is name one of fs_backend_names() ("auto, cuda, cpu, cpu-ref")? */
static int known_backend(const char *name) {
    const char *list = fs_backend_names();
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ", ");
        if (k == n && !strncmp(p, name, n)) return 1;
        p += k;
        while (*p == ',' || *p == ' ') p++;
    }
    return 0;
}

/* A sampling value is checked by the sampler's rules, on the library's
 * defaults with every override given so far. */
static int check_sampling(cli_opts *o, const char *flag) {
    fs_sampler_params p;
    fs_err e = {{0}};
    if (!fs_engine_sampler_params(NULL, &o->sampling, &p, &e)) return 0;
    cli_fail(o->cmd, FS_EXIT_USAGE, "%s: %s", flag, e.msg);
    return -1;
}

int cli_opts_parse(cli_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = NULL;
    const flag_spec *s = NULL;
    for (size_t k = 0; k < N_FLAGS && !s; k++)
        if ((flags[k].group & o->groups) && (!strcmp(a, flags[k].name) || (flags[k].alias && !strcmp(a, flags[k].alias))))
            s = &flags[k];
    if (!s) return 0;
    if (s->arg && cli_flag(o->cmd, argc, argv, i, a, NULL, &v) < 0) return -1;

    const char *cmd = o->cmd;
    fs_sampling *smp = &o->sampling;
    double d;
    long n;
    switch (s->kind) {
    case F_MODEL: o->model = v; break;
    case F_BACKEND:
        if (!known_backend(v))
            return cli_fail(cmd, FS_EXIT_USAGE, "--backend: expected one of %s, got '%s'", fs_backend_names(), v), -1;
        o->backend = v;
        break;
    case F_THREADS: if (cli_int(cmd, a, v, 1, 1024, &o->threads)) return -1; break;
    case F_CTX: if (cli_int(cmd, a, v, 1, 1L << 24, &o->ctx)) return -1; break;
    case F_WEIGHTS: {
        fs_dtype to;
        if (fs_dtype_from_weights_name(v, &to))
            return cli_fail(cmd, FS_EXIT_USAGE, "--weights: expected bf16, f16, f32, q8_0 or q4_0, got '%s'", v), -1;
        o->weights = v;
        break;
    }
    case F_KV: {
        fs_dtype kv;
        if (strcmp(v, "auto") && fs_engine_kv_dtype(v, &kv))
            return cli_fail(cmd, FS_EXIT_USAGE, "--kv: expected auto, f32 or f16, got '%s'", v), -1;
        o->kv = v;
        break;
    }
    case F_PROMPT: o->prompt = v; break;
    case F_FILE: o->file = v; break;
    case F_MAX_TOKENS: if (cli_int(cmd, a, v, 0, 100000000, &o->max_tokens)) return -1; break;
    case F_TOP_K:
        if (cli_int(cmd, a, v, 0, 1L << 30, &n)) return -1;
        smp->p.top_k = (int)n;
        smp->set |= FS_SET_TOP_K;
        break;
    case F_TEMP: case F_TOP_P: case F_MIN_P: case F_REPEAT: case F_PRESENCE:
        if (cli_parse_double(v, -DBL_MAX, DBL_MAX, &d))
            return cli_fail(cmd, FS_EXIT_USAGE, "%s: expected a number, got '%s'", a, v), -1;
        if (s->kind == F_TEMP) smp->p.temperature = d, smp->set |= FS_SET_TEMPERATURE;
        if (s->kind == F_TOP_P) smp->p.top_p = d, smp->set |= FS_SET_TOP_P;
        if (s->kind == F_MIN_P) smp->p.min_p = d, smp->set |= FS_SET_MIN_P;
        if (s->kind == F_REPEAT) smp->p.repetition_penalty = d, smp->set |= FS_SET_REPETITION_PENALTY;
        if (s->kind == F_PRESENCE) smp->p.presence_penalty = d, smp->set |= FS_SET_PRESENCE_PENALTY;
        if (check_sampling(o, a)) return -1;
        break;
    case F_SEED:
        if (cli_u64(cmd, a, v, &smp->p.seed)) return -1;
        smp->set |= FS_SET_SEED;
        break;
    case F_STOP:
        if (o->n_stops == CLI_MAX_STOPS) return cli_fail(cmd, FS_EXIT_USAGE, "at most %d --stop strings", CLI_MAX_STOPS), -1;
        if (!*v) return cli_fail(cmd, FS_EXIT_USAGE, "--stop: the stop string is empty"), -1;
        o->stops[o->n_stops++] = v;
        break;
    case F_VERBOSE: o->verbose = 1; break;
    }
    return 1;
}

int cli_opts_prompt(const cli_opts *o, char **text, size_t *len) {
    if (o->prompt && o->file) return cli_fail(o->cmd, FS_EXIT_USAGE, "give either -p or -f, not both");
    if (!o->prompt && !o->file) return cli_fail(o->cmd, FS_EXIT_USAGE, "no prompt: use -p TEXT or -f FILE (see --help)");
    if (o->file) return cli_read_input(o->cmd, o->file, text, len);
    *text = fs_xstrdup(o->prompt);
    *len = strlen(o->prompt);
    return 0;
}

int cli_opts_open(const cli_opts *o, const char *dir, int tokenizer, fs_engine **g) {
    *g = NULL;
    if (!dir) dir = cli_model_dir(o->cmd, o->model);
    if (!dir) return FS_EXIT_USAGE;
    fs_engine_opts eo = {o->backend, (int)o->threads, (int)o->ctx, o->weights, tokenizer, o->max_seqs, o->kv};
    fs_err e = {{0}};
    cli_status("loading %s ...", dir);
    double t0 = fs_now();
    int rc = fs_engine_open(g, dir, &eo, &e);
    cli_status_clear();
    if (rc) return cli_fail(o->cmd, FS_EXIT_INPUT, "%s", e.msg);
    if (o->verbose) fprintf(stderr, "loaded %s in %.2f s\n", dir, fs_now() - t0);
    return 0;
}

int cli_opts_seq(const cli_opts *o, fs_engine *g, fs_seq **q) {
    fs_sampler_params sp;
    fs_err e = {{0}};
    *q = NULL;
    if (fs_engine_sampler_params(g, &o->sampling, &sp, &e) || fs_seq_new(q, g, (int)o->ctx, &sp, &e))
        return cli_fail(o->cmd, FS_EXIT_INPUT, "%s", e.msg);
    return 0;
}

void cli_opts_describe(const cli_opts *o, fs_engine *g, fs_seq *q) {
    const fs_config *c = &fs_engine_model(g)->cfg;
    fs_forward *f = fs_engine_forward(g);
    fs_backend *b = fs_forward_backend(f);
    fprintf(stderr, "model: %s  L %d  H %d  Hq %d  Hkv %d  D %d  I %d  V %d\n", fs_engine_dir(g), c->n_layers,
            c->hidden, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn, c->vocab);
    fprintf(stderr, "backend: %s (%s)\n", b->name, b->describe ? b->describe(b) : "");
    if (q) {
        const double MiB = 1048576.0;
        fprintf(stderr, "context: %d tokens  weights %.2f MiB  KV cache %.2f MiB (%s)  scratch %.2f MiB\n",
                fs_seq_n_ctx(q), fs_forward_weight_bytes(f) / MiB, fs_session_kv_bytes(fs_seq_session(q)) / MiB,
                fs_forward_kv_dtype(f) == FS_DTYPE_F16 ? "f16" : "f32", fs_forward_scratch_bytes(f) / MiB);
        const fs_sampler_params *sp = fs_seq_sampler_params(q);
        fprintf(stderr,
                "sampling: temp %g  top-k %d  top-p %g  min-p %g  repeat-penalty %g  presence-penalty %g  seed %llu\n",
                sp->temperature, sp->top_k, sp->top_p, sp->min_p, sp->repetition_penalty, sp->presence_penalty,
                (unsigned long long)sp->seed);
    }
    fprintf(stderr, "stop ids:");
    for (int i = 0; i < c->n_eos; i++) fprintf(stderr, " %d", c->eos_ids[i]);
    fprintf(stderr, "\n");
    (void)o;
}

void cli_prefill_progress(void *user, int done, int total) {
    (void)user;
    if (total <= FS_PREFILL_CHUNK) return; /* one chunk: no progress to show */
    if (done < total) cli_status("prefill %d/%d tokens", done, total);
    else cli_status_clear();
}

void cli_speed_line(const fs_seq_stats *st) {
    if (!cli_tty_err()) return;
    double ptps = st->prefill_s > 0 ? st->prefilled / st->prefill_s : 0;
    double dtps = st->decode_s > 0 ? st->generated / st->decode_s : 0;
    fprintf(stderr, CLI_FAINT "prompt %d tokens (%d reused), %.1f tok/s; reply %d tokens, %.1f tok/s" CLI_RESET "\n",
            st->prompt_tokens, st->reused, ptps, st->generated, dtps);
}
