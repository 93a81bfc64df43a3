/*
 * test_reader_text.c — the CSV/TSV trace reader (reader_text.c). Each test
 * writes a table into a fresh temporary directory and reads it back with
 * nt_read_text; sample values are chosen exact in float32 so that they can
 * be compared with ==.
 */
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
    tmp_dir_create("text");
}

TestSuite(reader_text, .init = make_tmp_dir, .fini = tmp_dir_remove);

/* Reads path with the default options; asserts success. */
static nt_recording *read_ok(const char *path, const nt_read_options *opts)
{
    nt_recording *rec = NULL;
    nt_error err = {0};
    int status = nt_read_text(path, opts, &rec, &err);
    cr_assert_eq(status, NT_OK, "nt_read_text: %s (%s)", nt_strerror(status), err.message);
    cr_assert_not_null(rec);
    return rec;
}

/* Reads path expecting failure with status; returns the message in err. */
static void read_fails(const char *path, const nt_read_options *opts, int status, nt_error *err)
{
    static nt_recording sentinel;
    nt_recording *rec = &sentinel; /* must be reset to NULL */
    memset(err, 0, sizeof *err);
    int got = nt_read_text(path, opts, &rec, err);
    cr_assert_eq(got, status, "expected %s, got %s (%s)", nt_strerror(status), nt_strerror(got),
                 err->message);
    cr_assert_eq(err->status, status);
    cr_assert_null(rec, "*out must be NULL on failure");
}

static void assert_shape(const nt_recording *rec, size_t n_rois, size_t n_frames)
{
    cr_assert_eq(rec->n_rois, n_rois, "n_rois %zu, expected %zu", rec->n_rois, n_rois);
    cr_assert_eq(rec->n_frames, n_frames, "n_frames %zu, expected %zu", rec->n_frames, n_frames);
}

/* ROI r of rec must be exactly expected [rec->n_frames]. */
static void assert_trace(const nt_recording *rec, size_t r, const float *expected)
{
    cr_assert_not_null(rec->traces);
    for (size_t f = 0; f < rec->n_frames; f++) {
        float got = rec->traces[r * rec->n_frames + f];
        cr_assert(got == expected[f] || (isnan(got) && isnan(expected[f])),
                  "ROI %zu frame %zu: %.9g, expected %.9g", r, f, (double)got,
                  (double)expected[f]);
    }
}

static void assert_names(const nt_recording *rec, const char *const *names)
{
    cr_assert_not_null(rec->roi_names);
    for (size_t r = 0; r < rec->n_rois; r++)
        cr_assert_str_eq(rec->roi_names[r], names[r], "ROI %zu", r);
}

static void assert_no_time(const nt_recording *rec)
{
    cr_assert_null(rec->time_s);
    cr_assert_eq(rec->time_source, NT_SOURCE_NONE);
    cr_assert(isnan(rec->rate_hz));
    cr_assert_eq(rec->n_stims, 0);
    cr_assert_null(rec->stim_s);
    cr_assert_eq(rec->stim_source, NT_SOURCE_NONE);
}

/* ------------------------------------------------------ supported tables */

Test(reader_text, imagej_multi_measure)
{
    /* As ImageJ saves a Multi Measure table: row numbers under " ", then
     * Area/Mean/Min/Max per ROI. Only the Mean columns are traces. */
    const char *p = tmp_write_text("Results.csv", " ,Area1,Mean1,Min1,Max1,Area2,Mean2,Min2,Max2\n"
                                                  "1,12,100.5,90,110,30,200.25,190,210\n"
                                                  "2,12,101.5,91,111,30,201.75,191,211\n"
                                                  "3,12,99.125,89,109,30,NaN,192,212\n"
                                                  "4,12,98,88,108,30,203,193,213\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 2, 4);
    const char *const names[] = {"Mean1", "Mean2"};
    assert_names(rec, names);
    const float mean1[] = {100.5f, 101.5f, 99.125f, 98.0f};
    const float mean2[] = {200.25f, 201.75f, NAN, 203.0f};
    assert_trace(rec, 0, mean1);
    assert_trace(rec, 1, mean2);
    assert_no_time(rec);
    cr_assert_str_eq(rec->sample_type, "text");
    cr_assert_str_eq(rec->storage, "CSV (comma), ImageJ Multi Measure");
    nt_recording_free(rec);
}

Test(reader_text, imagej_single_mean_and_named_rois)
{
    /* One ROI: plain "Mean", with a text Label column that must be skipped
     * without being parsed. */
    const char *p = tmp_write_text("single.csv", " ,Label,Area,Mean\n"
                                                 "1,stack:1,4,10.5\n"
                                                 "2,stack:2,4,11.5\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 1, 2);
    const char *const single[] = {"Mean"};
    assert_names(rec, single);
    const float v[] = {10.5f, 11.5f};
    assert_trace(rec, 0, v);
    cr_assert_str_eq(rec->storage, "CSV (comma), ImageJ Multi Measure");
    nt_recording_free(rec);

    /* Named ROIs: ImageJ writes Mean(name). */
    p = tmp_write_text("named.csv", " ,Mean(soma),Area(soma),Mean(bouton 2)\n1,5,9,6\n2,7,9,8\n");
    rec = read_ok(p, NULL);
    assert_shape(rec, 2, 2);
    const char *const named[] = {"Mean(soma)", "Mean(bouton 2)"};
    assert_names(rec, named);
    const float soma[] = {5, 7}, bouton[] = {6, 8};
    assert_trace(rec, 0, soma);
    assert_trace(rec, 1, bouton);
    nt_recording_free(rec);
}

Test(reader_text, generic_table_with_time_column)
{
    /* Irregular times must be kept as written, not regularised. */
    const char *p = tmp_write_text("t.csv", "time_s,roi_a,roi_b,roi_c\n"
                                            "0,1,10,100\n"
                                            "0.1,2,20,200\n"
                                            "0.25,3,30,300\n"
                                            "0.4,4,40,400\n"
                                            "0.53,5,50,500\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 3, 5);
    const char *const names[] = {"roi_a", "roi_b", "roi_c"};
    assert_names(rec, names);
    const float a[] = {1, 2, 3, 4, 5}, b[] = {10, 20, 30, 40, 50}, c[] = {100, 200, 300, 400, 500};
    assert_trace(rec, 0, a);
    assert_trace(rec, 1, b);
    assert_trace(rec, 2, c);
    cr_assert_not_null(rec->time_s);
    const double t[] = {0, 0.1, 0.25, 0.4, 0.53};
    for (size_t i = 0; i < 5; i++)
        cr_assert(rec->time_s[i] == t[i], "time %zu: %.17g", i, rec->time_s[i]);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME);
    cr_assert_float_eq(rec->rate_hz, 4.0 / 0.53, 1e-12);
    cr_assert_str_eq(rec->storage, "CSV (comma)");
    nt_recording_free(rec);
}

Test(reader_text, time_in_milliseconds_and_index_column_skipped)
{
    /* "Frame" first is an index; "Time_ms" (any case) is milliseconds; the
     * header is trimmed. */
    const char *p = tmp_write_text("ms.csv", "Frame, Time_ms ,cell 1\n0,0,7\n1,50,8\n2,100,9\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 1, 3);
    const char *const names[] = {"cell 1"};
    assert_names(rec, names);
    const float v[] = {7, 8, 9};
    assert_trace(rec, 0, v);
    cr_assert(rec->time_s[0] == 0 && rec->time_s[1] == 0.05 && rec->time_s[2] == 0.1);
    cr_assert_float_eq(rec->rate_hz, 20.0, 1e-12);
    nt_recording_free(rec);
}

Test(reader_text, tsv)
{
    const char *p = tmp_write_text("a.tsv", "left\tright\n1.5\t2.5\n3.5\t4.5\n5.5\t6.5\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 2, 3);
    const char *const names[] = {"left", "right"};
    assert_names(rec, names);
    const float l[] = {1.5f, 3.5f, 5.5f}, r[] = {2.5f, 4.5f, 6.5f};
    assert_trace(rec, 0, l);
    assert_trace(rec, 1, r);
    cr_assert_str_eq(rec->storage, "TSV (tab)");
    nt_recording_free(rec);
}

Test(reader_text, semicolon)
{
    const char *p = tmp_write_text("a.csv", "t;x;y\n0;1;2\n1;3;4\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 2, 2);
    const char *const names[] = {"x", "y"};
    assert_names(rec, names);
    const float x[] = {1, 3}, y[] = {2, 4};
    assert_trace(rec, 0, x);
    assert_trace(rec, 1, y);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME);
    cr_assert_str_eq(rec->storage, "CSV (semicolon)");
    nt_recording_free(rec);

    /* Decimal commas: ';' splits the header, ',' does not, so ';' is the
     * delimiter; the cells are then refused (only '.' is a decimal point). */
    p = tmp_write_text("dc.csv", "a;b\n1,5;2,5\n3,25;4,5\n");
    nt_error err;
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 2, column 1: '1,5' is not a number");
}

Test(reader_text, quoted_header_with_delimiter_inside)
{
    /* The delimiter probe and the table both go through the RFC 4180
     * reader: a comma inside quotes is part of the name. */
    const char *p = tmp_write_text("q.csv", "\"ROI 1, soma\",\"ROI \"\"2\"\"\"\n1,2\n3,4\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 2, 2);
    const char *const names[] = {"ROI 1, soma", "ROI \"2\""};
    assert_names(rec, names);
    nt_recording_free(rec);
}

Test(reader_text, no_header_rois_by_frames)
{
    /* numpy.savetxt of a [rois][frames] array: no header, one row per ROI. */
    const char *p = tmp_write_text("rbf.csv", "1.0e+00 ,2,3,4,5\n6,7,8,9,10\n-1,-2,-3,-4,-5\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 3, 5);
    const float r0[] = {1, 2, 3, 4, 5}, r1[] = {6, 7, 8, 9, 10}, r2[] = {-1, -2, -3, -4, -5};
    assert_trace(rec, 0, r0);
    assert_trace(rec, 1, r1);
    assert_trace(rec, 2, r2);
    cr_assert_null(rec->roi_names);
    assert_no_time(rec);
    cr_assert_str_eq(rec->storage, "CSV (comma)");
    nt_recording_free(rec);
}

Test(reader_text, one_column_without_header_is_one_trace)
{
    /* numpy.savetxt of a 1-D trace: one value per line. */
    const char *p = tmp_write_text("one.csv", "5\n6\n7\n8\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 1, 4);
    const float v[] = {5, 6, 7, 8};
    assert_trace(rec, 0, v);
    nt_recording_free(rec);
}

Test(reader_text, explicit_layout_overrides)
{
    nt_read_options o;
    nt_read_options_default(&o);

    /* No header, read as frames-by-ROIs: each column a ROI, unnamed. */
    const char *p = tmp_write_text("m.csv", "1,2,3\n4,5,6\n");
    o.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    nt_recording *rec = read_ok(p, &o);
    assert_shape(rec, 3, 2);
    const float c0[] = {1, 4}, c1[] = {2, 5}, c2[] = {3, 6};
    assert_trace(rec, 0, c0);
    assert_trace(rec, 1, c1);
    assert_trace(rec, 2, c2);
    cr_assert_null(rec->roi_names);
    nt_recording_free(rec);

    /* A header (frame labels), read as ROIs-by-frames: the header row is
     * skipped, each data row is a ROI. */
    p = tmp_write_text("h.csv", "f0,f1,f2\n1,2,3\n4,5,6\n");
    o.layout = NT_LAYOUT_ROIS_BY_FRAMES;
    rec = read_ok(p, &o);
    assert_shape(rec, 2, 3);
    const float r0[] = {1, 2, 3}, r1[] = {4, 5, 6};
    assert_trace(rec, 0, r0);
    assert_trace(rec, 1, r1);
    cr_assert_null(rec->roi_names);
    nt_recording_free(rec);

    /* A numeric header forced with header = 1: the names are kept. */
    p = tmp_write_text("n.csv", "1,2\n10,20\n11,21\n");
    o.layout = NT_LAYOUT_AUTO;
    o.header = 1;
    rec = read_ok(p, &o);
    assert_shape(rec, 2, 2);
    const char *const names[] = {"1", "2"};
    assert_names(rec, names);
    nt_recording_free(rec);

    /* A forced delimiter wins over detection: ';' on a comma file gives one
     * column, whose cells "1,2" are not numbers. */
    nt_read_options_default(&o);
    o.delimiter = ';';
    o.header = 0;
    nt_error err;
    read_fails(p, &o, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 1, column 1: '1,2' is not a number");
}

Test(reader_text, crlf_line_ends)
{
    const char *p = tmp_write_text("crlf.csv", "t,a,b\r\n0,1,2\r\n0.5,3,4\r\n1,5,6\r\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 2, 3);
    const char *const names[] = {"a", "b"};
    assert_names(rec, names);
    const float a[] = {1, 3, 5}, b[] = {2, 4, 6};
    assert_trace(rec, 0, a);
    assert_trace(rec, 1, b);
    cr_assert(rec->time_s[2] == 1.0);
    nt_recording_free(rec);
}

Test(reader_text, utf8_bom)
{
    /* The BOM must not become part of the first header ("time"). */
    const char *p = tmp_write_text("bom.csv", "\xEF\xBB\xBFtime,\xC2\xB5m\n0,1\n0.5,2\n");
    nt_recording *rec = read_ok(p, NULL);
    assert_shape(rec, 1, 2);
    const char *const names[] = {"\xC2\xB5m"};
    assert_names(rec, names);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME);
    cr_assert_float_eq(rec->rate_hz, 2.0, 1e-12);
    nt_recording_free(rec);

    /* Without a header: a BOM before the first number. */
    p = tmp_write_text("bom2.csv", "\xEF\xBB\xBF" "1,2\n3,4\n");
    rec = read_ok(p, NULL);
    assert_shape(rec, 2, 2);
    const float r0[] = {1, 2};
    assert_trace(rec, 0, r0);
    nt_recording_free(rec);
}

Test(reader_text, nan_inf_and_out_of_float_range)
{
    const char *p = tmp_write_text("x.csv", "a,b\nnan,1e300\n-inf,-1e300\n");
    nt_recording *rec = read_ok(p, NULL);
    const float a[] = {NAN, -INFINITY}, b[] = {INFINITY, -INFINITY};
    assert_trace(rec, 0, a);
    assert_trace(rec, 1, b);
    nt_recording_free(rec);
}

Test(reader_text, header_only)
{
    const char *p = tmp_write_text("h.csv", "time,a,b\n0,1,2\n0.25,3,4\n0.5,5,6\n");
    nt_read_options o;
    nt_read_options_default(&o);
    o.header_only = 1;
    nt_recording *rec = read_ok(p, &o);
    assert_shape(rec, 2, 3);
    cr_assert_null(rec->traces);
    const char *const names[] = {"a", "b"};
    assert_names(rec, names);
    cr_assert_not_null(rec->time_s);
    cr_assert(rec->time_s[1] == 0.25);
    cr_assert_float_eq(rec->rate_hz, 4.0, 1e-12);
    cr_assert_str_eq(rec->sample_type, "text");
    nt_recording_free(rec);

    /* The cells are still checked. */
    p = tmp_write_text("bad.csv", "a\n1\nx\n");
    nt_error err;
    read_fails(p, &o, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 3, column 1: 'x' is not a number");
}

/* ---------------------------------------------------------------- limits */

Test(reader_text, max_bytes_limit)
{
    /* 3 ROIs x 4 frames = 48 bytes of float32. */
    const char *p = tmp_write_text("big.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9\n10,11,12\n");
    nt_read_options o;
    nt_read_options_default(&o);
    o.max_bytes = 48;
    nt_recording *rec = read_ok(p, &o);
    assert_shape(rec, 3, 4);
    nt_recording_free(rec);

    nt_error err;
    o.max_bytes = 47;
    read_fails(p, &o, NT_ERR_TOO_LARGE, &err);
    cr_assert_str_eq(err.message, "line 5: the traces take more than the 47 bytes limit");

    /* A MiB-sized limit is written in MiB; a large ROIs-by-frames table. */
    size_t n_frames = 200000, len = 0, cap = 2 * n_frames * 2 + 16;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    for (int r = 0; r < 2; r++) {
        for (size_t f = 0; f < n_frames; f++) {
            text[len++] = '1';
            text[len++] = f + 1 < n_frames ? ',' : '\n';
        }
    }
    p = tmp_write("long.csv", text, len);
    free(text);
    o.max_bytes = (size_t)1 << 20;
    read_fails(p, &o, NT_ERR_TOO_LARGE, &err);
    cr_assert_str_eq(err.message, "line 2: the traces take more than the 1.0 MiB limit");

    /* header_only stores no samples, so the limit does not apply to them. */
    o.header_only = 1;
    rec = read_ok(p, &o);
    assert_shape(rec, 2, n_frames);
    cr_assert_null(rec->traces);
    nt_recording_free(rec);
}

/* ---------------------------------------------------------------- errors */

Test(reader_text, malformed_cell)
{
    const char *p = tmp_write_text("bad.csv", "a,b,c\n1,2,3\n4,5,6\n7,abc,9\n");
    nt_error err;
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 4, column 2: 'abc' is not a number");

    /* A long cell is cut in the message; an empty cell is named as such. */
    p = tmp_write_text("long.csv", "a,b\n1,0123456789012345678901234567890123456789xyz\n");
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "line 2, column 2: '0123456789012345678901234567890123456789...' is not a "
                     "number");
    p = tmp_write_text("empty.csv", "a,b\n1,2\n3,\n");
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 3, column 2: empty cell, expected a number");
}

Test(reader_text, ragged_row)
{
    const char *p = tmp_write_text("ragged.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,2,3\n4,5,6\n7,8\n");
    nt_error err;
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 7: 2 fields, expected 3");

    /* A blank line inside the table is a row of one field. */
    p = tmp_write_text("blank.csv", "a,b\n1,2\n\n3,4\n");
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 3: 1 field, expected 2");

    /* Ragged in the ROIs-by-frames layout, the first row setting the count. */
    p = tmp_write_text("rbf.csv", "1,2,3\n4,5,6,7\n");
    read_fails(p, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "line 2: 4 fields, expected 3");
}

Test(reader_text, empty_and_header_only_files)
{
    nt_error err;
    read_fails(tmp_write_text("empty.csv", ""), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "file is empty");

    read_fails(tmp_write_text("blank.csv", "\n\r\n\n"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "no data: the file holds only blank lines");

    read_fails(tmp_write_text("header.csv", "time,a,b\n"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "no data rows after the header (line 1)");

    /* Leading blank lines are skipped; the header's line is named. */
    read_fails(tmp_write_text("header2.csv", "\n\n Mean1,Mean2\n\n"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "no data rows after the header (line 3)");
}

Test(reader_text, header_without_roi_columns_or_with_two_time_columns)
{
    nt_error err;
    read_fails(tmp_write_text("t.csv", "frame,time\n0,0\n1,1\n"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "line 1: no ROI columns (the header has only time and index columns)");

    read_fails(tmp_write_text("tt.csv", "time,a,time_ms\n0,1,0\n1,2,1000\n"), NULL, NT_ERR_FORMAT,
               &err);
    cr_assert_str_eq(err.message,
                     "line 1, column 3: a second time column ('time_ms'; column 1 is one "
                     "already)");
}

Test(reader_text, malformed_csv_is_reported_with_its_place)
{
    nt_error err;
    read_fails(tmp_write_text("q.csv", "a,b\n1,2\n3,\"4\n"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "line 3, column 2: quoted field not closed before the end of the file");
}

Test(reader_text, bad_arguments_and_missing_files)
{
    nt_error err;
    nt_read_options o;
    const char *p = tmp_write_text("ok.csv", "1,2\n");
    nt_read_options_default(&o);
    o.delimiter = '|';
    read_fails(p, &o, NT_ERR_INVALID, &err);
    nt_read_options_default(&o);
    o.layout = 7;
    read_fails(p, &o, NT_ERR_INVALID, &err);
    nt_read_options_default(&o);
    o.header = 2;
    read_fails(p, &o, NT_ERR_INVALID, &err);
    cr_assert_eq(nt_read_text(p, NULL, NULL, &err), NT_ERR_INVALID);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.csv", tmp_dir);
    read_fails(missing, NULL, NT_ERR_IO, &err);
    cr_assert_str_eq(err.message, "cannot open: No such file or directory");
    read_fails(tmp_dir, NULL, NT_ERR_IO, &err);
    cr_assert_str_eq(err.message, "is a directory");
}
