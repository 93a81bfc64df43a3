# nirtrace — one plain GNU Makefile. Objects go out of tree, under $(BUILD).
#
#   make            build the library and the CLI (build/nirtrace)
#   make demo       run `nirtrace detect` on the bundled samples
#   make check      build and run every test (unit, CLI, golden regression,
#                   cross-format equivalence)
#   make sanitize   the same tests under ASan + UBSan (build/sanitize)
#   make valgrind   the unit and CLI tests under valgrind memcheck
#   make bench      the benchmark against the Python peer and the I/O floor
#   make accuracy   detection accuracy on recordings of known truth, vs the peer
#   make test-slurm the Slurm job-array scripts on a one-node local cluster
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
LIB_PCS := fftw3 $(HDF5_PC) sndfile

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wundef -Wvla -Werror
# OPT and SAN are ours (make sanitize sets SAN); CFLAGS, CPPFLAGS, LDFLAGS
# stay the user's to add to.
OPT      ?= -O2 -g
SAN      ?=
ALL_CPPFLAGS := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc -MMD -MP $(CPPFLAGS)
ALL_CFLAGS    = -std=c11 -pthread $(WARN) $(OPT) $(SAN) $(shell pkg-config --cflags $(LIB_PCS)) $(CFLAGS)
ALL_LDFLAGS   = -pthread $(SAN) $(LDFLAGS)
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

.PHONY: all demo check test golden-check test-formats pydeps bench accuracy test-slurm sanitize valgrind samples golden clean help

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(TESTBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) $^ $(TEST_LIBS) $(LDLIBS) -o $@

demo: $(BIN)
	$(BIN) detect $(SAMPLES)

# The fault-injection library of the containment tests (tests/faults.c):
# plain flags, no sanitizer (it is preloaded into the CLI).
$(BUILD)/libntfaults.so: tests/faults.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g -shared -fPIC $(WARN) -Wno-missing-prototypes \
	    $(shell pkg-config --cflags $(HDF5_PC)) $< -ldl -o $@

# The unit and CLI tests find the CLI through NIRTRACE_BIN, the samples
# through NIRTRACE_SAMPLES, the fault library through NIRTRACE_FAULTS.
TEST_ENV = NIRTRACE_BIN=$(abspath $(BIN)) NIRTRACE_SAMPLES=$(abspath samples) \
           NIRTRACE_FAULTS=$(abspath $(BUILD)/libntfaults.so) \
           NIRTRACE_MALLOC_FAULTS=$(abspath $(BUILD)/libntmallocfaults.so)
test: $(TESTBIN) $(BIN) $(BUILD)/libntfaults.so $(BUILD)/libntmallocfaults.so
	$(TEST_ENV) $(TESTBIN) $(TEST_ARGS)

golden-check: $(BIN)
	@mkdir -p $(BUILD)
	$(BIN) detect -q $(SAMPLES) -o $(BUILD)/samples.csv
	$(BIN) compare --rtol 1e-4 --atol 1e-9 samples/expected.csv $(BUILD)/samples.csv
	@echo "golden regression: samples/expected.csv matches"

# Python (numpy, h5py, soundfile) writes the other formats independently of
# nirtrace; installed on first use.
pydeps:
	@$(PYTHON) -c "import numpy, scipy, h5py, soundfile" 2>/dev/null || scripts/install-deps --python

test-formats: $(BIN) pydeps
	$(PYTHON) tests/test_formats.py $(abspath $(BIN)) samples/fast_slow.h5

check: test golden-check test-formats

# NIRTRACE_SANITIZE tells the tests that ASan owns malloc: the
# allocation-failure test (tests/test_alloc_faults.c) skips.
sanitize:
	NIRTRACE_SANITIZE=1 $(MAKE) BUILD=build/sanitize OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

# Criterion runs every test in a child process, whose valgrind errors do not
# reach the exit status: each process logs to its own file (-q: only
# errors), and any non-empty log fails the target. Programs the tests start
# that are not ours (script(1), python3, sh) are not traced.
valgrind: $(TESTBIN) $(BIN) $(BUILD)/libntfaults.so $(BUILD)/libntmallocfaults.so
	@rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	$(TEST_ENV) NIRTRACE_VALGRIND=1 \
	    valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
	    --trace-children=yes --trace-children-skip='/usr/bin/script,/usr/bin/python3*,/bin/sh,/usr/bin/sh' \
	    --log-file=$(BUILD)/valgrind/%p.log $(TESTBIN) -j1
	@bad=$$(find $(BUILD)/valgrind -name '*.log' -size +0c); \
	if [ -n "$$bad" ]; then cat $$bad; echo "valgrind: errors in $$(echo $$bad | wc -w) process(es)"; exit 1; fi; \
	echo "valgrind: $$(ls $(BUILD)/valgrind | wc -l) processes, no errors, no definite leaks"

# The benchmark (issue: performance): nirtrace, the Python peer and the
# H5Dread floor, side by side. A report, not a test.
$(BUILD)/h5floor: scripts/h5floor.c
	@mkdir -p $(@D)
	$(CC) -O2 -std=c11 $(WARN) $(shell pkg-config --cflags $(HDF5_PC)) $< $(shell pkg-config --libs $(HDF5_PC)) -o $@

bench: $(BIN) $(BUILD)/h5floor pydeps
	@command -v /usr/bin/time >/dev/null || scripts/install-deps --bench
	$(PYTHON) scripts/bench --nirtrace $(abspath $(BIN)) --floor $(abspath $(BUILD)/h5floor) $(BENCH_ARGS)

# The detection-accuracy benchmark: nirtrace and the Python peer on
# generated recordings with known truth, then the best any detector could
# score on the same trials (scripts/bound). A report, not a test.
accuracy: $(BIN) pydeps
	$(PYTHON) scripts/accuracy --nirtrace $(abspath $(BIN)) $(ACCURACY_ARGS)
	$(PYTHON) scripts/bound $(BOUND_ARGS)

# The Slurm scripts end to end on a single-node cluster on this machine
# (Debian 12, root: installs slurm-wlm and munge on first use).
test-slurm: $(BIN)
	scripts/slurm/test-slurm $(abspath $(BIN))

samples:
	scripts/install-deps --python
	$(PYTHON) scripts/gen-samples samples

golden: $(BIN)
	$(BIN) detect -q $(SAMPLES) -o samples/expected.csv

# ------------------------------------------------------- allocation faults
# The allocation-failure library of tests/test_alloc_faults.c
# (tests/malloc_faults.c): plain flags, no sanitizer (it is preloaded into
# the CLI, and replaces malloc).
$(BUILD)/libntmallocfaults.so: tests/malloc_faults.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g -shared -fPIC $(WARN) -Wno-missing-prototypes $< -ldl -o $@

# ------------------------------------------------------------------ fuzz
# libFuzzer harnesses (tests/fuzz/README.md), built with clang, ASan and
# UBSan over the library sources (not the CLI) in $(BUILD)/fuzz.
#   make fuzz                   build them
#   make fuzz-run FUZZ_TIME=60  run each for FUZZ_TIME seconds on one core
#   make fuzz-regress           replay tests/fuzz/regressions/
#   make fuzz-corpus            rewrite tests/fuzz/corpus (python3-h5py, -soundfile)
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_DIR   := $(BUILD)/fuzz
FUZZ_NAMES := hdf5 sndfile text options
FUZZ_BINS  := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_OBJ   := $(LIB_SRC:src/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_FLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_ENV    = ASAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1:allocator_may_return_null=1 \
              LSAN_OPTIONS=suppressions=$(abspath tests/fuzz/lsan.supp) \
              UBSAN_OPTIONS=print_stacktrace=1
FUZZ_ARGS  ?= -timeout=25 -rss_limit_mb=2560 -malloc_limit_mb=1024

.PHONY: fuzz fuzz-deps fuzz-run fuzz-regress fuzz-corpus

# clang and its libFuzzer runtime (libclang-rt-14-dev on Debian 12).
fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null && \
	    test -e "$$($(FUZZ_CC) -print-runtime-dir)/libclang_rt.fuzzer-x86_64.a" || \
	    scripts/install-deps --fuzz

$(FUZZ_DIR)/obj/%.o: src/%.c | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	    $(shell pkg-config --cflags $(LIB_PCS)) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_OBJ) | fuzz-deps
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer \
	    $(shell pkg-config --cflags $(LIB_PCS)) $< $(FUZZ_OBJ) $(LDLIBS) -o $@

# Listed in an explicit rule so that make keeps them (not intermediate).
$(FUZZ_BINS): $(FUZZ_OBJ)
-include $(FUZZ_OBJ:.o=.d)

fuzz: $(FUZZ_BINS)

# Each harness in turn, one job, going on after a crash (saved under
# $(FUZZ_DIR)/artifacts/NAME/); fails when any artifact was written.
fuzz-run: $(FUZZ_BINS)
	@for f in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_DIR)/work/$$f $(FUZZ_DIR)/artifacts/$$f && \
	    echo "fuzz_$$f: $(FUZZ_TIME) s" && \
	    $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$f -max_total_time=$(FUZZ_TIME) $(FUZZ_ARGS) \
	        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
	        -artifact_prefix=$(abspath $(FUZZ_DIR))/artifacts/$$f/ \
	        $(FUZZ_DIR)/work/$$f tests/fuzz/corpus/$$f 2>$(FUZZ_DIR)/fuzz_$$f.log; \
	    grep -E '^#[0-9]+: cov' $(FUZZ_DIR)/fuzz_$$f.log | tail -n 1; \
	done
	@n=$$(find $(FUZZ_DIR)/artifacts -type f | wc -l); \
	if [ $$n -gt 0 ]; then find $(FUZZ_DIR)/artifacts -type f; \
	    echo "fuzz: $$n artifact(s): replay with $(FUZZ_DIR)/fuzz_NAME FILE"; exit 1; fi

# Every saved crash, replayed once per harness (tests/fuzz/README.md says
# which are HDF5's own and still crash).
fuzz-regress: $(FUZZ_BINS)
	@status=0; for f in $(FUZZ_NAMES); do \
	    for r in tests/fuzz/regressions/$$f/*; do \
	        [ -f "$$r" ] || continue; \
	        if $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$f $(FUZZ_ARGS) $$r >$(FUZZ_DIR)/regress.log 2>&1; \
	        then echo "ok      $$r"; else echo "FAILED  $$r"; status=1; fi; \
	    done; \
	done; exit $$status

fuzz-corpus:
	@$(PYTHON) -c "import h5py, soundfile" 2>/dev/null || scripts/install-deps --fuzz
	$(PYTHON) tests/fuzz/make-corpus tests/fuzz/corpus

clean:
	rm -rf build

help:
	@sed -n '2,12p' Makefile

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
