/*
 * fuzz_text.c — libFuzzer harness of the CSV/TSV trace reader
 * (reader_text.c over csv.c). nt_read_text takes a path, so the table is
 * written to a file of this process in /dev/shm (fuzz_common.h).
 *
 * Input: one option byte, then the table. The option byte chooses what the
 * command line would (--delimiter, --header/--no-header, --layout, the
 * header-only read of `nirtrace info`, --trigger):
 *   bits 0-1  delimiter: auto, ',', tab, ';'
 *   bits 2-3  header: detect, yes, no (3: detect)
 *   bits 4-5  layout: auto, ROIs-by-frames, frames-by-ROIs (3: auto)
 *   bit 6     header-only read
 *   bit 7     take the first ROI as a trigger record (`--trigger 1`)
 * The seeds (tests/fuzz/make-corpus) start with 0x00: all detected.
 * A recording read in full goes on through the analysis when it is small.
 * The memory limit is 64 MiB.
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delimiters[4] = {0, ',', '\t', ';'};
    static const int headers[4] = {-1, 1, 0, -1};
    static const int layouts[4] = {NT_LAYOUT_AUTO, NT_LAYOUT_ROIS_BY_FRAMES,
                                   NT_LAYOUT_FRAMES_BY_ROIS, NT_LAYOUT_AUTO};
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *path = fuzz_file_write(0, data + 1, size - 1);

    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.max_bytes = FUZZ_MAX_BYTES;
    opts.delimiter = delimiters[sel & 3];
    opts.header = headers[(sel >> 2) & 3];
    opts.layout = layouts[(sel >> 4) & 3];
    opts.header_only = (sel >> 6) & 1;

    nt_error err;
    nt_recording *rec = NULL;
    if (nt_read_text(path, &opts, &rec, &err) == NT_OK) {
        if (opts.header_only) {
            if (rec->traces != NULL)
                abort(); /* the contract: traces stays NULL after a header-only read */
        } else {
            if ((sel & 0x80) && rec->n_rois >= 2 &&
                (rec->time_s != NULL || nt_recording_set_rate(rec, 8.33, &err) == NT_OK))
                nt_recording_stims_from_trigger(rec, 0, NAN, 2.0, &err);
            fuzz_analyse(rec);
        }
    }
    nt_recording_free(rec);
    return 0;
}
