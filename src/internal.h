/*
 * internal.h — private declarations shared by the library's stages.
 * Not installed; tests include it to reach the stages one by one.
 */
#ifndef NT_INTERNAL_H
#define NT_INTERNAL_H

#include "nirtrace.h"
#include "fit_model.h"

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define NT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NT_PRINTF(a, b)
#endif

/* Sets err (if not NULL) to status and the formatted message; returns status
 * so that callers can write `return nt_error_set(err, NT_ERR_X, "...")`. */
int nt_error_set(nt_error *err, int status, const char *fmt, ...) NT_PRINTF(3, 4);

/* strdup that returns NULL on allocation failure (C11 has no strdup). */
char *nt_strdup(const char *s);

/* Frees an array of n strings and the array. Accepts NULL. */
void nt_strings_free(char **s, size_t n);

/* Writes a size in binary units ("372 GiB", "1.5 KiB", "600 bytes"), for
 * messages about sizes that a file declares. */
void nt_format_bytes(double bytes, char *buf, size_t len);

/* ----------------------------------------------------------- filter_fft.c */

/* The transform length both FFT users (the low-pass, filter_xcorr.c) take
 * for n points: the smallest m >= n that is a multiple of 4 with no prime
 * factor above 7, where FFTW is fastest. */
size_t nt_fft_smooth_size(size_t n);

/* A zero-phase low-pass filter for traces of one length, applied in the
 * frequency domain with FFTW; the plan is made once at creation. */
typedef struct nt_lowpass nt_lowpass;

/*
 * Creates a low-pass for traces of n samples at rate_hz, with magnitude
 * |H(f)| = 1 / sqrt(1 + (f / cutoff_hz)^(2 order)) and zero phase. Traces
 * are mirror-extended at both ends before the transform so that the ends do
 * not ring into the data. cutoff_hz >= the Nyquist frequency is allowed
 * (the filter then only attenuates by |H| near Nyquist).
 * On success *out is new; free with nt_lowpass_destroy.
 */
int nt_lowpass_create(size_t n, double rate_hz, double cutoff_hz, int order,
                      nt_lowpass **out, nt_error *err);

/* Filters x [n] into y [n] (y may equal x). Never fails. */
void nt_lowpass_execute(nt_lowpass *f, const double *x, double *y);

/* The magnitude response |H(f_hz)| the filter applies. */
double nt_lowpass_gain(const nt_lowpass *f, double f_hz);

/* The trace length, rate, cutoff and order the filter was made for. */
size_t nt_lowpass_length(const nt_lowpass *f);
double nt_lowpass_rate_hz(const nt_lowpass *f);
double nt_lowpass_cutoff_hz(const nt_lowpass *f);
int nt_lowpass_order(const nt_lowpass *f);

/* Frees f. Accepts NULL. */
void nt_lowpass_destroy(nt_lowpass *f);

/* Working memory for one thread's nt_lowpass_execute_in: the FFT buffers
 * of one filter's transform length. */
typedef struct nt_lowpass_scratch nt_lowpass_scratch;

/* Creates scratch buffers for f. On success *out is new; free with
 * nt_lowpass_scratch_destroy. */
int nt_lowpass_scratch_create(const nt_lowpass *f, nt_lowpass_scratch **out, nt_error *err);

/* Frees s. Accepts NULL. */
void nt_lowpass_scratch_destroy(nt_lowpass_scratch *s);

/* As nt_lowpass_execute, in the buffers of s (made for f): several threads
 * may filter with one f at once, each with its own s. */
void nt_lowpass_execute_in(const nt_lowpass *f, nt_lowpass_scratch *s, const double *x,
                           double *y);

/* ----------------------------------------------------------- parallel.c */

/*
 * Calls fn(ctx, w) for workers w = 0 .. n_workers-1 at once: worker 0 in
 * the calling thread, the others in threads created for the call; returns
 * when every call has returned. A thread that cannot be created is skipped
 * (fn must share its work dynamically, not by worker number). Returns the
 * number of workers that ran (at least 1, at most 256).
 */
unsigned nt_parallel_run(unsigned n_workers, void (*fn)(void *ctx, unsigned worker), void *ctx);

/* The number of online CPUs (1-256). */
unsigned nt_cpu_count(void);

/* -------------------------------------------------------------- stats.c */

/* Median of x [n] (n > 0); work [n] is scratch (x is not modified). */
double nt_median(const double *x, size_t n, double *work);

/* Robust σ: 1.4826 × median absolute deviation from the median of x [n]
 * (n > 0); work [n] is scratch. */
double nt_mad_sd(const double *x, size_t n, double *work);

/* out[i]: mean of z [n] over the samples within half_s of t[i] (t
 * increasing); a running sum, O(n). */
void nt_moving_mean(const double *t, const double *z, size_t n, double half_s, double *out);

/* Least-squares line y = a + b·t over n points; returns 0, or -1 when the
 * t values do not span an interval (n < 2 or all equal). */
int nt_linefit(const double *t, const double *y, size_t n, double *a, double *b);

/* Index of the first element of t [n] (increasing) that is >= value
 * (n when none). */
size_t nt_lower_bound(const double *t, size_t n, double value);

/* The largest |t[i] - (t[0] + i·dt)| over t [n] (n >= 2), dt being
 * (t[n-1] - t[0]) / (n - 1): how far the times are from a regular grid. */
double nt_grid_deviation(const double *t, size_t n);

/* Linear interpolation of the abscissa where the segment (t0,y0)-(t1,y1)
 * crosses level (y0 != y1). */
double nt_cross_time(double t0, double y0, double t1, double y1, double level);

/* ---------------------------------------------------------- baseline.c */

/* The baseline of one trial: F0 and its drift model. F0(t) passes through
 * the baseline mean f0 at t_mid_s (the mean time of the F0 window) and
 * follows the slope fitted on the pre-stimulus data: f0 + slope·(t - t_mid)
 * (linear) or f0·exp(slope·(t - t_mid)) (exponential). */
typedef struct nt_baseline {
    double f0;          /* mean of the raw trace over the F0 window */
    double t_mid_s;     /* mean time of the F0 window */
    double slope;       /* drift slope: raw units/s (linear) or 1/s (exp); 0 for none */
    int drift;          /* enum nt_drift used (NONE when it could not be fitted) */
    size_t n_samples;   /* samples in the F0 window */
    unsigned flags;     /* NT_FLAG_SHORT_BASELINE / NO_BASELINE / F0_NONPOSITIVE */
} nt_baseline;

/* F0 at time t_s under the baseline's drift model. */
double nt_baseline_f0_at(const nt_baseline *b, double t_s);

/* 1/F0 at each of the n times t [n] (increasing), into inv_f0 [n]: the
 * reciprocals of nt_baseline_f0_at to a relative 1e-13, without an exp or a
 * division per sample when the times lie on a regular grid. grid_dev_s: the
 * largest distance of a time of the recording from its regular grid
 * (nt_grid_deviation), or INFINITY when not known. */
void nt_baseline_inverse_fill(const nt_baseline *b, const double *t, size_t n,
                              double grid_dev_s, double *inv_f0);

/*
 * Fits the baseline of the trial whose stimulus is at stim_s, on the raw
 * trace x [n] with times t [n]. The F0 window is [stim_s - p->baseline_s,
 * end_s), end_s being the stimulus minus its timing jitter, so that an early
 * response cannot enter F0. The drift model (if p->drift) is fitted on
 * [max(stim_s - p->drift_window_s, from_s), end_s): from_s (or -INFINITY)
 * keeps an earlier trial out of it.
 */
void nt_baseline_fit(const double *t, const double *x, size_t n, double stim_s,
                     double end_s, double from_s, const nt_params *p, nt_baseline *b);

/*
 * A running baseline of the raw trace x [n] (times t [n], increasing) for
 * recordings without a pre-stimulus baseline: knots every window_s / 4, each
 * the value at the knot of the least-squares line through the samples
 * within window_s / 2 of it that mask does not mark (mask [n], non-zero
 * inside a transient; NULL for none), joined by straight lines. A knot that
 * sees fewer than 3 unmasked samples, or less
 * than a tenth of its window, takes the value interpolated between its
 * neighbours (the nearest one at either end). Writes f0 [n]; work is
 * scratch [2 n]. Returns NT_OK, NT_ERR_INVALID when no knot has enough
 * unmasked samples (f0 unchanged), or NT_ERR_NOMEM.
 */
int nt_baseline_running(const double *t, const double *x, const unsigned char *mask, size_t n,
                        double window_s, double *work, double *f0);

/* ------------------------------------------------------------- detect.c */

/* The outcome of detection on one trial. */
typedef struct nt_detection {
    int detected;
    size_t cross;   /* index where the filtered ΔF/F first rose above the threshold */
} nt_detection;

/*
 * Threshold detection on the filtered ΔF/F y [n] with times t [n]: the trial
 * responded when y rises above level and stays above it for min_duration_s,
 * with the rise inside [from_s, to_s]. A run already above level at from_s
 * counts as rising at from_s.
 */
nt_detection nt_detect_threshold(const double *t, const double *y, size_t n, double level,
                                 double min_duration_s, double from_s, double to_s);

/* --------------------------------------------------------------- measure.c */

/*
 * Fits y = A·exp(-(t - t0)/τ) by least squares to the n points (t, y),
 * with τ searched in [tau_min_s, tau_max_s] (A solved exactly for each τ).
 * Returns τ in seconds, or NaN when the fit is not determined (n < 3,
 * A <= 0, or the best τ lies on a bound). *amp receives A (may be NULL).
 */
double nt_fit_exp_decay(const double *t, const double *y, size_t n, double t0,
                        double tau_min_s, double tau_max_s, double *amp);


/* Where to look for the parts of one detected response, in seconds. */
typedef struct nt_response_span {
    double stim_s;     /* the stimulus */
    double back_s;     /* the rising edge is not followed back before this */
    double peak_end_s; /* the peak is searched no later than this */
    double decay_end_s;/* the decay is followed no later than this */
} nt_response_span;

/*
 * Measures a detected response on the trace with times t [n] and filtered
 * ΔF/F y [n]. cross is the index where y rose above level. Fills the
 * amplitude, peak, onset latency, time to peak, rise, half width and AUC
 * fields of r (NaN where a measure is not defined); decay_tau_s is set to
 * NaN (see nt_measure_decay_tau, needed only when the model fit fails).
 * Returns the index of the peak sample.
 */
size_t nt_measure_response(const double *t, const double *y, size_t n, size_t cross,
                           double level, const nt_response_span *span, nt_trial_result *r);

/*
 * The waveform's decay time constant: nt_fit_exp_decay on the unfiltered
 * ΔF/F d [n] (times t [n]) from the peak sample (as returned by
 * nt_measure_response) to span->decay_end_s. NaN when not determined.
 */
double nt_measure_decay_tau(const double *t, const double *d, size_t n, size_t peak,
                            const nt_response_span *span);

/* A start of the response-model fit: onset time and time constants, s. */
typedef struct nt_fit_start {
    double t0_s, tau_on_s, tau_off_s;
} nt_fit_start;

/* Where the response-model fit searches, and what a trusted fit satisfies. */
typedef struct nt_refine {
    nt_model_bounds bounds;   /* search box of t0, τon, τoff */
    double from_s;            /* the fit starts here (some baseline before t0) */
    double peak_min_s, peak_max_s; /* the fitted peak must lie in here */
    double origin_s;          /* onset latency and time to peak count from here */
} nt_refine;

/*
 * Refines the waveform measures r of a response (from nt_measure_response
 * on the filtered trace; peak its peak index, span its span) with the lab's
 * model A·(1 - e^(-(t-t0)/τon))·e^(-(t-t0)/τoff), fitted to the unfiltered
 * ΔF/F d [n] (times t [n]) from q->from_s to the end of the decay span or
 * 5 waveform half widths after the peak, whichever comes first (by then
 * an exponential decay is down to 3 %: the later samples carry about 3 % of
 * the information on τoff and all of the baseline's extrapolation error).
 *
 * Starts: t0 from the 10 % point, τon from the 10-90 % rise / ln 9, τoff
 * from the half width / ln 2; and guess, when not NULL (a detector's own
 * estimate, from a different basin). A fit is trusted when it converges
 * inside q->bounds with τon <= τoff (a rise faster than the decay:
 * otherwise the two constants swap roles and τoff no longer measures the
 * decay), peaks in [peak_min_s, peak_max_s] and within a factor of 1.5 of
 * the waveform's peak (the curve's with its baseline line, below); of two
 * trusted fits the lower residual wins. With q->bounds.line the fits are
 * first made with a baseline line c0 + c1·t (fit_model.h), which is kept
 * when Akaike's criterion says it earns its two parameters; otherwise, or
 * when no line fit is trusted, without it. When
 * none is trusted, the fit is tried once more with τoff started from the
 * waveform's single-exponential decay (nt_measure_decay_tau), which then
 * is r's decay τ when that fit fails too. A trusted fit's amplitude, peak,
 * onset latency, time to peak, rise, half width and decay τ replace r's:
 * returns 1; otherwise 0, r keeping its waveform measures. dt is the frame
 * interval (the τon start when the rise is undefined).
 */
int nt_refine_with_model(const double *t, const double *d, size_t n, size_t peak,
                         const nt_response_span *span, const nt_refine *q, double dt,
                         const nt_fit_start *guess, nt_trial_result *r);

/* The size of the file at path, in *size: NT_OK when it is a regular file,
 * else NT_ERR_IO "cannot open: ...", "is a directory" or "is not a regular
 * file" (readers would wait on a FIFO; a device is no recording). */
int nt_stat_regular(const char *path, long long *size, nt_error *err);

#endif /* NT_INTERNAL_H */
