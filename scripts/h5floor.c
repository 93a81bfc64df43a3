/*
 * h5floor.c — the benchmark floor: the least any HDF5 tool must do.
 *
 * For each FILE on the command line: open it, read all of /traces into a
 * float buffer with one H5Dread (HDF5 converts the stored type and decodes
 * any filters), free the buffer, close the file. Nothing is analysed and
 * nothing is printed on success. scripts/bench times nirtrace against this.
 *
 *   usage: h5floor FILE.h5...
 *   exit:  0 every file read; 1 a file could not be read (message on
 *          stderr as "h5floor: FILE: message", the remaining files are
 *          skipped); 2 no FILE given
 *
 * Build: cc -O2 -std=c11 $(pkg-config --cflags hdf5-serial) scripts/h5floor.c \
 *            $(pkg-config --libs hdf5-serial) -o build/h5floor
 */
#include <hdf5.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads /traces of path into a new float buffer and frees it. Returns 0, or
 * 1 after printing why not. */
static int read_traces(const char *path)
{
    int status = 1;
    const char *what = "cannot open the file";
    hid_t file = H5I_INVALID_HID, dset = H5I_INVALID_HID, space = H5I_INVALID_HID;
    float *samples = NULL;
    hsize_t dims[H5S_MAX_RANK];
    size_t n = 1;
    int rank;

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        goto cleanup;
    what = "cannot open /traces";
    dset = H5Dopen2(file, "/traces", H5P_DEFAULT);
    if (dset < 0)
        goto cleanup;
    what = "cannot read the shape of /traces";
    space = H5Dget_space(dset);
    if (space < 0)
        goto cleanup;
    rank = H5Sget_simple_extent_dims(space, dims, NULL);
    if (rank < 0)
        goto cleanup;
    what = "/traces is too large for memory";
    for (int i = 0; i < rank; i++) {
        if (dims[i] != 0 && n > SIZE_MAX / sizeof(float) / dims[i])
            goto cleanup;
        n *= (size_t)dims[i];
    }
    what = "out of memory";
    samples = malloc(n > 0 ? n * sizeof(float) : 1);
    if (samples == NULL)
        goto cleanup;
    what = "cannot read /traces";
    if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, samples) < 0)
        goto cleanup;
    status = 0;
cleanup:
    if (status != 0)
        fprintf(stderr, "h5floor: %s: %s\n", path, what);
    free(samples);
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0)
        H5Dclose(dset);
    if (file >= 0)
        H5Fclose(file);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: h5floor FILE.h5...\n");
        return 2;
    }
    /* Our own one-line messages replace HDF5's error stack. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    for (int i = 1; i < argc; i++) {
        if (read_traces(argv[i]) != 0)
            return 1;
    }
    return 0;
}
