/*
 * test_alloc_faults.c — `nirtrace detect` when an allocation fails, at
 * every place one can fail: what a worker at its address-space limit
 * (README "Batches") or a machine out of memory sees.
 *
 * The CLI runs with tests/malloc_faults.c preloaded (NIRTRACE_MALLOC_FAULTS,
 * set by `make test`). A first run of `detect -j 1 fast_slow.h5` counts the
 * allocations from main on (NT_COUNT_ALLOC): the parent's and its worker's.
 * The counter is copied at fork, so the worker numbers its allocations on
 * from where the parent was when it forked, and the largest count any
 * process reports is the number of places to try (malloc_faults.c). Then
 * one run per place N with NT_FAIL_ALLOC=N: every place when there are at
 * most MAX_RUNS, else the first EXHAUSTIVE exhaustively (argument parsing,
 * input expansion, the batch set-up, the start of the worker) and the rest
 * at a fixed stride, plus the last; the same places on every run.
 *
 * Each run must end the way README "Exit status" promises:
 *  - the parent never dies by a signal;
 *  - exit 0 only with the full table, the same 12 rows as without faults;
 *  - exit 1 with at least one "nirtrace: ..." line, every stderr line of
 *    that form, and either no rows or all of them (never a partial table);
 *  - a worker that dies inside a third-party library is acceptable: FFTW
 *    aborts when its allocator fails ("fftw: alloc.c:29: assertion failed"),
 *    HDF5 1.10 recurses until the stack overflows when its error stack
 *    cannot be allocated, or calls exit(-1) when it cannot initialise
 *    ("HDF5: infinite loop closing library"). The parent must then exit 1
 *    with a "nirtrace: SAMPLE: ..." line for the input ("reader crashed
 *    (SIGSEGV)", ...); only then is the dying library's own text tolerated
 *    on stderr;
 *  - HDF5's error stack ("HDF5-DIAG: ...") is tolerated in any run: when
 *    HDF5 cannot initialise, it prints it from the very call (H5Eget_auto2
 *    in nt_h5_open) that would have switched the printing off, and then
 *    initialises on the next call and reads the file.
 * A failure message names the place: the call stack of the failed
 * allocation (NT_FAIL_ALLOC_TRACE), to resolve with addr2line.
 *
 * Skipped under `make sanitize` (NIRTRACE_SANITIZE: ASan replaces malloc,
 * and the preloaded allocator never sees a call) and `make valgrind`
 * (NIRTRACE_VALGRIND: so does valgrind, and hundreds of runs under it
 * take too long).
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define EXHAUSTIVE 100u
#define MAX_RUNS 400u
/* Runs that may fail before the test stops listing them. */
#define MAX_FAILURES 20u
#define SAMPLE_ROWS 12

static void make_tmp_dir(void)
{
    tmp_dir_create("alloc");
}

TestSuite(alloc_faults, .init = make_tmp_dir, .fini = tmp_dir_remove, .timeout = 180);

/* The content of path as a new string ("" when it does not exist). */
static char *read_text(const char *path)
{
    char *text = slurp_or_null(path, NULL);
    return text != NULL ? text : strdup("");
}

typedef struct fault_run {
    int exited, code, signaled, sig;
    char *out, *err, *trace;
} fault_run;

static void fault_run_free(fault_run *r)
{
    free(r->out);
    free(r->err);
    free(r->trace);
}

/*
 * Runs `$NIRTRACE_BIN detect -j 1 SAMPLE` with the fault library preloaded
 * and NT_FAIL_ALLOC=fail_at (0: none), counting into count_path when it is
 * not NULL. The environment is ours plus those variables.
 */
static fault_run run_detect(const char *sample, unsigned long fail_at, const char *count_path)
{
    const char *bin = getenv("NIRTRACE_BIN");
    const char *lib = getenv("NIRTRACE_MALLOC_FAULTS");
    cr_assert(bin != NULL && bin[0] != '\0', "NIRTRACE_BIN is not set: run the tests with make test");
    cr_assert(lib != NULL && access(lib, R_OK) == 0,
              "NIRTRACE_MALLOC_FAULTS is not set: run the tests with make test");

    char out_path[300], err_path[300], trace_path[300];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", tmp_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmp_dir);
    snprintf(trace_path, sizeof trace_path, "%s/trace.txt", tmp_dir);
    unlink(trace_path);

    static char preload[600], fail[64], count[400], trace[400];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
    snprintf(fail, sizeof fail, "NT_FAIL_ALLOC=%lu", fail_at);
    snprintf(count, sizeof count, "NT_COUNT_ALLOC=%s", count_path != NULL ? count_path : "");
    snprintf(trace, sizeof trace, "NT_FAIL_ALLOC_TRACE=%s", trace_path);
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 5, sizeof *env);
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
            strncmp(environ[i], "NT_FAIL_ALLOC", 13) != 0 &&
            strncmp(environ[i], "NT_COUNT_ALLOC=", 15) != 0)
            env[k++] = environ[i];
    env[k++] = preload;
    env[k++] = fail;
    env[k++] = count;
    env[k++] = trace;

    char *argv[] = {(char *)bin, "detect", "-j", "1", (char *)sample, NULL};
    child_end e = spawn_wait(bin, argv, env, "/dev/null", out_path, O_WRONLY | O_CREAT | O_TRUNC,
                             err_path);
    free(env);
    fault_run r = {e.exited, e.code, e.signaled, e.sig, NULL, NULL, NULL};
    r.out = read_text(out_path);
    r.err = read_text(err_path);
    r.trace = read_text(trace_path);
    return r;
}

/* The largest count in a NT_COUNT_ALLOC file ("PID COUNT" lines); *lines
 * gets the number of processes that reported. */
static unsigned long max_count(const char *path, size_t *lines)
{
    char *text = read_text(path);
    unsigned long best = 0;
    *lines = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        unsigned long pid, n;
        if (sscanf(line, "%lu %lu", &pid, &n) == 2) {
            (*lines)++;
            if (n > best)
                best = n;
        }
    }
    free(text);
    return best;
}

/* A line of the error stack HDF5 prints when it cannot initialise:
 * "HDF5-DIAG: Error detected in ...", then "  #003: ..." and indented
 * "major:" / "minor:" lines. */
static int is_hdf5_diag(const char *line)
{
    if (strncmp(line, "HDF5-DIAG: ", 11) == 0)
        return 1;
    if (line[0] != ' ')
        return 0;
    while (*line == ' ')
        line++;
    return line[0] == '#' || strncmp(line, "major: ", 7) == 0 || strncmp(line, "minor: ", 7) == 0;
}

/* Number of lines of text other than HDF5's error stack, and of those
 * starting with prefix. */
static size_t count_lines(const char *text, const char *prefix, size_t *matching)
{
    size_t n = 0, plen = strlen(prefix);
    *matching = 0;
    for (const char *line = text; *line != '\0';) {
        n += !is_hdf5_diag(line);
        if (strncmp(line, prefix, plen) == 0)
            (*matching)++;
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return n;
}

/* The part of a table after its header line. */
static const char *rows_part(const char *table)
{
    const char *nl = strchr(table, '\n');
    return nl != NULL ? nl + 1 : table + strlen(table);
}

/* What became of the runs, for the log. */
typedef struct tally {
    size_t ok, refused, contained;
} tally;

/* A failed check of one run: reported (the test goes on to the next
 * place, so that one run lists every place that misbehaves) and the run
 * counted as failed. */
#define CHECK(cond, ...)                  \
    do {                                  \
        if (!(cond)) {                    \
            cr_expect(0, __VA_ARGS__);    \
            return 0;                     \
        }                                 \
    } while (0)

/* Checks one run against the promises listed at the top; 1 when it keeps
 * them. */
static int check_run(unsigned long n, const fault_run *r, const char *expected_out,
                     const char *input_prefix, tally *t)
{
    CHECK(!r->signaled, "allocation %lu: nirtrace died by signal %d; stderr:\n%s\n%s", n, r->sig,
          r->err, r->trace);
    CHECK(r->exited && (r->code == 0 || r->code == 1),
          "allocation %lu: exit status %d, expected 0 or 1; stderr:\n%s\n%s", n, r->code, r->err,
          r->trace);
    size_t ours, lines = count_lines(r->err, "nirtrace: ", &ours);
    if (r->code == 0) {
        CHECK(strcmp(r->out, expected_out) == 0,
              "allocation %lu: exit 0 without the full table:\n%s\nstderr:\n%s\n%s", n, r->out,
              r->err, r->trace);
        CHECK(lines == ours, "allocation %lu: exit 0 with foreign stderr lines:\n%s\n%s", n,
              r->err, r->trace);
        t->ok++;
        return 1;
    }
    const char *rows = rows_part(r->out);
    CHECK(rows[0] == '\0' || strcmp(r->out, expected_out) == 0,
          "allocation %lu: exit 1 with a partial table:\n%s\nstderr:\n%s\n%s", n, r->out, r->err,
          r->trace);
    CHECK(ours >= 1, "allocation %lu: exit 1 without a 'nirtrace: ' message; stderr:\n%s\n%s", n,
          r->err, r->trace);
    /* Foreign lines are the last words of a third-party library in a
     * worker it took down: only with the input's own failure line. */
    CHECK(lines == ours || strstr(r->err, input_prefix) != NULL,
          "allocation %lu: stderr lines not of the form 'nirtrace: ...', and no failure line "
          "for the input:\n%s\n%s", n, r->err, r->trace);
    if (lines != ours || strstr(r->err, ": reader crashed (") != NULL)
        t->contained++;
    else
        t->refused++;
    return 1;
}

Test(alloc_faults, every_failed_allocation_ends_cleanly)
{
    if (getenv("NIRTRACE_SANITIZE") != NULL || getenv("NIRTRACE_VALGRIND") != NULL)
        cr_skip_test("the sanitizer or valgrind replaces malloc: nothing to inject into");
    const char *dir = getenv("NIRTRACE_SAMPLES");
    cr_assert(dir != NULL && dir[0] != '\0',
              "NIRTRACE_SAMPLES is not set: run the tests with make test");
    char sample[512], count_path[300];
    snprintf(sample, sizeof sample, "%s/fast_slow.h5", dir);
    snprintf(count_path, sizeof count_path, "%s/count.txt", tmp_dir);

    fault_run clean = run_detect(sample, 0, count_path);
    cr_assert(clean.exited && clean.code == 0, "the run without faults failed (%d):\n%s",
              clean.code, clean.err);
    size_t ours, rows = count_lines(rows_part(clean.out), "", &ours);
    cr_assert_eq(rows, SAMPLE_ROWS, "the run without faults has %zu rows:\n%s", rows, clean.out);
    size_t processes;
    unsigned long sites = max_count(count_path, &processes);
    cr_assert_geq(processes, 2, "expected the parent and the worker to report their counts, got "
                                "%zu (is _exit interposed?)", processes);
    cr_assert_gt(sites, EXHAUSTIVE, "only %lu allocations counted", sites);

    unsigned long stride = 1;
    if (sites > MAX_RUNS)
        stride = (sites - EXHAUSTIVE + (MAX_RUNS - EXHAUSTIVE) - 1) / (MAX_RUNS - EXHAUSTIVE);
    char input_prefix[600];
    snprintf(input_prefix, sizeof input_prefix, "nirtrace: %s: ", sample);
    tally t = {0, 0, 0};
    size_t runs = 0, failed = 0;
    for (unsigned long n = 1; n <= sites && failed < MAX_FAILURES;) {
        fault_run r = run_detect(sample, n, NULL);
        failed += !check_run(n, &r, clean.out, input_prefix, &t);
        fault_run_free(&r);
        runs++;
        if (n < EXHAUSTIVE)
            n++;
        else if (n < sites && n + stride > sites)
            n = sites;
        else
            n += stride;
    }
    cr_log_info("%lu allocations (parent and worker), %zu tried (stride %lu past the first %u): "
                "%zu completed, %zu refused with a message, %zu worker deaths contained, "
                "%zu failed",
                sites, runs, stride, EXHAUSTIVE, t.ok, t.refused, t.contained, failed);
    cr_assert_eq(failed, 0, "%zu of %zu runs broke a promise%s (above)", failed, runs,
                 failed == MAX_FAILURES ? ", the test stopped there" : "");
    fault_run_free(&clean);
}
