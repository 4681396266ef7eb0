/* cmd_tokenize.c - `fs tokenize` and `fs detokenize`: text <-> token ids
 * with the model's tokenizer.json only (no weights are read).
 *
 *   fs tokenize -m MODEL "some text"        ids on one line, space-separated
 *   fs tokenize -m MODEL -f FILE            the same for a file's bytes
 *   fs tokenize -m MODEL --jsonl            stdin: one JSON string per line;
 *                                           stdout: one JSON array of ids per line
 *   fs tokenize --add-special ...           also the post-processor's special tokens
 *                                           (Llama 3's <|begin_of_text|>), as HF's
 *                                           tokenizer(text) adds them
 *   fs tokenize -m MODEL --bench FILE       encode speed (MB/s) and load time
 *   fs detokenize -m MODEL 9707 1879        the text, exactly (no newline added)
 *   fs detokenize -m MODEL --jsonl          stdin: one JSON array of ids per line;
 *                                           stdout: one JSON string per line
 *
 * MODEL is a model directory holding tokenizer.json, or that file's path.
 * The --jsonl forms exist for the end-to-end tests: one process handles a
 * whole golden file, and JSON carries any text (newlines, NUL) unambiguously.
 *
 * Docs: docs/tokenizer.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "tokenizer.h"
#include "util.h"

static void tokenize_usage(FILE *f) {
    fprintf(f,
            "usage: fs tokenize [-m MODEL] [TEXT | -f FILE | --jsonl | --bench FILE]\n"
            "  Encode text into token ids with MODEL/tokenizer.json (MODEL may also\n"
            "  be the path of a tokenizer.json; -m defaults to $FS_MODEL, else the shipped\n"
            "  models/tiny).\n"
            "  TEXT          encode this argument; with neither TEXT nor -f, read stdin\n"
            "  -f FILE       encode the bytes of FILE (- : stdin)\n"
            "  --jsonl       read one JSON string per stdin line, write one JSON array\n"
            "                of ids per line\n"
            "  --bench FILE  report tokenizer load time and encode speed (MB/s) on FILE\n"
            "  --add-special add the post-processor's special tokens (Llama 3: <|begin_of_text|>\n"
            "                first), as HF's tokenizer(text) does; without it, the text's ids only\n"
            "Output: ids separated by single spaces, then a newline.\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable tokenizer, invalid UTF-8, bad JSON).\n");
}

static void detokenize_usage(FILE *f) {
    fprintf(f,
            "usage: fs detokenize [-m MODEL] [ID ...] | --jsonl\n"
            "  Decode token ids into text with MODEL/tokenizer.json (-m defaults to\n"
            "  $FS_MODEL, else the shipped models/tiny).\n"
            "  ID ...   ids to decode; with none, read whitespace-separated ids from stdin\n"
            "  --jsonl  read one JSON array of ids per stdin line, write one JSON string per line\n"
            "Output: the decoded text exactly, with no newline added; bytes that are not\n"
            "valid UTF-8 become U+FFFD (as Python's errors=\"replace\").\n"
            "Exit: 0 ok, 1 usage, 2 bad input (unreadable tokenizer, id out of range, bad JSON).\n");
}

static int load(const char *cmd, const char *model, fs_tokenizer **t) {
    fs_err e;
    if (fs_tokenizer_load(t, model, &e) < 0) return cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
    return 0;
}

static void print_ids(const int *ids, int n) {
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
}

static int bench(const char *cmd, const char *model, const char *file) {
    double t0 = fs_now();
    fs_tokenizer *t;
    if (load(cmd, model, &t)) return FS_EXIT_INPUT;
    double load_s = fs_now() - t0;
    char *text;
    size_t len;
    fs_err e;
    if (cli_read_input(cmd, file, &text, &len)) {
        fs_tokenizer_free(t);
        return FS_EXIT_INPUT;
    }
    int rc = FS_EXIT_OK, n_ids = 0, reps = 0;
    double best = 1e30, start = fs_now();
    /* Best of several runs (at least 3, about 2 s in all): the minimum is
     * the least disturbed by the rest of the machine. */
    while (reps < 3 || (fs_now() - start < 2.0 && reps < 50)) {
        int *ids;
        double s = fs_now();
        if (fs_tokenizer_encode(t, text, len, &ids, &n_ids, &e) < 0) {
            rc = cli_fail(cmd, FS_EXIT_INPUT, "%s: %s", file, e.msg);
            break;
        }
        double dt = fs_now() - s;
        if (dt < best) best = dt;
        free(ids);
        reps++;
    }
    if (rc == FS_EXIT_OK)
        printf("load %.3f s | %s: %zu bytes -> %d tokens (%.2f bytes/token) | encode %.2f MB/s, %.0f tokens/s (best of %d)\n",
               load_s, file, len, n_ids, n_ids ? (double)len / n_ids : 0.0, len / best / 1e6, n_ids / best, reps);
    free(text);
    fs_tokenizer_free(t);
    return rc;
}

static int tokenize_jsonl(const char *cmd, fs_tokenizer *t, int add_special) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = FS_EXIT_OK;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        fs_json_doc doc;
        fs_err e;
        if (fs_json_parse(&doc, line, (size_t)n, &e) < 0) {
            rc = cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: %s", lineno, e.msg);
            break;
        }
        if (!fs_json_is(doc.root, FS_JSON_STRING)) {
            fs_json_free(&doc);
            rc = cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: expected a JSON string", lineno);
            break;
        }
        int *ids, n_ids;
        int bad = fs_tokenizer_encode_opt(t, doc.root->str, doc.root->len, add_special, &ids, &n_ids, &e);
        fs_json_free(&doc);
        if (bad) {
            rc = cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: %s", lineno, e.msg);
            break;
        }
        putchar('[');
        for (int i = 0; i < n_ids; i++) printf(i ? ", %d" : "%d", ids[i]);
        fputs("]\n", stdout);
        free(ids);
    }
    free(line);
    return rc;
}

int fs_cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *file = NULL, *bench_file = NULL, *text = NULL;
    int jsonl = 0, add_special = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_is_help(argv[i])) {
            tokenize_usage(stdout);
            return FS_EXIT_OK;
        }
        if ((r = cli_flag(cmd, argc, argv, &i, "--model", "-m", &model))) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--file", "-f", &file))) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if ((r = cli_flag(cmd, argc, argv, &i, "--bench", NULL, &bench_file))) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(argv[i], "--add-special")) {
            add_special = 1;
        } else if (argv[i][0] == '-' && argv[i][1] && !text) {
            tokenize_usage(stderr);
            return cli_fail(cmd, FS_EXIT_USAGE, "unknown option %s", argv[i]);
        } else if (!text) {
            text = argv[i];
        } else {
            return cli_fail(cmd, FS_EXIT_USAGE, "give the text as one argument (quote it)");
        }
    }
    if ((text != NULL) + (file != NULL) + jsonl + (bench_file != NULL) > 1)
        return cli_fail(cmd, FS_EXIT_USAGE, "TEXT, -f, --jsonl and --bench exclude each other");
    model = cli_model_dir(cmd, model);
    if (!model) return FS_EXIT_USAGE;
    if (bench_file) {
        int rc = bench(cmd, model, bench_file), out_rc = cli_out_close(cmd);
        return rc ? rc : out_rc;
    }

    fs_tokenizer *t;
    if (load(cmd, model, &t)) return FS_EXIT_INPUT;
    int rc = FS_EXIT_OK;
    if (jsonl) {
        rc = tokenize_jsonl(cmd, t, add_special);
    } else {
        char *data = NULL;
        size_t len;
        fs_err e;
        if (text) {
            len = strlen(text);
        } else {
            rc = cli_read_input(cmd, file ? file : "-", &data, &len);
        }
        if (rc == FS_EXIT_OK) {
            int *ids, n_ids;
            if (fs_tokenizer_encode_opt(t, text ? text : data, len, add_special, &ids, &n_ids, &e) < 0) {
                rc = cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
            } else {
                print_ids(ids, n_ids);
                free(ids);
            }
        }
        free(data);
    }
    fs_tokenizer_free(t);
    int out_rc = cli_out_close(cmd);
    return rc ? rc : out_rc;
}

/* Decode ids and write the text; on a bad id, report it. */
static int write_decoded(const char *cmd, const fs_tokenizer *t, const int *ids, int n, int as_json, long lineno) {
    char *text;
    size_t len;
    fs_err e;
    if (fs_tokenizer_decode(t, ids, n, &text, &len, &e) < 0) {
        if (lineno) return cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: %s", lineno, e.msg);
        return cli_fail(cmd, FS_EXIT_INPUT, "%s", e.msg);
    }
    if (as_json) {
        fs_json_write_string(stdout, text, len);
        putchar('\n');
    } else {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    return FS_EXIT_OK;
}

static int parse_id(const fs_tokenizer *t, const char *s, int *id) {
    long v;
    if (cli_parse_int(s, 0, (long)fs_tokenizer_n_vocab(t) - 1, &v) < 0) return -1;
    *id = (int)v;
    return 0;
}

static int detokenize_jsonl(const char *cmd, const fs_tokenizer *t) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = FS_EXIT_OK;
    int *ids = NULL;
    size_t ids_cap = 0;
    while (rc == FS_EXIT_OK && (n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        fs_json_doc doc;
        fs_err e;
        if (fs_json_parse(&doc, line, (size_t)n, &e) < 0) {
            rc = cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: %s", lineno, e.msg);
            break;
        }
        if (!fs_json_is(doc.root, FS_JSON_ARRAY)) {
            rc = cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: expected a JSON array of ids", lineno);
        } else {
            if (doc.root->len > ids_cap) {
                ids_cap = doc.root->len;
                ids = fs_xrealloc(ids, ids_cap * sizeof *ids);
            }
            int k = 0;
            for (const fs_json *v = doc.root->child; v; v = v->next, k++) {
                int64_t id;
                if (!fs_json_int(v, 0, fs_tokenizer_n_vocab(t) - 1, &id)) {
                    rc = cli_fail(cmd, FS_EXIT_INPUT, "stdin line %ld: element %d is not a token id in [0, %d)",
                                  lineno, k, fs_tokenizer_n_vocab(t));
                    break;
                }
                ids[k] = (int)id;
            }
            if (rc == FS_EXIT_OK) rc = write_decoded(cmd, t, ids, k, 1, lineno);
        }
        fs_json_free(&doc);
    }
    free(ids);
    free(line);
    return rc;
}

int fs_cmd_detokenize(int argc, char **argv) {
    const char *cmd = "detokenize", *model = NULL;
    int jsonl = 0, first_id = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_is_help(argv[i])) {
            detokenize_usage(stdout);
            return FS_EXIT_OK;
        }
        if ((r = cli_flag(cmd, argc, argv, &i, "--model", "-m", &model))) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--jsonl")) {
            jsonl = 1;
        } else if (argv[i][0] == '-' && !(argv[i][1] >= '0' && argv[i][1] <= '9')) {
            detokenize_usage(stderr);
            return cli_fail(cmd, FS_EXIT_USAGE, "unknown option %s", argv[i]);
        } else {
            first_id = i;
            break;
        }
    }
    if (jsonl && first_id) return cli_fail(cmd, FS_EXIT_USAGE, "--jsonl takes no ids");
    model = cli_model_dir(cmd, model);
    if (!model) return FS_EXIT_USAGE;
    fs_tokenizer *t;
    if (load(cmd, model, &t)) return FS_EXIT_INPUT;
    int rc = FS_EXIT_OK;
    if (jsonl) {
        rc = detokenize_jsonl(cmd, t);
    } else {
        int *ids = NULL, n = 0;
        char *data = NULL;
        if (first_id) {
            ids = fs_xmalloc((size_t)(argc - first_id) * sizeof *ids);
            for (int i = first_id; i < argc && rc == FS_EXIT_OK; i++)
                if (parse_id(t, argv[i], &ids[n++]) < 0)
                    rc = cli_fail(cmd, FS_EXIT_INPUT, "'%s' is not a token id in [0, %d)", argv[i],
                                  fs_tokenizer_n_vocab(t));
        } else {
            size_t len;
            if ((rc = cli_read_input(cmd, "-", &data, &len)) == FS_EXIT_OK) {
                ids = fs_xmalloc((len / 2 + 1) * sizeof *ids); /* each id takes at least 2 bytes with its separator */
                for (char *tok = strtok(data, " \t\r\n"); tok && rc == FS_EXIT_OK; tok = strtok(NULL, " \t\r\n"))
                    if (parse_id(t, tok, &ids[n++]) < 0)
                        rc = cli_fail(cmd, FS_EXIT_INPUT, "'%s' is not a token id in [0, %d)", tok,
                                      fs_tokenizer_n_vocab(t));
            }
        }
        if (rc == FS_EXIT_OK) rc = write_decoded(cmd, t, ids, n, 0, 0);
        free(ids);
        free(data);
    }
    fs_tokenizer_free(t);
    int out_rc = cli_out_close(cmd);
    return rc ? rc : out_rc;
}
