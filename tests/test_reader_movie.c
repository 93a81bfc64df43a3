/*
 * test_reader_movie.c — camera movies (3-D HDF5 datasets [frames][height]
 * [width]) read as grid ROIs: each test writes a movie of known pixels with
 * the HDF5 C API and checks the tile means, names and grid that
 * nt_recording_read makes of it, the edge rule (partial tiles dropped), the
 * slab-by-slab read across storage layouts and memory limits, a response in
 * one tile found by the analyzer, and the refusal of bad dimensions.
 */
#include "internal.h"
#include "synth.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void setup(void)
{
    tmp_dir_create("movie");
}

TestSuite(reader_movie, .init = setup, .fini = tmp_dir_remove);

/* ------------------------------------------------------------- writing */

/* Storage of a test movie: contiguous, or chunked [chunk] with or without
 * shuffle + deflate. */
typedef struct storage {
    int chunked;
    hsize_t chunk[3];
    int deflate;
} storage;

static const storage CONTIGUOUS = {0, {0, 0, 0}, 0};

/* Writes the 3-D dataset path [dims] of type, with pixel values v (double,
 * converted by HDF5), and the attribute rate_hz when rate_hz > 0. Parent
 * groups are created. */
static void write_movie(hid_t file, const char *path, hid_t type, const hsize_t *dims,
                        const storage *st, const double *v, double rate_hz)
{
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (st->chunked) {
        cr_assert_geq(H5Pset_chunk(dcpl, 3, st->chunk), 0, "chunk");
        if (st->deflate) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 4);
        }
    }
    hid_t dset = H5Dcreate2(file, path, type, space, lcpl, dcpl, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "cannot create %s", path);
    if (v != NULL)
        cr_assert_geq(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0,
                      "cannot write %s", path);
    if (rate_hz > 0) {
        hid_t aspace = H5Screate(H5S_SCALAR);
        hid_t attr = H5Acreate2(dset, "rate_hz", H5T_IEEE_F64LE, aspace, H5P_DEFAULT,
                                H5P_DEFAULT);
        cr_assert_geq(H5Awrite(attr, H5T_NATIVE_DOUBLE, &rate_hz), 0, "rate_hz");
        H5Aclose(attr);
        H5Sclose(aspace);
    }
    H5Dclose(dset);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
}

static void write_onsets(hid_t file, const char *path, const double *onsets, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dset = H5Dcreate2(file, path, H5T_IEEE_F64LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "cannot create %s", path);
    cr_assert_geq(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, onsets), 0);
    H5Dclose(dset);
    H5Pclose(lcpl);
    H5Sclose(space);
}

static hid_t create_file(const char *path)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot create %s", path);
    return file;
}

/* A pixel of known value, distinct across frames, rows and columns, exact
 * in every tested type (below 2^7 for int8 when small is set). */
static double pixel(size_t f, size_t y, size_t x, int small)
{
    if (small)
        return (double)((f * 7 + y * 3 + x * 5) % 97) - 40.0;
    return 1000.0 + 7.0 * (double)f + 3.0 * (double)y + 5.0 * (double)x;
}

/* A movie [frames][height][width] of pixel() values; the pixels past the
 * last whole tile of grid (the bottom and right edges) get edge_value
 * instead, when edge_value is not NaN, so that reading them would show. */
static double *make_pixels(size_t frames, size_t height, size_t width, size_t grid, int small,
                           double edge_value)
{
    double *v = malloc(frames * height * width * sizeof *v);
    cr_assert_not_null(v, "malloc");
    size_t h_used = height / grid * grid, w_used = width / grid * grid;
    for (size_t f = 0; f < frames; f++)
        for (size_t y = 0; y < height; y++)
            for (size_t x = 0; x < width; x++)
                v[(f * height + y) * width + x] =
                    (!isnan(edge_value) && (y >= h_used || x >= w_used))
                        ? edge_value
                        : pixel(f, y, x, small);
    return v;
}

/* The mean of tile (r, c) of grid in frame f of v, in double. */
static double tile_mean(const double *v, size_t height, size_t width, size_t grid, size_t f,
                        size_t r, size_t c)
{
    double s = 0;
    for (size_t y = r * grid; y < (r + 1) * grid; y++)
        for (size_t x = c * grid; x < (c + 1) * grid; x++)
            s += v[(f * height + y) * width + x];
    return s / (double)(grid * grid);
}

/* Checks that rec holds the tile means of v [frames][height][width] for
 * grid, ROI-major and row-major over the tiles, within rel_tol (0: exact),
 * and the grid it reports. */
static void assert_tiles(const nt_recording *rec, const double *v, size_t frames, size_t height,
                         size_t width, size_t grid, double rel_tol)
{
    size_t rows = height / grid, cols = width / grid;
    cr_assert_eq(rec->n_rois, rows * cols, "n_rois %zu, expected %zu", rec->n_rois, rows * cols);
    cr_assert_eq(rec->n_frames, frames, "n_frames");
    cr_assert_eq(rec->movie.grid_px, grid, "grid_px");
    cr_assert_eq(rec->movie.height_px, height, "height_px");
    cr_assert_eq(rec->movie.width_px, width, "width_px");
    cr_assert_eq(rec->movie.tile_rows, rows, "tile_rows");
    cr_assert_eq(rec->movie.tile_cols, cols, "tile_cols");
    cr_assert_not_null(rec->traces, "traces");
    cr_assert_not_null(rec->roi_names, "roi_names");
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            size_t roi = r * cols + c;
            char name[48];
            snprintf(name, sizeof name, "r%03zuc%03zu", r, c);
            cr_assert_str_eq(rec->roi_names[roi], name, "name of ROI %zu", roi);
            for (size_t f = 0; f < frames; f++) {
                double want = tile_mean(v, height, width, grid, f, r, c);
                double got = rec->traces[roi * frames + f];
                if (rel_tol == 0)
                    cr_assert_eq(got, (double)(float)want, "tile %s frame %zu: %.9g, expected %.9g",
                                 name, f, got, want);
                else
                    cr_assert(fabs(got - want) <= rel_tol * fabs(want) + 1e-6,
                              "tile %s frame %zu: %.9g, expected %.9g", name, f, got, want);
            }
        }
    }
}

/* ------------------------------------------------------------- tile means */

Test(reader_movie, uint16_tile_means_exact_and_edges_dropped)
{
    /* 31 x 47 px in 15 px tiles: 2 x 3 tiles; 1 row and 2 columns left over,
     * holding 65535 so that averaging them in would show */
    const size_t F = 6, H = 31, W = 47, G = 15;
    hsize_t dims[3] = {F, H, W};
    double *v = make_pixels(F, H, W, G, 0, 65535);
    const char *path = tmp_path("u16.h5");
    static const double onsets[] = {0.25};
    hid_t file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, dims, &CONTIGUOUS, v, 8.0);
    write_onsets(file, "/stim/onsets", onsets, 1);
    H5Fclose(file);

    nt_recording *rec = read_recording_ok(path, NULL);
    assert_tiles(rec, v, F, H, W, G, 0);
    /* tile (1, 2), frame 3: rows 15-29 (mean 22), columns 30-44 (mean 37) */
    cr_assert_eq(rec->traces[5 * F + 3], 1000.0 + 21 + 3 * 22 + 5 * 37, "a mean by hand");
    cr_assert_str_eq(rec->sample_type, "uint16");
    cr_assert_str_eq(rec->storage, "contiguous");
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE, "rate_hz of /movie");
    cr_assert_float_eq(rec->time_s[4], 0.5, 1e-15);
    cr_assert_eq(rec->n_stims, 1);
    cr_assert_eq(rec->stim_source, NT_SOURCE_FILE_STIM);
    nt_recording_free(rec);
    free(v);
}

Test(reader_movie, exact_multiple_keeps_every_pixel)
{
    const size_t F = 3, H = 30, W = 45, G = 15;
    hsize_t dims[3] = {F, H, W};
    double *v = make_pixels(F, H, W, G, 0, NAN);
    const char *path = tmp_path("exact.h5");
    hid_t file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, dims, &CONTIGUOUS, v, 10.0);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(path, NULL);
    assert_tiles(rec, v, F, H, W, G, 0);
    nt_recording_free(rec);
    free(v);
}

Test(reader_movie, grid_option_and_one_pixel_tiles)
{
    const size_t F = 4, H = 31, W = 47;
    hsize_t dims[3] = {F, H, W};
    double *v = make_pixels(F, H, W, 1, 0, NAN);
    const char *path = tmp_path("grid.h5");
    hid_t file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, dims, &CONTIGUOUS, v, 10.0);
    H5Fclose(file);
    nt_read_options opts;
    nt_read_options_default(&opts);
    cr_assert_eq(opts.grid_px, NT_GRID_PX_DEFAULT, "default grid");
    cr_assert_eq(NT_GRID_PX_DEFAULT, 15);
    static const size_t grids[] = {1, 4, 10, 16, 31};
    for (size_t i = 0; i < sizeof grids / sizeof *grids; i++) {
        opts.grid_px = grids[i];
        nt_recording *rec = read_recording_ok(path, &opts);
        assert_tiles(rec, v, F, H, W, grids[i], 0);
        nt_recording_free(rec);
    }
    opts.grid_px = 0; /* 0 is the default too */
    nt_recording *rec = read_recording_ok(path, &opts);
    cr_assert_eq(rec->movie.grid_px, 15);
    nt_recording_free(rec);
    free(v);
}

/* Every pixel type, chunked (chunks that do not line up with the tiles)
 * with shuffle + deflate. */
Test(reader_movie, types_chunked_deflate)
{
    const size_t F = 9, H = 37, W = 50, G = 6;
    hsize_t dims[3] = {F, H, W};
    const struct {
        hid_t type;
        const char *name;
        int small;
    } types[] = {
        {H5T_STD_U8LE, "uint8", 1},     {H5T_STD_I8LE, "int8", 1},
        {H5T_STD_U16LE, "uint16", 0},   {H5T_STD_I16BE, "int16", 1},
        {H5T_STD_I32LE, "int32", 1},    {H5T_STD_U32LE, "uint32", 0},
        {H5T_IEEE_F32LE, "float32", 0}, {H5T_IEEE_F64BE, "float64", 0},
    };
    storage st = {1, {4, 7, 11}, 1};
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.grid_px = G;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        double *v = make_pixels(F, H, W, G, 0, NAN);
        if (types[i].small || strcmp(types[i].name, "uint8") == 0)
            for (size_t f = 0; f < F; f++)
                for (size_t y = 0; y < H; y++)
                    for (size_t x = 0; x < W; x++)
                        v[(f * H + y) * W + x] = pixel(f, y, x, 1) + (types[i].name[0] == 'u'
                                                                          ? 40.0 : 0.0);
        if (strcmp(types[i].name, "float32") == 0 || strcmp(types[i].name, "float64") == 0)
            for (size_t k = 0; k < F * H * W; k++)
                v[k] = v[k] * 0.37 + 0.125; /* not integers */
        char name[64];
        snprintf(name, sizeof name, "t_%s.h5", types[i].name);
        const char *path = tmp_path(name);
        hid_t file = create_file(path);
        write_movie(file, "/movie", types[i].type, dims, &st, v, 5.0);
        H5Fclose(file);
        if (strcmp(types[i].name, "float32") == 0)
            for (size_t k = 0; k < F * H * W; k++)
                v[k] = (double)(float)v[k]; /* what the file holds */
        nt_recording *rec = read_recording_ok(path, &opts);
        cr_assert_str_eq(rec->sample_type, types[i].name, "sample_type");
        cr_assert_str_eq(rec->storage, "chunked, shuffle, deflate", "storage");
        assert_tiles(rec, v, F, H, W, G, types[i].name[0] == 'f' ? 1e-7 : 0);
        nt_recording_free(rec);
        free(v);
    }
}

/* The same movie in several layouts and under memory limits that force
 * small slabs (several reads per frame slab, row bands split across
 * reads) reads the same. */
Test(reader_movie, layouts_and_small_slabs_agree)
{
    const size_t F = 40, H = 128, W = 160, G = 15;
    hsize_t dims[3] = {F, H, W};
    double *v = make_pixels(F, H, W, G, 0, 9999);
    /* Under the 200 KiB limit, chunks of 4 x 13 x 17 are read 5 chunk rows
     * (65 px) at a time, so that tile row 4 (px 60-74) is summed over two
     * reads, and chunks of 16 x 40 x 17 four chunk columns at a time. */
    const storage layouts[] = {
        CONTIGUOUS,
        {1, {1, H, W}, 0},
        {1, {7, 13, 17}, 0},
        {1, {4, 13, 17}, 0},
        {1, {16, 40, 17}, 1},
        {1, {1, 4, 4}, 1},
        {1, {F, 64, 64}, 1},
        {1, {F, H, W}, 1},
    };
    const size_t limits[] = {0, 200 << 10, 400 << 10, 1 << 20};
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
        char name[32];
        snprintf(name, sizeof name, "layout%zu.h5", i);
        const char *path = tmp_path(name);
        hid_t file = create_file(path);
        write_movie(file, "/movie", H5T_STD_U16LE, dims, &layouts[i], v, 8.33);
        H5Fclose(file);
        for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
            nt_read_options opts;
            nt_read_options_default(&opts);
            if (limits[k] != 0)
                opts.max_bytes = limits[k];
            nt_recording *rec = NULL;
            nt_error err = {0, ""};
            int status = nt_recording_read(path, &opts, &rec, &err);
            if (status == NT_ERR_TOO_LARGE) {
                /* only a chunk of more than half the limit may not fit */
                hsize_t chunk_bytes =
                    layouts[i].chunk[0] * layouts[i].chunk[1] * layouts[i].chunk[2] * 2;
                cr_assert_gt(chunk_bytes, limits[k] / 2, "layout %zu, limit %zu: %s", i,
                             limits[k], err.message);
                continue;
            }
            cr_assert_eq(status, NT_OK, "layout %zu, limit %zu: %s", i, limits[k], err.message);
            assert_tiles(rec, v, F, H, W, G, 0);
            nt_recording_free(rec);
        }
    }
    free(v);
}

/* ----------------------------------------------------- dataset and header */

Test(reader_movie, named_dataset_and_header_only)
{
    const size_t F = 5, H = 20, W = 33, G = 10;
    hsize_t dims[3] = {F, H, W};
    double *v = make_pixels(F, H, W, G, 0, NAN);
    const char *path = tmp_path("named.h5");
    static const double onsets[] = {0.1, 0.2};
    static const double times[] = {0, 0.1, 0.21, 0.3, 0.4};
    hid_t file = create_file(path);
    write_movie(file, "/acq/camera", H5T_STD_U16LE, dims, &CONTIGUOUS, v, 0);
    write_onsets(file, "/stim/onsets", onsets, 2);
    write_onsets(file, "/time", times, 5);
    H5Fclose(file);

    char named[600];
    snprintf(named, sizeof named, "%s:/acq/camera", path);
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.grid_px = G;
    nt_recording *rec = read_recording_ok(named, &opts);
    assert_tiles(rec, v, F, H, W, G, 0);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_TIME, "/time applies to a movie");
    cr_assert_float_eq(rec->time_s[2], 0.21, 1e-15);
    cr_assert_eq(rec->n_stims, 2);
    cr_assert_str_eq(rec->roi_names[5], "r001c002");
    nt_recording_free(rec);

    opts.header_only = 1;
    rec = read_recording_ok(named, &opts);
    cr_assert_null(rec->traces, "header only: no samples");
    cr_assert_eq(rec->n_rois, 6);
    cr_assert_eq(rec->n_frames, F);
    cr_assert_eq(rec->movie.tile_rows, 2);
    cr_assert_eq(rec->movie.tile_cols, 3);
    cr_assert_str_eq(rec->roi_names[0], "r000c000");
    nt_recording_free(rec);

    /* without a name, a file whose only samples are elsewhere is refused */
    nt_error err;
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "no /traces or /movie dataset; use FILE.h5:/path for another dataset");
    free(v);
}

Test(reader_movie, traces_win_over_movie)
{
    const char *path = tmp_path("both.h5");
    hsize_t mdims[3] = {4, 15, 15};
    double *v = make_pixels(4, 15, 15, 15, 0, NAN);
    hid_t file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, mdims, &CONTIGUOUS, v, 10.0);
    hsize_t tdims[2] = {3, 4};
    double t[12] = {0};
    hid_t space = H5Screate_simple(2, tdims, NULL);
    hid_t dset = H5Dcreate2(file, "/traces", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t);
    H5Dclose(dset);
    H5Sclose(space);
    H5Fclose(file);
    nt_recording *rec = read_recording_ok(path, NULL);
    cr_assert_eq(rec->n_rois, 3, "/traces is read");
    cr_assert_eq(rec->movie.grid_px, 0, "not a movie");
    nt_recording_free(rec);
    free(v);
}

/* ------------------------------------------------------------ analysis */

/* One 15 px tile of a 2 x 3 tile movie carries an evoked response at frame
 * 200 (8.33 Hz, 600 frames, bleaching, pixel noise); the analyzer finds it
 * there and nowhere else. */
Test(reader_movie, response_in_one_tile_is_detected)
{
    const size_t F = 600, H = 30, W = 45;
    const double rate = 8.33, stim_s = 200 / rate;
    hsize_t dims[3] = {F, H, W};
    double *v = malloc(F * H * W * sizeof *v);
    cr_assert_not_null(v);
    synth_rng rng = {20261124};
    double scale = 0.08 / synth_peak_value(1.0, 8.0);
    for (size_t f = 0; f < F; f++) {
        double t = (double)f / rate;
        double bleach = exp(-t / 500.0);
        double dff = synth_response(t - stim_s - 0.3, scale, 1.0, 8.0);
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                int responder = y >= 15 && x >= 30; /* tile r001c002 */
                double f0 = 3000.0 + 10.0 * (double)((y * 7 + x * 3) % 11);
                double px = f0 * bleach * (1.0 + (responder ? dff : 0.0)) +
                            150.0 * synth_gauss(&rng);
                v[(f * H + y) * W + x] = floor(px + 0.5);
            }
    }
    const char *path = tmp_path("evoked.h5");
    hid_t file = create_file(path);
    storage st = {1, {16, 30, 45}, 1};
    write_movie(file, "/movie", H5T_STD_U16LE, dims, &st, v, rate);
    write_onsets(file, "/stim/onsets", &stim_s, 1);
    H5Fclose(file);
    free(v);

    nt_recording *rec = read_recording_ok(path, NULL);
    nt_error err = {0, ""};
    cr_assert_eq(nt_recording_check(rec, &err), NT_OK, "check: %s", err.message);
    cr_assert_eq(rec->n_rois, 6);
    nt_analyzer *a = NULL;
    cr_assert_eq(nt_analyzer_create(NULL, &a, &err), NT_OK, "%s", err.message);
    nt_trial_result res[6];
    cr_assert_eq(nt_analyzer_execute(a, rec, res, &err), NT_OK, "%s", err.message);
    for (size_t r = 0; r < 6; r++) {
        int expect = strcmp(rec->roi_names[r], "r001c002") == 0;
        cr_assert_eq(res[r].detected, expect, "%s: detected %d (amplitude %g, snr %g)",
                     rec->roi_names[r], res[r].detected, res[r].amplitude_dff, res[r].snr);
    }
    cr_assert(fabs(res[5].amplitude_dff - 0.08) < 0.02, "amplitude %g", res[5].amplitude_dff);
    nt_analyzer_destroy(a);
    nt_recording_free(rec);
}

/* -------------------------------------------------------- bad dimensions */

Test(reader_movie, bad_dimensions_refused)
{
    const char *path = tmp_path("bad.h5");
    nt_error err;
    nt_read_options opts;

    /* smaller than one tile */
    hsize_t small[3] = {10, 14, 40};
    double *v = make_pixels(10, 14, 40, 1, 0, NAN);
    hid_t file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, small, &CONTIGUOUS, v, 8.0);
    H5Fclose(file);
    free(v);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message,
                     "/movie: movie of 10 frames of 14 x 40 px holds no whole 15 px tile "
                     "(use a smaller grid)");

    /* a grid beyond the limit, and a layout, which a movie does not take */
    nt_read_options_default(&opts);
    opts.grid_px = 70000;
    read_recording_fails(path, &opts, NT_ERR_INVALID, &err);
    cr_assert_str_eq(err.message, "grid of 70000 px: at most 65535 px");
    nt_read_options_default(&opts);
    opts.grid_px = 2;
    opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
    read_recording_fails(path, &opts, NT_ERR_INVALID, &err);
    assert_contains(err.message, "/movie: is a 3-D movie");

    /* a bogus size: chunks never written, so the file is small, but the
     * tiles would be 10^12 */
    hsize_t huge[3] = {600, (hsize_t)1 << 20, (hsize_t)1 << 20};
    storage st = {1, {1, 64, 64}, 1};
    file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, huge, &st, NULL, 8.0);
    H5Fclose(file);
    nt_read_options_default(&opts);
    opts.grid_px = 1;
    read_recording_fails(path, &opts, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message, "more than the limit of 1000000");
    opts.header_only = 1;
    read_recording_fails(path, &opts, NT_ERR_TOO_LARGE, &err);

    /* frames beyond the memory limit: refused before allocating */
    hsize_t long_movie[3] = {(hsize_t)1 << 40, 15, 15};
    st.chunk[0] = 1024;
    st.chunk[1] = st.chunk[2] = 15;
    file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, long_movie, &st, NULL, 8.0);
    H5Fclose(file);
    nt_read_options_default(&opts);
    read_recording_fails(path, &opts, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message, "/movie: movie of 1099511627776 frames of 15 x 15 px");
    assert_contains(err.message, "limit");
    /* ... and within a smaller one */
    hsize_t medium[3] = {1000, 150, 150};
    st.chunk[0] = 1000;
    file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, medium, &st, NULL, 8.0);
    H5Fclose(file);
    opts.max_bytes = 200 << 10;
    read_recording_fails(path, &opts, NT_ERR_TOO_LARGE, &err);
    assert_contains(err.message, "needs");
    opts.header_only = 1; /* info still describes it */
    nt_recording *rec = read_recording_ok(path, &opts);
    cr_assert_eq(rec->n_rois, 100);
    nt_recording_free(rec);

    /* a contiguous movie that declares more pixels than the file holds is
     * damaged */
    hsize_t dims[3] = {4, 15, 15};
    v = make_pixels(4, 15, 15, 15, 0, NAN);
    file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, dims, &CONTIGUOUS, v, 8.0);
    H5Fclose(file);
    free(v);
    off_t size = file_size(path);
    cr_assert_eq(truncate(path, size - 200), 0);
    nt_read_options_default(&opts);
    rec = NULL;
    cr_assert_neq(nt_recording_read(path, &opts, &rec, &err), NT_OK, "truncated movie read");
    cr_assert_null(rec);

    /* ranks: /movie must be 3-D; a named dataset 1-D to 3-D */
    hsize_t dims2[2] = {15, 15}, dims4[4] = {2, 2, 15, 15};
    file = create_file(path);
    hid_t space = H5Screate_simple(2, dims2, NULL);
    H5Dclose(H5Dcreate2(file, "/movie", H5T_STD_U16LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(space);
    space = H5Screate_simple(4, dims4, NULL);
    H5Dclose(H5Dcreate2(file, "/hyper", H5T_STD_U16LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(space);
    H5Fclose(file);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/movie: expected a 3-D dataset [frames][height][width], found 2-D");
    char named[600];
    snprintf(named, sizeof named, "%s:/hyper", path);
    read_recording_fails(named, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/hyper: expected a 1-D or 2-D dataset, or a 3-D movie "
                                  "[frames][height][width], found 4-D");

    /* a pixel type that is not a number */
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 4);
    file = create_file(path);
    write_movie(file, "/movie", str, dims, &CONTIGUOUS, NULL, 8.0);
    H5Fclose(file);
    H5Tclose(str);
    read_recording_fails(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert_str_eq(err.message, "/movie: unsupported pixel type (string)");
}

/* ------------------------------------------------------------------ CLI */

/* Runs `$NIRTRACE_BIN args` through the shell, stdout and stderr together;
 * returns the output (free it) and *exit_code. */
static char *run_cli(const char *args, int *exit_code)
{
    const char *bin = getenv("NIRTRACE_BIN");
    cr_assert(bin != NULL && bin[0] != '\0', "NIRTRACE_BIN is not set: run the tests with make test");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen");
    size_t cap = 1 << 16, len = 0, got;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0)
        len += got;
    out[len] = '\0';
    int st = pclose(p);
    *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

Test(reader_movie, cli_info_and_grid_option)
{
    const size_t F = 5, H = 20, W = 33;
    hsize_t dims[3] = {F, H, W};
    double *v = make_pixels(F, H, W, 1, 0, NAN);
    const char *path = tmp_path("cli.h5");
    static const double onsets[] = {0.2};
    hid_t file = create_file(path);
    write_movie(file, "/movie", H5T_STD_U16LE, dims, &CONTIGUOUS, v, 10.0);
    write_onsets(file, "/stim/onsets", onsets, 1);
    H5Fclose(file);
    free(v);

    char args[1024];
    int code;
    snprintf(args, sizeof args, "info --grid 10 '%s'", path);
    char *out = run_cli(args, &code);
    cr_assert_eq(code, 0, "info: exit %d: %s", code, out);
    assert_contains(out, "traces: 6 ROIs x 5 frames, uint16, contiguous\n");
    assert_contains(out, "movie: 5 frames of 20 x 33 px (height x width); grid 10 px: 2 x 3 "
                         "tiles = 6 ROIs; 0 px at the bottom and 3 px at the right in no tile\n");
    assert_contains(out, "roi names: r000c000 r000c001 r000c002 r001c000");
    free(out);

    snprintf(args, sizeof args, "info '%s'", path);
    out = run_cli(args, &code);
    cr_assert_eq(code, 0, "info: exit %d: %s", code, out);
    assert_contains(out, "grid 15 px: 1 x 2 tiles = 2 ROIs; 5 px at the bottom and 3 px at the "
                         "right in no tile\n");
    free(out);

    snprintf(args, sizeof args, "info --grid 21 '%s'", path);
    out = run_cli(args, &code);
    cr_assert_eq(code, 1, "a movie smaller than a tile: exit %d: %s", code, out);
    assert_contains(out, "nirtrace: ");
    assert_contains(out, "cli.h5: /movie: movie of 5 frames of 20 x 33 px holds no whole 21 px "
                         "tile (use a smaller grid)\n");
    free(out);

    snprintf(args, sizeof args, "detect --grid 0 '%s'", path);
    out = run_cli(args, &code);
    cr_assert_eq(code, 2, "--grid 0: exit %d: %s", code, out);
    free(out);
    snprintf(args, sizeof args, "detect --grid 2.5 '%s'", path);
    out = run_cli(args, &code);
    cr_assert_eq(code, 2, "--grid 2.5: exit %d: %s", code, out);
    free(out);
}
