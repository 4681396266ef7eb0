/* cmd_template.c - `fs template`: print the prompt a conversation becomes.
 *
 *   fs template -m MODEL --messages FILE.json [--tools FILE.json] [--no-think]
 *               [--no-generation-prompt] [--kwargs JSON] [--date YYYY-MM-DD]
 *   echo '[{"role": "user", "content": "Hi"}]' | fs template --messages -
 *
 * FILE.json holds an OpenAI-style messages array (or an object with a
 * "messages" member, and then maybe "tools"). The rendered text goes to
 * stdout exactly, with no newline added, so it can be compared byte for
 * byte with transformers' apply_chat_template (tests/e2e_template.sh
 * does). MODEL only has to hold the chat template (tokenizer_config.json
 * or chat_template.jinja); --template FILE.jinja runs another one.
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
            "usage: fs template [-m MODEL] --messages FILE.json [options]\n\n"
            "Print the prompt text for a conversation, rendered by the model's own chat template\n"
            "(a Jinja program: tokenizer_config.json's chat_template, or chat_template.jinja).\n\n"
            "  -m, --model DIR          model directory (needs the chat template; default:\n"
            "                           $FS_MODEL, else the shipped models/tiny)\n"
            "  --messages FILE.json     [{\"role\": \"user\", \"content\": \"...\"}, ...]\n"
            "                           (or {\"messages\": [...], \"tools\": [...]}); - reads stdin\n"
            "  --tools FILE.json        tool definitions: [{\"type\": \"function\", \"function\": {...}}]\n"
            "  --no-think               enable_thinking=false (Qwen3: an empty think block)\n"
            "  --think                  enable_thinking=true (default: not set)\n"
            "  --no-generation-prompt   do not end with the assistant's header\n"
            "  --kwargs JSON            more template variables, e.g. '{\"date_string\": \"26 Jul 2024\"}'\n"
            "  --date YYYY-MM-DD        the date strftime_now() gives (Llama 3's \"Today Date\")\n"
            "  --template FILE.jinja    run this template instead of the model's\n");
}

/* Read and parse a JSON file (or - for stdin). */
static int read_json(const char *path, fs_json_doc *doc) {
    char *text = NULL;
    size_t len = 0;
    fs_err e = {{0}};
    if (cli_read_input("template", path, &text, &len)) return -1;
    int bad = fs_json_parse(doc, text, len, &e);
    free(text);
    if (bad) {
        cli_fail("template", FS_EXIT_INPUT, "%s: %s", path, e.msg);
        return -1;
    }
    return 0;
}

int fs_cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages_path = NULL, *tools_path = NULL, *kwargs_text = NULL, *date = NULL,
               *template_path = NULL;
    fs_chat_opts o = {1, -1, NULL, NULL, 0};
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return FS_EXIT_OK;
        }
        if ((r = cli_flag("template", argc, argv, &i, "--model", "-m", &model)) != 0 ||
            (r = cli_flag("template", argc, argv, &i, "--messages", NULL, &messages_path)) != 0 ||
            (r = cli_flag("template", argc, argv, &i, "--tools", NULL, &tools_path)) != 0 ||
            (r = cli_flag("template", argc, argv, &i, "--kwargs", NULL, &kwargs_text)) != 0 ||
            (r = cli_flag("template", argc, argv, &i, "--date", NULL, &date)) != 0 ||
            (r = cli_flag("template", argc, argv, &i, "--template", NULL, &template_path)) != 0) {
            if (r < 0) return FS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--no-think")) {
            o.enable_thinking = 0;
        } else if (!strcmp(argv[i], "--think")) {
            o.enable_thinking = 1;
        } else if (!strcmp(argv[i], "--no-generation-prompt")) {
            o.add_generation_prompt = 0;
        } else {
            usage(stderr);
            return cli_fail("template", FS_EXIT_USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (!messages_path) return cli_fail("template", FS_EXIT_USAGE, "missing --messages FILE.json");
    if (date && fs_chat_parse_date(date, &o.now))
        return cli_fail("template", FS_EXIT_USAGE, "--date: expected YYYY-MM-DD, got '%s'", date);

    fs_err e = {{0}};
    fs_chat_template *t = NULL;
    if (template_path) {
        char *src = NULL;
        size_t len = 0;
        if (cli_read_input("template", template_path, &src, &len)) return FS_EXIT_INPUT;
        int bad = fs_chat_template_new(&t, src, len, NULL, NULL, &e);
        free(src);
        if (bad) return cli_fail("template", FS_EXIT_INPUT, "%s: %s", template_path, e.msg);
    } else {
        model = cli_model_dir("template", model);
        if (!model) return FS_EXIT_USAGE;
        if (fs_chat_template_load(&t, model, &e)) return cli_fail("template", FS_EXIT_INPUT, "%s", e.msg);
    }

    int rc = FS_EXIT_INPUT;
    fs_json_doc doc = {0}, tools_doc = {0}, kw_doc = {0};
    int have_tools = 0, have_kw = 0;
    fs_chat_msg *msgs = NULL;
    size_t n = 0;
    char *prompt = NULL;
    if (read_json(messages_path, &doc)) goto out;
    const fs_json *arr = doc.root;
    if (fs_json_is(arr, FS_JSON_OBJECT)) {
        o.tools = fs_json_get(doc.root, "tools");
        if (o.tools && o.tools->type == FS_JSON_NULL) o.tools = NULL;
        arr = fs_json_get(doc.root, "messages");
    }
    if (tools_path) {
        if (read_json(tools_path, &tools_doc)) goto out;
        have_tools = 1;
        o.tools = tools_doc.root->type == FS_JSON_NULL ? NULL : tools_doc.root;
    }
    if (kwargs_text) {
        if (fs_json_parse(&kw_doc, kwargs_text, strlen(kwargs_text), &e)) {
            rc = cli_fail("template", FS_EXIT_USAGE, "--kwargs: %s", e.msg);
            goto out;
        }
        have_kw = 1;
        o.kwargs = kw_doc.root;
    }
    if (fs_chat_parse_messages(arr, &msgs, &n, &e) || fs_chat_render(t, msgs, n, &o, &prompt, &e)) {
        rc = cli_fail("template", FS_EXIT_INPUT, "%s: %s", messages_path, e.msg);
    } else {
        fwrite(prompt, 1, strlen(prompt), stdout);
        rc = cli_out_close("template");
    }
out:
    free(prompt);
    free(msgs);
    if (doc.arena) fs_json_free(&doc);
    if (have_tools) fs_json_free(&tools_doc);
    if (have_kw) fs_json_free(&kw_doc);
    fs_chat_template_free(t);
    return rc;
}
