/* test_cli.c - the pieces of the fs command line that have no model in
 * them, linked from cli/'s objects (the Makefile links every cli object
 * but main.o):
 *
 *   1. strict numbers: whole strings only, no leading spaces or '+', no
 *      wrap-around ("-5" as a seed), no clamping (2^64), denormals are
 *      numbers, overflow and NaN are not;
 *   2. the shared flags (cli/opts.c): each command takes only its groups,
 *      one set of limits, the sampling values checked by the sampler's
 *      rules, -c as --ctx;
 *   3. the default model: -m "" is an error, -m and $FS_MODEL win;
 *   4. the reply on screen: <think>...</think> dimmed on a terminal even
 *      when the tags arrive split over pieces, verbatim otherwise.
 * Usage errors print their one line to stderr; that is expected here.
 *
 * Docs: docs/testing.md
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "opts.h"
#include "test.h"

static void test_numbers(void) {
    long l;
    uint64_t u;
    double d;
    CHECK(cli_parse_int("42", 0, 100, &l) == 0 && l == 42);
    CHECK(cli_parse_int("-3", -5, 5, &l) == 0 && l == -3);
    const char *bad_int[] = {"", " 5", "+5", "5 ", "5x", "0x10", "1e3", "-", "101", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_int / sizeof *bad_int; i++)
        CHECKF(cli_parse_int(bad_int[i], -100, 100, &l) == -1, "'%s' was accepted as %ld", bad_int[i], l);

    CHECK(cli_parse_u64("18446744073709551615", &u) == 0 && u == UINT64_MAX);
    CHECK(cli_parse_u64("0", &u) == 0 && u == 0);
    const char *bad_u64[] = {"", " -5", "-5", "+5", "18446744073709551616", "999999999999999999999999", "1.0"};
    for (size_t i = 0; i < sizeof bad_u64 / sizeof *bad_u64; i++)
        CHECKF(cli_parse_u64(bad_u64[i], &u) == -1, "'%s' was accepted as %llu", bad_u64[i], (unsigned long long)u);

    CHECK(cli_parse_double("1e-320", 0, 10, &d) == 0 && d > 0); /* a denormal: a number */
    CHECK(cli_parse_double("0.5", 0, 1, &d) == 0 && d == 0.5);
    CHECK(cli_parse_double(".5", 0, 1, &d) == 0 && d == 0.5);
    CHECK(cli_parse_double("-2", -5, 5, &d) == 0 && d == -2);
    const char *bad_dbl[] = {"", " 1", "1 ", "1e999", "-1e999", "nan", "inf", "-inf", "infinity", "1x", "2"};
    for (size_t i = 0; i < sizeof bad_dbl / sizeof *bad_dbl; i++)
        CHECKF(cli_parse_double(bad_dbl[i], -1, 1, &d) == -1, "'%s' was accepted as %g", bad_dbl[i], d);
}

/* Parse one argument list with the given groups; returns the last
 * cli_opts_parse result (-1 at the first error). */
static int parse(cli_opts *o, unsigned groups, int argc, const char **argv) {
    cli_opts_init(o, "test", groups, 256);
    int r = 0;
    for (int i = 0; i < argc; i++) {
        r = cli_opts_parse(o, argc, (char **)argv, &i);
        if (r <= 0) return r;
    }
    return r;
}

#define ARGS(...) (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), (const char *[]){__VA_ARGS__}

static void test_opts(void) {
    const unsigned all = CLI_MODEL | CLI_RUNTIME | CLI_PROMPT | CLI_SAMPLING | CLI_VERBOSE;
    cli_opts o;
    CHECK(parse(&o, all, ARGS("-m", "dir", "-c", "128", "-t", "2", "--temp", "0", "--seed", "18446744073709551615",
                              "-n", "7", "--stop", "\n\n", "-v", "--weights", "q8_0", "--backend", "cpu-ref", "--kv",
                              "f16")) == 1);
    CHECK_STR(o.model, "dir");
    CHECK_EQ_INT(o.ctx, 128);
    CHECK_EQ_INT(o.threads, 2);
    CHECK_EQ_INT(o.max_tokens, 7);
    CHECK(o.sampling.set == (FS_SET_TEMPERATURE | FS_SET_SEED) && o.sampling.p.temperature == 0);
    CHECK(o.sampling.p.seed == UINT64_MAX);
    CHECK_EQ_INT(o.n_stops, 1);
    CHECK(o.verbose == 1);
    CHECK_STR(o.weights, "q8_0");
    CHECK_STR(o.backend, "cpu-ref");
    CHECK_STR(o.kv, "f16");
    CHECK(parse(&o, all, ARGS("--ctx", "64", "--temperature", "1e-320", "--top-k", "0")) == 1);
    CHECK(o.ctx == 64 && o.sampling.p.temperature > 0 && o.sampling.set == (FS_SET_TEMPERATURE | FS_SET_TOP_K));

    /* a command takes only its groups: bench has no sampling flags */
    CHECK(parse(&o, CLI_MODEL | CLI_RUNTIME, ARGS("--temp", "0")) == 0);
    CHECK(parse(&o, CLI_MODEL, ARGS("-c", "5")) == 0);

    /* one set of limits */
    const char *bad[][2] = {{"--seed", " -5"}, {"--seed", "-5"}, {"--seed", "999999999999999999999999"},
                            {"--ctx", "0"}, {"-c", "16777217"}, {"-t", "0"}, {"-t", "1025"}, {"-n", "-1"},
                            {"--temp", "-1"}, {"--temp", "nan"}, {"--temp", "1e999"}, {"--top-p", "0"},
                            {"--top-p", "1.5"}, {"--min-p", "2"}, {"--repeat-penalty", "0"}, {"--top-k", "-1"},
                            {"--stop", ""}, {"--backend", "tpu"}, {"--weights", "q5_1"}, {"--kv", "bf16"},
                            {"--kv", "F16"}, {"-m", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *argv[2] = {bad[i][0], bad[i][1]};
        CHECKF(parse(&o, all, bad[i][1] ? 2 : 1, argv) == -1, "%s '%s' was accepted", bad[i][0],
               bad[i][1] ? bad[i][1] : "(missing)");
    }
    const char *stops[2 * (CLI_MAX_STOPS + 1)];
    for (int i = 0; i < CLI_MAX_STOPS + 1; i++) stops[2 * i] = "--stop", stops[2 * i + 1] = "x";
    CHECK(parse(&o, all, 2 * CLI_MAX_STOPS, stops) == 1);
    CHECK(parse(&o, all, 2 * (CLI_MAX_STOPS + 1), stops) == -1);

    /* the prompt: exactly one of -p and -f */
    char *text = NULL;
    size_t len;
    CHECK(parse(&o, all, ARGS("-p", "hello")) == 1);
    CHECK(cli_opts_prompt(&o, &text, &len) == 0 && len == 5 && !strcmp(text, "hello"));
    free(text);
    CHECK(parse(&o, all, ARGS("-p", "a", "-f", "b")) == 1);
    CHECK_EQ_INT(cli_opts_prompt(&o, &text, &len), FS_EXIT_USAGE);
    cli_opts_init(&o, "test", all, 0);
    CHECK_EQ_INT(cli_opts_prompt(&o, &text, &len), FS_EXIT_USAGE);
}

static void test_model_dir(void) {
    CHECK(cli_model_dir("test", "") == NULL);
    CHECK_STR(cli_model_dir("test", "some/dir"), "some/dir");
    setenv("FS_MODEL", "from/env", 1);
    CHECK_STR(cli_model_dir("test", NULL), "from/env");
    CHECK_STR(cli_model_dir("test", "flag/wins"), "flag/wins");
    unsetenv("FS_MODEL");
}

/* The display's output for these pieces (stdout captured in a file). */
static const char *shown(int tty, const char *const *pieces) {
    static char got[4096];
    fflush(stdout);
    FILE *f = tmpfile();
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(f), STDOUT_FILENO);
    cli_think_display d = {tty, 0, 0};
    for (const char *const *p = pieces; *p; p++) cli_think_display_text(&d, *p, strlen(*p));
    cli_think_display_end(&d);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = 0;
    fclose(f);
    return got;
}

static void test_display(void) {
    const char *const split[] = {"<thi", "nk>\nhm", "m\n</th", "ink>\n\nYes <", "b> done", NULL};
    CHECK_STR(shown(1, split), CLI_FAINT "<think>\nhmm\n</think>" CLI_RESET "\n\nYes <b> done");
    CHECK_STR(shown(0, split), "<think>\nhmm\n</think>\n\nYes <b> done");
    const char *const open_only[] = {"<think>", "still thinking <", NULL};
    CHECK_STR(shown(1, open_only), CLI_FAINT "<think>still thinking <" CLI_RESET);
    const char *const near_miss[] = {"a <<thin", "g> <think", "er>", NULL};
    CHECK_STR(shown(1, near_miss), "a <<thing> <thinker>");
    const char *const plain[] = {"no ", "tags", " at all", NULL};
    CHECK_STR(shown(1, plain), "no tags at all");
}

int main(void) {
    test_numbers();
    test_opts();
    test_model_dir();
    test_display();
    return TEST_SUMMARY();
}
