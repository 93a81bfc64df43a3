/*
 * h5floor.c — the benchmark floor: the least any HDF5 tool must do.
 *
 * For each FILE on the command line: open it, read all of /traces into a
 * float buffer with one H5Dread (HDF5 converts the stored type and decodes
 * any filters), free the buffer, close the file. Nothing is analysed and
 * nothing is printed on success. scripts/bench times nirtrace against this.
 *
 * A file without /traces but with a camera movie /movie [frames][height]
 * [width] is read in slabs of whole frames (about 16 MiB, whole chunks in
 * depth) into one reused buffer of the movie's own type: the least any tool
 * that looks at every pixel must do (no conversion, and no buffer the size
 * of the movie to fault in).
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

#define MOVIE_SLAB_BYTES ((size_t)16 << 20)

/* Reads the movie dset [dims 3] slab by slab into one buffer of its native
 * type. Returns 0, or 1 with *what set. */
static int read_movie(hid_t dset, hid_t space, const hsize_t *dims, const char **what)
{
    int status = 1;
    hid_t stored = H5I_INVALID_HID, type = H5I_INVALID_HID, mem_space = H5I_INVALID_HID;
    hid_t dcpl = H5I_INVALID_HID;
    void *buf = NULL;
    hsize_t chunk[3] = {1, 1, 1};
    *what = "cannot read the type of /movie";
    stored = H5Dget_type(dset);
    type = stored >= 0 ? H5Tget_native_type(stored, H5T_DIR_ASCEND) : H5I_INVALID_HID;
    dcpl = H5Dget_create_plist(dset);
    if (type < 0 || dcpl < 0)
        goto cleanup;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 3, chunk) != 3)
        goto cleanup;
    size_t frame = H5Tget_size(type) * (size_t)dims[1] * (size_t)dims[2];
    hsize_t depth = chunk[0] * (MOVIE_SLAB_BYTES / (frame * chunk[0]) > 0
                                    ? MOVIE_SLAB_BYTES / (frame * chunk[0]) : 1);
    if (depth > dims[0])
        depth = dims[0] > 0 ? dims[0] : 1;
    *what = "out of memory";
    buf = malloc((size_t)depth * frame > 0 ? (size_t)depth * frame : 1);
    if (buf == NULL)
        goto cleanup;
    *what = "cannot read /movie";
    for (hsize_t f = 0; f < dims[0]; f += depth) {
        hsize_t start[3] = {f, 0, 0};
        hsize_t count[3] = {dims[0] - f < depth ? dims[0] - f : depth, dims[1], dims[2]};
        mem_space = H5Screate_simple(3, count, NULL);
        if (mem_space < 0 ||
            H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(dset, type, mem_space, space, H5P_DEFAULT, buf) < 0)
            goto cleanup;
        H5Sclose(mem_space);
        mem_space = H5I_INVALID_HID;
    }
    status = 0;
cleanup:
    free(buf);
    if (mem_space >= 0)
        H5Sclose(mem_space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (type >= 0)
        H5Tclose(type);
    if (stored >= 0)
        H5Tclose(stored);
    return status;
}

/* Reads /traces (else /movie) of path and frees what it read. Returns 0, or
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
    if (H5Lexists(file, "/traces", H5P_DEFAULT) <= 0 &&
        H5Lexists(file, "/movie", H5P_DEFAULT) > 0) {
        what = "cannot open /movie";
        dset = H5Dopen2(file, "/movie", H5P_DEFAULT);
        if (dset < 0)
            goto cleanup;
        what = "cannot read the shape of /movie";
        space = H5Dget_space(dset);
        if (space < 0 || H5Sget_simple_extent_ndims(space) != 3 ||
            H5Sget_simple_extent_dims(space, dims, NULL) != 3)
            goto cleanup;
        status = read_movie(dset, space, dims, &what);
        goto cleanup;
    }
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
