/*
 * reader.c — opens a recording file and hands it to the reader of its
 * format, chosen from the content rather than the file name (a recording
 * renamed .dat is still HDF5).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/*
 * Looks for the HDF5 signature in the open file fd of size bytes. HDF5 puts
 * its superblock at offset 0, or after a user block at 512, 1024, 2048, ...
 * (any power of two from 512), and searches those places in that order;
 * so do we. *found is 1 when the signature is there.
 */
static int find_hdf5_signature(int fd, off_t size, int *found, nt_error *err)
{
    *found = 0;
    for (off_t offset = 0; offset <= size - (off_t)sizeof hdf5_signature;
         offset = offset == 0 ? 512 : offset * 2) {
        unsigned char head[sizeof hdf5_signature];
        ssize_t got = pread(fd, head, sizeof head, offset);
        if (got < 0)
            return nt_error_set(err, NT_ERR_IO, "cannot read: %s", strerror(errno));
        if ((size_t)got == sizeof head && memcmp(head, hdf5_signature, sizeof head) == 0) {
            *found = 1;
            break;
        }
        if (offset > size / 2)
            break;
    }
    return NT_OK;
}

/* Magic numbers of the containers libsndfile reads that a recording rig
 * writes: WAV (RIFF/RIFX), RF64, Wave64 ("riff" GUID), AIFF/AIFC (FORM),
 * FLAC, CAF, Sun/NeXT AU, Ogg. */
static int is_sound(const unsigned char *h, size_t n)
{
    static const char *const magics[] = {"RIFF", "RIFX", "RF64", "riff", "FORM",
                                         "fLaC", "caff", ".snd", "OggS"};
    if (n < 4)
        return 0;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (memcmp(h, magics[i], 4) == 0)
            return 1;
    return 0;
}

/* Text when the head has no NUL byte and few control characters other
 * than tab, CR and LF (UTF-8 bytes >= 0x80 are allowed: names, µ). */
static int is_text(const unsigned char *h, size_t n)
{
    size_t control = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == 0)
            return 0;
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\r' && h[i] != '\n')
            control++;
    }
    return control * 100 <= n;
}

enum format { FORMAT_UNKNOWN, FORMAT_HDF5, FORMAT_SOUND, FORMAT_TEXT };

/* NT_OK when st is a regular file, else the reason (a directory, a FIFO or
 * a device is not a recording, and a reader would wait on a FIFO). */
static int check_regular(const struct stat *st, nt_error *err)
{
    if (S_ISDIR(st->st_mode))
        return nt_error_set(err, NT_ERR_IO, "is a directory");
    if (!S_ISREG(st->st_mode))
        return nt_error_set(err, NT_ERR_IO, "is not a regular file");
    return NT_OK;
}

int nt_stat_regular(const char *path, long long *size, nt_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
    *size = (long long)st.st_size;
    return check_regular(&st, err);
}

static int sniff(const char *path, int *format, nt_error *err)
{
    struct stat st;
    int found = 0, status = NT_OK;
    *format = FORMAT_UNKNOWN;
    /* O_NONBLOCK: opening a FIFO for reading must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        status = nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
        goto cleanup;
    }
    if ((status = check_regular(&st, err)) != NT_OK)
        goto cleanup;
    if (st.st_size == 0) {
        status = nt_error_set(err, NT_ERR_FORMAT, "file is empty");
        goto cleanup;
    }
    status = find_hdf5_signature(fd, st.st_size, &found, err);
    if (status != NT_OK)
        goto cleanup;
    if (found) {
        *format = FORMAT_HDF5;
        goto cleanup;
    }
    unsigned char head[4096];
    ssize_t got = pread(fd, head, sizeof head, 0);
    if (got < 0) {
        status = nt_error_set(err, NT_ERR_IO, "cannot read: %s", strerror(errno));
        goto cleanup;
    }
    if (is_sound(head, (size_t)got))
        *format = FORMAT_SOUND;
    else if (is_text(head, (size_t)got))
        *format = FORMAT_TEXT;
    else
        status = nt_error_set(err, NT_ERR_FORMAT,
                              "not a recognised recording format (expected HDF5 or NWB, "
                              "WAV/FLAC/AIFF/CAF/RF64/W64 audio, or CSV/TSV text)");
cleanup:
    close(fd);
    return status;
}

/*
 * A path "FILE.h5:/group/data" names a dataset inside a file. It is split
 * only when the whole path does not exist as a file, at the last ":/".
 * Returns a new string with the file part (caller frees) and sets *dataset
 * to the part from the '/' on (inside path), or returns NULL when path is
 * not of that form.
 */
static char *split_dataset_path(const char *path, const char **dataset)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return NULL;
    const char *sep = NULL;
    for (const char *p = strstr(path, ":/"); p != NULL; p = strstr(p + 1, ":/"))
        sep = p;
    if (sep == NULL || sep == path)
        return NULL;
    size_t len = (size_t)(sep - path);
    char *file = malloc(len + 1);
    if (file == NULL)
        return NULL;
    memcpy(file, path, len);
    file[len] = '\0';
    *dataset = sep + 1;
    return file;
}

int nt_recording_read(const char *path, const nt_read_options *opts, nt_recording **out,
                      nt_error *err)
{
    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_recording_read: path and out must not be NULL");
    *out = NULL;
    nt_read_options local;
    if (opts != NULL)
        local = *opts;
    else
        nt_read_options_default(&local);
    const char *dataset = NULL;
    char *file = split_dataset_path(path, &dataset);
    if (file != NULL) {
        local.dataset = dataset;
        path = file;
    }
    int format, status = sniff(path, &format, err);
    if (status == NT_OK) {
        switch (format) {
        case FORMAT_HDF5: status = nt_read_hdf5(path, &local, out, err); break;
        case FORMAT_SOUND: status = nt_read_sndfile(path, &local, out, err); break;
        default:
            status = nt_read_text(path, &local, out, err);
            /* Any file of text lands here: say how it was read, so that a
             * stray notes file is not mistaken for a broken table. */
            if (status == NT_ERR_FORMAT && err != NULL) {
                char detail[sizeof err->message];
                memcpy(detail, err->message, sizeof detail);
                nt_error_set(err, status, "not HDF5 or audio; read as CSV/TSV text: %s", detail);
            }
            break;
        }
    }
    free(file);
    return status;
}
