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
 * files the hub stores in LFS, its sha256) has been checked. So the model
 * directory never holds a half-written file under its real name.
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

#endif
