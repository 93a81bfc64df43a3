/*
 * test_reader_sndfile.c — the audio reader, by round trips: each test writes
 * a file with libsndfile's own writer into a fresh temporary directory and
 * reads it back through nt_read_sndfile (or nt_read_sndfile_memory), checking
 * the raw sample values, the shape, the time base and the description.
 */
#include "internal.h"
#include "reader_sndfile.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void setup(void)
{
    tmp_dir_create("sndfile");
}

TestSuite(reader_sndfile, .init = setup, .fini = tmp_dir_remove);

/* ------------------------------------------------------------- helpers */

#define N_CH 3
#define N_FRAMES 50
#define RATE 1000

/* The known sample of channel r, frame f: base + 10 r + f, negated on odd
 * channels when alternate is set, so that the sign path is exercised. */
static double sample_value(double base, size_t r, size_t f, int alternate)
{
    double v = base + 10.0 * (double)r + (double)f;
    return alternate && r % 2 == 1 ? -v : v;
}

/* A new interleaved [frames][channels] array of sample_value. */
static double *make_samples(size_t channels, size_t frames, double base, int alternate)
{
    double *v = malloc((channels * frames + 1) * sizeof *v);
    cr_assert_not_null(v, "malloc");
    for (size_t f = 0; f < frames; f++)
        for (size_t r = 0; r < channels; r++)
            v[f * channels + r] = sample_value(base, r, f, alternate);
    return v;
}

/* Writes interleaved [frames][channels] doubles as raw (not normalised)
 * values with libsndfile, in format at rate Hz. */
static void write_sound(const char *path, int format, int channels, int rate, const double *v,
                        size_t frames)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    cr_assert(sf_format_check(&info), "format 0x%x is not valid for libsndfile", format);
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    cr_assert_not_null(sf, "cannot create %s: %s", path, sf_strerror(NULL));
    sf_command(sf, SFC_SET_NORM_DOUBLE, NULL, SF_FALSE);
    if (frames > 0)
        cr_assert_eq(sf_writef_double(sf, v, (sf_count_t)frames), (sf_count_t)frames,
                     "short write to %s", path);
    cr_assert_eq(sf_close(sf), 0, "cannot close %s", path);
}

/* Writes the standard test file: N_CH x N_FRAMES of sample_value at RATE. */
static void write_standard(const char *path, int format, double base, int alternate)
{
    double *v = make_samples(N_CH, N_FRAMES, base, alternate);
    write_sound(path, format, N_CH, RATE, v, N_FRAMES);
    free(v);
}

static nt_read_options options(void)
{
    nt_read_options o;
    nt_read_options_default(&o);
    return o;
}

/* Checks everything but the samples: shape, time base at rate, no stimuli,
 * no names, and the description. */
static void check_header(const nt_recording *rec, size_t channels, size_t frames, double rate,
                         const char *sample_type, const char *storage)
{
    cr_assert_not_null(rec);
    cr_assert_eq(rec->n_rois, channels, "n_rois %zu, expected %zu", rec->n_rois, channels);
    cr_assert_eq(rec->n_frames, frames, "n_frames %zu, expected %zu", rec->n_frames, frames);
    cr_assert_eq(rec->rate_hz, rate, "rate %g, expected %g", rec->rate_hz, rate);
    cr_assert_eq(rec->time_source, NT_SOURCE_FILE_RATE);
    cr_assert_not_null(rec->time_s);
    for (size_t i = 0; i < frames; i++)
        cr_assert_eq(rec->time_s[i], (double)i / rate, "time_s[%zu] = %g", i, rec->time_s[i]);
    cr_assert_eq(rec->n_stims, 0);
    cr_assert_null(rec->stim_s);
    cr_assert_null(rec->stim_labels);
    cr_assert_eq(rec->stim_source, NT_SOURCE_NONE);
    cr_assert_null(rec->roi_names);
    cr_assert_str_eq(rec->sample_type, sample_type);
    cr_assert_str_eq(rec->storage, storage);
}

/* Checks that traces hold exactly (float)v for the interleaved v. */
static void check_traces(const nt_recording *rec, const double *v)
{
    cr_assert_not_null(rec->traces);
    for (size_t r = 0; r < rec->n_rois; r++)
        for (size_t f = 0; f < rec->n_frames; f++) {
            float want = (float)v[f * rec->n_rois + r];
            float got = rec->traces[r * rec->n_frames + f];
            cr_assert_eq(got, want, "ROI %zu frame %zu: got %.9g, expected %.9g", r, f,
                         (double)got, (double)want);
        }
}

/* Writes a standard file in format, reads it back and checks it all. */
static void round_trip(const char *name, int format, double base, int alternate,
                       const char *sample_type, const char *storage)
{
    const char *path = tmp_path(name);
    double *v = make_samples(N_CH, N_FRAMES, base, alternate);
    write_sound(path, format, N_CH, RATE, v, N_FRAMES);
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    nt_read_options o = options();
    int status = nt_read_sndfile(path, &o, &rec, &err);
    cr_assert_eq(status, NT_OK, "%s: %s", name, err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, sample_type, storage);
    check_traces(rec, v);
    nt_recording_free(rec);
    free(v);
}

/* Cuts the file at path to size bytes. */
static void truncate_to(const char *path, long size)
{
    cr_assert_eq(truncate(path, (off_t)size), 0, "cannot truncate %s", path);
}

/* Overwrites 4 bytes at offset of the file with the little-endian value. */
static void patch_u32le(const char *path, long offset, uint32_t value)
{
    unsigned char b[4] = {(unsigned char)value, (unsigned char)(value >> 8),
                          (unsigned char)(value >> 16), (unsigned char)(value >> 24)};
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, offset, SEEK_SET), 0);
    cr_assert_eq(fwrite(b, 1, 4, f), 4u);
    cr_assert_eq(fclose(f), 0);
}

/* Reads path expecting failure with status; returns it with err filled. */
static void expect_failure(const char *path, const nt_read_options *o, int status, nt_error *err)
{
    nt_recording *rec = (nt_recording *)1;
    int got = nt_read_sndfile(path, o, &rec, err);
    cr_assert_eq(got, status, "status %d (%s), expected %d", got, err->message, status);
    cr_assert_eq(err->status, status);
    cr_assert_null(rec, "*out must be NULL on failure");
    cr_assert_neq(err->message[0], '\0', "an error needs a message");
}

/* ----------------------------------------------------------- round trips */

Test(reader_sndfile, wav_pcm16_keeps_raw_counts)
{
    round_trip("a.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 0, "int16", "WAV");
}

Test(reader_sndfile, wav_pcm16_negative_values)
{
    round_trip("a.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 1, "int16", "WAV");
}

Test(reader_sndfile, wav_float)
{
    round_trip("f.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 3000.25, 1, "float32", "WAV");
}

Test(reader_sndfile, flac_pcm16)
{
    round_trip("a.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 3000, 1, "int16", "FLAC");
}

Test(reader_sndfile, aiff_pcm24)
{
    round_trip("a.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 3000000, 1, "int24", "AIFF");
}

Test(reader_sndfile, caf_double)
{
    round_trip("a.caf", SF_FORMAT_CAF | SF_FORMAT_DOUBLE, 3000.123456789, 1, "float64", "CAF");
}

/* 300000001 and its neighbours are not float32 numbers: the trace holds
 * them rounded once, as (float)(double)v. */
Test(reader_sndfile, rf64_pcm32)
{
    round_trip("a.rf64", SF_FORMAT_RF64 | SF_FORMAT_PCM_32, 300000001, 1, "int32", "RF64");
}

Test(reader_sndfile, w64_pcm16)
{
    round_trip("a.w64", SF_FORMAT_W64 | SF_FORMAT_PCM_16, 3000, 1, "int16", "W64");
}

Test(reader_sndfile, au_pcm16)
{
    round_trip("a.au", SF_FORMAT_AU | SF_FORMAT_PCM_16, 3000, 1, "int16", "AU");
}

/* libsndfile re-centres unsigned bytes to -128..127; the recording must hold
 * the stored byte (100 + 10 r + f), which the file shows at offset 44. */
Test(reader_sndfile, wav_uint8_keeps_the_stored_bytes)
{
    const char *path = tmp_path("u8.wav");
    double *stored = make_samples(N_CH, N_FRAMES, 100, 0);
    double *written = make_samples(N_CH, N_FRAMES, 100 - 128, 0);
    write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_U8, N_CH, RATE, written, N_FRAMES);
    size_t size;
    unsigned char *bytes = slurp(path, &size);
    cr_assert_eq(size, 44u + N_CH * N_FRAMES);
    cr_assert_eq(bytes[44], 100, "the writer did not store byte 100 (got %d)", bytes[44]);
    cr_assert_eq(bytes[45], 110);
    free(bytes);

    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, "uint8", "WAV");
    check_traces(rec, stored);
    nt_recording_free(rec);
    free(stored);
    free(written);
}

/* ALAC comes back left-aligned in 32 bits when libsndfile does not
 * normalise; the reader must still give the stored integers. */
static void alac_round_trip(int subtype, int bits, double base, const char *sample_type)
{
    const char *path = tmp_path("alac.caf");
    double *v = make_samples(N_CH, N_FRAMES, base, 1);
    int *shifted = malloc(N_CH * N_FRAMES * sizeof *shifted);
    cr_assert_not_null(shifted);
    for (size_t i = 0; i < N_CH * N_FRAMES; i++)
        shifted[i] = (int)(v[i] * ldexp(1.0, 32 - bits));
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = RATE;
    info.channels = N_CH;
    info.format = SF_FORMAT_CAF | subtype;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    cr_assert_not_null(sf, "%s", sf_strerror(NULL));
    cr_assert_eq(sf_writef_int(sf, shifted, N_FRAMES), N_FRAMES);
    cr_assert_eq(sf_close(sf), 0);

    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, sample_type, "CAF, ALAC");
    check_traces(rec, v);
    nt_recording_free(rec);
    free(shifted);
    free(v);
}

Test(reader_sndfile, caf_alac16)
{
    alac_round_trip(SF_FORMAT_ALAC_16, 16, 3000, "int16");
}

Test(reader_sndfile, caf_alac24)
{
    alac_round_trip(SF_FORMAT_ALAC_24, 24, 3000000, "int24");
}

/* u-law stores 8-bit codes; the recording holds their 16-bit linear values,
 * the same integers libsndfile's own short reader decodes. */
Test(reader_sndfile, wav_ulaw_gives_linear_values)
{
    const char *path = tmp_path("ulaw.wav");
    write_standard(path, SF_FORMAT_WAV | SF_FORMAT_ULAW, 3000, 1);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    cr_assert_not_null(sf);
    short decoded[N_CH * N_FRAMES];
    cr_assert_eq(sf_readf_short(sf, decoded, N_FRAMES), N_FRAMES);
    sf_close(sf);
    double expected[N_CH * N_FRAMES];
    for (size_t i = 0; i < N_CH * N_FRAMES; i++)
        expected[i] = decoded[i];
    cr_assert_gt(fabs(expected[0] - 3000), 0.5, "u-law should not be exact here (%g)",
                 expected[0]);
    cr_assert_lt(fabs(expected[0] - 3000), 200, "u-law decoded %g for 3000", expected[0]);

    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, "ulaw", "WAV, u-law");
    check_traces(rec, expected);
    nt_recording_free(rec);
}

/* Vorbis is lossy and float: shape and description exactly, values close. */
Test(reader_sndfile, ogg_vorbis)
{
    const char *path = tmp_path("a.ogg");
    enum { CH = 2, FRAMES = 8000, OGG_RATE = 8000 };
    double *v = malloc(CH * FRAMES * sizeof *v);
    cr_assert_not_null(v);
    for (size_t f = 0; f < FRAMES; f++)
        for (size_t r = 0; r < CH; r++)
            v[f * CH + r] = 0.25 * sin(2 * M_PI * 50.0 * (double)f / OGG_RATE) + 0.3 * (double)r;
    write_sound(path, SF_FORMAT_OGG | SF_FORMAT_VORBIS, CH, OGG_RATE, v, FRAMES);
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    check_header(rec, CH, FRAMES, OGG_RATE, "vorbis", "Ogg, Vorbis");
    double worst = 0;
    for (size_t r = 0; r < CH; r++)
        for (size_t f = 100; f < FRAMES - 100; f++) {
            double d = fabs(rec->traces[r * FRAMES + f] - v[f * CH + r]);
            worst = d > worst ? d : worst;
        }
    cr_assert_lt(worst, 0.02, "Vorbis round trip off by %g", worst);
    nt_recording_free(rec);
    free(v);
}

/* More frames than one read (64 k frames), and more channels than fit a
 * 64 k-frame chunk in the buffer: every chunk boundary must land right. */
Test(reader_sndfile, long_and_wide_files_are_read_in_chunks)
{
    static const struct {
        size_t channels, frames;
    } shapes[] = {{3, 150001}, {40, 70000}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t ch = shapes[s].channels, n = shapes[s].frames;
        const char *path = tmp_path("long.wav");
        double *v = malloc(ch * n * sizeof *v);
        cr_assert_not_null(v);
        for (size_t f = 0; f < n; f++)
            for (size_t r = 0; r < ch; r++)
                v[f * ch + r] = (double)(r * 500 + f % 9973) * (r % 2 ? -1 : 1);
        write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, (int)ch, 500, v, n);
        nt_recording *rec = NULL;
        nt_error err = {0, ""};
        cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
        cr_assert_eq(rec->n_rois, ch);
        cr_assert_eq(rec->n_frames, n);
        check_traces(rec, v);
        cr_assert_eq(rec->time_s[n - 1], (double)(n - 1) / 500.0);
        nt_recording_free(rec);
        free(v);
    }
}

/* --------------------------------------------------------- header only */

Test(reader_sndfile, header_only_reads_shape_type_and_rate)
{
    const char *path = tmp_path("a.aiff");
    write_standard(path, SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 3000000, 1);
    nt_read_options o = options();
    o.header_only = 1;
    o.max_bytes = N_CH * N_FRAMES * sizeof(float) - 1; /* traces are not allocated */
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, &o, &rec, &err), NT_OK, "%s", err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, "int24", "AIFF");
    cr_assert_null(rec->traces);
    nt_recording_free(rec);
}

Test(reader_sndfile, header_only_still_bounds_the_time_axis)
{
    const char *path = tmp_path("a.wav");
    write_standard(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 0);
    nt_read_options o = options();
    o.header_only = 1;
    o.max_bytes = N_FRAMES * sizeof(double) - 1;
    nt_error err = {0, ""};
    expect_failure(path, &o, NT_ERR_TOO_LARGE, &err);
    cr_assert(strstr(err.message, "time axis of 50 frames") != NULL, "%s", err.message);
}

/* ------------------------------------------------------------ empty file */

Test(reader_sndfile, no_frames_give_an_empty_recording_that_check_refuses)
{
    const char *path = tmp_path("empty.wav");
    write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, N_CH, RATE, NULL, 0);
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    cr_assert_eq(rec->n_rois, N_CH);
    cr_assert_eq(rec->n_frames, 0);
    cr_assert_null(rec->traces);
    cr_assert_null(rec->time_s);
    cr_assert_eq(rec->time_source, NT_SOURCE_NONE);
    cr_assert_eq(rec->rate_hz, RATE);
    cr_assert_str_eq(rec->sample_type, "int16");
    cr_assert_eq(nt_recording_check(rec, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "0 frames") != NULL, "%s", err.message);
    nt_recording_free(rec);
}

/* -------------------------------------------------------------- limits */

Test(reader_sndfile, max_bytes_is_the_limit)
{
    const char *path = tmp_path("a.wav");
    write_standard(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 0);
    nt_read_options o = options();
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    o.max_bytes = N_CH * N_FRAMES * sizeof(float);
    cr_assert_eq(nt_read_sndfile(path, &o, &rec, &err), NT_OK, "exactly the limit: %s",
                 err.message);
    nt_recording_free(rec);

    o.max_bytes -= 1;
    expect_failure(path, &o, NT_ERR_TOO_LARGE, &err);
    cr_assert(strstr(err.message, "3 channels x 50 frames (600 bytes as float32)") != NULL, "%s",
              err.message);
    cr_assert(strstr(err.message, "599 bytes limit") != NULL, "%s", err.message);
}

/* ------------------------------------------------------- damaged files */

Test(reader_sndfile, wav_cut_to_30_bytes_is_corrupt)
{
    const char *path = tmp_path("cut.wav");
    write_standard(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 0);
    truncate_to(path, 30);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
    cr_assert(strstr(err.message, "cannot open as audio") != NULL, "%s", err.message);
}

/* libsndfile would read the 21 whole frames left and say nothing. */
Test(reader_sndfile, wav_cut_in_half_is_corrupt)
{
    const char *path = tmp_path("half.wav");
    write_standard(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 0);
    long size = file_size(path);
    cr_assert_eq(size, 44 + N_CH * N_FRAMES * 2);
    truncate_to(path, size / 2);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
    char want[64];
    snprintf(want, sizeof want, "declares 50 frames, holds only %ld", (size / 2 - 44) / 6);
    cr_assert_str_eq(err.message, want);
}

/* Each container's own truncation note: AIFF (COMM), RF64 (ds64), W64
 * (riff size), AU (data size). */
Test(reader_sndfile, other_containers_cut_in_half_are_corrupt)
{
    static const struct {
        const char *name;
        int format;
        const char *expect;
    } cases[] = {
        {"half.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_24, "declares 50 frames, holds only "},
        {"half.rf64", SF_FORMAT_RF64 | SF_FORMAT_PCM_32, "declares 50 frames, holds only "},
        {"half.w64", SF_FORMAT_W64 | SF_FORMAT_PCM_16, "(libsndfile: \"riff : "},
        {"half.au", SF_FORMAT_AU | SF_FORMAT_PCM_16, "declares 50 frames, holds only "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = tmp_path(cases[i].name);
        write_standard(path, cases[i].format, 3000, 1);
        truncate_to(path, file_size(path) / 2);
        nt_error err = {0, ""};
        expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
        cr_assert(strstr(err.message, cases[i].expect) != NULL, "%s: %s", cases[i].name,
                  err.message);
    }
}

/* FLAC trusts its header's frame count: the samples run out first. */
Test(reader_sndfile, flac_cut_short_is_corrupt)
{
    const char *path = tmp_path("cut.flac");
    enum { FRAMES = 100000 };
    double *v = malloc(N_CH * FRAMES * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < N_CH * FRAMES; i++)
        v[i] = (double)(i % 7919);
    write_sound(path, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, N_CH, RATE, v, FRAMES);
    free(v);
    truncate_to(path, file_size(path) * 9 / 10);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
    cr_assert(strncmp(err.message, "declares 100000 frames, holds only ", 35) == 0, "%s",
              err.message);
}

/* An Ogg stream cut before its end-of-stream page has no known length
 * (libsndfile says SF_COUNT_MAX frames): damaged, not "too large". */
Test(reader_sndfile, ogg_cut_short_has_no_length_and_is_corrupt)
{
    const char *path = tmp_path("cut.ogg");
    enum { FRAMES = 100000, OGG_RATE = 8000 };
    double *v = malloc(FRAMES * sizeof *v);
    cr_assert_not_null(v);
    for (size_t f = 0; f < FRAMES; f++)
        v[f] = 0.25 * sin(2 * M_PI * 50.0 * (double)f / OGG_RATE);
    write_sound(path, SF_FORMAT_OGG | SF_FORMAT_VORBIS, 1, OGG_RATE, v, FRAMES);
    free(v);
    truncate_to(path, file_size(path) * 9 / 10);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
    cr_assert(strstr(err.message, "does not declare its length") != NULL, "%s", err.message);
}

Test(reader_sndfile, caf_cut_in_half_is_corrupt)
{
    const char *path = tmp_path("half.caf");
    write_standard(path, SF_FORMAT_CAF | SF_FORMAT_DOUBLE, 3000, 1);
    truncate_to(path, file_size(path) / 2);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
}

/* A streaming writer's "length unknown" (0xFFFFFFFF) is not truncation. */
Test(reader_sndfile, streaming_wav_with_unknown_length_is_read)
{
    const char *path = tmp_path("stream.wav");
    double *v = make_samples(N_CH, N_FRAMES, 3000, 1);
    write_sound(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, N_CH, RATE, v, N_FRAMES);
    patch_u32le(path, 4, 0xFFFFFFFFu);
    patch_u32le(path, 40, 0xFFFFFFFFu);
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(path, NULL, &rec, &err), NT_OK, "%s", err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, "int16", "WAV");
    check_traces(rec, v);
    nt_recording_free(rec);
    free(v);
}

/* RIFF that is not a WAVE (garbage, or AVI/WebP): not an audio file. */
Test(reader_sndfile, riff_magic_with_garbage_is_a_format_error)
{
    static const char garbage[] = "RIFFgarbagegarbagegarbagegarbagegarbagegarbagegarbage";
    const char *path = tmp_path("garbage.wav");
    write_file(path, garbage, sizeof garbage - 1);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_FORMAT, &err);
    cr_assert(strstr(err.message, "not an audio file") != NULL, "%s", err.message);
}

/* A RIFF WAVE whose chunks are garbage: libsndfile knows the container and
 * cannot parse it. */
Test(reader_sndfile, wave_with_garbage_chunks_is_corrupt)
{
    static const char garbage[] = "RIFF\x40\0\0\0WAVEgarbagegarbagegarbagegarbagegarbage";
    const char *path = tmp_path("garbage.wav");
    write_file(path, garbage, sizeof garbage - 1);
    nt_error err = {0, ""};
    expect_failure(path, NULL, NT_ERR_CORRUPT, &err);
}

Test(reader_sndfile, missing_file_and_directory_are_io_errors)
{
    nt_error err = {0, ""};
    expect_failure(tmp_path("missing.wav"), NULL, NT_ERR_IO, &err);
    cr_assert(strstr(err.message, "No such file") != NULL, "%s", err.message);
    expect_failure(tmp_dir, NULL, NT_ERR_IO, &err);
    cr_assert_str_eq(err.message, "is a directory");
}

Test(reader_sndfile, null_arguments_are_invalid)
{
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile(NULL, NULL, &rec, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_read_sndfile(tmp_path("a.wav"), NULL, NULL, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_read_sndfile_memory("x", 1, NULL, NULL, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_read_sndfile_memory(NULL, 10, NULL, &rec, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_read_sndfile(NULL, NULL, &rec, NULL), NT_ERR_INVALID, "err may be NULL");
}

/* -------------------------------------------------------------- memory */

static void memory_round_trip(const char *name, int format)
{
    const char *path = tmp_path(name);
    double *v = make_samples(N_CH, N_FRAMES, 3000, 1);
    write_sound(path, format, N_CH, RATE, v, N_FRAMES);
    size_t size;
    unsigned char *bytes = slurp(path, &size);
    unlink(path); /* the memory reader must not need the file */
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    nt_read_options o = options();
    cr_assert_eq(nt_read_sndfile_memory(bytes, size, &o, &rec, &err), NT_OK, "%s", err.message);
    check_traces(rec, v);
    nt_recording_free(rec);
    free(bytes);
    free(v);
}

Test(reader_sndfile, memory_wav)
{
    memory_round_trip("m.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16);
}

Test(reader_sndfile, memory_flac)
{
    memory_round_trip("m.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
}

Test(reader_sndfile, memory_wav_description)
{
    const char *path = tmp_path("m.wav");
    write_standard(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3000, 0);
    size_t size;
    unsigned char *bytes = slurp(path, &size);
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile_memory(bytes, size, NULL, &rec, &err), NT_OK, "%s",
                 err.message);
    check_header(rec, N_CH, N_FRAMES, RATE, "int16", "WAV");
    nt_recording_free(rec);

    /* The same truncation as on disk: half of the bytes. */
    rec = (nt_recording *)1;
    cr_assert_eq(nt_read_sndfile_memory(bytes, size / 2, NULL, &rec, &err), NT_ERR_CORRUPT, "%s",
                 err.message);
    cr_assert_null(rec);
    cr_assert(strstr(err.message, "declares 50 frames, holds only") != NULL, "%s", err.message);
    free(bytes);
}

Test(reader_sndfile, memory_garbage_and_empty)
{
    static const char garbage[] = "RIFFgarbagegarbagegarbagegarbagegarbagegarbage";
    nt_recording *rec = (nt_recording *)1;
    nt_error err = {0, ""};
    cr_assert_eq(nt_read_sndfile_memory(garbage, sizeof garbage - 1, NULL, &rec, &err),
                 NT_ERR_FORMAT, "%s", err.message);
    cr_assert_null(rec);
    cr_assert_eq(nt_read_sndfile_memory(garbage, 3, NULL, &rec, &err), NT_ERR_FORMAT, "%s",
                 err.message);
    cr_assert_eq(nt_read_sndfile_memory(NULL, 0, NULL, &rec, &err), NT_ERR_FORMAT, "%s",
                 err.message);
    cr_assert_str_eq(err.message, "file is empty");
}
