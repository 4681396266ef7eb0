/* cmd_template.c - `fs template`: print the prompt a conversation becomes.
 *
 *   fs template -m MODEL --messages FILE.json [--no-think] [--no-generation-prompt]
 *   echo '[{"role": "user", "content": "Hi"}]' | fs template --messages -
 *
 * FILE.json holds an OpenAI-style messages array (or an object with a
 * "messages" member). The rendered text goes to stdout exactly, with no
 * newline added, so it can be compared byte for byte with
 * transformers' apply_chat_template (tests/e2e_template.sh does).
 * MODEL only has to hold tokenizer_config.json: its chat_template must be
 * Qwen3's, the one src/chat_template.c implements.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "cli.h"
#include "json.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: fs template [-m MODEL] --messages FILE.json [--no-think] [--no-generation-prompt]\n\n"
            "Print the prompt text for a conversation, rendered as Qwen3's chat template does.\n\n"
            "  -m, --model DIR          model directory (needs tokenizer_config.json; default:\n"
            "                           $FS_MODEL, else the shipped models/tiny)\n"
            "  --messages FILE.json     [{\"role\": \"user\", \"content\": \"...\"}, ...]\n"
            "                           (or {\"messages\": [...]}); - reads stdin\n"
            "  --no-think               enable_thinking=False: append an empty think block\n"
            "  --no-generation-prompt   do not end with \"<|im_start|>assistant\\n\"\n");
}

int fs_cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages_path = NULL;
    int think = 1, gen_prompt = 1;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        if ((r = cli_flag("template", argc, argv, &i, "--model", "-m", &model)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if ((r = cli_flag("template", argc, argv, &i, "--messages", NULL, &messages_path)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--no-think")) {
            think = 0;
        } else if (!strcmp(argv[i], "--no-generation-prompt")) {
            gen_prompt = 0;
        } else {
            usage(stderr);
            return cli_fail("template", FS_EXIT_USAGE, "unknown option '%s'", argv[i]);
        }
    }
    model = cli_model_dir("template", model);
    if (!model) return FS_EXIT_USAGE;
    if (!messages_path) return cli_fail("template", FS_EXIT_USAGE, "missing --messages FILE.json");

    fs_err e = {{0}};
    if (fs_chat_template_check_dir(model, &e)) return cli_fail("template", FS_EXIT_INPUT, "%s", e.msg);

    fs_json_doc doc;
    char *text = NULL;
    size_t len = 0;
    if (cli_read_input("template", messages_path, &text, &len)) return FS_EXIT_INPUT;
    int bad = fs_json_parse(&doc, text, len, &e);
    free(text);
    if (bad) return cli_fail("template", FS_EXIT_INPUT, "%s: %s", messages_path, e.msg);
    const fs_json *arr = doc.root;
    if (fs_json_is(arr, FS_JSON_OBJECT)) arr = fs_json_get(arr, "messages");

    int rc = FS_EXIT_OK;
    fs_chat_msg *msgs = NULL;
    size_t n = 0;
    char *prompt = NULL;
    if (fs_chat_parse_messages(arr, &msgs, &n, &e) || fs_chat_render(msgs, n, gen_prompt, think, &prompt, &e)) {
        rc = cli_fail("template", FS_EXIT_INPUT, "%s: %s", messages_path, e.msg);
    } else {
        fwrite(prompt, 1, strlen(prompt), stdout);
        rc = cli_out_close("template");
    }
    free(prompt);
    free(msgs);
    fs_json_free(&doc);
    return rc;
}
