/*
 * writer_hdf5.c — writes HDF5 files: a recording in the native nirtrace
 * layout (nt_write_hdf5, read back by reader_hdf5.c), and the file of
 * processed trial windows of `nirtrace detect --traces-out` (nt_traces_writer).
 *
 * Recording layout (nt_write_hdf5):
 *
 *   /traces        [n_rois][n_frames] samples, chunked (one ROI row, at most
 *                  1 MiB per chunk), shuffle + deflate level 4. Stored as the
 *                  narrowest type that holds every sample exactly: uint16
 *                  when all are integers in [0, 65535], else int16 when all
 *                  are in [-32768, 32767], else int32 when all are within
 *                  ±2^24, else float32 (samples are float32 in memory, so
 *                  float32 loses nothing). Little-endian.
 *     rate_hz      attribute, float64 scalar: the frame rate, whenever it is
 *                  known (positive and finite)
 *   /time          [n_frames] float64 seconds from the first frame, chunked +
 *                  shuffle + deflate; only when the time base is not the
 *                  regular one, time_s[i] = i / rate_hz (within 1e-9
 *                  relative). Readers give /time precedence over rate_hz.
 *   /stim/onsets   [n_stims] float64 seconds from the first frame; only when
 *                  there are stimuli
 *   /stim/labels   [n_stims] variable-length UTF-8 strings; only when the
 *                  stimuli are labelled
 *   /rois/names    [n_rois] variable-length UTF-8 strings; only when the
 *                  ROIs are named
 *
 * Traces file layout (nt_traces_writer, `nirtrace detect --traces-out FILE.h5`):
 *
 *   /recordings/NNN  one group per analysed recording: 000, 001, ... in the
 *                    order of analysis (the order of the command line, less
 *                    the files that failed). Past 999 the names grow to four
 *                    digits and more: sort them as numbers.
 *     source         attribute, variable-length UTF-8 string: the input file
 *                    as given on the command line
 *     t_rel_s        [n_rois][n_trials][n_win] float32: time of each window
 *                    sample relative to its stimulus, s; NaN where the window
 *                    runs off either end of the recording
 *     dff            [n_rois][n_trials][n_win] float32: ΔF/F as a fraction
 *                    (0.05 = 5 %), before the low-pass
 *     dff_filtered   [n_rois][n_trials][n_win] float32: ΔF/F after the
 *                    zero-phase low-pass (what detection and measures use)
 *     stim_s         [n_trials] float64: stimulus onsets, s from the first frame
 *     roi_names      [n_rois] variable-length UTF-8 strings; only when the
 *                    recording names its ROIs
 *     stim_labels    [n_trials] variable-length UTF-8 strings; only when its
 *                    stimuli are labelled
 *   The three window datasets are chunked (one ROI, at most 1 MiB per chunk)
 *   with shuffle + deflate level 4. In h5py, f["recordings/000/dff"][r, k]
 *   is the window of ROI r, trial k.
 *
 * Method.
 *  - Atomic replacement: the file goes to a unique temporary file in the
 *    destination's directory (mkstemp, "<path>.tmp.XXXXXX", with the mode a
 *    new file would get; rename is atomic only within one file system), is
 *    synced to disk, then renamed over the destination. On any failure the
 *    temporary is removed and the destination is untouched.
 *  - HDF5 never writes to disk itself: the file is built in memory (the core
 *    driver without backing store) and we write its image into the
 *    temporary. Why: HDF5 1.10 cannot recover from a failed write at close.
 *    When H5Fclose fails (disk full, quota, file-size limit) it leaves the
 *    file ID dangling and the process crashes in HDF5's exit handler (fixed
 *    upstream in 1.14.1, HDFGroup/hdf5 PR #2496). In memory HDF5's I/O
 *    cannot fail, every disk error is a write() error of ours, and the image
 *    goes through the descriptor mkstemp opened, so the name cannot be
 *    swapped between creation and writing. The cost is the file's size in
 *    memory until it is written (for nt_write_hdf5 less than the recording
 *    already in memory; for the traces file, see struct nt_traces_writer).
 *  - Sample type: camera counts are 12- to 16-bit integers, and uint16 takes
 *    half the bytes of float32 and compresses better still; the narrowest
 *    type is taken only when it holds every sample exactly, so the reader
 *    gets back bit-identical floats (-0.0 counts as non-integer for that
 *    reason). int32 takes the bytes of float32 but compresses better for
 *    counts; beyond 2^24 a float32 is an integer only for want of fraction
 *    bits (it cannot hold every count there), so such data stay float32.
 *  - Compression: shuffle groups the bytes of equal significance, so slowly
 *    varying samples give long runs that deflate then packs; level 4 gets
 *    close to the ratio of level 9 at a fraction of its time. Chunks of at
 *    most 1 MiB fit HDF5's default chunk cache; one ROI per chunk matches
 *    reading one trace at a time.
 *  - Reproducibility: objects are created without modification times
 *    (H5Pset_obj_track_times off), so that writing the same data twice gives
 *    byte-identical files that can be compared or cached by checksum.
 *  - Errors: HDF5 prints its error stack to stderr by default; automatic
 *    printing is off for the duration of each call (the caller's handler is
 *    restored), and the innermost description on the stack becomes the
 *    detail of our message: "/traces: cannot write (HDF5: ...)".
 */
#include "writer_hdf5.h"

#include "internal.h"
#include "h5util.h"

#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest chunk, in bytes: HDF5's default chunk cache per dataset. */
#define CHUNK_BYTES ((hsize_t)1 << 20)
/* Growth step of the in-memory file. */
#define CORE_INCREMENT ((size_t)1 << 20)
#define DEFLATE_LEVEL 4
/* A time base is regular when every time_s[i] is i / rate_hz within this
 * fraction of the time (of one frame period, at frame 0). */
#define REGULAR_RTOL 1e-9


/* The caller's automatic error printing, saved while a call runs quiet. */
typedef struct h5_quiet {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

static void quiet_begin(h5_quiet *q)
{
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const h5_quiet *q)
{
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* --------------------------------------------------------- temporary file */

/* The temporary file a writer fills before renaming it into place. */
typedef struct temp_file {
    char *name; /* "<path>.tmp.XXXXXX"; NULL when there is none */
    int fd;     /* open for writing; -1 once closed */
} temp_file;

/*
 * The mode a newly created file gets: 0666 less the umask. Linux reports the
 * umask in /proc/self/status; elsewhere it can only be read by setting it
 * and setting it back, which races with other threads creating files, so
 * that is the fallback.
 */
static mode_t new_file_mode(void)
{
    unsigned mask = 0;
    int found = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        char line[256];
        while (!found && fgets(line, sizeof line, f) != NULL)
            found = sscanf(line, "Umask: %o", &mask) == 1;
        fclose(f);
    }
    if (!found) {
        mode_t m = umask(0);
        umask(m);
        mask = (unsigned)m;
    }
    return (mode_t)(0666u & ~mask);
}

/*
 * Creates the temporary file for path, "<path>.tmp.XXXXXX" in the same
 * directory, open and with the mode of a new file. A path naming an existing
 * directory, device or FIFO is refused: renaming over it would replace it.
 * On success the caller ends t with temp_commit or temp_discard.
 */
static int temp_create(const char *path, temp_file *t, nt_error *err)
{
    static const char suffix[] = ".tmp.XXXXXX";
    struct stat st;
    t->name = NULL;
    t->fd = -1;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return nt_error_set(err, NT_ERR_IO, S_ISDIR(st.st_mode) ? "is a directory"
                                                                : "is not a regular file");
    size_t len = strlen(path);
    char *name = malloc(len + sizeof suffix);
    if (name == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the temporary file name");
    memcpy(name, path, len);
    memcpy(name + len, suffix, sizeof suffix);
    int fd = mkstemp(name);
    if (fd < 0) {
        int e = errno;
        free(name);
        return nt_error_set(err, NT_ERR_IO, "cannot create the temporary file: %s", strerror(e));
    }
    if (fchmod(fd, new_file_mode()) != 0) {
        int e = errno;
        close(fd);
        unlink(name);
        free(name);
        return nt_error_set(err, NT_ERR_IO, "cannot set the mode of the temporary file: %s",
                            strerror(e));
    }
    t->name = name;
    t->fd = fd;
    return NT_OK;
}

/* Closes and removes the temporary file. Accepts one already discarded. */
static void temp_discard(temp_file *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->name != NULL)
        unlink(t->name);
    free(t->name);
    t->name = NULL;
    t->fd = -1;
}

/* Writes the file image [size] into the temporary file and syncs it to disk,
 * so that a crash after the rename cannot leave an empty file at path. */
static int temp_write(temp_file *t, const unsigned char *image, size_t size, nt_error *err)
{
    while (size > 0) {
        ssize_t n = write(t->fd, image, size < ((size_t)1 << 30) ? size : (size_t)1 << 30);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return nt_error_set(err, NT_ERR_IO, "cannot write: %s",
                                n < 0 ? strerror(errno) : "no progress");
        image += n;
        size -= (size_t)n;
    }
    if (fsync(t->fd) != 0)
        return nt_error_set(err, NT_ERR_IO, "cannot sync to disk: %s", strerror(errno));
    return NT_OK;
}

/* Closes the written temporary file and renames it over path. On failure
 * the caller still discards t. */
static int temp_commit(temp_file *t, const char *path, nt_error *err)
{
    int fd = t->fd;
    t->fd = -1;
    if (close(fd) != 0)
        return nt_error_set(err, NT_ERR_IO, "cannot write: %s", strerror(errno));
    if (rename(t->name, path) != 0)
        return nt_error_set(err, NT_ERR_IO, "cannot move the file into place: %s",
                            strerror(errno));
    free(t->name);
    t->name = NULL;
    return NT_OK;
}

/* --------------------------------------------------------- HDF5 objects */

/* Creates an HDF5 file in memory (the core driver, no backing store) into
 * *file; name only identifies it in HDF5's messages. */
static int file_create(const char *name, hid_t *file, nt_error *err)
{
    *file = H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, CORE_INCREMENT, 0) < 0) {
        int status = nt_h5_fail(err, NT_ERR_INTERNAL, "HDF5", "cannot set up an in-memory file");
        if (fapl >= 0)
            H5Pclose(fapl);
        return status;
    }
    *file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (*file < 0)
        return nt_h5_fail(err, NT_ERR_INTERNAL, "HDF5", "cannot create the file");
    return NT_OK;
}

/*
 * Finishes the in-memory file, closes it, and writes its image into the
 * temporary file t. With t NULL (the file is being discarded) only closes
 * it. *file is closed in every case.
 */
static int file_save(hid_t *file, temp_file *t, nt_error *err)
{
    int status = NT_OK;
    unsigned char *image = NULL;
    size_t size = 0;
    if (t != NULL) {
        /* H5Fget_file_image flushes too, but in HDF5 1.10.8 an image taken
         * without this flush cannot be opened ("bad object header"). */
        ssize_t n = -1;
        if (H5Fflush(*file, H5F_SCOPE_GLOBAL) >= 0)
            n = H5Fget_file_image(*file, NULL, 0);
        if (n < 0) {
            status = nt_h5_fail(err, NT_ERR_IO, "HDF5", "cannot finish the file");
            goto cleanup;
        }
        size = (size_t)n;
        image = malloc(size > 0 ? size : 1);
        if (image == NULL) {
            status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the file image (%zu bytes)",
                                  size);
            goto cleanup;
        }
        if (H5Fget_file_image(*file, image, size) != n) {
            status = nt_h5_fail(err, NT_ERR_IO, "HDF5", "cannot finish the file");
            goto cleanup;
        }
    }
cleanup:
    /* In memory, closing cannot fail on I/O; the image is already taken. */
    H5Fclose(*file);
    *file = H5I_INVALID_HID;
    H5Eclear2(H5E_DEFAULT);
    if (status == NT_OK && t != NULL)
        status = temp_write(t, image, size, err);
    free(image);
    return status;
}

/* Creates group name in loc (where: its full path, for messages) into
 * *group, without modification times. */
static int create_group(hid_t loc, const char *name, const char *where, hid_t *group,
                        nt_error *err)
{
    *group = H5I_INVALID_HID;
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0) {
        int status = nt_h5_fail(err, NT_ERR_INTERNAL, where, "cannot prepare the group");
        if (gcpl >= 0)
            H5Pclose(gcpl);
        return status;
    }
    *group = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (*group < 0)
        return nt_h5_fail(err, NT_ERR_IO, where, "cannot create the group");
    return NT_OK;
}

/* The chunk of a dataset of dims [rank] (all > 0): one row of the first
 * dimension (one ROI) when rank > 1, and of the others as much as fits in
 * CHUNK_BYTES, innermost dimension first. */
static void chunk_shape(int rank, const hsize_t *dims, size_t elem_size, hsize_t *chunk)
{
    hsize_t budget = CHUNK_BYTES / elem_size;
    for (int i = rank - 1; i >= 0; i--) {
        hsize_t c = (i == 0 && rank > 1) ? 1 : dims[i];
        if (c > budget)
            c = budget > 0 ? budget : 1;
        chunk[i] = c;
        budget /= c;
    }
}

/*
 * Creates dataset name in loc (where: its full path, for messages) with file
 * type file_type and shape dims [rank], and writes data, held in memory as
 * mem_type (HDF5 converts). compress: chunked with shuffle + deflate. An
 * empty dataset is contiguous whatever compress says: chunks need non-zero
 * dimensions.
 */
static int write_dataset(hid_t loc, const char *name, const char *where, hid_t file_type,
                         hid_t mem_type, int rank, const hsize_t *dims, int compress,
                         const void *data, nt_error *err)
{
    int status = NT_OK;
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int empty = 0;
    for (int i = 0; i < rank; i++)
        empty |= dims[i] == 0;

    space = H5Screate_simple(rank, dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (space < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0) {
        status = nt_h5_fail(err, NT_ERR_INTERNAL, where, "cannot prepare the dataset");
        goto cleanup;
    }
    if (compress && !empty) {
        hsize_t chunk[H5S_MAX_RANK];
        chunk_shape(rank, dims, H5Tget_size(file_type), chunk);
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            H5Pset_deflate(dcpl, DEFLATE_LEVEL) < 0) {
            status = nt_h5_fail(err, NT_ERR_INTERNAL, where, "cannot set up compression");
            goto cleanup;
        }
    }
    dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dset < 0) {
        status = nt_h5_fail(err, NT_ERR_IO, where, "cannot create");
        goto cleanup;
    }
    if (!empty && H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        status = nt_h5_fail(err, NT_ERR_IO, where, "cannot write");
cleanup:
    /* Closing writes the chunks still in the cache: its failure counts. */
    if (dset >= 0 && H5Dclose(dset) < 0 && status == NT_OK)
        status = nt_h5_fail(err, NT_ERR_IO, where, "cannot write");
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    return status;
}

/* Our string type, in memory and in the file: variable-length UTF-8
 * (what h5py writes for str, and reads back as str). */
static hid_t string_type(void)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type >= 0 && (H5Tset_size(type, H5T_VARIABLE) < 0 ||
                      H5Tset_cset(type, H5T_CSET_UTF8) < 0)) {
        H5Tclose(type);
        type = H5I_INVALID_HID;
    }
    return type;
}

/* Writes strs [n] as the 1-D string dataset name in loc; a NULL entry is
 * written as "". */
static int write_strings(hid_t loc, const char *name, const char *where, char *const *strs,
                         size_t n, nt_error *err)
{
    int status;
    hsize_t dims[1] = {n};
    const char **v = malloc((n > 0 ? n : 1) * sizeof *v);
    hid_t type = string_type();
    if (v == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "%s: cannot allocate %zu strings", where, n);
        goto cleanup;
    }
    if (type < 0) {
        status = nt_h5_fail(err, NT_ERR_INTERNAL, where, "cannot make the string type");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = strs[i] != NULL ? strs[i] : "";
    status = write_dataset(loc, name, where, type, type, 1, dims, 0, v, err);
cleanup:
    if (type >= 0)
        H5Tclose(type);
    free(v);
    return status;
}

/* Writes the scalar attribute name of obj (where: obj's path, for messages)
 * with file type file_type from value, held in memory as mem_type. */
static int write_attribute(hid_t obj, const char *name, const char *where, hid_t file_type,
                           hid_t mem_type, const void *value, nt_error *err)
{
    int status = NT_OK;
    char what[96];
    hid_t attr = H5I_INVALID_HID;
    hid_t space = H5Screate(H5S_SCALAR);
    snprintf(what, sizeof what, "cannot write the %s attribute", name);
    if (space < 0) {
        status = nt_h5_fail(err, NT_ERR_INTERNAL, where, what);
        goto cleanup;
    }
    attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, mem_type, value) < 0)
        status = nt_h5_fail(err, NT_ERR_IO, where, what);
cleanup:
    if (attr >= 0 && H5Aclose(attr) < 0 && status == NT_OK)
        status = nt_h5_fail(err, NT_ERR_IO, where, what);
    if (space >= 0)
        H5Sclose(space);
    return status;
}

static int write_string_attribute(hid_t obj, const char *name, const char *where,
                                  const char *value, nt_error *err)
{
    hid_t type = string_type();
    if (type < 0)
        return nt_h5_fail(err, NT_ERR_INTERNAL, where, "cannot make the string type");
    int status = write_attribute(obj, name, where, type, type, &value, err);
    H5Tclose(type);
    return status;
}

/* ------------------------------------------------------- nt_write_hdf5 */

/* The narrowest file type that holds every sample of x [n] exactly (see the
 * layout at the top of the file). */
static hid_t sample_file_type(const float *x, size_t n)
{
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v) || v != truncf(v) || (v == 0 && signbit(v)))
            return H5T_IEEE_F32LE;
        if (v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    if (lo >= 0 && hi <= 65535.0f)
        return H5T_STD_U16LE;
    if (lo >= -32768.0f && hi <= 32767.0f)
        return H5T_STD_I16LE;
    if (lo >= -16777216.0f && hi <= 16777216.0f)
        return H5T_STD_I32LE;
    return H5T_IEEE_F32LE;
}

static int rate_is_known(double rate_hz)
{
    return rate_hz > 0 && isfinite(rate_hz);
}

/* 1 when rec's time base is the one the reader rebuilds from rate_hz,
 * time_s[i] = i / rate_hz, within REGULAR_RTOL. */
static int time_is_regular(const nt_recording *rec)
{
    if (!rate_is_known(rec->rate_hz))
        return 0;
    for (size_t i = 0; i < rec->n_frames; i++) {
        double expected = (double)i / rec->rate_hz;
        double tol = REGULAR_RTOL * (double)(i + 1) / rec->rate_hz;
        if (!(fabs(rec->time_s[i] - expected) <= tol))
            return 0;
    }
    return 1;
}

/* Writes rec into the open file (every check on rec already done). */
static int write_recording(hid_t file, const nt_recording *rec, nt_error *err)
{
    hid_t traces = H5I_INVALID_HID, group = H5I_INVALID_HID;
    hsize_t dims[2] = {rec->n_rois, rec->n_frames};
    int status = write_dataset(file, "traces", "/traces",
                               sample_file_type(rec->traces, rec->n_rois * rec->n_frames),
                               H5T_NATIVE_FLOAT, 2, dims, 1, rec->traces, err);
    if (status != NT_OK)
        goto cleanup;

    int has_rate = rate_is_known(rec->rate_hz);
    if (has_rate) {
        traces = H5Oopen(file, "/traces", H5P_DEFAULT);
        if (traces < 0) {
            status = nt_h5_fail(err, NT_ERR_IO, "/traces", "cannot reopen");
            goto cleanup;
        }
        status = write_attribute(traces, "rate_hz", "/traces", H5T_IEEE_F64LE,
                                 H5T_NATIVE_DOUBLE, &rec->rate_hz, err);
        if (status != NT_OK)
            goto cleanup;
    }
    if (rec->time_s != NULL && !(has_rate && time_is_regular(rec))) {
        status = write_dataset(file, "time", "/time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1,
                               &dims[1], 1, rec->time_s, err);
        if (status != NT_OK)
            goto cleanup;
    }

    if (rec->n_stims > 0) {
        hsize_t n = rec->n_stims;
        status = create_group(file, "stim", "/stim", &group, err);
        if (status == NT_OK)
            status = write_dataset(group, "onsets", "/stim/onsets", H5T_IEEE_F64LE,
                                   H5T_NATIVE_DOUBLE, 1, &n, 0, rec->stim_s, err);
        if (status == NT_OK && rec->stim_labels != NULL)
            status = write_strings(group, "labels", "/stim/labels", rec->stim_labels,
                                   rec->n_stims, err);
        if (group >= 0)
            H5Gclose(group);
        group = H5I_INVALID_HID;
        if (status != NT_OK)
            goto cleanup;
    }
    if (rec->roi_names != NULL) {
        status = create_group(file, "rois", "/rois", &group, err);
        if (status == NT_OK)
            status = write_strings(group, "names", "/rois/names", rec->roi_names, rec->n_rois,
                                   err);
    }
cleanup:
    if (group >= 0)
        H5Gclose(group);
    if (traces >= 0)
        H5Oclose(traces);
    return status;
}

int nt_write_hdf5(const char *path, const nt_recording *rec, nt_error *err)
{
    h5_quiet quiet;
    hid_t file = H5I_INVALID_HID;
    temp_file temp;

    if (path == NULL || rec == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_write_hdf5: path and rec must not be NULL");
    if (rec->traces == NULL || rec->n_rois == 0 || rec->n_frames == 0)
        return nt_error_set(err, NT_ERR_INVALID, "recording has no samples to write");
    if (rec->n_rois > SIZE_MAX / sizeof(float) / rec->n_frames)
        return nt_error_set(err, NT_ERR_INVALID, "recording of %zu x %zu samples is too large",
                            rec->n_rois, rec->n_frames);
    if (rec->n_stims > 0 && rec->stim_s == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "recording has %zu stimuli but no onsets",
                            rec->n_stims);

    int status = temp_create(path, &temp, err);
    if (status != NT_OK)
        return status;
    quiet_begin(&quiet);
    status = file_create(temp.name, &file, err);
    if (status == NT_OK)
        status = write_recording(file, rec, err);
    if (file >= 0) {
        int saved = file_save(&file, status == NT_OK ? &temp : NULL, err);
        if (status == NT_OK)
            status = saved;
    }
    quiet_end(&quiet);
    if (status == NT_OK)
        status = temp_commit(&temp, path, err);
    temp_discard(&temp);
    return status;
}

/* ------------------------------------------------------ nt_traces_writer */

/*
 * The writer holds the file in memory until close, like nt_write_hdf5
 * (see the method at the top): its memory grows with the windows added, by
 * about the compressed size they take in the file. The temporary file is
 * created at once, so that an unwritable destination fails before any
 * analysis, and reserves the name until close.
 */
struct nt_traces_writer {
    hid_t file;
    hid_t recordings;  /* the /recordings group */
    size_t n_added;    /* groups written so far */
    int failed;        /* status of the first failed add; NT_OK while none */
    char failure[512]; /* its message */
    char *path;        /* destination */
    temp_file temp;    /* the temporary file the image goes to */
};

/* Closes w's HDF5 objects, removes its temporary file (unless committed)
 * and frees it. */
static void writer_free(nt_traces_writer *w)
{
    if (w->recordings >= 0)
        H5Gclose(w->recordings);
    if (w->file >= 0)
        file_save(&w->file, NULL, NULL);
    temp_discard(&w->temp);
    free(w->path);
    free(w);
}

int nt_traces_writer_create(const char *path, nt_traces_writer **out, nt_error *err)
{
    h5_quiet quiet;
    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_traces_writer_create: path and out must not be NULL");
    *out = NULL;
    nt_traces_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the traces writer");
    w->file = w->recordings = H5I_INVALID_HID;
    w->temp.fd = -1;
    w->path = nt_strdup(path);
    if (w->path == NULL) {
        free(w);
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the traces writer");
    }
    int status = temp_create(path, &w->temp, err);
    quiet_begin(&quiet);
    if (status == NT_OK)
        status = file_create(w->temp.name, &w->file, err);
    if (status == NT_OK)
        status = create_group(w->file, "recordings", "/recordings", &w->recordings, err);
    if (status == NT_OK)
        *out = w;
    else
        writer_free(w);
    quiet_end(&quiet);
    return status;
}

/* Writes one recording's group (arguments as nt_traces_writer_add, checked). */
static int write_windows(nt_traces_writer *w, const char *source, size_t n_rois,
                         size_t n_trials, size_t n_win, const double *t_rel_s, const double *dff,
                         const double *dff_filtered, const double *stim_s,
                         char *const *roi_names, char *const *stim_labels, nt_error *err)
{
    static const char *const names[] = {"t_rel_s", "dff", "dff_filtered"};
    const double *const data[] = {t_rel_s, dff, dff_filtered};
    char name[32], where[96];
    hsize_t dims[3] = {n_rois, n_trials, n_win};
    hsize_t n_stims = n_trials;
    hid_t group;

    snprintf(name, sizeof name, "%03zu", w->n_added);
    snprintf(where, sizeof where, "/recordings/%s", name);
    int status = create_group(w->recordings, name, where, &group, err);
    if (status != NT_OK)
        return status;
    status = write_string_attribute(group, "source", where, source, err);
    for (size_t i = 0; i < 3 && status == NT_OK; i++) {
        snprintf(where, sizeof where, "/recordings/%s/%s", name, names[i]);
        status = write_dataset(group, names[i], where, H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3,
                               dims, 1, data[i], err);
    }
    if (status == NT_OK) {
        snprintf(where, sizeof where, "/recordings/%s/stim_s", name);
        status = write_dataset(group, "stim_s", where, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1,
                               &n_stims, 0, stim_s, err);
    }
    if (status == NT_OK && roi_names != NULL) {
        snprintf(where, sizeof where, "/recordings/%s/roi_names", name);
        status = write_strings(group, "roi_names", where, roi_names, n_rois, err);
    }
    if (status == NT_OK && stim_labels != NULL) {
        snprintf(where, sizeof where, "/recordings/%s/stim_labels", name);
        status = write_strings(group, "stim_labels", where, stim_labels, n_trials, err);
    }
    if (H5Gclose(group) < 0 && status == NT_OK) {
        snprintf(where, sizeof where, "/recordings/%s", name);
        status = nt_h5_fail(err, NT_ERR_IO, where, "cannot write the group");
    }
    return status;
}

int nt_traces_writer_add(nt_traces_writer *w, const char *source, size_t n_rois,
                         size_t n_trials, size_t n_win, const double *t_rel_s, const double *dff,
                         const double *dff_filtered, const double *stim_s,
                         char *const *roi_names, char *const *stim_labels, nt_error *err)
{
    h5_quiet quiet;
    nt_error local = {NT_OK, ""};

    if (w == NULL || source == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_traces_writer_add: writer and source must not be NULL");
    if (w->failed != NT_OK)
        return nt_error_set(err, w->failed, "traces file is incomplete after an earlier "
                                            "failure (%s)", w->failure);
    int empty = n_rois == 0 || n_trials == 0 || n_win == 0;
    if (!empty && (n_trials > SIZE_MAX / sizeof(double) / n_rois ||
                   n_win > SIZE_MAX / sizeof(double) / (n_rois * n_trials)))
        return nt_error_set(err, NT_ERR_INVALID, "%zu x %zu x %zu window samples are too many",
                            n_rois, n_trials, n_win);
    if (!empty && (t_rel_s == NULL || dff == NULL || dff_filtered == NULL))
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_traces_writer_add: t_rel_s, dff and dff_filtered must not be NULL");
    if (n_trials > 0 && stim_s == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_traces_writer_add: stim_s must not be NULL");

    quiet_begin(&quiet);
    int status = write_windows(w, source, n_rois, n_trials, n_win, t_rel_s, dff, dff_filtered,
                               stim_s, roi_names, stim_labels, &local);
    quiet_end(&quiet);
    if (status != NT_OK) {
        w->failed = status;
        snprintf(w->failure, sizeof w->failure, "%s", local.message);
        if (err != NULL)
            *err = local;
        return status;
    }
    w->n_added++;
    return NT_OK;
}

int nt_traces_writer_close(nt_traces_writer *w, int commit, nt_error *err)
{
    h5_quiet quiet;
    int status = NT_OK;
    if (w == NULL)
        return NT_OK;
    quiet_begin(&quiet);
    if (commit && w->failed != NT_OK)
        status = nt_error_set(err, w->failed, "not written: an earlier write failed (%s)",
                              w->failure);
    if (commit && status == NT_OK) {
        if (H5Gclose(w->recordings) < 0)
            status = nt_h5_fail(err, NT_ERR_IO, "/recordings", "cannot write the group");
        w->recordings = H5I_INVALID_HID;
        int saved = file_save(&w->file, status == NT_OK ? &w->temp : NULL, err);
        if (status == NT_OK)
            status = saved;
        if (status == NT_OK)
            status = temp_commit(&w->temp, w->path, err);
    }
    writer_free(w);
    quiet_end(&quiet);
    return commit ? status : NT_OK;
}
