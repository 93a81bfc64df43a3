/* error.c — status codes to text, and the error-detail helper. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *nt_strerror(int status)
{
    switch (status) {
    case NT_OK: return "no error";
    case NT_ERR_IO: return "input/output error";
    case NT_ERR_FORMAT: return "not in the expected layout";
    case NT_ERR_CORRUPT: return "file is damaged";
    case NT_ERR_TOO_LARGE: return "declared size is too large";
    case NT_ERR_NOMEM: return "out of memory";
    case NT_ERR_INVALID: return "invalid value";
    case NT_ERR_INTERNAL: return "internal library failure";
    default: return "unknown error";
    }
}

int nt_error_set(nt_error *err, int status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

char *nt_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

void nt_strings_free(char **s, size_t n)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

void nt_format_bytes(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof units / sizeof *units) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f bytes", bytes);
    else
        snprintf(buf, len, bytes < 10 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}
