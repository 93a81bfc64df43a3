# nirtrace — one plain GNU Makefile. Objects go out of tree, under $(BUILD).
#
#   make            build the library and the CLI (build/nirtrace)
#   make demo       run `nirtrace detect` on the bundled samples
#   make check      build and run every test (unit, CLI, golden regression)
#   make sanitize   the same tests under ASan + UBSan (build/sanitize)
#   make valgrind   the unit and CLI tests under valgrind memcheck
#   make samples    regenerate samples/ (needs python3-numpy/h5py)
#   make golden     rewrite samples/expected.csv from the current build
#
# Missing build dependencies are installed by scripts/install-deps (Debian).

BUILD   ?= build
CC      ?= cc
PYTHON  ?= /usr/bin/python3

# Install missing -dev packages before asking pkg-config for flags. Skipped
# for targets that build nothing.
NO_DEPS_GOALS := clean help
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
  ifneq ($(shell pkg-config --exists fftw3 sndfile criterion 2>/dev/null && \
                 (pkg-config --exists hdf5-serial || pkg-config --exists hdf5) && echo ok),ok)
    $(info nirtrace: installing missing build dependencies with scripts/install-deps)
    ifneq ($(shell scripts/install-deps >&2 && echo ok),ok)
      $(error scripts/install-deps failed: install pkg-config libfftw3-dev libhdf5-dev libsndfile1-dev libcriterion-dev)
    endif
  endif
endif

HDF5_PC := $(shell pkg-config --exists hdf5-serial 2>/dev/null && echo hdf5-serial || echo hdf5)
LIB_PCS := fftw3 $(HDF5_PC)

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wundef -Wvla -Werror
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc -MMD -MP
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) $(shell pkg-config --cflags $(LIB_PCS))
LDLIBS   += $(shell pkg-config --libs $(LIB_PCS)) -lm
TEST_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs criterion 2>/dev/null)

LIB_SRC  := $(wildcard src/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

LIB      := $(BUILD)/libnirtrace.a
BIN      := $(BUILD)/nirtrace
TESTBIN  := $(BUILD)/nirtrace-tests
SAMPLES  := $(sort $(wildcard samples/*.h5))

.PHONY: all demo check test golden-check sanitize valgrind samples golden clean help

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(TESTBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(TEST_LIBS) $(LDLIBS) -o $@

demo: $(BIN)
	$(BIN) detect $(SAMPLES)

# The unit and CLI tests find the CLI through NIRTRACE_BIN, the samples
# through NIRTRACE_SAMPLES.
test: $(TESTBIN) $(BIN)
	NIRTRACE_BIN=$(abspath $(BIN)) NIRTRACE_SAMPLES=$(abspath samples) $(TESTBIN) $(TEST_ARGS)

golden-check: $(BIN)
	@mkdir -p $(BUILD)
	$(BIN) detect -q $(SAMPLES) -o $(BUILD)/samples.csv
	$(BIN) compare --rtol 1e-4 --atol 1e-9 samples/expected.csv $(BUILD)/samples.csv
	@echo "golden regression: samples/expected.csv matches"

check: test golden-check

sanitize:
	$(MAKE) BUILD=build/sanitize CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" check

valgrind: $(TESTBIN) $(BIN)
	NIRTRACE_BIN=$(abspath $(BIN)) NIRTRACE_SAMPLES=$(abspath samples) NIRTRACE_VALGRIND=1 \
	    valgrind -q --error-exitcode=99 --leak-check=full --trace-children=yes \
	    --child-silent-after-fork=yes $(TESTBIN) -j1

samples:
	scripts/install-deps --python
	$(PYTHON) scripts/gen-samples samples

golden: $(BIN)
	$(BIN) detect -q $(SAMPLES) -o samples/expected.csv

clean:
	rm -rf build

help:
	@sed -n '2,12p' Makefile

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
