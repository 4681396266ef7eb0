/* pull.c - download a model from the Hugging Face hub with the curl program.
 *
 * How one file is fetched (pull_file):
 *
 *   1. The answer to  GET (or HEAD) ENDPOINT/OWNER/NAME/resolve/REV/FILE,
 *      redirects followed, says whether the file exists (a 404 carries
 *      X-Error-Code: RepoNotFound / EntryNotFound / RevisionNotFound),
 *      whether we may read it (401/403: gated or private), its size and, for
 *      files stored in LFS, its sha256: the hub answers 302 with
 *      X-Linked-Size and X-Linked-Etag, then the CDN answers with the bytes
 *      and an ETag that is the same sha256.
 *   2. When FILE or FILE.part is already on disk we HEAD first: FILE with
 *      the right size is "up to date" and skipped.
 *   3. GET into FILE.part. If FILE.part exists from an interrupted run we
 *      ask only for the rest (curl -C N sends "Range: bytes=N-"). A server
 *      that ignores Range answers 200 with the whole file; curl refuses to
 *      append that (exit 33), and we start over from byte 0.
 *   4. Check: the size must be the expected one; a sha256, when the hub gave
 *      one, must match (else the .part is deleted: "corrupt download").
 *      Then what needs neither, since a server may send no length and no
 *      hash (tokenizer.json has no hash on the hub, weights outside LFS
 *      may have neither): a safetensors header against the file's length,
 *      JSON files as JSON (fs_pull_check_file). A cut safetensors file
 *      stays as the .part, to resume; garbage is deleted.
 *   5. rename(FILE.part, FILE): atomic, so FILE is either absent or whole.
 *
 * Why curl and not sockets: HTTPS needs TLS, which is thousands of lines we
 * do not want to own; curl is on every Debian and macOS machine. We spawn it
 * with an argv array (no shell, so nothing in a repo id or URL can inject a
 * command), with -q so the user's ~/.curlrc cannot change its behaviour,
 * with --fail so HTTP errors are an exit status instead of an error page
 * written into the .part, and -D so we can read the status and headers. The
 * token reaches curl through a pipe on its stdin (curl -H @-), so it never
 * appears in the process list or on disk.
 *
 * config.json comes first and must load (fs_config_load): a wrong repo id,
 * a missing token or an architecture fs cannot run is reported before any
 * weights move.
 *
 * Docs: docs/pull.md
 */
#include "pull.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "model.h"
#include "safetensors.h"
#include "sha256.h"

extern char **environ;

#define PATH_CAP 4096
#define URL_CAP 4096

/* Everything one fs_pull call needs. */
typedef struct pull {
    const char *repo;
    const char *dir;          /* the model directory */
    char endpoint[1024];      /* no trailing '/' */
    const char *revision;
    const fs_pull_opts *opts;
    char tmp[PATH_CAP];       /* private scratch dir (0700) */
    char hdr_path[PATH_CAP];  /* curl -D: response headers */
    char err_path[PATH_CAP];  /* curl's stderr: its error message */
    char auth[2048];          /* "Authorization: Bearer TOKEN\n", or "" */
} pull;

typedef fs_pull_response response;

static void emit(const pull *P, fs_pull_event ev, const char *file, int64_t done, int64_t total,
                 int64_t resumed_from, double seconds) {
    if (!P->opts || !P->opts->progress) return;
    fs_pull_progress p = {ev, file, done, total, resumed_from, seconds};
    P->opts->progress(&p, P->opts->ctx);
}

/* ---- checks ---------------------------------------------------------- */

static int name_char_ok(char c) {
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

int fs_pull_check_repo_id(const char *repo, fs_err *e) {
    if (!repo || !*repo) return fs_errf(e, "empty repo id (expected OWNER/NAME)");
    const char *slash = strchr(repo, '/');
    if (!slash || strchr(slash + 1, '/'))
        return fs_errf(e, "bad repo id '%s': expected OWNER/NAME, e.g. Qwen/Qwen3-0.6B", repo);
    size_t owner_len = (size_t)(slash - repo), name_len = strlen(slash + 1);
    if (owner_len == 0 || name_len == 0 || owner_len > 96 || name_len > 96)
        return fs_errf(e, "bad repo id '%s': OWNER and NAME must be 1-96 characters", repo);
    for (const char *c = repo; *c; c++)
        if (c != slash && !name_char_ok(*c))
            return fs_errf(e, "bad repo id '%s': only letters, digits, '-', '_' and '.' are allowed", repo);
    /* ".." would climb out of the cache dir; a leading '.' or '-' would make
     * a hidden directory or look like an option. */
    if (strstr(repo, ".."))
        return fs_errf(e, "bad repo id '%s': '..' is not allowed", repo);
    if (repo[0] == '.' || repo[0] == '-' || slash[1] == '.' || slash[1] == '-')
        return fs_errf(e, "bad repo id '%s': OWNER and NAME cannot start with '.' or '-'", repo);
    return 0;
}

int fs_pull_check_revision(const char *rev, fs_err *e) {
    if (!*rev || strlen(rev) > 128 || strstr(rev, "..") || rev[0] == '/' || rev[0] == '-')
        return fs_errf(e, "bad revision '%s'", rev);
    for (const char *c = rev; *c; c++)
        if (!name_char_ok(*c) && *c != '/') return fs_errf(e, "bad revision '%s'", rev);
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Shard names come from a downloaded JSON file: never trust them to stay
 * inside the model directory. */
static int check_shard_name(const char *s, size_t len, fs_err *e) {
    const char *ext = ".safetensors";
    size_t ext_len = strlen(ext);
    int ok = len > ext_len && len < 200 && strlen(s) == len && s[0] != '.' && s[0] != '-' &&
             memcmp(s + len - ext_len, ext, ext_len) == 0 && !strstr(s, "..");
    for (size_t i = 0; ok && i < len; i++) ok = name_char_ok(s[i]);
    return ok ? 0 : fs_errf(e, "model.safetensors.index.json: unsafe shard name \"%.*s\"", (int)(len < 80 ? len : 80), s);
}

int fs_pull_models_dir(char *out, size_t cap, fs_err *e) {
    const char *home = getenv("FS_HOME");
    int n;
    if (home && *home) {
        n = snprintf(out, cap, "%s/models", home);
    } else {
        home = getenv("HOME");
        if (!home || !*home) return fs_errf(e, "neither FS_HOME nor HOME is set: use --dir DIR");
        n = snprintf(out, cap, "%s/.cache/fs/models", home);
    }
    if (n < 0 || (size_t)n >= cap) return fs_errf(e, "model directory path too long");
    return 0;
}

int fs_pull_default_dir(const char *repo, char *out, size_t cap, fs_err *e) {
    if (fs_pull_check_repo_id(repo, e) || fs_pull_models_dir(out, cap, e)) return -1;
    size_t n = strlen(out);
    if (snprintf(out + n, cap - n, "/%s", repo) >= (int)(cap - n)) return fs_errf(e, "model directory path too long");
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *path, fs_err *e) {
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return fs_errf(e, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return fs_errf(e, "cannot create directory %s: %s", buf, strerror(errno));
            *p = saved;
            if (!saved) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return fs_errf(e, "%s is not a directory", path);
    return 0;
}

static int64_t file_size(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    return (int64_t)st.st_size;
}

int fs_pull_shard_names(const char *text, size_t len, char ***names, int *n_names, fs_err *e) {
    const char *idx = "model.safetensors.index.json";
    *names = NULL;
    *n_names = 0;
    fs_json_doc doc;
    if (fs_json_parse(&doc, text, len, e)) return fs_err_prefix(e, "%s", idx);
    const fs_json *map = fs_json_get(doc.root, "weight_map");
    int rc = 0;
    if (!fs_json_is(map, FS_JSON_OBJECT) || map->len == 0) rc = fs_errf(e, "%s: no \"weight_map\" object", idx);
    char **out = rc ? NULL : fs_xcalloc(map->len, sizeof *out);
    int n = 0;
    for (const fs_json *t = rc ? NULL : map->child; t && !rc; t = t->next) {
        if (!fs_json_is(t, FS_JSON_STRING)) {
            rc = fs_errf(e, "%s: weight_map[\"%.*s\"] is not a file name", idx, (int)(t->key_len < 80 ? t->key_len : 80),
                         t->key);
            break;
        }
        int seen = 0; /* the weight_map names the same shard for many tensors */
        for (int i = 0; i < n && !seen; i++) seen = strlen(out[i]) == t->len && !memcmp(out[i], t->str, t->len);
        if (seen) continue;
        if (check_shard_name(t->str, t->len, e)) rc = -1;
        else out[n++] = fs_xstrdup(t->str);
    }
    fs_json_free(&doc);
    if (rc) {
        if (out) fs_pull_free_names(out, n);
        return -1;
    }
    *names = out;
    *n_names = n;
    return 0;
}

void fs_pull_free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* A downloaded safetensors file: its header must be whole and valid, and
 * the file exactly as long as the header says. Shorter with a good header
 * is a cut download that can resume; anything else is garbage. */
static int check_safetensors(const char *name, const char *path, int *resumable, fs_err *e) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fs_errf(e, "%s: %s", name, strerror(errno));
    struct stat st;
    uint8_t len8[8];
    uint64_t n = 0, need = 0;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = fs_errf(e, "%s: %s", name, strerror(errno));
    } else if (st.st_size < 8 || pread(fd, len8, 8, 0) != 8) {
        rc = fs_errf(e, "%s is %lld bytes, too short for a safetensors header", name, (long long)st.st_size);
    } else {
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n > 100000000 || 8 + n > (uint64_t)st.st_size)
            rc = fs_errf(e, "%s is %lld bytes, and its first 8 bytes announce a header of %llu", name,
                         (long long)st.st_size, (unsigned long long)n);
    }
    if (!rc) {
        uint8_t *head = fs_xmalloc((size_t)(8 + n));
        if (pread(fd, head, (size_t)(8 + n), 0) != (ssize_t)(8 + n))
            rc = fs_errf(e, "%s: short read", name);
        else
            rc = fs_st_check_header(head, (size_t)(8 + n), name, &need, e);
        free(head);
    }
    close(fd);
    if (rc) return -1;
    if (need > (uint64_t)st.st_size) {
        *resumable = 1;
        return fs_errf(e, "%s is cut short: %lld bytes, its header says %llu", name, (long long)st.st_size,
                       (unsigned long long)need);
    }
    if (need < (uint64_t)st.st_size)
        return fs_errf(e, "%s has %llu bytes after its last tensor", name,
                       (unsigned long long)((uint64_t)st.st_size - need));
    return 0;
}

int fs_pull_check_file(const char *name, const char *path, int *resumable, fs_err *e) {
    *resumable = 0;
    if (ends_with(name, ".safetensors")) return check_safetensors(name, path, resumable, e);
    if (!ends_with(name, ".json")) return 0;
    char *text;
    size_t len;
    if (fs_read_file(path, &text, &len, e)) return -1;
    fs_json_doc doc;
    int rc = fs_json_parse(&doc, text, len, e);
    if (rc) {
        fs_err_prefix(e, "%s is not valid JSON", name);
    } else {
        if (!fs_json_is(doc.root, FS_JSON_OBJECT)) rc = fs_errf(e, "%s is JSON but not an object", name);
        fs_json_free(&doc);
    }
    if (!rc && !strcmp(name, "model.safetensors.index.json")) {
        char **names;
        int n;
        if ((rc = fs_pull_shard_names(text, len, &names, &n, e)) == 0) fs_pull_free_names(names, n);
    }
    free(text);
    return rc;
}

/* ---- running curl ----------------------------------------------------- */

static void trim_line(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = 0;
}

/* Strip quotes and a weak-validator prefix: W/"abc" -> abc. */
static void set_etag(char *dst, size_t cap, const char *v) {
    if (!strncmp(v, "W/", 2)) v += 2;
    if (*v == '"') v++;
    snprintf(dst, cap, "%s", v);
    char *q = strchr(dst, '"');
    if (q) *q = 0;
}

/* A size from a header: decimal digits only (strtoll would also take
 * "-0", "+5" or " 5"), else -1 (unknown). */
static int64_t parse_i64(const char *v) {
    if (!isdigit((unsigned char)*v)) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return (errno || (*end && *end != ' ' && *end != '\t')) ? -1 : (int64_t)x;
}

/* The status code of "HTTP/1.1 404 Not Found": three digits, 100-999,
 * else 0 (no usable response). */
static int parse_status(const char *v) {
    if (v[0] < '1' || v[0] > '9') return 0;
    for (int i = 1; i < 3; i++)
        if (!isdigit((unsigned char)v[i])) return 0;
    return (v[3] == 0 || v[3] == ' ') ? (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0') : 0;
}

/* curl -D writes every response of the redirect chain, each starting with
 * its "HTTP/x y" status line. Status, Content-Length, ETag and X-Error-Code
 * are taken from the last one; the X-Linked-* headers from whichever hop
 * had them (the hub's 302). */
void fs_pull_parse_headers(const char *text, size_t len, fs_pull_response *r) {
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        char line[2048];
        size_t keep = n < sizeof line - 1 ? n : sizeof line - 1; /* longer lines: their start is enough */
        memcpy(line, text + at, keep);
        line[keep] = 0;
        at += n + (nl != NULL);
        trim_line(line);
        if (!strncmp(line, "HTTP/", 5)) {
            const char *sp = strchr(line, ' ');
            r->status = sp ? parse_status(sp + 1) : 0;
            r->content_length = r->range_total = -1;
            r->etag[0] = r->error_code[0] = 0;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!strcasecmp(line, "content-length")) r->content_length = parse_i64(v);
        else if (!strcasecmp(line, "etag")) set_etag(r->etag, sizeof r->etag, v);
        else if (!strcasecmp(line, "x-linked-etag")) set_etag(r->linked_etag, sizeof r->linked_etag, v);
        else if (!strcasecmp(line, "x-linked-size")) r->linked_size = parse_i64(v);
        else if (!strcasecmp(line, "content-range") && strchr(v, '/')) r->range_total = parse_i64(strchr(v, '/') + 1);
        else if (!strcasecmp(line, "x-error-code")) snprintf(r->error_code, sizeof r->error_code, "%s", v);
    }
}

static void parse_headers(const char *path, response *r) {
    char *text;
    size_t len;
    if (fs_read_file(path, &text, &len, NULL)) return;
    fs_pull_parse_headers(text, len, r);
    free(text);
}

static int is_sha256_hex(const char *s) {
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* What a response says about the file: its full size and its sha256 (sha
 * may be NULL). Fills only what is still unknown (-1 / ""), so a HEAD's
 * answer is kept. */
static void learn(const response *r, const char *name, int64_t start, int64_t *total, char sha[65]) {
    if (*total < 0) {
        if (r->linked_size >= 0) *total = r->linked_size;
        else if (r->range_total >= 0) *total = r->range_total;
        else if (r->content_length >= 0 && (r->status == 200 || r->status == 206))
            *total = (r->status == 206 ? start : 0) + r->content_length;
    }
    /* The hub's X-Linked-Etag is the LFS sha256 of the file; a plain ETag is
     * trusted as a sha256 only for weights (other servers may use 64-hex
     * ETags that are not content hashes). */
    if (sha && !sha[0]) {
        if (is_sha256_hex(r->linked_etag)) memcpy(sha, r->linked_etag, 64);
        else if (ends_with(name, ".safetensors") && is_sha256_hex(r->etag)) memcpy(sha, r->etag, 64);
        sha[64] = 0;
        for (char *c = sha; *c; c++) *c = (char)tolower((unsigned char)*c);
    }
}

/* Run curl with args (NULL-terminated, after the common ones) for file
 * `name`; while it runs, report the growth of `watch` (the .part) as
 * progress. Returns -1 only when curl could not be started. */
static int run_curl(const pull *P, const char *const *args, const char *watch, const char *name,
                    int64_t resumed_from, int64_t total, response *r, fs_err *e) {
    const char *argv[40];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-q";            /* ignore ~/.curlrc: must be first */
    argv[n++] = "--silent";      /* no curl progress meter ... */
    argv[n++] = "--show-error";  /* ... but do print errors */
    argv[n++] = "--location";    /* LFS files redirect to a CDN */
    argv[n++] = "--fail";        /* HTTP >= 400: exit 22, write no body */
    argv[n++] = "--proto";       /* only the web, also after redirects */
    argv[n++] = "=http,https";
    argv[n++] = "--proto-redir";
    argv[n++] = "=http,https";
    argv[n++] = "--connect-timeout";
    argv[n++] = "30";
    /* A stalled transfer (under 1 KB/s for a minute) is an error, not a hang;
     * the next run resumes it. */
    argv[n++] = "--speed-limit";
    argv[n++] = "1024";
    argv[n++] = "--speed-time";
    argv[n++] = "60";
    argv[n++] = "--user-agent";
    argv[n++] = "fs-pull/1";
    argv[n++] = "--dump-header";
    argv[n++] = P->hdr_path;
    if (P->auth[0]) {
        argv[n++] = "--header"; /* header lines read from stdin */
        argv[n++] = "@-";
    }
    while (*args) argv[n++] = *args++;
    argv[n] = NULL;

    memset(r, 0, sizeof *r);
    r->content_length = r->linked_size = r->range_total = -1;
    unlink(P->hdr_path);

    /* curl's stdin: the token pipe or nothing; stdout: nothing (the body
     * goes to --output); stderr: a file we read its error message from. */
    int pipe_fd[2] = {-1, -1};
    if (P->auth[0] && pipe(pipe_fd) != 0) return fs_errf(e, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (P->auth[0]) {
        posix_spawn_file_actions_adddup2(&fa, pipe_fd[0], 0);
        posix_spawn_file_actions_addclose(&fa, pipe_fd[1]); /* else curl never sees EOF */
        if (pipe_fd[0] != 0) posix_spawn_file_actions_addclose(&fa, pipe_fd[0]);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, P->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, "curl", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (P->auth[0]) {
        /* We still hold the read end while writing, so a curl that died
         * early cannot make this write raise SIGPIPE; the few bytes fit in
         * the pipe buffer, so it cannot block either. */
        if (rc == 0) {
            size_t len = strlen(P->auth);
            ssize_t w = write(pipe_fd[1], P->auth, len);
            (void)w; /* a short write only means curl gets no token: it reports 401 */
        }
        close(pipe_fd[1]);
        close(pipe_fd[0]);
    }
    if (rc == ENOENT) return fs_errf(e, "fs pull needs the curl program, and it is not in PATH (install curl)");
    if (rc) return fs_errf(e, "cannot run curl: %s", strerror(rc));

    double t0 = fs_now();
    long poll_ms = 2;
    int wstatus;
    for (;;) {
        pid_t w = waitpid(pid, &wstatus, watch ? WNOHANG : 0);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return fs_errf(e, "waiting for curl: %s", strerror(errno));
        if (w == 0) {
            /* curl writes the headers before the body: the size may be
             * known from them before the transfer is done. */
            if (total < 0) {
                response partial = {.content_length = -1, .linked_size = -1, .range_total = -1};
                parse_headers(P->hdr_path, &partial);
                learn(&partial, name, resumed_from, &total, NULL);
            }
            int64_t have = file_size(watch);
            emit(P, FS_PULL_PROGRESS, name, have < 0 ? 0 : have, total, resumed_from, fs_now() - t0);
            /* Poll fast at first (small files finish in milliseconds),
             * then settle at 5 updates a second. */
            struct timespec ts = {0, poll_ms * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (poll_ms < 200) poll_ms *= 2;
        }
    }
    r->curl_exit = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    /* Some exec failures only show up as the child's exit status 127. */
    if (r->curl_exit == 127 && file_size(P->hdr_path) < 0)
        return fs_errf(e, "fs pull needs the curl program, and it could not be run (install curl)");

    FILE *f = fopen(P->err_path, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) { /* keep the last "curl: (N) ..." line */
            trim_line(line);
            if (strncmp(line, "curl: ", 6)) continue;
            const char *msg = line + 6, *paren = strstr(msg, ") "); /* drop "(18) " */
            if (msg[0] == '(' && paren) msg = paren + 2;
            snprintf(r->curl_msg, sizeof r->curl_msg, "%.250s", msg);
        }
        fclose(f);
    }
    parse_headers(P->hdr_path, r);
    return 0;
}

/* ---- the models fs knows ---------------------------------------------- */

static const fs_pull_known known[] = {
    {"qwen3-0.6b", "Qwen/Qwen3-0.6B", "Qwen3ForCausalLM", 0},
    {"qwen3-1.7b", "Qwen/Qwen3-1.7B", "Qwen3ForCausalLM", 0},
    {"qwen3-4b", "Qwen/Qwen3-4B", "Qwen3ForCausalLM", 0},
    {"qwen3-8b", "Qwen/Qwen3-8B", "Qwen3ForCausalLM", 0},
    {"qwen3-14b", "Qwen/Qwen3-14B", "Qwen3ForCausalLM", 0},
    {"qwen3-32b", "Qwen/Qwen3-32B", "Qwen3ForCausalLM", 0},
    {"llama3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", "LlamaForCausalLM", 1},
    {"llama3.2-3b", "meta-llama/Llama-3.2-3B-Instruct", "LlamaForCausalLM", 1},
    {"llama3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", "LlamaForCausalLM", 1},
    {"smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "LlamaForCausalLM", 0},
    {"smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", "LlamaForCausalLM", 0},
    {"smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "LlamaForCausalLM", 0},
    {"qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM", 0},
    {"qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen2ForCausalLM", 0},
    {"qwen2.5-3b", "Qwen/Qwen2.5-3B-Instruct", "Qwen2ForCausalLM", 0},
    {"qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", "Qwen2ForCausalLM", 0},
};

const fs_pull_known *fs_pull_known_models(int *n) {
    *n = (int)(sizeof known / sizeof known[0]);
    return known;
}

const fs_pull_known *fs_pull_find_known(const char *s) {
    for (size_t i = 0; s && i < sizeof known / sizeof known[0]; i++)
        if (!strcasecmp(s, known[i].name) || !strcasecmp(s, known[i].repo)) return &known[i];
    return NULL;
}

/* Turn a failed curl run into one clear line. */
static int curl_error(const pull *P, const char *name, const response *r, fs_err *e) {
    const char *ep = P->endpoint;
    switch (r->curl_exit) {
    case 22: /* HTTP error, the status tells which */
        if (r->status == 404) {
            if (!strcmp(r->error_code, "RepoNotFound"))
                return fs_errf(e, "repository %s not found on %s (if it is private or gated, set HF_TOKEN)",
                               P->repo, ep);
            if (!strcmp(r->error_code, "RevisionNotFound"))
                return fs_errf(e, "revision '%s' not found in %s", P->revision, P->repo);
            return fs_errf(e, "%s has no file %s (revision %s) on %s", P->repo, name, P->revision, ep);
        }
        if (r->status == 401 || r->status == 403) {
            /* The hub says GatedRepo for a repo behind a licence (Meta's
             * Llama): a token is needed, of an account that accepted it. */
            const fs_pull_known *k = fs_pull_find_known(P->repo);
            if (!strcmp(r->error_code, "GatedRepo") || (k && k->gated)) {
                if (P->auth[0])
                    return fs_errf(e, "%s: access denied (HTTP %d) although HF_TOKEN is set: this repo is gated: accept "
                                      "its licence on huggingface.co/%s with the account the token belongs to (and "
                                      "wait for the approval), or check the token",
                                   P->repo, r->status, P->repo);
                return fs_errf(e, "%s: this repo is gated (HTTP %d): accept its licence on huggingface.co/%s and set "
                                  "HF_TOKEN to an access token of that account",
                               P->repo, r->status, P->repo);
            }
            if (P->auth[0])
                return fs_errf(e, "%s: access denied (HTTP %d) although HF_TOKEN is set: the token is wrong or has not been granted access to this gated/private repo",
                               P->repo, r->status);
            return fs_errf(e, "%s is gated or private (HTTP %d): accept its terms on the hub and set HF_TOKEN to an access token",
                           P->repo, r->status);
        }
        if (r->status == 416)
            return fs_errf(e, "%s: the server rejected the resume request (HTTP 416)", name);
        return fs_errf(e, "%s: HTTP %d from %s", name, r->status, ep);
    case 5: case 6: case 7: case 28: case 35: case 52: case 60:
        /* proxy/host not resolved, connection refused, timeout, TLS
         * handshake, empty reply, bad certificate */
        if (r->status == 0)
            return fs_errf(e, "cannot reach %s (%s)", ep, r->curl_msg[0] ? r->curl_msg : "no answer");
        break;
    case 23:
        return fs_errf(e, "cannot write %s.part in %s: disk full or not writable (%s)", name, P->dir, r->curl_msg);
    }
    if (r->curl_exit == 18 || r->curl_exit == 28 || r->curl_exit == 56 || r->curl_exit == 92)
        return fs_errf(e, "download of %s was interrupted (%s); run fs pull again to resume", name, r->curl_msg);
    return fs_errf(e, "%s: curl failed with exit status %d (%s)", name, r->curl_exit,
                   r->curl_msg[0] ? r->curl_msg : "no message");
}

/* ---- one file ---------------------------------------------------------- */

/* An optional file the repo does not have: a 404 that is about the file, not
 * about the repo or revision. */
static int is_absent(const response *r, int optional) {
    return optional && r->curl_exit == 22 && r->status == 404 && strcmp(r->error_code, "RepoNotFound") &&
           strcmp(r->error_code, "RevisionNotFound");
}

/* Fetch `name` into the model dir. optional: a 404 sets *absent instead of
 * being an error. */
static int pull_file(pull *P, const char *name, int optional, int *absent, fs_err *e) {
    char url[URL_CAP], dest[PATH_CAP], part[PATH_CAP];
    if (absent) *absent = 0;
    if (snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", P->endpoint, P->repo, P->revision, name) >= (int)sizeof url ||
        snprintf(dest, sizeof dest, "%s/%s", P->dir, name) >= (int)sizeof dest ||
        snprintf(part, sizeof part, "%s/%s.part", P->dir, name) >= (int)sizeof part)
        return fs_errf(e, "%s: path or URL too long", name);

    int64_t total = -1;
    char sha[65] = "";
    response r;
    int64_t have = file_size(dest);
    int64_t start = file_size(part);
    if (start < 0) start = 0;

    /* 1-2. Something is already on disk: ask (HEAD) for the size and hash
     * first, to skip a complete file or check where a .part may resume.
     * Otherwise the GET's own headers tell us the same, one request less. */
    if (have >= 0 || start > 0) {
        const char *head_args[] = {"--head", "--output", "/dev/null", url, NULL};
        if (run_curl(P, head_args, NULL, name, 0, -1, &r, e)) return -1;
        if (is_absent(&r, optional)) {
            if (absent) *absent = 1;
            emit(P, FS_PULL_ABSENT, name, 0, -1, 0, 0);
            return 0;
        }
        if (r.curl_exit) return curl_error(P, name, &r, e);
        learn(&r, name, 0, &total, sha);
        /* Size check only: hashing a gigabyte on every run would make a
         * "nothing to do" pull slow. */
        if (have >= 0 && total >= 0 && have == total) {
            emit(P, FS_PULL_UP_TO_DATE, name, have, total, 0, 0);
            return 0;
        }
        if (total >= 0 && start > total) { /* leftovers of another version */
            unlink(part);
            start = 0;
        }
    }

    /* 3. Download into FILE.part, resuming what an earlier run left. */
    double t0 = fs_now();
    if (total < 0 || start < total) {
        for (int attempt = 0;; attempt++) {
            char offset[32];
            snprintf(offset, sizeof offset, "%lld", (long long)start);
            /* From byte 0 we give no offset, so curl truncates any old .part. */
            const char *resume_args[] = {"--output", part, "--continue-at", offset, url, NULL};
            const char *fresh_args[] = {"--output", part, url, NULL};
            emit(P, FS_PULL_START, name, start, total, start, 0);
            if (run_curl(P, start ? resume_args : fresh_args, part, name, start, total, &r, e)) return -1;
            /* 33: the server answered a Range request with the whole file
             * (200, not 206) and curl would not append it. 416: our offset
             * is past its end (the file changed). Either way: start over. */
            int range_refused = r.curl_exit == 33 || (r.curl_exit == 22 && r.status == 416);
            if (start > 0 && range_refused && attempt == 0) {
                emit(P, FS_PULL_RESTART, name, 0, total, start, 0);
                unlink(part);
                start = 0;
                continue;
            }
            if (is_absent(&r, optional)) {
                if (absent) *absent = 1;
                emit(P, FS_PULL_ABSENT, name, 0, -1, 0, 0);
                return 0;
            }
            if (r.curl_exit) return curl_error(P, name, &r, e);
            learn(&r, name, start, &total, sha);
            break;
        }
    }

    /* 4. Verify. */
    int64_t got = file_size(part);
    if (got < 0) return fs_errf(e, "%s: the download left no %s.part", name, name);
    if (total >= 0 && got != total) {
        if (got > total) unlink(part);
        return fs_errf(e, "corrupt download: %s is %lld bytes, expected %lld%s", name, (long long)got,
                       (long long)total, got > total ? " (the .part was deleted; run fs pull again)" : "");
    }
    if (sha[0]) {
        emit(P, FS_PULL_VERIFY, name, got, total, start, fs_now() - t0);
        uint8_t digest[32];
        char hex[65];
        if (fs_sha256_file(part, digest, e)) return -1;
        fs_sha256_hex(digest, hex);
        if (strcmp(hex, sha)) {
            unlink(part);
            return fs_errf(e, "corrupt download: %s has sha256 %.12s..., the hub says %.12s... (deleted; run fs pull again)",
                           name, hex, sha);
        }
    }

    /* 4b. What can be checked without the size or the hash, which a server
     * need not send (tokenizer.json has neither on the hub; weights outside
     * LFS may have neither): a safetensors header against the file's size,
     * JSON files as JSON. So a cut or garbage file is never promoted. */
    int resumable;
    if (fs_pull_check_file(name, part, &resumable, e)) {
        char why[FS_ERR_LEN];
        snprintf(why, sizeof why, "%s", e ? e->msg : "");
        if (resumable)
            return fs_errf(e, "incomplete download: %s; run fs pull again to resume", why);
        unlink(part);
        return fs_errf(e, "corrupt download: %s (the .part was deleted; run fs pull again)", why);
    }

    /* 5. Into place. */
    if (rename(part, dest) != 0)
        return fs_errf(e, "cannot rename %s to %s: %s", part, dest, strerror(errno));
    emit(P, FS_PULL_DONE, name, got, total, start, fs_now() - t0);
    return 0;
}

/* ---- the whole model ----------------------------------------------------- */

/* Fetch every shard model.safetensors.index.json names (already checked
 * by fs_pull_check_file before it was promoted). */
static int pull_shards(pull *P, fs_err *e) {
    char path[PATH_CAP];
    if (fs_path_join(path, sizeof path, P->dir, "model.safetensors.index.json"))
        return fs_errf(e, "path too long");
    char *text;
    size_t len;
    if (fs_read_file(path, &text, &len, e)) return -1;
    char **names;
    int n;
    int rc = fs_pull_shard_names(text, len, &names, &n, e);
    free(text);
    for (int i = 0; i < n && !rc; i++) rc = pull_file(P, names[i], 0, NULL, e);
    if (names) fs_pull_free_names(names, n);
    return rc;
}

static void cleanup_tmp(pull *P) {
    if (!P->tmp[0]) return;
    unlink(P->hdr_path);
    unlink(P->err_path);
    rmdir(P->tmp);
}

static int setup(pull *P, const char *repo, const char *dir, const fs_pull_opts *opts, char *dir_buf,
                 size_t dir_cap, fs_err *e) {
    memset(P, 0, sizeof *P);
    P->repo = repo;
    P->opts = opts;
    if (fs_pull_check_repo_id(repo, e)) return -1;
    P->revision = opts && opts->revision ? opts->revision : "main";
    if (fs_pull_check_revision(P->revision, e)) return -1;

    const char *ep = opts && opts->endpoint ? opts->endpoint : getenv("HF_ENDPOINT");
    if (!ep || !*ep) ep = "https://huggingface.co";
    if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
        return fs_errf(e, "HF_ENDPOINT '%s' must start with http:// or https://", ep);
    for (const char *c = ep; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) return fs_errf(e, "HF_ENDPOINT contains a space or control character");
    if (snprintf(P->endpoint, sizeof P->endpoint, "%s", ep) >= (int)sizeof P->endpoint)
        return fs_errf(e, "HF_ENDPOINT too long");
    for (size_t n = strlen(P->endpoint); n && P->endpoint[n - 1] == '/';) P->endpoint[--n] = 0;

    const char *token = opts && opts->token ? opts->token : getenv("HF_TOKEN");
    if (token && *token)
        for (const char *c = token; *c; c++)
            if ((unsigned char)*c < ' ' || *c == 0x7f) return fs_errf(e, "HF_TOKEN contains a control character");

    if (dir && *dir) {
        P->dir = dir;
    } else {
        if (fs_pull_default_dir(repo, dir_buf, dir_cap, e)) return -1;
        P->dir = dir_buf;
    }
    if (make_dirs(P->dir, e)) return -1;

    /* Scratch files (response headers, curl's messages) live in a fresh
     * 0700 directory, not in the model dir. */
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    if (snprintf(P->tmp, sizeof P->tmp, "%s/fs-pull-XXXXXX", tmpdir) >= (int)sizeof P->tmp || !mkdtemp(P->tmp)) {
        P->tmp[0] = 0;
        return fs_errf(e, "cannot create a temporary directory in %s: %s", tmpdir, strerror(errno));
    }
    fs_path_join(P->hdr_path, sizeof P->hdr_path, P->tmp, "headers");
    fs_path_join(P->err_path, sizeof P->err_path, P->tmp, "stderr");
    if (token && *token && snprintf(P->auth, sizeof P->auth, "Authorization: Bearer %s\n", token) >= (int)sizeof P->auth)
        return fs_errf(e, "HF_TOKEN is too long");
    return 0;
}

int fs_pull(const char *repo, const char *dir, const fs_pull_opts *opts, fs_err *e) {
    pull P;
    char dir_buf[PATH_CAP];
    int rc = setup(&P, repo, dir, opts, dir_buf, sizeof dir_buf, e);
    /* config.json first: a wrong repo id or missing token fails here, before
     * anything big moves. */
    int absent = 0;
    fs_config cfg;
    if (!rc) rc = pull_file(&P, "config.json", 0, NULL, e);
    /* Fail fast: an architecture fs cannot run is reported before gigabytes
     * of its weights are downloaded. */
    if (!rc && fs_config_load(&cfg, P.dir, e)) rc = fs_err_prefix(e, "%s is not a model fs can run", repo);
    if (!rc) rc = pull_file(&P, "generation_config.json", 1, NULL, e);
    if (!rc) rc = pull_file(&P, "tokenizer.json", 0, NULL, e);
    if (!rc) rc = pull_file(&P, "tokenizer_config.json", 0, NULL, e);
    /* Newer repos keep the chat template in a file of its own. */
    if (!rc) rc = pull_file(&P, "chat_template.jinja", 1, NULL, e);
    if (!rc) rc = pull_file(&P, "model.safetensors", 1, &absent, e);
    if (!rc && absent) {
        rc = pull_file(&P, "model.safetensors.index.json", 1, &absent, e);
        if (!rc && absent)
            rc = fs_errf(e, "%s has neither model.safetensors nor model.safetensors.index.json (fs needs safetensors weights)",
                         repo);
        if (!rc) rc = pull_shards(&P, e);
    }
    /* Once more with generation_config.json in place (it adds EOS ids and
     * sampling defaults), exactly as `fs run` will read it. */
    if (!rc && fs_config_load(&cfg, P.dir, e)) rc = fs_err_prefix(e, "%s", P.dir);
    cleanup_tmp(&P);
    return rc;
}
