/*
 * test_cli.c — the nirtrace command line, checked from outside: what it
 * prints on stdout and stderr, the files it writes and its exit status.
 *
 * The binary is found through NIRTRACE_BIN and the bundled recordings
 * through NIRTRACE_SAMPLES (both set by `make test`). Malformed inputs are
 * made with the HDF5 C API in a fresh temporary directory per test. Under
 * `make valgrind` (NIRTRACE_VALGRIND set) valgrind follows the children, so
 * nothing here changes.
 */
#include "nirtrace.h"
#include "synth.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CSV_HEADER                                                                              \
    "file,roi,trial,stim_s,label,detected,amplitude_dff,peak_s,onset_latency_s,time_to_peak_s," \
    "rise_s,half_width_s,decay_tau_s,auc_dff_s,f0,noise_sd_dff,snr,flags"

/* Columns of the detect table. */
enum {
    COL_FILE, COL_ROI, COL_TRIAL, COL_STIM, COL_LABEL, COL_DETECTED, COL_AMPLITUDE,
    COL_PEAK, COL_ONSET, COL_TTP, COL_RISE, COL_HALF_WIDTH, COL_DECAY, COL_AUC, COL_F0,
    COL_NOISE, COL_SNR, COL_FLAGS, N_COLS
};

/* ------------------------------------------------------------- fixtures */

static void make_tmp_dir(void)
{
    tmp_dir_create("cli");
}

TestSuite(cli, .init = make_tmp_dir, .fini = tmp_dir_remove, .timeout = 300);

/* Path of a bundled sample (static storage, eight in rotation). */
static const char *sample(const char *name)
{
    static char paths[8][512];
    static int next;
    const char *dir = getenv("NIRTRACE_SAMPLES");
    cr_assert(dir != NULL && dir[0] != '\0',
              "NIRTRACE_SAMPLES is not set: run the tests with make test");
    char *path = paths[next];
    next = (next + 1) % 8;
    snprintf(path, sizeof paths[0], "%s/%s", dir, name);
    return path;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

/* -------------------------------------------------------------- running */

/* How one run of the CLI ended and what it printed. out and err are
 * malloc'd, NUL-terminated; free with run_free. */
typedef struct run_result {
    int exited;   /* 1 when it exited normally, with status code */
    int code;
    int signaled; /* 1 when it died by signal sig */
    int sig;
    char *out;
    char *err;
} run_result;

/*
 * Runs $NIRTRACE_BIN with the NULL-terminated args (argv[0] excluded).
 * stdin comes from stdin_path (NULL: /dev/null). stdout is captured, or,
 * when stdout_path is not NULL, goes to that existing file (then out is "").
 * stderr is captured.
 */
static run_result run_cli(const char *stdin_path, const char *stdout_path,
                          const char *const *args)
{
    const char *bin = getenv("NIRTRACE_BIN");
    cr_assert(bin != NULL && bin[0] != '\0', "NIRTRACE_BIN is not set: run the tests with make test");
    size_t n = 0;
    while (args[n] != NULL)
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    cr_assert_not_null(argv);
    argv[0] = (char *)bin;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];

    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/cli-stdout.txt", tmp_dir);
    snprintf(err_path, sizeof err_path, "%s/cli-stderr.txt", tmp_dir);
    child_end e = spawn_wait(bin, argv, environ, stdin_path ? stdin_path : "/dev/null",
                             stdout_path ? stdout_path : out_path,
                             stdout_path ? O_WRONLY : O_WRONLY | O_CREAT | O_TRUNC, err_path);
    free(argv);
    run_result r = {e.exited, e.code, e.signaled, e.sig, NULL, NULL};
    r.out = stdout_path != NULL ? strdup("") : slurp_or_null(out_path, NULL);
    r.err = slurp_or_null(err_path, NULL);
    cr_assert(r.out != NULL && r.err != NULL, "cannot read the captured output");
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define RUN(...) run_cli(NULL, NULL, ARGS(__VA_ARGS__))

static void expect_exit(const run_result *r, int code)
{
    cr_assert(!r->signaled, "nirtrace died by signal %d; stderr:\n%s", r->sig, r->err);
    cr_assert(r->exited, "nirtrace did not exit normally");
    cr_assert_eq(r->code, code, "exit status %d, expected %d; stderr:\n%s", r->code, code,
                 r->err);
}

static void expect_contains(const char *text, const char *part, const char *what)
{
    cr_assert_not_null(strstr(text, part), "%s does not contain \"%s\":\n%s", what, part, text);
}

/* A bad command line: exit 2, nothing on stdout, "nirtrace: ..." on stderr
 * containing part (when not NULL). */
static void expect_usage_error(const char *const *args, const char *part)
{
    run_result r = run_cli(NULL, NULL, args);
    expect_exit(&r, 2);
    cr_assert_str_empty(r.out, "bad usage wrote to stdout:\n%s", r.out);
    cr_assert(strncmp(r.err, "nirtrace: ", 10) == 0, "no 'nirtrace: ' message on stderr:\n%s",
              r.err);
    if (part != NULL)
        expect_contains(r.err, part, "stderr");
    run_free(&r);
}

/* A detect run that failed on its one input file: exit 1, no signal,
 * exactly one line on stderr, "nirtrace: PATH: ..." containing part (when
 * not NULL), and only the CSV header on stdout. */
static void expect_file_error(const run_result *r, const char *path, const char *part)
{
    expect_exit(r, 1);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "nirtrace: %s: ", path);
    size_t plen = strlen(prefix), len = strlen(r->err);
    cr_assert(strncmp(r->err, prefix, plen) == 0, "stderr does not start with \"%s\":\n%s", prefix,
              r->err);
    cr_assert(len > plen + 1 && strchr(r->err, '\n') == r->err + len - 1,
              "expected one message line on stderr, got:\n%s", r->err);
    if (part != NULL)
        expect_contains(r->err, part, "stderr");
    cr_assert_str_eq(r->out, CSV_HEADER "\n", "stdout holds more than the header:\n%s", r->out);
}

/* ------------------------------------------------------------------ CSV */

/* A parsed CSV text (RFC 4180 quoting): rows[0] is the header. */
typedef struct csv_table {
    size_t n_rows;
    size_t *n_fields; /* [n_rows] */
    char ***fields;   /* [n_rows][n_fields[i]] */
} csv_table;

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sbuf_putc(sbuf *b, char c)
{
    if (b->len + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 32;
        char *bigger = realloc(b->s, b->cap);
        cr_assert_not_null(bigger);
        b->s = bigger;
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

static void csv_parse(const char *text, csv_table *t)
{
    memset(t, 0, sizeof *t);
    const char *p = text;
    while (*p != '\0') {
        size_t nf = 0;
        char **f = NULL;
        for (;;) {
            sbuf b = {NULL, 0, 0};
            sbuf_putc(&b, 'x'); /* make sure the string exists, then empty it */
            b.len = 0;
            b.s[0] = '\0';
            if (*p == '"') {
                for (p++; *p != '\0'; p++) {
                    if (*p == '"') {
                        if (p[1] != '"') {
                            p++;
                            break;
                        }
                        p++;
                    }
                    sbuf_putc(&b, *p);
                }
            }
            while (*p != '\0' && *p != ',' && *p != '\n')
                sbuf_putc(&b, *p++);
            char **more = realloc(f, (nf + 1) * sizeof *f);
            cr_assert_not_null(more);
            f = more;
            f[nf++] = b.s;
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == '\n')
                p++;
            break;
        }
        size_t *nmore = realloc(t->n_fields, (t->n_rows + 1) * sizeof *nmore);
        cr_assert_not_null(nmore);
        t->n_fields = nmore;
        char ***fmore = realloc(t->fields, (t->n_rows + 1) * sizeof *fmore);
        cr_assert_not_null(fmore);
        t->fields = fmore;
        t->n_fields[t->n_rows] = nf;
        t->fields[t->n_rows] = f;
        t->n_rows++;
    }
}

static void csv_free(csv_table *t)
{
    for (size_t i = 0; i < t->n_rows; i++) {
        for (size_t j = 0; j < t->n_fields[i]; j++)
            free(t->fields[i][j]);
        free(t->fields[i]);
    }
    free(t->fields);
    free(t->n_fields);
    memset(t, 0, sizeof *t);
}

/* Cell of data row `row` (1-based: row 0 is the header). */
static const char *cell(const csv_table *t, size_t row, size_t col)
{
    cr_assert_lt(row, t->n_rows, "row %zu of %zu", row, t->n_rows);
    cr_assert_lt(col, t->n_fields[row], "row %zu has %zu fields, wanted column %zu", row,
                 t->n_fields[row], col);
    return t->fields[row][col];
}

static double cell_number(const csv_table *t, size_t row, size_t col)
{
    const char *s = cell(t, row, col);
    char *end;
    double v = strtod(s, &end);
    cr_assert(end != s && *end == '\0', "row %zu column %zu is not a number: '%s'", row, col, s);
    return v;
}

/* Parses r's stdout as a detect table: the exact header, then n_rows data
 * rows of N_COLS fields each. */
static void expect_table(const run_result *r, size_t n_rows, csv_table *t)
{
    size_t hlen = strlen(CSV_HEADER);
    cr_assert(strncmp(r->out, CSV_HEADER "\n", hlen + 1) == 0, "header line differs:\n%.*s",
              (int)(strcspn(r->out, "\n")), r->out);
    size_t len = strlen(r->out);
    cr_assert(len > 0 && r->out[len - 1] == '\n', "the table does not end with a newline");
    csv_parse(r->out, t);
    cr_assert_eq(t->n_rows, n_rows + 1, "%zu data rows, expected %zu", t->n_rows - 1, n_rows);
    for (size_t i = 0; i < t->n_rows; i++)
        cr_assert_eq(t->n_fields[i], N_COLS, "row %zu has %zu fields, expected %d", i,
                     t->n_fields[i], N_COLS);
}

/* ----------------------------------------------------- HDF5 test inputs */

/* What write_h5 puts in a file. */
typedef struct h5_spec {
    int rank;          /* rank of /traces (float32); 0: no /traces, another dataset instead */
    hsize_t dims[3];
    double rate_hz;    /* > 0: the rate_hz attribute of /traces */
    size_t n_stims;    /* > 0: /stim/onsets */
    double stims[4];
    long nan_index;    /* >= 0: this sample of /traces is NaN */
} h5_spec;

/* Writes an HDF5 file: /traces of 1000·(1 + 0.01·noise), float32. */
static void write_h5(const char *path, const h5_spec *s)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(file >= 0, "cannot create %s", path);
    if (s->rank > 0) {
        size_t n = 1;
        for (int i = 0; i < s->rank; i++)
            n *= (size_t)s->dims[i];
        float *x = malloc((n > 0 ? n : 1) * sizeof *x);
        cr_assert_not_null(x);
        synth_rng rng = {20240611u};
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(1000.0 * (1.0 + 0.01 * synth_gauss(&rng)));
        if (s->nan_index >= 0) {
            cr_assert_lt((size_t)s->nan_index, n);
            x[s->nan_index] = NAN;
        }
        hid_t space = H5Screate_simple(s->rank, s->dims, NULL);
        cr_assert(space >= 0);
        hid_t dset = H5Dcreate2(file, "/traces", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT);
        cr_assert(dset >= 0);
        cr_assert(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        if (s->rate_hz > 0) {
            hid_t aspace = H5Screate(H5S_SCALAR);
            hid_t attr = H5Acreate2(dset, "rate_hz", H5T_IEEE_F64LE, aspace, H5P_DEFAULT,
                                    H5P_DEFAULT);
            cr_assert(aspace >= 0 && attr >= 0);
            cr_assert(H5Awrite(attr, H5T_NATIVE_DOUBLE, &s->rate_hz) >= 0);
            H5Aclose(attr);
            H5Sclose(aspace);
        }
        H5Dclose(dset);
        H5Sclose(space);
        free(x);
    } else {
        double v[4] = {1, 2, 3, 4};
        hsize_t n = 4;
        hid_t space = H5Screate_simple(1, &n, NULL);
        hid_t dset = H5Dcreate2(file, "/data", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT);
        cr_assert(space >= 0 && dset >= 0);
        cr_assert(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
        H5Dclose(dset);
        H5Sclose(space);
    }
    if (s->n_stims > 0) {
        hid_t group = H5Gcreate2(file, "/stim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t n = s->n_stims;
        hid_t space = H5Screate_simple(1, &n, NULL);
        hid_t dset = H5Dcreate2(file, "/stim/onsets", H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
        cr_assert(group >= 0 && space >= 0 && dset >= 0);
        cr_assert(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->stims) >= 0);
        H5Dclose(dset);
        H5Sclose(space);
        H5Gclose(group);
    }
    cr_assert(H5Fclose(file) >= 0, "cannot close %s", path);
}

/* ----------------------------------------------------------------- help */

Test(cli, help_goes_to_stdout_with_status_0)
{
    run_result r = RUN("--help");
    expect_exit(&r, 0);
    expect_contains(r.out, "Usage", "stdout");
    expect_contains(r.out, "detect", "stdout");
    cr_assert_str_empty(r.err, "--help wrote to stderr:\n%s", r.err);
    run_free(&r);
}

Test(cli, command_help_lists_its_options)
{
    static const struct {
        const char *cmd;
        const char *opts[4];
    } cases[] = {
        {"detect", {"--lowpass", "--threshold", "--stim-frame", "--drift"}},
        {"info", {"--rate", "--stim", "--stim-frame", "Usage"}},
        {"compare", {"--rtol", "--atol", "EXPECTED", "Usage"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = RUN(cases[i].cmd, "--help");
        expect_exit(&r, 0);
        for (size_t j = 0; j < 4; j++)
            expect_contains(r.out, cases[i].opts[j], cases[i].cmd);
        cr_assert_str_empty(r.err, "%s --help wrote to stderr:\n%s", cases[i].cmd, r.err);
        run_free(&r);
    }
}

Test(cli, version)
{
    run_result r = RUN("--version");
    expect_exit(&r, 0);
    cr_assert_str_eq(r.out, "nirtrace 0.1.0\n");
    run_free(&r);
}

/* ------------------------------------------------------------ bad usage */

Test(cli, no_command_is_a_usage_error)
{
    expect_usage_error((const char *const[]){NULL}, "no command");
}

Test(cli, unknown_command_is_a_usage_error)
{
    expect_usage_error(ARGS("frobnicate", sample("fast_slow.h5")), "frobnicate");
}

Test(cli, detect_without_files_is_a_usage_error)
{
    expect_usage_error(ARGS("detect"), "no input file");
}

Test(cli, detect_bad_threshold_is_a_usage_error)
{
    expect_usage_error(ARGS("detect", "--threshold", "abc", sample("fast_slow.h5")), "abc");
}

Test(cli, detect_bad_drift_is_a_usage_error)
{
    expect_usage_error(ARGS("detect", "--drift", "bogus", sample("fast_slow.h5")), "bogus");
}

Test(cli, detect_negative_lowpass_is_a_usage_error)
{
    expect_usage_error(ARGS("detect", "--lowpass", "-1", sample("fast_slow.h5")), "low-pass");
}

Test(cli, detect_window_beyond_peak_search_is_a_usage_error)
{
    /* 40 s exceeds the default peak search of 30 s: the parameter check
     * refuses the combination. */
    expect_usage_error(ARGS("detect", "--window", "40", sample("fast_slow.h5")), "40");
}

/* --------------------------------------------------------------- detect */

Test(cli, detect_fast_slow_table)
{
    const char *path = sample("fast_slow.h5");
    run_result r = RUN("detect", path);
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 12, &t);
    int zeros = 0, ones = 0;
    for (size_t i = 1; i <= 12; i++) {
        cr_assert_str_eq(cell(&t, i, COL_FILE), path);
        int row = 0, col = 0;
        char extra;
        cr_assert_eq(sscanf(cell(&t, i, COL_ROI), "r%2dc%2d%c", &row, &col, &extra), 2,
                     "row %zu: roi '%s' is not a name like r01c01", i, cell(&t, i, COL_ROI));
        for (size_t j = 1; j < i; j++)
            cr_assert_str_neq(cell(&t, i, COL_ROI), cell(&t, j, COL_ROI), "rows %zu and %zu", j, i);
        cr_assert_str_eq(cell(&t, i, COL_TRIAL), "1");
        cr_assert_float_eq(cell_number(&t, i, COL_STIM), 24.0096, 1e-3);
        const char *det = cell(&t, i, COL_DETECTED);
        cr_assert(strcmp(det, "0") == 0 || strcmp(det, "1") == 0, "row %zu: detected is '%s'",
                  i, det);
        zeros += det[0] == '0';
        ones += det[0] == '1';
    }
    cr_assert_str_eq(cell(&t, 1, COL_ROI), "r01c01");
    cr_assert_gt(zeros, 0, "no row has detected = 0");
    cr_assert_gt(ones, 0, "no row has detected = 1");
    cr_assert_str_empty(r.err, "warnings on a clean sample:\n%s", r.err);
    csv_free(&t);
    run_free(&r);
}

/* Checks that rows [from, from + n) of t come from file. */
static void expect_rows_from(const csv_table *t, size_t from, size_t n, const char *file)
{
    for (size_t i = from; i < from + n; i++)
        cr_assert_str_eq(cell(t, i, COL_FILE), file, "row %zu comes from %s, expected %s", i,
                         cell(t, i, COL_FILE), file);
}

static void expect_multi_stim_labels(const csv_table *t, size_t from)
{
    static const char *const labels[] = {"0.1 mA", "0.3 mA", "0.5 mA"};
    for (size_t i = from; i < from + 24; i++) {
        long trial = strtol(cell(t, i, COL_TRIAL), NULL, 10);
        cr_assert(trial >= 1 && trial <= 3, "row %zu: trial '%s'", i, cell(t, i, COL_TRIAL));
        cr_assert_str_eq(cell(t, i, COL_LABEL), labels[trial - 1], "row %zu", i);
    }
}

Test(cli, detect_rows_follow_input_order)
{
    const char *fast = sample("fast_slow.h5"), *multi = sample("multi_stim.h5");
    csv_table t;

    run_result r = RUN("detect", fast, multi);
    expect_exit(&r, 0);
    expect_table(&r, 36, &t);
    expect_rows_from(&t, 1, 12, fast);
    expect_rows_from(&t, 13, 24, multi);
    expect_multi_stim_labels(&t, 13);
    csv_free(&t);
    run_free(&r);

    r = RUN("detect", multi, fast);
    expect_exit(&r, 0);
    expect_table(&r, 36, &t);
    expect_rows_from(&t, 1, 24, multi);
    expect_rows_from(&t, 25, 12, fast);
    expect_multi_stim_labels(&t, 1);
    csv_free(&t);
    run_free(&r);
}

Test(cli, detect_missing_file_keeps_the_others)
{
    const char *fast = sample("fast_slow.h5"), *multi = sample("multi_stim.h5");
    const char *missing = tmp_path("no-such-recording.h5");
    run_result r = RUN("detect", fast, missing, multi);
    expect_exit(&r, 1);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "nirtrace: %s: ", missing);
    expect_contains(r.err, prefix, "stderr");
    csv_table t;
    expect_table(&r, 36, &t);
    expect_rows_from(&t, 1, 12, fast);
    expect_rows_from(&t, 13, 24, multi);
    csv_free(&t);
    run_free(&r);
}

/* --------------------------------------------------------------- output */

Test(cli, output_file_is_written_instead_of_stdout)
{
    const char *out = tmp_path("OUT.csv");
    run_result r = RUN("detect", sample("fast_slow.h5"), "-o", out);
    expect_exit(&r, 0);
    cr_assert_str_empty(r.out, "stdout is not empty with -o:\n%s", r.out);
    char *text = slurp_or_null(out, NULL);
    cr_assert_not_null(text, "%s was not written", out);
    run_result as_stdout = {1, 0, 0, 0, text, NULL};
    csv_table t;
    expect_table(&as_stdout, 12, &t);
    csv_free(&t);
    free(text);
    cr_assert_eq(count_entries_containing(tmp_dir, ".tmp."), 0,
                 "a temporary file was left behind after success");
    run_free(&r);
}

Test(cli, failed_run_leaves_existing_output_untouched)
{
    const char *out = tmp_path("OUT.csv");
    static const char old[] = "previous results\n";
    write_file(out, old, strlen(old));
    run_result r = RUN("detect", "--threshold", "abc", sample("fast_slow.h5"), "-o", out);
    expect_exit(&r, 2);
    char *text = slurp_or_null(out, NULL);
    cr_assert_not_null(text, "%s disappeared", out);
    cr_assert_str_eq(text, old, "%s was changed by a failed run", out);
    free(text);
    cr_assert_eq(count_entries_containing(tmp_dir, ".tmp."), 0,
                 "a temporary file was left behind after failure");
    run_free(&r);
}

Test(cli, params_out_writes_json)
{
    const char *json = tmp_path("P.json");
    run_result r = RUN("detect", "--lowpass", "1.5", "--params-out", json, sample("fast_slow.h5"));
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 12, &t);
    csv_free(&t);
    char *text = slurp_or_null(json, NULL);
    cr_assert_not_null(text, "%s was not written", json);
    cr_assert_eq(text[0], '{', "not a JSON object:\n%s", text);
    expect_contains(text, "\"lowpass_hz\": 1.5", json);
    expect_contains(text, "\"nirtrace_version\": \"0.1.0\"", json);
    free(text);
    cr_assert_eq(count_entries_containing(tmp_dir, ".tmp."), 0);
    run_free(&r);
}

Test(cli, print_params_shows_current_values)
{
    run_result r = RUN("detect", "--threshold", "4", "--drift", "exp", "--print-params");
    expect_exit(&r, 0);
    cr_assert_eq(r.out[0], '{', "not a JSON object:\n%s", r.out);
    expect_contains(r.out, "\"threshold_sd\": 4,", "stdout");
    expect_contains(r.out, "\"drift\": \"exp\"", "stdout");
    expect_contains(r.out, "\"lowpass_hz\": 2,", "stdout");
    expect_contains(r.out, "\"nirtrace_version\"", "stdout");
    run_free(&r);
}

/* The template options: --tau-on/--tau-off make the fixed template, auto
 * runs; contradictory or threshold-detector uses are usage errors. */
Test(cli, template_options)
{
    run_result r = RUN("detect", "--tau-on", "0.4", "--tau-off", "4", "--print-params");
    expect_exit(&r, 0);
    expect_contains(r.out, "\"template\": \"fixed\",", "stdout");
    expect_contains(r.out, "\"tau_on_s\": 0.40000000000000002,", "stdout");
    run_free(&r);
    r = RUN("detect", "-q", "--template", "auto", sample("fast_slow.h5"));
    expect_exit(&r, 0);
    expect_contains(r.out, "file,roi,trial", "stdout");
    run_free(&r);
    r = RUN("detect", "--template", "auto", "--tau-on", "1", sample("fast_slow.h5"));
    expect_exit(&r, 2);
    expect_contains(r.err, "fixed template", "stderr");
    run_free(&r);
    r = RUN("detect", "--detector", "threshold", "--template", "auto", sample("fast_slow.h5"));
    expect_exit(&r, 2);
    expect_contains(r.err, "--detector matched", "stderr");
    run_free(&r);
    r = RUN("detect", "--template", "best", sample("fast_slow.h5"));
    expect_exit(&r, 2);
    expect_contains(r.err, "bank, fixed or auto", "stderr");
    run_free(&r);
    r = RUN("detect", "--tau-on", "-1", sample("fast_slow.h5"));
    expect_exit(&r, 2);
    expect_contains(r.err, "time constants", "stderr");
    run_free(&r);
}

/* ------------------------------------------------------------ overrides */

Test(cli, stim_override_in_seconds)
{
    run_result r = RUN("detect", "--stim", "30", sample("fast_slow.h5"));
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 12, &t);
    for (size_t i = 1; i <= 12; i++)
        cr_assert_float_eq(cell_number(&t, i, COL_STIM), 30.0, 1e-9, "row %zu", i);
    csv_free(&t);
    run_free(&r);
}

Test(cli, stim_frame_override_gives_two_trials)
{
    run_result r = RUN("detect", "--stim-frame", "100,300", sample("fast_slow.h5"));
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 24, &t);
    for (size_t i = 1; i <= 24; i++) {
        size_t trial = (i - 1) % 2 + 1;
        char want[4];
        snprintf(want, sizeof want, "%zu", trial);
        cr_assert_str_eq(cell(&t, i, COL_TRIAL), want, "row %zu", i);
        double expected = (trial == 1 ? 100.0 : 300.0) / 8.33;
        cr_assert_float_eq(cell_number(&t, i, COL_STIM), expected, 1e-3,
                           "row %zu: stim_s %s, expected %g", i, cell(&t, i, COL_STIM), expected);
    }
    cr_assert_str_eq(cell(&t, 1, COL_ROI), cell(&t, 2, COL_ROI), "a ROI's two trials are apart");
    csv_free(&t);
    run_free(&r);
}

Test(cli, rate_override_moves_frame_stimulus)
{
    run_result r = RUN("detect", "--rate", "10", "--stim-frame", "200", sample("fast_slow.h5"));
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 12, &t);
    for (size_t i = 1; i <= 12; i++)
        cr_assert_float_eq(cell_number(&t, i, COL_STIM), 20.0, 1e-9, "row %zu", i);
    csv_free(&t);
    run_free(&r);
}

/* ---------------------------------------------------------- bad inputs */

Test(cli, text_file_is_not_a_recording)
{
    /* Text is a format (CSV/TSV): a notebook is read as one and refused, and
     * the message says how it was read. */
    const char *path = tmp_path("notes.h5");
    static const char text[] = "this is a lab notebook, not a recording\n";
    write_file(path, text, strlen(text));
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "read as CSV/TSV text");
    run_free(&r);
}

Test(cli, binary_garbage_is_not_a_recording)
{
    const char *path = tmp_path("garbage.bin");
    unsigned char junk[256];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37u + 1u);
    junk[5] = 0;
    write_file(path, junk, sizeof junk);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "not a recognised recording format");
    run_free(&r);
}

Test(cli, hdf5_without_traces)
{
    const char *path = tmp_path("no_traces.h5");
    h5_spec s = {.rank = 0, .rate_hz = 10, .n_stims = 1, .stims = {5}, .nan_index = -1};
    write_h5(path, &s);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "/traces");
    run_free(&r);
}

Test(cli, three_dimensional_traces)
{
    const char *path = tmp_path("cube.h5");
    h5_spec s = {.rank = 3, .dims = {2, 3, 100}, .rate_hz = 10, .n_stims = 1, .stims = {5},
                 .nan_index = -1};
    write_h5(path, &s);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "2-D");
    run_free(&r);
}

Test(cli, no_time_base_suggests_rate)
{
    const char *path = tmp_path("no_rate.h5");
    h5_spec s = {.rank = 2, .dims = {3, 400}, .n_stims = 1, .stims = {20}, .nan_index = -1};
    write_h5(path, &s);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "--rate");
    run_free(&r);
}

Test(cli, no_stimuli_suggests_stim)
{
    const char *path = tmp_path("no_stim.h5");
    h5_spec s = {.rank = 2, .dims = {3, 400}, .rate_hz = 10, .nan_index = -1};
    write_h5(path, &s);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "--stim");
    run_free(&r);
}

Test(cli, stimulus_outside_the_recording)
{
    const char *path = sample("fast_slow.h5");
    run_result r = RUN("detect", "--stim", "1000", path);
    expect_file_error(&r, path, "outside");
    run_free(&r);
}

Test(cli, empty_file)
{
    const char *path = tmp_path("empty.h5");
    write_file(path, "", 0);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "empty");
    run_free(&r);
}

Test(cli, truncated_recording_fails_cleanly)
{
    size_t len = 0;
    char *bytes = slurp_or_null(sample("fast_slow.h5"), &len);
    cr_assert_not_null(bytes, "cannot read fast_slow.h5");
    cr_assert_gt(len, 1024u);
    const char *path = tmp_path("truncated.h5");
    write_file(path, bytes, len / 2);
    free(bytes);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, NULL);
    run_free(&r);
}

Test(cli, one_frame_recording)
{
    const char *path = tmp_path("one_frame.h5");
    h5_spec s = {.rank = 2, .dims = {3, 1}, .rate_hz = 10, .n_stims = 1, .stims = {0},
                 .nan_index = -1};
    write_h5(path, &s);
    run_result r = RUN("detect", path);
    expect_file_error(&r, path, "frame");
    run_free(&r);
}

/* A 3-ROI, 600-frame, 10 Hz float32 recording with one stimulus at 30 s and
 * a NaN in ROI 2 (frame 100). */
static const char *write_nan_recording(void)
{
    const char *path = tmp_path("with_nan.h5");
    h5_spec s = {.rank = 2, .dims = {3, 600}, .rate_hz = 10, .n_stims = 1, .stims = {30},
                 .nan_index = 600 + 100};
    write_h5(path, &s);
    return path;
}

static void expect_nan_rows(const run_result *r)
{
    csv_table t;
    expect_table(r, 3, &t);
    for (size_t i = 1; i <= 3; i++) {
        char roi[4];
        snprintf(roi, sizeof roi, "%zu", i);
        cr_assert_str_eq(cell(&t, i, COL_ROI), roi);
        if (i == 2) {
            expect_contains(cell(&t, i, COL_FLAGS), "nonfinite", "flags of ROI 2");
            cr_assert_str_eq(cell(&t, i, COL_AMPLITUDE), "NaN", "amplitude of ROI 2");
            cr_assert_str_eq(cell(&t, i, COL_DETECTED), "0", "ROI 2 detected");
        } else {
            cr_assert_null(strstr(cell(&t, i, COL_FLAGS), "nonfinite"),
                           "ROI %zu flagged nonfinite: %s", i, cell(&t, i, COL_FLAGS));
            cr_assert_str_neq(cell(&t, i, COL_F0), "NaN", "ROI %zu unmeasured", i);
        }
    }
    csv_free(&t);
}

Test(cli, nan_sample_flags_its_roi_and_warns)
{
    const char *path = write_nan_recording();
    run_result r = RUN("detect", path);
    expect_exit(&r, 0);
    expect_nan_rows(&r);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "nirtrace: %s: roi 2", path);
    expect_contains(r.err, prefix, "stderr");
    expect_contains(r.err, "NaN", "stderr");
    cr_assert_eq(count_lines(r.err), 1, "expected one warning line:\n%s", r.err);
    run_free(&r);
}

Test(cli, quiet_silences_warnings)
{
    const char *path = write_nan_recording();
    run_result r = RUN("detect", "-q", path);
    expect_exit(&r, 0);
    expect_nan_rows(&r);
    cr_assert_str_empty(r.err, "-q still warned:\n%s", r.err);
    run_free(&r);
}

/* ----------------------------------------------------------------- info */

Test(cli, info_multi_stim)
{
    run_result r = RUN("info", sample("multi_stim.h5"));
    expect_exit(&r, 0);
    expect_contains(r.out, "8 ROIs", "stdout");
    expect_contains(r.out, "2400 frames", "stdout");
    expect_contains(r.out, "0.3 mA", "stdout");
    expect_contains(r.out, "valid for detect: yes", "stdout");
    cr_assert_str_empty(r.err);
    run_free(&r);
}

Test(cli, info_without_stimuli)
{
    const char *path = tmp_path("no_stim.h5");
    h5_spec s = {.rank = 2, .dims = {3, 400}, .rate_hz = 10, .nan_index = -1};
    write_h5(path, &s);

    run_result r = RUN("info", path);
    expect_exit(&r, 1);
    expect_contains(r.out, "valid for detect: no", "stdout");
    run_free(&r);

    r = RUN("info", "--stim-frame", "200", path);
    expect_exit(&r, 0);
    expect_contains(r.out, "valid for detect: yes", "stdout");
    expect_contains(r.out, "(frame 200)", "stdout");
    run_free(&r);
}

/* -------------------------------------------------------------- compare */

/* Writes the detect table of fast_slow.h5 into A.csv, and into B.csv the
 * same with the noise_sd_dff of the first row scaled by 1.001. */
static void write_compare_pair(const char **a_path, const char **b_path)
{
    const char *a = tmp_path("A.csv"), *b = tmp_path("B.csv");
    run_result r = RUN("detect", "-q", sample("fast_slow.h5"), "-o", a);
    expect_exit(&r, 0);
    run_free(&r);
    char *text = slurp_or_null(a, NULL);
    cr_assert_not_null(text);
    /* The sample's path holds no comma or quote: count commas. */
    char *row = strchr(text, '\n') + 1, *start = row;
    for (int c = 0; c < COL_NOISE; c++) {
        start = strchr(start, ',');
        cr_assert_not_null(start);
        start++;
    }
    char *end = strchr(start, ',');
    cr_assert_not_null(end);
    char *num_end;
    double v = strtod(start, &num_end);
    cr_assert(num_end == end && v > 0, "noise_sd_dff of row 1 is not a positive number");
    char changed[64];
    snprintf(changed, sizeof changed, "%.6g", v * 1.001);
    size_t len = strlen(text);
    char *out = malloc(len + sizeof changed);
    cr_assert_not_null(out);
    size_t head = (size_t)(start - text);
    memcpy(out, text, head);
    strcpy(out + head, changed);
    strcat(out, end);
    write_file(b, out, strlen(out));
    free(out);
    free(text);
    *a_path = a;
    *b_path = b;
}

Test(cli, compare_same_file)
{
    const char *a, *b;
    write_compare_pair(&a, &b);
    run_result r = RUN("compare", a, a);
    expect_exit(&r, 0);
    cr_assert_str_empty(r.out, "differences reported for identical files:\n%s", r.out);
    run_free(&r);
}

Test(cli, compare_reports_changed_column)
{
    const char *a, *b;
    write_compare_pair(&a, &b);
    run_result r = RUN("compare", a, b);
    expect_exit(&r, 1);
    expect_contains(r.out, "noise_sd_dff", "stdout");
    expect_contains(r.out, "1 difference", "stdout");
    run_free(&r);
}

Test(cli, compare_within_rtol)
{
    const char *a, *b;
    write_compare_pair(&a, &b);
    run_result r = RUN("compare", "--rtol", "0.01", a, b);
    expect_exit(&r, 0);
    cr_assert_str_empty(r.out);
    run_free(&r);
}

Test(cli, compare_missing_file)
{
    const char *a, *b;
    write_compare_pair(&a, &b);
    run_result r = RUN("compare", a, tmp_path("missing.csv"));
    expect_exit(&r, 2);
    cr_assert(strncmp(r.err, "nirtrace: ", 10) == 0, "no message on stderr:\n%s", r.err);
    run_free(&r);
}

/* --------------------------------------------------------- write errors */

Test(cli, output_to_full_device_fails_cleanly)
{
    char target[512], dir[512], leftover[64];
    if (access("/dev", W_OK) != 0) {
        snprintf(target, sizeof target, "/dev/full");
        snprintf(dir, sizeof dir, "/dev");
    } else {
        /* /dev is writable (running as root): the CLI could create its
         * temporary file there and rename it over the real /dev/full. Test
         * on a copy of the device node (char 1,7) in the temporary
         * directory instead. */
        snprintf(target, sizeof target, "%s/full", tmp_dir);
        snprintf(dir, sizeof dir, "%s", tmp_dir);
        if (mknod(target, S_IFCHR | 0666, makedev(1, 7)) != 0)
            cr_skip_test("/dev is writable and mknod failed (%s): not risking /dev/full",
                         strerror(errno));
    }
    snprintf(leftover, sizeof leftover, "full.tmp.");
    run_result r = RUN("detect", sample("fast_slow.h5"), "-o", target);
    struct stat st;
    cr_assert(stat(target, &st) == 0 && S_ISCHR(st.st_mode),
              "%s is no longer a character device after -o %s", target, target);
    expect_exit(&r, 1);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "nirtrace: %s: ", target);
    expect_contains(r.err, prefix, "stderr");
    cr_assert_str_empty(r.out);
    cr_assert_eq(count_entries_containing(dir, leftover), 0, "temporary file left in %s", dir);
    run_free(&r);
}

Test(cli, stdout_write_error)
{
    run_result r = run_cli(NULL, "/dev/full", ARGS("detect", sample("fast_slow.h5")));
    expect_exit(&r, 1);
    expect_contains(r.err, "write error", "stderr");
    run_free(&r);
}

Test(cli, help_to_full_stdout_is_a_write_error)
{
    run_result r = run_cli(NULL, "/dev/full", ARGS("--help"));
    expect_exit(&r, 1);
    expect_contains(r.err, "write error", "stderr");
    run_free(&r);
}

Test(cli, output_file_gets_the_umask_mode)
{
    /* mkstemp makes 0600; the finished table must have 0666 & ~umask. */
    const char *out = tmp_path("mode.csv");
    mode_t mask = umask(022);
    run_result r = run_cli(NULL, NULL, ARGS("detect", "-o", out, sample("fast_slow.h5")));
    umask(mask);
    expect_exit(&r, 0);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644, "mode %o", (unsigned)(st.st_mode & 0777));
    run_free(&r);
}

/* ------------------------------------------------------------- batches */

Test(cli, jobs_1_and_2_give_identical_bytes)
{
    const char *a = tmp_path("j1.csv"), *b = tmp_path("j2.csv");
    run_result r1 = RUN("detect", "-q", "-j", "1", "-o", a, sample("fast_slow.h5"),
                        sample("multi_stim.h5"), sample("irregular_time.h5"));
    expect_exit(&r1, 0);
    run_result r2 = RUN("detect", "-q", "-j", "2", "-o", b, sample("fast_slow.h5"),
                        sample("multi_stim.h5"), sample("irregular_time.h5"));
    expect_exit(&r2, 0);
    size_t la, lb;
    char *ta = slurp_or_null(a, &la), *tb = slurp_or_null(b, &lb);
    cr_assert(la > 1000 && la == lb && memcmp(ta, tb, la) == 0, "-j 1 and -j 2 tables differ");
    free(ta);
    free(tb);
    run_free(&r1);
    run_free(&r2);
}

Test(cli, directory_input_reads_recordings_in_name_order)
{
    /* samples/ holds three recordings and two result tables (skipped). */
    run_result r = RUN("detect", "-q", getenv("NIRTRACE_SAMPLES"));
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 12 + 6 + 24, &t);
    cr_assert(strstr(cell(&t, 1, 0), "fast_slow.h5") != NULL);
    cr_assert(strstr(cell(&t, 13, 0), "irregular_time.h5") != NULL);
    cr_assert(strstr(cell(&t, 19, 0), "multi_stim.h5") != NULL);
    csv_free(&t);
    run_free(&r);
}

Test(cli, files_from_stdin)
{
    const char *list = tmp_path("list.txt");
    char text[2048];
    snprintf(text, sizeof text, "# study day 1\n%s\n\n%s\n", sample("multi_stim.h5"),
             sample("fast_slow.h5"));
    write_file(list, text, strlen(text));
    run_result r = run_cli(list, NULL, ARGS("detect", "-q", "--files-from", "-"));
    expect_exit(&r, 0);
    csv_table t;
    expect_table(&r, 24 + 12, &t);
    cr_assert(strstr(cell(&t, 1, 0), "multi_stim.h5") != NULL);
    csv_free(&t);
    run_free(&r);
}

/* Preloads the fault library so that opening files whose path holds
 * `needle` crashes (var NT_FAULT_CRASH) or hangs (NT_FAULT_HANG). */
static void inject(const char *var, const char *needle)
{
    const char *lib = getenv("NIRTRACE_FAULTS");
    cr_assert(lib != NULL && access(lib, R_OK) == 0, "NIRTRACE_FAULTS is not set: use make test");
    setenv("LD_PRELOAD", lib, 1);
    setenv(var, needle, 1);
    /* A sanitizer runtime must come first unless told not to check; and
     * the injected crash must stay a signal, as it is in a normal build,
     * rather than become AddressSanitizer's report and exit. */
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0:handle_segv=0", 1);
}

Test(cli, crashing_reader_fails_only_its_file)
{
    inject("NT_FAULT_CRASH", "irregular_time");
    run_result r = RUN("detect", "-j", "2", sample("fast_slow.h5"), sample("irregular_time.h5"),
                       sample("multi_stim.h5"));
    expect_exit(&r, 1);
    expect_contains(r.err, "irregular_time.h5: reader crashed (SIGSEGV)", "stderr");
    expect_contains(r.err, "2 files ok, 1 failed", "stderr");
    csv_table t;
    expect_table(&r, 12 + 24, &t);
    cr_assert(strstr(r.out, "irregular_time") == NULL, "no row of the crashed file");
    csv_free(&t);
    run_free(&r);
}

Test(cli, hanging_reader_times_out)
{
    inject("NT_FAULT_HANG", "irregular_time");
    const char *timeout = getenv("NIRTRACE_VALGRIND") ? "60" : "2";
    run_result r = RUN("detect", "--timeout", timeout, sample("irregular_time.h5"),
                       sample("fast_slow.h5"));
    expect_exit(&r, 1);
    char want[128];
    snprintf(want, sizeof want, "irregular_time.h5: timed out after %s s", timeout);
    expect_contains(r.err, want, "stderr");
    csv_table t;
    expect_table(&r, 12, &t);
    csv_free(&t);
    run_free(&r);
}

Test(cli, progress_only_when_asked_or_on_a_terminal)
{
    run_result r = RUN("detect", sample("fast_slow.h5"), sample("multi_stim.h5"));
    expect_exit(&r, 0);
    cr_assert(strstr(r.err, "files/s") == NULL, "no progress in a pipe:\n%s", r.err);
    expect_contains(r.err, "2 files ok, 0 failed", "stderr summary");
    run_free(&r);
    r = RUN("detect", "--progress", sample("fast_slow.h5"), sample("multi_stim.h5"));
    expect_exit(&r, 0);
    expect_contains(r.err, "2/2 files", "stderr progress");
    run_free(&r);
    r = RUN("detect", "-q", sample("fast_slow.h5"), sample("multi_stim.h5"));
    expect_exit(&r, 0);
    cr_assert_str_eq(r.err, "", "-q: nothing on stderr");
    run_free(&r);
}

Test(cli, progress_on_a_terminal)
{
    /* script(1) gives the command a pseudo-terminal for stdout and stderr. */
    if (access("/usr/bin/script", X_OK) != 0)
        cr_skip_test("script(1) is not installed");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s detect %s %s -o /dev/null", getenv("NIRTRACE_BIN"),
             sample("fast_slow.h5"), sample("multi_stim.h5"));
    run_result r;
    const char *log = tmp_path("typescript");
    char *const argv[] = {"/usr/bin/script", "-qec", cmd, (char *)log, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, "/usr/bin/script", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "script: status %d", status);
    r.out = slurp_or_null(log, NULL);
    expect_contains(r.out, "2/2 files", "terminal output");
    free(r.out);
}

Test(cli, manifest_columns_are_appended)
{
    const char *m = tmp_path("study.csv");
    static const char text[] = "file,animal,genotype\n"
                               "fast_slow.h5,V12,WT\n"
                               "multi_stim.h5,V13,\"OXTR-KO, het\"\n"
                               "absent.h5,V14,WT\n";
    write_file(m, text, strlen(text));
    run_result r = RUN("detect", "--manifest", m, sample("fast_slow.h5"), sample("multi_stim.h5"));
    expect_exit(&r, 0);
    cr_assert(strncmp(r.out, "file,roi,trial,", 15) == 0);
    char *nl = strchr(r.out, '\n');
    cr_assert(nl != NULL && strncmp(nl - 22, ",flags,animal,genotype", 22) == 0,
              "header ends with the manifest columns");
    expect_contains(r.out, ",V12,WT\n", "rows of fast_slow");
    expect_contains(r.out, ",V13,\"OXTR-KO, het\"\n", "rows of multi_stim, quoted");
    expect_contains(r.err, "lists absent.h5, which is not among the inputs", "stderr");
    run_free(&r);
}

Test(cli, manifest_alone_names_the_inputs)
{
    char m[1024];
    snprintf(m, sizeof m, "%s/study.csv", tmp_dir);
    char text[2048];
    snprintf(text, sizeof text, "file,condition\n%s,baseline\n", sample("multi_stim.h5"));
    write_file(m, text, strlen(text));
    run_result r = RUN("detect", "-q", "--manifest", m);
    expect_exit(&r, 0);
    csv_table t;
    cr_assert_eq(count_lines(r.out), 25, "header + 24 rows of multi_stim");
    (void)t;
    expect_contains(r.out, ",baseline\n", "manifest column");
    run_free(&r);
}

Test(cli, merge_concatenates_parts_of_one_run)
{
    const char *a = tmp_path("a.csv"), *b = tmp_path("b.csv"), *all = tmp_path("all.csv");
    run_result r = RUN("detect", "-q", "-o", a, "--params-out", tmp_path("a.params.json"),
                       sample("fast_slow.h5"));
    expect_exit(&r, 0);
    run_free(&r);
    r = RUN("detect", "-q", "-o", b, "--params-out", tmp_path("b.params.json"),
            sample("multi_stim.h5"));
    expect_exit(&r, 0);
    run_free(&r);
    r = RUN("merge", "-o", all, a, b);
    expect_exit(&r, 0);
    run_free(&r);
    /* The same table as one run over both files. */
    const char *one = tmp_path("one.csv");
    r = RUN("detect", "-q", "-o", one, sample("fast_slow.h5"), sample("multi_stim.h5"));
    expect_exit(&r, 0);
    run_free(&r);
    size_t l1, l2;
    char *t1 = slurp_or_null(all, &l1), *t2 = slurp_or_null(one, &l2);
    cr_assert(l1 == l2 && memcmp(t1, t2, l1) == 0, "merged parts differ from one run");
    free(t1);
    free(t2);
    cr_assert_eq(access(tmp_path("all.params.json"), R_OK), 0, "parameters kept");
}

Test(cli, merge_refuses_other_parameters_and_headers)
{
    const char *a = tmp_path("a.csv"), *c = tmp_path("c.csv"), *m = tmp_path("m.csv");
    run_result r = RUN("detect", "-q", "-o", a, "--params-out", tmp_path("a.params.json"),
                       sample("fast_slow.h5"));
    run_free(&r);
    r = RUN("detect", "-q", "--threshold", "4", "-o", c, "--params-out",
            tmp_path("c.params.json"), sample("multi_stim.h5"));
    run_free(&r);
    r = RUN("merge", "-o", m, a, c);
    expect_exit(&r, 1);
    expect_contains(r.err, "other parameters", "stderr");
    cr_assert_neq(access(m, F_OK), 0, "no output when refused");
    run_free(&r);
    r = RUN("merge", "--force", a, c);
    expect_exit(&r, 0);
    run_free(&r);
    const char *odd = tmp_path("odd.csv");
    write_file(odd, "file,roi\nx,1\n", 13);
    r = RUN("merge", a, odd);
    expect_exit(&r, 1);
    expect_contains(r.err, "other parameters", "a part without parameters is not mixed");
    run_free(&r);
    r = RUN("merge", "--force", a, odd);
    expect_exit(&r, 1);
    expect_contains(r.err, "header differs", "stderr");
    run_free(&r);
}

Test(cli, out_dir_and_resume)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tables", tmp_dir);
    run_result r = RUN("detect", "-q", "--out-dir", dir, sample("fast_slow.h5"));
    expect_exit(&r, 0);
    cr_assert_str_eq(r.out, "", "no combined table on stdout");
    run_free(&r);
    char t1[1100], t2[1100];
    snprintf(t1, sizeof t1, "%s/fast_slow.csv", dir);
    snprintf(t2, sizeof t2, "%s/multi_stim.csv", dir);
    size_t len1;
    char *before = slurp_or_null(t1, &len1);
    cr_assert(strncmp(before, "file,roi,trial,", 15) == 0, "a whole table per input");
    /* Resume: fast_slow is done and is not analysed again; multi_stim is. */
    r = RUN("detect", "--out-dir", dir, "--resume", sample("fast_slow.h5"),
            sample("multi_stim.h5"));
    expect_exit(&r, 0);
    expect_contains(r.err, "1 input already done, skipped", "stderr");
    run_free(&r);
    cr_assert_eq(access(t2, R_OK), 0, "multi_stim table written");
    /* Other parameters: refused, nothing touched. */
    r = RUN("detect", "-q", "--out-dir", dir, "--resume", "--threshold", "4",
            sample("irregular_time.h5"));
    expect_exit(&r, 2);
    expect_contains(r.err, "other parameters", "stderr");
    run_free(&r);
    size_t len2;
    char *after = slurp_or_null(t1, &len2);
    cr_assert(len1 == len2 && memcmp(before, after, len1) == 0);
    free(before);
    free(after);
}

/* A dataset that declares 10^6 x 10^7 float32 samples (37 TB) in chunks
 * that were never written: a file of a few kB. */
static void write_huge_claim(const char *path)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(file >= 0);
    hsize_t dims[2] = {1000000, 10000000}, chunk[2] = {1, 4096};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t d = H5Dcreate2(file, "/traces", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert(d >= 0);
    double rate = 10;
    hid_t as = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, "rate_hz", H5T_NATIVE_DOUBLE, as, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &rate);
    H5Aclose(a);
    H5Sclose(as);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
}

/* The batch of the reliability issue: good, truncated, huge-claim and
 * crashing inputs together. Every good file's rows are written, every bad
 * one is named once, and the exit status is 1. */
Test(cli, batch_of_good_corrupt_huge_and_crashing_inputs)
{
    size_t len;
    char *h5 = slurp(sample("fast_slow.h5"), &len);
    const char *truncated = tmp_write("truncated.h5", h5, len / 2);
    const char *crashing = tmp_write("crashing_rig.h5", h5, len);
    free(h5);
    const char *huge = tmp_path("huge_claim.h5");
    write_huge_claim(huge);
    inject("NT_FAULT_CRASH", "crashing_rig");
    run_result r = RUN("detect", "-j", "2", sample("fast_slow.h5"), truncated,
                       huge, crashing, sample("multi_stim.h5"));
    expect_exit(&r, 1);
    csv_table t;
    expect_table(&r, 12 + 24, &t);
    csv_free(&t);
    expect_contains(r.err, "truncated.h5: ", "the truncated file is named");
    expect_contains(r.err, "huge_claim.h5: /traces: declares", "the huge claim is refused");
    expect_contains(r.err, "crashing_rig.h5: reader crashed (SIGSEGV)", "the crash is contained");
    expect_contains(r.err, "2 files ok, 3 failed", "the summary");
    run_free(&r);
}
