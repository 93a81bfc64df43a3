/*
 * fuzz_hdf5.c — libFuzzer harness of the HDF5 readers (native layout, any
 * dataset, NWB 2.x): reader.c's dispatch, reader_hdf5.c, reader_nwb.c and
 * h5util.c, on a file the fuzzer wrote.
 *
 * HDF5 reads only from a file (its in-memory "core" driver would take the
 * image, but nt_recording_read takes a path, which is what the CLI and the
 * batch workers call), so every input is written to a file of this process
 * in /dev/shm (fuzz_common.h). Each input is read twice, header-only (what
 * `nirtrace info` does) then in full, with a 64 MiB memory limit; a
 * recording read in full goes on through the analysis when it is small.
 *
 * The reading options depend on the input's size, so that the fuzzer
 * reaches every option path and a crashing input still reproduces alone:
 *   size % 4 == 0, 1  the defaults (native /traces, or the NWB series);
 *   size % 4 == 2     "FILE:/traces" (the any-dataset path syntax) read
 *                     frames-by-ROIs, with /time and /stim/onsets named;
 *   size % 4 == 3     NWB options: series "RoiResponseSeries", trial
 *                     label "label", read ROIs-by-frames as stored.
 *
 * After each read no HDF5 object may be left open: a leaked identifier
 * keeps its file open in a batch of thousands (LeakSanitizer cannot see
 * it: HDF5's identifier table still points at it), so the harness counts
 * them with H5Fget_obj_count and aborts.
 *
 * Crashes inside HDF5 itself are expected on hostile files (HDF5 1.10 does
 * not validate everything it reads); the CLI contains them in its worker
 * processes. Those are recorded, not fixed here (tests/fuzz/README).
 */
#include "fuzz_common.h"

#include <hdf5.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts when HDF5 still holds an open file, group, dataset, datatype or
 * attribute: the reader that just returned leaked an identifier. */
static void check_no_open_objects(const char *when)
{
    ssize_t n = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0) {
        fprintf(stderr, "fuzz_hdf5: %zd HDF5 object(s) left open after the %s read\n", n, when);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *file = fuzz_file_write(0, data, size);
    char path[400];
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.max_bytes = FUZZ_MAX_BYTES;
    snprintf(path, sizeof path, "%s", file);
    switch (size % 4) {
    case 2:
        snprintf(path, sizeof path, "%s:/traces", file);
        opts.layout = NT_LAYOUT_FRAMES_BY_ROIS;
        opts.time_dataset = "/time";
        opts.stim_dataset = "/stim/onsets";
        break;
    case 3:
        opts.series = "RoiResponseSeries";
        opts.trial_label = "label";
        opts.layout = NT_LAYOUT_ROIS_BY_FRAMES;
        break;
    default:
        break;
    }

    nt_error err;
    nt_recording *rec = NULL;
    opts.header_only = 1;
    if (nt_recording_read(path, &opts, &rec, &err) == NT_OK && rec->traces != NULL)
        abort(); /* the contract: traces stays NULL after a header-only read */
    nt_recording_free(rec);
    check_no_open_objects("header-only");

    rec = NULL;
    opts.header_only = 0;
    if (nt_recording_read(path, &opts, &rec, &err) == NT_OK)
        fuzz_analyse(rec);
    nt_recording_free(rec);
    check_no_open_objects("full");
    return 0;
}
