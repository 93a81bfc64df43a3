/* compare.c — nt_csv_compare: two CSV tables, cell by cell, with numeric
 * tolerances (used by `nirtrace compare` and the regression tests).
 *
 * Decisions the public contract leaves open:
 *  - A header difference is reported one line per differing, missing or
 *    extra column name, each counted as one difference; rows are then not
 *    compared (their columns cannot be trusted to mean the same thing), but
 *    both files are still read to the end, so that NT_OK always means that
 *    both were well-formed CSV.
 *  - A data row whose field count differs from its own file's header is a
 *    malformed table: NT_ERR_FORMAT naming the file and line, not a
 *    difference.
 *  - Rows are named by their 1-based data-row number and, when the header
 *    has them, the expected file's values of the columns file, roi and trial
 *    (for a row present in one file only, that file's values).
 *  - Cells are shown as written in the files (no reformatting), with
 *    control characters escaped and at most SHOW_BYTES bytes, so that every
 *    report is one line.
 *  - opts NULL means exact comparison (rtol = atol = 0); n_diffs may be NULL.
 *  - At most MAX_REPORTS differences are reported, then one summary line. */
#include "csv.h"
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPORTS 100
#define SHOW_BYTES 80

/* The reporting state: every difference is counted, the first MAX_REPORTS
 * are passed to the callback. */
struct differ {
    nt_compare_report_fn report;
    void *ctx;
    size_t n_diffs;
};

/* A one-line message under construction; overlong text is cut. */
struct line {
    char text[1024];
    size_t len;
};

static void line_printf(struct line *l, const char *fmt, ...) NT_PRINTF(2, 3);

static void line_printf(struct line *l, const char *fmt, ...)
{
    size_t room = sizeof l->text - l->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->text + l->len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Appends a cell's text: "" when empty, control characters escaped, cut
 * to SHOW_BYTES bytes (at a UTF-8 character boundary) with "...". */
static void line_cell(struct line *l, const char *s)
{
    if (*s == '\0') {
        line_printf(l, "\"\"");
        return;
    }
    size_t n = strlen(s);
    int cut = n > SHOW_BYTES;
    if (cut) {
        n = SHOW_BYTES;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            line_printf(l, "\\n");
        else if (c == '\r')
            line_printf(l, "\\r");
        else if (c == '\t')
            line_printf(l, "\\t");
        else if (c < 0x20 || c == 0x7F)
            line_printf(l, "\\x%02x", c);
        else
            line_printf(l, "%c", c);
    }
    if (cut)
        line_printf(l, "...");
}

static void differ_add(struct differ *d, const struct line *l)
{
    if (d->report != NULL && d->n_diffs < MAX_REPORTS)
        d->report(d->ctx, l->text);
    d->n_diffs++;
}

/* The columns that name a row, or SIZE_MAX when absent. */
struct row_ids {
    size_t col[3];
};

static const char *const id_names[3] = {"file", "roi", "trial"};

static void find_ids(struct row_ids *ids, char *const *header, size_t width)
{
    for (size_t k = 0; k < 3; k++) {
        ids->col[k] = SIZE_MAX;
        for (size_t j = 0; j < width && ids->col[k] == SIZE_MAX; j++)
            if (strcmp(header[j], id_names[k]) == 0)
                ids->col[k] = j;
    }
}

/* "row 3 (file=x.h5, roi=2, trial=1)", or "row 3" without id columns. */
static void line_row(struct line *l, size_t row, const struct row_ids *ids, char *const *cells)
{
    line_printf(l, "row %zu", row);
    const char *sep = " (";
    for (size_t k = 0; k < 3; k++) {
        if (ids->col[k] == SIZE_MAX)
            continue;
        line_printf(l, "%s%s=", sep, id_names[k]);
        line_cell(l, cells[ids->col[k]]);
        sep = ", ";
    }
    if (strcmp(sep, ", ") == 0)
        line_printf(l, ")");
}

/* Whether two numbers agree under the tolerance of nirtrace.h, which is
 * relative to the expected value x: NaN only with NaN, an infinity only with
 * the same infinity. */
/* Whether column name is in the comma-separated list (NULL: none). */
static int ignored(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return 1;
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

static int numbers_agree(double x, double y, const nt_compare_options *o)
{
    if (isnan(x) || isnan(y))
        return isnan(x) && isnan(y);
    if (isinf(x) || isinf(y))
        return x == y;
    return fabs(x - y) <= o->atol + o->rtol * fabs(x);
}

static void compare_cell(struct differ *d, const nt_compare_options *o, size_t row,
                         const struct row_ids *ids, const char *column, char *const *exp_cells,
                         const char *e, const char *a)
{
    double x, y;
    int numeric = nt_csv_parse_double(e, &x) == 0 && nt_csv_parse_double(a, &y) == 0;
    if (numeric ? numbers_agree(x, y, o) : strcmp(e, a) == 0)
        return;

    struct line l = {.len = 0};
    line_row(&l, row, ids, exp_cells);
    line_printf(&l, ": ");
    line_cell(&l, column);
    line_printf(&l, ": expected ");
    line_cell(&l, e);
    line_printf(&l, ", got ");
    line_cell(&l, a);
    if (numeric && isfinite(x) && isfinite(y)) {
        if (x != 0)
            line_printf(&l, " (rel %.1e)", fabs(y - x) / fabs(x));
        else
            line_printf(&l, " (abs %.1e)", fabs(y - x));
    }
    differ_add(d, &l);
}

/* One file of the comparison. */
struct side {
    const char *name; /* "expected" or "actual" */
    nt_csv_reader *reader;
    char **header; /* a copy: the reader's records do not outlive the next read */
    size_t width;
};

static int side_open(struct side *s, const char *path, nt_error *err)
{
    nt_error e = {0};
    int st = nt_csv_reader_open(path, NULL, &s->reader, &e);
    if (st != NT_OK)
        return nt_error_set(err, st, "%s file: %s", s->name, e.message);
    return NT_OK;
}

/* Reads the next record; *n == 0 at the end. */
static int side_read(struct side *s, char ***cells, size_t *n, nt_error *err)
{
    nt_error e = {0};
    int st = nt_csv_reader_next(s->reader, cells, n, &e);
    if (st != NT_OK)
        return nt_error_set(err, st, "%s file: %s", s->name, e.message);
    return NT_OK;
}

/* Reads the next data row; *n == 0 at the end. A row whose width differs
 * from the header's is a format error. */
static int side_next(struct side *s, char ***cells, size_t *n, nt_error *err)
{
    int st = side_read(s, cells, n, err);
    if (st != NT_OK)
        return st;
    if (*n != 0 && *n != s->width)
        return nt_error_set(err, NT_ERR_FORMAT, "%s file: line %zu: %zu fields, the header has %zu",
                            s->name, nt_csv_reader_line(s->reader), *n, s->width);
    return NT_OK;
}

/* Reads the header (none in an empty file) and keeps a copy. */
static int side_header(struct side *s, nt_error *err)
{
    char **cells;
    size_t n;
    int st = side_read(s, &cells, &n, err);
    if (st != NT_OK || n == 0)
        return st;
    s->header = calloc(n, sizeof *s->header);
    if (s->header == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a header of %zu columns", n);
    s->width = n;
    for (size_t j = 0; j < n; j++) {
        s->header[j] = nt_strdup(cells[j]);
        if (s->header[j] == NULL)
            return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a header of %zu columns", n);
    }
    return NT_OK;
}

static void side_free(struct side *s)
{
    nt_csv_reader_close(s->reader);
    nt_strings_free(s->header, s->width);
}

/* Reports each column whose name differs between the two headers. */
static void compare_headers(struct differ *d, const struct side *e, const struct side *a)
{
    size_t width = e->width > a->width ? e->width : a->width;
    for (size_t j = 0; j < width; j++) {
        struct line l = {.len = 0};
        line_printf(&l, "header column %zu: ", j + 1);
        if (j >= a->width) {
            line_cell(&l, e->header[j]);
            line_printf(&l, " only in expected");
        } else if (j >= e->width) {
            line_cell(&l, a->header[j]);
            line_printf(&l, " only in actual");
        } else if (strcmp(e->header[j], a->header[j]) != 0) {
            line_printf(&l, "expected ");
            line_cell(&l, e->header[j]);
            line_printf(&l, ", got ");
            line_cell(&l, a->header[j]);
        } else {
            continue;
        }
        differ_add(d, &l);
    }
}

/* Reads the rest of a file only to check that it is well-formed. */
static int side_drain(struct side *s, nt_error *err)
{
    char **cells;
    size_t n;
    int st;
    do
        st = side_next(s, &cells, &n, err);
    while (st == NT_OK && n != 0);
    return st;
}

int nt_csv_compare(const char *expected_path, const char *actual_path,
                   const nt_compare_options *opts, nt_compare_report_fn report, void *ctx,
                   size_t *n_diffs, nt_error *err)
{
    struct side want = {.name = "expected"}, got = {.name = "actual"};
    struct differ d = {.report = report, .ctx = ctx, .n_diffs = 0};
    nt_compare_options o = {.rtol = 0, .atol = 0, .ignore = NULL};
    int st;

    if (n_diffs != NULL)
        *n_diffs = 0;
    if (opts != NULL)
        o = *opts;
    if (!(o.rtol >= 0) || !(o.atol >= 0)) {
        st = nt_error_set(err, NT_ERR_INVALID, "tolerances must be >= 0 (rtol %g, atol %g)",
                          o.rtol, o.atol);
        goto cleanup;
    }
    if ((st = side_open(&want, expected_path, err)) != NT_OK ||
        (st = side_open(&got, actual_path, err)) != NT_OK ||
        (st = side_header(&want, err)) != NT_OK || (st = side_header(&got, err)) != NT_OK)
        goto cleanup;

    compare_headers(&d, &want, &got);
    if (d.n_diffs > 0) {
        if ((st = side_drain(&want, err)) != NT_OK || (st = side_drain(&got, err)) != NT_OK)
            goto cleanup;
    } else {
        struct row_ids ids;
        find_ids(&ids, want.header, want.width);
        for (size_t row = 1;; row++) {
            char **ec, **ac;
            size_t en, an;
            if ((st = side_next(&want, &ec, &en, err)) != NT_OK ||
                (st = side_next(&got, &ac, &an, err)) != NT_OK)
                goto cleanup;
            if (en == 0 && an == 0)
                break;
            if (en == 0 || an == 0) {
                struct line l = {.len = 0};
                line_row(&l, row, &ids, en != 0 ? ec : ac);
                line_printf(&l, ": only in %s", en != 0 ? "expected" : "actual");
                differ_add(&d, &l);
                continue;
            }
            for (size_t j = 0; j < want.width; j++)
                if (!ignored(o.ignore, want.header[j]))
                    compare_cell(&d, &o, row, &ids, want.header[j], ec, ec[j], ac[j]);
        }
    }

    if (report != NULL && d.n_diffs > MAX_REPORTS) {
        struct line l = {.len = 0};
        line_printf(&l, "... and %zu more differences", d.n_diffs - MAX_REPORTS);
        report(ctx, l.text);
    }
    if (n_diffs != NULL)
        *n_diffs = d.n_diffs;
    st = NT_OK;

cleanup:
    side_free(&want);
    side_free(&got);
    return st;
}
