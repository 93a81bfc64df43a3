/*
 * reader_sndfile.c — reads recordings stored as multichannel audio (WAV,
 * RF64 and W64 for files over 4 GB, AIFF, CAF, AU, FLAC, Ogg, ...) through
 * libsndfile into an nt_recording. Some acquisition rigs and DAQ programs
 * write their traces this way: one channel per ROI (or per analog input),
 * one frame per camera frame.
 *
 *   traces       channel c becomes ROI c (ROI-major float32), in the file's
 *                raw units: a 16-bit count of 3000 reads as 3000.0
 *   rate_hz      the header's sample rate; time_s[i] = i / rate_hz
 *                (time_source NT_SOURCE_FILE_RATE)
 *   sample_type  the stored encoding: "int16", "int24", "int32", "uint8",
 *                "float32", "float64", "ulaw", "ima_adpcm", "vorbis", ...
 *   storage      the container, followed by the codec when the container does
 *                not imply it: "WAV", "RF64", "FLAC", "CAF, ALAC", "Ogg, Vorbis"
 *   stimuli      none (n_stims 0, stim_source NT_SOURCE_NONE), and no ROI
 *                names: audio files have neither. The caller supplies onsets
 *                (--stim, --stim-frame) or takes them from a trigger channel
 *                (--trigger, nt_recording_stims_from_trigger).
 *
 * Raw values. libsndfile hands integer samples out normalised to [-1, 1)
 * unless told otherwise; camera counts must stay counts, so normalisation is
 * switched off (SFC_SET_NORM_FLOAT / SFC_SET_NORM_DOUBLE) before reading, and
 * float files come back as stored. Some encodings need a word more:
 *  - unsigned 8-bit PCM: libsndfile re-centres the bytes to -128..127; 128 is
 *    added back so that the stored byte is what the recording holds;
 *  - ALAC and DWVW: with normalisation off libsndfile returns these left-
 *    aligned in 32 bits (raw × 2^(32-bits)), unlike the other codecs. Their
 *    normalised values, raw / 2^(bits-1) — the scale libsndfile documents for
 *    every integer codec — are read instead and multiplied back by that power
 *    of two, which is exact in double and does not depend on the quirk;
 *  - lossy and companded codecs (u-law, ADPCM, GSM, Vorbis, ...) give their
 *    decoded values: 16-bit linear integers, or floats for Vorbis/Opus/MPEG.
 * Integers wider than 16 bits go through double and are rounded once to
 * float32, which holds them exactly up to 2^24 (nirtrace.h).
 *
 * Sample rate. Audio headers store an integer rate (CAF stores a double, but
 * libsndfile's SF_INFO passes an int), so a camera running at 8.33 Hz cannot
 * be described by its file: the CLI's --rate overrides the header's rate
 * (nt_recording_set_rate) and the analysis then uses that time base.
 *
 * Damaged files. Every size the header declares is checked before anything
 * is allocated: frames × channels as float32 against opts->max_bytes
 * (NT_ERR_TOO_LARGE), and, for the uncompressed containers, against the bytes
 * the file holds. A file shorter than its header declares is NT_ERR_CORRUPT
 * ("declares N frames, holds only M") rather than a silently shorter
 * recording, because analysing the first half of an interrupted copy as if it
 * were the whole experiment is worse than refusing it. libsndfile itself
 * shortens such files to what they hold and only notes it in its log, so the
 * log is searched for those notes (find_truncation); codecs that trust their
 * header (FLAC) are caught when the samples run out before the declared count.
 * A file with no frames is not an error here: it gives a recording of that
 * shape without traces or time base, as the HDF5 reader does for an empty
 * /traces, and nt_recording_check refuses it with its usual message.
 *
 * Structure. read_open does all the work on an open SNDFILE, so that the file
 * front end (nt_read_sndfile, sf_open) and the memory one
 * (nt_read_sndfile_memory, sf_open_virtual over a buffer: the fuzz harness)
 * share every check. libsndfile reports open failures only through its global
 * error state (sf_error(NULL)): two threads failing to open at once may see
 * each other's message.
 */
#include "internal.h"
#include "reader_sndfile.h"

#include <sndfile.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Frames per read: about 64 k, fewer when there are many channels, so that
 * the interleaved buffer stays under CHUNK_SAMPLES doubles (8 MiB). */
#define CHUNK_FRAMES ((size_t)65536)
#define CHUNK_SAMPLES ((size_t)1 << 20)

/* Room for libsndfile's header log (it keeps a few kB at most). */
#define LOG_BYTES 8192

/* A 32-bit size field of all ones: "length unknown" in streaming writers'
 * WAV and AU headers, not a claim about the file. */
#define UNKNOWN_SIZE_32 4294967295LL

/* How the samples of an encoding are read. */
enum read_mode {
    READ_FLOAT,  /* sf_readf_float, not normalised: exact for <= 16-bit integers, float32 */
    READ_DOUBLE, /* sf_readf_double, not normalised, rounded once to float */
    READ_SCALED  /* sf_readf_double normalised, times 2^(bits-1) (ALAC, DWVW) */
};

/* An encoding libsndfile reads (SF_FORMAT_SUBMASK). */
typedef struct codec {
    int subtype;
    const char *sample_type; /* rec->sample_type */
    const char *name;        /* in rec->storage; NULL for linear PCM and IEEE float */
    int mode;                /* enum read_mode */
    int bits;                /* READ_SCALED: width of the integers */
    int bytes;               /* bytes per sample in an uncompressed container, 0 if not fixed */
} codec;

static const codec codecs[] = {
    {SF_FORMAT_PCM_S8, "int8", NULL, READ_FLOAT, 0, 1},
    {SF_FORMAT_PCM_U8, "uint8", NULL, READ_FLOAT, 0, 1},
    {SF_FORMAT_PCM_16, "int16", NULL, READ_FLOAT, 0, 2},
    {SF_FORMAT_PCM_24, "int24", NULL, READ_DOUBLE, 0, 3},
    {SF_FORMAT_PCM_32, "int32", NULL, READ_DOUBLE, 0, 4},
    {SF_FORMAT_FLOAT, "float32", NULL, READ_FLOAT, 0, 4},
    {SF_FORMAT_DOUBLE, "float64", NULL, READ_DOUBLE, 0, 8},
    {SF_FORMAT_ULAW, "ulaw", "u-law", READ_FLOAT, 0, 1},
    {SF_FORMAT_ALAW, "alaw", "A-law", READ_FLOAT, 0, 1},
    {SF_FORMAT_IMA_ADPCM, "ima_adpcm", "IMA ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_MS_ADPCM, "ms_adpcm", "MS ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_GSM610, "gsm610", "GSM 6.10", READ_FLOAT, 0, 0},
    {SF_FORMAT_VOX_ADPCM, "vox_adpcm", "VOX ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_NMS_ADPCM_16, "nms_adpcm16", "NMS ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_NMS_ADPCM_24, "nms_adpcm24", "NMS ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_NMS_ADPCM_32, "nms_adpcm32", "NMS ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_G721_32, "g721", "G.721 ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_G723_24, "g723_24", "G.723 ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_G723_40, "g723_40", "G.723 ADPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_DWVW_12, "dwvw12", "DWVW", READ_SCALED, 12, 0},
    {SF_FORMAT_DWVW_16, "dwvw16", "DWVW", READ_SCALED, 16, 0},
    {SF_FORMAT_DWVW_24, "dwvw24", "DWVW", READ_SCALED, 24, 0},
    {SF_FORMAT_DWVW_N, "dwvw", "DWVW", READ_SCALED, 32, 0},
    {SF_FORMAT_DPCM_8, "dpcm8", "DPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_DPCM_16, "dpcm16", "DPCM", READ_FLOAT, 0, 0},
    {SF_FORMAT_VORBIS, "vorbis", "Vorbis", READ_FLOAT, 0, 0},
    {SF_FORMAT_OPUS, "opus", "Opus", READ_FLOAT, 0, 0},
    {SF_FORMAT_ALAC_16, "int16", "ALAC", READ_SCALED, 16, 0},
    {SF_FORMAT_ALAC_20, "int20", "ALAC", READ_SCALED, 20, 0},
    {SF_FORMAT_ALAC_24, "int24", "ALAC", READ_SCALED, 24, 0},
    {SF_FORMAT_ALAC_32, "int32", "ALAC", READ_SCALED, 32, 0},
    {SF_FORMAT_MPEG_LAYER_I, "mpeg", "MPEG Layer I", READ_FLOAT, 0, 0},
    {SF_FORMAT_MPEG_LAYER_II, "mpeg", "MPEG Layer II", READ_FLOAT, 0, 0},
    {SF_FORMAT_MPEG_LAYER_III, "mpeg", "MPEG Layer III", READ_FLOAT, 0, 0},
};

/* A container libsndfile reads (SF_FORMAT_TYPEMASK). uncompressed: its
 * fixed-width codecs are stored as plain samples, so frames × channels ×
 * codec.bytes cannot exceed the file. */
typedef struct container {
    int major;
    const char *name;
    int uncompressed;
} container;

static const container containers[] = {
    {SF_FORMAT_WAV, "WAV", 1},    {SF_FORMAT_WAVEX, "WAV (extensible)", 1},
    {SF_FORMAT_RF64, "RF64", 1},  {SF_FORMAT_W64, "W64", 1},
    {SF_FORMAT_AIFF, "AIFF", 1},  {SF_FORMAT_CAF, "CAF", 1},
    {SF_FORMAT_AU, "AU", 1},      {SF_FORMAT_FLAC, "FLAC", 0},
    {SF_FORMAT_OGG, "Ogg", 0},    {SF_FORMAT_MPEG, "MPEG", 0},
    {SF_FORMAT_RAW, "RAW", 0},    {SF_FORMAT_PAF, "PAF", 0},
    {SF_FORMAT_SVX, "SVX", 0},    {SF_FORMAT_NIST, "NIST", 0},
    {SF_FORMAT_VOC, "VOC", 0},    {SF_FORMAT_IRCAM, "IRCAM", 0},
    {SF_FORMAT_MAT4, "MAT4", 0},  {SF_FORMAT_MAT5, "MAT5", 0},
    {SF_FORMAT_PVF, "PVF", 0},    {SF_FORMAT_XI, "XI", 0},
    {SF_FORMAT_HTK, "HTK", 0},    {SF_FORMAT_SDS, "SDS", 0},
    {SF_FORMAT_AVR, "AVR", 0},    {SF_FORMAT_SD2, "SD2", 0},
    {SF_FORMAT_WVE, "WVE", 0},    {SF_FORMAT_MPC2K, "MPC2K", 0},
};

static const codec *find_codec(int subtype)
{
    for (size_t i = 0; i < sizeof codecs / sizeof *codecs; i++)
        if (codecs[i].subtype == subtype)
            return &codecs[i];
    return NULL;
}

static const container *find_container(int major)
{
    for (size_t i = 0; i < sizeof containers / sizeof *containers; i++)
        if (containers[i].major == major)
            return &containers[i];
    return NULL;
}

/* Copies libsndfile's text into buf [len] as one line: control characters
 * become spaces, trailing blanks go. */
static void one_line(const char *text, char *buf, size_t len)
{
    snprintf(buf, len, "%s", text != NULL && text[0] != '\0' ? text : "no detail");
    size_t n = 0;
    for (char *p = buf; *p != '\0'; p++, n++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
}


/* Turns a failed sf_open / sf_open_virtual into our error. The dispatcher
 * only sends files whose magic names an audio container, so "not
 * recognised" means another RIFF/FORM/Ogg file (AVI, WebP, Theora) or
 * garbage behind the magic: a format error. Every other failure means
 * libsndfile knew the container and could not parse it: damaged. */
static int open_failure(nt_error *err)
{
    char detail[256];
    int code = sf_error(NULL);
    one_line(sf_strerror(NULL), detail, sizeof detail);
    switch (code) {
    case SF_ERR_UNRECOGNISED_FORMAT:
        return nt_error_set(err, NT_ERR_FORMAT, "not an audio file libsndfile can read (%s)",
                            detail);
    case SF_ERR_UNSUPPORTED_ENCODING:
        return nt_error_set(err, NT_ERR_FORMAT, "unsupported audio encoding (%s)", detail);
    case SF_ERR_SYSTEM:
        return nt_error_set(err, NT_ERR_IO, "cannot open: %s", detail);
    default:
        return nt_error_set(err, NT_ERR_CORRUPT,
                            "cannot open as audio (truncated or damaged file): %s", detail);
    }
}

/* A truncation note found in libsndfile's log. */
typedef struct truncation {
    int found;
    long long declared_frames; /* -1 when the notes do not give it */
    char note[128];            /* the log line, for the message when they do not */
} truncation;

/* Parses a log line "KEY : X (should be Y)" into key [key_len], *declared
 * (X) and *actual (Y); returns 0 when the line has another shape. */
static int parse_size_note(const char *line, char *key, size_t key_len, long long *declared,
                           long long *actual)
{
    static const char should[] = " (should be ";
    const char *colon = strstr(line, " : ");
    if (colon == NULL)
        return 0;
    const char *start = line;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = (size_t)(colon - start);
    while (len > 0 && start[len - 1] == ' ')
        len--;
    if (len == 0 || len >= key_len)
        return 0;
    memcpy(key, start, len);
    key[len] = '\0';
    char *end;
    const char *p = colon + 3;
    errno = 0;
    *declared = strtoll(p, &end, 10);
    if (end == p || errno != 0 || strncmp(end, should, sizeof should - 1) != 0)
        return 0;
    p = end + sizeof should - 1;
    *actual = strtoll(p, &end, 10);
    return end != p && errno == 0 && *end == ')';
}

/*
 * Looks for libsndfile's notes that the header declares more samples than
 * the file holds. libsndfile (checked with 1.2.0; the WAV wording is much
 * older) shortens such a file to what it holds, reports that in
 * SF_INFO.frames, and writes in its log:
 *   "data : 600000 (should be 539995)"        WAV (and RF64 in newer libsndfile)
 *   "Data Size   : 600000 (should be 539997)" AU
 *   "SSND : 600008 (should be 540002)"        AIFF, with "*** Frame count read from
 *                                             'COMM' chunk (100000) not equal to ..."
 *   "riff : 600104 (should be 540093)"        W64 (its data chunk gets no note)
 *   "*** Calculated frame count 89998 does not match value from 'ds64' chunk of 100000."
 *                                             RF64
 * A "RIFF : X (should be Y)" alone is not taken: the samples can be whole
 * with a metadata chunk after them cut, and then the data line has no note.
 * W64 has only its whole-file note, so there a cut trailing chunk counts
 * too. Declared sizes of 0xFFFFFFFF are skipped (UNKNOWN_SIZE_32).
 * The declared frame count comes from the COMM or ds64 note, or from the
 * data size for fixed-width samples (bytes_per_frame > 0); otherwise the
 * message quotes the note. The log is text for people, not an interface: a
 * libsndfile that words it differently makes this check miss, and the tests
 * (which pin each note) fail.
 */
static void find_truncation(SNDFILE *sf, long long bytes_per_frame, truncation *t)
{
    char log[LOG_BYTES];
    long long comm_frames = -1, ds64_frames = -1;
    memset(t, 0, sizeof *t);
    t->declared_frames = -1;
    log[0] = '\0';
    sf_command(sf, SFC_GET_LOG_INFO, log, (int)sizeof log);
    log[sizeof log - 1] = '\0';
    for (char *line = log; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char key[32];
        long long declared, actual;
        if (parse_size_note(line, key, sizeof key, &declared, &actual)) {
            int data = strcmp(key, "data") == 0 || strcmp(key, "Data Size") == 0;
            if ((data || strcmp(key, "SSND") == 0 || strcmp(key, "riff") == 0) &&
                declared > actual && declared != UNKNOWN_SIZE_32 && !t->found) {
                t->found = 1;
                one_line(line, t->note, sizeof t->note);
                if (data && bytes_per_frame > 0)
                    t->declared_frames = declared / bytes_per_frame;
            }
        } else {
            long long n, m;
            if (sscanf(line, "*** Frame count read from 'COMM' chunk (%lld)", &n) == 1)
                comm_frames = n;
            else if (sscanf(line,
                            "*** Calculated frame count %lld does not match value from "
                            "'ds64' chunk of %lld",
                            &m, &n) == 2 &&
                     m < n) {
                ds64_frames = n;
                if (!t->found) {
                    t->found = 1;
                    one_line(line, t->note, sizeof t->note);
                }
            }
        }
        line = next;
    }
    if (t->found && comm_frames >= 0)
        t->declared_frames = comm_frames;
    if (t->found && ds64_frames >= 0)
        t->declared_frames = ds64_frames;
}

/* Gives rec the regular time base of the header's rate. */
static int set_file_rate(nt_recording *rec, double rate_hz, size_t max_bytes, nt_error *err)
{
    rec->rate_hz = rate_hz;
    if (rec->n_frames == 0)
        return NT_OK;
    if (rec->n_frames > max_bytes / sizeof *rec->time_s) {
        char limit[32];
        nt_format_bytes((double)max_bytes, limit, sizeof limit);
        return nt_error_set(err, NT_ERR_TOO_LARGE,
                            "the time axis of %zu frames needs more than the %s limit",
                            rec->n_frames, limit);
    }
    rec->time_s = malloc(rec->n_frames * sizeof *rec->time_s);
    if (rec->time_s == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the time axis of %zu frames",
                            rec->n_frames);
    for (size_t i = 0; i < rec->n_frames; i++)
        rec->time_s[i] = (double)i / rate_hz;
    rec->time_source = NT_SOURCE_FILE_RATE;
    return NT_OK;
}

/*
 * Reads every frame of sf into rec->traces (allocated, n_rois x n_frames),
 * CHUNK_FRAMES at a time into one interleaved buffer, scattering each chunk
 * to the ROI-major traces. Stops at the end of the data: fewer frames than
 * declared is a truncated file.
 */
static int read_samples(SNDFILE *sf, const codec *c, nt_recording *rec, nt_error *err)
{
    size_t n_ch = rec->n_rois, n_frames = rec->n_frames;
    size_t chunk = CHUNK_SAMPLES / n_ch;
    if (chunk > CHUNK_FRAMES)
        chunk = CHUNK_FRAMES;
    if (chunk > n_frames)
        chunk = n_frames;
    if (chunk == 0)
        chunk = 1;
    int use_double = c->mode != READ_FLOAT;
    /* chunk * n_ch <= max(CHUNK_SAMPLES, n_ch), and n_ch * n_frames floats
     * were found addressable: no overflow. */
    void *buf = malloc(chunk * n_ch * (use_double ? sizeof(double) : sizeof(float)));
    if (buf == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a read buffer of %zu frames",
                            chunk);
    sf_command(sf, SFC_SET_NORM_FLOAT, NULL, SF_FALSE);
    sf_command(sf, SFC_SET_NORM_DOUBLE, NULL, c->mode == READ_SCALED ? SF_TRUE : SF_FALSE);
    double scale = c->mode == READ_SCALED ? ldexp(1.0, c->bits - 1) : 1.0;
    float offset = c->subtype == SF_FORMAT_PCM_U8 ? 128.0f : 0.0f;

    size_t done = 0;
    while (done < n_frames) {
        size_t want = n_frames - done < chunk ? n_frames - done : chunk;
        sf_count_t got = use_double ? sf_readf_double(sf, buf, (sf_count_t)want)
                                    : sf_readf_float(sf, buf, (sf_count_t)want);
        if (got <= 0)
            break;
        size_t n = (size_t)got < want ? (size_t)got : want;
        for (size_t r = 0; r < n_ch; r++) {
            float *dst = rec->traces + r * n_frames + done;
            if (use_double) {
                const double *src = (const double *)buf + r;
                for (size_t i = 0; i < n; i++)
                    dst[i] = (float)(src[i * n_ch] * scale);
            } else {
                const float *src = (const float *)buf + r;
                for (size_t i = 0; i < n; i++)
                    dst[i] = src[i * n_ch] + offset;
            }
        }
        done += n;
    }
    free(buf);

    if (sf_error(sf) != SF_ERR_NO_ERROR) {
        char detail[256];
        one_line(sf_strerror(sf), detail, sizeof detail);
        return nt_error_set(err, NT_ERR_CORRUPT, "cannot read the samples after frame %zu: %s",
                            done, detail);
    }
    if (done < n_frames)
        return nt_error_set(err, NT_ERR_CORRUPT, "declares %zu frames, holds only %zu",
                            n_frames, done);
    return NT_OK;
}

/*
 * Reads the open sound file sf, described by info, into a new *out.
 * file_size is the number of bytes libsndfile reads from (-1 if unknown).
 * Checks run from the cheapest to the costliest: the header's values, the
 * declared size against the file, libsndfile's truncation notes, the memory
 * limit; then the time axis and the samples.
 */
static int read_open(SNDFILE *sf, const SF_INFO *info, long long file_size,
                     const nt_read_options *opts, nt_recording **out, nt_error *err)
{
    nt_recording *rec = NULL;
    int status = NT_OK;
    const codec *c = find_codec(info->format & SF_FORMAT_SUBMASK);
    const container *k = find_container(info->format & SF_FORMAT_TYPEMASK);

    *out = NULL;
    if (c == NULL)
        return nt_error_set(err, NT_ERR_FORMAT, "unsupported audio encoding (libsndfile 0x%04x)",
                            info->format & SF_FORMAT_SUBMASK);
    if (info->channels < 0)
        return nt_error_set(err, NT_ERR_CORRUPT, "declares %d channels", info->channels);
    if (info->samplerate <= 0)
        return nt_error_set(err, NT_ERR_FORMAT, "sample rate %d Hz is not positive",
                            info->samplerate);
    if (info->frames < 0 || info->frames == SF_COUNT_MAX)
        return nt_error_set(err, NT_ERR_CORRUPT,
                            "does not declare its length (an unfinished or truncated stream)");

    size_t n_ch = (size_t)info->channels;
    uint64_t frames = (uint64_t)info->frames;
    if (frames > (uint64_t)(SIZE_MAX / sizeof(float)) / (n_ch > 0 ? n_ch : 1))
        return nt_error_set(err, NT_ERR_TOO_LARGE,
                            "declares %zu channels x %lld frames, more than this computer can "
                            "address",
                            n_ch, (long long)info->frames);
    size_t n_frames = (size_t)frames;
    size_t n_samples = n_ch * n_frames;

    /* libsndfile already bounds frames by the file for these containers;
     * checking again keeps the allocation bound independent of it. */
    long long bytes_per_frame = 0;
    if (k != NULL && k->uncompressed)
        bytes_per_frame = (long long)c->bytes * info->channels;
    if (bytes_per_frame > 0 && file_size >= 0 &&
        frames > (uint64_t)file_size / (uint64_t)bytes_per_frame)
        return nt_error_set(err, NT_ERR_CORRUPT,
                            "declares %lld frames of %lld bytes, but the file holds only %lld "
                            "bytes",
                            (long long)info->frames, bytes_per_frame, file_size);

    truncation t;
    find_truncation(sf, bytes_per_frame, &t);
    if (t.found) {
        if (t.declared_frames > (long long)info->frames)
            return nt_error_set(err, NT_ERR_CORRUPT, "declares %lld frames, holds only %lld",
                                t.declared_frames, (long long)info->frames);
        return nt_error_set(err, NT_ERR_CORRUPT,
                            "the header declares more data than the file holds (libsndfile: "
                            "\"%s\"); holds only %lld frames",
                            t.note, (long long)info->frames);
    }

    if (!opts->header_only && n_samples > opts->max_bytes / sizeof(float)) {
        char need[32], limit[32];
        nt_format_bytes((double)n_samples * sizeof(float), need, sizeof need);
        nt_format_bytes((double)opts->max_bytes, limit, sizeof limit);
        return nt_error_set(err, NT_ERR_TOO_LARGE,
                            "declares %zu channels x %zu frames (%s as float32), more than the "
                            "%s limit",
                            n_ch, n_frames, need, limit);
    }

    rec = nt_recording_new(0, 0);
    if (rec == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a recording");
    rec->n_rois = n_ch;
    rec->n_frames = n_frames;
    snprintf(rec->sample_type, sizeof rec->sample_type, "%s", c->sample_type);
    if (k != NULL) {
        snprintf(rec->storage, sizeof rec->storage, "%s%s%s", k->name, c->name ? ", " : "",
                 c->name ? c->name : "");
    } else {
        SF_FORMAT_INFO fi;
        memset(&fi, 0, sizeof fi);
        fi.format = info->format & SF_FORMAT_TYPEMASK;
        if (sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, (int)sizeof fi) == 0 && fi.name != NULL)
            one_line(fi.name, rec->storage, sizeof rec->storage);
        else
            snprintf(rec->storage, sizeof rec->storage, "audio container 0x%x",
                     (unsigned)(info->format & SF_FORMAT_TYPEMASK));
    }

    status = set_file_rate(rec, (double)info->samplerate, opts->max_bytes, err);
    if (status != NT_OK || opts->header_only || n_samples == 0)
        goto cleanup;

    rec->traces = malloc(n_samples * sizeof *rec->traces);
    if (rec->traces == NULL) {
        char need[32];
        nt_format_bytes((double)n_samples * sizeof(float), need, sizeof need);
        status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate %s of traces", need);
        goto cleanup;
    }
    status = read_samples(sf, c, rec, err);
cleanup:
    if (status == NT_OK)
        *out = rec;
    else
        nt_recording_free(rec);
    return status;
}

int nt_read_sndfile(const char *path, const nt_read_options *opts, nt_recording **out,
                    nt_error *err)
{
    nt_read_options defaults;
    SF_INFO info;

    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_read_sndfile: path and out must not be NULL");
    *out = NULL;
    if (opts == NULL) {
        nt_read_options_default(&defaults);
        opts = &defaults;
    }
    /* sf_open would wait on a FIFO for a writer; a directory or device is
     * not a recording either. */
    long long size;
    int st = nt_stat_regular(path, &size, err);
    if (st != NT_OK)
        return st;

    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (sf == NULL)
        return open_failure(err);
    int status = read_open(sf, &info, size, opts, out, err);
    sf_close(sf);
    return status;
}

/* ------------------------------------------------- reading from memory */

/* A read-only file in memory for libsndfile's virtual I/O. */
typedef struct memfile {
    const unsigned char *data;
    sf_count_t size;
    sf_count_t pos; /* may lie past the end, as a file offset may */
} memfile;

static sf_count_t mem_get_filelen(void *user)
{
    return ((const memfile *)user)->size;
}

static sf_count_t mem_seek(sf_count_t offset, int whence, void *user)
{
    memfile *m = user;
    sf_count_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = m->pos; break;
    case SEEK_END: base = m->size; break;
    default: return -1;
    }
    if (offset < 0 ? offset < -base : offset > SF_COUNT_MAX - base)
        return -1;
    m->pos = base + offset;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *user)
{
    memfile *m = user;
    if (count <= 0 || m->pos >= m->size)
        return 0;
    sf_count_t n = m->size - m->pos < count ? m->size - m->pos : count;
    memcpy(ptr, m->data + m->pos, (size_t)n);
    m->pos += n;
    return n;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *user)
{
    (void)ptr;
    (void)count;
    (void)user;
    return 0;
}

static sf_count_t mem_tell(void *user)
{
    return ((const memfile *)user)->pos;
}

int nt_read_sndfile_memory(const void *data, size_t size, const nt_read_options *opts,
                           nt_recording **out, nt_error *err)
{
    nt_read_options defaults;
    SF_INFO info;

    if (out == NULL || (data == NULL && size > 0))
        return nt_error_set(err, NT_ERR_INVALID,
                            "nt_read_sndfile_memory: data and out must not be NULL");
    *out = NULL;
    if (opts == NULL) {
        nt_read_options_default(&defaults);
        opts = &defaults;
    }
    if (size == 0)
        return nt_error_set(err, NT_ERR_FORMAT, "file is empty");
    if ((uint64_t)size > (uint64_t)SF_COUNT_MAX)
        return nt_error_set(err, NT_ERR_TOO_LARGE, "buffer of %zu bytes is too large", size);

    memfile m = {data, (sf_count_t)size, 0};
    SF_VIRTUAL_IO io = {mem_get_filelen, mem_seek, mem_read, mem_write, mem_tell};
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, &info, &m);
    if (sf == NULL)
        return open_failure(err);
    int status = read_open(sf, &info, (long long)size, opts, out, err);
    sf_close(sf);
    return status;
}
