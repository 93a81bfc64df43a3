/*
 * test_corrupt.c — damaged copies of a real recording, all in one batch run
 * of the CLI: the containment promise of README "Batches" checked on the
 * damage a disk, a network copy or a crashed rig actually does.
 *
 * From samples/fast_slow.h5 (NIRTRACE_SAMPLES) the test writes
 *  - truncated copies at 40 lengths: inside the superblock, at and inside
 *    each object header, and spread over the rest of the file;
 *  - 60 copies with 1-4 bytes changed at deterministic places: in the
 *    superblock, in the first 4 KB, and in and around each object header.
 * The object headers are found the way HDF5 finds them in this file
 * (superblock version 0, as h5py writes by default): the root group's
 * address in the superblock, then the symbol-table entries of every group
 * node ("SNOD"). If the sample ever changes layout, the parse finds fewer
 * headers and the copies fall back to places spread over the first 4 KB.
 *
 * Then `nirtrace detect -q -j 2 --timeout 20 VARIANTS... INTACT` runs once,
 * and the test checks what a user of the table relies on:
 *  - the exit status is 0 or 1, never a signal;
 *  - every variant either fails with exactly one stderr line
 *    "nirtrace: VARIANT: ..." and no row, or succeeds with rows and no
 *    message (a changed byte may land where HDF5 does not look); a truncated
 *    copy always fails (HDF5 checks the end-of-file address);
 *  - stderr holds nothing else, in particular no AddressSanitizer or
 *    UndefinedBehaviorSanitizer report ("runtime error") from our code;
 *  - the intact sample's 12 rows are there, equal to a clean run's.
 *
 * Under `make sanitize` the workers run with
 * ASAN_OPTIONS=handle_segv=0:detect_leaks=0: HDF5 1.10 itself crashes and
 * leaks on some damaged files, and that is what the worker processes are
 * for. With ASan's SEGV handler a crash inside HDF5 would be an ASan report
 * (failing the test for a crash the CLI contains as designed); without it
 * the worker dies of SIGSEGV and the parent reports "reader crashed". A
 * memory error that ASan detects (a heap overflow in our code) is still
 * reported, and fails the test. Outside ASan builds the variable is
 * ignored.
 *
 * Skipped under `make valgrind` (NIRTRACE_VALGRIND): valgrind follows the
 * hundred workers (minutes, not a second), and reports HDF5's own invalid
 * reads of damaged files inside them, which are what the workers contain,
 * not errors of nirtrace; the ASan run covers our code.
 */
#include <criterion/criterion.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define N_TRUNCATED 40
#define N_FLIPPED 60
#define N_VARIANTS (N_TRUNCATED + N_FLIPPED)
#define MAX_HEADERS 64
#define SAMPLE_ROWS 12

/* ------------------------------------------------------------- fixtures */

static void make_tmp_dir(void)
{
    tmp_dir_create("corrupt");
}

TestSuite(corrupt, .init = make_tmp_dir, .fini = tmp_dir_remove, .timeout = 120);

/* ----------------------------------------------------- the file's layout */

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void add_header(size_t *heads, size_t *n, uint64_t addr, size_t size)
{
    if (addr == 0 || addr >= size || *n == MAX_HEADERS)
        return;
    for (size_t i = 0; i < *n; i++)
        if (heads[i] == addr)
            return;
    heads[(*n)++] = (size_t)addr;
}

/*
 * Addresses of the object headers of a version-0 superblock file with
 * 8-byte offsets: the root group's (symbol-table entry at byte 56 of the
 * superblock, object header address at 64), then every entry of every
 * symbol-table node: "SNOD", version, reserved, a 2-byte count, then
 * 40-byte entries whose second 8 bytes are the object header address.
 * Returns how many were found (0 for another layout).
 */
static size_t find_object_headers(const unsigned char *d, size_t size, size_t *heads)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    if (size < 96 || memcmp(d, sig, 8) != 0 || d[8] != 0 || d[13] != 8)
        return 0;
    add_header(heads, &n, le64(d + 64), size);
    for (size_t at = 0; at + 8 <= size; at++) {
        if (memcmp(d + at, "SNOD", 4) != 0)
            continue;
        size_t count = (size_t)d[at + 6] | (size_t)d[at + 7] << 8;
        for (size_t k = 0; k < count && at + 8 + 40 * (k + 1) <= size; k++)
            add_header(heads, &n, le64(d + at + 8 + 40 * k + 8), size);
    }
    return n;
}

/* ------------------------------------------------------------- variants */

typedef struct variant {
    char path[256];
    int truncated;
} variant;

/* A deterministic pseudo-random sequence (64-bit LCG, Knuth's MMIX
 * constants): the same copies on every run and every machine. */
static uint32_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(*state >> 33);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Writes the N_VARIANTS damaged copies of d [size] into tmp_dir. */
static void write_variants(const unsigned char *d, size_t size, variant *v)
{
    size_t heads[MAX_HEADERS];
    size_t n_heads = find_object_headers(d, size, heads);
    cr_assert(size > 8192, "the sample is too small for this test (%zu bytes)", size);

    /* Truncation lengths: the superblock, each object header (its first
     * byte, inside its prefix, a little further), then evenly spread. */
    size_t lengths[N_TRUNCATED];
    size_t n_len = 0;
    static const size_t fixed[] = {1, 7, 8, 9, 24, 56, 64, 72, 95, 96};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        lengths[n_len++] = fixed[i];
    for (size_t h = 0; h < n_heads && n_len + 3 <= N_TRUNCATED / 2 + 10; h++) {
        lengths[n_len++] = heads[h];
        lengths[n_len++] = heads[h] + 12;
        lengths[n_len++] = heads[h] + 40;
    }
    size_t spread = N_TRUNCATED - n_len;
    for (size_t k = 1; k <= spread; k++)
        lengths[n_len++] = size * k / (spread + 1);
    qsort(lengths, n_len, sizeof *lengths, cmp_size);
    for (size_t i = 0; i < N_TRUNCATED; i++) {
        /* Keep every length distinct and inside the file. */
        size_t len = lengths[i];
        if (i > 0 && len <= lengths[i - 1])
            len = lengths[i - 1] + 1;
        if (len >= size)
            len = size - (N_TRUNCATED - i);
        lengths[i] = len;
        snprintf(v[i].path, sizeof v[i].path, "%s/trunc-%05zu.h5", tmp_dir, len);
        v[i].truncated = 1;
        write_file(v[i].path, d, len);
    }

    /* Changed bytes: 1-4 per copy, each an XOR with a non-zero value (a
     * single bit half the time), at a place chosen in turn from the
     * superblock, the first 4 KB and the neighbourhood of an object header
     * (from 16 bytes before it to 256 after). */
    unsigned char *copy = malloc(size);
    cr_assert_not_null(copy);
    uint64_t state = 20261124;
    for (size_t i = 0; i < N_FLIPPED; i++) {
        memcpy(copy, d, size);
        size_t n_bytes = 1 + i % 4, first = 0;
        for (size_t b = 0; b < n_bytes; b++) {
            size_t at;
            switch ((i + b) % 3) {
            case 0: at = next_random(&state) % 96; break;
            case 1: at = next_random(&state) % 4096; break;
            default:
                if (n_heads == 0) {
                    at = next_random(&state) % 4096;
                } else {
                    size_t h = heads[(i / 3) % n_heads];
                    at = h - (h >= 16 ? 16 : h) + next_random(&state) % 272;
                }
                break;
            }
            if (at >= size)
                at = size - 1;
            unsigned r = next_random(&state);
            unsigned char x = (r & 1) ? (unsigned char)(1u << (r >> 1) % 8)
                                      : (unsigned char)((r >> 8) % 255 + 1);
            copy[at] ^= x;
            if (b == 0)
                first = at;
        }
        size_t k = N_TRUNCATED + i;
        snprintf(v[k].path, sizeof v[k].path, "%s/flip-%02zu-at-%05zu.h5", tmp_dir, i, first);
        v[k].truncated = 0;
        write_file(v[k].path, copy, size);
    }
    free(copy);
}

/* ------------------------------------------------------------- running */

typedef struct cli_run {
    int exited, code, signaled, sig;
    char *out, *err;
} cli_run;

/* The environment of the CLI: ours, with ASAN_OPTIONS replaced (see the
 * comment at the top). A new array; the strings stay environ's. */
static char **child_environment(void)
{
    static char asan[] = "ASAN_OPTIONS=handle_segv=0:detect_leaks=0";
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 2, sizeof *env);
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0)
            env[k++] = environ[i];
    env[k] = asan;
    return env;
}

/* Runs $NIRTRACE_BIN with argv [argc] (argv[0] is set here), stdout and
 * stderr captured in files of tmp_dir. Free out and err. */
static cli_run run_nirtrace(char **argv)
{
    const char *bin = getenv("NIRTRACE_BIN");
    cr_assert(bin != NULL && bin[0] != '\0', "NIRTRACE_BIN is not set: run the tests with make test");
    argv[0] = (char *)bin;
    char out_path[300], err_path[300];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", tmp_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmp_dir);
    char **env = child_environment();
    child_end e = spawn_wait(bin, argv, env, "/dev/null", out_path, O_WRONLY | O_CREAT | O_TRUNC,
                             err_path);
    free(env);
    cli_run r = {e.exited, e.code, e.signaled, e.sig, NULL, NULL};
    size_t len;
    r.out = slurp(out_path, &len);
    r.err = slurp(err_path, &len);
    return r;
}

/* ------------------------------------------------------------- checking */

/* Number of lines of text that start with prefix ("": all lines). */
static size_t lines_starting(const char *text, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, prefix, plen) == 0)
            n++;
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return n;
}

/* Number of lines of text that contain part. */
static size_t lines_containing(const char *text, const char *part)
{
    size_t n = 0;
    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        const char *hit = strstr(line, part);
        if (hit != NULL && hit < line + len)
            n++;
        line += len + (nl != NULL);
    }
    return n;
}

/* The rows of text whose first field is file, joined in order (malloc'd). */
static char *rows_of(const char *text, const char *file)
{
    size_t flen = strlen(file), cap = strlen(text) + 1, n = 0;
    char *rows = malloc(cap);
    cr_assert_not_null(rows);
    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, file, flen) == 0 && line[flen] == ',') {
            memcpy(rows + n, line, len);
            n += len;
        }
        line += len;
    }
    rows[n] = '\0';
    return rows;
}

Test(corrupt, damaged_copies_fail_alone_in_one_batch)
{
    if (getenv("NIRTRACE_VALGRIND") != NULL)
        cr_skip_test("valgrind would follow a hundred workers into HDF5 (see the top)");
    const char *dir = getenv("NIRTRACE_SAMPLES");
    cr_assert(dir != NULL && dir[0] != '\0',
              "NIRTRACE_SAMPLES is not set: run the tests with make test");
    char sample[512], intact[300];
    snprintf(sample, sizeof sample, "%s/fast_slow.h5", dir);
    size_t size;
    unsigned char *data = (unsigned char *)slurp(sample, &size);
    static variant v[N_VARIANTS];
    write_variants(data, size, v);
    snprintf(intact, sizeof intact, "%s/intact.h5", tmp_dir);
    write_file(intact, data, size);
    free(data);

    char *clean_argv[] = {NULL, "detect", "-q", intact, NULL};
    cli_run clean = run_nirtrace(clean_argv);
    cr_assert(clean.exited && clean.code == 0, "the clean run failed (status %d, signal %d):\n%s",
              clean.code, clean.sig, clean.err);
    char *expected = rows_of(clean.out, intact);
    cr_assert_eq(lines_starting(expected, intact), SAMPLE_ROWS, "the clean run has not %d rows:\n%s",
                 SAMPLE_ROWS, clean.out);

    char *argv[N_VARIANTS + 10];
    size_t argc = 0;
    argv[argc++] = NULL;
    argv[argc++] = "detect";
    argv[argc++] = "-q";
    argv[argc++] = "-j";
    argv[argc++] = "2";
    argv[argc++] = "--timeout";
    argv[argc++] = "20";
    for (size_t i = 0; i < N_VARIANTS; i++)
        argv[argc++] = v[i].path;
    argv[argc++] = intact;
    argv[argc] = NULL;
    cli_run r = run_nirtrace(argv);

    cr_assert(!r.signaled, "nirtrace died by signal %d; stderr:\n%s", r.sig, r.err);
    cr_assert(r.exited && (r.code == 0 || r.code == 1), "exit status %d; stderr:\n%s", r.code,
              r.err);
    cr_assert_null(strstr(r.err, "AddressSanitizer"), "a sanitizer report:\n%s", r.err);
    cr_assert_null(strstr(r.err, "LeakSanitizer"), "a sanitizer report:\n%s", r.err);
    cr_assert_null(strstr(r.err, "runtime error"), "a sanitizer report:\n%s", r.err);

    size_t n_failed = 0, n_truncated_failed = 0;
    char prefix[1024];
    for (size_t i = 0; i < N_VARIANTS; i++) {
        int len = snprintf(prefix, sizeof prefix, "nirtrace: %s: ", v[i].path);
        cr_assert(len > 0 && (size_t)len < sizeof prefix);
        size_t messages = lines_starting(r.err, prefix);
        char *rows = rows_of(r.out, v[i].path);
        cr_assert(messages <= 1, "%zu messages for %s:\n%s", messages, v[i].path, r.err);
        if (messages == 1) {
            cr_assert_str_empty(rows, "%s failed but has rows:\n%s", v[i].path, rows);
            n_failed++;
            n_truncated_failed += v[i].truncated;
        } else {
            cr_assert(!v[i].truncated, "truncated copy %s was not refused", v[i].path);
            cr_assert_str_not_empty(rows, "%s has neither rows nor a message; stderr:\n%s",
                                    v[i].path, r.err);
        }
        free(rows);
    }
    cr_assert_eq(n_truncated_failed, N_TRUNCATED);
    cr_log_info("%d damaged copies: %zu refused (%zu reader crashes contained), %zu read",
                N_VARIANTS, n_failed, lines_containing(r.err, "reader crashed"),
                N_VARIANTS - n_failed);
    cr_assert_eq(lines_starting(r.err, ""), n_failed,
                 "stderr has lines other than one per failed copy (%zu failed):\n%s", n_failed,
                 r.err);
    cr_assert_eq(r.code, n_failed > 0 ? 1 : 0, "exit status %d with %zu failed inputs", r.code,
                 n_failed);

    char *got = rows_of(r.out, intact);
    cr_assert_str_eq(got, expected, "the intact sample's rows differ from a clean run's");
    cr_assert_eq(lines_starting(r.out, tmp_dir), lines_starting(r.out, "") - 1,
                 "stdout holds lines that are neither the header nor rows of the inputs:\n%s",
                 r.out);
    free(got);
    free(expected);
    free(clean.out);
    free(clean.err);
    free(r.out);
    free(r.err);
}
