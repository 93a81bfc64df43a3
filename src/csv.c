/* csv.c — the RFC 4180 CSV/TSV reader (see csv.h for what it accepts).
 *
 * Method: a hand-written state machine over a 64 KiB input buffer, one byte
 * of look-ahead (peek/get). A record's fields are unquoted into one growing
 * byte buffer, each followed by a NUL; only when the record is complete are
 * the field pointers set, because the buffer may move while it grows. Input
 * NUL bytes are refused, so the NULs in the buffer are exactly the field
 * ends. Every growth is checked against the limits first, so a hostile file
 * cannot make the reader allocate more than max_record_bytes plus one
 * pointer per field.
 *
 * Blank lines are held back as a count rather than returned at once: only
 * when more data follows are they known not to be the trailing blank lines
 * that the reader ignores. */
#include "csv.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IN_SIZE ((size_t)1 << 16)
#define END_OF_INPUT (-1)

struct nt_csv_reader {
    FILE *fp;
    int owns_fp;
    nt_csv_options opts;

    unsigned char in[IN_SIZE];
    size_t in_pos, in_len;
    int in_eof;     /* the stream has no more bytes (or failed) */
    int read_errno; /* non-zero after a read error */

    size_t line;          /* line of the next unread byte */
    size_t record_line;   /* line where the last returned record starts */
    size_t field_line;    /* line where the field being read starts */
    size_t blank_pending; /* blank lines read but not yet returned */
    size_t blank_line;    /* line of the first of them */
    int at_end;

    char *data; /* the record's fields, each NUL-terminated */
    size_t data_len, data_cap;
    size_t field_start; /* offset of the field being read in data */
    size_t n_fields;
    char **fields;
    size_t fields_cap;

    int status; /* sticky: the first error, NT_OK until then */
    char message[sizeof(((nt_error *)0)->message)];
};

void nt_csv_options_default(nt_csv_options *opts)
{
    opts->delimiter = ',';
    opts->max_field_bytes = NT_CSV_MAX_FIELD_BYTES;
    opts->max_fields = NT_CSV_MAX_FIELDS;
    opts->max_record_bytes = NT_CSV_MAX_RECORD_BYTES;
}

/* Records the reader's first error and copies it to err; returns status. */
static int fail(nt_csv_reader *r, nt_error *err, int status, const char *fmt, ...)
    NT_PRINTF(4, 5);

static int fail(nt_csv_reader *r, nt_error *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    r->status = status;
    return nt_error_set(err, status, "%s", r->message);
}

static int refill(nt_csv_reader *r)
{
    if (r->in_eof)
        return 0;
    errno = 0;
    size_t n = fread(r->in, 1, IN_SIZE, r->fp);
    r->in_pos = 0;
    r->in_len = n;
    if (n == 0) {
        r->in_eof = 1;
        if (ferror(r->fp))
            r->read_errno = errno != 0 ? errno : EIO;
        return 0;
    }
    return 1;
}

static int peek(nt_csv_reader *r)
{
    if (r->in_pos == r->in_len && !refill(r))
        return END_OF_INPUT;
    return r->in[r->in_pos];
}

static int get(nt_csv_reader *r)
{
    int c = peek(r);
    if (c != END_OF_INPUT)
        r->in_pos++;
    return c;
}

/* Consumes one line end (CRLF, LF or CR) at the current position. */
static void consume_line_end(nt_csv_reader *r)
{
    if (get(r) == '\r' && peek(r) == '\n')
        get(r);
    r->line++;
}

/* Skips a UTF-8 byte-order mark at the start. The first read may return
 * fewer than 3 bytes (a pipe), so read until 3 are there or the input ends. */
static void skip_bom(nt_csv_reader *r)
{
    while (r->in_len < 3 && !r->in_eof) {
        errno = 0;
        size_t n = fread(r->in + r->in_len, 1, IN_SIZE - r->in_len, r->fp);
        if (n == 0) {
            r->in_eof = 1;
            if (ferror(r->fp))
                r->read_errno = errno != 0 ? errno : EIO;
        }
        r->in_len += n;
    }
    if (r->in_len >= 3 && memcmp(r->in, "\xEF\xBB\xBF", 3) == 0)
        r->in_pos = 3;
}

static int read_failed(nt_csv_reader *r, nt_error *err)
{
    return fail(r, err, NT_ERR_IO, "line %zu: read error: %s", r->line, strerror(r->read_errno));
}

/* Appends byte c to the record, after checking the limits. A NUL ends the
 * current field and counts only against the record size. */
static int append(nt_csv_reader *r, char c, nt_error *err)
{
    if (c != '\0' && r->data_len - r->field_start >= r->opts.max_field_bytes)
        return fail(r, err, NT_ERR_FORMAT, "line %zu, column %zu: field longer than %zu bytes",
                    r->field_line, r->n_fields + 1, r->opts.max_field_bytes);
    if (r->data_len >= r->opts.max_record_bytes)
        return fail(r, err, NT_ERR_FORMAT, "line %zu: record longer than %zu bytes",
                    r->record_line, r->opts.max_record_bytes);
    if (r->data_len == r->data_cap) {
        size_t cap = r->data_cap * 2;
        if (cap > r->opts.max_record_bytes)
            cap = r->opts.max_record_bytes;
        char *grown = realloc(r->data, cap);
        if (grown == NULL)
            return fail(r, err, NT_ERR_NOMEM, "line %zu: cannot allocate %zu bytes for a record",
                        r->record_line, cap);
        r->data = grown;
        r->data_cap = cap;
    }
    r->data[r->data_len++] = c;
    return NT_OK;
}

/* Reads a quoted field, from its opening quote to the byte after the
 * closing one. Line ends inside are kept as they are and counted. */
static int read_quoted(nt_csv_reader *r, nt_error *err)
{
    size_t column = r->n_fields + 1;
    get(r);
    for (;;) {
        int c = get(r);
        if (c == END_OF_INPUT) {
            if (r->read_errno != 0)
                return read_failed(r, err);
            return fail(r, err, NT_ERR_FORMAT,
                        "line %zu, column %zu: quoted field not closed before the end of the file",
                        r->field_line, column);
        }
        if (c == '"') {
            if (peek(r) != '"')
                return NT_OK;
            get(r);
        } else if (c == '\n') {
            r->line++;
        } else if (c == '\r') {
            if (peek(r) != '\n')
                r->line++;
        } else if (c == '\0') {
            return fail(r, err, NT_ERR_FORMAT, "line %zu, column %zu: NUL byte (not a text file?)",
                        r->line, column);
        }
        int st = append(r, (char)c, err);
        if (st != NT_OK)
            return st;
    }
}

/* Reads an unquoted field up to (not including) the delimiter, line end or
 * end of input. */
static int read_unquoted(nt_csv_reader *r, nt_error *err)
{
    int delim = (unsigned char)r->opts.delimiter;
    for (;;) {
        int c = peek(r);
        if (c == delim || c == '\r' || c == '\n' || c == END_OF_INPUT)
            return NT_OK;
        if (c == '"')
            return fail(r, err, NT_ERR_FORMAT,
                        "line %zu, column %zu: quote inside an unquoted field", r->line,
                        r->n_fields + 1);
        if (c == '\0')
            return fail(r, err, NT_ERR_FORMAT, "line %zu, column %zu: NUL byte (not a text file?)",
                        r->line, r->n_fields + 1);
        get(r);
        int st = append(r, (char)c, err);
        if (st != NT_OK)
            return st;
    }
}

/* Ends the current field. Sets *last when it also ends the record (line
 * end or end of input, which are consumed) rather than a delimiter. */
static int end_field(nt_csv_reader *r, int *last, nt_error *err)
{
    int c = peek(r);
    if (c == (unsigned char)r->opts.delimiter) {
        get(r);
        *last = 0;
    } else if (c == '\r' || c == '\n') {
        consume_line_end(r);
        *last = 1;
    } else if (c == END_OF_INPUT) {
        if (r->read_errno != 0)
            return read_failed(r, err);
        *last = 1;
    } else {
        /* Only reachable after a closing quote. */
        if (isprint(c))
            return fail(r, err, NT_ERR_FORMAT,
                        "line %zu, column %zu: unexpected '%c' after a closing quote", r->line,
                        r->n_fields + 1, c);
        return fail(r, err, NT_ERR_FORMAT,
                    "line %zu, column %zu: unexpected byte 0x%02X after a closing quote", r->line,
                    r->n_fields + 1, (unsigned)c);
    }
    r->n_fields++;
    return append(r, '\0', err);
}

/* Points fields[i] at the NUL-separated fields in data. */
static int publish(nt_csv_reader *r, char ***fields, size_t *n_fields, nt_error *err)
{
    if (r->n_fields > r->fields_cap) {
        size_t cap = r->fields_cap * 2;
        if (cap < r->n_fields)
            cap = r->n_fields;
        if (cap > r->opts.max_fields)
            cap = r->opts.max_fields;
        char **grown = realloc(r->fields, cap * sizeof *grown);
        if (grown == NULL)
            return fail(r, err, NT_ERR_NOMEM, "line %zu: cannot allocate %zu fields",
                        r->record_line, cap);
        r->fields = grown;
        r->fields_cap = cap;
    }
    char *p = r->data;
    for (size_t i = 0; i < r->n_fields; i++) {
        r->fields[i] = p;
        p += strlen(p) + 1;
    }
    *fields = r->fields;
    *n_fields = r->n_fields;
    return NT_OK;
}

int nt_csv_reader_next(nt_csv_reader *r, char ***fields, size_t *n_fields, nt_error *err)
{
    *fields = NULL;
    *n_fields = 0;
    if (r->status != NT_OK)
        return nt_error_set(err, r->status, "%s", r->message);
    if (r->at_end)
        return NT_OK;

    r->data_len = 0;
    r->n_fields = 0;
    for (;;) {
        int c = peek(r);
        if (c == END_OF_INPUT) {
            if (r->read_errno != 0)
                return read_failed(r, err);
            r->at_end = 1;
            return NT_OK;
        }
        if (c != '\r' && c != '\n')
            break;
        if (r->blank_pending == 0)
            r->blank_line = r->line;
        r->blank_pending++;
        consume_line_end(r);
    }
    if (r->blank_pending > 0) {
        r->blank_pending--;
        r->record_line = r->blank_line++;
        r->field_start = 0;
        r->n_fields = 1;
        int st = append(r, '\0', err);
        return st != NT_OK ? st : publish(r, fields, n_fields, err);
    }

    r->record_line = r->line;
    int last = 0;
    while (!last) {
        if (r->n_fields == r->opts.max_fields)
            return fail(r, err, NT_ERR_FORMAT, "line %zu, column %zu: more than %zu fields",
                        r->line, r->n_fields + 1, r->opts.max_fields);
        r->field_line = r->line;
        r->field_start = r->data_len;
        int st = peek(r) == '"' ? read_quoted(r, err) : read_unquoted(r, err);
        if (st == NT_OK)
            st = end_field(r, &last, err);
        if (st != NT_OK)
            return st;
    }
    return publish(r, fields, n_fields, err);
}

size_t nt_csv_reader_line(const nt_csv_reader *r)
{
    return r->record_line;
}

static int check_options(const nt_csv_options *o, nt_error *err)
{
    if (o->delimiter != ',' && o->delimiter != '\t' && o->delimiter != ';')
        return nt_error_set(err, NT_ERR_INVALID, "CSV delimiter must be ',', tab or ';'");
    if (o->max_field_bytes == 0 || o->max_fields == 0 || o->max_record_bytes == 0)
        return nt_error_set(err, NT_ERR_INVALID, "CSV limits must be positive");
    return NT_OK;
}

/* Creates a reader over fp; on failure the caller still owns fp. */
static int reader_create(FILE *fp, const nt_csv_options *opts, nt_csv_reader **out,
                         nt_error *err)
{
    nt_csv_options o;
    if (opts != NULL)
        o = *opts;
    else
        nt_csv_options_default(&o);
    int st = check_options(&o, err);
    if (st != NT_OK)
        return st;

    nt_csv_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a CSV reader");
    r->opts = o;
    r->data_cap = o.max_record_bytes < 256 ? o.max_record_bytes : 256;
    r->data = malloc(r->data_cap);
    if (r->data == NULL) {
        free(r);
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a CSV reader");
    }
    r->fp = fp;
    r->line = 1;
    skip_bom(r);
    *out = r;
    return NT_OK;
}

int nt_csv_reader_open_file(FILE *fp, const nt_csv_options *opts, nt_csv_reader **out,
                            nt_error *err)
{
    *out = NULL;
    return reader_create(fp, opts, out, err);
}

int nt_csv_reader_open(const char *path, const nt_csv_options *opts, nt_csv_reader **out,
                       nt_error *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return nt_error_set(err, NT_ERR_IO, "%s", strerror(errno));
    int st = reader_create(fp, opts, out, err);
    if (st != NT_OK) {
        fclose(fp);
        return st;
    }
    (*out)->owns_fp = 1;
    return NT_OK;
}

void nt_csv_reader_close(nt_csv_reader *r)
{
    if (r == NULL)
        return;
    if (r->owns_fp)
        fclose(r->fp);
    free(r->data);
    free(r->fields);
    free(r);
}

/* ------------------------------------------------------------- numbers */

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* Length of the case-insensitive word w at the start of s, or 0. */
static size_t match_word(const char *s, const char *w)
{
    size_t i = 0;
    for (; w[i] != '\0'; i++)
        if (tolower((unsigned char)s[i]) != w[i])
            return 0;
    return i;
}

/* Length of the decimal number (grammar of csv.h, no sign) at s, or 0.
 * strtod alone would also take hexadecimal and "nan(...)", and would stop
 * silently inside "1e" or "1.2.3"; the grammar is checked first. */
static size_t match_number(const char *s)
{
    size_t i = 0, digits = 0;
    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return match_word(s, "infinity") ? 8 : match_word(s, "inf") ? 3 : match_word(s, "nan");
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (!isdigit((unsigned char)s[j]))
            return 0;
        while (isdigit((unsigned char)s[j]))
            j++;
        i = j;
    }
    return i;
}

int nt_csv_parse_double(const char *s, double *out)
{
    while (is_blank((unsigned char)*s))
        s++;
    const char *body = s;
    if (*body == '+' || *body == '-')
        body++;
    size_t len = match_number(body);
    if (len == 0)
        return -1;
    const char *end = body + len;
    for (const char *p = end; *p != '\0'; p++)
        if (!is_blank((unsigned char)*p))
            return -1;
    char *stop;
    double v = strtod(s, &stop);
    if (stop != end)
        return -1;
    *out = v;
    return 0;
}

void nt_csv_put_field(FILE *out, const char *s)
{
    size_t len = strlen(s);
    int quote = strpbrk(s, ",\"\r\n") != NULL || (len > 0 && (s[0] == ' ' || s[len - 1] == ' '));
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}
