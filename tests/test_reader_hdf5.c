/*
 * test_reader_hdf5.c — the HDF5 reader, by round trips: each test writes a
 * file with the HDF5 C API into a fresh temporary directory and reads it
 * back through nt_recording_read (or nt_read_hdf5).
 */
#include "internal.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void setup(void)
{
    tmp_dir_create("reader");
}

TestSuite(reader_hdf5, .init = setup, .fini = tmp_dir_remove);

/* ------------------------------------------------------------- writing */

static hid_t create_file(const char *path)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot create %s", path);
    return file;
}

enum layout { CONTIGUOUS, CHUNKED, CHUNKED_SHUFFLE_DEFLATE, COMPACT };

#define N_ROIS 3
#define N_FRAMES 50

/* The known sample of ROI r, frame f: distinct for every (r, f), exact in
 * every tested type. */
static double sample_value(double base, size_t r, size_t f)
{
    return base + 10.0 * (double)r + (double)f;
}

/* Creates dataset path of type with the given shape and layout, writes
 * values (converted by HDF5 from double) when values is not NULL, and
 * returns it open. */
static hid_t make_dataset(hid_t file, const char *path, hid_t type, int rank, const hsize_t *dims,
                          int layout, const double *values)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (layout == CHUNKED || layout == CHUNKED_SHUFFLE_DEFLATE) {
        hsize_t chunk[H5S_MAX_RANK];
        for (int i = 0; i < rank; i++)
            chunk[i] = 1;
        chunk[rank - 1] = dims[rank - 1] > 16 ? 16 : (dims[rank - 1] > 0 ? dims[rank - 1] : 1);
        H5Pset_chunk(dcpl, rank, chunk);
        if (layout == CHUNKED_SHUFFLE_DEFLATE) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 6);
        }
    } else if (layout == COMPACT) {
        H5Pset_layout(dcpl, H5D_COMPACT);
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

/* Writes /traces [n_rois][n_frames] of type with sample_value(base, r, f). */
static void write_traces(hid_t file, hid_t type, size_t n_rois, size_t n_frames, int layout,
                         double base)
{
    hsize_t dims[2] = {n_rois, n_frames};
    double *v = malloc((n_rois * n_frames + 1) * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (size_t r = 0; r < n_rois; r++)
        for (size_t f = 0; f < n_frames; f++)
            v[r * n_frames + f] = sample_value(base, r, f);
    H5Dclose(make_dataset(file, "/traces", type, 2, dims, layout, v));
    free(v);
}

/* Creates path holding a valid /traces (N_ROIS x N_FRAMES uint16,
 * contiguous, sample_value of base 1000) and returns it open, for the
 * tests that add or break something next to it. */
static hid_t create_with_traces(const char *path)
{
    hid_t file = create_file(path);
    write_traces(file, H5T_STD_U16LE, N_ROIS, N_FRAMES, CONTIGUOUS, 1000);
    return file;
}

/* Writes n doubles to a 1-D float64 dataset (parent groups created). */
static void write_doubles(hid_t file, const char *path, const double *v, size_t n)
{
    hsize_t dims[1] = {n};
    H5Dclose(make_dataset(file, path, H5T_IEEE_F64LE, 1, dims, CONTIGUOUS, v));
}

/* Adds the rate_hz attribute of type (holding value) to /traces. */
static void write_rate(hid_t file, hid_t type, double value)
{
    hid_t dset = H5Dopen2(file, "/traces", H5P_DEFAULT);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(dset, "rate_hz", type, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attr, 0, "cannot create rate_hz");
    cr_assert_geq(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value), 0, "cannot write rate_hz");
    H5Aclose(attr);
    H5Sclose(space);
    H5Dclose(dset);
}

/* Creates the 1-D dataset path of n strings of type (parent groups
 * created) and writes data, laid out as type says. */
static void write_strings(hid_t file, const char *path, hid_t type, size_t n, const void *data)
{
    hsize_t dims[1] = {n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dset = H5Dcreate2(file, path, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "cannot create %s", path);
    cr_assert_geq(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0, "cannot write %s",
                  path);
    H5Dclose(dset);
    H5Pclose(lcpl);
    H5Sclose(space);
}

/* Writes n strings as h5py does for a list of str: variable-length UTF-8. */
static void write_vlen_strings(hid_t file, const char *path, const char *const *s, size_t n)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    write_strings(file, path, type, n, s);
    H5Tclose(type);
}

/* Writes n strings as fixed-length ASCII of size bytes, padded as pad says
 * (h5py writes numpy 'S10' arrays as NULLPAD). The padding bytes are laid
 * out by hand so that the file holds exactly what a writer would put. */
static void write_fixed_strings(hid_t file, const char *path, const char *const *s, size_t n,
                                size_t size, H5T_str_t pad)
{
    char *buf = calloc(n, size);
    cr_assert_not_null(buf, "calloc");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(s[i]);
        memset(buf + i * size, pad == H5T_STR_SPACEPAD ? ' ' : '\0', size);
        memcpy(buf + i * size, s[i], len < size ? len : size);
    }
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, size);
    H5Tset_strpad(type, pad);
    write_strings(file, path, type, n, buf);
    H5Tclose(type);
    free(buf);
}

/* A complete, valid recording: 3 x 50 float32 at 20 Hz, two stimuli. */
static void write_basic(const char *path)
{
    static const double onsets[] = {0.5, 1.5};
    hid_t file = create_file(path);
    write_traces(file, H5T_IEEE_F32LE, N_ROIS, N_FRAMES, CONTIGUOUS, 1000);
    write_rate(file, H5T_IEEE_F64LE, 20);
    write_doubles(file, "/stim/onsets", onsets, 2);
    H5Fclose(file);
}

/* write_basic plus stimulus labels and ROI names. */
static void write_full(const char *path)
{
    static const char *const labels[] = {"a", "b"};
    static const char *const names[] = {"r1", "r2", "r3"};
    write_basic(path);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(file, 0, "reopen %s", path);
    write_vlen_strings(file, "/stim/labels", labels, 2);
    write_vlen_strings(file, "/rois/names", names, N_ROIS);
    H5Fclose(file);
}

/* ------------------------------------------------------------ round trips */

static void check_roundtrip(hid_t type, const char *type_name, double base, int layout,
                            const char *storage)
{
    const char *path = tmp_path("roundtrip.h5");
    hid_t file = create_file(path);
    write_traces(file, type, N_ROIS, N_FRAMES, layout, base);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_rois, N_ROIS, "n_rois");
    cr_assert_eq(rec->n_frames, N_FRAMES, "n_frames");
    cr_assert_str_eq(rec->sample_type, type_name, "sample_type");
    cr_assert_str_eq(rec->storage, storage, "storage");
    cr_assert_not_null(rec->traces, "traces");
    for (size_t r = 0; r < N_ROIS; r++)
        for (size_t f = 0; f < N_FRAMES; f++)
            cr_assert_float_eq(rec->traces[r * N_FRAMES + f], (float)sample_value(base, r, f), 0,
                               "sample of ROI %zu frame %zu: %g", r, f,
                               rec->traces[r * N_FRAMES + f]);
    cr_assert_null(rec->time_s, "no time base in the file");
    cr_assert_eq(rec->time_source, NT_SOURCE_NONE, "time_source");
    cr_assert(isnan(rec->rate_hz), "rate_hz must be NaN without a rate");
    cr_assert_eq(rec->n_stims, 0, "n_stims");
    cr_assert_eq(rec->stim_source, NT_SOURCE_NONE, "stim_source");
    cr_assert_null(rec->roi_names, "roi_names");
    nt_recording_free(rec);
}

Test(reader_hdf5, uint16_contiguous)
{
    check_roundtrip(H5T_STD_U16LE, "uint16", 1000, CONTIGUOUS, "contiguous");
}
Test(reader_hdf5, uint16_chunked_shuffle_deflate)
{
    check_roundtrip(H5T_STD_U16LE, "uint16", 1000, CHUNKED_SHUFFLE_DEFLATE,
                    "chunked, shuffle, deflate");
}
Test(reader_hdf5, int16_contiguous)
{
    check_roundtrip(H5T_STD_I16LE, "int16", -1000, CONTIGUOUS, "contiguous");
}
Test(reader_hdf5, int16_chunked_shuffle_deflate)
{
    check_roundtrip(H5T_STD_I16LE, "int16", -1000, CHUNKED_SHUFFLE_DEFLATE,
                    "chunked, shuffle, deflate");
}
Test(reader_hdf5, int32_contiguous)
{
    check_roundtrip(H5T_STD_I32LE, "int32", -100000, CONTIGUOUS, "contiguous");
}
Test(reader_hdf5, int32_chunked_shuffle_deflate)
{
    check_roundtrip(H5T_STD_I32LE, "int32", -100000, CHUNKED_SHUFFLE_DEFLATE,
                    "chunked, shuffle, deflate");
}
Test(reader_hdf5, float32_contiguous)
{
    check_roundtrip(H5T_IEEE_F32LE, "float32", -1000.25, CONTIGUOUS, "contiguous");
}
Test(reader_hdf5, float32_chunked_shuffle_deflate)
{
    check_roundtrip(H5T_IEEE_F32LE, "float32", -1000.25, CHUNKED_SHUFFLE_DEFLATE,
                    "chunked, shuffle, deflate");
}
Test(reader_hdf5, float64_contiguous)
{
    check_roundtrip(H5T_IEEE_F64LE, "float64", 1000.5, CONTIGUOUS, "contiguous");
}
Test(reader_hdf5, float64_chunked_shuffle_deflate)
{
    check_roundtrip(H5T_IEEE_F64LE, "float64", 1000.5, CHUNKED_SHUFFLE_DEFLATE,
                    "chunked, shuffle, deflate");
}
Test(reader_hdf5, uint8_uint32_int8_and_big_endian_are_accepted)
{
    check_roundtrip(H5T_STD_U8LE, "uint8", 100, CONTIGUOUS, "contiguous");
    check_roundtrip(H5T_STD_I8LE, "int8", -100, CONTIGUOUS, "contiguous");
    check_roundtrip(H5T_STD_U32LE, "uint32", 70000, CONTIGUOUS, "contiguous");
    check_roundtrip(H5T_STD_U16BE, "uint16", 1000, CONTIGUOUS, "contiguous");
    check_roundtrip(H5T_IEEE_F64BE, "float64", -3.5, CHUNKED, "chunked");
}
/* Writes float32 /traces [n_rois][n_frames] in chunks of chunk_rows x
 * chunk_cols, sample (r, f) = r * 8192 + f (exact, unique). */
static void write_tiled(const char *path, hsize_t n_rois, hsize_t n_frames, hsize_t chunk_rows,
                        hsize_t chunk_cols)
{
    hsize_t dims[2] = {n_rois, n_frames}, chunk[2] = {chunk_rows, chunk_cols};
    float *v = malloc(n_rois * n_frames * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (hsize_t r = 0; r < n_rois; r++)
        for (hsize_t f = 0; f < n_frames; f++)
            v[r * n_frames + f] = (float)(r * 8192 + f);
    hid_t file = create_file(path);
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t dset = H5Dcreate2(file, "/traces", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl,
                            H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0,
                  "write");
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    free(v);
}

static void check_tiled(const char *path, size_t n_rois, size_t n_frames)
{
    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_rois, n_rois, "n_rois");
    cr_assert_eq(rec->n_frames, n_frames, "n_frames");
    for (size_t r = 0; r < n_rois; r++)
        for (size_t f = 0; f < n_frames; f++)
            cr_assert_float_eq(rec->traces[r * n_frames + f], (float)(r * 8192 + f), 0,
                               "sample of ROI %zu frame %zu: %g", r, f,
                               rec->traces[r * n_frames + f]);
    nt_recording_free(rec);
}

/* Many small chunks are read in tiles of whole chunks (several reads per
 * row, and several rows of chunks per read, with partial tiles at the
 * edges): every sample must land in its place. */
Test(reader_hdf5, many_chunks_are_read_in_tiles)
{
    const char *path = tmp_path("tiles.h5");
    write_tiled(path, 3, 4500, 1, 1);
    check_tiled(path, 3, 4500);
    write_tiled(path, 301, 500, 2, 3);
    check_tiled(path, 301, 500);
}

Test(reader_hdf5, compact_storage)
{
    check_roundtrip(H5T_STD_U16LE, "uint16", 1000, COMPACT, "compact");
}

Test(reader_hdf5, signature_after_a_user_block)
{
    const char *path = tmp_path("userblock.h5");
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_userblock(fcpl, 1024);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    cr_assert_geq(file, 0, "create");
    write_traces(file, H5T_STD_U16LE, N_ROIS, N_FRAMES, CONTIGUOUS, 1000);
    H5Fclose(file);
    H5Pclose(fcpl);

    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_float_eq(rec->traces[2 * N_FRAMES + 7], 1027.0f, 0, "sample");
    nt_recording_free(rec);
}

Test(reader_hdf5, empty_dimensions_give_no_traces)
{
    const char *path = tmp_path("empty_dims.h5");
    hid_t file = create_file(path);
    write_traces(file, H5T_STD_U16LE, 0, N_FRAMES, CONTIGUOUS, 0);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_rois, 0, "n_rois");
    cr_assert_eq(rec->n_frames, N_FRAMES, "n_frames");
    cr_assert_null(rec->traces, "traces");
    nt_recording_free(rec);

    file = create_file(path);
    write_traces(file, H5T_STD_U16LE, N_ROIS, 0, CONTIGUOUS, 0);
    write_rate(file, H5T_IEEE_F64LE, 10);
    H5Fclose(file);
    rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_rois, N_ROIS, "n_rois");
    cr_assert_eq(rec->n_frames, 0, "n_frames");
    cr_assert_null(rec->traces, "traces");
    cr_assert_null(rec->time_s, "time_s");
    cr_assert_float_eq(rec->rate_hz, 10.0, 0, "rate_hz");
    nt_recording_free(rec);
}

/* ------------------------------------------------------------ time base */

Test(reader_hdf5, rate_attribute_gives_regular_time)
{
    const char *path = tmp_path("rate.h5");
    const double rate = 7.3;
    hid_t file = create_with_traces(path);
    write_rate(file, H5T_IEEE_F32LE, rate);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(path, NULL);
    double rate_f32 = (double)(float)rate;
    cr_assert_float_eq(rec->rate_hz, rate_f32, 0, "rate_hz %g", rec->rate_hz);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "time_source");
    cr_assert_not_null(rec->time_s, "time_s");
    for (size_t i = 0; i < N_FRAMES; i++)
        cr_assert_float_eq(rec->time_s[i], (double)i / rate_f32, 0, "time of frame %zu", i);
    nt_recording_free(rec);
}

Test(reader_hdf5, integer_rate_attribute)
{
    const char *path = tmp_path("rate_int.h5");
    hid_t file = create_with_traces(path);
    write_rate(file, H5T_STD_I32LE, 20);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_float_eq(rec->rate_hz, 20.0, 0, "rate_hz");
    cr_assert_float_eq(rec->time_s[N_FRAMES - 1], (N_FRAMES - 1) / 20.0, 0, "last time");
    nt_recording_free(rec);
}

Test(reader_hdf5, time_dataset_wins_and_is_kept_exactly)
{
    const char *path = tmp_path("time.h5");
    double t[N_FRAMES];
    for (size_t i = 0; i < N_FRAMES; i++)
        t[i] = 0.1 * (double)i + 0.013 * (double)(i % 3) + 1e-9 * (double)(i * i);
    hid_t file = create_with_traces(path);
    write_rate(file, H5T_IEEE_F64LE, 20);
    write_doubles(file, "/time", t, N_FRAMES);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time_source");
    for (size_t i = 0; i < N_FRAMES; i++)
        cr_assert_eq(rec->time_s[i], t[i], "time of frame %zu: %.17g, expected %.17g", i,
                     rec->time_s[i], t[i]);
    double expected_rate = (N_FRAMES - 1) / (t[N_FRAMES - 1] - t[0]);
    cr_assert_float_eq(rec->rate_hz, expected_rate, 1e-12, "rate_hz %g", rec->rate_hz);
    nt_recording_free(rec);
}

Test(reader_hdf5, constant_time_gives_nan_rate)
{
    const char *path = tmp_path("time_flat.h5");
    double t[N_FRAMES] = {0};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/time", t, N_FRAMES);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time_source");
    cr_assert(isnan(rec->rate_hz), "rate_hz %g, expected NaN", rec->rate_hz);
    nt_recording_free(rec);
}

Test(reader_hdf5, time_length_mismatch)
{
    const char *path = tmp_path("time_short.h5");
    double t[N_FRAMES - 1];
    for (size_t i = 0; i < N_FRAMES - 1; i++)
        t[i] = 0.05 * (double)i;
    hid_t file = create_with_traces(path);
    write_doubles(file, "/time", t, N_FRAMES - 1);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/time: has 49 values, /traces has 50 frames", "message");
}

Test(reader_hdf5, negative_or_nan_rate_is_invalid)
{
    const char *path = tmp_path("rate_bad.h5");
    hid_t file = create_with_traces(path);
    write_rate(file, H5T_IEEE_F64LE, -5);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_INVALID, &err);
    cr_assert_str_eq(err.message,
                     "/traces: rate_hz attribute is -5, must be a positive number of Hz",
                     "message");

    file = create_with_traces(path);
    write_rate(file, H5T_IEEE_F64LE, NAN);
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_INVALID, &err);
    assert_contains(err.message, "rate_hz");
}

Test(reader_hdf5, rate_attribute_must_be_one_number)
{
    const char *path = tmp_path("rate_two.h5");
    hid_t file = create_with_traces(path);
    hid_t dset = H5Dopen2(file, "/traces", H5P_DEFAULT);
    hsize_t two = 2;
    double rates[2] = {20, 30};
    hid_t space = H5Screate_simple(1, &two, NULL);
    hid_t attr = H5Acreate2(dset, "rate_hz", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_DOUBLE, rates);
    H5Aclose(attr);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    assert_contains(err.message, "found 2 values");
}

/* ------------------------------------------------------------- stimuli */

Test(reader_hdf5, onsets_with_variable_length_labels)
{
    const char *path = tmp_path("stim_vlen.h5");
    static const double onsets[] = {1.0, 2.5, 4.0};
    static const char *const labels[] = {"ctrl", "dopamine 10 \xc2\xb5M", ""};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/stim/onsets", onsets, 3);
    write_vlen_strings(file, "/stim/labels", labels, 3);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    cr_assert_eq(rec->stim_source, NT_SOURCE_FILE_STIM, "stim_source");
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(rec->stim_s[k], onsets[k], "onset %zu", k);
        cr_assert_str_eq(rec->stim_labels[k], labels[k], "label %zu", k);
    }
    nt_recording_free(rec);
}

Test(reader_hdf5, fixed_length_labels_null_and_space_padded)
{
    static const double onsets[] = {1.0, 2.0, 3.0};
    static const char *const labels[] = {"a", "bb c", "ccccc"};
    static const H5T_str_t pads[] = {H5T_STR_NULLPAD, H5T_STR_NULLTERM, H5T_STR_SPACEPAD};
    for (size_t p = 0; p < 3; p++) {
        const char *path = tmp_path("stim_fixed.h5");
        hid_t file = create_with_traces(path);
        write_doubles(file, "/stim/onsets", onsets, 3);
        write_fixed_strings(file, "/stim/labels", labels, 3, 10, pads[p]);
        H5Fclose(file);

        nt_recording *rec = read_recording_ok(path, NULL);
        cr_assert_eq(rec->n_stims, 3, "n_stims");
        for (size_t k = 0; k < 3; k++)
            cr_assert_str_eq(rec->stim_labels[k], labels[k], "pad %d, label %zu: \"%s\"",
                             (int)pads[p], k, rec->stim_labels[k]);
        nt_recording_free(rec);
    }
}

Test(reader_hdf5, scalar_onset_counts_as_one)
{
    const char *path = tmp_path("stim_scalar.h5");
    hid_t file = create_with_traces(path);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t group = H5Gcreate2(file, "/stim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t dset = H5Dcreate2(group, "onsets", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    int onset = 2;
    H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &onset);
    H5Dclose(dset);
    H5Gclose(group);
    H5Sclose(space);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_stims, 1, "n_stims");
    cr_assert_float_eq(rec->stim_s[0], 2.0, 0, "onset");
    cr_assert_null(rec->stim_labels, "labels");
    nt_recording_free(rec);
}

Test(reader_hdf5, label_count_mismatch)
{
    const char *path = tmp_path("stim_mismatch.h5");
    static const double onsets[] = {1.0, 2.0, 3.0};
    static const char *const labels[] = {"a", "b"};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/stim/onsets", onsets, 3);
    write_vlen_strings(file, "/stim/labels", labels, 2);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/stim/labels: 2 labels for 3 onsets", "message");
}

Test(reader_hdf5, onsets_must_be_1d_numbers)
{
    const char *path = tmp_path("stim_2d.h5");
    hsize_t dims[2] = {2, 2};
    double v[4] = {1, 2, 3, 4};
    hid_t file = create_with_traces(path);
    H5Dclose(make_dataset(file, "/stim/onsets", H5T_IEEE_F64LE, 2, dims, CONTIGUOUS, v));
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/stim/onsets: expected a 1-D dataset of seconds, found 2-D",
                     "message");

    static const char *const text[] = {"1.0"};
    file = create_with_traces(path);
    write_vlen_strings(file, "/stim/onsets", text, 1);
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/stim/onsets: expected numbers, found string", "message");
}

Test(reader_hdf5, stim_must_be_a_group)
{
    const char *path = tmp_path("stim_dataset.h5");
    static const double onsets[] = {1.0};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/stim", onsets, 1);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/stim: expected a group, found a dataset", "message");
}

Test(reader_hdf5, labels_declaring_a_trillion_entries_are_refused)
{
    const char *path = tmp_path("labels_huge.h5");
    static const double onsets[] = {1.0, 2.0};
    hsize_t dims[1] = {1000000000000ull}, chunk[1] = {1024};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/stim/onsets", onsets, 2);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    hid_t dset = H5Dcreate2(file, "/stim/labels", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "create");
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(file);
    cr_assert_lt(file_size(path), 100000, "the file itself is small");

    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message, "/stim/labels: declares 1000000000000 strings");
}

Test(reader_hdf5, oversized_fixed_length_strings_are_refused)
{
    const char *path = tmp_path("labels_wide.h5");
    static const double onsets[] = {1.0};
    static const char *const labels[] = {"x"};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/stim/onsets", onsets, 1);
    write_fixed_strings(file, "/stim/labels", labels, 1, 5000, H5T_STR_NULLPAD);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_TOO_LARGE, &err);
    cr_assert_str_eq(err.message, "/stim/labels: strings of 5000 bytes, more than the limit of 4096",
                     "message");
}

/* ------------------------------------------------------------- ROI names */

Test(reader_hdf5, roi_names)
{
    const char *path = tmp_path("names.h5");
    static const char *const names[] = {"bouton 1", "bouton 2", "soma"};
    hid_t file = create_with_traces(path);
    write_vlen_strings(file, "/rois/names", names, N_ROIS);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_not_null(rec->roi_names, "roi_names");
    for (size_t r = 0; r < N_ROIS; r++)
        cr_assert_str_eq(rec->roi_names[r], names[r], "name %zu", r);
    nt_recording_free(rec);

    file = create_with_traces(path);
    write_fixed_strings(file, "/rois/names", names, N_ROIS, 8, H5T_STR_NULLPAD);
    H5Fclose(file);
    rec = read_recording_ok(path, NULL);
    cr_assert_str_eq(rec->roi_names[2], "soma", "name 2");
    nt_recording_free(rec);
}

Test(reader_hdf5, roi_name_count_mismatch)
{
    const char *path = tmp_path("names_short.h5");
    static const char *const names[] = {"a", "b"};
    hid_t file = create_with_traces(path);
    write_vlen_strings(file, "/rois/names", names, 2);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/rois/names: 2 names for 3 ROIs", "message");
}

/* -------------------------------------------------------- layout errors */

Test(reader_hdf5, missing_traces)
{
    const char *path = tmp_path("no_traces.h5");
    static const double t[] = {0, 1};
    hid_t file = create_file(path);
    write_doubles(file, "/time", t, 2);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    assert_contains(err.message, "/traces");
}

Test(reader_hdf5, traces_must_be_a_dataset)
{
    const char *path = tmp_path("traces_group.h5");
    hid_t file = create_file(path);
    H5Gclose(H5Gcreate2(file, "/traces", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/traces: expected a dataset, found a group", "message");
}

Test(reader_hdf5, traces_must_be_2d)
{
    const char *path = tmp_path("traces_rank.h5");
    double v[24] = {0};
    hsize_t dims1[1] = {24}, dims3[3] = {2, 3, 4};
    hid_t file = create_file(path);
    H5Dclose(make_dataset(file, "/traces", H5T_STD_U16LE, 1, dims1, CONTIGUOUS, v));
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/traces: expected a 2-D dataset [rois][frames], found 1-D",
                     "message");

    file = create_file(path);
    H5Dclose(make_dataset(file, "/traces", H5T_STD_U16LE, 3, dims3, CONTIGUOUS, v));
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/traces: expected a 2-D dataset [rois][frames], found 3-D",
                     "message");
}

Test(reader_hdf5, unsupported_sample_types)
{
    const char *path = tmp_path("traces_type.h5");
    hsize_t dims[2] = {2, 2};
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 8);
    hid_t file = create_file(path);
    H5Dclose(make_dataset(file, "/traces", type, 2, dims, CONTIGUOUS, NULL));
    H5Tclose(type);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/traces: unsupported sample type (string)", "message");

    file = create_file(path);
    write_traces(file, H5T_STD_I64LE, N_ROIS, N_FRAMES, CONTIGUOUS, 0);
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/traces: unsupported sample type (int64)", "message");

    /* a 12-bit integer packed in 16 bits: legal HDF5, written by no recorder */
    type = H5Tcopy(H5T_STD_U16LE);
    H5Tset_precision(type, 12);
    file = create_file(path);
    write_traces(file, type, N_ROIS, N_FRAMES, CONTIGUOUS, 0);
    H5Tclose(type);
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/traces: unsupported sample type (uint16 with a non-standard bit layout)",
                     "message");
}

/* An identity filter registered only while the file is written: the reader
 * then meets a filter its HDF5 does not have, like a missing LZF plugin. */
static size_t identity_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                              size_t nbytes, size_t *buf_size, void **buf)
{
    (void)flags;
    (void)cd_nelmts;
    (void)cd_values;
    (void)buf_size;
    (void)buf;
    return nbytes;
}

Test(reader_hdf5, unknown_filter_is_a_format_error)
{
    const char *path = tmp_path("filter.h5");
    const H5Z_filter_t id = 32123;
    H5Z_class2_t cls = {H5Z_CLASS_T_VERS, id, 1, 1, "nt-test-identity", NULL, NULL,
                        identity_filter};
    cr_assert_geq(H5Zregister(&cls), 0, "register");
    hsize_t dims[2] = {N_ROIS, N_FRAMES}, chunk[2] = {1, 10};
    double v[N_ROIS * N_FRAMES] = {0};
    hid_t file = create_file(path);
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_filter(dcpl, id, H5Z_FLAG_MANDATORY, 0, NULL);
    hid_t dset = H5Dcreate2(file, "/traces", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    cr_assert_geq(H5Zunregister(id), 0, "unregister");

    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    assert_contains(err.message, "/traces: compressed with the nt-test-identity filter (id 32123)");

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.header_only = 1;
    nt_recording *rec = NULL;
    cr_assert_eq(nt_recording_read(path, &opts, &rec, &err), NT_OK, "header: %s", err.message);
    cr_assert_str_eq(rec->storage, "chunked, nt-test-identity", "storage");
    nt_recording_free(rec);
}

/* ---------------------------------------------------------- size limits */

/* /traces of 1e6 x 1e7 uint16 in chunks never written: a 2 kB file that
 * declares 37 TB of float32. */
static void write_huge_chunked(const char *path)
{
    hsize_t dims[2] = {1000000, 10000000};
    hid_t file = create_file(path);
    H5Dclose(make_dataset(file, "/traces", H5T_STD_U16LE, 2, dims, CHUNKED, NULL));
    H5Fclose(file);
    cr_assert_lt(file_size(path), 100000, "the file itself is small");
}

Test(reader_hdf5, huge_declared_traces_are_refused_before_allocation)
{
    const char *path = tmp_path("huge.h5");
    write_huge_chunked(path);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message, "/traces: declares 1000000 x 10000000 samples (36 TiB as float32)");
}

Test(reader_hdf5, huge_declared_traces_header_only)
{
    const char *path = tmp_path("huge_header.h5");
    write_huge_chunked(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.header_only = 1;
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_recording_read(path, &opts, &rec, &err), NT_OK, "%s", err.message);
    cr_assert_eq(rec->n_rois, 1000000, "n_rois");
    cr_assert_eq(rec->n_frames, 10000000, "n_frames");
    cr_assert_null(rec->traces, "traces");
    cr_assert_str_eq(rec->storage, "chunked", "storage");
    nt_recording_free(rec);
}

Test(reader_hdf5, max_bytes_is_the_limit)
{
    const char *path = tmp_path("limit.h5");
    write_basic(path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.max_bytes = N_ROIS * N_FRAMES * sizeof(float) - 1;
    nt_error err;
    read_recording_fails(path, &opts, NT_ERR_TOO_LARGE, &err);
    cr_assert_str_eq(err.message,
                     "/traces: declares 3 x 50 samples (600 bytes as float32), more than the "
                     "599 bytes limit",
                     "message");

    opts.max_bytes = N_ROIS * N_FRAMES * sizeof(float);
    nt_recording *rec = NULL;
    cr_assert_eq(nt_recording_read(path, &opts, &rec, &err), NT_OK, "%s", err.message);
    nt_recording_free(rec);
}

/* Finds the 8-byte little-endian pair (a, b) in buf [len]: how a version-1
 * dataspace message stores the dimensions [a][b]. */
static long find_dims(const unsigned char *buf, long len, uint64_t a, uint64_t b)
{
    for (long i = 0; i + 16 <= len; i++) {
        uint64_t x = 0, y = 0;
        for (int k = 7; k >= 0; k--) {
            x = (x << 8) | buf[i + k];
            y = (y << 8) | buf[i + 8 + k];
        }
        if (x == a && y == b)
            return i;
    }
    return -1;
}

Test(reader_hdf5, dimensions_larger_than_the_file_are_corrupt)
{
    const char *path = tmp_path("patched.h5");
    write_basic(path);
    long len = (long)file_size(path);
    unsigned char *buf = malloc((size_t)len);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "open");
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len, "read");
    long at = find_dims(buf, len, N_ROIS, N_FRAMES);
    cr_assert_geq(at, 0, "dataspace message not found");
    /* 3 x 50 000 000 float32: 600 MB of data in a file of a few kB */
    uint64_t frames = 50000000;
    for (int k = 0; k < 8; k++)
        buf[at + 8 + k] = (unsigned char)(frames >> (8 * k));
    fseek(f, 0, SEEK_SET);
    cr_assert_eq(fwrite(buf, 1, (size_t)len, f), (size_t)len, "write");
    fclose(f);
    free(buf);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.max_bytes = SIZE_MAX;
    nt_error err;
    read_recording_fails(path, &opts, NT_ERR_CORRUPT, &err);
    assert_contains(err.message, "/traces");
    opts.header_only = 1;
    read_recording_fails(path, &opts, NT_ERR_CORRUPT, &err);
}

/* ------------------------------------------------------- damaged files */

Test(reader_hdf5, truncated_files_fail_cleanly)
{
    const char *path = tmp_path("truncated.h5");
    write_full(path);
    off_t size = file_size(path);
    const off_t cuts[] = {size / 2, size - 1, size * 3 / 4, size / 4, 1024, 600, 100, 9, 4};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_full(path);
        cr_assert_eq(truncate(path, cuts[i]), 0, "truncate");
        nt_recording *rec = (nt_recording *)&rec;
        nt_error err = {0, ""};
        int status = nt_recording_read(path, NULL, &rec, &err);
        cr_assert(status == NT_ERR_CORRUPT || status == NT_ERR_FORMAT,
                  "cut at %lld of %lld: status %d (%s)", (long long)cuts[i], (long long)size,
                  status, err.message);
        cr_assert_null(rec, "*out must be NULL");
        cr_assert_neq(err.message[0], '\0', "message");
    }
}

Test(reader_hdf5, truncated_file_message)
{
    const char *path = tmp_path("half.h5");
    write_basic(path);
    cr_assert_eq(truncate(path, file_size(path) / 2), 0, "truncate");
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_CORRUPT, &err);
    assert_contains(err.message, "cannot open as HDF5 (truncated or damaged file): ");
}

static herr_t count_prints(hid_t stack, void *data)
{
    (void)stack;
    (*(int *)data)++;
    return 0;
}

Test(reader_hdf5, hdf5_error_printing_is_off_inside_and_restored)
{
    const char *path = tmp_path("quiet.h5");
    int prints = 0;
    write_basic(path);
    cr_assert_eq(truncate(path, file_size(path) / 2), 0, "truncate");
    H5Eset_auto2(H5E_DEFAULT, count_prints, &prints);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_CORRUPT, &err);
    H5E_auto2_t func = NULL;
    void *data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    cr_assert_eq(prints, 0, "HDF5 printed %d error stacks", prints);
    cr_assert(func == count_prints && data == &prints, "error printing not restored");
}

Test(reader_hdf5, signature_without_a_file_is_corrupt)
{
    const char *path = tmp_path("sig_only.h5");
    static const unsigned char head[16] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "open");
    fwrite(head, 1, sizeof head, f);
    fclose(f);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_CORRUPT, &err);
}

/* ------------------------------------------------ nt_recording_read */

Test(reader_hdf5, not_hdf5)
{
    const char *path = tmp_path("random.bin");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "open");
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) % 256, f);
    fclose(f);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    assert_contains(err.message, "not a recognised recording format (expected HDF5");

    nt_recording *rec = (nt_recording *)&rec;
    cr_assert_eq(nt_read_hdf5(path, NULL, &rec, &err), NT_ERR_FORMAT, "direct: %s",
                 err.message);
    cr_assert_str_eq(err.message, "not an HDF5 file", "message");
    cr_assert_null(rec, "*out");
}

Test(reader_hdf5, missing_file)
{
    nt_error err;
    read_recording_fails(tmp_path("absent.h5"), NULL, NT_ERR_IO, &err);
    assert_contains(err.message, "No such file or directory");
    nt_recording *rec = NULL;
    cr_assert_eq(nt_read_hdf5(tmp_path("absent.h5"), NULL, &rec, &err), NT_ERR_IO, "direct");
}

Test(reader_hdf5, directory)
{
    nt_error err;
    read_recording_fails(tmp_dir, NULL, NT_ERR_IO, &err);
    cr_assert_str_eq(err.message, "is a directory", "message");
    nt_recording *rec = NULL;
    cr_assert_eq(nt_read_hdf5(tmp_dir, NULL, &rec, &err), NT_ERR_IO, "direct");
}

Test(reader_hdf5, empty_file)
{
    const char *path = tmp_path("empty.h5");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "open");
    fclose(f);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "file is empty", "message");
}

Test(reader_hdf5, header_only)
{
    const char *path = tmp_path("header.h5");
    write_full(path);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.header_only = 1;
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_recording_read(path, &opts, &rec, &err), NT_OK, "%s", err.message);
    cr_assert_null(rec->traces, "traces must stay NULL");
    cr_assert_eq(rec->n_rois, N_ROIS, "n_rois");
    cr_assert_eq(rec->n_frames, N_FRAMES, "n_frames");
    cr_assert_str_eq(rec->sample_type, "float32", "sample_type");
    cr_assert_str_eq(rec->storage, "contiguous", "storage");
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "time_source");
    cr_assert_float_eq(rec->time_s[10], 0.5, 1e-15, "time");
    cr_assert_eq(rec->n_stims, 2, "n_stims");
    cr_assert_float_eq(rec->stim_s[1], 1.5, 0, "onset");
    cr_assert_str_eq(rec->roi_names[1], "r2", "name");
    cr_assert_str_eq(rec->stim_labels[1], "b", "label");
    nt_recording_free(rec);
}

Test(reader_hdf5, complete_recording_passes_the_check)
{
    const char *path = tmp_path("complete.h5");
    write_basic(path);
    nt_recording *rec = read_recording_ok(path, NULL);
    nt_error err = {0, ""};
    cr_assert_eq(nt_recording_check(rec, &err), NT_OK, "%s", err.message);
    cr_assert_eq(rec->stim_source, NT_SOURCE_FILE_STIM, "stim_source");
    nt_recording_free(rec);
}

/* ------------------------------------------------- any dataset (FILE:/path) */

/* "path:/dataset", the form nt_recording_read splits. */
static const char *with_dataset(const char *path, const char *dataset)
{
    static char buf[2][600];
    static unsigned next;
    char *p = buf[next++ % 2];
    snprintf(p, sizeof buf[0], "%s:%s", path, dataset);
    return p;
}

/* Adds the number attribute name (float64, scalar) to the object at path. */
static void write_number_attr(hid_t file, const char *path, const char *name, double value)
{
    hid_t obj = H5Oopen(file, path, H5P_DEFAULT);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attr, 0, "cannot create %s", name);
    cr_assert_geq(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value), 0, "cannot write %s", name);
    H5Aclose(attr);
    H5Sclose(space);
    H5Oclose(obj);
}

/* Writes the dataset path [n_frames][n_rois] (frames by ROIs) of type with
 * sample_value(base, r, f) at [f][r]. */
static void write_frames_by_rois(hid_t file, const char *path, hid_t type, size_t n_rois,
                                 size_t n_frames, int layout, double base)
{
    hsize_t dims[2] = {n_frames, n_rois};
    double *v = malloc((n_rois * n_frames + 1) * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (size_t f = 0; f < n_frames; f++)
        for (size_t r = 0; r < n_rois; r++)
            v[f * n_rois + r] = sample_value(base, r, f);
    H5Dclose(make_dataset(file, path, type, 2, dims, layout, v));
    free(v);
}

static void assert_samples(const nt_recording *rec, size_t n_rois, size_t n_frames, double base)
{
    cr_assert_eq(rec->n_rois, n_rois, "n_rois %zu", rec->n_rois);
    cr_assert_eq(rec->n_frames, n_frames, "n_frames %zu", rec->n_frames);
    cr_assert_not_null(rec->traces, "traces");
    for (size_t r = 0; r < n_rois; r++)
        for (size_t f = 0; f < n_frames; f++)
            cr_assert_float_eq(rec->traces[r * n_frames + f], (float)sample_value(base, r, f), 0,
                               "sample of ROI %zu frame %zu: %g", r, f,
                               rec->traces[r * n_frames + f]);
}

static nt_recording *read_opts_ok(const char *path, const nt_read_options *opts)
{
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    int status = nt_recording_read(path, opts, &rec, &err);
    cr_assert_eq(status, NT_OK, "expected success, got %d: %s", status, err.message);
    cr_assert_not_null(rec, "no recording");
    return rec;
}

Test(reader_hdf5, dataset_1d_is_one_trace_with_its_rate_attribute)
{
    const char *path = tmp_path("one.h5");
    double v[N_FRAMES];
    hsize_t dims[1] = {N_FRAMES};
    for (size_t f = 0; f < N_FRAMES; f++)
        v[f] = sample_value(500, 0, f);
    hid_t file = create_file(path);
    H5Dclose(make_dataset(file, "/acq/trace", H5T_STD_U16LE, 1, dims, CHUNKED_SHUFFLE_DEFLATE, v));
    write_number_attr(file, "/acq/trace", "rate", 12.5);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(with_dataset(path, "/acq/trace"), NULL);
    assert_samples(rec, 1, N_FRAMES, 500);
    cr_assert_str_eq(rec->sample_type, "uint16", "sample_type");
    cr_assert_str_eq(rec->storage, "chunked, shuffle, deflate", "storage");
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "time_source");
    cr_assert_float_eq(rec->rate_hz, 12.5, 0, "rate_hz");
    cr_assert_float_eq(rec->time_s[5], 0.4, 1e-15, "time of frame 5");
    cr_assert_null(rec->roi_names, "roi_names");
    nt_recording_free(rec);

    /* a 1-D dataset is one trace in either layout */
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    rec = read_opts_ok(with_dataset(path, "/acq/trace"), &opts);
    assert_samples(rec, 1, N_FRAMES, 500);
    nt_recording_free(rec);
}

/* A 1-D dataset of more chunks than one read may touch: tiles along it. */
Test(reader_hdf5, dataset_1d_in_many_chunks)
{
    const char *path = tmp_path("one_long.h5");
    enum { N = 9000 };
    double *v = malloc(N * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (size_t f = 0; f < N; f++)
        v[f] = (double)f;
    hsize_t dims[1] = {N}, chunk[1] = {1};
    hid_t file = create_file(path);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    hid_t dset = H5Dcreate2(file, "/trace", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0, "write");
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    free(v);
    nt_recording *rec = read_recording_ok(with_dataset(path, "/trace"), NULL);
    cr_assert_eq(rec->n_rois, 1, "n_rois");
    cr_assert_eq(rec->n_frames, N, "n_frames");
    for (size_t f = 0; f < N; f++)
        cr_assert_eq(rec->traces[f], (float)f, "frame %zu: %g", f, rec->traces[f]);
    nt_recording_free(rec);
}

Test(reader_hdf5, dataset_2d_rois_by_frames_by_default)
{
    const char *path = tmp_path("rbf.h5");
    hid_t file = create_file(path);
    hsize_t dims[2] = {N_ROIS, N_FRAMES};
    double v[N_ROIS * N_FRAMES];
    for (size_t r = 0; r < N_ROIS; r++)
        for (size_t f = 0; f < N_FRAMES; f++)
            v[r * N_FRAMES + f] = sample_value(-20, r, f);
    H5Dclose(make_dataset(file, "/data/F", H5T_IEEE_F32LE, 2, dims, CONTIGUOUS, v));
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(with_dataset(path, "/data/F"), NULL);
    assert_samples(rec, N_ROIS, N_FRAMES, -20);
    cr_assert_null(rec->time_s, "no rate attribute");
    nt_recording_free(rec);
}

/* Frames-by-ROIs datasets of every storage are transposed exactly,
 * including those read in several tiles: contiguous (strips of rows), many
 * small chunks (at most 4096 per read, tiles across and down), and one
 * chunk larger than a tile (sub-tiles, through a chunk cache when deflated).
 * Sample (r, f) holds its ROI-major index r * n_frames + f: unique and exact
 * in float32 below 2^24 samples. */
static void check_transposed(hsize_t n_frames, hsize_t n_rois, hsize_t chunk_frames,
                             hsize_t chunk_rois, int deflate)
{
    const char *path = tmp_path("fbr.h5");
    hsize_t dims[2] = {n_frames, n_rois};
    float *v = malloc(n_frames * n_rois * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (hsize_t f = 0; f < n_frames; f++)
        for (hsize_t r = 0; r < n_rois; r++)
            v[f * n_rois + r] = (float)(r * n_frames + f);
    hid_t file = create_file(path);
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (chunk_frames > 0) {
        hsize_t chunk[2] = {chunk_frames, chunk_rois};
        H5Pset_chunk(dcpl, 2, chunk);
        if (deflate)
            H5Pset_deflate(dcpl, 1);
    }
    hid_t dset = H5Dcreate2(file, "/acq/frames", H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0,
                  "write");
    H5Dclose(dset);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    free(v);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    nt_recording *rec = read_opts_ok(with_dataset(path, "/acq/frames"), &opts);
    cr_assert_eq(rec->n_rois, n_rois, "n_rois");
    cr_assert_eq(rec->n_frames, n_frames, "n_frames");
    size_t wrong = 0;
    for (size_t r = 0; r < n_rois; r++)
        for (size_t f = 0; f < n_frames; f++)
            wrong += rec->traces[r * n_frames + f] != (float)(r * n_frames + f);
    cr_assert_eq(wrong, 0, "%zu samples misplaced (%llu x %llu, chunks %llu x %llu)", wrong,
                 (unsigned long long)n_frames, (unsigned long long)n_rois,
                 (unsigned long long)chunk_frames, (unsigned long long)chunk_rois);
    nt_recording_free(rec);
}

Test(reader_hdf5, frames_by_rois_is_transposed_exactly)
{
    check_transposed(50, 3, 0, 0, 0);        /* contiguous, one tile */
    check_transposed(2100, 700, 0, 0, 0);    /* contiguous, strips of rows */
    check_transposed(301, 97, 7, 5, 1);      /* small chunks, partial at the edges */
    check_transposed(1200, 1100, 7, 5, 1);   /* 37 840 chunks: tiles down */
    check_transposed(2000, 3, 1, 1, 0);      /* 6000 chunks: tiles down */
    check_transposed(3, 5000, 1, 1, 0);      /* 15 000 chunks: tiles across */
    check_transposed(1500, 800, 1500, 800, 1);   /* one deflated chunk > a tile */
    check_transposed(1100, 1000, 1100, 1000, 0); /* one plain chunk > a tile */
    check_transposed(2, 1100000, 2, 1100000, 1); /* a chunk row > a tile */
}

Test(reader_hdf5, native_traces_frames_by_rois)
{
    const char *path = tmp_path("native_fbr.h5");
    hid_t file = create_file(path);
    write_frames_by_rois(file, "/traces", H5T_STD_U16LE, N_ROIS, N_FRAMES,
                         CHUNKED_SHUFFLE_DEFLATE, 1000);
    H5Fclose(file);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    nt_recording *rec = read_opts_ok(path, &opts);
    assert_samples(rec, N_ROIS, N_FRAMES, 1000);
    nt_recording_free(rec);

    /* the same file in the native orientation is 50 ROIs of 3 frames */
    rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_rois, N_FRAMES, "n_rois");
    cr_assert_eq(rec->n_frames, N_ROIS, "n_frames");
    nt_recording_free(rec);
}

Test(reader_hdf5, rate_attribute_names_and_precedence)
{
    const char *path = tmp_path("rates.h5");
    hid_t file = create_file(path);
    write_frames_by_rois(file, "/a", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, CONTIGUOUS, 0);
    write_frames_by_rois(file, "/b", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, CONTIGUOUS, 0);
    write_number_attr(file, "/a", "sampling_rate", 30);
    write_number_attr(file, "/b", "sampling_rate", 30);
    write_number_attr(file, "/b", "rate", 25);
    write_number_attr(file, "/b", "rate_hz", 20);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(with_dataset(path, "/a"), NULL);
    cr_assert_float_eq(rec->rate_hz, 30.0, 0, "sampling_rate");
    nt_recording_free(rec);
    rec = read_recording_ok(with_dataset(path, "/b"), NULL);
    cr_assert_float_eq(rec->rate_hz, 20.0, 0, "rate_hz wins");
    nt_recording_free(rec);

    file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    write_number_attr(file, "/a", "rate", -1);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(with_dataset(path, "/a"), NULL, NT_ERR_INVALID, &err);
    cr_assert_str_eq(err.message, "/a: rate attribute is -1, must be a positive number of Hz",
                     "message");
}

Test(reader_hdf5, time_dataset_overrides_time)
{
    const char *path = tmp_path("time_ds.h5");
    double t[N_FRAMES], other[N_FRAMES];
    for (size_t i = 0; i < N_FRAMES; i++) {
        t[i] = 0.125 * (double)i + 0.001 * (double)(i % 2);
        other[i] = (double)i;
    }
    hid_t file = create_with_traces(path);
    write_rate(file, H5T_IEEE_F64LE, 20);
    write_doubles(file, "/time", other, N_FRAMES);
    write_doubles(file, "/clock/frame_s", t, N_FRAMES);
    write_doubles(file, "/clock/short", t, N_FRAMES - 1);
    H5Fclose(file);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.time_dataset = "/clock/frame_s";
    nt_recording *rec = read_opts_ok(path, &opts);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time_source");
    for (size_t i = 0; i < N_FRAMES; i++)
        cr_assert_eq(rec->time_s[i], t[i], "time of frame %zu", i);
    nt_recording_free(rec);

    nt_error err;
    opts.time_dataset = "/clock/short";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/clock/short: has 49 values, /traces has 50 frames", "message");
    opts.time_dataset = "/clock/none";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/clock/none: no such dataset", "message");
    opts.dataset = "/traces";
    opts.time_dataset = "/clock/short";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    assert_contains(err.message, "/clock/short: has 49 values");
}

Test(reader_hdf5, stim_dataset_overrides_onsets_without_labels)
{
    const char *path = tmp_path("stim_ds.h5");
    static const double onsets[] = {1.0, 2.0}, mine[] = {0.25, 0.75, 1.25};
    static const char *const labels[] = {"a", "b"};
    hid_t file = create_with_traces(path);
    write_doubles(file, "/stim/onsets", onsets, 2);
    write_vlen_strings(file, "/stim/labels", labels, 2);
    write_doubles(file, "/events/stim_s", mine, 3);
    H5Fclose(file);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.stim_dataset = "/events/stim_s";
    nt_recording *rec = read_opts_ok(path, &opts);
    cr_assert_eq(rec->n_stims, 3, "n_stims");
    cr_assert_eq(rec->stim_source, NT_SOURCE_FILE_STIM, "stim_source");
    for (size_t k = 0; k < 3; k++)
        cr_assert_eq(rec->stim_s[k], mine[k], "onset %zu", k);
    cr_assert_null(rec->stim_labels, "labels belong to /stim/onsets");
    nt_recording_free(rec);

    nt_error err;
    opts.stim_dataset = "/events/none";
    read_recording_fails(path, &opts, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/events/none: no such dataset", "message");
}

Test(reader_hdf5, dataset_errors_name_the_path)
{
    const char *path = tmp_path("ds_errors.h5");
    double v[24] = {0};
    hsize_t dims3[3] = {2, 3, 4};
    hid_t file = create_file(path);
    H5Dclose(make_dataset(file, "/acq/cube", H5T_STD_U16LE, 3, dims3, CONTIGUOUS, v));
    H5Gclose(H5Gcreate2(file, "/acq/group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    hid_t space = H5Screate(H5S_SCALAR);
    H5Dclose(H5Dcreate2(file, "/acq/scalar", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(space);
    H5Fclose(file);

    nt_error err;
    read_recording_fails(with_dataset(path, "/acq/frames"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/acq/frames: no such dataset", "message");
    read_recording_fails(with_dataset(path, "/acq/cube"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/acq/cube: movie of 2 frames of 3 x 4 px holds no whole 15 px tile (use a "
                     "smaller grid)",
                     "message");
    read_recording_fails(with_dataset(path, "/acq/group"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/acq/group: expected a dataset, found a group", "message");
    read_recording_fails(with_dataset(path, "/acq/scalar"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/acq/scalar: expected a 1-D or 2-D dataset, or a 3-D movie "
                     "[frames][height][width], found a scalar",
                     "message");
    read_recording_fails(with_dataset(path, "/acq/cube/x"), NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/acq/cube: expected a group, found a dataset", "message");

    /* the same through nt_read_hdf5 with opts.dataset */
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.dataset = "/acq/frames";
    nt_recording *rec = (nt_recording *)&rec;
    cr_assert_eq(nt_read_hdf5(path, &opts, &rec, &err), NT_ERR_FORMAT, "direct");
    cr_assert_str_eq(err.message, "/acq/frames: no such dataset", "message");
    cr_assert_null(rec, "*out");
}

Test(reader_hdf5, missing_traces_message_has_a_hint)
{
    const char *path = tmp_path("no_traces_hint.h5");
    static const double t[] = {0, 1};
    hid_t file = create_file(path);
    write_doubles(file, "/acq/frames", t, 2);
    H5Fclose(file);
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "no /traces or /movie dataset; use FILE.h5:/path for another dataset",
                     "message");
}

Test(reader_hdf5, dataset_limits_and_header_only)
{
    const char *path = tmp_path("ds_limit.h5");
    hid_t file = create_file(path);
    write_frames_by_rois(file, "/acq/frames", H5T_IEEE_F32LE, N_ROIS, N_FRAMES, CONTIGUOUS, 0);
    H5Fclose(file);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    opts.max_bytes = N_ROIS * N_FRAMES * sizeof(float) - 1;
    nt_error err;
    read_recording_fails(with_dataset(path, "/acq/frames"), &opts, NT_ERR_TOO_LARGE, &err);
    cr_assert_str_eq(err.message,
                     "/acq/frames: declares 50 x 3 samples (600 bytes as float32), more than "
                     "the 599 bytes limit",
                     "message");

    opts.header_only = 1;
    nt_recording *rec = read_opts_ok(with_dataset(path, "/acq/frames"), &opts);
    cr_assert_eq(rec->n_rois, N_ROIS, "n_rois");
    cr_assert_eq(rec->n_frames, N_FRAMES, "n_frames");
    cr_assert_null(rec->traces, "traces");
    cr_assert_str_eq(rec->storage, "contiguous", "storage");
    nt_recording_free(rec);
}

Test(reader_hdf5, companions_apply_to_any_dataset_but_names_only_to_traces)
{
    const char *path = tmp_path("companions.h5");
    static const double onsets[] = {0.5};
    static const char *const names[] = {"a", "b", "c"};
    double t[N_FRAMES];
    for (size_t i = 0; i < N_FRAMES; i++)
        t[i] = 0.1 * (double)i;
    hid_t file = create_with_traces(path);
    write_vlen_strings(file, "/rois/names", names, N_ROIS);
    write_doubles(file, "/time", t, N_FRAMES);
    write_doubles(file, "/stim/onsets", onsets, 1);
    write_frames_by_rois(file, "/acq/frames", H5T_STD_U16LE, 2, N_FRAMES, CONTIGUOUS, 7);
    H5Fclose(file);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    nt_recording *rec = read_opts_ok(with_dataset(path, "/acq/frames"), &opts);
    assert_samples(rec, 2, N_FRAMES, 7);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "time from /time");
    cr_assert_eq(rec->n_stims, 1, "stimuli from /stim/onsets");
    cr_assert_null(rec->roi_names, "/rois/names names the ROIs of /traces only");
    nt_recording_free(rec);
}
