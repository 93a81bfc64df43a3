/*
 * test_writer_hdf5.c — the HDF5 writers. nt_write_hdf5 is checked by round
 * trips through nt_read_hdf5 and by looking into the file with the HDF5 C
 * API (which objects exist, their types); the traces writer by reading its
 * file back with the C API. Failures are checked for what they leave on
 * disk: no file, the previous file untouched, no temporary.
 */
#include "internal.h"
#include "writer_hdf5.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void setup(void)
{
    tmp_dir_create("writer");
}

TestSuite(writer_hdf5, .init = setup, .fini = tmp_dir_remove);

/* ------------------------------------------------------------- helpers */

/* Number of entries of the test directory whose name contains ".tmp.". */
static int count_temporaries(void)
{
    return count_entries_containing(tmp_dir, ".tmp.");
}

static void assert_file_is(const char *path, const char *text)
{
    size_t len;
    unsigned char *got = slurp(path, &len);
    cr_assert(len == strlen(text) && memcmp(got, text, len) == 0,
              "%s was changed by a failed write", path);
    free(got);
}

/* A recording of n_rois x n_frames samples f(r, f) at 20 Hz, no stimuli. */
static nt_recording *make_rec(size_t n_rois, size_t n_frames, float (*f)(size_t, size_t))
{
    nt_recording *rec = nt_recording_new(n_rois, n_frames);
    cr_assert_not_null(rec);
    for (size_t r = 0; r < n_rois; r++)
        for (size_t i = 0; i < n_frames; i++)
            rec->traces[r * n_frames + i] = f(r, i);
    cr_assert_eq(nt_recording_set_rate(rec, 20.0, NULL), NT_OK);
    return rec;
}

static void set_stims(nt_recording *rec, size_t n)
{
    double s[8];
    cr_assert_leq(n, 8u);
    for (size_t k = 0; k < n; k++)
        s[k] = 0.25 + 0.5 * (double)k;
    cr_assert_eq(nt_recording_set_stims(rec, s, n, NULL), NT_OK);
}

/* Writes rec to path, expecting success and no temporary left, and reads it
 * back (new; free). */
static nt_recording *round_trip(const nt_recording *rec, const char *path)
{
    nt_error err = {0, ""};
    int st = nt_write_hdf5(path, rec, &err);
    cr_assert_eq(st, NT_OK, "nt_write_hdf5: %s", err.message);
    cr_assert_eq(count_temporaries(), 0, "a temporary file was left behind");
    nt_recording *back = NULL;
    st = nt_read_hdf5(path, NULL, &back, &err);
    cr_assert_eq(st, NT_OK, "nt_read_hdf5: %s", err.message);
    cr_assert_eq(back->n_rois, rec->n_rois);
    cr_assert_eq(back->n_frames, rec->n_frames);
    return back;
}

/* Bit-identical samples (NaN payloads and -0.0 included). */
static void assert_same_samples(const nt_recording *a, const nt_recording *b)
{
    cr_assert_not_null(b->traces);
    cr_assert(memcmp(a->traces, b->traces, a->n_rois * a->n_frames * sizeof(float)) == 0,
              "samples differ after the round trip");
}

/* 1 when the object at obj_path exists in the HDF5 file at path. */
static int h5_has(const char *path, const char *obj_path)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open %s", path);
    htri_t exists = H5Lexists(file, obj_path, H5P_DEFAULT);
    H5Fclose(file);
    cr_assert_geq(exists, 0, "H5Lexists %s", obj_path);
    return exists > 0;
}

/* 1 when dataset obj_path has an attribute called name. */
static int h5_has_attr(const char *path, const char *obj_path, const char *name)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open %s", path);
    htri_t exists = H5Aexists_by_name(file, obj_path, name, H5P_DEFAULT);
    H5Fclose(file);
    cr_assert_geq(exists, 0, "H5Aexists_by_name %s %s", obj_path, name);
    return exists > 0;
}

/* -------------------------------------------------- sample type choice */

static float counts_u16(size_t r, size_t f)
{
    return (float)((r * 7919u + f * 104729u) % 65536u); /* 0 .. 65535 */
}

static float counts_i16(size_t r, size_t f)
{
    return (float)((long)((r * 7919u + f * 104729u) % 65536u) - 32768); /* -32768 .. 32767 */
}

static float counts_i32(size_t r, size_t f)
{
    long v = (long)((r * 7919u + f * 104729u) % 65536u) * 256 - 8388608; /* ±2^23 */
    return (float)(f == 0 && r == 0 ? 16777216.0 : (double)v);
}

static float counts_huge(size_t r, size_t f)
{
    return (float)(16777218.0 + 2.0 * (double)(r + f)); /* integers above 2^24 */
}

static float fractional(size_t r, size_t f)
{
    return 1000.0f + 0.37f * (float)f - 3.5f * (float)r;
}

Test(writer_hdf5, nonnegative_integers_are_stored_as_uint16)
{
    nt_recording *rec = make_rec(3, 400, counts_u16);
    rec->traces[0] = 0;
    rec->traces[1] = 65535;
    nt_recording *back = round_trip(rec, tmp_path("u16.h5"));
    cr_assert_str_eq(back->sample_type, "uint16");
    assert_same_samples(rec, back);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, negative_integers_are_stored_as_int16)
{
    nt_recording *rec = make_rec(3, 400, counts_i16);
    rec->traces[0] = -32768;
    rec->traces[1] = 32767;
    nt_recording *back = round_trip(rec, tmp_path("i16.h5"));
    cr_assert_str_eq(back->sample_type, "int16");
    assert_same_samples(rec, back);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, wider_integers_are_stored_as_int32_up_to_2_pow_24)
{
    nt_recording *rec = make_rec(2, 300, counts_i32);
    nt_recording *back = round_trip(rec, tmp_path("i32.h5"));
    cr_assert_str_eq(back->sample_type, "int32");
    assert_same_samples(rec, back);
    nt_recording_free(back);
    nt_recording_free(rec);

    rec = make_rec(2, 300, counts_huge);
    back = round_trip(rec, tmp_path("huge.h5"));
    cr_assert_str_eq(back->sample_type, "float32");
    assert_same_samples(rec, back);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, fractions_and_non_finite_samples_are_stored_as_float32)
{
    nt_recording *rec = make_rec(3, 400, fractional);
    rec->traces[5] = NAN;
    rec->traces[6] = INFINITY;
    rec->traces[7] = -INFINITY;
    nt_recording *back = round_trip(rec, tmp_path("f32.h5"));
    cr_assert_str_eq(back->sample_type, "float32");
    assert_same_samples(rec, back);
    cr_assert(isnan(back->traces[5]));
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, negative_zero_keeps_its_sign)
{
    nt_recording *rec = make_rec(1, 50, counts_u16);
    rec->traces[3] = -0.0f;
    nt_recording *back = round_trip(rec, tmp_path("negzero.h5"));
    cr_assert_str_eq(back->sample_type, "float32");
    cr_assert(signbit(back->traces[3]), "-0.0 came back as +0.0");
    assert_same_samples(rec, back);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, traces_are_chunked_with_shuffle_and_deflate)
{
    /* 2 ROIs of 600000 uint16 frames: a row (1.2 MB) is more than one chunk. */
    nt_recording *rec = make_rec(2, 600000, counts_u16);
    const char *path = tmp_path("chunks.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert(strstr(back->storage, "chunked") != NULL, "storage: %s", back->storage);
    cr_assert(strstr(back->storage, "shuffle") != NULL, "storage: %s", back->storage);
    cr_assert(strstr(back->storage, "deflate") != NULL, "storage: %s", back->storage);
    assert_same_samples(rec, back);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = H5Dopen2(file, "/traces", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(dset);
    hsize_t chunk[2] = {0, 0};
    cr_assert_eq(H5Pget_chunk(dcpl, 2, chunk), 2);
    cr_assert_eq(chunk[0], 1, "a chunk holds one ROI");
    cr_assert_eq(chunk[1], 524288, "a chunk holds 1 MiB of uint16, got %llu frames",
                 (unsigned long long)chunk[1]);
    unsigned flags, config;
    size_t n_params = 1;
    unsigned level = 0;
    cr_assert_eq(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_DEFLATE, &flags, &n_params, &level, 0,
                                      NULL, &config),
                 0);
    cr_assert_eq(level, 4, "deflate level %u", level);
    H5Pclose(dcpl);
    H5Dclose(dset);
    H5Fclose(file);
    nt_recording_free(back);
    nt_recording_free(rec);
}

/* ------------------------------------------------------------ time base */

Test(writer_hdf5, regular_time_is_written_as_rate_hz_only)
{
    nt_recording *rec = make_rec(2, 100, counts_u16);
    const char *path = tmp_path("rate.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert(h5_has_attr(path, "/traces", "rate_hz"), "no rate_hz attribute");
    cr_assert_not(h5_has(path, "/time"), "a regular time base was written as /time");
    cr_assert_eq(back->time_source, NT_SOURCE_FILE_RATE);
    cr_assert_eq(back->rate_hz, 20.0);
    cr_assert(memcmp(back->time_s, rec->time_s, rec->n_frames * sizeof(double)) == 0,
              "time axis differs");
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, irregular_time_is_written_as_time_and_read_back_exactly)
{
    nt_recording *rec = make_rec(2, 100, counts_u16);
    for (size_t i = 0; i < rec->n_frames; i++)
        rec->time_s[i] = 0.05 * (double)i + (i % 3 == 1 ? 0.0037 : 0.0) + 1e-7 * (double)(i * i);
    rec->time_source = NT_SOURCE_FILE_TIME;
    rec->rate_hz = 99.0 / (rec->time_s[99] - rec->time_s[0]);
    const char *path = tmp_path("time.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert(h5_has(path, "/time"), "no /time for an irregular time base");
    cr_assert_eq(back->time_source, NT_SOURCE_FILE_TIME);
    cr_assert(memcmp(back->time_s, rec->time_s, rec->n_frames * sizeof(double)) == 0,
              "/time was not read back exactly");
    cr_assert_eq(back->rate_hz, rec->rate_hz);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, time_regular_to_rounding_needs_no_time_dataset)
{
    nt_recording *rec = make_rec(1, 1000, counts_u16);
    for (size_t i = 0; i < rec->n_frames; i++)
        rec->time_s[i] = (double)i * (1.0 / 30.0);
    rec->time_source = NT_SOURCE_FILE_TIME;
    rec->rate_hz = 30.0;
    const char *path = tmp_path("nearly.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert_not(h5_has(path, "/time"));
    for (size_t i = 0; i < rec->n_frames; i++)
        cr_assert_float_eq(back->time_s[i], rec->time_s[i], 1e-12);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, time_not_starting_at_zero_is_written_as_time)
{
    nt_recording *rec = make_rec(1, 100, counts_u16);
    for (size_t i = 0; i < rec->n_frames; i++)
        rec->time_s[i] = 5.0 + (double)i / 20.0;
    rec->time_source = NT_SOURCE_FILE_TIME;
    const char *path = tmp_path("offset.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert(h5_has(path, "/time"));
    cr_assert_eq(back->time_s[0], 5.0);
    cr_assert(memcmp(back->time_s, rec->time_s, rec->n_frames * sizeof(double)) == 0);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, no_time_base_writes_neither_rate_nor_time)
{
    nt_recording *rec = make_rec(1, 100, counts_u16);
    free(rec->time_s);
    rec->time_s = NULL;
    rec->rate_hz = NAN;
    rec->time_source = NT_SOURCE_NONE;
    const char *path = tmp_path("notime.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert_not(h5_has_attr(path, "/traces", "rate_hz"));
    cr_assert_not(h5_has(path, "/time"));
    cr_assert_null(back->time_s);
    cr_assert_eq(back->time_source, NT_SOURCE_NONE);
    nt_recording_free(back);
    nt_recording_free(rec);
}

/* -------------------------------------------------- stimuli and names */

Test(writer_hdf5, stimuli_labels_and_names_round_trip)
{
    char *labels[] = {"10 µM dopamine", "", "KCl ΔF"};
    char *names[] = {"soma", NULL};
    nt_recording *rec = make_rec(2, 100, fractional);
    set_stims(rec, 3);
    rec->stim_labels = calloc(3, sizeof(char *));
    rec->roi_names = calloc(2, sizeof(char *));
    cr_assert(rec->stim_labels != NULL && rec->roi_names != NULL);
    for (size_t k = 0; k < 3; k++)
        rec->stim_labels[k] = nt_strdup(labels[k]);
    rec->roi_names[0] = nt_strdup(names[0]);
    rec->roi_names[1] = NULL; /* written as "" */
    const char *path = tmp_path("labels.h5");
    nt_recording *back = round_trip(rec, path);

    cr_assert_eq(back->n_stims, 3);
    cr_assert_eq(back->stim_source, NT_SOURCE_FILE_STIM);
    cr_assert(memcmp(back->stim_s, rec->stim_s, 3 * sizeof(double)) == 0, "onsets differ");
    cr_assert_not_null(back->stim_labels);
    for (size_t k = 0; k < 3; k++)
        cr_assert_str_eq(back->stim_labels[k], labels[k]);
    cr_assert_not_null(back->roi_names);
    cr_assert_str_eq(back->roi_names[0], "soma");
    cr_assert_str_eq(back->roi_names[1], "");

    /* h5py's str: variable-length UTF-8. */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = H5Dopen2(file, "/stim/labels", H5P_DEFAULT);
    hid_t type = H5Dget_type(dset);
    cr_assert_gt(H5Tis_variable_str(type), 0, "labels are not variable-length strings");
    cr_assert_eq(H5Tget_cset(type), H5T_CSET_UTF8);
    H5Tclose(type);
    H5Dclose(dset);
    dset = H5Dopen2(file, "/stim/onsets", H5P_DEFAULT);
    type = H5Dget_type(dset);
    cr_assert_gt(H5Tequal(type, H5T_IEEE_F64LE), 0, "onsets are not float64");
    H5Tclose(type);
    H5Dclose(dset);
    H5Fclose(file);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, no_stimuli_writes_no_stim_group)
{
    nt_recording *rec = make_rec(2, 100, counts_u16);
    const char *path = tmp_path("nostim.h5");
    nt_recording *back = round_trip(rec, path);
    cr_assert_not(h5_has(path, "/stim"));
    cr_assert_not(h5_has(path, "/rois"));
    cr_assert_eq(back->n_stims, 0);
    cr_assert_null(back->stim_s);
    cr_assert_null(back->stim_labels);
    cr_assert_null(back->roi_names);
    nt_recording_free(back);
    nt_recording_free(rec);
}

/* --------------------------------------------------------- file handling */

Test(writer_hdf5, writing_twice_gives_identical_bytes)
{
    char *labels[] = {"a", "b"};
    char *names[] = {"r0", "r1", "r2"};
    nt_recording *rec = make_rec(3, 500, fractional);
    set_stims(rec, 2);
    rec->stim_labels = calloc(2, sizeof(char *));
    rec->roi_names = calloc(3, sizeof(char *));
    cr_assert(rec->stim_labels != NULL && rec->roi_names != NULL);
    for (size_t k = 0; k < 2; k++)
        rec->stim_labels[k] = nt_strdup(labels[k]);
    for (size_t r = 0; r < 3; r++)
        rec->roi_names[r] = nt_strdup(names[r]);
    rec->time_s[7] += 0.001; /* irregular: /time too */
    rec->time_source = NT_SOURCE_FILE_TIME;

    const char *a = tmp_path("a.h5"), *b = tmp_path("b.h5");
    cr_assert_eq(nt_write_hdf5(a, rec, NULL), NT_OK);
    sleep(1); /* a modification time would now differ */
    cr_assert_eq(nt_write_hdf5(b, rec, NULL), NT_OK);
    size_t la, lb;
    unsigned char *da = slurp(a, &la), *db = slurp(b, &lb);
    cr_assert_gt(la, 0);
    cr_assert(la == lb && memcmp(da, db, la) == 0, "two writes differ (%zu and %zu bytes)", la,
              lb);
    free(da);
    free(db);
    nt_recording_free(rec);
}

Test(writer_hdf5, replaces_an_existing_file_with_the_mode_of_a_new_file)
{
    const char *path = tmp_path("old.h5");
    write_file_text(path, "not an HDF5 file");
    chmod(path, 0600);
    mode_t old_mask = umask(027);
    nt_recording *rec = make_rec(1, 10, counts_u16);
    nt_error err = {0, ""};
    int st = nt_write_hdf5(path, rec, &err);
    umask(old_mask);
    cr_assert_eq(st, NT_OK, "%s", err.message);
    struct stat s;
    cr_assert_eq(stat(path, &s), 0);
    cr_assert_eq(s.st_mode & 0777, 0640, "mode %o", (unsigned)(s.st_mode & 0777));
    nt_recording *back = NULL;
    cr_assert_eq(nt_read_hdf5(path, NULL, &back, &err), NT_OK, "%s", err.message);
    nt_recording_free(back);
    nt_recording_free(rec);
}

Test(writer_hdf5, missing_directory_fails_and_creates_nothing)
{
    const char *path = tmp_path("no/such/dir/out.h5");
    nt_recording *rec = make_rec(1, 10, counts_u16);
    nt_error err = {0, ""};
    cr_assert_eq(nt_write_hdf5(path, rec, &err), NT_ERR_IO);
    cr_assert_eq(err.status, NT_ERR_IO);
    cr_assert(strstr(err.message, "No such file or directory") != NULL, "message: %s",
              err.message);
    cr_assert_not(file_exists(path));
    cr_assert_not(file_exists(tmp_path("no")));
    nt_recording_free(rec);
}

Test(writer_hdf5, path_naming_a_directory_is_refused)
{
    const char *path = tmp_path("adir");
    cr_assert_eq(mkdir(path, 0755), 0);
    nt_recording *rec = make_rec(1, 10, counts_u16);
    nt_error err = {0, ""};
    cr_assert_eq(nt_write_hdf5(path, rec, &err), NT_ERR_IO);
    cr_assert_str_eq(err.message, "is a directory");
    struct stat s;
    cr_assert(stat(path, &s) == 0 && S_ISDIR(s.st_mode), "the directory was replaced");
    cr_assert_eq(count_temporaries(), 0);
    nt_recording_free(rec);
}

Test(writer_hdf5, invalid_recording_leaves_existing_file_untouched)
{
    const char *path = tmp_path("keep.h5");
    write_file_text(path, "previous content");
    nt_error err = {0, ""};

    nt_recording *empty = nt_recording_new(0, 0); /* traces == NULL */
    cr_assert_null(empty->traces);
    cr_assert_eq(nt_write_hdf5(path, empty, &err), NT_ERR_INVALID);
    cr_assert_neq(err.message[0], '\0');
    assert_file_is(path, "previous content");

    nt_recording *rec = make_rec(1, 10, counts_u16);
    rec->n_stims = 2; /* onsets missing */
    cr_assert_eq(nt_write_hdf5(path, rec, &err), NT_ERR_INVALID);
    rec->n_stims = 0;
    cr_assert_eq(nt_write_hdf5(NULL, rec, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_write_hdf5(path, NULL, &err), NT_ERR_INVALID);
    assert_file_is(path, "previous content");
    cr_assert_eq(count_temporaries(), 0);
    nt_recording_free(rec);
    nt_recording_free(empty);
}

/* Limits files this process writes to max_bytes (writes beyond fail with
 * EFBIG instead of killing the test), so that HDF5 fails part-way through. */
static void limit_file_size(rlim_t max_bytes, struct rlimit *saved)
{
    struct rlimit lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, saved), 0);
    lim = *saved;
    lim.rlim_cur = max_bytes;
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

/* Samples no compressor can shrink much. */
static float noisy(size_t r, size_t f)
{
    uint32_t x = (uint32_t)(r * 2654435761u) ^ (uint32_t)(f * 2246822519u);
    x ^= x >> 15;
    x *= 2654435761u;
    x ^= x >> 13;
    return (float)x / 4294967296.0f + 0.5f;
}

Test(writer_hdf5, failure_while_writing_removes_the_temporary_and_prints_nothing)
{
    const char *path = tmp_path("full.h5");
    write_file_text(path, "previous content");
    nt_recording *rec = make_rec(4, 100000, noisy); /* 1.6 MB of float32 */
    H5E_auto2_t func_before = NULL, func_after = NULL;
    void *data_before = NULL, *data_after = NULL;
    H5Eget_auto2(H5E_DEFAULT, &func_before, &data_before);
    cr_assert_not_null(func_before, "HDF5 has no default error printer to restore");

    struct rlimit saved;
    nt_error err = {0, ""};
    cr_redirect_stderr();
    limit_file_size(64 * 1024, &saved);
    int st = nt_write_hdf5(path, rec, &err);
    setrlimit(RLIMIT_FSIZE, &saved);
    fflush(stderr);

    cr_assert_eq(st, NT_ERR_IO, "status %d: %s", st, err.message);
    cr_assert(strstr(err.message, "File too large") != NULL, "message: %s", err.message);
    cr_assert_stderr_eq_str("", "something was printed");
    H5Eget_auto2(H5E_DEFAULT, &func_after, &data_after);
    cr_assert(func_after == func_before && data_after == data_before,
              "the error printer was not restored");
    assert_file_is(path, "previous content");
    cr_assert_eq(count_temporaries(), 0, "the temporary was left behind");
    nt_recording_free(rec);
}

/* --------------------------------------------------------- traces writer */

/* Window samples of recording `which` at (row, i): distinct and exact in float32. */
static double window_value(int which, int what, size_t row, size_t i)
{
    return (double)which * 1000.0 + (double)what * 100.0 + (double)row + (double)i / 8.0;
}

typedef struct windows {
    size_t n_rois, n_trials, n_win;
    double *t, *d, *f, stim[32];
} windows;

static void windows_fill(windows *w, int which, size_t n_rois, size_t n_trials, size_t n_win)
{
    size_t n = n_rois * n_trials * n_win;
    cr_assert_leq(n_trials, sizeof w->stim / sizeof w->stim[0]);
    w->n_rois = n_rois;
    w->n_trials = n_trials;
    w->n_win = n_win;
    w->t = malloc(n * sizeof(double));
    w->d = malloc(n * sizeof(double));
    w->f = malloc(n * sizeof(double));
    cr_assert(w->t != NULL && w->d != NULL && w->f != NULL);
    for (size_t row = 0; row < n_rois * n_trials; row++)
        for (size_t i = 0; i < n_win; i++) {
            w->t[row * n_win + i] = window_value(which, 0, row, i);
            w->d[row * n_win + i] = window_value(which, 1, row, i);
            w->f[row * n_win + i] = window_value(which, 2, row, i);
        }
    w->t[0] = NAN; /* the window starts before the recording */
    for (size_t k = 0; k < n_trials; k++)
        w->stim[k] = 1.0 + 0.1 * (double)which + 2.0 * (double)k;
}

static void windows_free(windows *w)
{
    free(w->t);
    free(w->d);
    free(w->f);
}

static int add_windows(nt_traces_writer *tw, const char *source, const windows *w,
                       char *const *names, char *const *labels, nt_error *err)
{
    return nt_traces_writer_add(tw, source, w->n_rois, w->n_trials, w->n_win, w->t, w->d, w->f,
                                w->stim, names, labels, err);
}

/* Reads dataset obj_path of the open file as doubles, checking its shape. */
static double *read_dataset(hid_t file, const char *obj_path, int rank, const hsize_t *dims,
                            hid_t expected_type)
{
    hid_t dset = H5Dopen2(file, obj_path, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "no %s", obj_path);
    hid_t space = H5Dget_space(dset), type = H5Dget_type(dset);
    hsize_t got[3] = {0, 0, 0};
    cr_assert_eq(H5Sget_simple_extent_ndims(space), rank, "%s: rank", obj_path);
    H5Sget_simple_extent_dims(space, got, NULL);
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        cr_assert_eq(got[i], dims[i], "%s: dimension %d is %llu, expected %llu", obj_path, i,
                     (unsigned long long)got[i], (unsigned long long)dims[i]);
        n *= (size_t)dims[i];
    }
    cr_assert_gt(H5Tequal(type, expected_type), 0, "%s: unexpected type", obj_path);
    double *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    cr_assert_geq(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
    return v;
}

/* Reads the 1-D string dataset obj_path and compares it with expected [n]. */
static void check_strings(hid_t file, const char *obj_path, const char *const *expected, size_t n)
{
    hid_t dset = H5Dopen2(file, obj_path, H5P_DEFAULT);
    cr_assert_geq(dset, 0, "no %s", obj_path);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char *got[4] = {NULL, NULL, NULL, NULL};
    cr_assert_leq(n, 4u);
    cr_assert_geq(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, got), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(got[i], expected[i], "%s[%zu]", obj_path, i);
    hid_t space = H5Dget_space(dset);
    H5Dvlen_reclaim(type, space, H5P_DEFAULT, got);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(dset);
}

static void check_source(hid_t file, const char *group, const char *expected)
{
    hid_t attr = H5Aopen_by_name(file, group, "source", H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(attr, 0, "%s has no source attribute", group);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char *got = NULL;
    cr_assert_geq(H5Aread(attr, type, &got), 0);
    cr_assert_str_eq(got, expected);
    H5free_memory(got);
    H5Tclose(type);
    H5Aclose(attr);
}

/* Checks one recording's group against w: shapes, float32 values, stim_s. */
static void check_windows(hid_t file, const char *group, int which, const windows *w)
{
    static const char *const names[] = {"t_rel_s", "dff", "dff_filtered"};
    hsize_t dims[3] = {w->n_rois, w->n_trials, w->n_win};
    char obj[128];
    for (int what = 0; what < 3; what++) {
        snprintf(obj, sizeof obj, "%s/%s", group, names[what]);
        double *v = read_dataset(file, obj, 3, dims, H5T_IEEE_F32LE);
        for (size_t row = 0; row < w->n_rois * w->n_trials; row++)
            for (size_t i = 0; i < w->n_win; i++) {
                double got = v[row * w->n_win + i];
                if (what == 0 && row == 0 && i == 0) {
                    cr_assert(isnan(got), "%s: NaN not kept", obj);
                    continue;
                }
                double want = (double)(float)window_value(which, what, row, i);
                cr_assert_eq(got, want, "%s[%zu][%zu] = %g, expected %g", obj, row, i, got, want);
            }
        free(v);
    }
    hsize_t n = w->n_trials;
    snprintf(obj, sizeof obj, "%s/stim_s", group);
    double *s = read_dataset(file, obj, 1, &n, H5T_IEEE_F64LE);
    cr_assert(memcmp(s, w->stim, w->n_trials * sizeof(double)) == 0, "%s differs", obj);
    free(s);
}

Test(writer_hdf5, traces_writer_writes_one_group_per_recording)
{
    char *names[] = {"soma", "bouton"};
    char *labels[] = {"first", "second", "third"};
    windows a, b;
    windows_fill(&a, 0, 2, 3, 5);
    windows_fill(&b, 1, 1, 2, 4);
    const char *path = tmp_path("windows.h5");
    nt_traces_writer *tw = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_traces_writer_create(path, &tw, &err), NT_OK, "%s", err.message);
    cr_assert_eq(add_windows(tw, "data/a.h5", &a, names, labels, &err), NT_OK, "%s",
                 err.message);
    cr_assert_eq(add_windows(tw, "b.wav", &b, NULL, NULL, &err), NT_OK, "%s", err.message);
    cr_assert_not(file_exists(path), "the file appeared before close");
    cr_assert_eq(nt_traces_writer_close(tw, 1, &err), NT_OK, "%s", err.message);
    cr_assert_eq(count_temporaries(), 0);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open the traces file");
    hid_t group = H5Gopen2(file, "/recordings", H5P_DEFAULT);
    H5G_info_t info;
    cr_assert_geq(H5Gget_info(group, &info), 0);
    cr_assert_eq(info.nlinks, 2, "%llu groups", (unsigned long long)info.nlinks);
    H5Gclose(group);

    check_source(file, "/recordings/000", "data/a.h5");
    check_source(file, "/recordings/001", "b.wav");
    check_windows(file, "/recordings/000", 0, &a);
    check_windows(file, "/recordings/001", 1, &b);
    check_strings(file, "/recordings/000/roi_names", (const char *const *)names, 2);
    check_strings(file, "/recordings/000/stim_labels", (const char *const *)labels, 3);
    cr_assert_eq(H5Lexists(file, "/recordings/001/roi_names", H5P_DEFAULT), 0);
    cr_assert_eq(H5Lexists(file, "/recordings/001/stim_labels", H5P_DEFAULT), 0);

    hid_t dset = H5Dopen2(file, "/recordings/000/dff_filtered", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(dset);
    cr_assert_eq(H5Pget_layout(dcpl), H5D_CHUNKED);
    hsize_t chunk[3] = {0, 0, 0};
    cr_assert_eq(H5Pget_chunk(dcpl, 3, chunk), 3);
    cr_assert(chunk[0] == 1 && chunk[1] == 3 && chunk[2] == 5,
              "chunk %llu x %llu x %llu, expected one ROI (1 x 3 x 5)",
              (unsigned long long)chunk[0], (unsigned long long)chunk[1],
              (unsigned long long)chunk[2]);
    unsigned flags, config;
    size_t n_params = 0;
    cr_assert_geq(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_DEFLATE, &flags, &n_params, NULL, 0,
                                       NULL, &config),
                  0, "dff_filtered is not deflated");
    H5Pclose(dcpl);
    H5Dclose(dset);
    H5Fclose(file);
    windows_free(&a);
    windows_free(&b);
}

Test(writer_hdf5, traces_writer_discard_leaves_no_file)
{
    windows a;
    windows_fill(&a, 0, 2, 2, 3);
    const char *path = tmp_path("discard.h5"), *kept = tmp_path("kept.h5");
    nt_traces_writer *tw = NULL;
    cr_assert_eq(nt_traces_writer_create(path, &tw, NULL), NT_OK);
    cr_assert_eq(add_windows(tw, "a", &a, NULL, NULL, NULL), NT_OK);
    cr_assert_eq(count_temporaries(), 1, "the writer works in a temporary");
    cr_assert_eq(nt_traces_writer_close(tw, 0, NULL), NT_OK);
    cr_assert_not(file_exists(path));
    cr_assert_eq(count_temporaries(), 0);

    write_file_text(kept, "previous content");
    cr_assert_eq(nt_traces_writer_create(kept, &tw, NULL), NT_OK);
    cr_assert_eq(add_windows(tw, "a", &a, NULL, NULL, NULL), NT_OK);
    cr_assert_eq(nt_traces_writer_close(tw, 0, NULL), NT_OK);
    assert_file_is(kept, "previous content");
    cr_assert_eq(count_temporaries(), 0);

    cr_assert_eq(nt_traces_writer_close(NULL, 1, NULL), NT_OK);
    windows_free(&a);
}

Test(writer_hdf5, traces_writer_missing_directory_fails)
{
    nt_traces_writer *tw = (nt_traces_writer *)&tw; /* must be reset to NULL */
    nt_error err = {0, ""};
    cr_assert_eq(nt_traces_writer_create(tmp_path("none/w.h5"), &tw, &err), NT_ERR_IO);
    cr_assert_null(tw);
    cr_assert(strstr(err.message, "No such file or directory") != NULL, "message: %s",
              err.message);
}

Test(writer_hdf5, traces_writer_invalid_add_keeps_the_writer_usable)
{
    windows a;
    windows_fill(&a, 0, 1, 2, 3);
    const char *path = tmp_path("invalid.h5");
    nt_traces_writer *tw = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_traces_writer_create(path, &tw, NULL), NT_OK);
    cr_assert_eq(nt_traces_writer_add(tw, "x", 1, 2, 3, a.t, NULL, a.f, a.stim, NULL, NULL, &err),
                 NT_ERR_INVALID);
    cr_assert_eq(nt_traces_writer_add(tw, NULL, 1, 2, 3, a.t, a.d, a.f, a.stim, NULL, NULL, &err),
                 NT_ERR_INVALID);
    cr_assert_eq(nt_traces_writer_add(tw, "x", 1, 2, 3, a.t, a.d, a.f, NULL, NULL, NULL, &err),
                 NT_ERR_INVALID);
    cr_assert_eq(add_windows(tw, "valid", &a, NULL, NULL, &err), NT_OK, "%s", err.message);
    cr_assert_eq(nt_traces_writer_close(tw, 1, &err), NT_OK, "%s", err.message);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0);
    check_source(file, "/recordings/000", "valid");
    check_windows(file, "/recordings/000", 0, &a);
    cr_assert_eq(H5Lexists(file, "/recordings/001", H5P_DEFAULT), 0);
    H5Fclose(file);
    windows_free(&a);
}

Test(writer_hdf5, traces_writer_failed_commit_removes_the_temporary)
{
    windows big;
    const char *path = tmp_path("wfull.h5");
    write_file_text(path, "previous content");
    windows_fill(&big, 0, 4, 20, 5000); /* 1.6 MB of float32 per dataset */
    for (size_t i = 0; i < 4 * 20 * 5000; i++)
        big.d[i] = noisy(i, i / 3);
    nt_traces_writer *tw = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_traces_writer_create(path, &tw, &err), NT_OK, "%s", err.message);
    cr_assert_eq(add_windows(tw, "big", &big, NULL, NULL, &err), NT_OK, "%s", err.message);

    struct rlimit saved;
    cr_redirect_stderr();
    limit_file_size(64 * 1024, &saved);
    int st = nt_traces_writer_close(tw, 1, &err);
    setrlimit(RLIMIT_FSIZE, &saved);
    fflush(stderr);
    cr_assert_eq(st, NT_ERR_IO, "status %d: %s", st, err.message);
    cr_assert(strstr(err.message, "File too large") != NULL, "message: %s", err.message);
    cr_assert_stderr_eq_str("", "something was printed");
    assert_file_is(path, "previous content");
    cr_assert_eq(count_temporaries(), 0, "the temporary was left behind");
    windows_free(&big);
}

Test(writer_hdf5, traces_writer_hdf5_failure_is_reported_quietly_and_prevents_commit)
{
    windows a;
    windows_fill(&a, 0, 1, 2, 3);
    const char *path = tmp_path("h5fail.h5");
    nt_traces_writer *tw = NULL;
    nt_error err = {0, ""};
    H5E_auto2_t func_before = NULL, func_after = NULL;
    void *data_before = NULL, *data_after = NULL;
    H5Eget_auto2(H5E_DEFAULT, &func_before, &data_before);
    cr_assert_not_null(func_before, "HDF5 has no default error printer to restore");
    cr_assert_eq(nt_traces_writer_create(path, &tw, &err), NT_OK, "%s", err.message);

    /* No samples, but a dimension HDF5 cannot represent (it means
     * "unlimited" there): HDF5 itself refuses the dataset. */
    cr_redirect_stderr();
    int st = nt_traces_writer_add(tw, "huge", SIZE_MAX, 2, 0, NULL, NULL, NULL, a.stim, NULL,
                                  NULL, &err);
    fflush(stderr);
    cr_assert_neq(st, NT_OK, "HDF5 accepted a dimension of 2^64 - 1");
    cr_assert(strstr(err.message, "/recordings/000/t_rel_s: ") == err.message &&
                  strstr(err.message, "(HDF5: ") != NULL,
              "message: %s", err.message);
    cr_assert_stderr_eq_str("", "HDF5 printed its error stack");
    H5Eget_auto2(H5E_DEFAULT, &func_after, &data_after);
    cr_assert(func_after == func_before && data_after == data_before,
              "the error printer was not restored");

    cr_assert_neq(add_windows(tw, "next", &a, NULL, NULL, &err), NT_OK,
                  "an add after a failed one succeeded");
    cr_assert_neq(nt_traces_writer_close(tw, 1, &err), NT_OK,
                  "close committed an incomplete file");
    cr_assert(strstr(err.message, "(HDF5: ") != NULL, "message: %s", err.message);
    cr_assert_not(file_exists(path));
    cr_assert_eq(count_temporaries(), 0);
    windows_free(&a);
}
