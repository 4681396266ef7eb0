/* test.h - a tiny test harness. Each tests/test_*.c is one program; it ends
 * with TEST_SUMMARY(), which prints "N passed, M failed" and returns non-zero
 * if anything failed. tests/run.sh runs them all.
 *
 * Docs: docs/testing.md
 */
#ifndef FS_TEST_H
#define FS_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond) do { \
    if (cond) test_passed++; \
    else { test_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECKF(cond, ...) do { \
    if (cond) test_passed++; \
    else { test_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    CHECKF(_a == _b, "%s = %lld, %s = %lld", #a, _a, #b, _b); } while (0)

#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
    CHECKF(_a && _b && strcmp(_a, _b) == 0, "\"%s\" != \"%s\"", _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)

#define CHECK_NEAR(a, b, tol) do { double _a = (a), _b = (b); \
    CHECKF(fabs(_a - _b) <= (tol), "%s = %.9g, %s = %.9g, tol %.3g", #a, _a, #b, _b, (double)(tol)); } while (0)

#define TEST_SUMMARY() (printf("%s: %d passed, %d failed\n", __FILE__, test_passed, test_failed), test_failed != 0)

#endif
