/* test_csv.c — the CSV/TSV reader (csv.c), the strict number parser and
 * nt_csv_compare (compare.c). Input files are written into a fresh
 * temporary directory per test. */
#include "csv.h"
#include "internal.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixtures */

static void make_tmp_dir(void)
{
    tmp_dir_create("csv");
}

TestSuite(csv, .init = make_tmp_dir, .fini = tmp_dir_remove);
TestSuite(compare, .init = make_tmp_dir, .fini = tmp_dir_remove);

/* Reads every record of path and writes them into out as
 * "<line>[field|field...]" per record, with \n, \r and \t in fields shown
 * as escapes. Returns the reader's status (the records before an error are
 * in out). */
static int dump(const char *path, const nt_csv_options *opts, char *out, size_t len,
                nt_error *err)
{
    nt_csv_reader *r = NULL;
    int st = nt_csv_reader_open(path, opts, &r, err);
    size_t used = 0;
    out[0] = '\0';
    while (st == NT_OK) {
        char **f;
        size_t n;
        st = nt_csv_reader_next(r, &f, &n, err);
        if (st != NT_OK || n == 0)
            break;
        used += (size_t)snprintf(out + used, len - used, "%zu[", nt_csv_reader_line(r));
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                out[used++] = '|';
            for (const char *p = f[i]; *p != '\0'; p++) {
                const char *esc = *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : *p == '\t' ? "\\t" : NULL;
                if (esc != NULL)
                    used += (size_t)snprintf(out + used, len - used, "%s", esc);
                else
                    out[used++] = *p;
            }
        }
        used += (size_t)snprintf(out + used, len - used, "]");
        cr_assert_lt(used, len - 64, "dump buffer too small");
    }
    nt_csv_reader_close(r);
    return st;
}

static nt_csv_options opts_with_delim(char delim)
{
    nt_csv_options o;
    nt_csv_options_default(&o);
    o.delimiter = delim;
    return o;
}

/* Writes text into tmp_dir/name and reads it with opts: every record must
 * read without error, and their dump must be expected. */
static void expect_dump(const char *name, const nt_csv_options *opts, const char *text,
                        const char *expected)
{
    char out[256];
    nt_error err = {0};
    const char *p = tmp_write_text(name, text);
    cr_assert_eq(dump(p, opts, out, sizeof out, &err), NT_OK, "%s", err.message);
    cr_assert_str_eq(out, expected);
}

/* ---------------------------------------------------------- the reader */

Test(csv, simple_records_and_line_numbers)
{
    expect_dump("a.csv", NULL, "a,b,c\n1,2,3\n,x,\n", "1[a|b|c]2[1|2|3]3[|x|]");
}

Test(csv, last_record_without_line_end)
{
    expect_dump("a.csv", NULL, "a,b\n1,2", "1[a|b]2[1|2]");
}

Test(csv, quoted_fields_with_delimiters_and_doubled_quotes)
{
    expect_dump("a.csv", NULL, "\"a,b\",\"say \"\"hi\"\"\",\"\",plain\n\"\"\"\",x\n",
                "1[a,b|say \"hi\"||plain]2[\"|x]");
}

Test(csv, embedded_line_ends_are_kept_and_counted)
{
    expect_dump("a.csv", NULL, "h1,h2\n\"two\nlines\",x\n\"crlf\r\ninside\",y\r\nlast,z\n",
                "1[h1|h2]2[two\\nlines|x]4[crlf\\r\\ninside|y]6[last|z]");
}

Test(csv, crlf_and_cr_line_ends)
{
    expect_dump("a.csv", NULL, "a,b\r\n1,2\r\n3,4\r5,6", "1[a|b]2[1|2]3[3|4]4[5|6]");
}

Test(csv, utf8_bom_is_skipped_only_at_the_start)
{
    expect_dump("a.csv", NULL, "\xEF\xBB\xBF" "file,roi\nx\xEF\xBB\xBF,1\n",
                "1[file|roi]2[x\xEF\xBB\xBF|1]");
}

Test(csv, tab_and_semicolon_delimiters)
{
    nt_csv_options tab = opts_with_delim('\t');
    expect_dump("a.tsv", &tab, "t\tf,g\n1.5\t\"q\tq\"\n", "1[t|f,g]2[1.5|q\\tq]");
    nt_csv_options semi = opts_with_delim(';');
    expect_dump("b.csv", &semi, "a;b,c\n\"x;y\";2,5\n", "1[a|b,c]2[x;y|2,5]");
}

Test(csv, invalid_delimiter_is_refused)
{
    nt_csv_options o = opts_with_delim('"');
    nt_csv_reader *r = (nt_csv_reader *)&o;
    nt_error err = {0};
    const char *p = tmp_write_text("a.csv", "a\n");
    cr_assert_eq(nt_csv_reader_open(p, &o, &r, &err), NT_ERR_INVALID);
    cr_assert_null(r);
    cr_assert_not_null(strstr(err.message, "delimiter"), "%s", err.message);
}

Test(csv, blank_lines_inside_are_records_trailing_ones_ignored)
{
    expect_dump("a.csv", NULL, "a,b\n\n1,2\r\n\r\n\n3,4\n\n\r\n\n", "1[a|b]2[]3[1|2]4[]5[]6[3|4]");
}

Test(csv, empty_and_blank_only_files_have_no_records)
{
    char out[64];
    nt_error err = {0};
    cr_assert_eq(dump(tmp_write_text("e.csv", ""), NULL, out, sizeof out, &err), NT_OK);
    cr_assert_str_eq(out, "");
    cr_assert_eq(dump(tmp_write_text("b.csv", "\n\r\n\n"), NULL, out, sizeof out, &err), NT_OK);
    cr_assert_str_eq(out, "");
    cr_assert_eq(dump(tmp_write_text("bom.csv", "\xEF\xBB\xBF"), NULL, out, sizeof out, &err),
                 NT_OK);
    cr_assert_str_eq(out, "");
}

Test(csv, end_of_input_is_repeated)
{
    nt_csv_reader *r = NULL;
    nt_error err = {0};
    char **f;
    size_t n;
    cr_assert_eq(nt_csv_reader_open(tmp_write_text("a.csv", "x\n"), NULL, &r, &err), NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(f[0], "x");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_OK);
        cr_assert_eq(n, 0);
        cr_assert_null(f);
    }
    nt_csv_reader_close(r);
}

Test(csv, unterminated_quote_names_its_line_and_column)
{
    char out[256];
    nt_error err = {0};
    const char *p = tmp_write_text("a.csv", "a,b\n1,2\n3,\"open\n4,5\n");
    cr_assert_eq(dump(p, NULL, out, sizeof out, &err), NT_ERR_FORMAT);
    cr_assert_str_eq(out, "1[a|b]2[1|2]", "records before the error: %s", out);
    cr_assert_str_eq(err.message,
                     "line 3, column 2: quoted field not closed before the end of the file");
}

Test(csv, errors_are_sticky)
{
    nt_csv_reader *r = NULL;
    nt_error err = {0};
    char **f;
    size_t n;
    cr_assert_eq(nt_csv_reader_open(tmp_write_text("a.csv", "\"x\"y\nok\n"), NULL, &r, &err),
                 NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "line 1, column 1: unexpected 'y' after a closing quote");
    memset(&err, 0, sizeof err);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_ERR_FORMAT);
    cr_assert_eq(n, 0);
    cr_assert_null(f);
    cr_assert_str_eq(err.message, "line 1, column 1: unexpected 'y' after a closing quote");
    nt_csv_reader_close(r);
}

Test(csv, stray_quote_and_nul_byte_are_errors)
{
    char out[256];
    nt_error err = {0};
    cr_assert_eq(dump(tmp_write_text("q.csv", "a,b\n1,x\"y\n"), NULL, out, sizeof out, &err),
                 NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "line 2, column 2: quote inside an unquoted field");
    cr_assert_eq(dump(tmp_write("z.csv", "a,b\n1,2\0\n", 9), NULL, out, sizeof out, &err),
                 NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "line 2, column 2: NUL byte (not a text file?)");
}

Test(csv, field_length_limit)
{
    size_t max = NT_CSV_MAX_FIELD_BYTES;
    char *text = malloc(max + 16);
    cr_assert_not_null(text);
    memset(text, 'x', max + 1);
    memcpy(text + max, ",y\n", 3);
    nt_csv_reader *r = NULL;
    nt_error err = {0};
    char **f;
    size_t n;

    cr_assert_eq(nt_csv_reader_open(tmp_write("ok.csv", text, max + 3), NULL, &r, &err),
                 NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 2);
    cr_assert_eq(strlen(f[0]), max);
    nt_csv_reader_close(r);

    memset(text, 'x', max + 1);
    memcpy(text + max + 1, ",y\n", 3);
    cr_assert_eq(nt_csv_reader_open(tmp_write("long.csv", text, max + 4), NULL, &r, &err),
                 NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "line 1, column 1: field longer than 1048576 bytes");
    nt_csv_reader_close(r);
    free(text);

    nt_csv_options o;
    nt_csv_options_default(&o);
    o.max_field_bytes = 4;
    char out[128];
    const char *q = tmp_write_text("q.csv", "a\n\"1234\",\"12\"\"34\"\n");
    cr_assert_eq(dump(q, &o, out, sizeof out, &err), NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "line 2, column 2: field longer than 4 bytes");
}

Test(csv, field_count_limit)
{
    size_t max = NT_CSV_MAX_FIELDS;
    char *text = malloc(max + 2);
    cr_assert_not_null(text);
    nt_csv_reader *r = NULL;
    nt_error err = {0};
    char **f;
    size_t n;

    memset(text, ',', max - 1); /* max - 1 commas: max empty fields */
    text[max - 1] = '\n';
    cr_assert_eq(nt_csv_reader_open(tmp_write("ok.csv", text, max), NULL, &r, &err), NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, max);
    cr_assert_str_eq(f[max - 1], "");
    nt_csv_reader_close(r);

    memset(text, ',', max);
    text[max] = '\n';
    cr_assert_eq(nt_csv_reader_open(tmp_write("wide.csv", text, max + 1), NULL, &r, &err),
                 NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "line 1, column 1000001: more than 1000000 fields");
    nt_csv_reader_close(r);
    free(text);
}

Test(csv, record_size_limit)
{
    nt_csv_options o;
    nt_csv_options_default(&o);
    o.max_record_bytes = 8; /* "abc" "de" "f" take 4 + 3 + 2 = 9 with their NULs */
    char out[128];
    nt_error err = {0};
    cr_assert_eq(dump(tmp_write_text("a.csv", "abc,de\n\nabc,de,f\n"), &o, out, sizeof out, &err),
                 NT_ERR_FORMAT);
    cr_assert_str_eq(out, "1[abc|de]2[]");
    cr_assert_str_eq(err.message, "line 3: record longer than 8 bytes");
}

Test(csv, missing_file_is_an_io_error)
{
    nt_csv_reader *r = NULL;
    nt_error err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/none.csv", tmp_dir);
    cr_assert_eq(nt_csv_reader_open(path, NULL, &r, &err), NT_ERR_IO);
    cr_assert_null(r);
    cr_assert_str_eq(err.message, "No such file or directory");
    nt_csv_reader_close(NULL);
}

Test(csv, reader_over_a_stream_leaves_it_open)
{
    static char text[] = "\xEF\xBB\xBFk;v\n\"a\";1\n";
    FILE *fp = fmemopen(text, strlen(text), "r");
    cr_assert_not_null(fp);
    nt_csv_options o = opts_with_delim(';');
    nt_csv_reader *r = NULL;
    nt_error err = {0};
    char **f;
    size_t n;
    cr_assert_eq(nt_csv_reader_open_file(fp, &o, &r, &err), NT_OK);
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(f[0], "k");
    cr_assert_eq(nt_csv_reader_next(r, &f, &n, &err), NT_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(f[0], "a");
    cr_assert_str_eq(f[1], "1");
    cr_assert_eq(nt_csv_reader_line(r), 2);
    nt_csv_reader_close(r);
    rewind(fp);
    cr_assert_eq(fgetc(fp), 0xEF, "the stream must still be usable after close");
    cr_assert_eq(fclose(fp), 0);
}

/* ---------------------------------------------------------- numbers */

Test(csv, parse_double_accepts_whole_numbers)
{
    static const struct {
        const char *text;
        double value;
    } ok[] = {
        {"1", 1.0},      {"-2.5", -2.5},      {" 3e-2 ", 3e-2}, {"+.5", 0.5},
        {"5.", 5.0},     {"\t7E+1\t", 70.0},  {"0.051", 0.051}, {"-0", -0.0},
        {"Inf", INFINITY}, {"-Inf", -INFINITY}, {"inf", INFINITY}, {"Infinity", INFINITY},
        {"1e999", INFINITY},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double v = 12345.0;
        cr_assert_eq(nt_csv_parse_double(ok[i].text, &v), 0, "\"%s\" refused", ok[i].text);
        cr_assert_eq(v, ok[i].value, "\"%s\" -> %g", ok[i].text, v);
    }
    const char *nans[] = {"NaN", "nan", "NAN", " -nan "};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        double v = 0.0;
        cr_assert_eq(nt_csv_parse_double(nans[i], &v), 0, "\"%s\" refused", nans[i]);
        cr_assert(isnan(v), "\"%s\" -> %g", nans[i], v);
    }
}

Test(csv, parse_double_refuses_partial_numbers)
{
    const char *bad[] = {"",    " ",     "1x",   "x1",  "1 2", "0x10", "nan(1)", "1e",
                         "e5",  ".",     "-",    "+-1", "1,5", "1.2.3", "infx",  "1e+"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = 42.0;
        cr_assert_eq(nt_csv_parse_double(bad[i], &v), -1, "\"%s\" accepted", bad[i]);
        cr_assert_eq(v, 42.0, "\"%s\" changed the output", bad[i]);
    }
}

/* ------------------------------------------------------------- compare */

/* Collects the report lines. */
struct lines {
    size_t n;
    char *v[256];
};

static void collect(void *ctx, const char *line)
{
    struct lines *l = ctx;
    if (l->n < 256)
        l->v[l->n] = nt_strdup(line);
    l->n++;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n && i < 256; i++)
        free(l->v[i]);
}

#define HEADER "file,roi,trial,amplitude_dff,snr\n"

static int compare_text(const char *expected, const char *actual, double rtol, double atol,
                        struct lines *l, size_t *n_diffs, nt_error *err)
{
    const char *e = tmp_write_text("expected.csv", expected);
    const char *a = tmp_write_text("actual.csv", actual);
    nt_compare_options o = {.rtol = rtol, .atol = atol};
    return nt_csv_compare(e, a, &o, collect, l, n_diffs, err);
}

Test(compare, identical_files_have_no_differences)
{
    const char *text = HEADER "x.h5,0,0,0.051,12.5\nx.h5,0,1,nan,\"a,b\"\n";
    struct lines l = {0};
    size_t n = 99;
    nt_error err = {0};
    cr_assert_eq(compare_text(text, text, 0, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 0);
    cr_assert_eq(l.n, 0);
}

Test(compare, value_within_tolerance_agrees)
{
    const char *e = HEADER "x.h5,0,0,0.051,12.5\n";
    const char *a = HEADER "x.h5,0,0,0.05105,12.5\n";
    struct lines l = {0};
    size_t n = 99;
    nt_error err = {0};
    cr_assert_eq(compare_text(e, a, 1e-3, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 0);
    cr_assert_eq(compare_text(e, a, 1e-4, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 1, "the same values must differ under a tighter rtol");
    cr_assert_eq(compare_text(e, a, 0, 1e-4, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 0, "atol alone must cover the difference");
    lines_free(&l);
}

Test(compare, tolerance_is_relative_to_the_expected_value)
{
    struct lines l = {0};
    size_t n = 99;
    nt_error err = {0};
    /* |111 - 100| = 11: more than 0.1 * 100, less than 0.1 * 111. */
    cr_assert_eq(compare_text("v\n100\n", "v\n111\n", 0.1, 0, &l, &n, &err), NT_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(l.v[0], "row 1: v: expected 100, got 111 (rel 1.1e-01)");
    cr_assert_eq(compare_text("v\n111\n", "v\n100\n", 0.1, 0, &l, &n, &err), NT_OK);
    cr_assert_eq(n, 0);
    lines_free(&l);
}

Test(compare, value_outside_tolerance_is_reported_with_the_row_ids)
{
    const char *e = HEADER "x.h5,2,0,0.05,9\nx.h5,2,1,0.051,12.5\n";
    const char *a = HEADER "x.h5,2,0,0.05,9\nx.h5,2,1,0.049,12.5\n";
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(compare_text(e, a, 1e-3, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.v[0], "row 2 (file=x.h5, roi=2, trial=1): amplitude_dff: expected 0.051, "
                             "got 0.049 (rel 3.9e-02)");
    lines_free(&l);
}

Test(compare, rows_without_id_columns_are_named_by_number)
{
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(compare_text("a,b\n1,x\n0,y\n", "a,b\n1,x\n1e-3,z\n", 0, 0, &l, &n, &err),
                 NT_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.v[0], "row 2: a: expected 0, got 1e-3 (abs 1.0e-03)");
    cr_assert_str_eq(l.v[1], "row 2: b: expected y, got z");
    lines_free(&l);
}

Test(compare, nan_inf_and_strings)
{
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    const char *e = "k,v\nnan,NaN\ninf,-inf\n1.0,abc\n";
    cr_assert_eq(compare_text(e, "k,v\nNaN,nan\nInf,-Inf\n1,abc\n", 0, 0, &l, &n, &err), NT_OK);
    cr_assert_eq(n, 0, "NaN = NaN, Inf = Inf, 1.0 = 1");
    cr_assert_eq(compare_text(e, "k,v\n0.1,NaN\n-inf,-inf\n1.0,abd\n", 1, 1, &l, &n, &err),
                 NT_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(l.n, 3);
    cr_assert_str_eq(l.v[0], "row 1: k: expected nan, got 0.1");
    cr_assert_str_eq(l.v[1], "row 2: k: expected inf, got -inf");
    cr_assert_str_eq(l.v[2], "row 3: v: expected abc, got abd");
    lines_free(&l);
}

Test(compare, rows_in_one_file_only)
{
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    const char *two = HEADER "x.h5,0,0,1,2\nx.h5,0,1,1,2\n";
    const char *three = HEADER "x.h5,0,0,1,2\nx.h5,0,1,1,2\ny.h5,3,4,1,2\n";
    cr_assert_eq(compare_text(two, three, 0, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(l.v[0], "row 3 (file=y.h5, roi=3, trial=4): only in actual");
    cr_assert_eq(compare_text(three, "file,roi,trial,amplitude_dff,snr\n", 0, 0, &l, &n, &err),
                 NT_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(l.v[1], "row 1 (file=x.h5, roi=0, trial=0): only in expected");
    cr_assert_str_eq(l.v[3], "row 3 (file=y.h5, roi=3, trial=4): only in expected");
    lines_free(&l);
}

Test(compare, header_mismatch_is_reported_and_rows_are_not_compared)
{
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    const char *e = "file,roi,trial,snr\nx,1,2,3\n";
    const char *a = "file,trial,roi\ny,9,9\nz,8,8\n";
    cr_assert_eq(compare_text(e, a, 0, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 3);
    cr_assert_eq(l.n, 3);
    cr_assert_str_eq(l.v[0], "header column 2: expected roi, got trial");
    cr_assert_str_eq(l.v[1], "header column 3: expected trial, got roi");
    cr_assert_str_eq(l.v[2], "header column 4: snr only in expected");
    lines_free(&l);
}

Test(compare, many_differences_are_capped_but_all_counted)
{
    char e[4096] = "v\n", a[4096] = "v\n";
    for (int i = 0; i < 150; i++) {
        snprintf(e + strlen(e), sizeof e - strlen(e), "%d\n", i);
        snprintf(a + strlen(a), sizeof a - strlen(a), "%d\n", i + 1000);
    }
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(compare_text(e, a, 0, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 150);
    cr_assert_eq(l.n, 101);
    cr_assert_str_eq(l.v[99], "row 100: v: expected 99, got 1099 (rel 1.0e+01)");
    cr_assert_str_eq(l.v[100], "... and 50 more differences");
    lines_free(&l);
}

Test(compare, long_and_multiline_cells_stay_on_one_line)
{
    char e[512] = "k,v\n\"", a[] = "k,v\n\"two\nlines\",1\n";
    memset(e + strlen(e), 'a', 100);
    strcat(e, "\",1\n");
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(compare_text(e, a, 0, 0, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    char want[512];
    snprintf(want, sizeof want, "row 1: k: expected %.80s..., got two\\nlines",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    cr_assert_str_eq(l.v[0], want);
    lines_free(&l);
}

Test(compare, null_report_still_counts)
{
    const char *e = tmp_write_text("e.csv", "a\n1\n2\n");
    const char *a = tmp_write_text("a.csv", "a\n1\n3\n4\n");
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(nt_csv_compare(e, a, NULL, NULL, NULL, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 2);
}

Test(compare, missing_file_is_an_io_error_naming_the_side)
{
    char none[600];
    snprintf(none, sizeof none, "%s/none.csv", tmp_dir);
    const char *ok = tmp_write_text("ok.csv", "a\n1\n");
    size_t n = 7;
    nt_error err = {0};
    cr_assert_eq(nt_csv_compare(none, ok, NULL, NULL, NULL, &n, &err), NT_ERR_IO);
    cr_assert_str_eq(err.message, "expected file: No such file or directory");
    cr_assert_eq(n, 0);
    cr_assert_eq(nt_csv_compare(ok, none, NULL, NULL, NULL, &n, &err), NT_ERR_IO);
    cr_assert_str_eq(err.message, "actual file: No such file or directory");
}

Test(compare, malformed_files_are_format_errors)
{
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(compare_text("a,b\n1,2\n3,4\n", "a,b\n1,2\n3,\"4\n", 0, 0, &l, &n, &err),
                 NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "actual file: line 3, column 2: quoted field not closed "
                                  "before the end of the file");
    cr_assert_eq(compare_text("a,b\n1,2\n\n3,4\n", "a,b\n1,2\n3,4\n", 0, 0, &l, &n, &err),
                 NT_ERR_FORMAT);
    cr_assert_str_eq(err.message, "expected file: line 3: 1 fields, the header has 2");
    cr_assert_eq(compare_text("a,b\n1,2\n", "a,c\n1,2,3\n", 0, 0, &l, &n, &err), NT_ERR_FORMAT,
                 "a ragged row is an error even after a header mismatch");
    cr_assert_str_eq(err.message, "actual file: line 2: 3 fields, the header has 2");
    lines_free(&l);
}

Test(compare, negative_tolerance_is_invalid)
{
    struct lines l = {0};
    size_t n = 0;
    nt_error err = {0};
    cr_assert_eq(compare_text("a\n1\n", "a\n1\n", -1e-3, 0, &l, &n, &err), NT_ERR_INVALID);
    cr_assert_eq(compare_text("a\n1\n", "a\n1\n", 0, NAN, &l, &n, &err), NT_ERR_INVALID);
    cr_assert_eq(l.n, 0);
}

Test(compare, ignored_columns_are_not_compared)
{
    const char *e = tmp_write_text("expected.csv", HEADER "x.h5,r1,1,0.051,12.5\n");
    const char *a = tmp_write_text("actual.csv", HEADER "y.wav,1,1,0.051,12.5\n");
    struct lines l = {0};
    size_t n = 99;
    nt_error err = {0};
    nt_compare_options o = {.rtol = 0, .atol = 0, .ignore = "file,roi"};
    cr_assert_eq(nt_csv_compare(e, a, &o, collect, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 0);
    o.ignore = "file";
    cr_assert_eq(nt_csv_compare(e, a, &o, collect, &l, &n, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, 1, "roi still compared");
    lines_free(&l);
}
