/*
 * nirtrace.h — the public API of libnirtrace.
 *
 * nirtrace turns near-infrared nanosensor fluorescence recordings (one trace
 * per region of interest, plus stimulus times) into per-trial measures of
 * evoked release: detected or not, amplitude, latency and kinetics.
 *
 * The pipeline: a reader fills an nt_recording; an nt_analyzer takes it
 * through baseline (ΔF/F), zero-phase FFT low-pass, noise, detection and
 * measurement, and fills one nt_trial_result per (ROI, trial); the report
 * functions write those as CSV.
 *
 * Conventions
 *  - Every function that can fail returns an int status: NT_OK (0) or one of
 *    NT_ERR_*. Detail goes to an optional caller-owned nt_error (may be NULL).
 *  - The library never prints and never exits.
 *  - Ownership is stated at each declaration; every *_free / *_destroy
 *    accepts NULL.
 *  - Numbers carry their unit in their name: _s seconds, _hz hertz,
 *    _dff ΔF/F as a fraction (0.05 = 5 %).
 */
#ifndef NIRTRACE_H
#define NIRTRACE_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NT_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- errors */

enum nt_status {
    NT_OK = 0,
    NT_ERR_IO,        /* a file could not be opened, read or written */
    NT_ERR_FORMAT,    /* the file is readable but not in the expected layout */
    NT_ERR_CORRUPT,   /* the file is damaged: the format library failed to read it */
    NT_ERR_TOO_LARGE, /* a declared size exceeds the file or the memory limit */
    NT_ERR_NOMEM,     /* an allocation failed */
    NT_ERR_INVALID,   /* an argument, parameter or data value is out of range */
    NT_ERR_INTERNAL   /* a third-party library (FFTW, HDF5) failed unexpectedly */
};

/* Detail of the last failure of a call. message is a one-line, NUL-terminated
 * sentence naming the place when there is one ("/traces: expected 2-D dataset,
 * found 3-D"); it never contains the file name, which the caller knows. */
typedef struct nt_error {
    int status;
    char message[512];
} nt_error;

/* Returns a static string describing status (never NULL). */
const char *nt_strerror(int status);

/* ------------------------------------------------------------- recording */

/* Where the time axis or the stimuli of a recording came from. */
enum nt_source {
    NT_SOURCE_NONE = 0,  /* not known: the recording is not ready for analysis */
    NT_SOURCE_FILE_RATE, /* the rate_hz attribute of /traces */
    NT_SOURCE_FILE_TIME, /* the /time dataset (per-frame timestamps) */
    NT_SOURCE_FILE_STIM, /* the /stim/onsets dataset */
    NT_SOURCE_OVERRIDE   /* set by the caller (command-line override) */
};

/*
 * How a camera movie (a 3-D dataset [frames][height][width]) became the ROIs
 * of a recording: it is cut into square tiles of grid_px x grid_px pixels,
 * tile_rows down and tile_cols across, starting at pixel (0, 0); pixels
 * past the last whole tile (the bottom height_px % grid_px rows and the
 * right width_px % grid_px columns) belong to no ROI. ROI r is the tile of
 * row r / tile_cols and column r % tile_cols (both 0-based), named
 * "r%03zuc%03zu" (r002c013: pixel rows 30-44, columns 195-209 at 15 px);
 * its trace is the mean of the tile's pixels in each frame.
 */
typedef struct nt_movie_grid {
    size_t height_px, width_px; /* the movie's frame size */
    size_t grid_px;             /* tile side */
    size_t tile_rows, tile_cols;
} nt_movie_grid;

/*
 * A recording in memory: the one type every stage shares.
 *
 * traces: samples in raw units (camera counts, or whatever the file held),
 *   ROI-major: sample f of ROI r is traces[r * n_frames + f]. Stored as
 *   float32 whatever the file's type (uint16/int16 exactly; int32 above 2^24
 *   rounds to float precision). NULL after a header-only read.
 * time_s: [n_frames] seconds from the first frame, strictly increasing.
 *   Always present once the recording has a time base (from /time, or
 *   i / rate_hz); NULL when it has none (time_source == NT_SOURCE_NONE).
 * rate_hz: the nominal frame rate: the file's rate, or (n_frames-1) divided
 *   by the span of /time. NaN when unknown.
 * stim_s: [n_stims] stimulus onsets in seconds from the first frame.
 * stim_labels: [n_stims] strings or NULL. roi_names: [n_rois] strings or NULL.
 * movie: set (grid_px > 0) when the traces were cut from a camera movie.
 *
 * All memory belongs to the recording; free it with nt_recording_free.
 */
typedef struct nt_recording {
    size_t n_rois;
    size_t n_frames;
    float *traces;
    double *time_s;
    double rate_hz;
    int time_source;      /* enum nt_source */
    size_t n_stims;
    double *stim_s;
    char **stim_labels;
    int stim_source;      /* enum nt_source */
    char **roi_names;
    char sample_type[16]; /* type stored in the file: "uint16", "float32", ... */
    char storage[64];     /* how it is stored: "contiguous", "chunked, deflate, shuffle" */
    nt_movie_grid movie;  /* the movie the ROIs were cut from; all 0 when not a movie */
} nt_recording;

/* How a 2-D dataset or table holds its traces. */
enum nt_layout {
    NT_LAYOUT_AUTO = 0,         /* the format's native orientation */
    NT_LAYOUT_ROIS_BY_FRAMES,   /* one row per ROI */
    NT_LAYOUT_FRAMES_BY_ROIS    /* one row per frame, one column per ROI */
};

/* Reading options. Initialise with nt_read_options_default; every string is
 * borrowed (not copied) and may be NULL. */
typedef struct nt_read_options {
    /* Largest traces array (in bytes of float32) the reader may allocate;
     * a dataset declaring more is refused with NT_ERR_TOO_LARGE before any
     * allocation. For a movie, the traces of its tiles plus the working
     * memory of the read (one slab of frames and its tile sums) must fit.
     * Default: half the physical memory. */
    size_t max_bytes;
    /* Non-zero: read shape, type, time and stimuli, but not the samples
     * (traces stays NULL). Used by `nirtrace info`. */
    int header_only;
    /* HDF5: path of the traces dataset ("/group/data"); NULL for the native
     * /traces or, in an NWB file, the series found (see series). Also set by
     * nt_recording_read from a "FILE.h5:/group/data" path. */
    const char *dataset;
    /* Orientation of the traces dataset or table (enum nt_layout). */
    int layout;
    /* HDF5: dataset of per-frame times in seconds (overrides /time). */
    const char *time_dataset;
    /* HDF5: dataset of stimulus onsets in seconds (overrides /stim/onsets). */
    const char *stim_dataset;
    /* NWB: name or path of the TimeSeries to read (default: the first
     * RoiResponseSeries under /processing/ophys). */
    const char *series;
    /* NWB: column of /intervals/trials used as the stimulus label. */
    const char *trial_label;
    /* Text: field delimiter (',', '\t', ';'), or 0 to detect it. */
    char delimiter;
    /* Text: 1 the first row is a header, 0 it is not, -1 detect. */
    int header;
    /* HDF5 movies (a 3-D dataset [frames][height][width]: the native /movie,
     * or one named by dataset): side in pixels of the square tiles the
     * movie is cut into, one ROI per whole tile (see nt_movie_grid);
     * 0 means NT_GRID_PX_DEFAULT. */
    size_t grid_px;
} nt_read_options;

/* Default movie tile side, in pixels: the 15 px grid labs use (about 4 µm
 * at 60x, 3.67 px/µm). */
#define NT_GRID_PX_DEFAULT 15

void nt_read_options_default(nt_read_options *opts);

/*
 * Reads the recording in the file at path. The format is chosen from the
 * file's content (HDF5 signature). opts may be NULL for defaults.
 * On success *out is a new recording; free with nt_recording_free.
 * On failure *out is NULL and err (if not NULL) says why.
 * The recording may still lack a time base or stimuli (the file does not have
 * them): see nt_recording_set_rate, nt_recording_set_stims, nt_recording_check.
 */
int nt_recording_read(const char *path, const nt_read_options *opts,
                      nt_recording **out, nt_error *err);

/* The readers of each format, with the contract of nt_recording_read;
 * normally reached through it. nt_read_hdf5 reads the native layout, any
 * dataset (opts->dataset), and NWB 2.x files (through nt_read_nwb). */
int nt_read_hdf5(const char *path, const nt_read_options *opts,
                 nt_recording **out, nt_error *err);
int nt_read_nwb(const char *path, const nt_read_options *opts,
                nt_recording **out, nt_error *err);
int nt_read_sndfile(const char *path, const nt_read_options *opts,
                    nt_recording **out, nt_error *err);
int nt_read_text(const char *path, const nt_read_options *opts,
                 nt_recording **out, nt_error *err);

/*
 * Writes rec in the native nirtrace HDF5 layout (/traces chunked and
 * deflate-compressed, float32 or the narrowest exact integer type,
 * rate_hz or /time, /stim/onsets and /stim/labels, /rois/names), replacing
 * path atomically (a temporary file renamed into place).
 */
int nt_write_hdf5(const char *path, const nt_recording *rec, nt_error *err);

/*
 * Takes ROI `channel` (0-based) of rec as a stimulator trigger record rather
 * than a trace: stimulus onsets become its rising edges through threshold
 * (NaN: half-way between its minimum and maximum), and an edge closer than
 * refractory_s to the previous accepted one is ignored (so a pulse train is
 * one trial when refractory_s exceeds the train, one per pulse otherwise).
 * The channel is removed from the ROIs. Onsets are interpolated between
 * frames. Needs a time base. Replaces the stimuli (stim_source becomes
 * NT_SOURCE_OVERRIDE, labels dropped).
 */
int nt_recording_stims_from_trigger(nt_recording *rec, size_t channel, double threshold,
                                    double refractory_s, nt_error *err);

/*
 * Describes what a container file at path offers besides the recording
 * read by default: for an NWB file, every series (what --series can name)
 * and every trial or interval table, one per line. *text is a new string
 * (free with free); it is empty for formats that hold one recording.
 */
int nt_recording_describe(const char *path, char **text, nt_error *err);

/* Allocates an empty recording of n_rois x n_frames samples (zeroed traces,
 * no time base, no stimuli). Returns NULL on allocation failure or when the
 * size overflows. Free with nt_recording_free. */
nt_recording *nt_recording_new(size_t n_rois, size_t n_frames);

/* Frees rec and everything it owns. Accepts NULL. */
void nt_recording_free(nt_recording *rec);

/* Replaces the time base with a regular one at rate_hz (> 0, finite):
 * time_s[i] = i / rate_hz. time_source becomes NT_SOURCE_OVERRIDE. */
int nt_recording_set_rate(nt_recording *rec, double rate_hz, nt_error *err);

/* Replaces the stimuli with n onsets in seconds (copied; labels dropped).
 * stim_source becomes NT_SOURCE_OVERRIDE. */
int nt_recording_set_stims(nt_recording *rec, const double *stim_s, size_t n,
                           nt_error *err);

/* Same, with onsets given as 0-based frame indices; needs a time base:
 * the onset of frame k is time_s[k]. */
int nt_recording_set_stim_frames(nt_recording *rec, const long *frames, size_t n,
                                 nt_error *err);

/*
 * Checks that rec can be analysed: at least 2 frames and 1 ROI, a time base
 * with strictly increasing finite times, a positive finite rate, at least one
 * stimulus, every stimulus finite and inside [time_s[0], time_s[n_frames-1]].
 * Samples are not checked (non-finite samples are reported per ROI by the
 * analysis). Returns NT_OK or NT_ERR_INVALID with the reason in err.
 */
int nt_recording_check(const nt_recording *rec, nt_error *err);

/* ------------------------------------------------------------ parameters */

enum nt_drift {
    NT_DRIFT_NONE = 0, /* F0 is the mean of the baseline window */
    NT_DRIFT_LINEAR,   /* F0(t) is a line fitted to the pre-stimulus data */
    NT_DRIFT_EXP       /* F0(t) is an exponential fitted to the pre-stimulus data */
};

/* How a trial is judged responsive. */
enum nt_detector {
    NT_DETECTOR_THRESHOLD = 0, /* filtered ΔF/F above k·σ for a minimum duration */
    NT_DETECTOR_MATCHED        /* whitened matched filter against a bank of responses */
};

/* The response shapes the matched detector looks for. */
enum nt_template {
    NT_TEMPLATE_BANK = 0, /* four built-in shapes spanning fast and slow sensors */
    NT_TEMPLATE_FIXED,    /* one shape: tau_on_s, tau_off_s */
    NT_TEMPLATE_AUTO      /* one shape learnt from the recording's confident responses */
};

/* Every parameter of the analysis. Initialise with nt_params_default; the
 * defaults are documented there and in the README. */
typedef struct nt_params {
    double baseline_s;     /* F0 window: this many seconds before the stimulus */
    int drift;             /* enum nt_drift: photobleaching correction */
    double drift_window_s; /* pre-stimulus span the drift model is fitted on */
    double noise_window_s; /* pre-stimulus span the noise σ is measured on */
    double lowpass_hz;     /* low-pass cutoff; 0 disables filtering */
    int lowpass_order;     /* Butterworth order of the magnitude response */
    double threshold_sd;   /* detection threshold k, in noise σ */
    double min_duration_s; /* the response must stay above k·σ this long */
    double window_s;       /* the response onset must lie within this after the stimulus */
    int jitter_frames;     /* stimulus timing tolerance, frames either side */
    double peak_max_s;     /* the peak is searched at most this long after the stimulus */
    double decay_max_s;    /* the decay is followed at most this long after the stimulus */
    int detector;          /* enum nt_detector */
    double false_alarm;    /* matched detector: false-alarm probability per trial */
    int template_kind;     /* enum nt_template: the matched detector's response shapes */
    double tau_on_s;       /* NT_TEMPLATE_FIXED: rise and decay time constants of the shape */
    double tau_off_s;
    /* Threads nt_analyzer_execute may use, ROIs being shared among them:
     * 0 (the default) for one per online CPU, 1 to run in the calling thread
     * only. The results are the same for any value. Recordings too small
     * to gain (under 100000 samples per thread) use fewer. Not an analysis
     * parameter: nt_params_json leaves it out. */
    int threads;
} nt_params;

/* Fills p with the documented defaults. */
void nt_params_default(nt_params *p);

/* Returns NT_OK when every parameter is in range, else NT_ERR_INVALID with
 * the parameter's name in err. */
int nt_params_check(const nt_params *p, nt_error *err);

/* Names of enum nt_drift values ("none", "linear", "exp"); NULL if unknown. */
const char *nt_drift_name(int drift);
/* Parses a drift name; returns the enum value or -1. */
int nt_drift_parse(const char *name);

/* Names of enum nt_detector values ("threshold", "matched"); NULL if unknown. */
const char *nt_detector_name(int detector);
/* Parses a detector name; returns the enum value or -1. */
int nt_detector_parse(const char *name);

/* Names of enum nt_template values ("bank", "fixed", "auto"); NULL if unknown. */
const char *nt_template_name(int kind);
/* Parses a template name; returns the enum value or -1. */
int nt_template_parse(const char *name);

/*
 * Writes p and the library version as a JSON object into buf (size len,
 * always NUL-terminated when len > 0). Returns the length the full text
 * needs, excluding the NUL (like snprintf).
 */
size_t nt_params_json(const nt_params *p, char *buf, size_t len);

/* --------------------------------------------------------------- results */

/* Per-trial quality flags (bit set), written in the CSV `flags` column. */
enum nt_flag {
    NT_FLAG_NONFINITE      = 1u << 0, /* the ROI has NaN/Inf samples: row unmeasured */
    NT_FLAG_F0_NONPOSITIVE = 1u << 1, /* F0 <= 0: ΔF/F undefined, row unmeasured */
    NT_FLAG_NO_BASELINE    = 1u << 2, /* fewer than 3 baseline samples: row unmeasured */
    NT_FLAG_SHORT_BASELINE = 1u << 3, /* baseline window cut by the recording start */
    NT_FLAG_TRUNCATED      = 1u << 4, /* the response window is cut by the recording end */
    NT_FLAG_SHADOW         = 1u << 5, /* a dip below -k·σ right after the stimulus (artefact) */
    NT_FLAG_FLAT           = 1u << 6, /* zero noise (constant baseline): row unmeasured */
    NT_FLAG_NOFIT          = 1u << 7  /* the response model did not converge: waveform measures */
};

/* Writes the names of the flags set in flags, separated by ';', into buf
 * (empty string when none). Returns the length needed, like snprintf. */
size_t nt_flags_format(unsigned flags, char *buf, size_t len);

/* The measures of one (ROI, trial). Times in seconds, ΔF/F as fractions.
 * A value that cannot be measured is NaN. See README for each definition. */
typedef struct nt_trial_result {
    size_t roi;             /* 0-based ROI index */
    size_t trial;           /* 0-based trial (stimulus) index */
    double stim_s;          /* stimulus onset, s from the first frame */
    int detected;           /* 1 when the ROI responded to this stimulus */
    double amplitude_dff;   /* peak of the filtered ΔF/F */
    double peak_s;          /* time of that peak, s from the first frame */
    double onset_latency_s; /* stimulus -> response onset */
    double time_to_peak_s;  /* stimulus -> peak */
    double rise_s;          /* 10 % -> 90 % of the peak, on the rising edge */
    double half_width_s;    /* full width at half maximum */
    double decay_tau_s;     /* exponential decay time constant after the peak */
    double auc_dff_s;       /* area under the filtered ΔF/F, onset -> return to baseline */
    double f0;              /* baseline fluorescence, raw units */
    double noise_sd_dff;    /* robust σ of the filtered baseline ΔF/F */
    double snr;             /* amplitude_dff / noise_sd_dff */
    unsigned flags;         /* enum nt_flag bits */
} nt_trial_result;

/* ---------------------------------------------------------------- analyzer */

/* An analysis pipeline with its parameters and its FFT plans (created once
 * per trace length and reused across ROIs and recordings). Not thread-safe:
 * use one analyzer per thread. */
typedef struct nt_analyzer nt_analyzer;

/* Creates an analyzer with a copy of p (NULL for defaults).
 * On success *out is new; free with nt_analyzer_destroy. */
int nt_analyzer_create(const nt_params *p, nt_analyzer **out, nt_error *err);

/* Frees the analyzer and its plans. Accepts NULL. */
void nt_analyzer_destroy(nt_analyzer *a);

/*
 * Analyses every ROI x stimulus of rec (which must pass nt_recording_check).
 * results: caller-owned array [rec->n_rois * rec->n_stims], filled ROI-major
 * (result of ROI r, trial k at results[r * n_stims + k]).
 * Per-ROI data problems (non-finite samples, F0 <= 0) do not fail the call:
 * they set flags and NaN measures on the affected rows.
 */
int nt_analyzer_execute(nt_analyzer *a, const nt_recording *rec,
                        nt_trial_result *results, nt_error *err);

/*
 * Keeps the processed traces of every (ROI, trial) from the next executes
 * on: the window [stim - before_s, stim + after_s] of raw and filtered ΔF/F
 * (the trial's F0 and drift), for plotting. before_s = after_s = 0 turns it
 * off (the default).
 */
int nt_analyzer_keep_windows(nt_analyzer *a, double before_s, double after_s, nt_error *err);

/*
 * The windows of the last execute, owned by the analyzer and valid until
 * the next execute or destroy: *n_win samples per (ROI, trial), arrays
 * [n_rois * n_stims * n_win] in result order. t_rel_s is the frame time
 * minus the stimulus; samples past the recording, or past the window for
 * the shorter windows of irregular recordings, are NaN. Returns
 * NT_ERR_INVALID when no windows are kept.
 */
int nt_analyzer_windows(const nt_analyzer *a, size_t *n_win, const double **t_rel_s,
                        const double **dff, const double **dff_filtered);

/* A file of processed trial windows (`detect --traces-out`), layout in the
 * README: one group per recording added. */
typedef struct nt_traces_writer nt_traces_writer;

/* Creates the file at path (atomically: a temporary renamed into place by
 * nt_traces_writer_close). On success *out is new. */
int nt_traces_writer_create(const char *path, nt_traces_writer **out, nt_error *err);

/* Adds one recording's windows, as nt_analyzer_windows gives them:
 * t_rel_s, dff, dff_filtered [n_rois * n_trials * n_win]; stim_s [n_trials];
 * roi_names [n_rois] and stim_labels [n_trials] may be NULL; source is the
 * input path. */
int nt_traces_writer_add(nt_traces_writer *w, const char *source, size_t n_rois,
                         size_t n_trials, size_t n_win, const double *t_rel_s,
                         const double *dff, const double *dff_filtered, const double *stim_s,
                         char *const *roi_names, char *const *stim_labels, nt_error *err);

/* Finishes the file and renames it into place (commit != 0), or discards it
 * (commit == 0). Frees w; accepts NULL. */
int nt_traces_writer_close(nt_traces_writer *w, int commit, nt_error *err);

/* ------------------------------------------------------------------ report */

/* Writes the CSV header line (see README for the columns). Returns NT_OK or
 * NT_ERR_IO when the stream reports a write error. */
int nt_csv_write_header(FILE *out);

/*
 * Writes one CSV row per result: results [n] of rec, from the file named
 * file (written in the `file` column, RFC 4180-quoted when needed).
 * Returns NT_OK or NT_ERR_IO when the stream reports a write error.
 */
int nt_csv_write_rows(FILE *out, const char *file, const nt_recording *rec,
                      const nt_trial_result *results, size_t n);

/*
 * Like nt_csv_write_header / nt_csv_write_rows, with n_extra more columns
 * after the standard ones: their names, and each row's values (the same for
 * every row of one file; NULL values: empty cells).
 */
int nt_csv_write_header_ex(FILE *out, char *const *extra_columns, size_t n_extra);
int nt_csv_write_rows_ex(FILE *out, const char *file, const nt_recording *rec,
                         const nt_trial_result *results, size_t n, char *const *extra_values,
                         size_t n_extra);

/*
 * Concatenates the CSV tables parts [n_parts] into out: the first header,
 * then every part's data rows in the order given. Every header must equal
 * the first (else NT_ERR_FORMAT naming the part and column: tables of
 * different runs or versions are not mixed). *n_rows (may be NULL) receives
 * the data rows written.
 */
int nt_csv_merge(char *const *parts, size_t n_parts, FILE *out, size_t *n_rows, nt_error *err);

/* ------------------------------------------------------------------ events */

/* Which transients nt_events_detect reports. */
enum nt_polarity {
    NT_POLARITY_POSITIVE = 0, /* rises of ΔF/F (release that brightens the sensor) */
    NT_POLARITY_NEGATIVE,     /* dips of ΔF/F (sensors that dim) */
    NT_POLARITY_BOTH          /* both, merged in time order */
};

/* Names of enum nt_polarity values ("positive", "negative", "both"); NULL if
 * unknown. */
const char *nt_polarity_name(int polarity);
/* Parses a polarity name; returns the enum value or -1. */
int nt_polarity_parse(const char *name);

/* Parameters of spontaneous event detection. Initialise with
 * nt_event_params_default; the defaults are documented there and in the
 * README (`nirtrace events`). */
typedef struct nt_event_params {
    int polarity;             /* enum nt_polarity [positive] */
    double threshold_sd;      /* an event rises above k·σ of the filtered ΔF/F [3] */
    double min_duration_s;    /* ... and stays above it this long [0.5] */
    double lowpass_hz;        /* zero-phase low-pass cutoff; 0 disables it [2] */
    int lowpass_order;        /* Butterworth order of the magnitude response [4] */
    double baseline_window_s; /* span of the running F0 (line fits outside events) [120] */
    double decay_max_s;       /* the decay is followed at most this long after the peak [60] */
    int detector;             /* enum nt_detector: NT_DETECTOR_MATCHED also adds the events
                                 the whitened matched filter finds below k·σ [matched] */
    double false_alarm_per_min; /* matched: false events per ROI-minute it may add [0.02] */
} nt_event_params;

/* Fills p with the documented defaults. */
void nt_event_params_default(nt_event_params *p);

/* Returns NT_OK when every parameter is in range, else NT_ERR_INVALID with
 * the parameter's name in err. */
int nt_event_params_check(const nt_event_params *p, nt_error *err);

/* One spontaneous transient. Times in seconds from the first frame, ΔF/F as a
 * fraction; NaN where a measure is not defined. A dip (negative polarity) has
 * a negative amplitude_dff and auc_dff_s; every other measure is positive. */
typedef struct nt_event {
    size_t roi;           /* 0-based ROI index */
    size_t index;         /* 0-based number of the event within its ROI, in time order */
    double onset_s;       /* 10 % of the peak on the rising edge (see README) */
    double peak_s;        /* time of the peak of the filtered ΔF/F */
    double amplitude_dff; /* ΔF/F at the peak (negative for a dip) */
    double rise_s;        /* 10 % -> 90 % of the peak, on the rising edge */
    double half_width_s;  /* full width at half maximum */
    double decay_tau_s;   /* single exponential fitted from the peak; NaN when not determined */
    double auc_dff_s;     /* area of the filtered ΔF/F from the onset until it returns to 0 */
    double snr;           /* |amplitude_dff| / σ of the ROI's filtered ΔF/F */
} nt_event;

/* Per-ROI outcome of nt_events_detect. */
typedef struct nt_event_roi {
    size_t n_events;      /* events found in this ROI */
    double duration_s;    /* time the recording covers: n_frames × the mean frame interval */
    double events_per_min;/* n_events / duration_s × 60; NaN when the ROI was not analysed */
    double noise_sd_dff;  /* robust σ of the filtered ΔF/F outside events; NaN when not analysed */
    unsigned flags;       /* NT_FLAG_NONFINITE, NT_FLAG_F0_NONPOSITIVE or NT_FLAG_FLAT:
                             the ROI was not analysed (no events) */
} nt_event_roi;

/*
 * Finds every transient of every ROI of rec, with or without stimuli (the
 * stimuli, if any, are ignored: evoked responses are reported as events
 * too). rec needs samples and a valid time base (as nt_recording_check asks,
 * except for stimuli). p may be NULL for defaults.
 *
 * On success *events is a new array of *n_events events (NULL when there are
 * none), ordered by ROI then onset; free it with nt_events_free. rois, when
 * not NULL, is a caller-owned array [rec->n_rois] that receives each ROI's
 * summary. Per-ROI data problems (non-finite samples, a baseline <= 0, a
 * constant trace) do not fail the call: the ROI gets a flag and no events.
 * Makes an FFTW plan: not to be called while another thread plans FFTs.
 */
int nt_events_detect(const nt_recording *rec, const nt_event_params *p, nt_event **events,
                     size_t *n_events, nt_event_roi *rois, nt_error *err);

/* Frees an array returned by nt_events_detect. Accepts NULL. */
void nt_events_free(nt_event *events);

/* Writes the header of the events table:
 * file,roi,event,onset_s,peak_s,amplitude_dff,rise_s,half_width_s,decay_tau_s,auc_dff_s,snr
 * Returns NT_OK or NT_ERR_IO when the stream reports a write error. */
int nt_events_csv_write_header(FILE *out);

/* Writes one row per event of events [n] found in rec, from the file named
 * file (RFC 4180-quoted when needed); `event` is index + 1. */
int nt_events_csv_write_rows(FILE *out, const char *file, const nt_recording *rec,
                             const nt_event *events, size_t n);

/* The per-ROI summary table:
 * file,roi,n_events,duration_s,events_per_min,noise_sd_dff,flags
 * one row per ROI of rois [rec->n_rois]. */
int nt_events_summary_write_header(FILE *out);
int nt_events_summary_write_rows(FILE *out, const char *file, const nt_recording *rec,
                                 const nt_event_roi *rois);

/* ---------------------------------------------------------------- manifest */

/* A study manifest: a CSV table with a `file` column and any others
 * (animal, genotype, condition, ...), appended to the rows of that file. */
typedef struct nt_manifest nt_manifest;

/* Reads the manifest at path. On success *out is new; free with
 * nt_manifest_free. Errors name the line. */
int nt_manifest_read(const char *path, nt_manifest **out, nt_error *err);
void nt_manifest_free(nt_manifest *m);

/* The columns other than `file`: their count and names (owned by m). */
size_t nt_manifest_n_columns(const nt_manifest *m);
char *const *nt_manifest_columns(const nt_manifest *m);
/* The rows: count, `file` of a row, and its other values [n_columns]. */
size_t nt_manifest_n_rows(const nt_manifest *m);
const char *nt_manifest_file(const nt_manifest *m, size_t row);
char *const *nt_manifest_values(const nt_manifest *m, size_t row);

/* The row of input path: the row whose file is path, else the only row
 * with the same base name; -1 when none (or several) match. */
long nt_manifest_find(const nt_manifest *m, const char *path);

/* ----------------------------------------------------------------- compare */

/* Tolerances of nt_csv_compare: two numbers a (expected) and b agree when
 * |a - b| <= atol + rtol * |a|; NaN agrees with NaN only. Non-numeric cells
 * must be equal as strings. */
typedef struct nt_compare_options {
    double rtol;
    double atol;
    const char *ignore; /* comma-separated columns not compared (NULL: none) */
} nt_compare_options;

/* Called once per difference found, with a one-line description such as
 * "row 3 (roi=2, trial=1): amplitude_dff: expected 0.051, got 0.049". */
typedef void (*nt_compare_report_fn)(void *ctx, const char *line);

/*
 * Compares two CSV files cell by cell (headers must match column for column,
 * rows are matched by position). report (may be NULL) is called for each
 * difference. *n_diffs receives the number of differing cells plus rows
 * present in one file only. Returns NT_OK when both files could be read
 * (whatever the differences), else NT_ERR_IO/NT_ERR_FORMAT with err set.
 */
int nt_csv_compare(const char *expected_path, const char *actual_path,
                   const nt_compare_options *opts, nt_compare_report_fn report,
                   void *ctx, size_t *n_diffs, nt_error *err);

#ifdef __cplusplus
}
#endif

#endif /* NIRTRACE_H */
