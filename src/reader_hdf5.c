/*
 * reader_hdf5.c — reads the nirtrace HDF5 layout into an nt_recording.
 *
 *   /traces        [n_rois][n_frames] integers (8-32 bit) or floats; optional
 *                  attribute rate_hz (one number, Hz)
 *   /time          [n_frames] seconds from the first frame (wins over rate_hz)
 *   /stim/onsets   [n_stims] seconds from the first frame (or one scalar)
 *   /stim/labels   [n_stims] strings, variable- or fixed-length
 *   /rois/names    [n_rois] strings
 *
 * Only /traces is required. The reader does not judge the values (monotonic
 * time, onsets inside the recording): nt_recording_check does, after the
 * caller has applied its overrides.
 *
 * Method. A damaged or hostile file must be refused, never trusted: every
 * size the file declares is checked before anything is allocated — against
 * the caller's memory limit (opts->max_bytes), against fixed limits for the
 * small lists (stimuli, labels, names), and against the file's size for the
 * bytes actually stored — because HDF5 happily describes a 37 TB dataset of
 * unallocated chunks in a 2 kB file. Samples are converted to float by
 * H5Dread itself (HDF5 converts any integer or float type and byte order).
 *
 * HDF5 prints its error stack to stderr by default; the library must not
 * print, so automatic printing is off for the duration of a call, and the
 * innermost description on the stack becomes the detail of our message.
 */
#include "internal.h"

#include <hdf5.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A recording has at most this many stimuli, labels or ROI names: enough for
 * any experiment, small enough to allocate whatever the file claims. */
#define MAX_LIST_ENTRIES 1000000u
/* Longest label or name, in bytes. */
#define MAX_STRING_BYTES 4096u
/* Largest buffer of fixed-length strings read at once. */
#define MAX_STRINGS_TOTAL ((size_t)256 << 20)

/* What every step of one read needs. */
typedef struct h5ctx {
    hid_t file;
    hsize_t file_size; /* bytes on disk, from stat */
    size_t max_bytes;  /* opts->max_bytes */
    nt_error *err;
} h5ctx;

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

/* Sets err to "where: what (HDF5: detail)" from the current HDF5 error and
 * returns status. */
static int h5_fail(nt_error *err, int status, const char *where, const char *what)
{
    char detail[256];
    take_h5_detail(detail, sizeof detail);
    return nt_error_set(err, status, "%s: %s (HDF5: %s)", where, what, detail);
}

/* Writes a short name of the HDF5 type into buf: "uint16", "float32",
 * "string", "compound", ... */
static void type_name(hid_t type, char *buf, size_t len)
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
 * 1 for the standard integer types (8 to 64 bits, signed or not) and the
 * IEEE float32/float64 types, in either byte order. Other numeric types
 * (packed 12-bit integers, non-IEEE floats) are legal HDF5 but no recording
 * software writes them, and HDF5 1.10 converts a damaged one past the end of
 * its own stack buffer: refusing them keeps a corrupted datatype message
 * from ever reaching H5Dread.
 */
static int is_standard_number(hid_t type)
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

/* 1 for the sample types /traces may hold. 64-bit integers are refused:
 * float32 would keep only 24 of their bits. */
static int is_sample_type(hid_t type)
{
    return is_standard_number(type) &&
           (H5Tget_class(type) == H5T_FLOAT || H5Tget_size(type) <= 4);
}

/* Writes what the type is for an error message: its name, and why a number
 * type that looks supported is not. */
static void describe_type(hid_t type, char *buf, size_t len)
{
    type_name(type, buf, len);
    H5T_class_t cls = H5Tget_class(type);
    if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && !is_standard_number(type)) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, " with a non-standard bit layout");
    }
}

/* Writes bytes in binary units ("372 GiB", "1.5 KiB", "600 bytes"). */
static void format_bytes(double bytes, char *buf, size_t len)
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

static const char *kind_name(H5I_type_t kind)
{
    switch (kind) {
    case H5I_GROUP: return "a group";
    case H5I_DATASET: return "a dataset";
    case H5I_DATATYPE: return "a named datatype";
    default: return "an unknown object";
    }
}

/*
 * Opens the object at the absolute path into *obj, or leaves *obj
 * H5I_INVALID_HID when the path does not exist. Every parent on the path must
 * be a group (a dataset where a group belongs is a format error): H5Lexists
 * fails rather than answers when a parent is missing, so parents are looked
 * up one at a time, from the root down.
 */
static int open_path(const h5ctx *c, const char *path, hid_t *obj)
{
    const char *slash = strrchr(path, '/');
    *obj = H5I_INVALID_HID;
    if (slash != NULL && slash != path) {
        char parent[128];
        size_t len = (size_t)(slash - path);
        if (len >= sizeof parent)
            return nt_error_set(c->err, NT_ERR_INTERNAL, "%s: path too long", path);
        memcpy(parent, path, len);
        parent[len] = '\0';
        hid_t group;
        int status = open_path(c, parent, &group);
        if (status != NT_OK || group < 0)
            return status;
        H5I_type_t kind = H5Iget_type(group);
        H5Oclose(group);
        if (kind != H5I_GROUP)
            return nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected a group, found %s", parent,
                                kind_name(kind));
    }
    htri_t exists = H5Lexists(c->file, path, H5P_DEFAULT);
    if (exists < 0)
        return h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot look up");
    if (exists == 0)
        return NT_OK;
    *obj = H5Oopen(c->file, path, H5P_DEFAULT);
    if (*obj < 0)
        return h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot open");
    return NT_OK;
}

/* Like open_path, for a dataset: any other kind of object is a format error. */
static int open_dataset(const h5ctx *c, const char *path, hid_t *dset)
{
    int status = open_path(c, path, dset);
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

/*
 * Reads the extent of dset into dims [rank]. The layout requires exactly rank
 * dimensions; with allow_scalar, a scalar also passes as one element
 * (dims[0] = 1). Anything else is a format error "where: expected
 * <expected>, found 3-D".
 */
static int read_extent(hid_t dset, const char *where, const char *expected, int rank,
                       int allow_scalar, hsize_t *dims, nt_error *err)
{
    hsize_t all[H5S_MAX_RANK];
    int status = NT_OK;
    hid_t space = H5Dget_space(dset);
    if (space < 0)
        return h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
    switch (H5Sget_simple_extent_type(space)) {
    case H5S_SCALAR:
        if (allow_scalar)
            dims[0] = 1;
        else
            status = nt_error_set(err, NT_ERR_FORMAT, "%s: expected %s, found a scalar", where,
                                  expected);
        goto cleanup;
    case H5S_NULL:
        status = nt_error_set(err, NT_ERR_FORMAT, "%s: expected %s, found an empty dataspace",
                              where, expected);
        goto cleanup;
    case H5S_SIMPLE:
        break;
    default:
        status = h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
        goto cleanup;
    }
    int found = H5Sget_simple_extent_ndims(space);
    if (found < 0 || found > H5S_MAX_RANK) {
        status = h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
        goto cleanup;
    }
    if (found != rank) {
        status = nt_error_set(err, NT_ERR_FORMAT, "%s: expected %s, found %d-D", where, expected,
                              found);
        goto cleanup;
    }
    if (H5Sget_simple_extent_dims(space, all, NULL) < 0) {
        status = h5_fail(err, NT_ERR_CORRUPT, where, "cannot read the dataspace");
        goto cleanup;
    }
    memcpy(dims, all, (size_t)rank * sizeof *dims);
cleanup:
    H5Sclose(space);
    return status;
}

/*
 * Refuses a dataset whose stored bytes cannot be in the file: a contiguous
 * block of n_elem elements of elem_size bytes that would end past the end of
 * the file, or chunks adding up to more than the file. Storage that is not
 * allocated yet passes (HDF5 reads it as the fill value), as do compact data
 * (inside the object header, already read) and external or virtual storage
 * (in other files).
 */
static int check_storage(const h5ctx *c, hid_t dset, const char *where, hsize_t n_elem,
                         size_t elem_size)
{
    int status = NT_OK;
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0)
        return h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the storage properties");
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

/*
 * Describes how dset is stored into buf: the layout, then the filters in
 * pipeline order ("chunked, shuffle, deflate"). With need_decoders, a
 * mandatory filter this HDF5 cannot run (a plugin such as LZF or Blosc that
 * is not installed) is a format error, reported here rather than as an
 * obscure read failure.
 */
static int describe_storage(const h5ctx *c, hid_t dset, const char *where, char *buf, size_t len,
                            int need_decoders)
{
    int status = NT_OK;
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0)
        return h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the storage properties");
    switch (H5Pget_layout(dcpl)) {
    case H5D_COMPACT: snprintf(buf, len, "compact"); break;
    case H5D_CONTIGUOUS: snprintf(buf, len, "contiguous"); break;
    case H5D_CHUNKED: snprintf(buf, len, "chunked"); break;
    case H5D_VIRTUAL: snprintf(buf, len, "virtual"); break;
    default:
        status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the storage layout");
        goto cleanup;
    }
    int n_filters = H5Pget_nfilters(dcpl);
    if (n_filters < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the filters");
        goto cleanup;
    }
    for (int i = 0; i < n_filters; i++) {
        unsigned flags = 0, config = 0;
        size_t n_params = 0;
        char stored[64] = "", name[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_params, NULL,
                                         sizeof stored, stored, &config);
        if (id < 0) {
            status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the filters");
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

/*
 * Reads the n numbers of dset (any integer or float type) as doubles into a
 * new array *out (NULL when n is 0; caller frees). The size is checked
 * against the memory limit and the file before allocating.
 */
static int read_numbers(const h5ctx *c, hid_t dset, const char *where, hsize_t n, double **out)
{
    int status = NT_OK;
    double *v = NULL;
    hid_t type = H5Dget_type(dset);
    *out = NULL;
    if (type < 0)
        return h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the datatype");
    if (!is_standard_number(type)) {
        char name[64];
        describe_type(type, name, sizeof name);
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected numbers, found %s", where,
                              name);
        goto cleanup;
    }
    if (n > c->max_bytes / sizeof *v) {
        char need[32], limit[32];
        format_bytes((double)n * sizeof *v, need, sizeof need);
        format_bytes((double)c->max_bytes, limit, sizeof limit);
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %llu values (%s as float64), more than the %s limit",
                              where, (unsigned long long)n, need, limit);
        goto cleanup;
    }
    status = check_storage(c, dset, where, n, H5Tget_size(type));
    if (status != NT_OK || n == 0)
        goto cleanup;
    v = malloc((size_t)n * sizeof *v);
    if (v == NULL) {
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %llu values", where,
                              (unsigned long long)n);
        goto cleanup;
    }
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read data");
        goto cleanup;
    }
    *out = v;
    v = NULL;
cleanup:
    free(v);
    H5Tclose(type);
    return status;
}

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
 * Reads a 1-D (or scalar) dataset of strings into a new array *out of *n_out
 * strings (NULL when empty; free with nt_strings_free). Both kinds h5py
 * writes are read: variable-length (its default for str) and fixed-length
 * ('S10' numpy arrays). Fixed-length strings are read through a NUL-padded
 * memory type of the same size, so HDF5 itself strips the file's padding
 * (NUL or trailing spaces) and cuts a NUL-terminated string at its NUL.
 * The memory type keeps the file's character set: HDF5 refuses to convert
 * between ASCII and UTF-8 and the bytes are the same for our purpose.
 * Variable-length strings are allocated in a vlen_arena (see above).
 */
static int read_strings(const h5ctx *c, hid_t dset, const char *where, size_t *n_out,
                        char ***out)
{
    int status = NT_OK;
    hid_t file_type = H5I_INVALID_HID, mem_type = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
    vlen_arena arena = {NULL, 0, 0, 0, MAX_STRINGS_TOTAL};
    char **vl = NULL, *fixed = NULL, **strs = NULL;
    size_t n = 0;
    hsize_t dims[1];
    *out = NULL;
    *n_out = 0;

    status = read_extent(dset, where, "a 1-D dataset of strings", 1, 1, dims, c->err);
    if (status != NT_OK)
        goto cleanup;
    if (dims[0] > MAX_LIST_ENTRIES) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %llu strings, more than the limit of %u", where,
                              (unsigned long long)dims[0], MAX_LIST_ENTRIES);
        goto cleanup;
    }
    n = (size_t)dims[0];
    file_type = H5Dget_type(dset);
    if (file_type < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the datatype");
        goto cleanup;
    }
    if (H5Tget_class(file_type) != H5T_STRING) {
        char name[32];
        type_name(file_type, name, sizeof name);
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected strings, found %s", where,
                              name);
        goto cleanup;
    }
    if (n == 0)
        goto cleanup;
    htri_t variable = H5Tis_variable_str(file_type);
    size_t size = H5Tget_size(file_type);
    H5T_cset_t cset = H5Tget_cset(file_type);
    if (variable < 0 || size == 0 || cset < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read the string type");
        goto cleanup;
    }
    strs = calloc(n, sizeof *strs);
    mem_type = H5Tcopy(H5T_C_S1);
    if (strs == NULL) {
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", where, n);
        goto cleanup;
    }
    if (mem_type < 0 || H5Tset_cset(mem_type, cset) < 0) {
        status = h5_fail(c->err, NT_ERR_INTERNAL, where, "cannot make the string type");
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
        if (dxpl < 0 || H5Tset_size(mem_type, H5T_VARIABLE) < 0 ||
            H5Pset_vlen_mem_manager(dxpl, arena_alloc, &arena, arena_free, &arena) < 0) {
            status = h5_fail(c->err, NT_ERR_INTERNAL, where, "cannot make the string type");
            goto cleanup;
        }
        if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, dxpl, vl) < 0) {
            status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read strings");
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = vl[i] != NULL ? vl[i] : "";
            size_t len = strlen(s);
            if (len > MAX_STRING_BYTES) {
                status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                      "%s: string %zu is %zu bytes long, more than the limit of %u",
                                      where, i + 1, len, MAX_STRING_BYTES);
                goto cleanup;
            }
            strs[i] = copy_string(s, len);
            if (strs[i] == NULL) {
                status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate strings", where);
                goto cleanup;
            }
        }
    } else {
        if (size > MAX_STRING_BYTES) {
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                  "%s: strings of %zu bytes, more than the limit of %u", where,
                                  size, MAX_STRING_BYTES);
            goto cleanup;
        }
        if (n > MAX_STRINGS_TOTAL / size) {
            char need[32], limit[32];
            format_bytes((double)n * (double)size, need, sizeof need);
            format_bytes((double)MAX_STRINGS_TOTAL, limit, sizeof limit);
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                  "%s: declares %zu strings of %zu bytes (%s), more than the %s "
                                  "limit",
                                  where, n, size, need, limit);
            goto cleanup;
        }
        status = check_storage(c, dset, where, n, size);
        if (status != NT_OK)
            goto cleanup;
        if (H5Tset_size(mem_type, size) < 0 || H5Tset_strpad(mem_type, H5T_STR_NULLPAD) < 0) {
            status = h5_fail(c->err, NT_ERR_INTERNAL, where, "cannot make the string type");
            goto cleanup;
        }
        fixed = malloc(n * size);
        if (fixed == NULL) {
            status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", where,
                                  n);
            goto cleanup;
        }
        if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed) < 0) {
            status = h5_fail(c->err, NT_ERR_CORRUPT, where, "cannot read strings");
            goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = fixed + i * size;
            strs[i] = copy_string(s, strnlen(s, size));
            if (strs[i] == NULL) {
                status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate strings", where);
                goto cleanup;
            }
        }
    }
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

/* Reads the optional string dataset at path, which must hold one string per
 * item (n_items of what, e.g. "onsets"); leaves *out NULL when absent. */
static int read_string_list(const h5ctx *c, const char *path, size_t n_items, const char *noun,
                            const char *what, char ***out)
{
    hid_t dset;
    char **strs = NULL;
    size_t n = 0;
    *out = NULL;
    int status = open_dataset(c, path, &dset);
    if (status != NT_OK || dset < 0)
        return status;
    status = read_strings(c, dset, path, &n, &strs);
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
 * Reads the rate_hz attribute of /traces: one number of any integer or float
 * type (scalar or one element), which must be positive and finite. *found is
 * 0 when there is no such attribute.
 */
static int read_rate(const h5ctx *c, hid_t traces, int *found, double *rate_hz)
{
    int status = NT_OK;
    hid_t attr = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    *found = 0;
    htri_t exists = H5Aexists(traces, "rate_hz");
    if (exists < 0)
        return h5_fail(c->err, NT_ERR_CORRUPT, "/traces", "cannot read the attributes");
    if (exists == 0)
        return NT_OK;
    attr = H5Aopen(traces, "rate_hz", H5P_DEFAULT);
    if (attr < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, "/traces", "cannot open the rate_hz attribute");
        goto cleanup;
    }
    space = H5Aget_space(attr);
    type = H5Aget_type(attr);
    if (space < 0 || type < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, "/traces", "cannot read the rate_hz attribute");
        goto cleanup;
    }
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n != 1) {
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "/traces: rate_hz attribute must be one number, found %lld values",
                              (long long)n);
        goto cleanup;
    }
    if (!is_standard_number(type)) {
        char name[64];
        describe_type(type, name, sizeof name);
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "/traces: rate_hz attribute must be a number, found %s", name);
        goto cleanup;
    }
    if (H5Aread(attr, H5T_NATIVE_DOUBLE, rate_hz) < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, "/traces", "cannot read the rate_hz attribute");
        goto cleanup;
    }
    if (!(*rate_hz > 0) || !isfinite(*rate_hz)) {
        status = nt_error_set(c->err, NT_ERR_INVALID,
                              "/traces: rate_hz attribute is %g, must be a positive number of Hz",
                              *rate_hz);
        goto cleanup;
    }
    *found = 1;
cleanup:
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    if (attr >= 0)
        H5Aclose(attr);
    return status;
}

/*
 * Reads /time, if present, as the time base of rec: one value per frame, in
 * seconds. The nominal rate is the mean one over the span, (n - 1) / (t_last
 * - t_first), NaN when that is not a positive finite number. *found is 0
 * when the file has no /time.
 */
static int read_time(const h5ctx *c, nt_recording *rec, int *found)
{
    hid_t dset;
    hsize_t n;
    double *t = NULL;
    *found = 0;
    int status = open_dataset(c, "/time", &dset);
    if (status != NT_OK || dset < 0)
        return status;
    status = read_extent(dset, "/time", "a 1-D dataset [frames]", 1, 0, &n, c->err);
    if (status == NT_OK && n != rec->n_frames)
        status = nt_error_set(c->err, NT_ERR_FORMAT, "/time: has %llu value%s, /traces has %zu frame%s",
                              (unsigned long long)n, n == 1 ? "" : "s", rec->n_frames,
                              rec->n_frames == 1 ? "" : "s");
    if (status == NT_OK)
        status = read_numbers(c, dset, "/time", n, &t);
    H5Dclose(dset);
    if (status != NT_OK)
        return status;
    *found = 1;
    rec->time_s = t;
    rec->time_source = t != NULL ? NT_SOURCE_FILE_TIME : NT_SOURCE_NONE;
    rec->rate_hz = NAN;
    if (n >= 2) {
        double rate = (double)(n - 1) / (t[n - 1] - t[0]);
        if (rate > 0 && isfinite(rate))
            rec->rate_hz = rate;
    }
    return NT_OK;
}

/* Gives rec the regular time base time_s[i] = i / rate_hz of the file's
 * rate_hz attribute. */
static int set_regular_time(const h5ctx *c, nt_recording *rec, double rate_hz)
{
    rec->rate_hz = rate_hz;
    if (rec->n_frames == 0)
        return NT_OK;
    if (rec->n_frames > c->max_bytes / sizeof *rec->time_s) {
        char limit[32];
        format_bytes((double)c->max_bytes, limit, sizeof limit);
        return nt_error_set(c->err, NT_ERR_TOO_LARGE,
                            "/traces: the time axis of %zu frames needs more than the %s limit",
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

/* Reads /stim/onsets (1-D or one scalar) and the optional /stim/labels. */
static int read_stims(const h5ctx *c, nt_recording *rec)
{
    hid_t dset;
    hsize_t n = 0;
    double *onsets = NULL;
    int status = open_dataset(c, "/stim/onsets", &dset);
    if (status != NT_OK)
        return status;
    if (dset >= 0) {
        status = read_extent(dset, "/stim/onsets", "a 1-D dataset of seconds", 1, 1, &n, c->err);
        if (status == NT_OK && n > MAX_LIST_ENTRIES)
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                  "/stim/onsets: declares %llu onsets, more than the limit of %u",
                                  (unsigned long long)n, MAX_LIST_ENTRIES);
        if (status == NT_OK)
            status = read_numbers(c, dset, "/stim/onsets", n, &onsets);
        H5Dclose(dset);
        if (status != NT_OK)
            return status;
        rec->stim_s = onsets;
        rec->n_stims = (size_t)n;
        rec->stim_source = n > 0 ? NT_SOURCE_FILE_STIM : NT_SOURCE_NONE;
    }
    return read_string_list(c, "/stim/labels", rec->n_stims, "label", "onset", &rec->stim_labels);
}

/*
 * Reads the whole layout into rec (shape already zero, no traces). /traces
 * is examined first so that its shape is known before anything else is read;
 * its samples are read last, after every cheaper check has passed.
 */
static int read_layout(const h5ctx *c, const nt_read_options *opts, nt_recording *rec)
{
    hid_t traces = H5I_INVALID_HID, type = H5I_INVALID_HID;
    hsize_t dims[2];
    double rate_hz = NAN;
    int has_rate = 0, has_time = 0;

    int status = open_dataset(c, "/traces", &traces);
    if (status != NT_OK)
        goto cleanup;
    if (traces < 0) {
        status = nt_error_set(c->err, NT_ERR_FORMAT, "no /traces dataset");
        goto cleanup;
    }
    status = read_extent(traces, "/traces", "a 2-D dataset [rois][frames]", 2, 0, dims, c->err);
    if (status != NT_OK)
        goto cleanup;
    type = H5Dget_type(traces);
    if (type < 0) {
        status = h5_fail(c->err, NT_ERR_CORRUPT, "/traces", "cannot read the datatype");
        goto cleanup;
    }
    type_name(type, rec->sample_type, sizeof rec->sample_type);
    if (!is_sample_type(type)) {
        char name[64];
        describe_type(type, name, sizeof name);
        status = nt_error_set(c->err, NT_ERR_FORMAT, "/traces: unsupported sample type (%s)",
                              name);
        goto cleanup;
    }
    if (dims[1] != 0 && dims[0] > (hsize_t)(SIZE_MAX / sizeof(float)) / dims[1]) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "/traces: declares %llu x %llu samples, more than this computer "
                              "can address",
                              (unsigned long long)dims[0], (unsigned long long)dims[1]);
        goto cleanup;
    }
    rec->n_rois = (size_t)dims[0];
    rec->n_frames = (size_t)dims[1];
    size_t n_samples = rec->n_rois * rec->n_frames;
    if (!opts->header_only && n_samples > c->max_bytes / sizeof(float)) {
        char need[32], limit[32];
        format_bytes((double)n_samples * sizeof(float), need, sizeof need);
        format_bytes((double)c->max_bytes, limit, sizeof limit);
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "/traces: declares %zu x %zu samples (%s as float32), more than "
                              "the %s limit",
                              rec->n_rois, rec->n_frames, need, limit);
        goto cleanup;
    }
    status = describe_storage(c, traces, "/traces", rec->storage, sizeof rec->storage,
                              !opts->header_only);
    if (status == NT_OK)
        status = check_storage(c, traces, "/traces", n_samples, H5Tget_size(type));
    if (status == NT_OK)
        status = read_rate(c, traces, &has_rate, &rate_hz);
    if (status == NT_OK)
        status = read_time(c, rec, &has_time);
    if (status == NT_OK && !has_time && has_rate)
        status = set_regular_time(c, rec, rate_hz);
    if (status == NT_OK)
        status = read_stims(c, rec);
    if (status == NT_OK)
        status = read_string_list(c, "/rois/names", rec->n_rois, "name", "ROI", &rec->roi_names);
    if (status != NT_OK || opts->header_only || n_samples == 0)
        goto cleanup;

    rec->traces = malloc(n_samples * sizeof *rec->traces);
    if (rec->traces == NULL) {
        char need[32];
        format_bytes((double)n_samples * sizeof(float), need, sizeof need);
        status = nt_error_set(c->err, NT_ERR_NOMEM, "/traces: cannot allocate %s", need);
        goto cleanup;
    }
    if (H5Dread(traces, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, rec->traces) < 0)
        status = h5_fail(c->err, NT_ERR_CORRUPT, "/traces", "cannot read data");
cleanup:
    if (type >= 0)
        H5Tclose(type);
    if (traces >= 0)
        H5Dclose(traces);
    return status;
}

int nt_read_hdf5(const char *path, const nt_read_options *opts, nt_recording **out, nt_error *err)
{
    nt_read_options defaults;
    H5E_auto2_t saved_func = NULL;
    void *saved_data = NULL;
    hid_t fapl = H5I_INVALID_HID;
    h5ctx c = {H5I_INVALID_HID, 0, 0, err};
    nt_recording *rec = NULL;
    struct stat st;
    int status = NT_OK;

    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_read_hdf5: path and out must not be NULL");
    *out = NULL;
    if (opts == NULL) {
        nt_read_options_default(&defaults);
        opts = &defaults;
    }
    if (stat(path, &st) != 0)
        return nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
    if (S_ISDIR(st.st_mode))
        return nt_error_set(err, NT_ERR_IO, "is a directory");
    if (!S_ISREG(st.st_mode))
        return nt_error_set(err, NT_ERR_IO, "is not a regular file");
    c.file_size = (hsize_t)st.st_size;
    c.max_bytes = opts->max_bytes;

    H5Eget_auto2(H5E_DEFAULT, &saved_func, &saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    /* Locking is best effort: a file on a file system without locks (some
     * NFS mounts) is still read rather than refused. */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) {
        status = h5_fail(err, NT_ERR_INTERNAL, "HDF5", "cannot create a property list");
        goto cleanup;
    }
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 1, 1);
#endif
    c.file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (c.file < 0) {
        char detail[256];
        take_h5_detail(detail, sizeof detail);
        htri_t is_hdf5 = H5Fis_hdf5(path);
        H5Eclear2(H5E_DEFAULT);
        if (is_hdf5 == 0)
            status = nt_error_set(err, NT_ERR_FORMAT, "not an HDF5 file");
        else
            status = nt_error_set(err, NT_ERR_CORRUPT,
                                  "cannot open as HDF5 (truncated or damaged file): %s", detail);
        goto cleanup;
    }
    rec = nt_recording_new(0, 0);
    if (rec == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a recording");
        goto cleanup;
    }
    status = read_layout(&c, opts, rec);
cleanup:
    if (c.file >= 0 && H5Fclose(c.file) < 0 && status == NT_OK)
        status = h5_fail(err, NT_ERR_CORRUPT, "HDF5", "cannot close the file");
    if (fapl >= 0)
        H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, saved_func, saved_data);
    if (status == NT_OK) {
        *out = rec;
    } else {
        nt_recording_free(rec);
    }
    return status;
}
