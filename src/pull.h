/* pull.h - download a model from the Hugging Face hub (`fs pull`).
 *
 * fs_pull fetches, for repo id OWNER/NAME:
 *   config.json, generation_config.json (optional), tokenizer.json,
 *   tokenizer_config.json, and the weights: model.safetensors, or when the
 *   repo has none, model.safetensors.index.json and every shard its
 *   weight_map names,
 * from  ENDPOINT/OWNER/NAME/resolve/REVISION/FILE  into a model directory.
 *
 * The transfer itself is done by the `curl` program (spawned with an argv
 * array, no shell), so fs needs no TLS code. Each file goes to FILE.part
 * first; an interrupted download is resumed with an HTTP Range request on
 * the next run; a file is renamed into place only after its size (and, for
 * files the hub stores in LFS, its sha256) has been checked, and its
 * content as far as fs can tell without them (fs_pull_check_file: a
 * safetensors header against the file's length, JSON as JSON). So the model
 * directory never holds a half-written or garbage file under its real name.
 *
 * Docs: docs/pull.md
 */
#ifndef FS_PULL_H
#define FS_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum {
    FS_PULL_START,      /* a transfer begins (resumed_from > 0: resuming) */
    FS_PULL_PROGRESS,   /* a few times a second during a transfer */
    FS_PULL_VERIFY,     /* hashing the finished file */
    FS_PULL_DONE,       /* downloaded, checked and renamed into place */
    FS_PULL_UP_TO_DATE, /* already there with the right size: skipped */
    FS_PULL_ABSENT,     /* an optional file the repo does not have */
    FS_PULL_RESTART,    /* the server ignored the Range request: starting over */
} fs_pull_event;

typedef struct fs_pull_progress {
    fs_pull_event event;
    const char *file;     /* name inside the repo, e.g. "model.safetensors" */
    int64_t done;         /* bytes on disk so far, resumed part included */
    int64_t total;        /* expected size, -1 when the server did not say */
    int64_t resumed_from; /* bytes that were already in FILE.part */
    double seconds;       /* since this transfer started */
} fs_pull_progress;

typedef struct fs_pull_opts {
    const char *endpoint; /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    const char *revision; /* NULL: "main" (a branch, tag or commit) */
    const char *token;    /* NULL: $HF_TOKEN when set (sent as a Bearer token) */
    /* Called on every event (may be NULL). fs_pull itself never prints. */
    void (*progress)(const fs_pull_progress *p, void *ctx);
    void *ctx;
} fs_pull_opts;

/* The models fs is known to run, by a short name (`fs pull llama3.2-1b`,
 * `fs run qwen3-1.7b`): each an instruct checkpoint of an architecture of
 * arch.h. gated: the hub serves it only to an account that accepted its
 * licence, with that account's token in HF_TOKEN (Meta's Llama). */
typedef struct fs_pull_known {
    const char *name;   /* "llama3.2-1b" */
    const char *repo;   /* "meta-llama/Llama-3.2-1B-Instruct" */
    const char *arch;   /* "LlamaForCausalLM" (what its config.json says) */
    int gated;
} fs_pull_known;

/* The table, n entries. */
const fs_pull_known *fs_pull_known_models(int *n);
/* The entry for a short name or a repo id (case-insensitive, as the hub);
 * NULL when fs does not list it (any OWNER/NAME can still be pulled). */
const fs_pull_known *fs_pull_find_known(const char *name_or_repo);

/* Is repo a safe hub id "OWNER/NAME"? Letters, digits, '-', '_', '.';
 * exactly one '/'; no "..", no leading '.' or '-' in either part. */
int fs_pull_check_repo_id(const char *repo, fs_err *e);

/* A revision is a branch, tag or commit; it goes into the URL path, so it
 * gets the same character set plus '/' (for "refs/pr/1"), no "..". */
int fs_pull_check_revision(const char *rev, fs_err *e);

/* The directory a pull of repo goes to by default:
 * ${FS_HOME:-$HOME/.cache/fs}/models/OWNER/NAME. `fs run` uses it to find
 * models that were already pulled. */
int fs_pull_default_dir(const char *repo, char *out, size_t cap, fs_err *e);
/* The cache those directories are in: ${FS_HOME:-$HOME/.cache/fs}/models
 * (`fs list` shows what it holds). */
int fs_pull_models_dir(char *out, size_t cap, fs_err *e);

/* Download repo into dir (created if needed; NULL: the default dir). Files
 * already complete are skipped, so running it again is cheap and resumes
 * whatever was interrupted. config.json is fetched first and must load with
 * fs_config_load (so an unsupported model fails before its weights are
 * fetched), and the finished directory is checked the same way. Errors name
 * the file and the cause (not found, gated, network, disk, corrupt
 * download, unsupported config). */
int fs_pull(const char *repo, const char *dir, const fs_pull_opts *opts, fs_err *e);

/* ---- the parts of fs_pull that read what a server sent -----------------
 * Public so that tests and fuzz/fuzz_pull.c reach them without a network. */

/* What one curl run tells us. */
typedef struct fs_pull_response {
    int curl_exit;          /* curl's exit status (0 ok, 22 HTTP error, ...) */
    int status;             /* final HTTP status, 0 if no response */
    int64_t content_length; /* of the final response, -1 if absent */
    int64_t linked_size;    /* X-Linked-Size (any hop), -1 if absent */
    int64_t range_total;    /* Content-Range: bytes A-B/TOTAL of a 206, -1 if absent */
    char etag[128];         /* ETag of the final response, unquoted */
    char linked_etag[128];  /* X-Linked-Etag (any hop), unquoted */
    char error_code[64];    /* X-Error-Code of the final response */
    char curl_msg[256];     /* curl's own error line, "curl: " stripped */
} fs_pull_response;

/* Read the response headers curl -D wrote, text[0..len) (every response
 * of a redirect chain, in order) into r, which the caller has set to "none
 * yet" (-1 sizes, empty strings). Any bytes are safe: a malformed line is
 * ignored, a malformed number stays -1. */
void fs_pull_parse_headers(const char *text, size_t len, fs_pull_response *r);

/* The distinct shard files model.safetensors.index.json (text[0..len))
 * lists in its weight_map, each a plain "*.safetensors" name that stays
 * inside the model directory. *names is malloc'd (fs_pull_free_names). */
int fs_pull_shard_names(const char *text, size_t len, char ***names, int *n, fs_err *e);
void fs_pull_free_names(char **names, int n);

/* May the downloaded file at path become `name` in the model directory?
 * Checks what can be checked without the server's size or hash: a
 * *.safetensors file has a valid header and exactly the length it
 * announces; a *.json file is a JSON object (the shard index also lists
 * safe shard names). On failure *resumable is 1 when the file is a correct
 * start that is only short (a cut safetensors download: keep it, resume). */
int fs_pull_check_file(const char *name, const char *path, int *resumable, fs_err *e);

#endif
