/*
 * csv.h — a private RFC 4180 reader for CSV and TSV files, one record at a
 * time. Used by nt_csv_compare and by the CSV/TSV trace reader.
 *
 * What it reads
 *  - Fields separated by one delimiter (',', '\t' or ';'); records ended by
 *    CRLF, LF or a lone CR; the last record may lack its line end.
 *  - Quoted fields ("...") may hold the delimiter, line ends (kept as they
 *    are in the file) and doubled quotes ("" is one quote). A quote inside an
 *    unquoted field, or anything but a delimiter or line end after a closing
 *    quote, is an error; so is a NUL byte.
 *  - A UTF-8 byte-order mark at the start of the input is skipped.
 *  - Blank lines (nothing between two line ends) inside the data are records
 *    of one empty field, as RFC 4180 reads them, so that a table reader sees
 *    them and can reject them by their field count. Blank lines at the end of
 *    the input are ignored. (A one-column file whose last cell is empty must
 *    therefore write it as "".)
 *  - Every size is bounded (nt_csv_options): a longer field, a record with
 *    more fields or more bytes fails with NT_ERR_FORMAT before memory grows.
 *
 * Error messages name the place as "line 12, column 3: ...": the 1-based
 * line of the file and the 1-based field of the record. Like every nt_error
 * message they never contain the file name.
 */
#ifndef NT_CSV_H
#define NT_CSV_H

#include "nirtrace.h"

#include <stddef.h>
#include <stdio.h>

/* Default limits of nt_csv_options. */
#define NT_CSV_MAX_FIELD_BYTES ((size_t)1 << 20)   /* 1 MiB */
#define NT_CSV_MAX_FIELDS ((size_t)1000000)
#define NT_CSV_MAX_RECORD_BYTES ((size_t)64 << 20) /* 64 MiB */

/* Reader options. Initialise with nt_csv_options_default. */
typedef struct nt_csv_options {
    char delimiter;          /* ',', '\t' or ';'; default ',' */
    size_t max_field_bytes;  /* longest field accepted, in bytes after unquoting (> 0) */
    size_t max_fields;       /* most fields in one record (> 0) */
    size_t max_record_bytes; /* most bytes in one record: its fields' bytes plus
                              * one per field (> 0) */
} nt_csv_options;

/* Fills opts with ',' and the NT_CSV_MAX_* limits. */
void nt_csv_options_default(nt_csv_options *opts);

/* A reader over one input. Not thread-safe. */
typedef struct nt_csv_reader nt_csv_reader;

/*
 * Opens the file at path for reading. opts may be NULL for the defaults.
 * On success *out is a new reader that owns the file; free with
 * nt_csv_reader_close. On failure *out is NULL and err says why:
 * NT_ERR_IO (the message is the system's, e.g. "No such file or directory"),
 * NT_ERR_INVALID (bad options) or NT_ERR_NOMEM.
 */
int nt_csv_reader_open(const char *path, const nt_csv_options *opts,
                       nt_csv_reader **out, nt_error *err);

/*
 * Same over an open stream, read from its current position. The stream
 * stays the caller's: nt_csv_reader_close does not close it, and it must
 * outlive the reader. The reader reads ahead, so the stream's position after
 * the reader is closed is unspecified.
 */
int nt_csv_reader_open_file(FILE *fp, const nt_csv_options *opts,
                            nt_csv_reader **out, nt_error *err);

/*
 * Reads the next record. On NT_OK, either *n_fields >= 1 and *fields is an
 * array [*n_fields] of NUL-terminated fields, or, at the end of the input,
 * *n_fields == 0 and *fields == NULL (and every later call says the same).
 * The array and the strings belong to the reader and stay valid until the
 * next call of nt_csv_reader_next or nt_csv_reader_close; the caller may
 * change the characters in place but must not free or keep them.
 * On failure (NT_ERR_FORMAT with "line L, column C: ..." for malformed or
 * oversized input, NT_ERR_IO for a read error, NT_ERR_NOMEM) *fields is NULL,
 * *n_fields is 0, and every later call returns the same error.
 */
int nt_csv_reader_next(nt_csv_reader *r, char ***fields, size_t *n_fields, nt_error *err);

/* The 1-based line of the file where the record last returned by
 * nt_csv_reader_next starts (0 before the first record). */
size_t nt_csv_reader_line(const nt_csv_reader *r);

/* Frees the reader, closing its file if nt_csv_reader_open opened it.
 * Accepts NULL. */
void nt_csv_reader_close(nt_csv_reader *r);

/*
 * Parses the whole of cell s as a decimal number into *out: optional sign,
 * digits with an optional '.' and exponent ("1", "-2.5", ".5", "3e-2"), or
 * NaN / Inf / Infinity in any letter case with an optional sign. Spaces and
 * tabs around the number are allowed; anything else (empty cell, "1x",
 * hexadecimal, "nan(1)") is not. Values beyond the double range become
 * ±Inf. Uses strtod, so it assumes the C locale's '.' (the library never
 * calls setlocale). Returns 0 on success, -1 (with *out unchanged) if s is
 * not a number.
 */
int nt_csv_parse_double(const char *s, double *out);

/* Writes s to out as one CSV field, quoted (RFC 4180, inner quotes doubled)
 * when it holds a comma, a quote, a line break or edge spaces. */
void nt_csv_put_field(FILE *out, const char *s);

#endif /* NT_CSV_H */
