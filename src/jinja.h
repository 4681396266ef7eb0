/* jinja.h - a small Jinja interpreter, for chat templates.
 *
 * A checkpoint says how a conversation becomes prompt text with a Jinja
 * program (tokenizer_config.json "chat_template", or chat_template.jinja).
 * Transformers renders it with jinja2 in a sandbox configured so:
 *     ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
 *                                   extensions=[loopcontrols, generation])
 *     filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=...)
 *     globals: raise_exception(msg), strftime_now(fmt)
 * This interpreter implements the subset real chat templates use, with
 * Python's semantics where they show in the output (str() of values, float
 * repr, truthiness, string methods, negative indices and slices). A
 * template compiles once (fs_jinja_compile) into a tree of nodes and
 * renders many times.
 *
 * Not implemented (a clear error names each): template inheritance and
 * includes (extends, block, include, import), call and filter blocks,
 * recursive loops, `with`, autoescape. The full list of statements,
 * filters, tests, methods and globals is in docs/chat.md.
 *
 * Safety: the source and the variables come from outside, so every error
 * is a message "template line L, column C: ...", never a crash; nesting,
 * macro recursion, loop iterations, memory and output size are bounded.
 *
 * Docs: docs/chat.md
 */
#ifndef FS_JINJA_H
#define FS_JINJA_H

#include <stddef.h>
#include <time.h>

#include "json.h"
#include "util.h"

typedef struct fs_jinja fs_jinja;

/* Parse src[0..len) (UTF-8). On error: -1, e.g. "template line 3, column
 * 12: expected 'endif', found end of template". */
int fs_jinja_compile(fs_jinja **out, const char *src, size_t len, fs_err *e);
void fs_jinja_free(fs_jinja *t);

/* One template variable: a JSON value (converted: JSON numbers with an
 * integer value become ints, others floats). */
typedef struct fs_jinja_var {
    const char *name;
    const fs_json *value;
} fs_jinja_var;

typedef struct fs_jinja_opts {
    time_t now;          /* strftime_now's clock (UTC); 0: the current time */
    size_t max_output;   /* bytes; 0: 16 MiB */
} fs_jinja_opts;

/* Render with vars[0..n) (a later one of the same name wins). *out is a
 * malloc'd NUL-terminated string of *out_len bytes (out_len may be NULL).
 * raise_exception("msg") in the template fails with "... raise_exception:
 * msg". o may be NULL. */
int fs_jinja_render(const fs_jinja *t, const fs_jinja_var *vars, size_t n, const fs_jinja_opts *o, char **out,
                    size_t *out_len, fs_err *e);

#endif
