/*
 * h5util.h — private: what the HDF5 readers share (reader_hdf5.c for the
 * native layout and any dataset, reader_nwb.c for NWB 2.x). Implemented in
 * h5util.c, except the NWB entry points at the end (reader_nwb.c).
 *
 * Every function here treats the file as untrusted: sizes the file declares
 * are checked before anything is allocated, HDF5 failures become NT_ERR_*
 * statuses with the innermost HDF5 description as detail, and messages name
 * the object ("/acq/frames: expected a 1-D or 2-D dataset, found 3-D").
 * Only the HDF5 readers (and their tests) include this header: it includes
 * hdf5.h.
 */
#ifndef NT_H5UTIL_H
#define NT_H5UTIL_H

#include "internal.h"

#include <hdf5.h>

/* A recording has at most this many stimuli, labels or ROI names: enough for
 * any experiment, small enough to allocate whatever the file claims. */
#define NT_H5_MAX_LIST_ENTRIES 1000000u
/* Longest label or name, in bytes. */
#define NT_H5_MAX_STRING_BYTES 4096u
/* Longest object path the readers build or accept, in bytes with the NUL. */
#define NT_H5_MAX_PATH 1024u

/* One open file and what every step of one read needs. */
typedef struct nt_h5ctx {
    hid_t file;
    hsize_t file_size; /* bytes on disk, from stat */
    size_t max_bytes;  /* opts->max_bytes */
    nt_error *err;
    H5E_auto2_t saved_func; /* HDF5's error printing, restored by nt_h5_close */
    void *saved_data;
} nt_h5ctx;

/*
 * Opens path read-only into c (c->file), after switching HDF5's automatic
 * error printing off. Whatever it returns, end with nt_h5_close(c, status),
 * which closes the file (if open) and restores the printing. Errors: NT_ERR_IO
 * (missing, directory, not a regular file), NT_ERR_FORMAT (not HDF5),
 * NT_ERR_CORRUPT (truncated or damaged).
 */
int nt_h5_open(nt_h5ctx *c, const char *path, size_t max_bytes, nt_error *err);

/* Closes what nt_h5_open opened and restores HDF5's error printing. Returns
 * status, or NT_ERR_CORRUPT when status is NT_OK and closing fails. */
int nt_h5_close(nt_h5ctx *c, int status);

/* Sets err to "where: what (HDF5: detail)", the detail being the innermost
 * description on HDF5's error stack (which is cleared); returns status. */
int nt_h5_fail(nt_error *err, int status, const char *where, const char *what);

/* Writes a short name of the HDF5 type into buf: "uint16", "float32",
 * "string", "compound", ... */
void nt_h5_type_name(hid_t type, char *buf, size_t len);

/* 1 for the standard integer (8-64 bit) and IEEE float types, either byte
 * order; 0 for every other type (see h5util.c for why). */
int nt_h5_is_standard_number(hid_t type);

/* 1 for the types samples may have: the standard numbers, except 64-bit
 * integers. */
int nt_h5_is_sample_type(hid_t type);

/* The datatype of dset, whose name goes to rec->sample_type, into *type
 * (close with H5Tclose): NT_OK when samples may have it, else the error
 * "WHERE: unsupported WHAT type (...)" with *type invalid. */
int nt_h5_sample_type(const nt_h5ctx *c, hid_t dset, const char *where, const char *what,
                      nt_recording *rec, hid_t *type);

/* Writes what the type is for an error message: its name, and why a number
 * type that looks supported is not. */
void nt_h5_describe_type(hid_t type, char *buf, size_t len);

/*
 * Opens the object at path into *obj (close with H5Oclose), or leaves *obj
 * H5I_INVALID_HID when nothing is there. Every parent on the path must be a
 * group (NT_ERR_FORMAT "/stim: expected a group, found a dataset").
 */
int nt_h5_open_path(const nt_h5ctx *c, const char *path, hid_t *obj);

/* Like nt_h5_open_path for a dataset: another kind of object is a format
 * error "path: expected a dataset, found a group". */
int nt_h5_open_dataset(const nt_h5ctx *c, const char *path, hid_t *dset);

/*
 * Reads the extent of dset into dims [max_rank] and its rank into *rank
 * (may be NULL). The rank must lie in [min_rank, max_rank]; with
 * allow_scalar, a scalar passes as one element (rank 1, dims[0] = 1).
 * Anything else is a format error "where: expected <expected>, found 3-D".
 */
int nt_h5_extent(hid_t dset, const char *where, const char *expected, int min_rank, int max_rank,
                 int allow_scalar, hsize_t *dims, int *rank, nt_error *err);

/*
 * Refuses a dataset whose stored bytes cannot be in the file: n_elem
 * elements of elem_size bytes stored contiguously past the end of the file,
 * or chunks adding up to more than the file (NT_ERR_CORRUPT).
 */
int nt_h5_check_storage(const nt_h5ctx *c, hid_t dset, const char *where, hsize_t n_elem,
                        size_t elem_size);

/*
 * Describes how dset is stored into buf: the layout, then the filters in
 * pipeline order ("chunked, shuffle, deflate"). With need_decoders, a
 * mandatory filter this HDF5 cannot run is a format error.
 */
int nt_h5_describe_storage(const nt_h5ctx *c, hid_t dset, const char *where, char *buf,
                           size_t len, int need_decoders);

/* Reads the n numbers of dset (any standard number type) as doubles into a
 * new array *out (NULL when n is 0; caller frees), after checking n against
 * the memory limit and the file. */
int nt_h5_read_numbers(const nt_h5ctx *c, hid_t dset, const char *where, hsize_t n,
                       double **out);

/* Reads a 1-D (or scalar) dataset of strings, variable- or fixed-length,
 * into a new array *out of *n_out strings (NULL when empty; free with
 * nt_strings_free). */
int nt_h5_read_strings(const nt_h5ctx *c, hid_t dset, const char *where, size_t *n_out,
                       char ***out);

/* Reads the optional string dataset at path, which must hold one string per
 * item (n_items of what, e.g. "onsets"; noun names one string, e.g. "label");
 * leaves *out NULL when absent. */
int nt_h5_read_string_list(const nt_h5ctx *c, const char *path, size_t n_items,
                           const char *noun, const char *what, char ***out);

/* Reads the attribute name of obj as one number (scalar or one element, any
 * standard number type) into *value; *found is 0 when there is no such
 * attribute. where names obj in messages. */
int nt_h5_attr_number(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                      int *found, double *value);

/* Reads the string attribute name of obj (scalar or 1-D, variable- or
 * fixed-length) into a new array *out of *n_out strings (free with
 * nt_strings_free); *out is NULL and *n_out 0 when there is no such
 * attribute. At most 4096 strings of NT_H5_MAX_STRING_BYTES each. */
int nt_h5_attr_strings(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                       size_t *n_out, char ***out);

/* Like nt_h5_attr_strings for one string: *out is a new string (free) or
 * NULL when there is no such attribute. More than one string is a format
 * error. */
int nt_h5_attr_string(const nt_h5ctx *c, hid_t obj, const char *where, const char *name,
                      char **out);

/*
 * Reads the sampling rate of obj from the first of the attributes names
 * [n_names] that exists: one positive finite number of Hz (NT_ERR_INVALID
 * otherwise, naming the attribute). *found is 0 when none exists.
 */
int nt_h5_read_rate(const nt_h5ctx *c, hid_t obj, const char *where, const char *const *names,
                    size_t n_names, int *found, double *rate_hz);

/* Gives rec (n_frames set) the regular time base time_s[i] = i / rate_hz,
 * rate_hz and time_source NT_SOURCE_FILE_RATE. where names the traces in
 * messages. */
int nt_h5_set_regular_time(const nt_h5ctx *c, const char *where, nt_recording *rec,
                           double rate_hz);

/* Gives rec the time base t [n_frames] (taken over: freed on failure too),
 * minus t0, with the mean rate (n - 1) / span (NaN when not positive
 * finite) and time_source NT_SOURCE_FILE_TIME. */
void nt_h5_set_time(nt_recording *rec, double *t, double t0);

/* A 1-D or 2-D dataset of samples to read as the traces of a recording. */
typedef struct nt_h5_matrix {
    hid_t dset;
    const char *where;  /* its path: messages, and reopening with a chunk cache */
    int rank;           /* 1 (one trace) or 2 */
    hsize_t dims[2];    /* as stored; dims[1] unused when rank is 1 */
    int transpose;      /* 2-D stored [frames][rois] rather than [rois][frames] */
} nt_h5_matrix;

/*
 * Checks m as the traces of rec and fills rec->n_rois, n_frames,
 * sample_type and storage: a sample type (integers up to 32 bits, float32,
 * float64), a size this computer can address and (unless header_only) within
 * c->max_bytes as float32, stored bytes that fit in the file, and filters
 * this HDF5 can decode. Reads no samples.
 */
int nt_h5_matrix_prepare(const nt_h5ctx *c, const nt_h5_matrix *m, int header_only,
                         nt_recording *rec);

/*
 * Allocates rec->traces (shape from nt_h5_matrix_prepare) and reads m into
 * it, ROI-major, transposing when m->transpose. Memory: the samples plus a
 * bounded tile (see h5util.c).
 */
int nt_h5_matrix_read(const nt_h5ctx *c, const nt_h5_matrix *m, nt_recording *rec);

/* ---------------------------------------------------------- reader_movie.c */

/* A 3-D dataset [frames][height][width] of pixels (a camera movie), to be
 * cut into square tiles of grid_px pixels, one ROI each (nt_movie_grid in
 * nirtrace.h). */
typedef struct nt_h5_movie {
    hid_t dset;
    const char *where;  /* its path, for messages */
    hsize_t dims[3];    /* frames, height, width */
    size_t grid_px;     /* tile side; 0 for NT_GRID_PX_DEFAULT */
} nt_h5_movie;

/*
 * Checks m as a movie and fills rec->n_rois (the whole tiles), n_frames,
 * movie, roi_names ("r003c012"), sample_type and storage: a sample type
 * (integers up to 32 bits, float32, float64), at least one whole tile, at
 * most NT_H5_MAX_LIST_ENTRIES tiles, stored bytes that fit in the file,
 * filters this HDF5 can decode, and (unless header_only) the traces plus
 * the working memory of nt_h5_movie_read within c->max_bytes. Reads no
 * pixels.
 */
int nt_h5_movie_prepare(const nt_h5ctx *c, const nt_h5_movie *m, int header_only,
                        nt_recording *rec);

/*
 * Allocates rec->traces (shape from nt_h5_movie_prepare) and fills each
 * ROI's trace with the mean of its tile's pixels, frame by frame. The movie
 * is read in slabs of whole chunks (see reader_movie.c): memory is the
 * traces plus one slab and its tile sums, never the movie.
 */
int nt_h5_movie_read(const nt_h5ctx *c, const nt_h5_movie *m, nt_recording *rec);

/* ------------------------------------------------------------ reader_nwb.c */

/* *is_nwb = 1 when the open file is NWB 2.x: its root group has an
 * nwb_version attribute or the neurodata_type "NWBFile". */
int nt_h5_is_nwb(const nt_h5ctx *c, int *is_nwb);

/*
 * In an NWB file, whether path (an opts->dataset) names a TimeSeries group
 * or the `data` dataset of one: then *claimed = 1 and series [len] receives
 * the TimeSeries' path, to be read as an NWB series (its time base, stimuli
 * and conversion) rather than as a bare dataset.
 */
int nt_h5_nwb_claims(const nt_h5ctx *c, const char *path, char *series, size_t len,
                     int *claimed);

/* Reads the NWB series chosen by opts->series (see nirtrace.h) from the open
 * NWB file into rec (empty). opts->dataset is ignored. */
int nt_h5_read_nwb(const nt_h5ctx *c, const nt_read_options *opts, nt_recording *rec);

/*
 * Describes what an NWB file at path offers nirtrace, one line per item, in
 * a new NUL-terminated string *text (free with free):
 *   series /processing/ophys/Fluorescence/RoiResponseSeries: 12 ROIs x 600 frames, rate 8.333 Hz [default]
 *   series /acquisition/raw (TimeSeries): 1 ROI x 600 frames, timestamps, mean rate 8.331 Hz
 *   trials /intervals/trials: 3 rows, columns start_time, stop_time, stim_ma [stimuli]
 *   intervals /intervals/epochs: 2 rows, columns start_time, stop_time, tags
 *   events /stimulus/presentation/puffs (AnnotationSeries): 4 timestamps
 * Series are the TimeSeries under /processing/ophys and /acquisition (what
 * opts->series can name); [default] marks the one read without
 * opts->series, [stimuli] the source of the stimuli by default. An item in a
 * form nirtrace cannot read is listed with the reason
 *   series /acquisition/broken: /acquisition/broken/data: expected a dataset, found a group
 * rather than failing the description. A file with none gives an empty
 * string. On failure *text is NULL: NT_ERR_FORMAT when
 * the file is not NWB, and the errors of nt_h5_open.
 */
int nt_nwb_describe(const char *path, char **text, nt_error *err);

#endif /* NT_H5UTIL_H */
