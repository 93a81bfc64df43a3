/*
 * nirtrace — command-line front end of libnirtrace.
 *
 *   nirtrace detect [OPTIONS] FILE...   per-trial CSV table
 *   nirtrace events [OPTIONS] FILE...   per-event CSV table (spontaneous transients)
 *   nirtrace info [OPTIONS] FILE...     what a file holds, valid for detect?
 *   nirtrace compare [OPTIONS] EXPECTED.csv ACTUAL.csv
 *
 * Uses only the public API (nirtrace.h). Output goes to stdout or -o FILE;
 * messages go to stderr as "nirtrace: FILE: message". Exit status: 0 success,
 * 1 when an input could not be processed (or tables differ, for compare),
 * 2 for a bad command line.
 */
#include "nirtrace.h"

#include "batch.h"
#include "inputs.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_INPUT = 1, EXIT_USAGE = 2 };

static const char *const usage_text =
    "Usage: nirtrace COMMAND [OPTIONS] FILE...\n"
    "\n"
    "Evoked-release analysis of near-infrared nanosensor recordings.\n"
    "\n"
    "Commands:\n"
    "  detect FILE...       one CSV row per (ROI, stimulus): detected, amplitude,\n"
    "                       latency and kinetics\n"
    "  events FILE...       one CSV row per spontaneous transient of each ROI:\n"
    "                       onset, peak, amplitude, rise, half width, decay, area\n"
    "  info FILE...         what each file holds, and whether detect can use it\n"
    "  compare EXP ACT      compare two CSV tables within tolerances (exit 1 if\n"
    "                       they differ)\n"
    "  convert IN OUT.h5    write any readable recording in the native HDF5 layout\n"
    "  merge PART.csv...    concatenate result tables of one run\n"
    "\n"
    "Run 'nirtrace COMMAND --help' for a command's options.\n"
    "  -h, --help           this help       -V, --version   the version\n";

static const char *const detect_help =
    "Usage: nirtrace detect [OPTIONS] FILE...\n"
    "\n"
    "Reads each recording (HDF5/NWB, WAV/FLAC/AIFF/CAF/RF64/W64, CSV/TSV; see\n"
    "README) and writes one CSV row per (ROI, stimulus) to stdout, rows in input\n"
    "order. A file that cannot be processed is reported on stderr and the others\n"
    "are still written (exit status 1).\n"
    "\n"
    "Baseline:\n"
    "      --baseline S         F0 = mean of the S seconds before the stimulus [5]\n"
    "      --drift MODEL        photobleaching correction fitted before the\n"
    "                           stimulus only: none, linear, exp [exp]\n"
    "      --drift-window S     pre-stimulus span the drift is fitted on [40]\n"
    "      --noise-window S     pre-stimulus span of the noise sigma [10]\n"
    "Filter (zero-phase, FFT):\n"
    "      --lowpass HZ         Butterworth-magnitude cutoff, 0 = off [2]\n"
    "      --order N            Butterworth order [4]\n"
    "Detection:\n"
    "      --detector D         threshold: filtered dF/F above K sigma for a minimum\n"
    "                           duration; matched: whitened matched filter against\n"
    "                           a bank of responses, noise learnt per ROI [matched]\n"
    "      --false-alarm P      matched: false-alarm probability per trial [0.002]\n"
    "      --template T         matched: the response shapes looked for: bank (four\n"
    "                           shapes, fast to slow sensors), fixed (--tau-on,\n"
    "                           --tau-off), auto (the median kinetics of the\n"
    "                           file's confident responses, then a second pass)\n"
    "                           [bank; fixed when --tau-on/--tau-off are given]\n"
    "      --tau-on S, --tau-off S  rise and decay time constants of the fixed\n"
    "                           shape A(1-exp(-t/tau_on))exp(-t/tau_off) [0.5, 5]\n"
    "      --threshold K        threshold in robust sigma (1.4826 MAD) [3]\n"
    "      --min-duration S     must stay above threshold this long [0.5]\n"
    "      --window S           onset within S seconds of the stimulus [5]\n"
    "      --jitter N           stimulus timing tolerance, frames [2]\n"
    "Measures:\n"
    "      --peak-max S         search the peak up to S after the stimulus [30]\n"
    "      --decay-max S        follow the decay up to S after the stimulus [90]\n"
    "Batch (FILE may be a directory, searched for recordings, or a quoted glob):\n"
    "  -j, --jobs N             worker processes [the number of cores]\n"
    "      --threads N          threads per input, 0 = one per core [all cores for\n"
    "                           one input; cores / jobs for a batch]\n"
    "      --files-from LIST    also read input paths from LIST, one per line\n"
    "                           ('-' for stdin)\n"
    "      --timeout S          give up on an input after S seconds, 0 = never [600]\n"
    "      --progress, --no-progress  progress line on stderr [when a terminal]\n"
    "      --manifest STUDY.csv  append STUDY's columns (animal, genotype, ...) to\n"
    "                           the rows of each file listed in its `file` column;\n"
    "                           with no FILE given, its files are the inputs\n"
    "Output:\n"
    "  -o, --output FILE        write the CSV to FILE (atomically) instead of stdout\n"
    "      --out-dir DIR        write one table per input, DIR/NAME.csv, and the\n"
    "                           parameters in DIR/params.json, instead of one table\n"
    "      --resume             with --out-dir: skip inputs whose table exists (the\n"
    "                           parameters must match DIR/params.json)\n"
    "      --traces-out FILE    also write the processed traces (dF/F, filtered) of\n"
    "                           every ROI and trial window as HDF5, for plotting\n"
    "      --params-out FILE    also write the parameters used as JSON\n"
    "      --print-params       print the parameters as JSON and exit\n"
    "  -q, --quiet              no warnings, progress or summary on stderr (errors\n"
    "                           still shown)\n"
    "  -h, --help               this help\n"
    "\n"
    "Inputs are analysed in worker processes, one input at a time each: a crash, a\n"
    "hang or a runaway allocation fails that input only (its worker is replaced).\n"
    "Rows come out in input order whatever -j is.\n"
    "Exit status: 0 all files processed, 1 some file failed, 2 bad command line.\n";

static const char *const info_help =
    "Usage: nirtrace info [OPTIONS] FILE...\n"
    "\n"
    "Prints the shape, sample type, storage, time base, stimuli, labels and ROI\n"
    "names of each file, and whether detect can use it as it is (or with the\n"
    "input options given). Exit status 1 when a file cannot be read or is not\n"
    "valid.\n";

static const char *const convert_help =
    "Usage: nirtrace convert [OPTIONS] IN OUT.h5\n"
    "\n"
    "Writes any readable recording into the native nirtrace HDF5 layout: /traces\n"
    "chunked and deflate-compressed, rate_hz or /time, /stim/onsets and labels,\n"
    "/rois/names. The input options (below) are applied first, so that a file\n"
    "lacking a rate or stimuli is archived complete. OUT is replaced atomically.\n";

static const char *const merge_help =
    "Usage: nirtrace merge [-o ALL.csv] [--force] PART.csv...\n"
    "\n"
    "Concatenates result tables (the parts of a batch split across machines):\n"
    "the header once, then each part's rows in the order given. Parts whose\n"
    "headers differ are refused, and so are parts made with different\n"
    "parameters or versions (their PART.params.json, as --params-out writes it,\n"
    "differ) unless --force. With -o, the parts' parameters are kept beside the\n"
    "output as ALL.params.json.\n";

static const char *const compare_help =
    "Usage: nirtrace compare [--rtol R] [--atol A] EXPECTED.csv ACTUAL.csv\n"
    "\n"
    "Compares two CSV tables cell by cell: numbers agree when\n"
    "|expected - actual| <= atol + rtol * |expected| (NaN only equals NaN),\n"
    "other cells must be equal. Prints each difference.\n"
    "      --rtol R   relative tolerance [1e-6]\n"
    "      --atol A   absolute tolerance [1e-12]\n"
    "      --ignore COLS  comma-separated columns not to compare (e.g. file)\n"
    "Exit status: 0 same, 1 different, 2 a file could not be read or bad usage.\n";

static int quiet;

static void msg(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("nirtrace: ", stderr);
    if (file != NULL)
        fprintf(stderr, "%s: ", file);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Ends a command whose output went to stdout: a write error (a full disk, a
 * closed pipe) is reported and fails the command. */
static int finish_stdout(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "nirtrace: standard output: write error: %s\n", strerror(errno));
        return status == EXIT_OK ? EXIT_INPUT : status;
    }
    return status;
}

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("nirtrace: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'nirtrace --help'.\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* Parses a whole string as a finite double; returns 0 or -1. */
static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* A comma-separated list of numbers (as doubles); caller frees *out. */
static int parse_list(const char *s, double **out, size_t *n)
{
    size_t cap = 1;
    for (const char *c = s; *c; c++)
        cap += (*c == ',');
    double *v = malloc(cap * sizeof *v);
    char *copy = malloc(strlen(s) + 1);
    if (v == NULL || copy == NULL) {
        free(v);
        free(copy);
        return -1;
    }
    strcpy(copy, s);
    size_t k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (parse_double(tok, &v[k]) != 0) {
            free(v);
            free(copy);
            return -1;
        }
        k++;
    }
    free(copy);
    if (k == 0) {
        free(v);
        return -1;
    }
    *out = v;
    *n = k;
    return 0;
}

/* ------------------------------------------------------------ overrides */

/* How to read the inputs, and what to put in place of what they lack. */
typedef struct overrides {
    double rate_hz;     /* NaN: none */
    double *stim_s;     /* NULL: none */
    size_t n_stim;
    long *stim_frames;  /* NULL: none */
    size_t n_frames;
    const char *trigger;          /* trigger channel: ROI name or 1-based number */
    double trigger_threshold;     /* NaN: half-way between the channel's extremes */
    double trigger_refractory_s;  /* edges closer than this merge into one trial */
    nt_read_options read;         /* dataset, layout, delimiter, ... */
} overrides;

static void overrides_init(overrides *o)
{
    memset(o, 0, sizeof *o);
    o->rate_hz = NAN;
    o->trigger_threshold = NAN;
    o->trigger_refractory_s = 2.0;
    nt_read_options_default(&o->read);
}

static void overrides_free(overrides *o)
{
    free(o->stim_s);
    free(o->stim_frames);
}

static int set_stim_frames(overrides *o, const char *arg)
{
    double *v;
    size_t n;
    if (parse_list(arg, &v, &n) != 0)
        return -1;
    long *frames = malloc(n * sizeof *frames);
    if (frames == NULL) {
        free(v);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] != floor(v[i]) || v[i] < 0 || v[i] > 1e15) {
            free(v);
            free(frames);
            return -1;
        }
        frames[i] = (long)v[i];
    }
    free(v);
    free(o->stim_frames);
    o->stim_frames = frames;
    o->n_frames = n;
    return 0;
}

/* The trigger channel named by name (a ROI name, else a 1-based number). */
static int find_channel(const nt_recording *rec, const char *name, size_t *index, nt_error *err)
{
    if (rec->roi_names != NULL)
        for (size_t r = 0; r < rec->n_rois; r++)
            if (strcmp(rec->roi_names[r], name) == 0) {
                *index = r;
                return NT_OK;
            }
    long k;
    if (parse_long(name, &k) == 0 && k >= 1 && (size_t)k <= rec->n_rois) {
        *index = (size_t)k - 1;
        return NT_OK;
    }
    snprintf(err->message, sizeof err->message,
             "--trigger %s: no such channel (a name, or a number from 1 to %zu)", name,
             rec->n_rois);
    return err->status = NT_ERR_INVALID;
}

/* Applies, in order: the rate (a trigger and stimulus frames need the time
 * base), the trigger channel, then explicit stimuli. */
static int apply_overrides(const overrides *o, nt_recording *rec, nt_error *err)
{
    int status = NT_OK;
    if (!isnan(o->rate_hz))
        status = nt_recording_set_rate(rec, o->rate_hz, err);
    if (status == NT_OK && o->trigger != NULL) {
        size_t channel = 0;
        status = find_channel(rec, o->trigger, &channel, err);
        if (status == NT_OK)
            status = nt_recording_stims_from_trigger(rec, channel, o->trigger_threshold,
                                                     o->trigger_refractory_s, err);
    }
    if (status == NT_OK && o->stim_s != NULL)
        status = nt_recording_set_stims(rec, o->stim_s, o->n_stim, err);
    if (status == NT_OK && o->stim_frames != NULL)
        status = nt_recording_set_stim_frames(rec, o->stim_frames, o->n_frames, err);
    return status;
}

/* ---------------------------------------------------------- atomic output */

/* The output file is written under a temporary name in its directory and
 * renamed into place when complete, so that a reader never sees a partial
 * table and an older file of that name survives a failed run. A path that
 * names something other than a regular file (a device such as /dev/null, a
 * FIFO) is written directly: renaming over it would replace the device. */
static char temp_path[4096];
static int output_direct;

static void on_signal(int sig)
{
    if (temp_path[0] != '\0')
        unlink(temp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static FILE *output_open(const char *path)
{
    struct stat st;
    output_direct = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    if (output_direct) {
        if (S_ISDIR(st.st_mode)) {
            msg(path, "cannot write output: is a directory");
            return NULL;
        }
        FILE *f = fopen(path, "w");
        if (f == NULL)
            msg(path, "cannot open output: %s", strerror(errno));
        return f;
    }
    if (snprintf(temp_path, sizeof temp_path, "%s.tmp.XXXXXX", path) >= (int)sizeof temp_path) {
        msg(path, "output path is too long");
        temp_path[0] = '\0';
        return NULL;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    int fd = mkstemp(temp_path);
    if (fd < 0) {
        msg(path, "cannot create output: %s", strerror(errno));
        temp_path[0] = '\0';
        return NULL;
    }
    /* mkstemp creates 0600; give the table the mode any new file gets. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        msg(path, "cannot set output permissions: %s", strerror(errno));
        close(fd);
        unlink(temp_path);
        temp_path[0] = '\0';
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        msg(path, "cannot open output: %s", strerror(errno));
        close(fd);
        unlink(temp_path);
        temp_path[0] = '\0';
    }
    return f;
}

/* Flushes, syncs and renames into place (ok != 0), or discards (ok == 0).
 * Returns 0 on success. */
static int output_close(FILE *f, const char *path, int ok)
{
    int failed = 0;
    if (output_direct) {
        if (fflush(f) != 0 || ferror(f)) {
            msg(path, "write error: %s", strerror(errno));
            failed = 1;
        }
        if (fclose(f) != 0 && !failed) {
            msg(path, "write error: %s", strerror(errno));
            failed = 1;
        }
        return failed || !ok ? -1 : 0;
    }
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        if (ok)
            msg(path, "write error: %s", strerror(errno));
        failed = 1;
    }
    if (fclose(f) != 0 && !failed) {
        msg(path, "write error: %s", strerror(errno));
        failed = 1;
    }
    if (failed || !ok) {
        unlink(temp_path);
        temp_path[0] = '\0';
        return -1;
    }
    if (rename(temp_path, path) != 0) {
        msg(path, "cannot move output into place: %s", strerror(errno));
        unlink(temp_path);
        temp_path[0] = '\0';
        return -1;
    }
    temp_path[0] = '\0';
    return 0;
}

static int write_text_file(const char *path, const char *text)
{
    FILE *f = output_open(path);
    if (f == NULL)
        return -1;
    fputs(text, f);
    return output_close(f, path, 1);
}

/* --------------------------------------------------------------- detect */

enum {
    OPT_RATE = 256, OPT_STIM, OPT_STIM_FRAME, OPT_BASELINE, OPT_DRIFT, OPT_DRIFT_WINDOW,
    OPT_NOISE_WINDOW, OPT_LOWPASS, OPT_ORDER, OPT_THRESHOLD, OPT_MIN_DURATION, OPT_WINDOW,
    OPT_JITTER, OPT_PEAK_MAX, OPT_DECAY_MAX, OPT_PARAMS_OUT, OPT_PRINT_PARAMS, OPT_MAX_MEMORY,
    OPT_RTOL, OPT_ATOL, OPT_LAYOUT, OPT_TIME, OPT_STIM_DATASET, OPT_SERIES, OPT_TRIAL_LABEL,
    OPT_DELIMITER, OPT_HEADER, OPT_NO_HEADER, OPT_TRIGGER, OPT_TRIGGER_THRESHOLD,
    OPT_TRIGGER_REFRACTORY, OPT_TRACES_OUT, OPT_IGNORE, OPT_FILES_FROM, OPT_TIMEOUT,
    OPT_PROGRESS, OPT_NO_PROGRESS, OPT_MANIFEST, OPT_FORCE, OPT_OUT_DIR, OPT_RESUME, OPT_THREADS, OPT_DETECTOR,
    OPT_FALSE_ALARM,
    OPT_TEMPLATE,
    OPT_TAU_ON,
    OPT_TAU_OFF,
    OPT_GRID
};

/* The input options every command that reads recordings takes. */
#define INPUT_LONGOPTS                                                          \
    {"rate", required_argument, NULL, OPT_RATE},                                \
    {"stim", required_argument, NULL, OPT_STIM},                                \
    {"stim-frame", required_argument, NULL, OPT_STIM_FRAME},                    \
    {"layout", required_argument, NULL, OPT_LAYOUT},                            \
    {"time", required_argument, NULL, OPT_TIME},                                \
    {"stim-dataset", required_argument, NULL, OPT_STIM_DATASET},                \
    {"series", required_argument, NULL, OPT_SERIES},                            \
    {"trial-label", required_argument, NULL, OPT_TRIAL_LABEL},                  \
    {"delimiter", required_argument, NULL, OPT_DELIMITER},                      \
    {"header", no_argument, NULL, OPT_HEADER},                                  \
    {"no-header", no_argument, NULL, OPT_NO_HEADER},                            \
    {"trigger", required_argument, NULL, OPT_TRIGGER},                          \
    {"trigger-threshold", required_argument, NULL, OPT_TRIGGER_THRESHOLD},      \
    {"trigger-refractory", required_argument, NULL, OPT_TRIGGER_REFRACTORY},    \
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},                    \
    {"grid", required_argument, NULL, OPT_GRID}

static const char *const input_help =
    "Input (every format; overrides replace what the file says):\n"
    "      --rate HZ            frame rate (lab default: 8.33)\n"
    "      --stim S[,S...]      stimulus onsets, seconds from the first frame\n"
    "      --stim-frame N[,N...] stimulus onsets as 0-based frame indices\n"
    "                           (lab default: 200)\n"
    "      --trigger CHANNEL    take this channel (ROI name or 1-based number) as\n"
    "                           the stimulator's trigger: onsets are its rising edges\n"
    "      --trigger-threshold V  edge level [half-way between its min and max]\n"
    "      --trigger-refractory S  edges within S of an accepted one are ignored,\n"
    "                           so a train is one trial; 0 = one per pulse [2]\n"
    "      --max-memory MB      refuse recordings larger than MB megabytes\n"
    "                           [half the physical memory]\n"
    "  HDF5 and NWB (FILE.h5:/group/data names any 1-D or 2-D dataset, or a 3-D\n"
    "  movie [frames][height][width]):\n"
    "      --grid PX            movies: square ROIs of PX x PX pixels, one per whole\n"
    "                           tile; edge pixels past the last whole tile are\n"
    "                           dropped [15]\n"
    "      --layout L           rois-by-frames or frames-by-rois [the format's own]\n"
    "      --time PATH          dataset of frame times in seconds\n"
    "      --stim-dataset PATH  dataset of stimulus onsets in seconds\n"
    "      --series NAME        NWB TimeSeries to read [first RoiResponseSeries]\n"
    "      --trial-label COL    NWB trials column used as the stimulus label\n"
    "  CSV/TSV text:\n"
    "      --delimiter C        ',', ';' or 'tab' [detected]\n"
    "      --header, --no-header  whether the first row names the columns [detected]\n";

/* Handles the input options shared by every command that reads; returns 1
 * when opt was one of them, 0 when not, -1 on a bad value. */
static int override_option(int opt, const char *arg, overrides *o)
{
    double *v, mb;
    size_t n;
    switch (opt) {
    case OPT_LAYOUT:
        if (strcmp(arg, "rois-by-frames") == 0)
            o->read.layout = NT_LAYOUT_ROIS_BY_FRAMES;
        else if (strcmp(arg, "frames-by-rois") == 0)
            o->read.layout = NT_LAYOUT_FRAMES_BY_ROIS;
        else
            return -1;
        return 1;
    case OPT_TIME: o->read.time_dataset = arg; return 1;
    case OPT_STIM_DATASET: o->read.stim_dataset = arg; return 1;
    case OPT_SERIES: o->read.series = arg; return 1;
    case OPT_TRIAL_LABEL: o->read.trial_label = arg; return 1;
    case OPT_DELIMITER:
        if (strcmp(arg, "tab") == 0 || strcmp(arg, "\\t") == 0 || strcmp(arg, "\t") == 0)
            o->read.delimiter = '\t';
        else if (strcmp(arg, ",") == 0 || strcmp(arg, ";") == 0)
            o->read.delimiter = arg[0];
        else
            return -1;
        return 1;
    case OPT_HEADER: o->read.header = 1; return 1;
    case OPT_NO_HEADER: o->read.header = 0; return 1;
    case OPT_TRIGGER: o->trigger = arg; return 1;
    case OPT_TRIGGER_THRESHOLD:
        return parse_double(arg, &o->trigger_threshold) == 0 ? 1 : -1;
    case OPT_TRIGGER_REFRACTORY:
        return parse_double(arg, &o->trigger_refractory_s) == 0 && o->trigger_refractory_s >= 0
                   ? 1
                   : -1;
    case OPT_GRID:
        if (parse_double(arg, &mb) != 0 || mb != floor(mb) || mb < 1 || mb > 65535)
            return -1;
        o->read.grid_px = (size_t)mb;
        return 1;
    case OPT_MAX_MEMORY:
        if (parse_double(arg, &mb) != 0 || !(mb > 0) || mb > 1e12)
            return -1;
        o->read.max_bytes = (size_t)(mb * 1024.0 * 1024.0);
        return 1;
    case OPT_RATE:
        if (parse_double(arg, &o->rate_hz) != 0 || !(o->rate_hz > 0))
            return -1;
        return 1;
    case OPT_STIM:
        if (parse_list(arg, &v, &n) != 0)
            return -1;
        free(o->stim_s);
        o->stim_s = v;
        o->n_stim = n;
        return 1;
    case OPT_STIM_FRAME:
        return set_stim_frames(o, arg) == 0 ? 1 : -1;
    default:
        return 0;
    }
}

/* Reads one file (header only when asked and no trigger needs the samples)
 * and applies the overrides; reports failures. */
static nt_recording *load(const char *path, const overrides *o, int header_only)
{
    nt_error err = {0, ""};
    nt_recording *rec = NULL;
    nt_read_options ropts = o->read;
    ropts.header_only = header_only && o->trigger == NULL;
    int status = nt_recording_read(path, &ropts, &rec, &err);
    if (status == NT_OK)
        status = apply_overrides(o, rec, &err);
    if (status != NT_OK) {
        msg(path, "%s", err.message[0] ? err.message : nt_strerror(status));
        nt_recording_free(rec);
        return NULL;
    }
    return rec;
}

/* Warns once per ROI about rows that could not be measured. */
static void warn_rows(const char *path, const nt_recording *rec, const nt_trial_result *res)
{
    if (quiet)
        return;
    const unsigned unmeasured = NT_FLAG_NONFINITE | NT_FLAG_F0_NONPOSITIVE |
                                NT_FLAG_NO_BASELINE | NT_FLAG_FLAT;
    for (size_t r = 0; r < rec->n_rois; r++) {
        for (size_t k = 0; k < rec->n_stims; k++) {
            const nt_trial_result *x = &res[r * rec->n_stims + k];
            if (!(x->flags & unmeasured))
                continue;
            char roi[64];
            if (rec->roi_names != NULL)
                snprintf(roi, sizeof roi, "%s", rec->roi_names[r]);
            else
                snprintf(roi, sizeof roi, "%zu", r + 1);
            const char *why = (x->flags & NT_FLAG_NONFINITE) ? "has NaN or Inf samples"
                              : (x->flags & NT_FLAG_F0_NONPOSITIVE)
                                  ? "F0 <= 0, so dF/F is undefined"
                              : (x->flags & NT_FLAG_NO_BASELINE)
                                  ? "fewer than 3 baseline samples before the stimulus"
                                  : "constant baseline (zero noise)";
            msg(path, "roi %s, trial %zu: %s; its measures are NaN", roi, k + 1, why);
            if (x->flags & NT_FLAG_NONFINITE)
                break; /* one line per ROI is enough for bad samples */
        }
    }
}

/* Sets err like the library does (the CLI cannot use its private helper). */
static int nt_error_set_public(nt_error *err, int status, const char *text)
{
    err->status = status;
    snprintf(err->message, sizeof err->message, "%s", text);
    return status;
}

/* The long name of option value opt in longopts, for messages. */
static const char *option_name(const struct option *longopts, int opt)
{
    for (; longopts->name != NULL; longopts++)
        if (longopts->val == opt)
            return longopts->name;
    return "?";
}

/* Adds the trace windows the analyzer kept for rec to the --traces-out file. */
static int add_windows(nt_traces_writer *w, const nt_analyzer *an, const char *path,
                       const nt_recording *rec)
{
    size_t n_win;
    const double *t, *d, *f;
    nt_error err = {0, ""};
    if (nt_analyzer_windows(an, &n_win, &t, &d, &f) != NT_OK) {
        msg(path, "no trace windows to write");
        return -1;
    }
    if (nt_traces_writer_add(w, path, rec->n_rois, rec->n_stims, n_win, t, d, f, rec->stim_s,
                             rec->roi_names, rec->stim_labels, &err) != NT_OK) {
        msg(path, "--traces-out: %s", err.message);
        return -1;
    }
    return 0;
}

/* What every input of one detect run shares. */
typedef struct detect_run {
    nt_analyzer *an;
    const overrides *o;
    char *const *paths;
    nt_traces_writer *traces; /* --traces-out, in-process runs only */
    const nt_manifest *manifest; /* --manifest, or NULL */
    const char *out_dir;         /* --out-dir: one table per input, or NULL */
} detect_run;

/*
 * Reads, analyses and writes the rows of input index to out; messages go to
 * stderr. Returns 0 when done, 1 when the input failed (said on stderr), 2
 * when it ran out of memory (the batch reports the memory limit).
 */
static int detect_one(void *ctx, size_t index, FILE *out)
{
    const detect_run *run = ctx;
    const char *path = run->paths[index];
    nt_error err = {0, ""};
    nt_recording *rec = NULL;
    nt_read_options ropts = run->o->read;
    int st = nt_recording_read(path, &ropts, &rec, &err);
    if (st == NT_OK)
        st = apply_overrides(run->o, rec, &err);
    if (st == NT_OK)
        st = nt_recording_check(rec, &err);
    nt_trial_result *res = NULL;
    if (st == NT_OK) {
        res = malloc(rec->n_rois * rec->n_stims * sizeof *res);
        st = res == NULL ? nt_error_set_public(&err, NT_ERR_NOMEM, "out of memory for results")
                         : nt_analyzer_execute(run->an, rec, res, &err);
    }
    int result = 0;
    if (st == NT_ERR_NOMEM) {
        result = 2;
    } else if (st != NT_OK) {
        msg(path, "%s", err.message[0] ? err.message : nt_strerror(st));
        result = 1;
    } else {
        warn_rows(path, rec, res);
        char *const *extra = NULL;
        size_t n_extra = 0;
        if (run->manifest != NULL) {
            n_extra = nt_manifest_n_columns(run->manifest);
            long row = nt_manifest_find(run->manifest, path);
            if (row >= 0)
                extra = nt_manifest_values(run->manifest, (size_t)row);
            else if (!quiet)
                msg(path, "not listed in the manifest: its manifest columns are empty");
        }
        if (nt_csv_write_rows_ex(out, path, rec, res, rec->n_rois * rec->n_stims, extra,
                                 n_extra) != NT_OK)
            result = 1;
        if (run->traces != NULL && add_windows(run->traces, run->an, path, rec) != 0)
            result = 1;
    }
    free(res);
    nt_recording_free(rec);
    return result;
}

/* With --manifest and no FILE arguments, the manifest's files are the
 * inputs: as written when they exist from here, else relative to the
 * manifest's directory. */
static int add_manifest_inputs(input_list *inputs, const nt_manifest *m, const char *m_path)
{
    const char *slash = strrchr(m_path, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - m_path) + 1 : 0;
    for (size_t i = 0; i < nt_manifest_n_rows(m); i++) {
        const char *file = nt_manifest_file(m, i);
        char path[4096];
        if (file[0] != '/' && dir_len > 0 && access(file, F_OK) != 0)
            snprintf(path, sizeof path, "%.*s%s", (int)dir_len, m_path, file);
        else
            snprintf(path, sizeof path, "%s", file);
        if (inputs_add(inputs, path) != 0)
            return -1;
    }
    if (inputs->n == 0) {
        msg(m_path, "the manifest lists no files");
        return -1;
    }
    return 0;
}

/* Names the manifest rows that no input matched. */
static void report_unused_manifest_rows(const nt_manifest *m, const char *m_path,
                                        const input_list *inputs)
{
    size_t rows = nt_manifest_n_rows(m);
    unsigned char *used = calloc(rows > 0 ? rows : 1, 1);
    if (used == NULL)
        return;
    for (size_t i = 0; i < inputs->n; i++) {
        long r = nt_manifest_find(m, inputs->paths[i]);
        if (r >= 0)
            used[r] = 1;
    }
    for (size_t r = 0; r < rows; r++)
        if (!used[r])
            msg(m_path, "lists %s, which is not among the inputs", nt_manifest_file(m, r));
    free(used);
}

/* The table of input path in --out-dir dir: dir/BASENAME.csv (the
 * recording's extension replaced). */
static void out_dir_table(const char *dir, const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int n = dot != NULL && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, len, "%s/%.*s.csv", dir, n, base);
}

/* --out-dir: the input's own complete table (header and rows), written
 * atomically, so that a run cut short leaves only whole tables behind. */
static int detect_one_to_dir(void *ctx, size_t index, FILE *pipe_out)
{
    const detect_run *run = ctx;
    char table[4096];
    (void)pipe_out;
    out_dir_table(run->out_dir, run->paths[index], table, sizeof table);
    FILE *f = output_open(table);
    if (f == NULL)
        return 1;
    const nt_manifest *m = run->manifest;
    int r = nt_csv_write_header_ex(f, m ? nt_manifest_columns(m) : NULL,
                                   m ? nt_manifest_n_columns(m) : 0) != NT_OK;
    if (r == 0)
        r = detect_one(ctx, index, f);
    if (output_close(f, table, r == 0) != 0 && r == 0)
        r = 1;
    return r;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --out-dir names each table after its input's base name: two inputs with
 * the same name would overwrite one table. Returns 0, or -1 after naming
 * the clash. */
static int check_distinct_tables(const char *dir, char *const *paths, size_t n)
{
    char **names = calloc(n > 0 ? n : 1, sizeof *names);
    int status = names == NULL ? -1 : 0;
    for (size_t i = 0; status == 0 && i < n; i++) {
        char table[4096];
        out_dir_table(dir, paths[i], table, sizeof table);
        names[i] = malloc(strlen(table) + 1);
        if (names[i] == NULL)
            status = -1;
        else
            strcpy(names[i], table);
    }
    if (status == 0 && n > 1) {
        qsort(names, n, sizeof *names, compare_strings);
        for (size_t i = 1; i < n; i++)
            if (strcmp(names[i - 1], names[i]) == 0) {
                msg(names[i], "two inputs have this table name: rename one, or run them "
                              "into different --out-dir folders");
                status = -1;
                break;
            }
    }
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
    return status;
}

/* --out-dir: records the parameters in dir/params.json, or, with --resume,
 * checks that an existing one matches (a folder of tables made with other
 * parameters must not be completed with these). Returns 0 or an exit code. */
static int prepare_out_dir(const char *dir, const char *json, int resume)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/params.json", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        msg(dir, "cannot create: %s", strerror(errno));
        return EXIT_INPUT;
    }
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char old[8192];
        size_t n = fread(old, 1, sizeof old - 1, f);
        old[n] = '\0';
        fclose(f);
        if (strcmp(old, json) != 0) {
            msg(dir, "holds tables made with other parameters or another version "
                     "(params.json differs): use another folder");
            return EXIT_USAGE;
        }
        return 0;
    }
    (void)resume;
    return write_text_file(path, json) == 0 ? 0 : EXIT_INPUT;
}

/* The options every batch command (detect, events) takes, with -j, -q, -h. */
#define BATCH_LONGOPTS                                                          \
    {"jobs", required_argument, NULL, 'j'},                                     \
    {"files-from", required_argument, NULL, OPT_FILES_FROM},                    \
    {"timeout", required_argument, NULL, OPT_TIMEOUT},                          \
    {"progress", no_argument, NULL, OPT_PROGRESS},                              \
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},                        \
    {"quiet", no_argument, NULL, 'q'},                                          \
    {"help", no_argument, NULL, 'h'}

/* What the batch options (BATCH_LONGOPTS but --help) set. */
typedef struct batch_cli {
    long jobs;          /* -j [the number of cores] */
    double timeout_s;   /* --timeout [600] */
    int progress;       /* --progress 1, --no-progress 0, -1 when not given */
    input_list inputs;  /* --files-from adds to it */
} batch_cli;

static void batch_cli_init(batch_cli *b)
{
    b->jobs = sysconf(_SC_NPROCESSORS_ONLN);
    if (b->jobs < 1)
        b->jobs = 1;
    b->timeout_s = 600;
    b->progress = -1;
    b->inputs = (input_list){NULL, 0, 0};
}

/* Takes opt (with its argument) when it is one of the batch options:
 * returns 0 when taken, -1 when opt is not one of them, or the exit status
 * of a bad value after saying why. */
static int batch_option(const char *cmd, int opt, const char *arg, batch_cli *b)
{
    long l;
    switch (opt) {
    case 'j':
        if (parse_long(arg, &l) != 0 || l < 1 || l > 100000)
            return usage_error("%s: invalid value '%s' for --jobs", cmd, arg);
        b->jobs = l;
        return 0;
    case OPT_TIMEOUT:
        if (parse_double(arg, &b->timeout_s) != 0)
            return usage_error("%s: invalid value '%s' for --timeout", cmd, arg);
        if (!(b->timeout_s >= 0))
            return usage_error("%s: --timeout must be >= 0 s", cmd);
        return 0;
    case OPT_FILES_FROM: {
        int added = inputs_add_from(&b->inputs, arg);
        return added == 0 ? 0 : added == INPUTS_NOMEM ? EXIT_INPUT : EXIT_USAGE;
    }
    case OPT_PROGRESS: b->progress = 1; return 0;
    case OPT_NO_PROGRESS: b->progress = 0; return 0;
    case 'q': quiet = 1; return 0;
    default: return -1;
    }
}

/* The one-line account of a batch on stderr: files ok and failed (naming
 * up to 20), and the time it took. */
static void print_batch_summary(size_t n_ok, size_t n_failed, const unsigned char *failed,
                                char *const *paths, size_t n, double seconds)
{
    fprintf(stderr, "nirtrace: %zu file%s ok, %zu failed", n_ok, n_ok == 1 ? "" : "s", n_failed);
    for (size_t i = 0, shown = 0; failed != NULL && i < n; i++)
        if (failed[i] && shown++ < 20)
            fprintf(stderr, "%s %s", shown == 1 ? ":" : ",", paths[i]);
    if (n_failed > 20)
        fprintf(stderr, ", ...");
    fprintf(stderr, "; %.3g s\n", seconds);
}

static int cmd_detect(int argc, char **argv)
{
    static const struct option longopts[] = {
        INPUT_LONGOPTS,
        {"traces-out", required_argument, NULL, OPT_TRACES_OUT},
        {"baseline", required_argument, NULL, OPT_BASELINE},
        {"drift", required_argument, NULL, OPT_DRIFT},
        {"drift-window", required_argument, NULL, OPT_DRIFT_WINDOW},
        {"noise-window", required_argument, NULL, OPT_NOISE_WINDOW},
        {"lowpass", required_argument, NULL, OPT_LOWPASS},
        {"order", required_argument, NULL, OPT_ORDER},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"detector", required_argument, NULL, OPT_DETECTOR},
        {"false-alarm", required_argument, NULL, OPT_FALSE_ALARM},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"tau-on", required_argument, NULL, OPT_TAU_ON},
        {"tau-off", required_argument, NULL, OPT_TAU_OFF},
        {"min-duration", required_argument, NULL, OPT_MIN_DURATION},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"jitter", required_argument, NULL, OPT_JITTER},
        {"peak-max", required_argument, NULL, OPT_PEAK_MAX},
        {"decay-max", required_argument, NULL, OPT_DECAY_MAX},
        {"output", required_argument, NULL, 'o'},
        {"params-out", required_argument, NULL, OPT_PARAMS_OUT},
        {"print-params", no_argument, NULL, OPT_PRINT_PARAMS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"manifest", required_argument, NULL, OPT_MANIFEST},
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"resume", no_argument, NULL, OPT_RESUME},
        BATCH_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    nt_params p;
    nt_params_default(&p);
    overrides o;
    overrides_init(&o);
    batch_cli b;
    batch_cli_init(&b);
    const char *out_path = NULL, *params_path = NULL, *traces_path = NULL;
    const char *manifest_path = NULL, *out_dir = NULL;
    nt_manifest *manifest = NULL;
    int print_params = 0, status = EXIT_OK, opt, bad = 0, resume = 0;
    int template_kind = -1, tau_given = 0; /* -1: as the time constants say */
    long l, cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = -1; /* --threads; -1: choose */

    while (!bad && (opt = getopt_long(argc, argv, "o:j:qh", longopts, NULL)) != -1) {
        int r = override_option(opt, optarg, &o);
        if (r < 0) {
            bad = usage_error("detect: invalid value '%s' for --%s", optarg,
                              option_name(longopts, opt));
            break;
        }
        if (r > 0)
            continue;
        if ((r = batch_option("detect", opt, optarg, &b)) >= 0) {
            bad = r;
            continue;
        }
        double *target = NULL;
        switch (opt) {
        case OPT_BASELINE: target = &p.baseline_s; break;
        case OPT_DRIFT_WINDOW: target = &p.drift_window_s; break;
        case OPT_NOISE_WINDOW: target = &p.noise_window_s; break;
        case OPT_LOWPASS: target = &p.lowpass_hz; break;
        case OPT_THRESHOLD: target = &p.threshold_sd; break;
        case OPT_MIN_DURATION: target = &p.min_duration_s; break;
        case OPT_WINDOW: target = &p.window_s; break;
        case OPT_PEAK_MAX: target = &p.peak_max_s; break;
        case OPT_DECAY_MAX: target = &p.decay_max_s; break;
        case OPT_FALSE_ALARM: target = &p.false_alarm; break;
        case OPT_TAU_ON: target = &p.tau_on_s; tau_given = 1; break;
        case OPT_TAU_OFF: target = &p.tau_off_s; tau_given = 1; break;
        case OPT_TEMPLATE:
            template_kind = nt_template_parse(optarg);
            if (template_kind < 0)
                bad = usage_error("detect: --template must be bank, fixed or auto, not '%s'",
                                  optarg);
            break;
        case OPT_DETECTOR:
            p.detector = nt_detector_parse(optarg);
            if (p.detector < 0)
                bad = usage_error("detect: --detector must be threshold or matched, not '%s'",
                                  optarg);
            break;
        case OPT_DRIFT:
            p.drift = nt_drift_parse(optarg);
            if (p.drift < 0)
                bad = usage_error("detect: --drift must be none, linear or exp, not '%s'", optarg);
            break;
        case OPT_ORDER:
        case OPT_JITTER:
        case OPT_THREADS:
            if (parse_long(optarg, &l) != 0 || l < 0 || l > 100000) {
                bad = usage_error("detect: invalid value '%s' for --%s", optarg,
                                  option_name(longopts, opt));
                break;
            }
            if (opt == OPT_ORDER)
                p.lowpass_order = (int)l;
            else if (opt == OPT_JITTER)
                p.jitter_frames = (int)l;
            else
                threads = (int)l;
            break;
        case 'o': out_path = optarg; break;
        case OPT_TRACES_OUT: traces_path = optarg; break;
        case OPT_PARAMS_OUT: params_path = optarg; break;
        case OPT_PRINT_PARAMS: print_params = 1; break;
        case OPT_MANIFEST: manifest_path = optarg; break;
        case OPT_OUT_DIR: out_dir = optarg; break;
        case OPT_RESUME: resume = 1; break;
        case 'h':
            printf("%s\n%s", detect_help, input_help);
            overrides_free(&o);
            inputs_free(&b.inputs);
            return finish_stdout(EXIT_OK);
        default: bad = usage_error("detect: unknown option or missing value: %s", argv[optind - 1]); break;
        }
        if (!bad && target != NULL && parse_double(optarg, target) != 0)
            bad = usage_error("detect: invalid value '%s' for --%s", optarg,
                              option_name(longopts, opt));
    }
    nt_error err = {0, ""};
    if (!bad && resume && out_dir == NULL)
        bad = usage_error("detect: --resume needs --out-dir DIR");
    if (!bad && out_dir != NULL && (out_path != NULL || traces_path != NULL))
        bad = usage_error("detect: --out-dir writes one table per input: not with -o or "
                          "--traces-out");
    if (!bad && template_kind >= 0 && template_kind != NT_TEMPLATE_FIXED && tau_given)
        bad = usage_error("detect: --tau-on/--tau-off set the fixed template, not with "
                          "--template %s", nt_template_name(template_kind));
    p.template_kind = template_kind >= 0 ? template_kind
                      : tau_given          ? NT_TEMPLATE_FIXED
                                           : p.template_kind;
    if (!bad && p.template_kind != NT_TEMPLATE_BANK && p.detector != NT_DETECTOR_MATCHED)
        bad = usage_error("detect: --template and --tau-on/--tau-off need --detector matched");
    if (!bad && nt_params_check(&p, &err) != NT_OK)
        bad = usage_error("detect: %s", err.message);
    for (int i = optind; !bad && i < argc; i++) {
        int added = inputs_add(&b.inputs, argv[i]);
        if (added != 0)
            bad = added == INPUTS_NOMEM ? EXIT_INPUT : EXIT_USAGE;
    }
    if (!bad && manifest_path != NULL) {
        if (nt_manifest_read(manifest_path, &manifest, &err) != NT_OK) {
            msg(manifest_path, "%s", err.message);
            bad = EXIT_USAGE;
        } else if (b.inputs.n == 0 && add_manifest_inputs(&b.inputs, manifest, manifest_path) != 0) {
            bad = EXIT_USAGE;
        }
    }
    if (bad) {
        nt_manifest_free(manifest);
        overrides_free(&o);
        inputs_free(&b.inputs);
        return bad;
    }
    char json[2048];
    nt_params_json(&p, json, sizeof json);
    if (print_params) {
        fputs(json, stdout);
        overrides_free(&o);
        inputs_free(&b.inputs);
        return finish_stdout(EXIT_OK);
    }
    if (b.inputs.n == 0) {
        overrides_free(&o);
        inputs_free(&b.inputs);
        return usage_error("detect: no input file");
    }
    if (params_path != NULL && write_text_file(params_path, json) != 0) {
        overrides_free(&o);
        inputs_free(&b.inputs);
        nt_manifest_free(manifest);
        return EXIT_INPUT;
    }
    size_t n_skipped = 0;
    if (out_dir != NULL) {
        int r = check_distinct_tables(out_dir, b.inputs.paths, b.inputs.n) != 0
                    ? EXIT_USAGE
                    : prepare_out_dir(out_dir, json, resume);
        /* Inputs whose table exists are done: with --resume they are not
         * analysed again; the list is compacted in place, order kept. */
        for (size_t i = 0, k = 0; r == 0 && i < b.inputs.n; i++) {
            char table[4096];
            out_dir_table(out_dir, b.inputs.paths[i], table, sizeof table);
            if (resume && access(table, F_OK) == 0) {
                free(b.inputs.paths[i]);
                n_skipped++;
            } else {
                b.inputs.paths[k++] = b.inputs.paths[i];
            }
            if (i + 1 == b.inputs.n)
                b.inputs.n = k;
        }
        if (r != 0) {
            overrides_free(&o);
            inputs_free(&b.inputs);
            nt_manifest_free(manifest);
            return r;
        }
        if (n_skipped > 0 && !quiet)
            msg(out_dir, "%zu input%s already done, skipped", n_skipped, n_skipped == 1 ? "" : "s");
    }

    /* Workers and threads share the cores: one input gets them all as
     * threads; a batch gets them as worker processes, each single-threaded
     * unless there are more cores than workers. */
    if (threads >= 0)
        p.threads = threads;
    else if (b.inputs.n > 1)
        p.threads = (int)(cores > b.jobs ? cores / b.jobs : 1);
    detect_run run = {NULL, &o, b.inputs.paths, NULL, manifest, out_dir};
    if (nt_analyzer_create(&p, &run.an, &err) != NT_OK ||
        (traces_path != NULL &&
         (nt_analyzer_keep_windows(run.an, fmax(p.baseline_s, p.noise_window_s), p.decay_max_s,
                                   &err) != NT_OK ||
          nt_traces_writer_create(traces_path, &run.traces, &err) != NT_OK))) {
        msg(traces_path, "%s", err.message);
        nt_analyzer_destroy(run.an);
        overrides_free(&o);
        inputs_free(&b.inputs);
        return EXIT_INPUT;
    }
    FILE *out = stdout;
    if (out_path != NULL && (out = output_open(out_path)) == NULL) {
        nt_traces_writer_close(run.traces, 0, NULL);
        nt_analyzer_destroy(run.an);
        overrides_free(&o);
        inputs_free(&b.inputs);
        return EXIT_INPUT;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int write_failed =
        out_dir == NULL &&
        nt_csv_write_header_ex(out, manifest ? nt_manifest_columns(manifest) : NULL,
                               manifest ? nt_manifest_n_columns(manifest) : 0) != NT_OK;
    size_t n_ok = 0, n_failed = 0;
    unsigned char *failed = calloc(b.inputs.n, 1);
    if (run.traces != NULL) {
        /* The trace windows go into one HDF5 file held by this process, so
         * these inputs are analysed here, one after another. */
        for (size_t i = 0; i < b.inputs.n && !write_failed; i++) {
            int r = detect_one(&run, i, out);
            if (r == 2)
                msg(b.inputs.paths[i], "out of memory");
            if (r != 0 && failed != NULL)
                failed[i] = 1;
            r == 0 ? n_ok++ : n_failed++;
            write_failed = ferror(out) != 0;
        }
    } else {
        batch_options bo = {(unsigned)b.jobs, b.timeout_s, 0, 0};
        /* A worker's address space: twice the largest recording it may
         * read, plus room for the libraries; a runaway allocation inside a
         * parser fails there instead of exhausting the machine. */
        bo.memory_bytes = 2 * o.read.max_bytes + ((size_t)1 << 30);
        bo.progress = b.progress >= 0 ? b.progress : (!quiet && isatty(STDERR_FILENO));
        batch_summary sum;
        batch_run(&bo, b.inputs.paths, b.inputs.n, out_dir != NULL ? detect_one_to_dir : detect_one,
                  &run, out, failed, &sum);
        n_ok = sum.ok;
        n_failed = sum.failed;
        write_failed |= sum.write_failed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    nt_analyzer_destroy(run.an);
    overrides_free(&o);
    if (n_failed > 0)
        status = EXIT_INPUT;
    if (run.traces != NULL && nt_traces_writer_close(run.traces, !write_failed, &err) != NT_OK) {
        msg(traces_path, "%s", err.message);
        status = EXIT_INPUT;
    }
    if (!quiet && b.inputs.n > 1)
        print_batch_summary(n_ok, n_failed, failed, b.inputs.paths, b.inputs.n,
                            (double)(t1.tv_sec - t0.tv_sec) +
                                1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    if (manifest != NULL && !quiet)
        report_unused_manifest_rows(manifest, manifest_path, &b.inputs);
    nt_manifest_free(manifest);
    free(failed);
    inputs_free(&b.inputs);

    if (out_path != NULL) {
        if (output_close(out, out_path, !write_failed) != 0)
            return EXIT_INPUT;
    } else if (fflush(stdout) != 0 || ferror(stdout) || write_failed) {
        msg(NULL, "standard output: write error: %s", strerror(errno));
        return EXIT_INPUT;
    }
    return status;
}

/* --------------------------------------------------------------- events */

static const char *const events_help =
    "Usage: nirtrace events [OPTIONS] FILE...\n"
    "\n"
    "Finds every spontaneous transient of every ROI and writes one CSV row per\n"
    "event to stdout, rows in input order, then ROI, then time:\n"
    "  file,roi,event,onset_s,peak_s,amplitude_dff,rise_s,half_width_s,\n"
    "  decay_tau_s,auc_dff_s,snr\n"
    "(times in seconds from the first frame, dF/F as a fraction; see README).\n"
    "Recordings need no stimuli; stimuli, if any, are ignored, so that evoked\n"
    "responses are reported as events too. A file that cannot be processed is\n"
    "reported on stderr and writes no rows; the others are still written.\n"
    "\n"
    "Detection:\n"
    "      --polarity P         positive (rises), negative (dips: amplitude_dff and\n"
    "                           auc_dff_s written negative) or both [positive]\n"
    "      --threshold K        the filtered dF/F rises above K robust sigma\n"
    "                           (1.4826 MAD of the filtered dF/F outside events) [3]\n"
    "      --min-duration S     and stays above it for S seconds [0.5]\n"
    "      --detector D         matched: also the events a whitened matched filter\n"
    "                           (as detect's, noise learnt outside the events) finds\n"
    "                           below K sigma (more recall, more false events; see\n"
    "                           README); threshold: the K sigma events only\n"
    "                           [matched]\n"
    "      --false-alarm R      matched: false events it may add per ROI-minute of\n"
    "                           noise [0.02]\n"
    "Baseline and filter:\n"
    "      --baseline-window S  F0 = running line fit to the raw trace over S\n"
    "                           seconds, events left out; follows bleaching, and\n"
    "                           must be longer than the longest event [120]\n"
    "      --lowpass HZ         zero-phase Butterworth-magnitude cutoff, 0 = off [2]\n"
    "      --order N            Butterworth order [4]\n"
    "Measures:\n"
    "      --decay-max S        fit the decay at most S seconds after the peak [60]\n"
    "Output:\n"
    "  -o, --output FILE        write the events CSV to FILE (atomically)\n"
    "      --summary FILE       also write one row per ROI (atomically): file,roi,\n"
    "                           n_events,duration_s,events_per_min,noise_sd_dff,flags\n"
    "  -q, --quiet              no progress or summary on stderr (errors still shown)\n"
    "  -h, --help               this help\n"
    "Batch (FILE may be a directory, searched for recordings, or a quoted glob):\n"
    "  -j, --jobs N             worker processes [the number of cores]\n"
    "      --files-from LIST    also read input paths from LIST, one per line\n"
    "                           ('-' for stdin)\n"
    "      --timeout S          give up on an input after S seconds, 0 = never [600]\n"
    "      --progress, --no-progress  progress line on stderr [when a terminal]\n"
    "\n"
    "Exit status: 0 all files processed, 1 some file failed or an output could\n"
    "not be written, 2 bad command line.\n";

/* Options of events only (values above every OPT_* of the shared enum). */
enum { OPT_EV_POLARITY = 0x1000, OPT_EV_SUMMARY, OPT_EV_BASELINE_WINDOW };

/* What every input of one events run shares. */
typedef struct events_run {
    nt_event_params p;
    const overrides *o;
    char *const *paths;
    int summary; /* --summary: each input writes two framed blocks (events_one) */
} events_run;

/* Writes the block of len bytes at data as "LEN\n" followed by the bytes. */
static void put_block(FILE *out, const char *data, size_t len)
{
    fprintf(out, "%zu\n", len);
    fwrite(data, 1, len, out);
}

/*
 * Reads input index, finds its events and writes their rows to out; with
 * --summary, writes the events rows and the per-ROI rows as two blocks
 * (put_block) that the parent separates (split_blocks), since the batch
 * carries one stream per input. Returns 0 when done, 1 when the input
 * failed (said on stderr), 2 when it ran out of memory.
 */
static int events_one(void *ctx, size_t index, FILE *out)
{
    const events_run *run = ctx;
    const char *path = run->paths[index];
    nt_recording *rec = load(path, run->o, 0);
    if (rec == NULL)
        return 1;
    nt_error err = {0, ""};
    nt_event *ev = NULL;
    size_t n_ev = 0;
    nt_event_roi *rois = malloc(rec->n_rois * sizeof *rois);
    int st = rois == NULL ? NT_ERR_NOMEM
                          : nt_events_detect(rec, &run->p, &ev, &n_ev, rois, &err);
    int result = 0;
    if (st == NT_ERR_NOMEM) {
        result = 2;
    } else if (st != NT_OK) {
        msg(path, "%s", err.message[0] ? err.message : nt_strerror(st));
        result = 1;
    } else if (!run->summary) {
        result = nt_events_csv_write_rows(out, path, rec, ev, n_ev) != NT_OK;
    } else {
        char *text[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        for (int k = 0; k < 2 && result == 0; k++) {
            FILE *mem = open_memstream(&text[k], &len[k]);
            if (mem == NULL) {
                result = 2;
                break;
            }
            int w = k == 0 ? nt_events_csv_write_rows(mem, path, rec, ev, n_ev)
                           : nt_events_summary_write_rows(mem, path, rec, rois);
            if (fclose(mem) != 0 || w != NT_OK)
                result = 2;
        }
        for (int k = 0; k < 2 && result == 0; k++)
            put_block(out, text[k], len[k]);
        free(text[0]);
        free(text[1]);
    }
    nt_events_free(ev);
    free(rois);
    nt_recording_free(rec);
    return result;
}

/* Copies block `which` (0: events rows, 1: summary rows) of every input in
 * the framed stream in to out. Returns 0, or -1 on a malformed stream or a
 * write error. */
static int split_blocks(FILE *in, int which, FILE *out)
{
    char buf[65536];
    rewind(in);
    for (int k = 0;; k = !k) {
        size_t len;
        int c = fscanf(in, "%zu", &len);
        if (c == EOF && k == 0)
            return ferror(in) || ferror(out) ? -1 : 0;
        if (c != 1 || fgetc(in) != '\n')
            return -1;
        while (len > 0) {
            size_t chunk = len < sizeof buf ? len : sizeof buf;
            if (fread(buf, 1, chunk, in) != chunk)
                return -1;
            if (k == which && fwrite(buf, 1, chunk, out) != chunk)
                return -1;
            len -= chunk;
        }
    }
}


/* Writes the table `which` of the framed stream mux to path (atomically),
 * or to stdout when path is NULL. Returns 0 or -1 after saying why. */
static int write_split(FILE *mux, int which, const char *path)
{
    FILE *f = path != NULL ? output_open(path) : stdout;
    if (f == NULL)
        return -1;
    int bad = (which == 0 ? nt_events_csv_write_header(f) : nt_events_summary_write_header(f)) !=
              NT_OK;
    if (!bad && split_blocks(mux, which, f) != 0) {
        msg(path, "write error: %s", ferror(mux) ? "cannot read back the rows" : strerror(errno));
        bad = 1;
    }
    if (path != NULL)
        return output_close(f, path, !bad) != 0 ? -1 : 0;
    if (bad || fflush(stdout) != 0 || ferror(stdout)) {
        if (!bad)
            msg(NULL, "standard output: write error: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int cmd_events(int argc, char **argv)
{
    static const struct option longopts[] = {
        INPUT_LONGOPTS,
        {"polarity", required_argument, NULL, OPT_EV_POLARITY},
        {"detector", required_argument, NULL, OPT_DETECTOR},
        {"false-alarm", required_argument, NULL, OPT_FALSE_ALARM},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"min-duration", required_argument, NULL, OPT_MIN_DURATION},
        {"baseline-window", required_argument, NULL, OPT_EV_BASELINE_WINDOW},
        {"lowpass", required_argument, NULL, OPT_LOWPASS},
        {"order", required_argument, NULL, OPT_ORDER},
        {"decay-max", required_argument, NULL, OPT_DECAY_MAX},
        {"output", required_argument, NULL, 'o'},
        {"summary", required_argument, NULL, OPT_EV_SUMMARY},
        BATCH_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    events_run run;
    nt_event_params_default(&run.p);
    overrides o;
    overrides_init(&o);
    batch_cli b;
    batch_cli_init(&b);
    const char *out_path = NULL, *summary_path = NULL;
    int opt, bad = 0;
    long l;

    while (!bad && (opt = getopt_long(argc, argv, "o:j:qh", longopts, NULL)) != -1) {
        int r = override_option(opt, optarg, &o);
        if (r > 0)
            continue;
        int br = r < 0 ? -1 : batch_option("events", opt, optarg, &b);
        if (br >= 0) {
            bad = br;
            continue;
        }
        double *target = NULL;
        switch (r < 0 ? -1 : opt) {
        case -1: break;
        case OPT_THRESHOLD: target = &run.p.threshold_sd; break;
        case OPT_MIN_DURATION: target = &run.p.min_duration_s; break;
        case OPT_EV_BASELINE_WINDOW: target = &run.p.baseline_window_s; break;
        case OPT_FALSE_ALARM: target = &run.p.false_alarm_per_min; break;
        case OPT_DETECTOR:
            run.p.detector = nt_detector_parse(optarg);
            if (run.p.detector < 0)
                bad = usage_error("events: --detector must be threshold or matched, not '%s'",
                                  optarg);
            break;
        case OPT_LOWPASS: target = &run.p.lowpass_hz; break;
        case OPT_DECAY_MAX: target = &run.p.decay_max_s; break;
        case OPT_EV_POLARITY:
            run.p.polarity = nt_polarity_parse(optarg);
            if (run.p.polarity < 0)
                bad = usage_error("events: --polarity must be positive, negative or both, "
                                  "not '%s'",
                                  optarg);
            break;
        case OPT_ORDER:
            if (parse_long(optarg, &l) != 0 || l < 1 || l > 100000)
                r = -1;
            else
                run.p.lowpass_order = (int)l;
            break;
        case 'o': out_path = optarg; break;
        case OPT_EV_SUMMARY: summary_path = optarg; break;
        case 'h':
            printf("%s\n%s", events_help, input_help);
            overrides_free(&o);
            inputs_free(&b.inputs);
            return finish_stdout(EXIT_OK);
        default:
            bad = usage_error("events: unknown option or missing value: %s", argv[optind - 1]);
            break;
        }
        if (!bad && (r < 0 || (target != NULL && parse_double(optarg, target) != 0)))
            bad = usage_error("events: invalid value '%s' for --%s", optarg,
                              option_name(longopts, opt));
    }
    nt_error err = {0, ""};
    if (!bad && nt_event_params_check(&run.p, &err) != NT_OK)
        bad = usage_error("events: %s", err.message);
    if (!bad && out_path != NULL && summary_path != NULL && strcmp(out_path, summary_path) == 0)
        bad = usage_error("events: -o and --summary name the same file");
    for (int i = optind; !bad && i < argc; i++) {
        int added = inputs_add(&b.inputs, argv[i]);
        if (added != 0)
            bad = added == INPUTS_NOMEM ? EXIT_INPUT : EXIT_USAGE;
    }
    if (!bad && b.inputs.n == 0)
        bad = usage_error("events: no input file");
    if (bad) {
        overrides_free(&o);
        inputs_free(&b.inputs);
        return bad;
    }
    run.o = &o;
    run.paths = b.inputs.paths;
    run.summary = summary_path != NULL;

    /* Without --summary the rows stream to the output; with it, both tables
     * go through one framed temporary stream, split after the batch (one
     * atomic output is open at a time). */
    FILE *out = NULL;
    if (run.summary)
        out = tmpfile();
    else
        out = out_path != NULL ? output_open(out_path) : stdout;
    if (out == NULL) {
        if (run.summary)
            msg(NULL, "cannot create a temporary file: %s", strerror(errno));
        overrides_free(&o);
        inputs_free(&b.inputs);
        return EXIT_INPUT;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int write_failed = !run.summary && nt_events_csv_write_header(out) != NT_OK;
    unsigned char *failed = calloc(b.inputs.n, 1);
    batch_options bo = {(unsigned)b.jobs, b.timeout_s, 0, 0};
    bo.memory_bytes = 2 * o.read.max_bytes + ((size_t)1 << 30);
    bo.progress = b.progress >= 0 ? b.progress : (!quiet && isatty(STDERR_FILENO));
    batch_summary sum;
    batch_run(&bo, b.inputs.paths, b.inputs.n, events_one, &run, out, failed, &sum);
    write_failed |= sum.write_failed;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status = sum.failed > 0 ? EXIT_INPUT : EXIT_OK;
    if (!quiet && b.inputs.n > 1)
        print_batch_summary(sum.ok, sum.failed, failed, b.inputs.paths, b.inputs.n,
                            (double)(t1.tv_sec - t0.tv_sec) +
                                1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    free(failed);
    overrides_free(&o);
    inputs_free(&b.inputs);

    if (run.summary) {
        int w = write_failed ? -1 : write_split(out, 0, out_path);
        if (w == 0)
            w = write_split(out, 1, summary_path);
        if (write_failed)
            msg(NULL, "cannot write the temporary table: %s", strerror(errno));
        fclose(out);
        return w != 0 ? EXIT_INPUT : status;
    }
    if (out_path != NULL) {
        if (output_close(out, out_path, !write_failed) != 0)
            return EXIT_INPUT;
    } else if (fflush(stdout) != 0 || ferror(stdout) || write_failed) {
        msg(NULL, "standard output: write error: %s", strerror(errno));
        return EXIT_INPUT;
    }
    return status;
}

/* ----------------------------------------------------------------- info */

static const char *source_name(int source)
{
    switch (source) {
    case NT_SOURCE_FILE_RATE: return "rate_hz attribute";
    case NT_SOURCE_FILE_TIME: return "/time timestamps";
    case NT_SOURCE_FILE_STIM: return "/stim/onsets";
    case NT_SOURCE_OVERRIDE: return "command line";
    default: return "none";
    }
}

static void print_info(const char *path, const nt_recording *rec)
{
    printf("file: %s\n", path);
    printf("traces: %zu ROIs x %zu frames, %s, %s\n", rec->n_rois, rec->n_frames,
           rec->sample_type, rec->storage);
    if (rec->movie.grid_px > 0) {
        const nt_movie_grid *g = &rec->movie;
        printf("movie: %zu frames of %zu x %zu px (height x width); grid %zu px: %zu x %zu "
               "tiles = %zu ROIs", rec->n_frames, g->height_px, g->width_px, g->grid_px,
               g->tile_rows, g->tile_cols, g->tile_rows * g->tile_cols);
        if (g->height_px % g->grid_px != 0 || g->width_px % g->grid_px != 0)
            printf("; %zu px at the bottom and %zu px at the right in no tile",
                   g->height_px % g->grid_px, g->width_px % g->grid_px);
        putchar('\n');
    }
    if (rec->time_s != NULL && rec->n_frames > 0) {
        double span = rec->time_s[rec->n_frames - 1] - rec->time_s[0];
        printf("time: %.6g Hz from the %s, %.6g s", rec->rate_hz, source_name(rec->time_source),
               span);
        if (rec->time_source == NT_SOURCE_FILE_TIME && rec->n_frames > 1) {
            double lo = INFINITY, hi = -INFINITY;
            for (size_t i = 1; i < rec->n_frames; i++) {
                double d = rec->time_s[i] - rec->time_s[i - 1];
                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
            }
            printf(", frame intervals %.6g-%.6g ms", lo * 1e3, hi * 1e3);
        }
        putchar('\n');
    } else {
        printf("time: none (no rate_hz attribute or /time dataset)\n");
    }
    printf("stimuli: %zu (%s)\n", rec->n_stims, source_name(rec->stim_source));
    for (size_t k = 0; k < rec->n_stims; k++) {
        printf("  trial %zu: %.6g s", k + 1, rec->stim_s[k]);
        if (rec->time_s != NULL && rec->n_frames > 0) {
            size_t f = 0;
            while (f + 1 < rec->n_frames &&
                   fabs(rec->time_s[f + 1] - rec->stim_s[k]) <= fabs(rec->time_s[f] - rec->stim_s[k]))
                f++;
            printf(" (frame %zu)", f);
        }
        if (rec->stim_labels != NULL)
            printf("  \"%s\"", rec->stim_labels[k]);
        putchar('\n');
    }
    if (rec->roi_names != NULL) {
        printf("roi names:");
        for (size_t r = 0; r < rec->n_rois && r < 8; r++)
            printf(" %s", rec->roi_names[r]);
        if (rec->n_rois > 8)
            printf(" ... (%zu)", rec->n_rois);
        putchar('\n');
    } else {
        printf("roi names: none (rows are numbered 1-%zu)\n", rec->n_rois);
    }
}

/*
 * Parses the options of a command that takes only the input options (info,
 * convert) into *o. Returns -1 to go on (then the caller frees *o), or the
 * exit status when the command is over: help printed, or a bad option.
 */
static int parse_input_only(int argc, char **argv, const char *cmd, const char *help,
                            overrides *o)
{
    static const struct option longopts[] = {
        INPUT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    overrides_init(o);
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            printf("%s\n%s", help, input_help);
            overrides_free(o);
            return finish_stdout(EXIT_OK);
        }
        int r = override_option(opt, optarg, o);
        if (r <= 0) {
            overrides_free(o);
            return r < 0 ? usage_error("%s: invalid value '%s' for --%s", cmd, optarg,
                                       option_name(longopts, opt))
                         : usage_error("%s: unknown option or missing value: %s", cmd, argv[optind - 1]);
        }
    }
    return -1;
}

static int cmd_info(int argc, char **argv)
{
    overrides o;
    int status = EXIT_OK, done = parse_input_only(argc, argv, "info", info_help, &o);
    if (done >= 0)
        return done;
    if (optind >= argc) {
        overrides_free(&o);
        return usage_error("info: no input file");
    }
    for (int i = optind; i < argc; i++) {
        nt_recording *rec = load(argv[i], &o, 1);
        if (rec == NULL) {
            status = EXIT_INPUT;
            continue;
        }
        print_info(argv[i], rec);
        nt_error err = {0, ""};
        char *contents = NULL;
        if (nt_recording_describe(argv[i], &contents, &err) == NT_OK && contents[0] != '\0') {
            printf("contents:\n");
            for (char *line = contents, *end; *line != '\0'; line = end) {
                end = strchr(line, '\n');
                end = end != NULL ? end + 1 : line + strlen(line);
                printf("  %.*s", (int)(end - line), line);
            }
            if (contents[strlen(contents) - 1] != '\n')
                putchar('\n');
        }
        free(contents);
        if (nt_recording_check(rec, &err) == NT_OK) {
            printf("valid for detect: yes\n");
        } else {
            printf("valid for detect: no: %s\n", err.message);
            status = EXIT_INPUT;
        }
        if (i + 1 < argc)
            putchar('\n');
        nt_recording_free(rec);
    }
    overrides_free(&o);
    return finish_stdout(status);
}

/* -------------------------------------------------------------- convert */

static int cmd_convert(int argc, char **argv)
{
    overrides o;
    int done = parse_input_only(argc, argv, "convert", convert_help, &o);
    if (done >= 0)
        return done;
    if (argc - optind != 2) {
        overrides_free(&o);
        return usage_error("convert: need one input and one output file");
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    nt_recording *rec = load(in, &o, 0);
    overrides_free(&o);
    if (rec == NULL)
        return EXIT_INPUT;
    nt_error err = {0, ""};
    int status = nt_write_hdf5(out, rec, &err);
    nt_recording_free(rec);
    if (status != NT_OK) {
        msg(out, "%s", err.message);
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* ---------------------------------------------------------------- merge */

/* The parameters a part was made with: the text of PART.params.json (the
 * name `--params-out` is given by the Slurm scripts), or NULL when absent.
 * Caller frees. */
static char *read_params_sidecar(const char *part)
{
    char path[4096];
    size_t len = strlen(part);
    if (len > 4 && strcmp(part + len - 4, ".csv") == 0)
        len -= 4;
    snprintf(path, sizeof path, "%.*s.params.json", (int)len, part);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 65536);
    if (text != NULL)
        fread(text, 1, 65535, f);
    fclose(f);
    return text;
}

static int cmd_merge(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out_path = NULL;
    int force = 0, opt;
    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': out_path = optarg; break;
        case OPT_FORCE: force = 1; break;
        case 'h': fputs(merge_help, stdout); return finish_stdout(EXIT_OK);
        default: return usage_error("merge: unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("merge: no part to merge");
    char **parts = argv + optind;
    size_t n_parts = (size_t)(argc - optind);
    /* Parts made with different parameters (or versions) are not mixed
     * unless --force: their numbers would not be comparable. */
    char *first = read_params_sidecar(parts[0]);
    for (size_t i = 1; i < n_parts && !force; i++) {
        char *other = read_params_sidecar(parts[i]);
        int differ = (first == NULL) != (other == NULL) ||
                     (first != NULL && other != NULL && strcmp(first, other) != 0);
        free(other);
        if (differ) {
            free(first);
            msg(parts[i], "made with other parameters than %s (see their .params.json); "
                          "--force merges them anyway",
                parts[0]);
            return EXIT_INPUT;
        }
    }
    FILE *out = stdout;
    if (out_path != NULL && (out = output_open(out_path)) == NULL) {
        free(first);
        return EXIT_INPUT;
    }
    nt_error err = {0, ""};
    size_t rows = 0;
    int st = nt_csv_merge(parts, n_parts, out, &rows, &err);
    if (st != NT_OK)
        msg(NULL, "%s", err.message);
    if (out_path != NULL) {
        if (output_close(out, out_path, st == NT_OK) != 0)
            st = NT_ERR_IO;
        else if (first != NULL && st == NT_OK) {
            /* The merged table keeps the parameters of its parts. */
            char sidecar[4096];
            size_t len = strlen(out_path);
            if (len > 4 && strcmp(out_path + len - 4, ".csv") == 0)
                len -= 4;
            snprintf(sidecar, sizeof sidecar, "%.*s.params.json", (int)len, out_path);
            if (write_text_file(sidecar, first) != 0)
                st = NT_ERR_IO;
        }
    }
    free(first);
    if (st == NT_OK && !quiet)
        fprintf(stderr, "nirtrace: merged %zu parts, %zu rows\n", n_parts, rows);
    return st == NT_OK ? finish_stdout(EXIT_OK) : EXIT_INPUT;
}

/* -------------------------------------------------------------- compare */

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    puts(line);
}

static int cmd_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rtol", required_argument, NULL, OPT_RTOL},
        {"atol", required_argument, NULL, OPT_ATOL},
        {"ignore", required_argument, NULL, OPT_IGNORE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    nt_compare_options copts = {1e-6, 1e-12, NULL};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': fputs(compare_help, stdout); return finish_stdout(EXIT_OK);
        case OPT_RTOL:
        case OPT_ATOL: {
            double *target = opt == OPT_RTOL ? &copts.rtol : &copts.atol;
            if (parse_double(optarg, target) != 0 || *target < 0)
                return usage_error("compare: invalid tolerance '%s'", optarg);
            break;
        }
        case OPT_IGNORE: copts.ignore = optarg; break;
        default: return usage_error("compare: unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return usage_error("compare: need EXPECTED.csv and ACTUAL.csv");
    nt_error err = {0, ""};
    size_t n_diffs = 0;
    if (nt_csv_compare(argv[optind], argv[optind + 1], &copts, print_line, NULL, &n_diffs, &err) !=
        NT_OK) {
        msg(NULL, "%s", err.message);
        return EXIT_USAGE;
    }
    if (n_diffs > 0)
        printf("%zu difference%s between %s and %s\n", n_diffs, n_diffs == 1 ? "" : "s",
               argv[optind], argv[optind + 1]);
    return finish_stdout(n_diffs > 0 ? EXIT_INPUT : EXIT_OK);
}

int main(int argc, char **argv)
{
    opterr = 0; /* getopt's own messages lack our prefix: we say it */
    if (argc < 2)
        return usage_error("no command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return finish_stdout(EXIT_OK);
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("nirtrace %s\n", NT_VERSION_STRING);
        return finish_stdout(EXIT_OK);
    }
    /* Subcommand options are parsed from argv[1] on: getopt sees the
     * command name as argv[0]. */
    if (strcmp(cmd, "detect") == 0)
        return cmd_detect(argc - 1, argv + 1);
    if (strcmp(cmd, "events") == 0)
        return cmd_events(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "compare") == 0)
        return cmd_compare(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0)
        return cmd_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "merge") == 0)
        return cmd_merge(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
