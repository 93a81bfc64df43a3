/*
 * reader_text.c — reads traces from a CSV, TSV or semicolon-separated table.
 *
 * Three kinds of table are read:
 *  - ImageJ/Fiji "Multi Measure" results: a header whose columns include
 *    Mean1, Mean2, ... (or Mean(name) for a named ROI, or a single plain
 *    Mean), among Area1, Min1, IntDen1, Label, Slice, ... and a leading row
 *    number column headed " ". Each Mean column is one ROI, named by its
 *    header; the other columns are skipped without being parsed (Label holds
 *    text). Rows are frames.
 *  - A generic frames-by-ROIs table with a header: one column per ROI, named
 *    by its header, rows are frames. A column headed time, time_s, t, t_s,
 *    seconds (or "time (s)", "time [s]") is the time axis in seconds; time_ms
 *    (or t_ms, "time (ms)", "time [ms]") in milliseconds; names are matched
 *    without regard to case or surrounding blanks. A first column headed "",
 *    frame, index or # is a row index and is skipped.
 *  - The ROIs-by-frames table without a header that lab scripts write
 *    (numpy.savetxt of a [rois][frames] array): one row per ROI.
 *
 * Detection, each step overridden by its option:
 *  - delimiter: each of ',', tab, ';' is tried on the first few non-blank
 *    records (through the CSV reader, so quoting is honoured). A delimiter
 *    that splits the first record beats one that does not; then one that
 *    gives the same field count on all the records, without a CSV error,
 *    beats one that does not; then the most fields wins, then the order
 *    above (a one-column file is "CSV (comma)"). Splitting comes first so
 *    that a ragged comma file is reported as ragged, not read as one column
 *    of "4,5,6" cells; consistency second so that "1,5;2,5" (decimal commas,
 *    which are not numbers here anyway) is not taken for commas.
 *  - header: the first non-blank record is a header when one of its cells is
 *    not a number.
 *  - layout: a header means frames-by-ROIs, no header ROIs-by-frames, except
 *    that a one-column table without a header is one trace (numpy.savetxt of
 *    a 1-D array), not n_frames ROIs of one frame. An explicit layout wins
 *    either way: frames-by-ROIs without a header makes every column a ROI
 *    (unnamed); ROIs-by-frames with a header skips the header row.
 *
 * Every used cell must be a number as nt_csv_parse_double reads it (NaN and
 * Inf included: the analysis flags such ROIs); every record must have as
 * many fields as the first. Blank lines inside the table are records of one
 * empty field (see csv.h) and are refused by that rule. Numbers become
 * float32; a finite value beyond the float range becomes ±Inf (a C cast
 * would be undefined behaviour). Text carries no rate and no stimuli: the
 * caller sets them (nt_recording_set_rate, nt_recording_set_stims).
 *
 * Memory. The samples are accumulated row by row in one row-major float
 * buffer grown geometrically, never beyond opts->max_bytes: the check comes
 * before each growth, so a huge file fails with NT_ERR_TOO_LARGE having
 * allocated at most the limit. A ROIs-by-frames table is already ROI-major
 * and the buffer becomes the traces (trimmed to size). A frames-by-ROIs
 * table must be transposed once into a new array, so the peak is about twice
 * the samples (up to 2 x max_bytes) for the moment of the transpose; then
 * only one copy is kept. The time column (doubles) is bounded by the same
 * limit. The CSV reader bounds each record itself (fields, bytes: csv.h).
 * With opts->header_only the cells are still parsed and checked (a text
 * file has no shape to read apart from its contents), but the samples are
 * not stored.
 */
#include "csv.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Non-blank records looked at to choose the delimiter. */
#define PROBE_RECORDS 5
/* First allocation of the sample and time buffers, in values. */
#define INITIAL_VALUES ((size_t)4096)
/* Longest cell quoted in an error message, in bytes. */
#define EXCERPT_BYTES 40

/* What a column of a frames-by-ROIs table holds. */
enum column_role { COLUMN_SKIP, COLUMN_ROI, COLUMN_TIME };

/* One read in progress. */
typedef struct table {
    int layout;           /* NT_LAYOUT_ROIS_BY_FRAMES or NT_LAYOUT_FRAMES_BY_ROIS */
    int imagej;           /* the header has ImageJ Mean columns */
    int keep;             /* store the samples (not header_only) */
    size_t n_fields;      /* fields in every record */
    unsigned char *roles; /* [n_fields] enum column_role; NULL: every column a ROI */
    size_t n_roi_columns; /* frames-by-ROIs: columns that are ROIs */
    char **names;         /* [n_roi_columns] ROI names, or NULL */
    int has_time;
    double time_divisor;  /* 1 for seconds, 1000 for milliseconds */

    size_t n_rows;        /* data records read */
    float *samples;       /* row-major: [n_rows][row length] */
    size_t n_samples, samples_cap, max_samples;
    double *time_s;       /* [n_rows] when has_time */
    size_t time_cap, max_times;
    size_t max_bytes;
} table;


static const char *delimiter_storage(char delimiter)
{
    switch (delimiter) {
    case '\t': return "TSV (tab)";
    case ';': return "CSV (semicolon)";
    default: return "CSV (comma)";
    }
}

/* A record of one empty field: a blank line (csv.h). */
static int is_blank_record(char **fields, size_t n)
{
    return n == 1 && fields[0][0] == '\0';
}

/* Reads the next record that is not a blank line. */
static int next_nonblank(nt_csv_reader *r, char ***fields, size_t *n, nt_error *err)
{
    int status;
    do
        status = nt_csv_reader_next(r, fields, n, err);
    while (status == NT_OK && *n > 0 && is_blank_record(*fields, *n));
    return status;
}

/* Puts fp back at its start for another reader. */
static int rewind_file(FILE *fp, nt_error *err)
{
    clearerr(fp);
    if (fseek(fp, 0, SEEK_SET) != 0)
        return nt_error_set(err, NT_ERR_IO, "cannot seek: %s", strerror(errno));
    return NT_OK;
}

/*
 * Reads up to PROBE_RECORDS non-blank records of fp with delimiter d.
 * *first: fields of the first record (0 when there is none or it is
 * malformed); *consistent: 1 when every record read has that many fields and
 * the CSV reader found nothing malformed. Only I/O and allocation failures
 * are returned as errors; malformed input just makes d inconsistent.
 */
static int probe_delimiter(FILE *fp, char d, size_t *first, int *consistent, nt_error *err)
{
    nt_csv_options o;
    nt_csv_reader *r = NULL;
    nt_error local;
    char **fields;
    size_t n;
    *first = 0;
    *consistent = 0;
    int status = rewind_file(fp, err);
    if (status != NT_OK)
        return status;
    nt_csv_options_default(&o);
    o.delimiter = d;
    status = nt_csv_reader_open_file(fp, &o, &r, err);
    if (status != NT_OK)
        return status;
    *consistent = 1;
    for (int k = 0; k < PROBE_RECORDS; k++) {
        status = next_nonblank(r, &fields, &n, &local);
        if (status != NT_OK) {
            *consistent = 0;
            if (status == NT_ERR_FORMAT)
                status = NT_OK;
            else
                nt_error_set(err, status, "%s", local.message);
            break;
        }
        if (n == 0)
            break;
        if (k == 0)
            *first = n;
        else if (n != *first)
            *consistent = 0;
    }
    nt_csv_reader_close(r);
    return status;
}

/* Chooses the delimiter of fp (rule in the file comment). */
static int detect_delimiter(FILE *fp, char *delimiter, nt_error *err)
{
    static const char candidates[] = {',', '\t', ';'};
    size_t best_fields = 0;
    int best_splits = -1, best_consistent = -1;
    *delimiter = ',';
    for (size_t i = 0; i < sizeof candidates; i++) {
        size_t fields;
        int consistent;
        int status = probe_delimiter(fp, candidates[i], &fields, &consistent, err);
        if (status != NT_OK)
            return status;
        int splits = fields >= 2;
        if (splits != best_splits ? splits > best_splits
            : consistent != best_consistent ? consistent > best_consistent
                                            : fields > best_fields) {
            best_splits = splits;
            best_consistent = consistent;
            best_fields = fields;
            *delimiter = candidates[i];
        }
    }
    return NT_OK;
}

/* Removes blanks (space, tab) around s, in place; returns s's new start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    s[len] = '\0';
    return s;
}

/* 1 when a equals b ignoring ASCII letter case (independent of locale). */
static int equal_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (equal_nocase(s, *list))
            return 1;
    return 0;
}

/* 1 when the (trimmed) header name is a time column; *divisor converts its
 * values to seconds. */
static int is_time_name(const char *s, double *divisor)
{
    static const char *const seconds[] = {"time", "time_s", "t", "t_s", "seconds",
                                          "time (s)", "time [s]", "time(s)", "time[s]", NULL};
    static const char *const millis[] = {"time_ms", "t_ms", "time (ms)", "time [ms]",
                                         "time(ms)", "time[ms]", NULL};
    if (in_list(s, seconds)) {
        *divisor = 1;
        return 1;
    }
    if (in_list(s, millis)) {
        *divisor = 1000;
        return 1;
    }
    return 0;
}

static int is_index_name(const char *s)
{
    static const char *const names[] = {"", "frame", "index", "#", NULL};
    return in_list(s, names);
}

/* ImageJ Multi Measure writes the mean of ROI k as "Mean<k>", or
 * "Mean(<name>)" for a named ROI (ij/plugin/frame/RoiManager.java,
 * multiMeasure), and a single ROI as plain "Mean". */
static int is_imagej_mean(const char *s)
{
    if (strncmp(s, "Mean", 4) != 0)
        return 0;
    s += 4;
    if (*s == '\0')
        return 1;
    if (*s == '(') {
        size_t len = strlen(s);
        return len >= 2 && s[len - 1] == ')';
    }
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    return *s == '\0';
}

/* 1 when one of the cells is not a number: the record is a header. */
static int has_text_cell(char **fields, size_t n)
{
    double v;
    for (size_t i = 0; i < n; i++)
        if (nt_csv_parse_double(fields[i], &v) != 0)
            return 1;
    return 0;
}

/* Copies cell into buf [len] for a message: one line, at most EXCERPT_BYTES
 * bytes (cut at a UTF-8 character boundary, "..." added). */
static void excerpt(const char *cell, char *buf, size_t len)
{
    size_t n = strlen(cell), cut = n;
    if (cut > EXCERPT_BYTES) {
        cut = EXCERPT_BYTES;
        while (cut > 0 && ((unsigned char)cell[cut] & 0xC0) == 0x80)
            cut--;
    }
    snprintf(buf, len, "%.*s%s", (int)cut, cell, cut < n ? "..." : "");
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

/* Parses the cell at (line, column) as a number. */
static int parse_cell(const char *cell, size_t line, size_t column, double *v, nt_error *err)
{
    if (nt_csv_parse_double(cell, v) == 0)
        return NT_OK;
    if (cell[strspn(cell, " \t")] == '\0')
        return nt_error_set(err, NT_ERR_FORMAT, "line %zu, column %zu: empty cell, expected a number",
                            line, column);
    char shown[EXCERPT_BYTES + 8];
    excerpt(cell, shown, sizeof shown);
    return nt_error_set(err, NT_ERR_FORMAT, "line %zu, column %zu: '%s' is not a number", line,
                        column, shown);
}

/* float32 of v; ±Inf beyond the float range (the plain cast is undefined). */
static float to_float(double v)
{
    if (v > FLT_MAX)
        return INFINITY;
    if (v < -FLT_MAX)
        return -INFINITY;
    return (float)v;
}

/*
 * The capacity, in values, a buffer of cap values holding used must have to
 * take `more`: cap itself when they fit, else cap doubled (from
 * INITIAL_VALUES) until they do, but never beyond limit. Returns 0, or -1
 * when used + more exceeds limit.
 */
static int grown_capacity(size_t cap, size_t used, size_t more, size_t limit, size_t *new_cap)
{
    if (more > limit || used > limit - more)
        return -1;
    size_t want = cap;
    if (used + more > cap) {
        want = cap > 0 ? cap : INITIAL_VALUES;
        while (want < used + more)
            want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
        if (want > limit)
            want = limit;
    }
    *new_cap = want;
    return 0;
}

/* Sets up the columns of a frames-by-ROIs table from its header (whose
 * cells are trimmed in place): roles, ROI names, time column. */
static int plan_columns(table *t, char **fields, size_t n, size_t line, nt_error *err)
{
    size_t time_column = 0;
    t->roles = malloc(n);
    if (t->roles == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate %zu columns", n);
    for (size_t c = 0; c < n; c++) {
        fields[c] = trim(fields[c]);
        if (is_imagej_mean(fields[c]))
            t->imagej = 1;
    }
    for (size_t c = 0; c < n; c++) {
        double divisor;
        unsigned char role;
        if (is_time_name(fields[c], &divisor)) {
            if (t->has_time)
                return nt_error_set(err, NT_ERR_FORMAT,
                                    "line %zu, column %zu: a second time column ('%s'; column "
                                    "%zu is one already)",
                                    line, c + 1, fields[c], time_column + 1);
            t->has_time = 1;
            t->time_divisor = divisor;
            time_column = c;
            role = COLUMN_TIME;
        } else if (t->imagej) {
            role = is_imagej_mean(fields[c]) ? COLUMN_ROI : COLUMN_SKIP;
        } else if (c == 0 && is_index_name(fields[c])) {
            role = COLUMN_SKIP;
        } else {
            role = COLUMN_ROI;
        }
        t->roles[c] = role;
        if (role == COLUMN_ROI)
            t->n_roi_columns++;
    }
    if (t->n_roi_columns == 0)
        return nt_error_set(err, NT_ERR_FORMAT,
                            "line %zu: no ROI columns (the header has only time and index "
                            "columns)",
                            line);
    t->names = calloc(t->n_roi_columns, sizeof *t->names);
    if (t->names == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate %zu ROI names", t->n_roi_columns);
    for (size_t c = 0, k = 0; c < n; c++) {
        if (t->roles[c] != COLUMN_ROI)
            continue;
        t->names[k] = nt_strdup(fields[c]);
        if (t->names[k] == NULL)
            return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate ROI names");
        k++;
    }
    return NT_OK;
}

/* Checks, parses and stores one data record (line is where it starts). */
static int add_row(table *t, char **fields, size_t n, size_t line, nt_error *err)
{
    if (n != t->n_fields)
        return nt_error_set(err, NT_ERR_FORMAT, "line %zu: %zu field%s, expected %zu", line, n,
                            n == 1 ? "" : "s", t->n_fields);
    size_t row_len = t->layout == NT_LAYOUT_FRAMES_BY_ROIS ? t->n_roi_columns : n;
    float *dst = NULL;
    size_t cap;
    char limit[32];
    if (t->keep) {
        if (grown_capacity(t->samples_cap, t->n_samples, row_len, t->max_samples, &cap) != 0) {
            nt_format_bytes((double)t->max_bytes, limit, sizeof limit);
            return nt_error_set(err, NT_ERR_TOO_LARGE,
                                "line %zu: the traces take more than the %s limit", line, limit);
        }
        if (cap > t->samples_cap) {
            float *grown = realloc(t->samples, cap * sizeof *grown);
            if (grown == NULL)
                return nt_error_set(err, NT_ERR_NOMEM, "line %zu: cannot allocate the samples",
                                    line);
            t->samples = grown;
            t->samples_cap = cap;
        }
        dst = t->samples + t->n_samples;
    }
    if (t->has_time) {
        if (grown_capacity(t->time_cap, t->n_rows, 1, t->max_times, &cap) != 0) {
            nt_format_bytes((double)t->max_bytes, limit, sizeof limit);
            return nt_error_set(err, NT_ERR_TOO_LARGE,
                                "line %zu: the time column takes more than the %s limit", line,
                                limit);
        }
        if (cap > t->time_cap) {
            double *grown = realloc(t->time_s, cap * sizeof *grown);
            if (grown == NULL)
                return nt_error_set(err, NT_ERR_NOMEM, "line %zu: cannot allocate the time axis",
                                    line);
            t->time_s = grown;
            t->time_cap = cap;
        }
    }
    for (size_t c = 0; c < n; c++) {
        int role = t->roles != NULL ? t->roles[c] : COLUMN_ROI;
        double v;
        if (role == COLUMN_SKIP)
            continue;
        int status = parse_cell(fields[c], line, c + 1, &v, err);
        if (status != NT_OK)
            return status;
        if (role == COLUMN_TIME)
            t->time_s[t->n_rows] = v / t->time_divisor;
        else if (dst != NULL)
            *dst++ = to_float(v);
    }
    if (t->keep)
        t->n_samples += row_len;
    t->n_rows++;
    return NT_OK;
}

/* Moves the table's data into rec: the traces ROI-major (transposing a
 * frames-by-ROIs table), the time axis and the names. */
static int finish(table *t, nt_recording *rec, nt_error *err)
{
    if (t->layout == NT_LAYOUT_FRAMES_BY_ROIS) {
        rec->n_rois = t->n_roi_columns;
        rec->n_frames = t->n_rows;
    } else {
        rec->n_rois = t->n_rows;
        rec->n_frames = t->n_fields;
    }
    if (t->keep) {
        size_t n_rois = rec->n_rois, n_frames = rec->n_frames;
        if (t->layout == NT_LAYOUT_FRAMES_BY_ROIS && n_rois > 1) {
            float *traces = malloc(t->n_samples * sizeof *traces);
            if (traces == NULL)
                return nt_error_set(err, NT_ERR_NOMEM,
                                    "cannot allocate the traces (%zu x %zu samples)", n_rois,
                                    n_frames);
            for (size_t f = 0; f < n_frames; f++)
                for (size_t r = 0; r < n_rois; r++)
                    traces[r * n_frames + f] = t->samples[f * n_rois + r];
            free(t->samples);
            t->samples = traces;
        } else {
            /* Already ROI-major: give back the unused capacity. */
            float *trimmed = realloc(t->samples, t->n_samples * sizeof *trimmed);
            if (trimmed != NULL)
                t->samples = trimmed;
        }
        rec->traces = t->samples;
        t->samples = NULL;
    }
    if (t->has_time) {
        rec->time_s = t->time_s;
        t->time_s = NULL;
        rec->time_source = NT_SOURCE_FILE_TIME;
        if (rec->n_frames >= 2) {
            double rate = (double)(rec->n_frames - 1) /
                          (rec->time_s[rec->n_frames - 1] - rec->time_s[0]);
            if (rate > 0 && isfinite(rate))
                rec->rate_hz = rate;
        }
    }
    if (t->names != NULL) {
        rec->roi_names = t->names;
        t->names = NULL;
    }
    return NT_OK;
}

static int check_options(const nt_read_options *opts, nt_error *err)
{
    if (opts->delimiter != 0 && opts->delimiter != ',' && opts->delimiter != '\t' &&
        opts->delimiter != ';')
        return nt_error_set(err, NT_ERR_INVALID, "text delimiter must be ',', tab or ';'");
    if (opts->header < -1 || opts->header > 1)
        return nt_error_set(err, NT_ERR_INVALID,
                            "text header option must be 1 (yes), 0 (no) or -1 (detect)");
    if (opts->layout != NT_LAYOUT_AUTO && opts->layout != NT_LAYOUT_ROIS_BY_FRAMES &&
        opts->layout != NT_LAYOUT_FRAMES_BY_ROIS)
        return nt_error_set(err, NT_ERR_INVALID, "unknown layout %d", opts->layout);
    return NT_OK;
}

/* Reads the table from r (delimiter chosen) into rec. */
static int read_table(nt_csv_reader *r, const nt_read_options *opts, table *t, nt_recording *rec,
                      nt_error *err)
{
    char **fields;
    size_t n;
    int status = next_nonblank(r, &fields, &n, err);
    if (status != NT_OK)
        return status;
    if (n == 0)
        return nt_error_set(err, NT_ERR_FORMAT, "no data: the file holds only blank lines");
    size_t header_line = nt_csv_reader_line(r);
    int header = opts->header >= 0 ? opts->header : has_text_cell(fields, n);
    t->layout = opts->layout;
    if (t->layout == NT_LAYOUT_AUTO)
        t->layout = header || n == 1 ? NT_LAYOUT_FRAMES_BY_ROIS : NT_LAYOUT_ROIS_BY_FRAMES;
    t->n_fields = n;
    if (t->layout == NT_LAYOUT_FRAMES_BY_ROIS) {
        if (header)
            status = plan_columns(t, fields, n, header_line, err);
        else
            t->n_roi_columns = n;
    }
    if (status == NT_OK && !header)
        status = add_row(t, fields, n, header_line, err);
    while (status == NT_OK) {
        status = nt_csv_reader_next(r, &fields, &n, err);
        if (status != NT_OK || n == 0)
            break;
        status = add_row(t, fields, n, nt_csv_reader_line(r), err);
    }
    if (status != NT_OK)
        return status;
    if (t->n_rows == 0)
        return nt_error_set(err, NT_ERR_FORMAT, "no data rows after the header (line %zu)",
                            header_line);
    return finish(t, rec, err);
}

/*
 * The text reader. Method: stat (refuse directories, FIFOs, empty files),
 * open once, detect the delimiter by probing the start of the file, rewind,
 * then one pass of the CSV reader over the whole table.
 */
int nt_read_text(const char *path, const nt_read_options *opts, nt_recording **out, nt_error *err)
{
    nt_read_options defaults;
    nt_csv_reader *r = NULL;
    nt_recording *rec = NULL;
    table t;
    FILE *fp = NULL;
    int status;

    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_read_text: path and out must not be NULL");
    *out = NULL;
    if (opts == NULL) {
        nt_read_options_default(&defaults);
        opts = &defaults;
    }
    status = check_options(opts, err);
    if (status != NT_OK)
        return status;
    long long size;
    if ((status = nt_stat_regular(path, &size, err)) != NT_OK)
        return status;
    if (size == 0)
        return nt_error_set(err, NT_ERR_FORMAT, "file is empty");

    memset(&t, 0, sizeof t);
    t.keep = !opts->header_only;
    t.time_divisor = 1;
    t.max_bytes = opts->max_bytes;
    t.max_samples = opts->max_bytes / sizeof(float);
    t.max_times = opts->max_bytes / sizeof(double);

    fp = fopen(path, "rb");
    if (fp == NULL) {
        status = nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
        goto cleanup;
    }
    char delimiter = opts->delimiter;
    if (delimiter == 0) {
        status = detect_delimiter(fp, &delimiter, err);
        if (status != NT_OK)
            goto cleanup;
    }
    status = rewind_file(fp, err);
    if (status != NT_OK)
        goto cleanup;
    nt_csv_options co;
    nt_csv_options_default(&co);
    co.delimiter = delimiter;
    status = nt_csv_reader_open_file(fp, &co, &r, err);
    if (status != NT_OK)
        goto cleanup;
    rec = nt_recording_new(0, 0);
    if (rec == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a recording");
        goto cleanup;
    }
    status = read_table(r, opts, &t, rec, err);
    if (status != NT_OK)
        goto cleanup;
    snprintf(rec->sample_type, sizeof rec->sample_type, "text");
    snprintf(rec->storage, sizeof rec->storage, "%s%s", delimiter_storage(delimiter),
             t.imagej ? ", ImageJ Multi Measure" : "");
    *out = rec;
    rec = NULL;
cleanup:
    nt_csv_reader_close(r);
    if (fp != NULL)
        fclose(fp);
    nt_recording_free(rec);
    free(t.roles);
    nt_strings_free(t.names, t.n_roi_columns);
    free(t.samples);
    free(t.time_s);
    return status;
}
