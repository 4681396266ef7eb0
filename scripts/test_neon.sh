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
# The kernel sets: the CPU backend picks sdot (dotprod) and smmla (i8mm)
# by what the OS reports (HWCAP), so the tests run on three emulated CPUs:
#   max          dotprod + i8mm: every test; test_cpu_kernels runs the
#                sets neon (smull), neon+dotprod (sdot) and
#                neon+dotprod+i8mm (smmla prefill), test_backend FS_ISA=
#                scalar, neon, dotprod and the default (i8mm)
#   cortex-a76   dotprod, no i8mm: test_cpu_kernels (sdot is the best set)
#   cortex-a53   neither: test_cpu_kernels (smull is the best set)
# and checks that each CPU's best set is the one it has. Then, where clang
# can cross-link, test_cpu_kernels built by clang with the extensions on
# for the whole build (as on Apple), under -cpu max.
#
# Takes about 5 minutes on 2 cores (build ~20 s; the tests under
# emulation).
# Docs: docs/testing.md, docs/cpu.md
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

TESTS="test_ops test_backend test_forward test_forward_golden"   # test_cpu_kernels: below
targets="$BUILD/tests/test_cpu_kernels"
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
        out=$(FS_BIN=$host_fs "$QEMU" -L "$SYSROOT" -cpu max "$BUILD/tests/$t" 2>&1) || fail=1
    else
        out=$("$QEMU" -L "$SYSROOT" -cpu max "$BUILD/tests/$t" 2>&1) || fail=1
    fi
    echo "$out" | grep "CHECK failed" || true
    # which kernel sets ran
    if [ "$t" = test_backend ]; then echo "$out" | grep -E "^cpu[^ ]*: (cpu:|skipped)" || true; fi
    echo "$out" | tail -n 1
done

# test_cpu_kernels on each emulated CPU: the sets it tested, and that the
# best one is what the CPU has. Legend: neon/neon = smull decode and GEMM
# tiles; neon+dotprod/dotprod = sdot decode and GEMM tiles;
# neon+dotprod+i8mm = sdot decode, smmla GEMM tile.
for cpu in max cortex-a76 cortex-a53; do
    case $cpu in
    max) want="kernels tested: scalar neon/neon neon+dotprod/dotprod neon+dotprod+i8mm$" ;;
    cortex-a76) want="kernels tested: scalar neon/neon neon+dotprod$" ;;
    *) want="kernels tested: scalar neon$" ;;
    esac
    out=$("$QEMU" -L "$SYSROOT" -cpu "$cpu" "$BUILD/tests/test_cpu_kernels" 2>&1) || fail=1
    echo "$out" | grep "CHECK failed" || true
    echo "test_neon: -cpu $cpu: $(echo "$out" | grep "^kernels tested:")"
    echo "$out" | grep -q "$want" || {
        echo "test_neon: -cpu $cpu: expected \"$want\""; fail=1; }
    echo "$out" | tail -n 1
done
# The build Apple's compilers make: clang with the extensions on for the
# whole program (-march=...+dotprod+i8mm; an M1's default CPU has dotprod),
# where the kernels are compiled without target attributes. Runs when
# clang can link an aarch64 program here; skipped (said so) otherwise.
CLANG=${CLANG:-clang}
tmpc=$(mktemp -d)
echo 'int main(void) { return 0; }' > "$tmpc/t.c"
if command -v "$CLANG" >/dev/null 2>&1 &&
   "$CLANG" --target=aarch64-linux-gnu -o "$tmpc/t" "$tmpc/t.c" >/dev/null 2>&1; then
    make -s -j2 BUILD="$BUILD-clang" CC="$CLANG --target=aarch64-linux-gnu -march=armv8.6-a+dotprod+i8mm" \
        "$BUILD-clang/tests/test_cpu_kernels" || fail=1
    out=$("$QEMU" -L "$SYSROOT" -cpu max "$BUILD-clang/tests/test_cpu_kernels" 2>&1) || fail=1
    echo "$out" | grep "CHECK failed" || true
    echo "test_neon: clang -march=armv8.6-a+dotprod+i8mm, -cpu max: $(echo "$out" | grep "^kernels tested:")"
    echo "$out" | grep -q "neon+dotprod+i8mm$" || { echo "test_neon: clang build: i8mm kernels not selected"; fail=1; }
    echo "$out" | tail -n 1
else
    echo "test_neon: clang build skipped ($CLANG cannot link an aarch64 program here)"
fi
rm -rf "$tmpc"
exit $fail
