/*
 * merge.c — concatenation of per-part result tables into one (`nirtrace
 * merge`): the header once, then every part's rows in the order given. Rows
 * are parsed and written again with RFC 4180 quoting, so a malformed part is
 * refused with its line rather than passed through.
 */
#include "internal.h"
#include "csv.h"

#include <stdlib.h>
#include <string.h>

static void put_record(FILE *out, char *const *cells, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (j > 0)
            fputc(',', out);
        nt_csv_put_field(out, cells[j]);
    }
    fputc('\n', out);
}

int nt_csv_merge(char *const *parts, size_t n_parts, FILE *out, size_t *n_rows, nt_error *err)
{
    char **header = NULL;
    size_t width = 0, rows = 0;
    int status = NT_OK;
    for (size_t p = 0; p < n_parts && status == NT_OK; p++) {
        nt_csv_reader *r = NULL;
        char **cells;
        size_t n;
        status = nt_csv_reader_open(parts[p], NULL, &r, err);
        if (status == NT_OK)
            status = nt_csv_reader_next(r, &cells, &n, err);
        if (status != NT_OK) {
            char detail[sizeof err->message];
            memcpy(detail, err->message, sizeof detail);
            nt_error_set(err, status, "%s: %s", parts[p], detail);
        } else if (n == 0) {
            status = nt_error_set(err, NT_ERR_FORMAT, "%s: empty, no header", parts[p]);
        } else if (header == NULL) {
            header = calloc(n, sizeof *header);
            if (header == NULL)
                status = nt_error_set(err, NT_ERR_NOMEM, "out of memory");
            for (size_t j = 0; status == NT_OK && j < n; j++)
                if ((header[j] = nt_strdup(cells[j])) == NULL)
                    status = nt_error_set(err, NT_ERR_NOMEM, "out of memory");
            width = n;
            if (status == NT_OK)
                put_record(out, cells, n);
        } else {
            for (size_t j = 0; status == NT_OK && j < (n > width ? n : width); j++)
                if (j >= n || j >= width || strcmp(cells[j], header[j]) != 0)
                    status = nt_error_set(err, NT_ERR_FORMAT,
                                          "%s: header differs from %s at column %zu ('%s' vs "
                                          "'%s'): tables of different runs",
                                          parts[p], parts[0], j + 1, j < n ? cells[j] : "",
                                          j < width ? header[j] : "");
        }
        while (status == NT_OK) {
            if ((status = nt_csv_reader_next(r, &cells, &n, err)) != NT_OK) {
                char detail[sizeof err->message];
                memcpy(detail, err->message, sizeof detail);
                nt_error_set(err, status, "%s: %s", parts[p], detail);
                break;
            }
            if (n == 0)
                break;
            if (n != width) {
                status = nt_error_set(err, NT_ERR_FORMAT, "%s: line %zu: %zu fields, the header has %zu",
                                      parts[p], nt_csv_reader_line(r), n, width);
                break;
            }
            put_record(out, cells, n);
            rows++;
        }
        nt_csv_reader_close(r);
        if (status == NT_OK && ferror(out))
            status = nt_error_set(err, NT_ERR_IO, "write error");
    }
    nt_strings_free(header, width);
    if (n_rows != NULL)
        *n_rows = rows;
    return status;
}
