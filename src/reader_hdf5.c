/*
 * reader_hdf5.c — reads an HDF5 file into an nt_recording: the nirtrace
 * layout, any 1-D or 2-D dataset or 3-D movie (opts->dataset), and NWB 2.x
 * files (handed to reader_nwb.c).
 *
 * The nirtrace layout:
 *   /traces        [n_rois][n_frames] integers (8-32 bit) or floats; optional
 *                  attribute rate_hz (one number, Hz)
 *   /movie         instead of /traces: a camera movie [n_frames][height]
 *                  [width] of the same types, with the same rate_hz; read
 *                  as grid ROIs of opts->grid_px (reader_movie.c)
 *   /time          [n_frames] seconds from the first frame (wins over rate_hz)
 *   /stim/onsets   [n_stims] seconds from the first frame (or one scalar)
 *   /stim/labels   [n_stims] strings, variable- or fixed-length
 *   /rois/names    [n_rois] strings
 *
 * Only /traces (or /movie) is required; /traces wins when both exist.
 * opts->layout FRAMES_BY_ROIS reads /traces as [n_frames][n_rois] instead;
 * a movie takes no layout. /time, /stim and rate_hz mean the same for a
 * movie; /rois/names does not apply (ROIs are named by their tile).
 *
 * Any dataset (opts->dataset, "FILE.h5:/acq/frames" on the command line)
 * replaces /traces: 1-D is one trace, 3-D a movie, 2-D is [rois][frames] or, with
 * FRAMES_BY_ROIS, [frames][rois] (in an NWB file the default is
 * [frames][rois], NWB's own order). Its rate is the attribute rate_hz, rate
 * or sampling_rate of that dataset. /time, /stim/onsets and /stim/labels
 * still apply when the file has them (they describe the file's clock and
 * stimuli); /rois/names only names the ROIs of /traces.
 * opts->time_dataset replaces /time and opts->stim_dataset /stim/onsets
 * (without labels: /stim/labels belongs to /stim/onsets).
 *
 * The dispatch, when opts->dataset is not set: /traces if the file has it,
 * else /movie, else the NWB reader if the file is NWB, else "no /traces or
 * /movie dataset". When
 * it is set and the file is NWB, a TimeSeries group or its `data` dataset
 * is read as an NWB series (with its time base and stimuli).
 *
 * The reader does not judge the values (monotonic time, onsets inside the
 * recording): nt_recording_check does, after the caller has applied its
 * overrides. The untrusted-file discipline (sizes checked before any
 * allocation, HDF5 errors made ours, no printing) is in h5util.c.
 */
#include "h5util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const rate_attributes[] = {"rate_hz", "rate", "sampling_rate"};

/*
 * Reads the per-frame times at path (NULL: /time, optional) as the time base
 * of rec: one value per frame, in seconds. The nominal rate is the mean one
 * over the span, (n - 1) / (t_last - t_first), NaN when that is not a
 * positive finite number. *found is 0 when /time is absent; a named
 * dataset must exist.
 */
static int read_time(const nt_h5ctx *c, const char *path, const char *traces, nt_recording *rec,
                     int *found)
{
    hid_t dset;
    hsize_t n;
    double *t = NULL;
    const char *where = path != NULL ? path : "/time";
    *found = 0;
    int status = nt_h5_open_dataset(c, where, &dset);
    if (status != NT_OK)
        return status;
    if (dset < 0)
        return path != NULL ? nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", path)
                            : NT_OK;
    status = nt_h5_extent(dset, where, "a 1-D dataset [frames]", 1, 1, 0, &n, NULL, c->err);
    if (status == NT_OK && n != rec->n_frames)
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: has %llu value%s, %s has %zu frame%s",
                              where, (unsigned long long)n, n == 1 ? "" : "s", traces,
                              rec->n_frames, rec->n_frames == 1 ? "" : "s");
    if (status == NT_OK)
        status = nt_h5_read_numbers(c, dset, where, n, &t);
    H5Dclose(dset);
    if (status != NT_OK)
        return status;
    *found = 1;
    nt_h5_set_time(rec, t, 0);
    return NT_OK;
}

/* Reads the stimulus onsets at path (NULL: /stim/onsets and its optional
 * /stim/labels), 1-D or one scalar; a named dataset must exist. */
static int read_stims(const nt_h5ctx *c, const char *path, nt_recording *rec)
{
    hid_t dset;
    hsize_t n = 0;
    double *onsets = NULL;
    const char *where = path != NULL ? path : "/stim/onsets";
    int status = nt_h5_open_dataset(c, where, &dset);
    if (status != NT_OK)
        return status;
    if (dset < 0 && path != NULL)
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", path);
    if (dset >= 0) {
        status = nt_h5_extent(dset, where, "a 1-D dataset of seconds", 1, 1, 1, &n, NULL,
                              c->err);
        if (status == NT_OK && n > NT_H5_MAX_LIST_ENTRIES)
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                  "%s: declares %llu onsets, more than the limit of %u", where,
                                  (unsigned long long)n, NT_H5_MAX_LIST_ENTRIES);
        if (status == NT_OK)
            status = nt_h5_read_numbers(c, dset, where, n, &onsets);
        H5Dclose(dset);
        if (status != NT_OK)
            return status;
        rec->stim_s = onsets;
        rec->n_stims = (size_t)n;
        rec->stim_source = n > 0 ? NT_SOURCE_FILE_STIM : NT_SOURCE_NONE;
    }
    if (path != NULL)
        return NT_OK;
    return nt_h5_read_string_list(c, "/stim/labels", rec->n_stims, "label", "onset",
                                  &rec->stim_labels);
}

/* Checks the time base, stimuli and (for /traces) ROI names next to the
 * samples at where, into rec (shape known). */
static int read_companions(const nt_h5ctx *c, const nt_read_options *opts, hid_t dset,
                           const char *where, nt_recording *rec)
{
    double rate_hz = NAN;
    int has_rate = 0, has_time = 0;
    int status = nt_h5_read_rate(c, dset, where, rate_attributes,
                                 sizeof rate_attributes / sizeof *rate_attributes, &has_rate,
                                 &rate_hz);
    if (status == NT_OK)
        status = read_time(c, opts->time_dataset, where, rec, &has_time);
    if (status == NT_OK && !has_time && has_rate)
        status = nt_h5_set_regular_time(c, where, rec, rate_hz);
    if (status == NT_OK)
        status = read_stims(c, opts->stim_dataset, rec);
    if (status == NT_OK && strcmp(where, "/traces") == 0)
        status = nt_h5_read_string_list(c, "/rois/names", rec->n_rois, "name", "ROI",
                                        &rec->roi_names);
    return status;
}

/*
 * Reads the traces dataset (native: "/traces" or "/movie" when
 * opts->dataset is not set) and its companions into rec (shape zero, no
 * traces). The traces dataset is examined first so that its shape is known
 * before anything else is read; its samples are read last, after every
 * cheaper check has passed. A 3-D dataset is a movie, cut into grid ROIs
 * (reader_movie.c). in_nwb: the file is NWB (AUTO means [frames][rois] for
 * a named 2-D dataset).
 */
static int read_layout(const nt_h5ctx *c, const nt_read_options *opts, int in_nwb,
                       const char *native, nt_recording *rec)
{
    nt_h5_matrix m = {H5I_INVALID_HID, opts->dataset != NULL ? opts->dataset : native, 2,
                      {0, 0}, 0};
    hsize_t dims[3] = {0, 0, 0};
    int rank = 0;

    int status = nt_h5_open_dataset(c, m.where, &m.dset);
    if (status != NT_OK)
        goto cleanup;
    if (m.dset < 0) {
        if (opts->dataset == NULL)
            status = nt_error_set(c->err, NT_ERR_FORMAT,
                                  "no /traces or /movie dataset; use FILE.h5:/path for another "
                                  "dataset");
        else
            status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", m.where);
        goto cleanup;
    }
    if (opts->dataset != NULL)
        status = nt_h5_extent(m.dset, m.where,
                              "a 1-D or 2-D dataset, or a 3-D movie [frames][height][width]", 1,
                              3, 0, dims, &rank, c->err);
    else if (strcmp(native, "/movie") == 0)
        status = nt_h5_extent(m.dset, m.where, "a 3-D dataset [frames][height][width]", 3, 3, 0,
                              dims, &rank, c->err);
    else
        status = nt_h5_extent(m.dset, m.where, "a 2-D dataset [rois][frames]", 2, 2, 0, dims,
                              &rank, c->err);
    if (status != NT_OK)
        goto cleanup;

    if (rank == 3) {
        nt_h5_movie mv = {m.dset, m.where, {dims[0], dims[1], dims[2]}, opts->grid_px};
        if (opts->layout != NT_LAYOUT_AUTO) {
            status = nt_error_set(c->err, NT_ERR_INVALID,
                                  "%s: is a 3-D movie, always read as [frames][height][width]; "
                                  "a rois/frames layout applies to 2-D traces only",
                                  m.where);
            goto cleanup;
        }
        status = nt_h5_movie_prepare(c, &mv, opts->header_only, rec);
        if (status == NT_OK)
            status = read_companions(c, opts, m.dset, m.where, rec);
        if (status == NT_OK && !opts->header_only)
            status = nt_h5_movie_read(c, &mv, rec);
        goto cleanup;
    }
    m.rank = rank;
    m.dims[0] = dims[0];
    m.dims[1] = dims[1];
    m.transpose = m.rank == 2 && (opts->layout == NT_LAYOUT_FRAMES_BY_ROIS ||
                                  (opts->layout == NT_LAYOUT_AUTO && in_nwb));
    status = nt_h5_matrix_prepare(c, &m, opts->header_only, rec);
    if (status == NT_OK)
        status = read_companions(c, opts, m.dset, m.where, rec);
    if (status == NT_OK && !opts->header_only)
        status = nt_h5_matrix_read(c, &m, rec);
cleanup:
    if (m.dset >= 0)
        H5Dclose(m.dset);
    return status;
}

/* Chooses what to read in the open file (see the top of this file). */
static int read_file(const nt_h5ctx *c, const nt_read_options *opts, nt_recording *rec)
{
    int is_nwb = 0;
    int status = nt_h5_is_nwb(c, &is_nwb);
    if (status != NT_OK)
        return status;
    if (opts->dataset != NULL) {
        char series[NT_H5_MAX_PATH];
        int claimed = 0;
        if (is_nwb)
            status = nt_h5_nwb_claims(c, opts->dataset, series, sizeof series, &claimed);
        if (status != NT_OK || !claimed)
            return status != NT_OK ? status : read_layout(c, opts, is_nwb, NULL, rec);
        nt_read_options local = *opts;
        local.dataset = NULL;
        local.series = series;
        return nt_h5_read_nwb(c, &local, rec);
    }
    static const char *const native[] = {"/traces", "/movie"};
    for (size_t i = 0; i < sizeof native / sizeof *native; i++) {
        hid_t obj;
        status = nt_h5_open_path(c, native[i], &obj);
        if (status != NT_OK)
            return status;
        if (obj >= 0) {
            H5Oclose(obj);
            return read_layout(c, opts, 0, native[i], rec);
        }
    }
    if (is_nwb)
        return nt_h5_read_nwb(c, opts, rec);
    return read_layout(c, opts, 0, "/traces", rec);
}

int nt_read_hdf5(const char *path, const nt_read_options *opts, nt_recording **out, nt_error *err)
{
    nt_read_options defaults;
    nt_h5ctx c;
    nt_recording *rec = NULL;

    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_read_hdf5: path and out must not be NULL");
    *out = NULL;
    if (opts == NULL) {
        nt_read_options_default(&defaults);
        opts = &defaults;
    }
    int status = nt_h5_open(&c, path, opts->max_bytes, err);
    if (status == NT_OK) {
        rec = nt_recording_new(0, 0);
        if (rec == NULL)
            status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a recording");
    }
    if (status == NT_OK)
        status = read_file(&c, opts, rec);
    status = nt_h5_close(&c, status);
    if (status == NT_OK)
        *out = rec;
    else
        nt_recording_free(rec);
    return status;
}
