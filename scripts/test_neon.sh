#!/bin/sh
# test_neon.sh - build fs's library and op tests for aarch64 and run them
# under qemu-user, so the NEON kernels (src/cpu/*_neon.c, quant_cpu.c,
# vec_cpu.c, add_cpu.c) are tested on an x86 machine.
#
#   sh scripts/test_neon.sh            (from the repository root)
#
# Needs Debian's cross compiler and emulator:
#   apt-get install -y gcc-aarch64-linux-gnu qemu-user
# Skips (exit 0, with a message) when either is missing. Builds into
# build/arm. The test binaries are dynamic aarch64 executables; qemu finds
# their libc in the cross sysroot (-L, default /usr/aarch64-linux-gnu).
# test_forward_golden runs too when a host fs binary exists ($FS_BIN, else
# build/fs or ./fs; it only runs `fs mkmodel`, whose output does not
# depend on the machine).
#
# Takes about 45 s on 2 cores (build ~10 s; the op tests ~35 s under
# emulation).
# Docs: docs/testing.md
set -e
CROSS_CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}
SYSROOT=${SYSROOT:-/usr/aarch64-linux-gnu}
BUILD=${BUILD_ARM:-build/arm}

if ! command -v "$CROSS_CC" >/dev/null 2>&1; then
    echo "test_neon: skipped: $CROSS_CC not found (apt-get install -y gcc-aarch64-linux-gnu qemu-user)"
    exit 0
fi
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "test_neon: skipped: $QEMU not found (apt-get install -y qemu-user)"
    exit 0
fi

TESTS="test_ops test_backend test_cpu_kernels test_forward test_forward_golden"
targets=""
for t in $TESTS; do targets="$targets $BUILD/tests/$t"; done
make -s -j2 BUILD="$BUILD" CC="$CROSS_CC" $targets

host_fs=${FS_BIN:-}
for f in build/fs fs; do
    if [ -x "$f" ] && [ -z "$host_fs" ]; then host_fs=$f; fi
done

fail=0
for t in $TESTS; do
    if [ "$t" = test_forward_golden ]; then
        if [ -z "$host_fs" ]; then
            echo "test_neon: $t skipped (no host fs binary for mkmodel; run make first)"
            continue
        fi
        out=$(FS_BIN=$host_fs "$QEMU" -L "$SYSROOT" "$BUILD/tests/$t" 2>&1) || fail=1
    else
        out=$("$QEMU" -L "$SYSROOT" "$BUILD/tests/$t" 2>&1) || fail=1
    fi
    echo "$out" | grep "CHECK failed" || true
    echo "$out" | tail -n 1
done
# the output must say NEON was tested, not just the scalar fallback
"$QEMU" -L "$SYSROOT" "$BUILD/tests/test_cpu_kernels" | grep -q "kernels tested: scalar neon" || {
    echo "test_neon: NEON kernels were not selected"; fail=1; }
exit $fail
