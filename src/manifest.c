/*
 * manifest.c — a study manifest: a CSV table with a `file` column and any
 * columns the lab keeps (animal, genotype, sex, condition, stim_ma, drug).
 * Its other columns are appended to every output row of that file, so that
 * a genotype comparison is one group_by away in R or pandas.
 *
 * An input matches the row whose `file` is the same path, else the row
 * whose file has the same base name when exactly one does (a manifest is
 * often written with bare names while the batch is run on full paths).
 */
#include "internal.h"
#include "csv.h"

#include <stdlib.h>
#include <string.h>

/* Manifests hold one row per recording: bounded well above any study. */
#define MAX_ROWS 1000000u

struct nt_manifest {
    size_t n_cols;   /* columns other than `file` */
    char **columns;  /* [n_cols] */
    size_t n_rows;
    size_t cap;
    char **files;    /* [n_rows] */
    char **values;   /* [n_rows * n_cols] */
};

void nt_manifest_free(nt_manifest *m)
{
    if (m == NULL)
        return;
    nt_strings_free(m->columns, m->n_cols);
    nt_strings_free(m->files, m->n_rows);
    nt_strings_free(m->values, m->n_rows * m->n_cols);
    free(m);
}

static int grow(nt_manifest *m, nt_error *err)
{
    if (m->n_rows < m->cap)
        return NT_OK;
    if (m->n_rows >= MAX_ROWS)
        return nt_error_set(err, NT_ERR_TOO_LARGE, "more than %u rows", MAX_ROWS);
    size_t cap = m->cap ? 2 * m->cap : 64;
    char **files = realloc(m->files, cap * sizeof *files);
    if (files == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "out of memory");
    m->files = files;
    char **values = realloc(m->values, cap * (m->n_cols ? m->n_cols : 1) * sizeof *values);
    if (values == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "out of memory");
    m->values = values;
    m->cap = cap;
    return NT_OK;
}

int nt_manifest_read(const char *path, nt_manifest **out, nt_error *err)
{
    *out = NULL;
    nt_csv_reader *r = NULL;
    nt_manifest *m = calloc(1, sizeof *m);
    char **cells;
    size_t n, file_col = 0;
    int status;
    if (m == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "out of memory");
    if ((status = nt_csv_reader_open(path, NULL, &r, err)) != NT_OK ||
        (status = nt_csv_reader_next(r, &cells, &n, err)) != NT_OK)
        goto cleanup;
    if (n == 0) {
        status = nt_error_set(err, NT_ERR_FORMAT, "the manifest is empty");
        goto cleanup;
    }
    for (file_col = 0; file_col < n && strcmp(cells[file_col], "file") != 0; file_col++)
        ;
    if (file_col == n) {
        status = nt_error_set(err, NT_ERR_FORMAT, "line 1: no `file` column");
        goto cleanup;
    }
    m->n_cols = n - 1;
    m->columns = calloc(m->n_cols ? m->n_cols : 1, sizeof *m->columns);
    if (m->columns == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t j = 0, k = 0; j < n; j++)
        if (j != file_col && (m->columns[k++] = nt_strdup(cells[j])) == NULL) {
            status = nt_error_set(err, NT_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
    for (;;) {
        if ((status = nt_csv_reader_next(r, &cells, &n, err)) != NT_OK)
            goto cleanup;
        if (n == 0)
            break;
        if (n == 1 && cells[0][0] == '\0')
            continue; /* a blank line */
        if (n != m->n_cols + 1) {
            status = nt_error_set(err, NT_ERR_FORMAT, "line %zu: %zu fields, the header has %zu",
                                  nt_csv_reader_line(r), n, m->n_cols + 1);
            goto cleanup;
        }
        if ((status = grow(m, err)) != NT_OK)
            goto cleanup;
        size_t row = m->n_rows;
        m->files[row] = nt_strdup(cells[file_col]);
        for (size_t j = 0, k = 0; j < n; j++)
            if (j != file_col)
                m->values[row * m->n_cols + k++] = nt_strdup(cells[j]);
        m->n_rows++;
        int failed = m->files[row] == NULL;
        for (size_t k = 0; k < m->n_cols; k++)
            failed |= m->values[row * m->n_cols + k] == NULL;
        if (failed) {
            status = nt_error_set(err, NT_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
    }
    *out = m;
    m = NULL;
cleanup:
    nt_csv_reader_close(r);
    nt_manifest_free(m);
    return status;
}

size_t nt_manifest_n_columns(const nt_manifest *m) { return m->n_cols; }
char *const *nt_manifest_columns(const nt_manifest *m) { return m->columns; }
size_t nt_manifest_n_rows(const nt_manifest *m) { return m->n_rows; }
const char *nt_manifest_file(const nt_manifest *m, size_t row) { return m->files[row]; }
char *const *nt_manifest_values(const nt_manifest *m, size_t row)
{
    return m->values + row * m->n_cols;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

long nt_manifest_find(const nt_manifest *m, const char *path)
{
    for (size_t i = 0; i < m->n_rows; i++)
        if (strcmp(m->files[i], path) == 0)
            return (long)i;
    long found = -1;
    for (size_t i = 0; i < m->n_rows; i++)
        if (strcmp(base_name(m->files[i]), base_name(path)) == 0) {
            if (found >= 0)
                return -1; /* ambiguous */
            found = (long)i;
        }
    return found;
}
