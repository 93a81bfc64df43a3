/*
 * fuzz_sndfile.c — libFuzzer harness of the audio reader (reader_sndfile.c:
 * WAV, RF64, W64, FLAC, AIFF, CAF, AU, Ogg through libsndfile), fed from
 * memory through nt_read_sndfile_memory (libsndfile's virtual I/O), with a
 * 64 MiB memory limit. Each input is read header-only, then in full; a
 * recording read in full goes on through the analysis when it is small,
 * and, when it has two channels or more, its last channel is also taken as
 * a trigger record (`--trigger`), which only audio and text inputs reach.
 *
 * Crashes inside libsndfile itself are recorded, not fixed here; the CLI
 * contains them in its worker processes.
 */
#include "fuzz_common.h"
#include "reader_sndfile.h"

#include <math.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nt_read_options opts;
    nt_read_options_default(&opts);
    opts.max_bytes = FUZZ_MAX_BYTES;
    nt_error err;
    nt_recording *rec = NULL;

    opts.header_only = 1;
    if (nt_read_sndfile_memory(data, size, &opts, &rec, &err) == NT_OK && rec->traces != NULL)
        abort(); /* the contract: traces stays NULL after a header-only read */
    nt_recording_free(rec);

    rec = NULL;
    opts.header_only = 0;
    if (nt_read_sndfile_memory(data, size, &opts, &rec, &err) == NT_OK) {
        if (rec->n_rois >= 2 && rec->time_s != NULL)
            nt_recording_stims_from_trigger(rec, rec->n_rois - 1, NAN, 2.0, &err);
        fuzz_analyse(rec);
    }
    nt_recording_free(rec);
    return 0;
}
