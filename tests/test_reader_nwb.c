/*
 * test_reader_nwb.c — the NWB 2.x reader, by round trips. Each test writes
 * an NWB file into a fresh temporary directory and reads it back through
 * nt_recording_read (or nt_read_nwb, nt_nwb_describe). The files are made
 * two ways, for independence: with the HDF5 C API here (attributes and
 * layout written by hand, as the NWB schema describes them), and with h5py
 * by a generator script run under /usr/bin/python3, laid out as pynwb
 * writes them (variable-length UTF-8 attributes, gzip chunks, object
 * references).
 *
 * The h5py tests are skipped when python3 cannot import h5py and numpy, and
 * under `make valgrind` (NIRTRACE_VALGRIND set): valgrind follows every
 * child, and the Python interpreter itself is not valgrind-clean. The C API
 * tests cover the same reader code there.
 */
#include "h5util.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void setup(void)
{
    tmp_dir_create("nwb");
}

TestSuite(reader_nwb, .init = setup, .fini = tmp_dir_remove, .timeout = 120);

/* ---------------------------------------------------- writing (C API) */

#define N_ROIS 3
#define N_FRAMES 40
#define FLUO "/processing/ophys/Fluorescence/RoiResponseSeries"
#define DFF "/processing/ophys/DfOverF/RoiResponseSeries"

/* The known sample of ROI r, frame f: distinct, exact in every type used. */
static double sample_value(double base, size_t r, size_t f)
{
    return base + 10.0 * (double)r + (double)f;
}

/* Writes a string attribute: variable-length UTF-8 (h5py, pynwb) or
 * fixed-length ASCII (MATLAB writers). */
static void write_attr_string(hid_t obj, const char *name, const char *value, int fixed)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    if (fixed) {
        H5Tset_size(type, strlen(value) + 1);
    } else {
        H5Tset_size(type, H5T_VARIABLE);
        H5Tset_cset(type, H5T_CSET_UTF8);
    }
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attr, 0, "cannot create attribute %s", name);
    herr_t w = fixed ? H5Awrite(attr, type, value) : H5Awrite(attr, type, &value);
    cr_assert_geq(w, 0, "cannot write attribute %s", name);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

static void write_attr_number(hid_t obj, const char *name, hid_t type, double value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attr, 0, "cannot create attribute %s", name);
    cr_assert_geq(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value), 0, "write %s", name);
    H5Aclose(attr);
    H5Sclose(space);
}

/* Creates the group at path (and its parents) with a neurodata_type. */
static hid_t nwb_group(hid_t file, const char *path, const char *type)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    htri_t exists = 0;
    H5E_BEGIN_TRY { exists = H5Lexists(file, path, H5P_DEFAULT); } H5E_END_TRY;
    hid_t g = exists > 0 ? H5Gopen2(file, path, H5P_DEFAULT)
                         : H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(g, 0, "cannot create %s", path);
    if (type != NULL) {
        write_attr_string(g, "neurodata_type", type, 0);
        write_attr_string(g, "namespace", "core", 0);
    }
    H5Pclose(lcpl);
    return g;
}

/* Creates the dataset path of type and shape, writing values (doubles,
 * converted by HDF5) when not NULL; chunked and deflated as pynwb's
 * H5DataIO does when compress is set. Returns it open. */
static hid_t make_dataset(hid_t file, const char *path, hid_t type, int rank, const hsize_t *dims,
                          int compress, const double *values)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (compress) {
        hsize_t chunk[H5S_MAX_RANK];
        for (int i = 0; i < rank; i++)
            chunk[i] = dims[i] > 16 ? 16 : (dims[i] > 0 ? dims[i] : 1);
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t dset = H5Dcreate2(file, path, type, space, lcpl, dcpl, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "cannot create %s", path);
    if (values != NULL)
        cr_assert_geq(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0,
                      "cannot write %s", path);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    return dset;
}

static void write_doubles(hid_t file, const char *path, const double *v, size_t n)
{
    hsize_t dims[1] = {n};
    H5Dclose(make_dataset(file, path, H5T_IEEE_F64LE, 1, dims, 0, v));
}

static void write_scalar(hid_t file, const char *path, double v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t dset = H5Dcreate2(file, path, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    cr_assert_geq(dset, 0, "cannot create %s", path);
    H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
    H5Dclose(dset);
    H5Sclose(space);
}

static void write_vlen_strings(hid_t file, const char *path, const char *const *s, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dset = H5Dcreate2(file, path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "cannot create %s", path);
    cr_assert_geq(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0, "write %s", path);
    H5Dclose(dset);
    H5Sclose(space);
    H5Tclose(type);
}

/* The root of an NWB file: nwb_version and neurodata_type NWBFile (either
 * may be left out to test detection). */
static hid_t create_nwb(const char *path, int version, int root_type)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot create %s", path);
    hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
    if (version)
        write_attr_string(root, "nwb_version", "2.6.0", 0);
    if (root_type) {
        write_attr_string(root, "neurodata_type", "NWBFile", !version);
        write_attr_string(root, "namespace", "core", !version);
    }
    H5Gclose(root);
    return file;
}

/* How a series is timed. */
typedef struct timing {
    double starting_time; /* with rate_hz > 0 */
    double rate_hz;
    const double *timestamps; /* or [n_frames] session times */
} timing;

/*
 * Writes a TimeSeries group at path of neurodata_type type: data of dtype,
 * [n_frames][n_rois] with sample_value(base, r, f) (n_rois 0: 1-D, one ROI),
 * chunked and deflated, and its timing.
 */
static void write_series(hid_t file, const char *path, const char *type, hid_t dtype,
                         size_t n_rois, size_t n_frames, double base, const timing *t)
{
    char buf[512];
    size_t cols = n_rois > 0 ? n_rois : 1;
    double *v = malloc((cols * n_frames + 1) * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (size_t f = 0; f < n_frames; f++)
        for (size_t r = 0; r < cols; r++)
            v[f * cols + r] = sample_value(base, r, f);
    hid_t g = nwb_group(file, path, type);
    hsize_t dims[2] = {n_frames, n_rois};
    snprintf(buf, sizeof buf, "%s/data", path);
    hid_t data = make_dataset(file, buf, dtype, n_rois > 0 ? 2 : 1, dims, 1, v);
    write_attr_string(data, "unit", "n.a.", 0);
    H5Dclose(data);
    if (t->timestamps != NULL) {
        snprintf(buf, sizeof buf, "%s/timestamps", path);
        write_doubles(file, buf, t->timestamps, n_frames);
    } else {
        snprintf(buf, sizeof buf, "%s/starting_time", path);
        write_scalar(file, buf, t->starting_time);
        hid_t st = H5Dopen2(file, buf, H5P_DEFAULT);
        write_attr_number(st, "rate", H5T_IEEE_F32LE, t->rate_hz);
        write_attr_string(st, "unit", "seconds", 0);
        H5Dclose(st);
    }
    H5Gclose(g);
    free(v);
}

/* Writes the colnames attribute (variable-length strings) of group g. */
static void write_colnames(hid_t g, const char *const *names, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t attr = H5Acreate2(g, "colnames", type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Awrite(attr, type, names), 0, "colnames");
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

/* A TimeIntervals table at path: start_time, stop_time (+1 s), and when
 * given, the string column "condition" and the number column "stim_ma". */
static void write_table(hid_t file, const char *path, const double *start, size_t n,
                        const char *const *condition, const double *stim_ma)
{
    char buf[512];
    double *stop = malloc((n + 1) * sizeof *stop), *id = malloc((n + 1) * sizeof *id);
    cr_assert(stop != NULL && id != NULL, "malloc");
    for (size_t i = 0; i < n; i++) {
        stop[i] = start[i] + 1;
        id[i] = (double)i;
    }
    hid_t g = nwb_group(file, path, "TimeIntervals");
    write_attr_string(g, "description", "trials", 0);
    const char *names[4] = {"start_time", "stop_time", NULL, NULL};
    size_t n_names = 2;
    snprintf(buf, sizeof buf, "%s/id", path);
    hsize_t dims[1] = {n};
    H5Dclose(make_dataset(file, buf, H5T_STD_I64LE, 1, dims, 0, id));
    snprintf(buf, sizeof buf, "%s/start_time", path);
    write_doubles(file, buf, start, n);
    snprintf(buf, sizeof buf, "%s/stop_time", path);
    write_doubles(file, buf, stop, n);
    if (condition != NULL) {
        snprintf(buf, sizeof buf, "%s/condition", path);
        write_vlen_strings(file, buf, condition, n);
        names[n_names++] = "condition";
    }
    if (stim_ma != NULL) {
        snprintf(buf, sizeof buf, "%s/stim_ma", path);
        write_doubles(file, buf, stim_ma, n);
        names[n_names++] = "stim_ma";
    }
    write_colnames(g, names, n_names);
    H5Gclose(g);
    free(stop);
    free(id);
}

/* The segmentation the rois region of the series at series points into:
 * a PlaneSegmentation with ids, and the region rows (reversed). */
static void write_rois(hid_t file, const char *series, const double *ids, size_t n)
{
    char buf[512];
    const char *seg = "/processing/ophys/ImageSegmentation/PlaneSegmentation";
    H5Gclose(nwb_group(file, "/processing/ophys/ImageSegmentation", "ImageSegmentation"));
    H5Gclose(nwb_group(file, seg, "PlaneSegmentation"));
    snprintf(buf, sizeof buf, "%s/id", seg);
    hsize_t dims[1] = {n};
    H5Dclose(make_dataset(file, buf, H5T_STD_I64LE, 1, dims, 0, ids));
    double *rows = malloc(n * sizeof *rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = (double)(n - 1 - i);
    snprintf(buf, sizeof buf, "%s/rois", series);
    hid_t rois = make_dataset(file, buf, H5T_STD_I32LE, 1, dims, 0, rows);
    write_attr_string(rois, "neurodata_type", "DynamicTableRegion", 0);
    hobj_ref_t ref;
    cr_assert_geq(H5Rcreate(&ref, file, seg, H5R_OBJECT, -1), 0, "reference");
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(rois, "table", H5T_STD_REF_OBJ, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Awrite(attr, H5T_STD_REF_OBJ, &ref), 0, "table attribute");
    H5Aclose(attr);
    H5Sclose(space);
    H5Dclose(rois);
    free(rows);
}

static const double trial_start[] = {3.0, 5.5, 6.25};
static const char *const trial_condition[] = {"ctrl", "drug 10 \xc2\xb5M", "wash"};
static const double trial_ma[] = {0.1, 0.3, 0.5};

/* The common case: a RoiResponseSeries in Fluorescence, float32, starting
 * at 2 s at 8 Hz, ROIs named by a PlaneSegmentation, three trials. */
static void write_fluorescence(const char *path)
{
    static const double ids[] = {10, 11, 12};
    timing t = {2.0, 8.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys", "ProcessingModule"));
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, FLUO, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 1000, &t);
    write_rois(file, FLUO, ids, N_ROIS);
    write_table(file, "/intervals/trials", trial_start, 3, trial_condition, trial_ma);
    H5Fclose(file);
}

/* ------------------------------------------------------------- reading */

static nt_recording *read_nwb_ok(const char *path, const nt_read_options *opts)
{
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    int status = nt_recording_read(path, opts, &rec, &err);
    cr_assert_eq(status, NT_OK, "expected success, got %d: %s", status, err.message);
    cr_assert_not_null(rec, "no recording");
    return rec;
}

static void assert_samples(const nt_recording *rec, size_t n_rois, size_t n_frames, double base,
                           double conversion, double offset)
{
    cr_assert_eq(rec->n_rois, n_rois, "n_rois %zu", rec->n_rois);
    cr_assert_eq(rec->n_frames, n_frames, "n_frames %zu", rec->n_frames);
    cr_assert_not_null(rec->traces, "traces");
    for (size_t r = 0; r < n_rois; r++)
        for (size_t f = 0; f < n_frames; f++) {
            float want = (float)(sample_value(base, r, f) * conversion + offset);
            cr_assert_eq(rec->traces[r * n_frames + f], want, "ROI %zu frame %zu: %g, not %g", r,
                         f, rec->traces[r * n_frames + f], want);
        }
}

/* ------------------------------------------------------- C API tests */

Test(reader_nwb, fluorescence_series_with_rate_and_trials)
{
    const char *path = tmp_path("fluo.nwb");
    write_fluorescence(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.trial_label = "condition";
    nt_recording *rec = read_nwb_ok(path, &opts);

    assert_samples(rec, N_ROIS, N_FRAMES, 1000, 1, 0);
    cr_assert_str_eq(rec->sample_type, "float32", "sample_type");
    cr_assert_str_eq(rec->storage, "NWB .../ophys/Fluorescence/RoiResponseSeries, chunked, deflate",
                     "storage: %s", rec->storage);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "time_source");
    cr_assert_eq(rec->rate_hz, 8.0, "rate_hz");
    for (size_t i = 0; i < N_FRAMES; i++)
        cr_assert_eq(rec->time_s[i], (double)i / 8.0, "time of frame %zu", i);
    /* trials at 3, 5.5, 6.25 s of session time; the first frame at 2 s */
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    cr_assert_eq(rec->stim_source, NT_SOURCE_FILE_STIM, "stim_source");
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(rec->stim_s[k], trial_start[k] - 2.0, "onset %zu: %g", k, rec->stim_s[k]);
        cr_assert_str_eq(rec->stim_labels[k], trial_condition[k], "label %zu", k);
    }
    /* rows reversed: ROI 0 is row 2 of the segmentation, id 12 */
    cr_assert_not_null(rec->roi_names, "roi_names");
    cr_assert_str_eq(rec->roi_names[0], "roi12", "name 0");
    cr_assert_str_eq(rec->roi_names[2], "roi10", "name 2");
    nt_error err = {0, ""};
    cr_assert_eq(nt_recording_check(rec, &err), NT_OK, "%s", err.message);
    nt_recording_free(rec);

    /* without a label column the trials are unlabelled */
    rec = read_nwb_ok(path, NULL);
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    cr_assert_null(rec->stim_labels, "labels");
    nt_recording_free(rec);
}

Test(reader_nwb, nt_read_nwb_direct_and_non_nwb)
{
    const char *path = tmp_path("direct.nwb");
    write_fluorescence(path);
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_nwb(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    assert_samples(rec, N_ROIS, N_FRAMES, 1000, 1, 0);
    nt_recording_free(rec);

    const char *plain = tmp_path("plain.h5");
    hid_t file = H5Fcreate(plain, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_doubles(file, "/traces", trial_start, 3);
    H5Fclose(file);
    rec = (nt_recording *)&rec;
    cr_assert_eq(nt_read_nwb(plain, NULL, &rec, &err), NT_ERR_FORMAT, "status");
    cr_assert_str_eq(err.message,
                     "not an NWB file (the root group has no nwb_version attribute and no "
                     "neurodata_type NWBFile)",
                     "message");
    cr_assert_null(rec, "*out");
}

Test(reader_nwb, detected_by_root_neurodata_type_alone)
{
    /* no nwb_version; a fixed-length "NWBFile", as MATLAB writers store it */
    const char *path = tmp_path("typed.nwb");
    timing t = {0.0, 10.0, NULL};
    hid_t file = create_nwb(path, 0, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, FLUO, "RoiResponseSeries", H5T_STD_U16LE, 2, N_FRAMES, 100, &t);
    H5Fclose(file);
    nt_recording *rec = read_nwb_ok(path, NULL);
    assert_samples(rec, 2, N_FRAMES, 100, 1, 0);
    cr_assert_str_eq(rec->sample_type, "uint16", "sample_type");
    cr_assert_eq(rec->n_stims, 0, "no stimuli in the file");
    cr_assert_null(rec->roi_names, "no rois region");
    nt_recording_free(rec);

    /* neither marker: an HDF5 file without /traces */
    file = create_nwb(path, 0, 0);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, FLUO, "RoiResponseSeries", H5T_STD_U16LE, 2, N_FRAMES, 100, &t);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "no /traces or /movie dataset; use FILE.h5:/path for another dataset",
                     "message");
}

Test(reader_nwb, dff_timestamps_shift_time_and_trials)
{
    const char *path = tmp_path("dff.nwb");
    double ts[N_FRAMES];
    ts[0] = 100.5;
    for (size_t i = 1; i < N_FRAMES; i++)
        ts[i] = ts[i - 1] + (i % 2 ? 0.12 : 0.125);
    const double start[] = {101.0, 102.75};
    timing t = {0, 0, ts};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/DfOverF", "DfOverF"));
    write_series(file, DFF, "RoiResponseSeries", H5T_IEEE_F64LE, N_ROIS, N_FRAMES, 0.25, &t);
    write_table(file, "/intervals/trials", start, 2, NULL, NULL);
    H5Fclose(file);

    nt_recording *rec = read_nwb_ok(path, NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, 0.25, 1, 0);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time_source");
    for (size_t i = 0; i < N_FRAMES; i++)
        cr_assert_eq(rec->time_s[i], ts[i] - ts[0], "time of frame %zu", i);
    cr_assert_float_eq(rec->rate_hz, (N_FRAMES - 1) / (ts[N_FRAMES - 1] - ts[0]), 1e-12,
                       "rate_hz");
    cr_assert_eq(rec->n_stims, 2, "n_stims");
    cr_assert_eq(rec->stim_s[0], 0.5, "onset 0");
    cr_assert_eq(rec->stim_s[1], 2.25, "onset 1");
    assert_contains(rec->storage, "DfOverF/RoiResponseSeries");
    nt_recording_free(rec);
}

Test(reader_nwb, raw_fluorescence_is_preferred_to_dff)
{
    /* DfOverF comes first in name order; nirtrace computes ΔF/F itself */
    const char *path = tmp_path("both.nwb");
    timing t = {0.0, 10.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/DfOverF", "DfOverF"));
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, DFF, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 0, &t);
    write_series(file, FLUO, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 500, &t);
    H5Fclose(file);
    nt_recording *rec = read_nwb_ok(path, NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, 500, 1, 0);
    nt_recording_free(rec);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.series = DFF;
    rec = read_nwb_ok(path, &opts);
    assert_samples(rec, N_ROIS, N_FRAMES, 0, 1, 0);
    nt_recording_free(rec);
}

Test(reader_nwb, conversion_and_offset_are_applied)
{
    const char *path = tmp_path("conv.nwb");
    timing t = {0.0, 10.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, FLUO, "RoiResponseSeries", H5T_STD_I16LE, N_ROIS, N_FRAMES, -20, &t);
    hid_t data = H5Dopen2(file, FLUO "/data", H5P_DEFAULT);
    write_attr_number(data, "conversion", H5T_IEEE_F32LE, 0.25);
    write_attr_number(data, "offset", H5T_IEEE_F64LE, 3.0);
    H5Dclose(data);
    H5Fclose(file);
    nt_recording *rec = read_nwb_ok(path, NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, -20, 0.25, 3.0);
    cr_assert_str_eq(rec->sample_type, "int16", "sample_type");
    nt_recording_free(rec);

    file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    data = H5Dopen2(file, FLUO "/data", H5P_DEFAULT);
    H5Adelete(data, "conversion");
    write_attr_number(data, "conversion", H5T_IEEE_F64LE, NAN);
    H5Dclose(data);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_INVALID, &err);
    assert_contains(err.message, FLUO "/data: conversion nan and offset 3 must be finite");
}

/* Two series in Fluorescence, one in /acquisition (1-D), events in
 * /stimulus/presentation and no trials table. */
static void write_multi(const char *path)
{
    static const double puff_ts[] = {1.0, 2.0};
    static const char *const puff_text[] = {"puff A", "puff B"};
    timing t = {0.5, 20.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, "/processing/ophys/Fluorescence/RRS_a", "RoiResponseSeries",
                 H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 100, &t);
    write_series(file, "/processing/ophys/Fluorescence/RRS_b", "RoiResponseSeries",
                 H5T_IEEE_F32LE, 2, N_FRAMES, 200, &t);
    H5Gclose(nwb_group(file, "/acquisition", NULL));
    write_series(file, "/acquisition/raw", "TimeSeries", H5T_IEEE_F32LE, 0, N_FRAMES, 300, &t);
    hid_t g = nwb_group(file, "/stimulus/presentation/puffs", "AnnotationSeries");
    H5Gclose(g);
    write_doubles(file, "/stimulus/presentation/puffs/timestamps", puff_ts, 2);
    write_vlen_strings(file, "/stimulus/presentation/puffs/data", puff_text, 2);
    H5Fclose(file);
}

Test(reader_nwb, series_by_name_and_by_path)
{
    const char *path = tmp_path("multi.nwb");
    write_multi(path);
    nt_recording *rec = read_nwb_ok(path, NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, 100, 1, 0); /* RRS_a: first in name order */
    nt_recording_free(rec);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.series = "RRS_b";
    rec = read_nwb_ok(path, &opts);
    assert_samples(rec, 2, N_FRAMES, 200, 1, 0);
    nt_recording_free(rec);

    opts.series = "/processing/ophys/Fluorescence/RRS_b";
    rec = read_nwb_ok(path, &opts);
    assert_samples(rec, 2, N_FRAMES, 200, 1, 0);
    nt_recording_free(rec);

    opts.series = "raw"; /* a 1-D TimeSeries under /acquisition: one ROI */
    rec = read_nwb_ok(path, &opts);
    assert_samples(rec, 1, N_FRAMES, 300, 1, 0);
    cr_assert_str_eq(rec->storage, "NWB TimeSeries /acquisition/raw, chunked, deflate",
                     "storage: %s", rec->storage);
    nt_recording_free(rec);

    nt_error err;
    opts.series = "RRS_c";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "no TimeSeries named \"RRS_c\" under /processing/ophys or /acquisition",
                     "message");
    opts.series = "/processing/ophys/Fluorescence/none";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/processing/ophys/Fluorescence/none: no such TimeSeries",
                     "message");
    opts.series = "/processing/ophys/Fluorescence";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/processing/ophys/Fluorescence: not a TimeSeries (no data dataset)",
                     "message");
    opts.series = "/processing/ophys/Fluorescence/RRS_a/data";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/processing/ophys/Fluorescence/RRS_a/data: expected a TimeSeries group, "
                     "found a dataset",
                     "message");
}

Test(reader_nwb, stimuli_from_stimulus_presentation_timestamps)
{
    const char *path = tmp_path("pres.nwb");
    write_multi(path);
    nt_recording *rec = read_nwb_ok(path, NULL);
    cr_assert_eq(rec->n_stims, 2, "n_stims");
    cr_assert_eq(rec->stim_s[0], 0.5, "onset 0 (1.0 s, first frame at 0.5 s)");
    cr_assert_eq(rec->stim_s[1], 1.5, "onset 1");
    cr_assert_not_null(rec->stim_labels, "AnnotationSeries text labels the onsets");
    cr_assert_str_eq(rec->stim_labels[1], "puff B", "label 1");
    nt_recording_free(rec);

    /* a label column needs a table */
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.trial_label = "condition";
    nt_error err;
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "trial label \"condition\": no /intervals/trials table; the stimuli come "
                     "from /stimulus/presentation/puffs",
                     "message");
}

Test(reader_nwb, stimuli_from_another_intervals_table)
{
    const char *path = tmp_path("epochs.nwb");
    static const double start[] = {1.5, 3.0};
    timing t = {1.0, 10.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, FLUO, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 0, &t);
    write_table(file, "/intervals/epochs", start, 2, NULL, trial_ma);
    H5Fclose(file);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.trial_label = "stim_ma";
    nt_recording *rec = read_nwb_ok(path, &opts);
    cr_assert_eq(rec->n_stims, 2, "n_stims");
    cr_assert_eq(rec->stim_s[0], 0.5, "onset 0");
    cr_assert_eq(rec->stim_s[1], 2.0, "onset 1");
    cr_assert_str_eq(rec->stim_labels[1], "0.3", "label 1");
    nt_recording_free(rec);
}

Test(reader_nwb, numeric_trial_label)
{
    const char *path = tmp_path("ma.nwb");
    write_fluorescence(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.trial_label = "stim_ma";
    nt_recording *rec = read_nwb_ok(path, &opts);
    cr_assert_str_eq(rec->stim_labels[0], "0.1", "label 0");
    cr_assert_str_eq(rec->stim_labels[1], "0.3", "label 1");
    cr_assert_str_eq(rec->stim_labels[2], "0.5", "label 2");
    nt_recording_free(rec);
}

Test(reader_nwb, missing_trial_label_column)
{
    const char *path = tmp_path("nolabel.nwb");
    write_fluorescence(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.trial_label = "intensity";
    nt_error err;
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/intervals/trials: no column \"intensity\" for the trial label (columns: "
                     "start_time, stop_time, condition, stim_ma)",
                     "message");

    /* without a trials table (and nothing else), the label has nothing to label */
    timing t = {0.0, 10.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, FLUO, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 0, &t);
    H5Fclose(file);
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/intervals/trials: no such table for the trial label \"intensity\"",
                     "message");
}

Test(reader_nwb, ragged_and_mismatched_label_columns)
{
    const char *path = tmp_path("ragged.nwb");
    static const double two[] = {1, 2};
    write_fluorescence(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    write_doubles(file, "/intervals/trials/tags", two, 2);
    write_doubles(file, "/intervals/trials/tags_index", two, 2);
    write_doubles(file, "/intervals/trials/short", two, 2);
    H5Fclose(file);
    nt_read_options opts;
    nt_read_options_default(&opts);
    nt_error err;
    opts.trial_label = "tags";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/intervals/trials/tags: a ragged column (with tags_index) cannot label "
                     "trials",
                     "message");
    opts.trial_label = "short";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/intervals/trials/short: 2 values for 3 rows", "message");
}

Test(reader_nwb, stim_and_time_dataset_overrides_share_the_clock)
{
    const char *path = tmp_path("override.nwb");
    static const double mine[] = {4.0, 4.5};
    double clock[N_FRAMES];
    for (size_t i = 0; i < N_FRAMES; i++)
        clock[i] = 3.0 + 0.25 * (double)i;
    write_fluorescence(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    write_doubles(file, "/acquisition/stim_onsets", mine, 2);
    write_doubles(file, "/acquisition/frame_clock", clock, N_FRAMES);
    write_doubles(file, "/acquisition/short_clock", clock, N_FRAMES - 1);
    H5Fclose(file);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.stim_dataset = "/acquisition/stim_onsets";
    nt_recording *rec = read_nwb_ok(path, &opts);
    cr_assert_eq(rec->n_stims, 2, "n_stims");
    cr_assert_eq(rec->stim_s[0], 2.0, "onset 0: 4 s, first frame at 2 s");
    cr_assert_null(rec->stim_labels, "labels");
    nt_recording_free(rec);

    opts.time_dataset = "/acquisition/frame_clock";
    rec = read_nwb_ok(path, &opts);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time_source");
    cr_assert_eq(rec->time_s[4], 1.0, "time of frame 4");
    cr_assert_eq(rec->rate_hz, 4.0, "rate_hz");
    cr_assert_eq(rec->stim_s[0], 1.0, "onset 0: 4 s, first frame at 3 s");
    nt_recording_free(rec);

    nt_error err;
    opts.time_dataset = "/acquisition/short_clock";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/acquisition/short_clock: has 39 values, " FLUO "/data has 40 frames",
                     "message");
    opts.time_dataset = NULL;
    opts.trial_label = "condition";
    read_recording_fails(path, &opts, NT_ERR_INVALID, &err);
    assert_contains(err.message, "the stimuli come from /acquisition/stim_onsets, not a table");
}

Test(reader_nwb, no_roi_response_series)
{
    const char *path = tmp_path("none.nwb");
    timing t = {0.0, 10.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, "/processing/ophys/Fluorescence", "Fluorescence"));
    write_series(file, "/acquisition/raw", "TimeSeries", H5T_IEEE_F32LE, 2, N_FRAMES, 0, &t);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "no RoiResponseSeries (neurodata_type) under /processing/ophys or its "
                     "Fluorescence and DfOverF containers; name a TimeSeries with --series",
                     "message");
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.series = "raw";
    nt_recording *rec = read_nwb_ok(path, &opts);
    assert_samples(rec, 2, N_FRAMES, 0, 1, 0);
    nt_recording_free(rec);
}

Test(reader_nwb, data_of_three_dimensions_and_bad_timing)
{
    const char *path = tmp_path("bad.nwb");
    timing t = {0.0, 10.0, NULL};
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, FLUO, "RoiResponseSeries"));
    hsize_t dims[3] = {4, 3, 2};
    H5Dclose(make_dataset(file, FLUO "/data", H5T_IEEE_F32LE, 3, dims, 0, NULL));
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, FLUO "/data: expected a 1-D or 2-D dataset, found 3-D",
                     "message");

    double ts[N_FRAMES - 1] = {0};
    timing short_ts = {0, 0, ts};
    file = create_nwb(path, 1, 1);
    write_series(file, FLUO, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES - 1, 0,
                 &short_ts);
    H5Fclose(file);
    file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, FLUO "/data", H5P_DEFAULT);
    hsize_t d2[2] = {N_FRAMES, N_ROIS};
    H5Dclose(make_dataset(file, FLUO "/data", H5T_IEEE_F32LE, 2, d2, 0, NULL));
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     FLUO "/timestamps: has 39 values, " FLUO "/data has 40 frames", "message");

    file = create_nwb(path, 1, 1);
    write_series(file, FLUO, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 0, &t);
    hid_t st = H5Dopen2(file, FLUO "/starting_time", H5P_DEFAULT);
    H5Adelete(st, "rate");
    write_attr_number(st, "rate", H5T_IEEE_F32LE, 0);
    H5Dclose(st);
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_INVALID, &err);
    cr_assert_str_eq(err.message,
                     FLUO "/starting_time: rate attribute is 0, must be a positive number of Hz",
                     "message");
}

Test(reader_nwb, layout_rois_by_frames_reads_as_stored)
{
    const char *path = tmp_path("asis.nwb");
    write_fluorescence(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_ROIS_BY_FRAMES;
    opts.header_only = 1;
    nt_recording *rec = read_nwb_ok(path, &opts);
    cr_assert_eq(rec->n_rois, N_FRAMES, "n_rois");
    cr_assert_eq(rec->n_frames, N_ROIS, "n_frames");
    nt_recording_free(rec);
}

Test(reader_nwb, dataset_path_to_a_series_or_its_data)
{
    const char *path = tmp_path("claims.nwb");
    char spec[600];
    write_fluorescence(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    double v[2 * N_FRAMES];
    for (size_t i = 0; i < 2 * N_FRAMES; i++)
        v[i] = (double)i;
    hsize_t dims[2] = {N_FRAMES, 2};
    H5Dclose(make_dataset(file, "/acquisition/matrix", H5T_IEEE_F32LE, 2, dims, 0, v));
    H5Fclose(file);

    /* FILE:/.../RoiResponseSeries/data is the series, with its clock */
    snprintf(spec, sizeof spec, "%s:%s/data", path, FLUO);
    nt_recording *rec = read_nwb_ok(spec, NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, 1000, 1, 0);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "time_source");
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    nt_recording_free(rec);

    snprintf(spec, sizeof spec, "%s:%s", path, FLUO);
    rec = read_nwb_ok(spec, NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, 1000, 1, 0);
    nt_recording_free(rec);

    /* another dataset of an NWB file is [frames][rois], NWB's order */
    snprintf(spec, sizeof spec, "%s:/acquisition/matrix", path);
    rec = read_nwb_ok(spec, NULL);
    cr_assert_eq(rec->n_rois, 2, "n_rois");
    cr_assert_eq(rec->n_frames, N_FRAMES, "n_frames");
    cr_assert_eq(rec->traces[1 * N_FRAMES + 5], 11.0f, "ROI 1 frame 5");
    nt_recording_free(rec);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.dataset = "/acquisition/matrix";
    nt_error err;
    rec = (nt_recording *)&rec;
    cr_assert_eq(nt_read_nwb(path, &opts, &rec, &err), NT_ERR_FORMAT, "nt_read_nwb: %s",
                 err.message);
    cr_assert_str_eq(err.message, "/acquisition/matrix: not a TimeSeries or the data of one",
                     "message");
    cr_assert_null(rec, "*out");
}

Test(reader_nwb, header_only)
{
    const char *path = tmp_path("header.nwb");
    write_fluorescence(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.header_only = 1;
    opts.trial_label = "condition";
    nt_recording *rec = read_nwb_ok(path, &opts);
    cr_assert_null(rec->traces, "traces must stay NULL");
    cr_assert_eq(rec->n_rois, N_ROIS, "n_rois");
    cr_assert_eq(rec->n_frames, N_FRAMES, "n_frames");
    cr_assert_str_eq(rec->sample_type, "float32", "sample_type");
    cr_assert_eq(rec->time_s[8], 1.0, "time");
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    cr_assert_str_eq(rec->stim_labels[2], "wash", "label");
    nt_recording_free(rec);
}

Test(reader_nwb, huge_declared_data_is_refused_before_allocation)
{
    const char *path = tmp_path("huge.nwb");
    hid_t file = create_nwb(path, 1, 1);
    H5Gclose(nwb_group(file, FLUO, "RoiResponseSeries"));
    hsize_t dims[2] = {10000000, 1000000}, chunk[2] = {1024, 64};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    H5Dclose(H5Dcreate2(file, FLUO "/data", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl,
                        H5P_DEFAULT));
    H5Pclose(dcpl);
    H5Sclose(space);
    write_scalar(file, FLUO "/starting_time", 0);
    hid_t st = H5Dopen2(file, FLUO "/starting_time", H5P_DEFAULT);
    write_attr_number(st, "rate", H5T_IEEE_F32LE, 10);
    H5Dclose(st);
    H5Fclose(file);

    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message,
                    FLUO "/data: declares 10000000 x 1000000 samples (36 TiB as float32)");

    /* the header alone is fine, except for the time axis it would need */
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.header_only = 1;
    opts.max_bytes = 1 << 20;
    read_recording_fails(path, &opts, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message, "the time axis of 10000000 frames needs more than");
    opts.max_bytes = (size_t)1 << 30;
    nt_recording *rec = read_nwb_ok(path, &opts);
    cr_assert_eq(rec->n_rois, 1000000, "n_rois");
    cr_assert_eq(rec->n_frames, 10000000, "n_frames");
    nt_recording_free(rec);
}

Test(reader_nwb, truncated_files_fail_cleanly)
{
    const char *path = tmp_path("cut.nwb");
    write_fluorescence(path);
    off_t size = file_size(path);
    for (off_t cut = size - 1; cut > 0; cut -= size / 23 + 1) {
        write_fluorescence(path);
        cr_assert_eq(truncate(path, cut), 0, "truncate");
        nt_recording *rec = (nt_recording *)&rec;
        nt_error err = {0, ""};
        int status = nt_recording_read(path, NULL, &rec, &err);
        cr_assert(status == NT_ERR_CORRUPT || status == NT_ERR_FORMAT,
                  "cut at %lld of %lld: status %d (%s)", (long long)cut, (long long)size, status,
                  err.message);
        cr_assert_null(rec, "*out must be NULL");
        char *text = (char *)&text;
        status = nt_nwb_describe(path, &text, &err);
        cr_assert(status == NT_OK || status == NT_ERR_CORRUPT || status == NT_ERR_FORMAT,
                  "describe, cut at %lld: status %d (%s)", (long long)cut, status, err.message);
        cr_assert((status == NT_OK) == (text != NULL), "text is set exactly on success");
        free(text);
    }
}

/* ------------------------------------------------------------ describe */

Test(reader_nwb, describe_lists_series_and_tables)
{
    const char *path = tmp_path("describe.nwb");
    write_fluorescence(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    double ts[N_FRAMES];
    for (size_t i = 0; i < N_FRAMES; i++)
        ts[i] = 5.0 + 0.25 * (double)i;
    timing t = {0, 0, ts};
    H5Gclose(nwb_group(file, "/processing/ophys/DfOverF", "DfOverF"));
    write_series(file, DFF, "RoiResponseSeries", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, 0, &t);
    H5Gclose(nwb_group(file, "/acquisition", NULL));
    write_series(file, "/acquisition/raw", "TimeSeries", H5T_IEEE_F32LE, 0, N_FRAMES, 0, &t);
    static const double epochs[] = {0.0, 10.0};
    write_table(file, "/intervals/epochs", epochs, 2, NULL, NULL);
    H5Fclose(file);

    char *text = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_nwb_describe(path, &text, &err), NT_OK, "%s", err.message);
    cr_assert_str_eq(text,
                     "series " DFF ": 3 ROIs x 40 frames, timestamps, mean rate 4 Hz\n"
                     "series " FLUO ": 3 ROIs x 40 frames, rate 8 Hz [default]\n"
                     "series /acquisition/raw (TimeSeries): 1 ROI x 40 frames, timestamps, "
                     "mean rate 4 Hz\n"
                     "intervals /intervals/epochs: 2 rows, columns start_time, stop_time\n"
                     "trials /intervals/trials: 3 rows, columns start_time, stop_time, "
                     "condition, stim_ma [stimuli]\n",
                     "description:\n%s", text);
    free(text);

    const char *multi = tmp_path("describe_multi.nwb");
    write_multi(multi);
    cr_assert_eq(nt_nwb_describe(multi, &text, &err), NT_OK, "%s", err.message);
    assert_contains(text, "series /processing/ophys/Fluorescence/RRS_a: 3 ROIs x 40 frames, "
                          "rate 20 Hz [default]\n");
    assert_contains(text, "events /stimulus/presentation/puffs (AnnotationSeries): 2 "
                          "timestamps [stimuli]\n");
    free(text);

    const char *plain = tmp_path("plain.h5");
    file = H5Fcreate(plain, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_doubles(file, "/traces", epochs, 2);
    H5Fclose(file);
    text = (char *)&text;
    cr_assert_eq(nt_nwb_describe(plain, &text, &err), NT_ERR_FORMAT, "not NWB");
    cr_assert_null(text, "text");
    cr_assert_eq(nt_nwb_describe(tmp_path("absent.nwb"), &text, &err), NT_ERR_IO, "absent");
}

/* A table written without colnames: its columns are its datasets, less id
 * and the *_index of ragged columns. */
Test(reader_nwb, describe_table_without_colnames)
{
    const char *path = tmp_path("nocolnames.nwb");
    static const double start[] = {1.0, 2.0}, index[] = {1, 2};
    static const char *const tags[] = {"a", "b"};
    write_fluorescence(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Gclose(nwb_group(file, "/intervals/epochs", "TimeIntervals"));
    write_doubles(file, "/intervals/epochs/start_time", start, 2);
    write_doubles(file, "/intervals/epochs/stop_time", start, 2);
    write_doubles(file, "/intervals/epochs/id", index, 2);
    write_vlen_strings(file, "/intervals/epochs/tags", tags, 2);
    write_doubles(file, "/intervals/epochs/tags_index", index, 2);
    H5Gclose(nwb_group(file, "/intervals/epochs/meta", NULL));
    /* a malformed series is described as such, the rest still listed */
    H5Gclose(nwb_group(file, "/acquisition/broken/data", "TimeSeries"));
    H5Fclose(file);
    char *text = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_nwb_describe(path, &text, &err), NT_OK, "%s", err.message);
    assert_contains(text, "intervals /intervals/epochs: 2 rows, columns start_time, stop_time, "
                          "tags\n");
    assert_contains(text, "series /acquisition/broken: /acquisition/broken/data: expected a "
                          "dataset, found a group\n");
    assert_contains(text, "series " FLUO ": 3 ROIs x 40 frames, rate 8 Hz [default]\n");
    free(text);
}

/* ------------------------------------------------------ h5py (Python) */

/* The generator: writes NWB files as pynwb lays them out (h5py defaults:
 * variable-length UTF-8 string attributes, chunked gzip data, object
 * references), with the same known values as the C tests. */
static const char *const generator[] = {
    /* helpers */
    "import sys\n"
    "import h5py\n"
    "import numpy as np\n"
    "out = sys.argv[1]\n"
    "STR = h5py.string_dtype()\n"
    "def typed(g, t):\n"
    "    g.attrs['neurodata_type'] = t\n"
    "    g.attrs['namespace'] = 'core'\n"
    "    g.attrs['object_id'] = '00000000-0000-0000-0000-000000000000'\n"
    "    return g\n"
    "def nwb(name):\n"
    "    f = h5py.File(out + '/' + name, 'w')\n"
    "    f.attrs['nwb_version'] = '2.6.0'\n"
    "    typed(f, 'NWBFile')\n"
    "    f.create_dataset('session_start_time', data='2024-05-01T10:00:00+00:00')\n"
    "    f.create_dataset('identifier', data='slice-1')\n"
    "    f.require_group('acquisition')\n"
    "    f.require_group('stimulus/presentation')\n"
    "    typed(f.require_group('processing/ophys'), 'ProcessingModule')\n"
    "    return f\n"
    "def values(frames, rois, base, dtype):\n"
    "    f = np.arange(frames)[:, None]\n"
    "    r = np.arange(max(rois, 1))[None, :]\n"
    "    v = (base + 10 * r + f).astype(dtype)\n"
    "    return v if rois > 0 else v[:, 0]\n"
    "def series(parent, name, t, data, start=None, rate=None, timestamps=None,\n"
    "           conversion=1.0, offset=0.0):\n"
    "    g = typed(parent.create_group(name), t)\n"
    "    g.attrs['description'] = 'no description'\n"
    "    d = g.create_dataset('data', data=data, chunks=True, compression='gzip')\n"
    "    d.attrs['conversion'] = np.float32(conversion)\n"
    "    d.attrs['offset'] = np.float32(offset)\n"
    "    d.attrs['resolution'] = np.float32(-1.0)\n"
    "    d.attrs['unit'] = 'a.u.'\n"
    "    if timestamps is not None:\n"
    "        ts = g.create_dataset('timestamps', data=np.asarray(timestamps, 'f8'))\n"
    "        ts.attrs['interval'] = np.int32(1)\n"
    "        ts.attrs['unit'] = 'seconds'\n"
    "    else:\n"
    "        st = g.create_dataset('starting_time', data=np.float64(start))\n"
    "        st.attrs['rate'] = np.float32(rate)\n"
    "        st.attrs['unit'] = 'seconds'\n"
    "    return g\n"
    "def table(f, path, start, cols):\n"
    "    g = typed(f.create_group(path), 'TimeIntervals')\n"
    "    g.attrs['description'] = 'experimental trials'\n"
    "    names = ['start_time', 'stop_time'] + [c for c, _ in cols]\n"
    "    g.attrs.create('colnames', data=names, dtype=STR)\n"
    "    n = len(start)\n"
    "    typed(g.create_dataset('id', data=np.arange(n, dtype='i8')), 'ElementIdentifiers')\n"
    "    g.create_dataset('start_time', data=np.asarray(start, 'f8'))\n"
    "    g.create_dataset('stop_time', data=np.asarray(start, 'f8') + 1)\n"
    "    for c, v in cols:\n"
    "        if isinstance(v[0], str):\n"
    "            g.create_dataset(c, data=v, dtype=STR)\n"
    "        else:\n"
    "            g.create_dataset(c, data=np.asarray(v, 'f8'))\n"
    "def segmentation(f, s, ids):\n"
    "    seg = typed(f.create_group('processing/ophys/ImageSegmentation/PlaneSegmentation'),\n"
    "                'PlaneSegmentation')\n"
    "    typed(seg.create_dataset('id', data=np.asarray(ids, 'i8')), 'ElementIdentifiers')\n"
    "    r = s.create_dataset('rois', data=np.arange(len(ids), dtype='i8'))\n"
    "    typed(r, 'DynamicTableRegion')\n"
    "    r.attrs['table'] = seg.ref\n",
    /* the files */
    "# 1: Fluorescence, starting_time 2 s at 8 Hz, trials with a string label\n"
    "f = nwb('fluo.nwb')\n"
    "fl = typed(f.create_group('processing/ophys/Fluorescence'), 'Fluorescence')\n"
    "s = series(fl, 'RoiResponseSeries', 'RoiResponseSeries', values(40, 3, 1000, 'f4'),\n"
    "           start=2.0, rate=8.0)\n"
    "segmentation(f, s, [7, 8, 9])\n"
    "table(f, 'intervals/trials', [3.0, 5.5, 6.25],\n"
    "      [('condition', ['ctrl', 'drug', 'wash']), ('stim_ma', [0.1, 0.3, 0.5])])\n"
    "f.close()\n"
    "# 2: DfOverF, irregular timestamps from 100.5 s\n"
    "f = nwb('dff.nwb')\n"
    "ts = 100.5 + np.concatenate([[0], np.cumsum(np.where(np.arange(1, 40) % 2, 0.12, 0.125))])\n"
    "d = typed(f.create_group('processing/ophys/DfOverF'), 'DfOverF')\n"
    "series(d, 'RoiResponseSeries', 'RoiResponseSeries', values(40, 3, 0.25, 'f8'),\n"
    "       timestamps=ts)\n"
    "table(f, 'intervals/trials', [101.0, 102.75], [])\n"
    "f.close()\n",
    "# 3: int16 data, conversion 0.25, offset 3\n"
    "f = nwb('conv.nwb')\n"
    "fl = typed(f.create_group('processing/ophys/Fluorescence'), 'Fluorescence')\n"
    "series(fl, 'RoiResponseSeries', 'RoiResponseSeries', values(40, 3, -20, 'i2'),\n"
    "       start=0.0, rate=10.0, conversion=0.25, offset=3.0)\n"
    "f.close()\n"
    "# 4: two series, a 1-D TimeSeries, events in /stimulus/presentation\n"
    "f = nwb('multi.nwb')\n"
    "fl = typed(f.create_group('processing/ophys/Fluorescence'), 'Fluorescence')\n"
    "series(fl, 'RRS_a', 'RoiResponseSeries', values(40, 3, 100, 'f4'), start=0.5, rate=20.0)\n"
    "series(fl, 'RRS_b', 'RoiResponseSeries', values(40, 2, 200, 'f4'), start=0.5, rate=20.0)\n"
    "series(f['acquisition'], 'raw', 'TimeSeries', values(40, 0, 300, 'f4'), start=0.5,\n"
    "       rate=20.0)\n"
    "p = typed(f['stimulus/presentation'].create_group('puffs'), 'AnnotationSeries')\n"
    "p.create_dataset('data', data=['puff A', 'puff B'], dtype=STR)\n"
    "p.create_dataset('timestamps', data=np.array([1.0, 2.0]))\n"
    "f.close()\n"
    "# 5: plain HDF5 without /traces\n"
    "with h5py.File(out + '/plain.h5', 'w') as f:\n"
    "    f.create_dataset('acq/frames', data=values(40, 3, 0, 'u2'))\n",
};

/* Writes the generator into the test's directory and runs it; skips the
 * test where it cannot run (see the top of this file). */
static void py_generate(void)
{
    if (getenv("NIRTRACE_VALGRIND") != NULL)
        cr_skip_test("h5py files are not made under valgrind (python3 is not valgrind-clean)");
    if (system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0)
        cr_skip_test("/usr/bin/python3 cannot import h5py and numpy "
                     "(scripts/install-deps --python)");
    const char *script = tmp_path("gen.py");
    FILE *f = fopen(script, "w");
    cr_assert_not_null(f, "cannot write %s", script);
    for (size_t i = 0; i < sizeof generator / sizeof *generator; i++)
        cr_assert_eq(fputs(generator[i], f) >= 0, 1, "write");
    cr_assert_eq(fclose(f), 0, "close");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, tmp_dir);
    cr_assert_eq(system(cmd), 0, "the h5py generator failed: %s", cmd);
}

Test(reader_nwb, h5py_fluorescence_rate_trials_and_string_label)
{
    py_generate();
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.trial_label = "condition";
    nt_recording *rec = read_nwb_ok(tmp_path("fluo.nwb"), &opts);
    assert_samples(rec, 3, 40, 1000, 1, 0);
    cr_assert_str_eq(rec->sample_type, "float32", "sample_type");
    cr_assert_str_eq(rec->storage, "NWB .../ophys/Fluorescence/RoiResponseSeries, chunked, deflate",
                     "storage: %s", rec->storage);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "time_source");
    cr_assert_eq(rec->rate_hz, 8.0, "rate_hz");
    cr_assert_eq(rec->time_s[39], 39.0 / 8.0, "time of the last frame");
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    cr_assert_eq(rec->stim_s[0], 1.0, "onset 0");
    cr_assert_eq(rec->stim_s[1], 3.5, "onset 1");
    cr_assert_eq(rec->stim_s[2], 4.25, "onset 2");
    cr_assert_str_eq(rec->stim_labels[0], "ctrl", "label 0");
    cr_assert_str_eq(rec->stim_labels[1], "drug", "label 1");
    cr_assert_not_null(rec->roi_names, "names from the object reference");
    cr_assert_str_eq(rec->roi_names[0], "roi7", "name 0");
    cr_assert_str_eq(rec->roi_names[2], "roi9", "name 2");
    nt_error err = {0, ""};
    cr_assert_eq(nt_recording_check(rec, &err), NT_OK, "%s", err.message);
    nt_recording_free(rec);

    opts.trial_label = "stim_ma";
    rec = read_nwb_ok(tmp_path("fluo.nwb"), &opts);
    cr_assert_str_eq(rec->stim_labels[0], "0.1", "numeric label 0");
    cr_assert_str_eq(rec->stim_labels[2], "0.5", "numeric label 2");
    nt_recording_free(rec);

    opts.trial_label = "intensity";
    read_recording_fails(tmp_path("fluo.nwb"), &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/intervals/trials: no column \"intensity\" for the trial label (columns: "
                     "start_time, stop_time, condition, stim_ma)",
                     "message");

    opts.trial_label = NULL;
    opts.header_only = 1;
    rec = read_nwb_ok(tmp_path("fluo.nwb"), &opts);
    cr_assert_null(rec->traces, "header only");
    cr_assert_eq(rec->n_rois, 3, "n_rois");
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    nt_recording_free(rec);
}

Test(reader_nwb, h5py_dff_timestamps_are_shifted)
{
    py_generate();
    nt_recording *rec = read_nwb_ok(tmp_path("dff.nwb"), NULL);
    assert_samples(rec, 3, 40, 0.25, 1, 0);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time_source");
    cr_assert_eq(rec->time_s[0], 0.0, "first frame at 0");
    /* numpy's cumulative sum, then minus the first: within rounding */
    cr_assert_float_eq(rec->time_s[2], 0.245, 1e-12, "time of frame 2: %.17g", rec->time_s[2]);
    cr_assert_float_eq(rec->time_s[39], 19 * 0.245 + 0.12, 1e-12, "last: %.17g",
                       rec->time_s[39]);
    cr_assert_eq(rec->n_stims, 2, "n_stims");
    cr_assert_eq(rec->stim_s[0], 0.5, "onset 0");
    cr_assert_eq(rec->stim_s[1], 2.25, "onset 1");
    nt_recording_free(rec);
}

Test(reader_nwb, h5py_conversion_and_offset)
{
    py_generate();
    nt_recording *rec = read_nwb_ok(tmp_path("conv.nwb"), NULL);
    assert_samples(rec, 3, 40, -20, 0.25, 3.0);
    cr_assert_str_eq(rec->sample_type, "int16", "sample_type");
    nt_recording_free(rec);
}

Test(reader_nwb, h5py_series_by_name_path_and_presentation_stimuli)
{
    py_generate();
    const char *path = tmp_path("multi.nwb");
    nt_recording *rec = read_nwb_ok(path, NULL);
    assert_samples(rec, 3, 40, 100, 1, 0);
    cr_assert_eq(rec->n_stims, 2, "stimuli from /stimulus/presentation/puffs");
    cr_assert_eq(rec->stim_s[0], 0.5, "onset 0");
    cr_assert_eq(rec->stim_s[1], 1.5, "onset 1");
    cr_assert_str_eq(rec->stim_labels[0], "puff A", "label 0");
    nt_recording_free(rec);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.series = "RRS_b";
    rec = read_nwb_ok(path, &opts);
    assert_samples(rec, 2, 40, 200, 1, 0);
    nt_recording_free(rec);
    opts.series = "/acquisition/raw";
    rec = read_nwb_ok(path, &opts);
    assert_samples(rec, 1, 40, 300, 1, 0);
    cr_assert_eq(rec->rate_hz, 20.0, "rate_hz");
    nt_recording_free(rec);

    char *text = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_nwb_describe(path, &text, &err), NT_OK, "%s", err.message);
    cr_assert_str_eq(text,
                     "series /processing/ophys/Fluorescence/RRS_a: 3 ROIs x 40 frames, rate 20 Hz"
                     " [default]\n"
                     "series /processing/ophys/Fluorescence/RRS_b: 2 ROIs x 40 frames, rate 20 "
                     "Hz\n"
                     "series /acquisition/raw (TimeSeries): 1 ROI x 40 frames, rate 20 Hz\n"
                     "events /stimulus/presentation/puffs (AnnotationSeries): 2 timestamps "
                     "[stimuli]\n",
                     "description:\n%s", text);
    free(text);
}

Test(reader_nwb, h5py_plain_hdf5_without_traces)
{
    py_generate();
    nt_error err;
    read_recording_fails(tmp_path("plain.h5"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "no /traces or /movie dataset; use FILE.h5:/path for another dataset",
                     "message");
    char spec[600];
    snprintf(spec, sizeof spec, "%s:/acq/frames", tmp_path("plain.h5"));
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    nt_recording *rec = read_nwb_ok(spec, &opts);
    assert_samples(rec, 3, 40, 0, 1, 0);
    cr_assert_str_eq(rec->sample_type, "uint16", "sample_type");
    nt_recording_free(rec);
}
