/* main.c - `fs`: one binary, many subcommands (see cli.h for the contract).
 *
 *   fs COMMAND [OPTIONS]     run a command
 *   fs help [COMMAND]        this list, or that command's --help
 *   fs --version             the version: `git describe` when it was built
 *
 * Docs: docs/map.md (the whole engine), each command's page for the rest.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "version.h" /* FS_VERSION, written by the Makefile */

/* One line per subcommand; each lives in cli/cmd_NAME.c. */
int fs_cmd_inspect(int argc, char **argv);
int fs_cmd_logits(int argc, char **argv);
int fs_cmd_generate(int argc, char **argv);
int fs_cmd_mkmodel(int argc, char **argv);
int fs_cmd_template(int argc, char **argv);
int fs_cmd_tokenize(int argc, char **argv);
int fs_cmd_detokenize(int argc, char **argv);
int fs_cmd_pull(int argc, char **argv);
int fs_cmd_list(int argc, char **argv);
int fs_cmd_quantize(int argc, char **argv);
int fs_cmd_chat(int argc, char **argv);
int fs_cmd_run(int argc, char **argv);
int fs_cmd_bench(int argc, char **argv);
int fs_cmd_perplexity(int argc, char **argv);
int fs_cmd_serve(int argc, char **argv);

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"run", fs_cmd_run, "chat with a model dir or hub repo (pulled if needed), or answer one prompt"},
    {"chat", fs_cmd_chat, "talk to a model: streaming replies, history, /stats (KV cache reused per turn)"},
    {"serve", fs_cmd_serve, "an OpenAI-compatible HTTP server with continuous batching, and a chat page"},
    {"generate", fs_cmd_generate, "continue a raw prompt, streaming the text (sampling, stop strings)"},
    {"logits", fs_cmd_logits, "run a prompt, print the most likely next tokens (--dump-logits)"},
    {"tokenize", fs_cmd_tokenize, "text -> token ids (tokenizer.json only; --bench for speed)"},
    {"detokenize", fs_cmd_detokenize, "token ids -> text"},
    {"template", fs_cmd_template, "print the prompt a conversation becomes (Qwen3 chat template)"},
    {"inspect", fs_cmd_inspect, "print a checkpoint's architecture, parameter counts and tensors"},
    {"pull", fs_cmd_pull, "download a model from the Hugging Face hub"},
    {"list", fs_cmd_list, "the models in the cache (~/.cache/fs/models), with their sizes"},
    {"quantize", fs_cmd_quantize, "store a checkpoint's weights as q8_0, q4_0, f16 or bf16 (fast loads)"},
    {"bench", fs_cmd_bench, "prefill / decode tokens/s, decode roofline vs memory bandwidth"},
    {"perplexity", fs_cmd_perplexity, "perplexity of a text file; KL divergence against a base model"},
    {"mkmodel", fs_cmd_mkmodel, "write a random, reproducible checkpoint (Qwen3, Llama, Qwen2; for tests)"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: fs COMMAND [OPTIONS]   (fs help COMMAND, or fs COMMAND --help, for details)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nMODEL is a model directory (config.json, *.safetensors, tokenizer.json). Commands\n"
               "that take one use -m MODEL, else $FS_MODEL, else the shipped models/tiny.\n"
               "Exit status: 0 ok, 1 usage, 2 bad input, 130 interrupted (Ctrl-C).\n");
}

static int find(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return (int)i;
    return -1;
}

int main(int argc, char **argv) {
    cli_set_program(argv[0]); /* lets commands find models/tiny beside the binary */
    if (argc < 2) {
        usage(stderr);
        return FS_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--version") || !strcmp(a, "-V") || !strcmp(a, "version")) {
        printf("fs %s\n", FS_VERSION);
        return cli_out_close("version");
    }
    if (cli_is_help(a) || !strcmp(a, "help")) {
        if (!strcmp(a, "help") && argc > 2) { /* fs help CMD: that command's --help */
            int k = find(argv[2]);
            if (k < 0) return cli_fail("help", FS_EXIT_USAGE, "unknown command '%s' (fs help lists them)", argv[2]);
            char *help_argv[] = {argv[2], "--help", NULL};
            return commands[k].fn(2, help_argv);
        }
        usage(stdout);
        return cli_out_close("help");
    }
    int k = find(a);
    if (k >= 0) return commands[k].fn(argc - 1, argv + 1);
    fprintf(stderr, "fs: unknown command '%s' (fs --help lists them)\n", a);
    return FS_EXIT_USAGE;
}
