/*
 * reader_movie.c — reads a camera movie (an HDF5 dataset [frames][height]
 * [width] of pixels) as the traces of grid ROIs: square tiles of grid_px
 * pixels, one ROI per whole tile, each trace the mean of its tile's pixels
 * per frame (the grid analysis labs run on nanosensor movies).
 *
 * Method. The movie is never held in memory: it is read block by block,
 * each block a hyperslab of whole chunks (of whole frames, or rows of
 * frames, when the dataset is not chunked), and every pixel of a block is
 * added to the sum of its tile in that frame. Sums are accumulated for one
 * slab of frames at a time (the frame depth of a block), in float64 (exact
 * for integer pixels: a 15 x 15 tile of uint16 sums to less than 2^24; for
 * int32 pixels below 2^53), and the slab's means are then written into the
 * ROI-major traces. Memory: the traces, one block of pixels in their stored
 * type (about SLAB_BYTES, at least one chunk) and the slab's sums.
 *
 * Blocks follow chunk boundaries so that every chunk is decoded once, and
 * are filled across (width), then down (height), then in depth (frames),
 * which makes the common layouts one read per slab: a contiguous movie or
 * one chunked by frames is read in slabs of whole frames. Pixels are read in
 * their own type (HDF5 converts nothing but the byte order), and summed per
 * run of a tile row with the run length known, so the inner loop is a plain
 * sum that the compiler vectorises.
 *
 * Edges: tiles that would cross the right or bottom edge are dropped, so
 * every ROI averages the same number of pixels (same noise, comparable
 * amplitudes and responding fractions); those pixels are not read when
 * whole chunks or rows can be skipped.
 */
#include "h5util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Target size of one block of pixels, in bytes: at most SLAB_BYTES, less
 * when the memory limit leaves less room, never under MIN_SLAB_BYTES. */
#define SLAB_BYTES ((hsize_t)16 << 20)
#define MIN_SLAB_BYTES ((hsize_t)64 << 10)
/* Largest tile side: a band of a tile's rows then sums exactly in the
 * 32-bit column sums of 16-bit pixels. */
#define MAX_GRID_PX 65535u
/* Most chunks one H5Dread may touch (HDF5 keeps a record for each; see
 * h5util.c). */
#define MAX_CHUNKS_PER_READ 4096u

/* The stored pixel types, read as themselves. */
enum pixel_kind { PX_I8, PX_U8, PX_I16, PX_U16, PX_I32, PX_U32, PX_F32, PX_F64 };

/* How the movie is cut and read: tiles, the region they cover, and the
 * block shape (frames, rows, columns). */
typedef struct movie_plan {
    size_t grid;                 /* tile side, px */
    size_t tile_rows, tile_cols; /* whole tiles down and across */
    size_t n_tiles;
    hsize_t dims[3];             /* frames, height, width */
    hsize_t extent[3];           /* what is read: all frames, the rows and columns of whole
                                  * tiles (whole rows when not chunked) */
    hsize_t block[3];            /* frames, rows, columns of one read */
    int kind;                    /* enum pixel_kind */
    size_t elem;                 /* bytes per pixel in memory */
    hid_t mem_type;              /* native type of kind (not to be closed) */
    size_t buf_bytes;            /* one block */
    size_t acc_bytes;            /* tile sums of one slab: block[0] x n_tiles float64, and
                                  * the column sums of one band: block[2] x 8 bytes */
} movie_plan;

static int pixel_kind(hid_t type, hid_t *mem_type, size_t *elem)
{
    size_t size = H5Tget_size(type);
    int is_signed = H5Tget_sign(type) != H5T_SGN_NONE;
    *elem = size;
    if (H5Tget_class(type) == H5T_FLOAT) {
        *mem_type = size == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
        return size == 4 ? PX_F32 : PX_F64;
    }
    switch (size) {
    case 1: *mem_type = is_signed ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8;
        return is_signed ? PX_I8 : PX_U8;
    case 2: *mem_type = is_signed ? H5T_NATIVE_INT16 : H5T_NATIVE_UINT16;
        return is_signed ? PX_I16 : PX_U16;
    default: *mem_type = is_signed ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32;
        return is_signed ? PX_I32 : PX_U32;
    }
}

static hsize_t min_h(hsize_t a, hsize_t b)
{
    return a < b ? a : b;
}

static hsize_t ceil_div(hsize_t a, hsize_t b)
{
    return a / b + (a % b != 0);
}

/* The memory a movie's recording keeps: its traces and ROI names (a
 * pointer and a short string each). Saturates rather than wraps. */
static size_t kept_bytes(size_t n_tiles, size_t n_frames)
{
    size_t names = n_tiles * (sizeof(char *) + 16);
    if (n_frames != 0 && n_tiles > (SIZE_MAX - names) / sizeof(float) / n_frames)
        return SIZE_MAX;
    return n_tiles * n_frames * sizeof(float) + names;
}

/*
 * Fills p from the movie's shape, type and storage: the grid, and blocks of
 * whole storage units (chunks, or single pixels when not chunked) of about
 * the target size (half the room the kept memory leaves under the limit,
 * within [MIN_SLAB_BYTES, SLAB_BYTES]), widest first. The caller has
 * checked that dims describe at least one whole tile and at most
 * NT_H5_MAX_LIST_ENTRIES tiles.
 */
static int make_plan(const nt_h5ctx *c, const nt_h5_movie *m, hid_t type, movie_plan *p)
{
    int status = NT_OK;
    hsize_t unit[3] = {1, 1, 1};
    memset(p, 0, sizeof *p);
    p->grid = m->grid_px != 0 ? m->grid_px : NT_GRID_PX_DEFAULT;
    memcpy(p->dims, m->dims, sizeof p->dims);
    p->tile_rows = (size_t)(m->dims[1] / p->grid);
    p->tile_cols = (size_t)(m->dims[2] / p->grid);
    p->n_tiles = p->tile_rows * p->tile_cols;
    p->kind = pixel_kind(type, &p->mem_type, &p->elem);
    size_t kept = kept_bytes(p->n_tiles, (size_t)m->dims[0]);
    hsize_t target = c->max_bytes > kept ? (hsize_t)(c->max_bytes - kept) / 2 : 0;
    target = target < MIN_SLAB_BYTES ? MIN_SLAB_BYTES : min_h(target, SLAB_BYTES);

    hid_t dcpl = H5Dget_create_plist(m->dset);
    if (dcpl < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the storage properties");
    int chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
    if (chunked && (H5Pget_chunk(dcpl, 3, unit) != 3 || unit[0] == 0 || unit[1] == 0 ||
                    unit[2] == 0)) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the chunk shape");
        goto cleanup;
    }
    p->extent[0] = m->dims[0];
    p->extent[1] = (hsize_t)p->tile_rows * p->grid;
    /* Not chunked: whole rows, so that a slab of frames is one run of the
     * file (the right-edge pixels cost less to read than to skip). */
    p->extent[2] = chunked ? (hsize_t)p->tile_cols * p->grid : m->dims[2];
    for (int d = 0; d < 3; d++)
        unit[d] = min_h(unit[d], p->extent[d] > 0 ? p->extent[d] : 1);
    /* A unit is one pixel or at most one chunk, which HDF5 keeps under
     * 4 GiB: the product cannot wrap; nor can a block, which is at most
     * max(target, one unit) bytes. */
    hsize_t unit_bytes = unit[0] * unit[1] * unit[2] * p->elem;
    hsize_t max_units = unit_bytes < target ? target / unit_bytes : 1;
    if (chunked && max_units > MAX_CHUNKS_PER_READ)
        max_units = MAX_CHUNKS_PER_READ;
    hsize_t across = ceil_div(p->extent[2], unit[2]);
    hsize_t down = ceil_div(p->extent[1], unit[1]);
    hsize_t deep = p->extent[0] > 0 ? ceil_div(p->extent[0], unit[0]) : 1;
    hsize_t k2 = min_h(across, max_units);
    hsize_t k1 = min_h(down, max_units / k2 > 0 ? max_units / k2 : 1);
    hsize_t k0 = min_h(deep, max_units / (k2 * k1) > 0 ? max_units / (k2 * k1) : 1);
    p->block[0] = k0 * unit[0];
    p->block[1] = k1 * unit[1];
    p->block[2] = k2 * unit[2];
    hsize_t buf = p->block[0] * p->block[1] * p->block[2];
    p->buf_bytes = buf > SIZE_MAX / p->elem ? SIZE_MAX : (size_t)buf * p->elem;
    /* block[0] <= frames, and n_tiles x frames x 16 bytes was checked to be
     * addressable; block[2] pixels fit in the block: no wrap. */
    p->acc_bytes = ((size_t)p->block[0] * p->n_tiles + (size_t)p->block[2]) * sizeof(double);
cleanup:
    H5Pclose(dcpl);
    return status;
}

/* The ROI names "r%03zuc%03zu" of the tiles, row-major. */
static int make_names(const nt_h5ctx *c, const nt_h5_movie *m, const movie_plan *p,
                      nt_recording *rec)
{
    char **names = calloc(p->n_tiles, sizeof *names);
    if (names == NULL)
        return nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %zu ROI names", m->where,
                            p->n_tiles);
    for (size_t r = 0; r < p->tile_rows; r++) {
        for (size_t col = 0; col < p->tile_cols; col++) {
            char name[48];
            snprintf(name, sizeof name, "r%03zuc%03zu", r, col);
            names[r * p->tile_cols + col] = nt_strdup(name);
            if (names[r * p->tile_cols + col] == NULL) {
                nt_strings_free(names, p->n_tiles);
                return nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate ROI names",
                                    m->where);
            }
        }
    }
    rec->roi_names = names;
    return NT_OK;
}

int nt_h5_movie_prepare(const nt_h5ctx *c, const nt_h5_movie *m, int header_only,
                        nt_recording *rec)
{
    int status = NT_OK;
    movie_plan p;
    size_t grid = m->grid_px != 0 ? m->grid_px : NT_GRID_PX_DEFAULT;
    hsize_t frames = m->dims[0], height = m->dims[1], width = m->dims[2];
    char shape[96];
    snprintf(shape, sizeof shape, "%llu frames of %llu x %llu px", (unsigned long long)frames,
             (unsigned long long)height, (unsigned long long)width);

    hid_t type;
    status = nt_h5_sample_type(c, m->dset, m->where, "pixel", rec, &type);
    if (status != NT_OK)
        return status;
    if (grid > MAX_GRID_PX) {
        status = nt_error_set(c->err, NT_ERR_INVALID, "grid of %zu px: at most %u px", grid,
                              MAX_GRID_PX);
        goto cleanup;
    }
    if (height < grid || width < grid) {
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "%s: movie of %s holds no whole %zu px tile (use a smaller grid)",
                              m->where, shape, grid);
        goto cleanup;
    }
    hsize_t tile_rows = height / grid, tile_cols = width / grid;
    if (tile_rows > NT_H5_MAX_LIST_ENTRIES / tile_cols) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: movie of %s cut into %zu px tiles gives %llu x %llu ROIs, "
                              "more than the limit of %u (use a larger grid)",
                              m->where, shape, grid, (unsigned long long)tile_rows,
                              (unsigned long long)tile_cols, NT_H5_MAX_LIST_ENTRIES);
        goto cleanup;
    }
    size_t n_tiles = (size_t)(tile_rows * tile_cols);
    size_t elem = H5Tget_size(type);
    /* The stored pixels, for the check against the file: frames x height x
     * width x elem must not wrap. */
    if (height > HSIZE_UNDEF / width || (frames != 0 && height * width > HSIZE_UNDEF / frames) ||
        frames * height * width > HSIZE_UNDEF / elem ||
        (frames != 0 && n_tiles > SIZE_MAX / (2 * sizeof(double)) / frames)) {
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares a movie of %s, more than this computer can address",
                              m->where, shape);
        goto cleanup;
    }
    status = make_plan(c, m, type, &p);
    if (status != NT_OK)
        goto cleanup;
    if (!header_only) {
        /* The traces and ROI names, one block of pixels and the tile sums of
         * one slab. */
        size_t traces = n_tiles * (size_t)frames * sizeof(float);
        size_t need = kept_bytes(n_tiles, (size_t)frames);
        const size_t parts[] = {p.buf_bytes, p.acc_bytes};
        for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
            need = parts[i] > SIZE_MAX - need ? SIZE_MAX : need + parts[i];
        if (need > c->max_bytes) {
            char total[32], tr[32], work[32], limit[32];
            nt_format_bytes((double)need, total, sizeof total);
            nt_format_bytes((double)traces, tr, sizeof tr);
            nt_format_bytes((double)need - (double)traces, work, sizeof work);
            nt_format_bytes((double)c->max_bytes, limit, sizeof limit);
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                                  "%s: movie of %s in %zu px tiles needs %s (traces %s, reading "
                                  "%s), more than the %s limit",
                                  m->where, shape, grid, total, tr, work, limit);
            goto cleanup;
        }
    }
    rec->n_rois = n_tiles;
    rec->n_frames = (size_t)frames;
    rec->movie.height_px = (size_t)height;
    rec->movie.width_px = (size_t)width;
    rec->movie.grid_px = grid;
    rec->movie.tile_rows = (size_t)tile_rows;
    rec->movie.tile_cols = (size_t)tile_cols;
    status = nt_h5_describe_storage(c, m->dset, m->where, rec->storage, sizeof rec->storage,
                                    !header_only);
    if (status == NT_OK)
        status = nt_h5_check_storage(c, m->dset, m->where, frames * height * width, elem);
    if (status == NT_OK)
        status = make_names(c, m, &p, rec);
cleanup:
    H5Tclose(type);
    return status;
}

/*
 * Adds the pixels of one block (buf [n0][n1][n2], its first pixel at the
 * slab's first frame, row y0, column x0) to the tile sums acc [slab frames]
 * [n_tiles]. Pixels outside the whole tiles are skipped. For each band of
 * rows that lies in one tile row, the rows are first added column by column
 * into col [n2] (a plain vector add over the row: the bulk of the work),
 * then each tile's run of columns is added into its sum. col_t holds a
 * column of one band exactly (uint32 for 16-bit pixels: at most 65535 rows
 * of 65535); integer runs are summed exactly in 64 bits.
 */
/* Columns added per step of a fixed count, which the compiler turns into
 * vector adds at -O2. */
#define COL_STEP 16

#define DEFINE_ACCUMULATE(name, pixel_t, col_t, sum_t)                                           \
    static void name(const void *buf, const movie_plan *p, hsize_t y0, hsize_t x0,              \
                     const hsize_t *n, double *acc, void *col_buf)                              \
    {                                                                                           \
        const pixel_t *px = buf;                                                                \
        col_t *col = col_buf;                                                                   \
        size_t grid = p->grid, ys = (size_t)y0, xs = (size_t)x0;                                \
        size_t y_end = (size_t)min_h(y0 + n[1], (hsize_t)p->tile_rows * grid);                  \
        size_t x_end = (size_t)min_h(x0 + n[2], (hsize_t)p->tile_cols * grid);                  \
        if (x_end <= xs)                                                                        \
            return;                                                                             \
        size_t used = x_end - xs;                                                               \
        for (size_t i = 0; i < (size_t)n[0]; i++) {                                             \
            double *tile = acc + i * p->n_tiles;                                                \
            for (size_t y = ys; y < y_end;) {                                                   \
                size_t ty = y / grid;                                                           \
                size_t band_end = (ty + 1) * grid < y_end ? (ty + 1) * grid : y_end;            \
                const pixel_t *row = px + (i * (size_t)n[1] + (y - ys)) * (size_t)n[2];         \
                for (size_t k = 0; k < used; k++)                                               \
                    col[k] = (col_t)row[k];                                                     \
                for (y++; y < band_end; y++) {                                                  \
                    row += n[2];                                                                \
                    size_t k = 0;                                                               \
                    for (; k + COL_STEP <= used; k += COL_STEP)                                 \
                        for (size_t j = 0; j < COL_STEP; j++)                                   \
                            col[k + j] += (col_t)row[k + j];                                    \
                    for (; k < used; k++)                                                       \
                        col[k] += (col_t)row[k];                                                \
                }                                                                               \
                double *sums = tile + ty * p->tile_cols;                                        \
                for (size_t x = xs; x < x_end;) {                                               \
                    size_t tx = x / grid;                                                       \
                    size_t end = (tx + 1) * grid < x_end ? (tx + 1) * grid : x_end;             \
                    sum_t s = 0;                                                                \
                    for (size_t k = x - xs; k < end - xs; k++)                                  \
                        s += (sum_t)col[k];                                                     \
                    sums[tx] += (double)s;                                                      \
                    x = end;                                                                    \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_ACCUMULATE(accumulate_i8, int8_t, int32_t, int64_t)
DEFINE_ACCUMULATE(accumulate_u8, uint8_t, uint32_t, int64_t)
DEFINE_ACCUMULATE(accumulate_i16, int16_t, int32_t, int64_t)
DEFINE_ACCUMULATE(accumulate_u16, uint16_t, uint32_t, int64_t)
DEFINE_ACCUMULATE(accumulate_i32, int32_t, int64_t, int64_t)
DEFINE_ACCUMULATE(accumulate_u32, uint32_t, int64_t, int64_t)
DEFINE_ACCUMULATE(accumulate_f32, float, double, double)
DEFINE_ACCUMULATE(accumulate_f64, double, double, double)

typedef void (*accumulate_fn)(const void *, const movie_plan *, hsize_t, hsize_t,
                              const hsize_t *, double *, void *);

static const accumulate_fn accumulators[] = {
    [PX_I8] = accumulate_i8,   [PX_U8] = accumulate_u8,   [PX_I16] = accumulate_i16,
    [PX_U16] = accumulate_u16, [PX_I32] = accumulate_i32, [PX_U32] = accumulate_u32,
    [PX_F32] = accumulate_f32, [PX_F64] = accumulate_f64,
};

int nt_h5_movie_read(const nt_h5ctx *c, const nt_h5_movie *m, nt_recording *rec)
{
    int status = NT_OK;
    movie_plan p;
    void *buf = NULL, *col = NULL;
    double *acc = NULL;
    hid_t file_space = H5I_INVALID_HID, mem_space = H5I_INVALID_HID;
    size_t n_frames = rec->n_frames;
    if (n_frames == 0 || rec->n_rois == 0)
        return NT_OK;
    hid_t type = H5Dget_type(m->dset);
    if (type < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the datatype");
    status = make_plan(c, m, type, &p);
    H5Tclose(type);
    if (status != NT_OK)
        return status;
    if (p.n_tiles != rec->n_rois)
        return nt_error_set(c->err, NT_ERR_INTERNAL, "%s: the grid changed since it was checked",
                            m->where);
    accumulate_fn accumulate = accumulators[p.kind];
    double pixels_per_tile = (double)p.grid * (double)p.grid;

    rec->traces = malloc(p.n_tiles * n_frames * sizeof *rec->traces);
    buf = malloc(p.buf_bytes);
    acc = malloc(p.acc_bytes);
    if (acc != NULL)
        col = acc + (size_t)p.block[0] * p.n_tiles;
    if (rec->traces == NULL || buf == NULL || acc == NULL) {
        char need[32];
        nt_format_bytes((double)p.n_tiles * (double)n_frames * sizeof(float) +
                            (double)p.buf_bytes + (double)p.acc_bytes,
                        need, sizeof need);
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate %s", m->where, need);
        goto cleanup;
    }
    file_space = H5Dget_space(m->dset);
    if (file_space < 0) {
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read the dataspace");
        goto cleanup;
    }
    for (hsize_t f0 = 0; f0 < p.extent[0]; f0 += p.block[0]) {
        hsize_t nf = min_h(p.block[0], p.extent[0] - f0);
        memset(acc, 0, (size_t)nf * p.n_tiles * sizeof *acc);
        for (hsize_t y0 = 0; y0 < p.extent[1]; y0 += p.block[1]) {
            for (hsize_t x0 = 0; x0 < p.extent[2]; x0 += p.block[2]) {
                hsize_t start[3] = {f0, y0, x0};
                hsize_t count[3] = {nf, min_h(p.block[1], p.extent[1] - y0),
                                    min_h(p.block[2], p.extent[2] - x0)};
                mem_space = H5Screate_simple(3, count, NULL);
                if (mem_space < 0 || H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL,
                                                         count, NULL) < 0) {
                    status = nt_h5_fail(c->err, NT_ERR_INTERNAL, m->where,
                                        "cannot select a slab");
                    goto cleanup;
                }
                if (H5Dread(m->dset, p.mem_type, mem_space, file_space, H5P_DEFAULT, buf) < 0) {
                    status = nt_h5_fail(c->err, NT_ERR_CORRUPT, m->where, "cannot read data");
                    goto cleanup;
                }
                H5Sclose(mem_space);
                mem_space = H5I_INVALID_HID;
                accumulate(buf, &p, y0, x0, count, acc, col);
            }
        }
        for (size_t t = 0; t < p.n_tiles; t++) {
            float *trace = rec->traces + t * n_frames + (size_t)f0;
            for (size_t i = 0; i < (size_t)nf; i++)
                trace[i] = (float)(acc[i * p.n_tiles + t] / pixels_per_tile);
        }
    }
cleanup:
    free(buf);
    free(acc);
    if (mem_space >= 0)
        H5Sclose(mem_space);
    if (file_space >= 0)
        H5Sclose(file_space);
    return status;
}
