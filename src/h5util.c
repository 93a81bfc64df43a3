/*
 * h5util.c — what the HDF5 readers share: opening a file quietly, turning
 * HDF5's error stack into our messages, checked reads of numbers and strings
 * (datasets and attributes), and the tiled read of a 1-D or 2-D dataset of
 * samples into the ROI-major traces of a recording. (3-D movies are read
 * by reader_movie.c.)
 *
 * Method. A damaged or hostile file must be refused, never trusted: every
 * size the file declares is checked before anything is allocated — against
 * the caller's memory limit, against fixed limits for the small lists
 * (stimuli, labels, names), and against the file's size for the bytes
 * actually stored — because HDF5 happily describes a 36 TiB dataset of
 * unallocated chunks in a 2 kB file. Samples are converted to float by
 * H5Dread itself (HDF5 converts any integer or float type and byte order).
 *
 * HDF5 prints its error stack to stderr by default; the library must not
 * print, so automatic printing is off between nt_h5_open and nt_h5_close,
 * and the innermost description on the stack becomes the detail of our
 * message.
 */
#include "h5util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest buffer of fixed-length strings read at once. */
#define MAX_STRINGS_TOTAL ((size_t)256 << 20)
/* Most strings one attribute may hold (NWB colnames: one per column). */
#define MAX_ATTR_STRINGS 4096u
/* Most chunks one H5Dread may touch (see nt_h5_matrix_read). */
#define MAX_CHUNKS_PER_READ 4096u
/* Largest tile, in samples, of a transposed read (4 MiB of float32). */
#define MAX_TILE_SAMPLES ((hsize_t)1 << 20)

/* ------------------------------------------------------------ errors */

typedef struct detail_buf {
    char *text;
    size_t len;
} detail_buf;

/* Error-stack walker: the walk goes from the API call down to the function
 * that detected the error, so the last non-empty description seen is the
 * most specific one ("truncated file: eof = 1024, ..." rather than "unable
 * to open file"). */
static herr_t keep_innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    detail_buf *d = data;
    (void)n;
    if (e->desc != NULL && e->desc[0] != '\0')
        snprintf(d->text, d->len, "%s", e->desc);
    return 0;
}

/* Moves the detail of the current HDF5 error into text [len] (one line) and
 * clears the error stack. */
static void take_h5_detail(char *text, size_t len)
{
    detail_buf d = {text, len};
    text[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &d);
    H5Eclear2(H5E_DEFAULT);
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    if (text[0] == '\0')
        snprintf(text, len, "no detail");
}

int nt_h5_fail(nt_error *err, int status, const char *where, const char *what)
{
    char detail[256];
    take_h5_detail(detail, sizeof detail);
    return nt_error_set(err, status, "%s: %s (HDF5: %s)", where, what, detail);
}

/* ------------------------------------------------------------- files */

int nt_h5_open(nt_h5ctx *c, const char *path, size_t max_bytes, nt_error *err)
{
    int status = NT_OK;
    hid_t fapl = H5I_INVALID_HID;

    c->file = H5I_INVALID_HID;
    c->file_size = 0;
    c->max_bytes = max_bytes;
    c->err = err;
    c->saved_func = NULL;
    c->saved_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &c->saved_func, &c->saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    long long size;
    status = nt_stat_regular(path, &size, err);
    if (status != NT_OK)
        return status;
    c->file_size = (hsize_t)size;

    /* Locking is best effort: a file on a file system without locks (some
     * NFS mounts) is still read rather than refused. */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return nt_h5_fail(err, NT_ERR_INTERNAL, "HDF5", "cannot create a property list");
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 1, 1);
#endif
    c->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (c->file < 0) {
        char detail[256];
        take_h5_detail(detail, sizeof detail);
#if H5_VERSION_GE(1, 12, 0)
        htri_t is_hdf5 = H5Fis_accessible(path, H5P_DEFAULT);
#else
        htri_t is_hdf5 = H5Fis_hdf5(path);
#endif
        H5Eclear2(H5E_DEFAULT);
        if (is_hdf5 == 0)
            status = nt_error_set(err, NT_ERR_FORMAT, "not an HDF5 file");
        else
            status = nt_error_set(err, NT_ERR_CORRUPT,
                                  "cannot open as HDF5 (truncated or damaged file): %s", detail);
    }
    H5Pclose(fapl);
    return status;
}

int nt_h5_close(nt_h5ctx *c, int status)
{
    if (c->file >= 0 && H5Fclose(c->file) < 0 && status == NT_OK)
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, "HDF5", "cannot close the file");
    c->file = H5I_INVALID_HID;
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, c->saved_func, c->saved_data);
    return status;
}

/* ------------------------------------------------------------- types */


void nt_h5_type_name(hid_t type, char *buf, size_t len)
{
    size_t bits = H5Tget_size(type) * 8;
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT: snprintf(buf, len, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, len, "string"); break;
    case H5T_COMPOUND: snprintf(buf, len, "compound"); break;
    case H5T_ENUM: snprintf(buf, len, "enum"); break;
    case H5T_BITFIELD: snprintf(buf, len, "bitfield"); break;
    case H5T_OPAQUE: snprintf(buf, len, "opaque"); break;
    case H5T_REFERENCE: snprintf(buf, len, "reference"); break;
    case H5T_VLEN: snprintf(buf, len, "variable-length sequence"); break;
    case H5T_ARRAY: snprintf(buf, len, "array"); break;
    case H5T_TIME: snprintf(buf, len, "time"); break;
    default: snprintf(buf, len, "unknown type"); break;
    }
}

/*
 * Other numeric types than the standard ones (packed 12-bit integers,
 * non-IEEE floats) are legal HDF5 but no recording software writes them,
 * and HDF5 1.10 converts a damaged one past the end of its own stack buffer:
 * refusing them keeps a corrupted datatype message from ever reaching
 * H5Dread.
 */
int nt_h5_is_standard_number(hid_t type)
{
    const hid_t standard[] = {
        H5T_STD_I8LE,   H5T_STD_I8BE,   H5T_STD_U8LE,   H5T_STD_U8BE,   H5T_STD_I16LE,
        H5T_STD_I16BE,  H5T_STD_U16LE,  H5T_STD_U16BE,  H5T_STD_I32LE,  H5T_STD_I32BE,
        H5T_STD_U32LE,  H5T_STD_U32BE,  H5T_STD_I64LE,  H5T_STD_I64BE,  H5T_STD_U64LE,
        H5T_STD_U64BE,  H5T_IEEE_F32LE, H5T_IEEE_F32BE, H5T_IEEE_F64LE, H5T_IEEE_F64BE,
    };
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        return 0;
    for (size_t i = 0; i < sizeof standard / sizeof *standard; i++)
        if (H5Tequal(type, standard[i]) > 0)
            return 1;
    return 0;
}

/* 64-bit integers are refused: float32 would keep only 24 of their bits. */
int nt_h5_is_sample_type(hid_t type)
{
    return nt_h5_is_standard_number(type) &&
           (H5Tget_class(type) == H5T_FLOAT || H5Tget_size(type) <= 4);
}

void nt_h5_describe_type(hid_t type, char *buf, size_t len)
{
    nt_h5_type_name(type, buf, len);
    H5T_class_t cls = H5Tget_class(type);
    if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && !nt_h5_is_standard_number(type)) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, " with a non-standard bit layout");
    }
}

/* ----------------------------------------------------------- objects */

static const char *kind_name(H5I_type_t kind)
{
    switch (kind) {
    case H5I_GROUP: return "a group";
    case H5I_DATASET: return "a dataset";
    case H5I_DATATYPE: return "a named datatype";
    default: return "an unknown object";
    }
}

/* H5Lexists fails rather than answers when a parent is missing, so parents
 * are looked up one at a time, from the root down. */
int nt_h5_open_path(const nt_h5ctx *c, const char *path, hid_t *obj)
{
    const char *slash = strrchr(path, '/');
    *obj = H5I_INVALID_HID;
    if (path[0] == '\0')
        return nt_error_set(c->err, NT_ERR_INVALID, "empty HDF5 object path");
    if (slash != NULL && slash != path) {
        char parent[NT_H5_MAX_PATH];
        size_t len = (size_t)(slash - path);
        if (len >= sizeof parent)
            return nt_error_set(c->err, NT_ERR_INVALID, "%.64s...: path too long", path);
        memcpy(parent, path, len);
        parent[len] = '\0';
        hid_t group;
        int status = nt_h5_open_path(c, parent, &group);
        if (status != NT_OK || group < 0)
            return status;
        H5I_type_t kind = H5Iget_type(group);
        H5Oclose(group);
        if (kind != H5I_GROUP)
            return nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected a group, found %s", parent,
                                kind_name(kind));
    }
    if (strcmp(path, "/") != 0) {
        htri_t exists = H5Lexists(c->file, path, H5P_DEFAULT);
        if (exists < 0)
            return nt_h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot look up");
        if (exists == 0)
            return NT_OK;
    }
    *obj = H5Oopen(c->file, path, H5P_DEFAULT);
    if (*obj < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot open");
    return NT_OK;
}

int nt_h5_open_dataset(const nt_h5ctx *c, const char *path, hid_t *dset)
{
    int status = nt_h5_open_path(c, path, dset);
    if (status != NT_OK || *dset < 0)
        return status;
    H5I_type_t kind = H5Iget_type(*dset);
    if (kind != H5I_DATASET) {
        H5Oclose(*dset);
        *dset = H5I_INVALID_HID;
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected a dataset, found %s", path,
                            kind_name(kind));
    }
    return NT_OK;
}

int nt_h5_extent(hid_t dset, const char *where, const char *expected, int min_rank, int max_rank,
                 int allow_scalar, hsize_t *dims, int *rank, nt_error *err)
{
    hsize_t all[H5S_MAX_RANK];
    int status = NT_OK;
    hid_t space = H5Dget_space(dset);
    if (space < 0)
        return nt_h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
    switch (H5Sget_simple_extent_type(space)) {
    case H5S_SCALAR:
        if (allow_scalar) {
            dims[0] = 1;
            if (rank != NULL)
                *rank = 1;
        } else {
            status = nt_error_set(err, NT_ERR_FORMAT, "%s: expected %s, found a scalar", where,
                                  expected);
        }
        goto cleanup;
    case H5S_NULL:
        status = nt_error_set(err, NT_ERR_FORMAT, "%s: expected %s, found an empty dataspace",
                              where, expected);
        goto cleanup;
    case H5S_SIMPLE:
        break;
    default:
        status = nt_h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
        goto cleanup;
    }
    int found = H5Sget_simple_extent_ndims(space);
    if (found < 0 || found > H5S_MAX_RANK) {
        status = nt_h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
        goto cleanup;
    }
    if (found < min_rank || found > max_rank) {
        status = nt_error_set(err, NT_ERR_FORMAT, "%s: expected %s, found %d-D", where, expected,
                              found);
        goto cleanup;
    }
    if (H5Sget_simple_extent_dims(space, all, NULL) < 0) {
        status = nt_h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
        goto cleanup;
    }
    memcpy(dims, all, (size_t)found * sizeof *dims);
    if (rank != NULL)
        *rank = found;
cleanup:
    H5Sclose(space);
    return status;
}

/*
 * Storage that is not allocated yet passes (HDF5 reads it as the fill
 * value), as do compact data (inside the object header, already read) and
 * external or virtual storage (in other files).
 */
int nt_h5_check_storage(const nt_h5ctx *c, hid_t dset, const char *where, hsize_t n_elem,
                        size_t elem_size)
{
    int status = NT_OK;
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the storage properties");
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout == H5D_CONTIGUOUS) {
        haddr_t offset = H5Dget_offset(dset);
        H5Eclear2(H5E_DEFAULT); /* HADDR_UNDEF (unallocated, external) is not an error here */
        if (offset != HADDR_UNDEF) {
            int overflow = elem_size != 0 && n_elem > HSIZE_UNDEF / elem_size;
            hsize_t bytes = n_elem * elem_size;
            if (overflow || offset > c->file_size || bytes > c->file_size - offset)
                status = nt_error_set(c->err, NT_ERR_CORRUPT,
                                      "%s: declares %llu bytes of data but the file holds only %llu",
                                      where, overflow ? (unsigned long long)HSIZE_UNDEF
                                                      : (unsigned long long)bytes,
                                      (unsigned long long)c->file_size);
        }
    } else if (layout == H5D_COMPACT) {
        /* Compact data lives in the object header: HDF5 1.10 copies the
         * declared size out of the stored buffer without checking it, so a
         * damaged header reads heap memory as samples. */
        hsize_t stored = H5Dget_storage_size(dset);
        H5Eclear2(H5E_DEFAULT);
        int overflow = elem_size != 0 && n_elem > HSIZE_UNDEF / elem_size;
        if (overflow || stored < n_elem * elem_size)
            status = nt_error_set(c->err, NT_ERR_CORRUPT,
                                  "%s: declares %llu bytes of compact data but stores %llu "
                                  "(damaged object header)",
                                  where, overflow ? (unsigned long long)HSIZE_UNDEF
                                                  : (unsigned long long)(n_elem * elem_size),
                                  (unsigned long long)stored);
    } else if (layout == H5D_CHUNKED) {
        hsize_t stored = H5Dget_storage_size(dset);
        H5Eclear2(H5E_DEFAULT);
        if (stored > c->file_size)
            status = nt_error_set(c->err, NT_ERR_CORRUPT,
                                  "%s: declares %llu bytes of chunks but the file holds only %llu",
                                  where, (unsigned long long)stored,
                                  (unsigned long long)c->file_size);
    }
    H5Pclose(dcpl);
    return status;
}

/* Name of a filter: the library's name for the standard ones, else the name
 * stored in the file, else its number. */
static void filter_name(H5Z_filter_t id, const char *stored, char *buf, size_t len)
{
    switch (id) {
    case H5Z_FILTER_DEFLATE: snprintf(buf, len, "deflate"); return;
    case H5Z_FILTER_SHUFFLE: snprintf(buf, len, "shuffle"); return;
    case H5Z_FILTER_FLETCHER32: snprintf(buf, len, "fletcher32"); return;
    case H5Z_FILTER_SZIP: snprintf(buf, len, "szip"); return;
    case H5Z_FILTER_NBIT: snprintf(buf, len, "nbit"); return;
    case H5Z_FILTER_SCALEOFFSET: snprintf(buf, len, "scaleoffset"); return;
    default: break;
    }
    if (stored[0] != '\0') {
        snprintf(buf, len, "%s", stored);
        for (char *p = buf; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    } else {
        snprintf(buf, len, "filter %d", (int)id);
    }
}

/* A mandatory filter this HDF5 cannot run (a plugin such as LZF or Blosc
 * that is not installed) is reported here rather than as an obscure read
 * failure. */
int nt_h5_describe_storage(const nt_h5ctx *c, hid_t dset, const char *where, char *buf,
                           size_t len, int need_decoders)
{
    int status = NT_OK;
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the storage properties");
    switch (H5Pget_layout(dcpl)) {
    case H5D_COMPACT: snprintf(buf, len, "compact"); break;
    case H5D_CONTIGUOUS: snprintf(buf, len, "contiguous"); break;
    case H5D_CHUNKED: snprintf(buf, len, "chunked"); break;
    case H5D_VIRTUAL: snprintf(buf, len, "virtual"); break;
    default:
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the storage layout");
        goto cleanup;
    }
    int n_filters = H5Pget_nfilters(dcpl);
    if (n_filters < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the filters");
        goto cleanup;
    }
    for (int i = 0; i < n_filters; i++) {
        unsigned flags = 0, config = 0;
        size_t n_params = 0;
        char stored[64] = "", name[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_params, NULL,
                                         sizeof stored, stored, &config);
        if (id < 0) {
            status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the filters");
            goto cleanup;
        }
        stored[sizeof stored - 1] = '\0';
        filter_name(id, stored, name, sizeof name);
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, ", %s", name);
        if (need_decoders && !(flags & H5Z_FLAG_OPTIONAL)) {
            htri_t avail = H5Zfilter_avail(id);
            H5Eclear2(H5E_DEFAULT);
            if (avail <= 0) {
                status = nt_error_set(c->err, NT_ERR_FORMAT,
                                      "%s: compressed with the %s filter (id %d), which this HDF5 "
                                      "library cannot decode",
                                      where, name, (int)id);
                goto cleanup;
            }
        }
    }
cleanup:
    H5Pclose(dcpl);
    return status;
}

/* ----------------------------------------------------------- numbers */

int nt_h5_read_numbers(const nt_h5ctx *c, hid_t dset, const char *where, hsize_t n,
                       double **out)
{
    int status = NT_OK;
    double *v = NULL;
    hid_t type = H5Dget_type(dset);
    *out = NULL;
    if (type < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the datatype");
    if (!nt_h5_is_standard_number(type)) {
        char name[64];
        nt_h5_describe_type(type, name, sizeof name);
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected numbers, found %s", where,
                              name);
        goto cleanup;
    }
    if (n > c->max_bytes / sizeof *v) {
        char need[32], limit[32];
        nt_format_bytes((double)n * sizeof *v, need, sizeof need);
        nt_format_bytes((double)c->max_bytes, limit, sizeof limit);
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %llu values (%s as float64), more than the %s limit",
                              where, (unsigned long long)n, need, limit);
        goto cleanup;
    }
    status = nt_h5_check_storage(c, dset, where, n, H5Tget_size(type));
    if (status != NT_OK || n == 0)
        goto cleanup;
    v = malloc((size_t)n * sizeof *v);
    if (v == NULL) {
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %llu values", where,
                              (unsigned long long)n);
        goto cleanup;
    }
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read data");
        goto cleanup;
    }
    *out = v;
    v = NULL;
cleanup:
    free(v);
    H5Tclose(type);
    return status;
}

/* Opens the attribute name of obj into *attr, or leaves it H5I_INVALID_HID
 * when obj has no such attribute. */
static int open_attr(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                     hid_t *attr)
{
    *attr = H5I_INVALID_HID;
    htri_t exists = H5Aexists(obj, name);
    if (exists < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the attributes");
    if (exists == 0)
        return NT_OK;
    *attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (*attr < 0) {
        char what[96];
        snprintf(what, sizeof what, "cannot open the %.40s attribute", name);
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, what);
    }
    return NT_OK;
}

int nt_h5_attr_number(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                      int *found, double *value)
{
    int status = NT_OK;
    hid_t attr, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    char what[96];
    *found = 0;
    snprintf(what, sizeof what, "cannot read the %.40s attribute", name);
    status = open_attr(c, obj, where, name, &attr);
    if (status != NT_OK || attr < 0)
        return status;
    space = H5Aget_space(attr);
    type = H5Aget_type(attr);
    if (space < 0 || type < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, what);
        goto cleanup;
    }
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n != 1) {
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "%s: %s attribute must be one number, found %lld values", where,
                              name, (long long)n);
        goto cleanup;
    }
    if (!nt_h5_is_standard_number(type)) {
        char type_text[64];
        nt_h5_describe_type(type, type_text, sizeof type_text);
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "%s: %s attribute must be a number, found %s", where, name,
                              type_text);
        goto cleanup;
    }
    if (H5Aread(attr, H5T_NATIVE_DOUBLE, value) < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, what);
        goto cleanup;
    }
    *found = 1;
cleanup:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Aclose(attr);
    return status;
}

int nt_h5_read_rate(const nt_h5ctx *c, hid_t obj, const char *where, const char *const *names,
                    size_t n_names, int *found, double *rate_hz)
{
    *found = 0;
    for (size_t i = 0; i < n_names; i++) {
        int status = nt_h5_attr_number(c, obj, where, names[i], found, rate_hz);
        if (status != NT_OK)
            return status;
        if (!*found)
            continue;
        if (!(*rate_hz > 0) || !isfinite(*rate_hz)) {
            *found = 0;
            return nt_error_set(c->err, NT_ERR_INVALID,
                                "%s: %s attribute is %g, must be a positive number of Hz", where,
                                names[i], *rate_hz);
        }
        return NT_OK;
    }
    return NT_OK;
}

int nt_h5_set_regular_time(const nt_h5ctx *c, const char *where, nt_recording *rec,
                           double rate_hz)
{
    rec->rate_hz = rate_hz;
    if (rec->n_frames == 0)
        return NT_OK;
    if (rec->n_frames > c->max_bytes / sizeof *rec->time_s) {
        char limit[32];
        nt_format_bytes((double)c->max_bytes, limit, sizeof limit);
        return nt_error_set(c->err, NT_ERR_TOO_LARGE,
                            "%s: the time axis of %zu frames needs more than the %s limit", where,
                            rec->n_frames, limit);
    }
    rec->time_s = malloc(rec->n_frames * sizeof *rec->time_s);
    if (rec->time_s == NULL)
        return nt_error_set(c->err, NT_ERR_NOMEM, "cannot allocate the time axis of %zu frames",
                            rec->n_frames);
    for (size_t i = 0; i < rec->n_frames; i++)
        rec->time_s[i] = (double)i / rate_hz;
    rec->time_source = NT_SOURCE_FILE_RATE;
    return NT_OK;
}

void nt_h5_set_time(nt_recording *rec, double *t, double t0)
{
    size_t n = rec->n_frames;
    if (t0 != 0)
        for (size_t i = 0; i < n; i++)
            t[i] -= t0;
    free(rec->time_s);
    rec->time_s = t;
    rec->time_source = t != NULL ? NT_SOURCE_FILE_TIME : NT_SOURCE_NONE;
    rec->rate_hz = NAN;
    if (n >= 2) {
        double rate = (double)(n - 1) / (t[n - 1] - t[0]);
        if (rate > 0 && isfinite(rate))
            rec->rate_hz = rate;
    }
}

/* ----------------------------------------------------------- strings */

/*
 * Memory for variable-length strings. HDF5 allocates each string during
 * H5Dread; when the read fails part-way (a damaged global heap), the strings
 * already converted never reach the caller's buffer and H5Dvlen_reclaim
 * cannot free them. So the reader gives HDF5 this allocator instead
 * (H5Pset_vlen_mem_manager): it records every block, refuses to go beyond a
 * budget (a hostile heap cannot make us allocate gigabytes), and frees
 * everything at once whether the read succeeded or not.
 */
typedef struct vlen_arena {
    void **blocks;
    size_t n, cap;
    size_t bytes, budget;
} vlen_arena;

static void *arena_alloc(size_t size, void *info)
{
    vlen_arena *a = info;
    if (size > a->budget - a->bytes)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap > 0 ? 2 * a->cap : 64;
        void **blocks = realloc(a->blocks, cap * sizeof *blocks);
        if (blocks == NULL)
            return NULL;
        a->blocks = blocks;
        a->cap = cap;
    }
    void *p = malloc(size > 0 ? size : 1);
    if (p != NULL) {
        a->blocks[a->n++] = p;
        a->bytes += size;
    }
    return p;
}

/* Blocks are freed together by arena_release. */
static void arena_free(void *mem, void *info)
{
    (void)mem;
    (void)info;
}

static void arena_release(vlen_arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    a->blocks = NULL;
    a->n = a->cap = a->bytes = 0;
}

/* Copies s [len] into a new NUL-terminated string; NULL when out of memory. */
static char *copy_string(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/*
 * Checks the string type of a dataset or attribute and makes the memory
 * type to read it with into *mem_type: variable-length strings as such
 * (*variable = 1), fixed-length ones through a NUL-padded type of the same
 * size (*size), so that HDF5 itself strips the file's padding (NUL or
 * trailing spaces) and cuts a NUL-terminated string at its NUL. The memory
 * type keeps the file's character set: HDF5 refuses to convert between
 * ASCII and UTF-8 and the bytes are the same for our purpose.
 */
static int string_mem_type(const nt_h5ctx *c, hid_t file_type, const char *where,
                           hid_t *mem_type, int *variable, size_t *size)
{
    *mem_type = H5I_INVALID_HID;
    if (H5Tget_class(file_type) != H5T_STRING) {
        char name[32];
        nt_h5_type_name(file_type, name, sizeof name);
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected strings, found %s", where,
                            name);
    }
    htri_t is_variable = H5Tis_variable_str(file_type);
    *size = H5Tget_size(file_type);
    H5T_cset_t cset = H5Tget_cset(file_type);
    if (is_variable < 0 || *size == 0 || cset < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the string type");
    *variable = is_variable > 0;
    if (!*variable && *size > NT_H5_MAX_STRING_BYTES)
        return nt_error_set(c->err, NT_ERR_TOO_LARGE,
                            "%s: strings of %zu bytes, more than the limit of %u", where, *size,
                            NT_H5_MAX_STRING_BYTES);
    *mem_type = H5Tcopy(H5T_C_S1);
    if (*mem_type < 0 || H5Tset_cset(*mem_type, cset) < 0 ||
        H5Tset_size(*mem_type, *variable ? H5T_VARIABLE : *size) < 0 ||
        (!*variable && H5Tset_strpad(*mem_type, H5T_STR_NULLPAD) < 0))
        return nt_h5_fail(c->err, NT_ERR_INTERNAL, where, "cannot make the string type");
    return NT_OK;
}

/* Copies the n strings read into vl (variable-length; NULL reads as "") or
 * fixed [n][size] into the new strings strs [n]. */
static int copy_strings(const nt_h5ctx *c, const char *where, size_t n, char *const *vl,
                        const char *fixed, size_t size, char **strs)
{
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s;
        if (vl != NULL) {
            s = vl[i] != NULL ? vl[i] : "";
            len = strlen(s);
            if (len > NT_H5_MAX_STRING_BYTES)
                return nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                    "%s: string %zu is %zu bytes long, more than the limit of %u",
                                    where, i + 1, len, NT_H5_MAX_STRING_BYTES);
        } else {
            s = fixed + i * size;
            len = strnlen(s, size);
        }
        strs[i] = copy_string(s, len);
        if (strs[i] == NULL)
            return nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate strings", where);
    }
    return NT_OK;
}

/* Variable-length strings are allocated in a vlen_arena (see above). */
int nt_h5_read_strings(const nt_h5ctx *c, hid_t dset, const char *where, size_t *n_out,
                       char ***out)
{
    int status = NT_OK, variable = 0;
    hid_t file_type = H5I_INVALID_HID, mem_type = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
    vlen_arena arena = {NULL, 0, 0, 0, MAX_STRINGS_TOTAL};
    char **vl = NULL, *fixed = NULL, **strs = NULL;
    size_t n = 0, size = 0;
    hsize_t dims[1];
    *out = NULL;
    *n_out = 0;

    status = nt_h5_extent(dset, where, "a 1-D dataset of strings", 1, 1, 1, dims, NULL, c->err);
    if (status != NT_OK)
        goto cleanup;
    if (dims[0] > NT_H5_MAX_LIST_ENTRIES) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %llu strings, more than the limit of %u", where,
                              (unsigned long long)dims[0], NT_H5_MAX_LIST_ENTRIES);
        goto cleanup;
    }
    n = (size_t)dims[0];
    file_type = H5Dget_type(dset);
    if (file_type < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the datatype");
        goto cleanup;
    }
    if (n == 0 && H5Tget_class(file_type) == H5T_STRING)
        goto cleanup;
    status = string_mem_type(c, file_type, where, &mem_type, &variable, &size);
    if (status != NT_OK)
        goto cleanup;
    strs = calloc(n, sizeof *strs);
    if (strs == NULL) {
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", where, n);
        goto cleanup;
    }

    if (variable) {
        vl = calloc(n, sizeof *vl);
        if (vl == NULL) {
            status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", where,
                                  n);
            goto cleanup;
        }
        dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (dxpl < 0 ||
            H5Pset_vlen_mem_manager(dxpl, arena_alloc, &arena, arena_free, &arena) < 0) {
            status = nt_h5_fail(c->err, NT_ERR_INTERNAL, where, "cannot make the string type");
            goto cleanup;
        }
        if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, dxpl, vl) < 0) {
            status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read strings");
            goto cleanup;
        }
    } else {
        if (n > MAX_STRINGS_TOTAL / size) {
            char need[32], limit[32];
            nt_format_bytes((double)n * (double)size, need, sizeof need);
            nt_format_bytes((double)MAX_STRINGS_TOTAL, limit, sizeof limit);
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                  "%s: declares %zu strings of %zu bytes (%s), more than the %s "
                                  "limit",
                                  where, n, size, need, limit);
            goto cleanup;
        }
        status = nt_h5_check_storage(c, dset, where, n, size);
        if (status != NT_OK)
            goto cleanup;
        fixed = malloc(n * size);
        if (fixed == NULL) {
            status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", where,
                                  n);
            goto cleanup;
        }
        if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed) < 0) {
            status = nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read strings");
            goto cleanup;
        }
    }
    status = copy_strings(c, where, n, vl, fixed, size, strs);
    if (status != NT_OK)
        goto cleanup;
    *out = strs;
    *n_out = n;
    strs = NULL;
cleanup:
    arena_release(&arena);
    free(vl);
    free(fixed);
    nt_strings_free(strs, n);
    if (dxpl >= 0)
        H5Pclose(dxpl);
    if (mem_type >= 0)
        H5Tclose(mem_type);
    if (file_type >= 0)
        H5Tclose(file_type);
    return status;
}

int nt_h5_read_string_list(const nt_h5ctx *c, const char *path, size_t n_items,
                           const char *noun, const char *what, char ***out)
{
    hid_t dset;
    char **strs = NULL;
    size_t n = 0;
    *out = NULL;
    int status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK || dset < 0)
        return status;
    status = nt_h5_read_strings(c, dset, path, &n, &strs);
    H5Dclose(dset);
    if (status != NT_OK)
        return status;
    if (n != n_items) {
        nt_strings_free(strs, n);
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: %zu %s%s for %zu %s%s", path, n, noun,
                            n == 1 ? "" : "s", n_items, what, n_items == 1 ? "" : "s");
    }
    *out = strs;
    return NT_OK;
}

/*
 * H5Aread takes no transfer property list, so the vlen_arena cannot be used
 * for attributes: variable-length strings come from HDF5's own allocator and
 * go back through H5Dvlen_reclaim. Attributes are small (at most
 * MAX_ATTR_STRINGS strings), which bounds what a failed read can leave.
 */
int nt_h5_attr_strings(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                       size_t *n_out, char ***out)
{
    int status, variable = 0;
    hid_t attr, space = H5I_INVALID_HID, file_type = H5I_INVALID_HID,
                mem_type = H5I_INVALID_HID;
    char **vl = NULL, *fixed = NULL, **strs = NULL, what[128];
    size_t n = 0, size = 0;
    int have_vl = 0;
    *out = NULL;
    *n_out = 0;
    snprintf(what, sizeof what, "%s (attribute %.40s)", where, name);
    status = open_attr(c, obj, where, name, &attr);
    if (status != NT_OK || attr < 0)
        return status;
    space = H5Aget_space(attr);
    file_type = H5Aget_type(attr);
    if (space < 0 || file_type < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, what, "cannot read the attribute");
        goto cleanup;
    }
    int rank = H5Sget_simple_extent_ndims(space);
    hssize_t points = H5Sget_simple_extent_npoints(space);
    if (rank < 0 || rank > 1 || points < 0) {
        status = rank < 0 || points < 0
                     ? nt_h5_fail(c->err, NT_ERR_CORRUPT, what, "cannot read the dataspace")
                     : nt_error_set(c->err, NT_ERR_FORMAT,
                                    "%s: expected a string or a 1-D list of strings, found %d-D",
                                    what, rank);
        goto cleanup;
    }
    if ((hsize_t)points > MAX_ATTR_STRINGS) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %lld strings, more than the limit of %u", what,
                              (long long)points, MAX_ATTR_STRINGS);
        goto cleanup;
    }
    n = (size_t)points;
    status = string_mem_type(c, file_type, what, &mem_type, &variable, &size);
    if (status != NT_OK || n == 0)
        goto cleanup;
    strs = calloc(n, sizeof *strs);
    if (variable)
        vl = calloc(n, sizeof *vl);
    else
        fixed = malloc(n * size);
    if (strs == NULL || (vl == NULL && fixed == NULL)) {
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", what, n);
        goto cleanup;
    }
    if (H5Aread(attr, mem_type, variable ? (void *)vl : (void *)fixed) < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, what, "cannot read strings");
        goto cleanup;
    }
    have_vl = variable;
    status = copy_strings(c, what, n, vl, fixed, size, strs);
    if (status != NT_OK)
        goto cleanup;
    *out = strs;
    *n_out = n;
    strs = NULL;
cleanup:
    if (have_vl) {
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(mem_type, space, H5P_DEFAULT, vl);
#else
        H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, vl);
#endif
        H5Eclear2(H5E_DEFAULT);
    }
    free(vl);
    free(fixed);
    nt_strings_free(strs, n);
    if (mem_type >= 0)
        H5Tclose(mem_type);
    if (file_type >= 0)
        H5Tclose(file_type);
    if (space >= 0)
        H5Sclose(space);
    H5Aclose(attr);
    return status;
}

int nt_h5_attr_string(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                      char **out)
{
    char **strs = NULL;
    size_t n = 0;
    *out = NULL;
    int status = nt_h5_attr_strings(c, obj, where, name, &n, &strs);
    if (status != NT_OK || strs == NULL)
        return status;
    if (n != 1) {
        nt_strings_free(strs, n);
        return nt_error_set(c->err, NT_ERR_FORMAT,
                            "%s: %s attribute must be one string, found %zu", where, name, n);
    }
    *out = strs[0];
    free(strs);
    return NT_OK;
}

/* ----------------------------------------------------------- samples */

int nt_h5_sample_type(const nt_h5ctx *c, hid_t dset, const char *where, const char *what,
                      nt_recording *rec, hid_t *type)
{
    *type = H5Dget_type(dset);
    if (*type < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the datatype");
    nt_h5_type_name(*type, rec->sample_type, sizeof rec->sample_type);
    if (nt_h5_is_sample_type(*type))
        return NT_OK;
    char name[64];
    nt_h5_describe_type(*type, name, sizeof name);
    H5Tclose(*type);
    *type = H5I_INVALID_HID;
    return nt_error_set(c->err, NT_ERR_FORMAT, "%s: unsupported %s type (%s)", where, what, name);
}

int nt_h5_matrix_prepare(const nt_h5ctx *c, const nt_h5_matrix *m, int header_only,
                         nt_recording *rec)
{
    int status = NT_OK;
    hsize_t rows = m->rank == 2 ? m->dims[0] : 1, cols = m->rank == 2 ? m->dims[1] : m->dims[0];
    char shape[64];
    if (m->rank == 2)
        snprintf(shape, sizeof shape, "%llu x %llu", (unsigned long long)rows,
                 (unsigned long long)cols);
    else
        snprintf(shape, sizeof shape, "%llu", (unsigned long long)cols);
    hid_t type;
    status = nt_h5_sample_type(c, m->dset, m->where, "sample", rec, &type);
    if (status != NT_OK)
        return status;
    if (cols != 0 && rows > (hsize_t)(SIZE_MAX / sizeof(float)) / cols) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %s samples, more than this computer can address",
                              m->where, shape);
        goto cleanup;
    }
    size_t n_samples = (size_t)rows * (size_t)cols;
    if (!header_only && n_samples > c->max_bytes / sizeof(float)) {
        char need[32], limit[32];
        nt_format_bytes((double)n_samples * sizeof(float), need, sizeof need);
        nt_format_bytes((double)c->max_bytes, limit, sizeof limit);
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %s samples (%s as float32), more than the %s limit",
                              m->where, shape, need, limit);
        goto cleanup;
    }
    rec->n_rois = (size_t)(m->transpose && m->rank == 2 ? cols : rows);
    rec->n_frames = (size_t)(m->transpose && m->rank == 2 ? rows : cols);
    status = nt_h5_describe_storage(c, m->dset, m->where, rec->storage, sizeof rec->storage,
                                    !header_only);
    if (status == NT_OK)
        status = nt_h5_check_storage(c, m->dset, m->where, n_samples, H5Tget_size(type));
cleanup:
    H5Tclose(type);
    return status;
}

/* Selects the block start [2] x count [2] of the (normalised 2-D) matrix in
 * its file dataspace of rank 1 or 2. */
static herr_t select_block(hid_t space, int rank, const hsize_t *start, const hsize_t *count)
{
    return H5Sselect_hyperslab(space, H5S_SELECT_SET, start + (rank == 1), NULL,
                               count + (rank == 1), NULL);
}

/*
 * Reads a matrix stored ROI-major straight into out [rows][cols]. A chunked
 * dataset is read in tiles of whole chunks, at most MAX_CHUNKS_PER_READ of
 * them per H5Dread: HDF5 keeps a record for every chunk a read touches,
 * about 1.5 kB each, so one read of a dataset of 16 million small (or
 * unallocated) chunks would take 24 GB besides the samples. Tiles follow
 * chunk boundaries, so each chunk is still decoded once. Other layouts are
 * read at once (HDF5 converts through a fixed-size buffer).
 */
static int read_direct(const nt_h5ctx *c, const nt_h5_matrix *m, hid_t dcpl, const hsize_t *dims,
                       const hsize_t *chunk, float *out)
{
    int status = NT_OK;
    hid_t file_space = H5I_INVALID_HID, mem_space = H5I_INVALID_HID;
    if (H5Pget_layout(dcpl) != H5D_CHUNKED) {
        if (H5Dread(m->dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
            status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read data");
        return status;
    }
    hsize_t chunk_cols = (dims[1] + chunk[1] - 1) / chunk[1];
    hsize_t tile_chunk_cols = chunk_cols < MAX_CHUNKS_PER_READ ? chunk_cols : MAX_CHUNKS_PER_READ;
    hsize_t tile_rows = chunk[0] * (MAX_CHUNKS_PER_READ / tile_chunk_cols);
    hsize_t tile_cols = chunk[1] * tile_chunk_cols;
    file_space = H5Dget_space(m->dset);
    mem_space = H5Screate_simple(2, dims, NULL);
    if (file_space < 0 || mem_space < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the dataspace");
        goto cleanup;
    }
    for (hsize_t r = 0; r < dims[0]; r += tile_rows) {
        for (hsize_t f = 0; f < dims[1]; f += tile_cols) {
            hsize_t start[2] = {r, f};
            hsize_t count[2] = {dims[0] - r < tile_rows ? dims[0] - r : tile_rows,
                                dims[1] - f < tile_cols ? dims[1] - f : tile_cols};
            if (select_block(file_space, m->rank, start, count) < 0 ||
                H5Sselect_hyperslab(mem_space, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
                status = nt_h5_fail(c->err, NT_ERR_INTERNAL, m->where, "cannot select a tile");
                goto cleanup;
            }
            if (H5Dread(m->dset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, out) < 0) {
                status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read data");
                goto cleanup;
            }
        }
    }
cleanup:
    if (mem_space >= 0)
        H5Sclose(mem_space);
    if (file_space >= 0)
        H5Sclose(file_space);
    return status;
}

/*
 * Reads a matrix stored [frames][rois] (dims) into out [rois][frames]: tile
 * by tile into a buffer of at most MAX_TILE_SAMPLES, each tile then
 * scattered to its place, so memory stays the samples plus one tile.
 *
 * Tiles are made of whole storage units (chunks; single samples for other
 * layouts), as many as fit in a tile and at most MAX_CHUNKS_PER_READ chunks,
 * so that every chunk is decoded once. A chunk larger than a tile is read
 * in sub-tiles, one chunk after the other; when it is filtered (compressed)
 * the dataset is reopened with a chunk cache that holds one chunk, else each
 * sub-tile would decompress the whole chunk again. That cache is memory
 * HDF5 needs anyway to decode such a chunk once.
 */
static int read_transposed(const nt_h5ctx *c, const nt_h5_matrix *m, hid_t dcpl,
                           const hsize_t *dims, const hsize_t *chunk, float *out)
{
    int status = NT_OK;
    hid_t dset = m->dset, own = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
    hid_t file_space = H5I_INVALID_HID, mem_space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    float *tile = NULL;
    int chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
    hsize_t unit[2] = {chunked ? chunk[0] : 1, chunked ? chunk[1] : 1};
    hsize_t block[2], sub[2];
    for (int d = 0; d < 2; d++)
        if (unit[d] > dims[d])
            unit[d] = dims[d];
    hsize_t unit_samples = unit[0] * unit[1];

    if (unit_samples <= MAX_TILE_SAMPLES) {
        hsize_t max_units = MAX_TILE_SAMPLES / unit_samples;
        if (chunked && max_units > MAX_CHUNKS_PER_READ)
            max_units = MAX_CHUNKS_PER_READ;
        hsize_t units_across = (dims[1] + unit[1] - 1) / unit[1];
        hsize_t units_down = (dims[0] + unit[0] - 1) / unit[0];
        hsize_t k1 = units_across < max_units ? units_across : max_units;
        hsize_t k0 = max_units / k1;
        k0 = k0 < units_down ? k0 : units_down;
        block[0] = sub[0] = k0 * unit[0];
        block[1] = sub[1] = k1 * unit[1];
    } else {
        block[0] = unit[0];
        block[1] = unit[1];
        sub[1] = unit[1] < MAX_TILE_SAMPLES ? unit[1] : MAX_TILE_SAMPLES;
        sub[0] = MAX_TILE_SAMPLES / sub[1];
        sub[0] = sub[0] < unit[0] ? sub[0] : unit[0];
        if (H5Pget_nfilters(dcpl) > 0) {
            type = H5Dget_type(dset);
            /* HDF5 refuses to open a dataset of chunks over 4 GiB; the
             * cap only keeps a nonsense product from wrapping */
            size_t elem = type >= 0 ? H5Tget_size(type) : 8;
            hsize_t samples = chunk[0] * chunk[1];
            size_t chunk_bytes = samples < ((hsize_t)1 << 32) / (elem > 0 ? elem : 1)
                                     ? (size_t)samples * elem
                                     : (size_t)1 << 32;
            dapl = H5Pcreate(H5P_DATASET_ACCESS);
            if (type < 0 || dapl < 0 || H5Pset_chunk_cache(dapl, 521, chunk_bytes, 1.0) < 0) {
                status = nt_h5_fail(c->err, NT_ERR_INTERNAL, m->where, "cannot set a chunk cache");
                goto cleanup;
            }
            own = H5Dopen2(c->file, m->where, dapl);
            if (own < 0) {
                status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot open");
                goto cleanup;
            }
            dset = own;
        }
    }
    tile = malloc((size_t)(sub[0] * sub[1]) * sizeof *tile);
    file_space = H5Dget_space(dset);
    if (tile == NULL) {
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate a tile", m->where);
        goto cleanup;
    }
    if (file_space < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the dataspace");
        goto cleanup;
    }
    size_t n_frames = (size_t)dims[0];
    for (hsize_t b0 = 0; b0 < dims[0]; b0 += block[0]) {
        hsize_t e0 = dims[0] - b0 < block[0] ? dims[0] : b0 + block[0];
        for (hsize_t b1 = 0; b1 < dims[1]; b1 += block[1]) {
            hsize_t e1 = dims[1] - b1 < block[1] ? dims[1] : b1 + block[1];
            for (hsize_t s0 = b0; s0 < e0; s0 += sub[0]) {
                for (hsize_t s1 = b1; s1 < e1; s1 += sub[1]) {
                    hsize_t start[2] = {s0, s1};
                    hsize_t count[2] = {e0 - s0 < sub[0] ? e0 - s0 : sub[0],
                                        e1 - s1 < sub[1] ? e1 - s1 : sub[1]};
                    mem_space = H5Screate_simple(2, count, NULL);
                    if (mem_space < 0 || select_block(file_space, 2, start, count) < 0) {
                        status = nt_h5_fail(c->err, NT_ERR_INTERNAL, m->where,
                                            "cannot select a tile");
                        goto cleanup;
                    }
                    if (H5Dread(dset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT,
                                tile) < 0) {
                        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read data");
                        goto cleanup;
                    }
                    H5Sclose(mem_space);
                    mem_space = H5I_INVALID_HID;
                    for (size_t j = 0; j < (size_t)count[1]; j++) {
                        float *dst = out + ((size_t)s1 + j) * n_frames + (size_t)s0;
                        const float *src = tile + j;
                        for (size_t i = 0; i < (size_t)count[0]; i++)
                            dst[i] = src[i * (size_t)count[1]];
                    }
                }
            }
        }
    }
cleanup:
    free(tile);
    if (mem_space >= 0)
        H5Sclose(mem_space);
    if (file_space >= 0)
        H5Sclose(file_space);
    if (own >= 0)
        H5Dclose(own);
    if (dapl >= 0)
        H5Pclose(dapl);
    if (type >= 0)
        H5Tclose(type);
    return status;
}

int nt_h5_matrix_read(const nt_h5ctx *c, const nt_h5_matrix *m, nt_recording *rec)
{
    int status = NT_OK;
    size_t n_samples = rec->n_rois * rec->n_frames;
    hsize_t dims[2] = {m->rank == 2 ? m->dims[0] : 1, m->rank == 2 ? m->dims[1] : m->dims[0]};
    hsize_t chunk[2] = {1, 1};
    if (n_samples == 0)
        return NT_OK;
    hid_t dcpl = H5Dget_create_plist(m->dset);
    if (dcpl < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the storage properties");
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t got[2] = {0, 0};
        if (H5Pget_chunk(dcpl, m->rank, got) != m->rank || got[0] == 0 ||
            (m->rank == 2 && got[1] == 0)) {
            status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the chunk shape");
            goto cleanup;
        }
        chunk[0] = m->rank == 2 ? got[0] : 1;
        chunk[1] = m->rank == 2 ? got[1] : got[0];
    }
    rec->traces = malloc(n_samples * sizeof *rec->traces);
    if (rec->traces == NULL) {
        char need[32];
        nt_format_bytes((double)n_samples * sizeof(float), need, sizeof need);
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %s", m->where, need);
        goto cleanup;
    }
    if (m->transpose && m->rank == 2)
        status = read_transposed(c, m, dcpl, dims, chunk, rec->traces);
    else
        status = read_direct(c, m, dcpl, dims, chunk, rec->traces);
cleanup:
    H5Pclose(dcpl);
    return status;
}
