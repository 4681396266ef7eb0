/* test_sha256.c - SHA-256 against the FIPS 180-4 / NIST test vectors, plus
 * checks that streaming in odd-sized pieces gives the same digest and that
 * fs_sha256_file agrees with the in-memory hash.
 *
 * Docs: docs/pull.md
 */
#include <stdlib.h>
#include <unistd.h>

#include "sha256.h"
#include "test.h"

static const char *hex_of(const void *data, size_t len) {
    static char hex[65];
    uint8_t d[32];
    fs_sha256(data, len, d);
    fs_sha256_hex(d, hex);
    return hex;
}

int main(void) {
    CHECK_STR(hex_of("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_STR(hex_of("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_EQ_INT(strlen(m448) * 8, 448);
    CHECK_STR(hex_of(m448, strlen(m448)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    CHECK_STR(hex_of(m896, strlen(m896)), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* A million 'a's, fed in pieces of awkward sizes so the partial-block
     * path in fs_sha256_update is exercised. */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    CHECK_STR(hex_of(a, n), want);
    fs_sha256_ctx s;
    fs_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t take = step < n - off ? step : n - off;
        fs_sha256_update(&s, a + off, take);
        off += take;
        step = step * 7 % 131 + 1;
    }
    uint8_t d[32];
    char hex[65];
    fs_sha256_final(&s, d);
    fs_sha256_hex(d, hex);
    CHECK_STR(hex, want);

    /* Lengths around the padding boundary (55, 56, 63, 64, 65 bytes): the
     * streamed digest must match the one-shot digest byte by byte split. */
    for (size_t len = 50; len <= 130; len++) {
        uint8_t one[32], two[32];
        fs_sha256(a, len, one);
        fs_sha256_init(&s);
        fs_sha256_update(&s, a, len / 2);
        fs_sha256_update(&s, a + len / 2, len - len / 2);
        fs_sha256_final(&s, two);
        CHECKF(memcmp(one, two, 32) == 0, "len %zu", len);
    }
    /* 55 'a's still fit the length in the same block; 56 do not. */
    CHECK_STR(hex_of(a, 55), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    CHECK_STR(hex_of(a, 56), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");

    /* The file path. */
    char path[] = "/tmp/fs_test_sha256_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, a, n) == (ssize_t)n);
        close(fd);
        fs_err e = {{0}};
        CHECK(fs_sha256_file(path, d, &e) == 0);
        fs_sha256_hex(d, hex);
        CHECK_STR(hex, want);
        unlink(path);
        CHECK(fs_sha256_file(path, d, &e) == -1);
        CHECK(strstr(e.msg, "No such file") != NULL);
    }
    free(a);
    return TEST_SUMMARY();
}
