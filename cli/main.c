/* main.c - `fs`: one binary, many subcommands (see cli.h for the contract).
 *
 * Docs: docs/map.md (the whole engine), each command's page for the rest.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* One line per subcommand; each lives in cli/cmd_NAME.c. */
int fs_cmd_inspect(int argc, char **argv);
int fs_cmd_logits(int argc, char **argv);
int fs_cmd_generate(int argc, char **argv);
int fs_cmd_mkmodel(int argc, char **argv);
int fs_cmd_template(int argc, char **argv);
int fs_cmd_tokenize(int argc, char **argv);
int fs_cmd_detokenize(int argc, char **argv);
int fs_cmd_pull(int argc, char **argv);
int fs_cmd_quantize(int argc, char **argv);
int fs_cmd_chat(int argc, char **argv);
int fs_cmd_run(int argc, char **argv);
int fs_cmd_bench(int argc, char **argv);
int fs_cmd_perplexity(int argc, char **argv);

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"inspect", fs_cmd_inspect, "print a checkpoint's architecture, parameter counts and tensors"},
    {"logits", fs_cmd_logits, "run a prompt, print the most likely next tokens (--dump-logits)"},
    {"generate", fs_cmd_generate, "continue a raw prompt, streaming the text (sampling, stop strings)"},
    {"mkmodel", fs_cmd_mkmodel, "write a random, reproducible Qwen3 checkpoint (for tests)"},
    {"template", fs_cmd_template, "print the prompt a conversation becomes (Qwen3 chat template)"},
    {"tokenize", fs_cmd_tokenize, "text -> token ids (tokenizer.json only; --bench for speed)"},
    {"detokenize", fs_cmd_detokenize, "token ids -> text"},
    {"pull", fs_cmd_pull, "download a model from the Hugging Face hub"},
    {"quantize", fs_cmd_quantize, "store a checkpoint's weights as q8_0, q4_0, f16 or bf16 (fast loads)"},
    {"chat", fs_cmd_chat, "talk to a model: streaming replies, history, /stats (KV cache reused per turn)"},
    {"run", fs_cmd_run, "chat with a model dir or hub repo (pulled if needed); no model: the shipped tiny one"},
    {"bench", fs_cmd_bench, "prefill / decode tokens/s, decode roofline vs memory bandwidth"},
    {"perplexity", fs_cmd_perplexity, "perplexity of a text file; KL divergence against a base model"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: fs COMMAND [OPTIONS]   (fs COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nMODEL is a model directory (config.json, *.safetensors, tokenizer.json);\n"
               "-m may be omitted when FS_MODEL is set.\n");
}

int main(int argc, char **argv) {
    cli_set_program(argv[0]); /* lets commands find models/tiny beside the binary */
    if (argc < 2) {
        usage(stderr);
        return FS_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return FS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fs: unknown command '%s' (fs --help lists them)\n", argv[1]);
    return FS_EXIT_USAGE;
}
