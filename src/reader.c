/*
 * reader.c — opens a recording file and hands it to the reader of its
 * format, chosen from the content rather than the file name (a recording
 * renamed .dat is still HDF5).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
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

int nt_recording_read(const char *path, const nt_read_options *opts, nt_recording **out,
                      nt_error *err)
{
    struct stat st;
    int found = 0, status;

    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_recording_read: path and out must not be NULL");
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO for reading must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        status = nt_error_set(err, NT_ERR_IO, "cannot open: %s", strerror(errno));
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        status = nt_error_set(err, NT_ERR_IO, "is a directory");
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        status = nt_error_set(err, NT_ERR_IO, "is not a regular file");
        goto cleanup;
    }
    if (st.st_size == 0) {
        status = nt_error_set(err, NT_ERR_FORMAT, "file is empty");
        goto cleanup;
    }
    status = find_hdf5_signature(fd, st.st_size, &found, err);
    if (status == NT_OK && !found)
        status = nt_error_set(err, NT_ERR_FORMAT,
                              "not a recognised recording format (expected HDF5)");
cleanup:
    close(fd);
    if (status != NT_OK)
        return status;
    return nt_read_hdf5(path, opts, out, err);
}
