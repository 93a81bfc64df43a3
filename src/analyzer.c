/*
 * analyzer.c — the pipeline for one recording: for every ROI, the raw trace
 * is low-passed once; for every stimulus, F0 and ΔF/F, the noise σ,
 * detection and measures follow (baseline.c, filter_fft.c, detect.c,
 * measure.c).
 *
 * ΔF/F is computed from the filtered raw trace with the trial's F0:
 * filter(F)/F0 - 1 equals filter(F/F0 - 1) exactly because the filter is
 * linear with unit gain at 0 Hz; so one FFT per ROI serves every trial.
 *
 * Irregular frame times (timestamps that beat the nominal rate) are handled
 * without assuming a rate: the trace is interpolated onto a uniform grid
 * spanning the same time, filtered there, and interpolated back onto the
 * true frame times. Every time measure uses the true frame times.
 *
 * ROIs are independent, so they are analysed by several threads at once
 * (nt_params.threads): each worker has its own buffers and FFT scratch and
 * takes the next ROI from a shared counter; a ROI's results do not depend
 * on which worker computed it, so the output is the same for any number of
 * threads.
 */
#include "internal.h"
#include "fit_model.h"
#include "detect_matched.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One thread's working memory: the buffers of the ROI it is analysing. */
typedef struct worker {
    double *x;           /* raw trace */
    double *xf;          /* filtered raw trace */
    double *dff;         /* ΔF/F of the current trial */
    double *yf;          /* filtered ΔF/F of the current trial */
    double *work;        /* scratch: uniform grid, F0, noise samples */
    double *work2;       /* scratch: medians */
    double *box;         /* ΔF/F of the trial averaged over SHADOW_BOX_S */
    nt_lowpass_scratch *fft; /* for the analyzer's low-pass; NULL without one */
    nt_mf *mf;           /* matched detector (NT_DETECTOR_MATCHED), else NULL */
    size_t mf_n;         /* the trace length, rate and template mf was made for */
    double mf_rate_hz;
    nt_mf_kinetics mf_shape; /* {0, 0}: the default bank */
    int mf_ready;        /* the current ROI's noise model is learnt */
} worker;

/* The shadow dip is looked for on ΔF/F averaged over this many seconds
 * (about the 2 Hz low-pass's smoothing, without its ringing). */
#define SHADOW_BOX_S 0.25

/* Workers beyond the first are used only when every one gets at least this
 * many samples (ROIs x frames): below it, starting a thread costs more than
 * it saves. */
#define MIN_SAMPLES_PER_THREAD 100000

struct nt_analyzer {
    nt_params p;
    nt_lowpass *lowpass; /* for the last trace length and rate seen */
    int fft_fresh;       /* lowpass was replaced: the workers' FFT scratch is stale */
    size_t cap;          /* frames each worker's buffers hold */
    unsigned n_workers;  /* workers allocated */
    worker *workers;     /* [n_workers] */
    double win_before_s; /* kept windows: [stim - before, stim + after]; 0, 0 = none */
    double win_after_s;
    size_t win_n;        /* samples per window of the last execute */
    size_t win_cap;      /* doubles each window array holds */
    double *win_t;       /* [rows * win_n] */
    double *win_dff;
    double *win_filt;
};

int nt_analyzer_create(const nt_params *p, nt_analyzer **out, nt_error *err)
{
    *out = NULL;
    nt_params defaults;
    if (p == NULL) {
        nt_params_default(&defaults);
        p = &defaults;
    }
    int status = nt_params_check(p, err);
    if (status != NT_OK)
        return status;
    nt_analyzer *a = calloc(1, sizeof *a);
    if (a == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "out of memory");
    a->p = *p;
    *out = a;
    return NT_OK;
}

static void free_worker(worker *w)
{
    free(w->x);
    free(w->xf);
    free(w->dff);
    free(w->yf);
    free(w->work);
    free(w->work2);
    free(w->box);
    nt_lowpass_scratch_destroy(w->fft);
    nt_mf_destroy(w->mf);
    *w = (worker){0};
}

static void free_workers(nt_analyzer *a)
{
    for (unsigned k = 0; k < a->n_workers; k++)
        free_worker(&a->workers[k]);
    free(a->workers);
    a->workers = NULL;
    a->n_workers = 0;
    a->cap = 0;
}

void nt_analyzer_destroy(nt_analyzer *a)
{
    if (a == NULL)
        return;
    free_workers(a);
    nt_lowpass_destroy(a->lowpass);
    free(a->win_t);
    free(a->win_dff);
    free(a->win_filt);
    free(a);
}

int nt_analyzer_keep_windows(nt_analyzer *a, double before_s, double after_s, nt_error *err)
{
    if (!(before_s >= 0) || !(after_s >= 0) || !isfinite(before_s) || !isfinite(after_s))
        return nt_error_set(err, NT_ERR_INVALID, "trace windows must be >= 0 s, got %g, %g",
                            before_s, after_s);
    a->win_before_s = before_s;
    a->win_after_s = after_s;
    a->win_n = 0;
    return NT_OK;
}

int nt_analyzer_windows(const nt_analyzer *a, size_t *n_win, const double **t_rel_s,
                        const double **dff, const double **dff_filtered)
{
    if (a->win_n == 0)
        return NT_ERR_INVALID;
    *n_win = a->win_n;
    *t_rel_s = a->win_t;
    *dff = a->win_dff;
    *dff_filtered = a->win_filt;
    return NT_OK;
}

static int windows_enabled(const nt_analyzer *a)
{
    return a->win_before_s > 0 || a->win_after_s > 0;
}

/* Sizes the window arrays for rec: a window holds as many samples as the
 * most frames any window of that span covers. */
static int reserve_windows(nt_analyzer *a, const nt_recording *rec, nt_error *err)
{
    const double *t = rec->time_s;
    size_t n = rec->n_frames, widest = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        while (j < n && t[j] - t[i] <= a->win_before_s + a->win_after_s)
            j++;
        if (j - i > widest)
            widest = j - i;
    }
    size_t rows = rec->n_rois * rec->n_stims;
    if (widest > 0 && rows > SIZE_MAX / sizeof(double) / widest)
        return nt_error_set(err, NT_ERR_TOO_LARGE, "trace windows would not fit in memory");
    size_t need = rows * widest;
    if (need > a->win_cap) {
        free(a->win_t);
        free(a->win_dff);
        free(a->win_filt);
        a->win_t = malloc(need * sizeof *a->win_t);
        a->win_dff = malloc(need * sizeof *a->win_dff);
        a->win_filt = malloc(need * sizeof *a->win_filt);
        a->win_cap = need;
        if (!a->win_t || !a->win_dff || !a->win_filt) {
            free(a->win_t);
            free(a->win_dff);
            free(a->win_filt);
            a->win_t = a->win_dff = a->win_filt = NULL;
            a->win_cap = 0;
            return nt_error_set(err, NT_ERR_NOMEM, "out of memory for %zu trace windows", rows);
        }
    }
    a->win_n = widest;
    return NT_OK;
}

/* Fills the window of one (ROI, trial) row from the raw and filtered trace
 * with the trial's baseline b (NULL: the row is unmeasured, all NaN). */
static void fill_window(const nt_analyzer *a, const worker *wk, const nt_recording *rec,
                        size_t row, double stim, const nt_baseline *b)
{
    const double *t = rec->time_s;
    size_t n = rec->n_frames, w = a->win_n;
    double *wt = a->win_t + row * w, *wd = a->win_dff + row * w, *wf = a->win_filt + row * w;
    size_t i = nt_lower_bound(t, n, stim - a->win_before_s);
    for (size_t k = 0; k < w; k++, i++) {
        if (i >= n || t[i] > stim + a->win_after_s) {
            wt[k] = wd[k] = wf[k] = NAN;
            continue;
        }
        wt[k] = t[i] - stim;
        if (b == NULL) {
            wd[k] = wf[k] = NAN;
            continue;
        }
        double f0 = nt_baseline_f0_at(b, t[i]);
        wd[k] = wk->x[i] / f0 - 1.0;
        wf[k] = wk->xf[i] / f0 - 1.0;
    }
}

/* Gives the analyzer at least n_workers workers with buffers of n frames,
 * and every worker FFT scratch for its current low-pass (scratch made for
 * another low-pass is replaced). */
static int reserve(nt_analyzer *a, size_t n, unsigned n_workers, nt_error *err)
{
    if (n > a->cap || n_workers > a->n_workers) {
        free_workers(a);
        a->workers = calloc(n_workers, sizeof *a->workers);
        if (a->workers == NULL)
            return nt_error_set(err, NT_ERR_NOMEM, "out of memory for %u workers", n_workers);
        a->n_workers = n_workers;
        for (unsigned k = 0; k < n_workers; k++) {
            worker *w = &a->workers[k];
            w->x = malloc(n * sizeof *w->x);
            w->xf = malloc(n * sizeof *w->xf);
            w->dff = malloc(n * sizeof *w->dff);
            w->yf = malloc(n * sizeof *w->yf);
            w->work = malloc(n * sizeof *w->work);
            w->work2 = malloc(n * sizeof *w->work2);
            w->box = malloc(n * sizeof *w->box);
            if (!w->x || !w->xf || !w->dff || !w->yf || !w->work || !w->work2 || !w->box) {
                free_workers(a);
                return nt_error_set(err, NT_ERR_NOMEM, "out of memory for traces of %zu frames",
                                    n);
            }
        }
        a->cap = n;
    }
    for (unsigned k = 0; k < a->n_workers; k++) {
        worker *w = &a->workers[k];
        if ((w->fft != NULL || a->lowpass == NULL) && !a->fft_fresh)
            continue;
        nt_lowpass_scratch_destroy(w->fft);
        w->fft = NULL;
        if (a->lowpass != NULL) {
            int status = nt_lowpass_scratch_create(a->lowpass, &w->fft, err);
            if (status != NT_OK)
                return status;
        }
    }
    a->fft_fresh = 0;
    return NT_OK;
}

/* The low-pass for n samples at rate_hz, reusing the previous one when it
 * matches (the usual case: every ROI, and every file of a batch). */
static int get_lowpass(nt_analyzer *a, size_t n, double rate_hz, nt_error *err)
{
    nt_lowpass *f = a->lowpass;
    if (f != NULL && nt_lowpass_length(f) == n && nt_lowpass_rate_hz(f) == rate_hz)
        return NT_OK;
    nt_lowpass_destroy(f);
    a->lowpass = NULL;
    a->fft_fresh = 1;
    return nt_lowpass_create(n, rate_hz, a->p.lowpass_hz, a->p.lowpass_order, &a->lowpass, err);
}

/* Frame times are regular when no interval departs from the mean interval
 * by more than 0.1 %. */
static int times_regular(const double *t, size_t n, double dt)
{
    for (size_t i = 1; i < n; i++)
        if (fabs(t[i] - t[i - 1] - dt) > 1e-3 * dt)
            return 0;
    return 1;
}

/* Filters the raw trace w->x into w->xf on the times t [n]. */
static void filter_trace(const nt_analyzer *a, worker *w, const double *t, size_t n, int regular,
                         double dt)
{
    if (a->lowpass == NULL) {
        memcpy(w->xf, w->x, n * sizeof *w->xf);
        return;
    }
    if (regular) {
        nt_lowpass_execute_in(a->lowpass, w->fft, w->x, w->xf);
        return;
    }
    /* Uniform grid u_i = t0 + i·dt: interpolate on, filter, interpolate back. */
    double *u = w->work;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        double tu = t[0] + (double)i * dt;
        while (j + 1 < n && t[j + 1] < tu)
            j++;
        u[i] = (j + 1 < n) ? w->x[j] + (w->x[j + 1] - w->x[j]) * (tu - t[j]) / (t[j + 1] - t[j])
                           : w->x[n - 1];
    }
    nt_lowpass_execute_in(a->lowpass, w->fft, u, u);
    for (size_t i = 0; i < n; i++) {
        double pos = (t[i] - t[0]) / dt;
        size_t k = pos <= 0 ? 0 : (size_t)pos;
        if (k >= n - 1) {
            w->xf[i] = u[n - 1];
        } else {
            double frac = pos - (double)k;
            w->xf[i] = u[k] + (u[k + 1] - u[k]) * frac;
        }
    }
}

static void result_init(nt_trial_result *r, size_t roi, size_t trial, double stim_s)
{
    r->roi = roi;
    r->trial = trial;
    r->stim_s = stim_s;
    r->detected = 0;
    r->amplitude_dff = r->peak_s = r->onset_latency_s = r->time_to_peak_s = NAN;
    r->rise_s = r->half_width_s = r->decay_tau_s = r->auc_dff_s = NAN;
    r->f0 = r->noise_sd_dff = r->snr = NAN;
    r->flags = 0;
}

/* Nearest stimulus strictly before / after stim k (stimuli need not be
 * sorted); -INFINITY / +INFINITY when none. */
static void neighbours(const double *s, size_t n, size_t k, double *prev, double *next)
{
    *prev = -INFINITY;
    *next = INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < s[k] && s[i] > *prev)
            *prev = s[i];
        if (s[i] > s[k] && s[i] < *next)
            *next = s[i];
    }
}

/* Robust σ of the filtered ΔF/F y over [i0, i1) after removing its
 * least-squares line, so that slow drift in the window does not count as
 * noise. */
static double noise_sd(worker *w, const double *t, const double *y, size_t i0, size_t i1)
{
    size_t m = i1 - i0;
    double c0 = 0, c1 = 0;
    if (nt_linefit(t + i0, y + i0, m, &c0, &c1) != 0)
        c0 = c1 = 0;
    for (size_t i = 0; i < m; i++)
        w->work[i] = y[i0 + i] - (c0 + c1 * t[i0 + i]);
    return nt_mad_sd(w->work, m, w->work2);
}

/* What the matched detector found on a trial: a start for the model fit
 * (onset and the best template's time constants), the least-squares
 * amplitude of that template at that onset (peak ΔF/F) and its peak time. */
typedef struct mf_estimate {
    nt_fit_start start;
    double amp_dff;
    double peak_s;
} mf_estimate;

/*
 * Refines the waveform measures of a detected response in r with the lab's
 * model fitted to the unfiltered ΔF/F d from stim - 2 s (nt_refine_with_model).
 * The onset is searched from the stimulus (less the jitter) to the end of
 * the detection window, τon up to twice the waveform's time to peak (the
 * model peaks at t0 + τon·ln((τon+τoff)/τon) >= τon·ln 2 when τon <= τoff),
 * and the fitted peak must lie in the peak search span. A row whose fit is
 * not trusted is flagged NT_FLAG_NOFIT; its amplitude, onset and peak are
 * then the matched filter's (est, when the matched detector found it): the
 * whitened least-squares amplitude of the best template at the best onset,
 * and that template's peak. On the accuracy benchmark this cut the median
 * amplitude error at SNR 1.5-3 from 33 % (the largest sample of the noisy
 * filtered trace) to 12 %, and onset and time-to-peak errors there by a
 * third; at SNR >= 6 few rows are not fitted. Otherwise they keep the
 * waveform measures.
 */
static void refine_with_model(const double *ts, const double *d, size_t m, double dt,
                              double jitter_s, const nt_params *p, const nt_response_span *span,
                              size_t peak, const mf_estimate *est, nt_trial_result *r)
{
    const double stim = span->stim_s;
    nt_refine q = {
        {stim - jitter_s - dt, stim + p->window_s, 0.25 * dt,
         fmin(p->peak_max_s, fmax(2.0 * r->time_to_peak_s, 4.0 * dt)), 0.25 * dt,
         10.0 * (span->decay_end_s - stim), 1},
        stim - fmin(2.0, p->baseline_s), stim - jitter_s, span->peak_end_s, stim,
    };
    if (nt_refine_with_model(ts, d, m, peak, span, &q, dt, est ? &est->start : NULL, r))
        return;
    r->flags |= NT_FLAG_NOFIT;
    if (est != NULL) {
        r->amplitude_dff = est->amp_dff;
        r->onset_latency_s = est->start.t0_s - stim;
        r->peak_s = est->peak_s;
        r->time_to_peak_s = est->peak_s - stim;
    }
}

/*
 * The matched detector's decision on one trial (ΔF/F d and filtered y [m],
 * noise window [n0, n1), onsets searched from n1 to win_to_s). The waveform
 * measures then start at the filtered trace's maximum within the response
 * window after the detected onset, followed down to a quarter of it: a
 * response found below k·σ has no threshold crossing to start from.
 */
static nt_detection detect_matched(worker *w, const double *ts, const double *y,
                                   const double *d, size_t m, size_t n0, size_t n1,
                                   double win_to_s, double p_fa, double *measure_level,
                                   mf_estimate *est)
{
    nt_detection det = {0, 0};
    nt_mf_result res;
    size_t to = nt_lower_bound(ts, m, win_to_s);
    if (to >= m)
        to = m - 1;
    if (to <= n1)
        return det;
    if (nt_mf_execute(w->mf, d, m, n0, n1, n1, to, p_fa, w->mf_ready ? 0u : NT_MF_TRIAL_NOISE,
                      &res, NULL) != NT_OK ||
        !res.detected)
        return det;
    size_t best = res.onset;
    for (size_t i = res.onset; i <= to; i++)
        if (y[i] > y[best])
            best = i;
    if (!(y[best] > 0))
        return det;
    det.detected = 1;
    det.cross = best;
    *measure_level = 0.25 * y[best];
    size_t n_bank;
    const nt_mf_kinetics *bank = nt_mf_bank(w->mf, &n_bank);
    const nt_mf_kinetics k = bank[res.kinetics];
    est->start = (nt_fit_start){ts[res.onset], k.tau_on_s, k.tau_off_s};
    est->amp_dff = res.amplitude;
    est->peak_s = ts[res.onset] + k.tau_on_s * log1p(k.tau_off_s / k.tau_on_s);
    return det;
}

static void analyse_trial(const nt_analyzer *a, worker *w, const nt_recording *rec, size_t k,
                          double dt, double grid_dev_s, nt_trial_result *r)
{
    const nt_params *p = &a->p;
    const double *t = rec->time_s;
    const size_t n = rec->n_frames;
    const double stim = rec->stim_s[k];
    const double jitter_s = p->jitter_frames * dt;
    const double t_last = t[n - 1];
    double prev, next;
    neighbours(rec->stim_s, rec->n_stims, k, &prev, &next);

    nt_baseline b;
    nt_baseline_fit(t, w->x, n, stim, stim - jitter_s, prev, p, &b);
    r->flags |= b.flags;
    r->f0 = b.f0;
    int unmeasured = (b.flags & (NT_FLAG_NO_BASELINE | NT_FLAG_F0_NONPOSITIVE)) != 0;
    if (windows_enabled(a))
        fill_window(a, w, rec, r->roi * rec->n_stims + k, stim, unmeasured ? NULL : &b);
    if (unmeasured)
        return;

    /* The span of this trial: from the earliest pre-stimulus window to the
     * end of the decay window. ΔF/F is needed only there. */
    double back_s = stim - p->baseline_s;
    double from_s = fmin(back_s, stim - p->noise_window_s);
    double peak_end_s = fmin(stim + p->peak_max_s, next - jitter_s);
    double decay_end_s = fmin(stim + p->decay_max_s, next - jitter_s);
    size_t lo = nt_lower_bound(t, n, from_s);
    size_t hi = nt_lower_bound(t, n, decay_end_s);
    if (hi < n)
        hi++;
    double *inv_f0 = w->work;
    nt_baseline_inverse_fill(&b, t + lo, hi - lo, grid_dev_s, inv_f0);
    for (size_t i = lo; i < hi; i++) {
        w->dff[i] = w->x[i] * inv_f0[i - lo] - 1.0;
        w->yf[i] = w->xf[i] * inv_f0[i - lo] - 1.0;
    }
    const double *ts = t + lo, *y = w->yf + lo, *d = w->dff + lo;
    size_t m = hi - lo;

    size_t n0 = nt_lower_bound(ts, m, stim - p->noise_window_s);
    size_t n1 = nt_lower_bound(ts, m, stim - jitter_s);
    if (n1 < n0 + 3) {
        r->flags |= NT_FLAG_NO_BASELINE;
        return;
    }
    double sd = noise_sd(w, ts, y, n0, n1);
    r->noise_sd_dff = sd;
    /* FFT round-off leaves ~1e-16 on a constant trace; no real recording
     * has a ΔF/F noise below 1e-9. */
    if (!(sd > 1e-9) || !isfinite(sd)) {
        r->flags |= NT_FLAG_FLAT;
        return;
    }
    double level = p->threshold_sd * sd;
    double win_from = stim - jitter_s, win_to = stim + p->window_s;
    if (win_to > t_last)
        r->flags |= NT_FLAG_TRUNCATED;

    /* Shadow: a dip below -k·σ in the first second (at most the window),
     * on ΔF/F averaged over SHADOW_BOX_S, σ that average's over the noise
     * window. Not on the low-passed trace: a zero-phase filter rings before
     * a fast rise, by a few % of it, which at high rates and SNR is many σ
     * (on 1 kHz recordings a third of the clean responders were flagged);
     * an average has no negative weights, so only a real dip dips. */
    nt_moving_mean(ts, d, m, 0.5 * SHADOW_BOX_S, w->box);
    double box_level = p->threshold_sd * noise_sd(w, ts, w->box, n0, n1);
    double shadow_to = stim + fmin(1.0, p->window_s);
    for (size_t i = nt_lower_bound(ts, m, stim); i < m && ts[i] <= shadow_to; i++)
        if (w->box[i] < -box_level) {
            r->flags |= NT_FLAG_SHADOW;
            break;
        }

    nt_detection det;
    double measure_level = level;
    mf_estimate est, *have_est = NULL;
    if (p->detector == NT_DETECTOR_MATCHED && w->mf != NULL) {
        det = detect_matched(w, ts, y, d, m, n0, n1, win_to, p->false_alarm, &measure_level,
                             &est);
        have_est = &est;
    } else {
        det = nt_detect_threshold(ts, y, m, level, p->min_duration_s, win_from, win_to);
    }
    if (det.detected) {
        r->detected = 1;
        nt_response_span span = {stim, back_s, peak_end_s, decay_end_s};
        size_t peak = nt_measure_response(ts, y, m, det.cross, measure_level, &span, r);
        refine_with_model(ts, d, m, dt, jitter_s, p, &span, peak, have_est, r);
    } else {
        /* No response: the amplitude is the largest filtered ΔF/F in the
         * response window (what a fixed-window measure would report). */
        size_t i = nt_lower_bound(ts, m, win_from), best = m;
        for (; i < m && ts[i] <= win_to; i++)
            if (best == m || y[i] > y[best])
                best = i;
        if (best < m) {
            r->amplitude_dff = y[best];
            r->peak_s = ts[best];
            r->time_to_peak_s = ts[best] - stim;
        }
    }
    r->snr = r->amplitude_dff / sd;
}

/* One execute: what every worker needs. */
typedef struct job {
    const nt_analyzer *a;
    const nt_recording *rec;
    nt_trial_result *results;
    double dt;
    int regular;
    double grid_dev_s;   /* nt_grid_deviation of the time axis */
    atomic_size_t next_roi;
} job;

/*
 * Learns the ROI's noise model for the matched detector from its raw trace
 * away from every response: before the first stimulus (less the jitter),
 * and from 60 s after each stimulus to the next. A whole ROI gives the
 * model tens of seconds where one trial's baseline gives ten, which is what
 * pins down coloured (AR, 1/f) noise.
 */
static int learn_noise(const nt_analyzer *a, worker *w, const nt_recording *rec, double dt)
{
    enum { MAX_SPANS = 64 };
    const double *t = rec->time_s;
    const size_t n = rec->n_frames;
    const double jitter_s = a->p.jitter_frames * dt;
    double starts[MAX_SPANS + 1];
    size_t k = 0;
    for (size_t i = 0; i < rec->n_stims && k < MAX_SPANS; i++)
        starts[k++] = rec->stim_s[i];
    /* The stimuli in time order (insertion sort: a handful). */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && starts[j] < starts[j - 1]; j--) {
            double tmp = starts[j];
            starts[j] = starts[j - 1];
            starts[j - 1] = tmp;
        }
    nt_mf_span spans[MAX_SPANS + 1];
    size_t n_spans = 0;
    double from = t[0] - 1.0;
    for (size_t i = 0; i <= k; i++) {
        double to = i < k ? starts[i] - jitter_s : t[n - 1] + 1.0;
        size_t b = nt_lower_bound(t, n, from), e = nt_lower_bound(t, n, to);
        if (e > b + 8)
            spans[n_spans++] = (nt_mf_span){b, e};
        if (i < k)
            from = starts[i] + 60.0;
    }
    if (n_spans == 0)
        return NT_ERR_INVALID;
    return nt_mf_learn_noise(w->mf, w->x, spans, n_spans, 1, NULL);
}

/* Analyses ROI roi of the job's recording with worker w's buffers. */
static void analyse_roi(const job *j, worker *w, size_t roi)
{
    const nt_analyzer *a = j->a;
    const nt_recording *rec = j->rec;
    const size_t n = rec->n_frames, n_stims = rec->n_stims;
    const float *src = rec->traces + roi * n;
    nt_trial_result *row = j->results + roi * n_stims;
    /* 0·x is NaN for an infinite or NaN x, and NaN stays in a sum. */
    double zero = 0;
    for (size_t i = 0; i < n; i++) {
        w->x[i] = src[i];
        zero += 0.0 * w->x[i];
    }
    int finite = zero == 0;
    for (size_t k = 0; k < n_stims; k++)
        result_init(&row[k], roi, k, rec->stim_s[k]);
    if (!finite) {
        for (size_t k = 0; k < n_stims; k++) {
            row[k].flags |= NT_FLAG_NONFINITE;
            if (windows_enabled(a))
                fill_window(a, w, rec, roi * n_stims + k, rec->stim_s[k], NULL);
        }
        return;
    }
    filter_trace(a, w, rec->time_s, n, j->regular, j->dt);
    w->mf_ready = w->mf != NULL && learn_noise(a, w, rec, j->dt) == NT_OK;
    for (size_t k = 0; k < n_stims; k++)
        analyse_trial(a, w, rec, k, j->dt, j->grid_dev_s, &row[k]);
}

static void run_worker(void *ctx, unsigned index)
{
    job *j = ctx;
    worker *w = &j->a->workers[index];
    for (;;) {
        size_t roi = atomic_fetch_add(&j->next_roi, 1);
        if (roi >= j->rec->n_rois)
            break;
        analyse_roi(j, w, roi);
    }
}

/* The number of workers for a recording of `samples` samples. */
static unsigned workers_for(const nt_params *p, size_t samples)
{
    unsigned n = p->threads > 0 ? (unsigned)p->threads : nt_cpu_count();
    size_t most = samples / MIN_SAMPLES_PER_THREAD;
    if (most < n)
        n = most < 1 ? 1 : (unsigned)most;
    return n;
}

/*
 * One analysis of every ROI into results, the matched detectors looking for
 * shape ({0, 0}: the default bank). The detectors hold FFTW plans: made
 * here, in the calling thread, because FFTW's planner is not thread-safe.
 */
static int run_pass(nt_analyzer *a, const nt_recording *rec, nt_trial_result *results, double dt,
                    unsigned n_workers, nt_mf_kinetics shape, nt_error *err)
{
    const size_t n = rec->n_frames;
    const int bank = shape.tau_on_s == 0;
    /* A recording too short for a matched filter (a few frames) is judged
     * by the threshold detector (analyse_trial: no mf). */
    const int matched = a->p.detector == NT_DETECTOR_MATCHED && n >= NT_MF_MIN_SAMPLES;
    for (unsigned k = 0; !matched && k < n_workers; k++) {
        nt_mf_destroy(a->workers[k].mf);
        a->workers[k].mf = NULL;
    }
    for (unsigned k = 0; matched && k < n_workers; k++) {
        worker *w = &a->workers[k];
        if (w->mf != NULL && w->mf_n == n && w->mf_rate_hz == 1.0 / dt &&
            w->mf_shape.tau_on_s == shape.tau_on_s && w->mf_shape.tau_off_s == shape.tau_off_s)
            continue;
        nt_mf_destroy(w->mf);
        w->mf = NULL;
        /* auto: the bank and the learnt shape (files whose ROIs differ
         * keep the bank's sensitivity to every kind); fixed: the shape. */
        nt_mf_kinetics kinds[NT_MF_BANK_MAX];
        size_t n_kinds = 0;
        if (!bank && a->p.template_kind == NT_TEMPLATE_AUTO) {
            const nt_mf_kinetics *def = nt_mf_default_bank(&n_kinds);
            memcpy(kinds, def, n_kinds * sizeof *kinds);
        }
        kinds[n_kinds++] = shape;
        int status = nt_mf_create(n, 1.0 / dt, bank ? NULL : kinds, bank ? 0 : n_kinds, &w->mf,
                                  err);
        if (status != NT_OK)
            return status;
        w->mf_n = n;
        w->mf_rate_hz = 1.0 / dt;
        w->mf_shape = shape;
    }
    const double *t = rec->time_s;
    job j = {a, rec, results, dt, times_regular(t, n, dt), nt_grid_deviation(t, n), 0};
    atomic_init(&j.next_roi, 0);
    nt_parallel_run(n_workers, run_worker, &j);
    return NT_OK;
}

/* The model's rise constant τon from its time from onset to peak
 * tp = τon·ln(1 + τoff/τon) (increasing in τon, below τoff); NaN unless
 * 0 < tp < τoff. */
static double tau_on_from_peak(double tp, double tau_off)
{
    if (!(tp > 0 && tp < tau_off))
        return NAN;
    double lo = 0, hi = tau_off;
    while (hi * log1p(tau_off / hi) < tp)
        hi *= 2;
    for (int it = 0; it < 60; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid * log1p(tau_off / mid) < tp)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Confident responses needed to learn a shape, and how confident. */
#define AUTO_MIN_RESPONSES 3
#define AUTO_MIN_SNR_FACTOR 2.0

/*
 * --template auto: the recording's own response shape, from its confident
 * responses (detected, fitted by the model, SNR at least twice the
 * threshold k): the medians of their fitted τon and τoff. Returns 1 and
 * sets *shape when there are at least AUTO_MIN_RESPONSES of them, else 0
 * (the bank's results stand).
 */
static int learn_shape(const nt_params *p, const nt_recording *rec,
                       const nt_trial_result *results, nt_mf_kinetics *shape)
{
    const size_t rows = rec->n_rois * rec->n_stims;
    double *on = malloc(3 * (rows > 0 ? rows : 1) * sizeof *on), *off = on + rows;
    if (on == NULL)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < rows; i++) {
        const nt_trial_result *r = &results[i];
        if (!r->detected || (r->flags & NT_FLAG_NOFIT) ||
            !(r->snr >= AUTO_MIN_SNR_FACTOR * p->threshold_sd))
            continue;
        double tau_on = tau_on_from_peak(r->time_to_peak_s - r->onset_latency_s, r->decay_tau_s);
        if (!isfinite(tau_on))
            continue;
        on[k] = tau_on;
        off[k++] = r->decay_tau_s;
    }
    int ok = k >= AUTO_MIN_RESPONSES;
    if (ok)
        *shape = (nt_mf_kinetics){nt_median(on, k, off + rows), nt_median(off, k, off + rows)};
    free(on);
    return ok;
}

int nt_analyzer_execute(nt_analyzer *a, const nt_recording *rec, nt_trial_result *results,
                        nt_error *err)
{
    int status = nt_recording_check(rec, err);
    if (status != NT_OK)
        return status;
    if (rec->traces == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "recording has no samples (header only)");
    const size_t n = rec->n_frames;
    const double *t = rec->time_s;
    double dt = (t[n - 1] - t[0]) / (double)(n - 1);

    if (a->p.lowpass_hz > 0) {
        status = get_lowpass(a, n, 1.0 / dt, err);
    } else {
        a->fft_fresh = a->lowpass != NULL;
        nt_lowpass_destroy(a->lowpass);
        a->lowpass = NULL;
    }
    unsigned n_workers = workers_for(&a->p, rec->n_rois * n);
    if (status == NT_OK)
        status = reserve(a, n, n_workers, err);
    if (status == NT_OK && windows_enabled(a))
        status = reserve_windows(a, rec, err);
    if (status != NT_OK)
        return status;

    nt_mf_kinetics shape = {0, 0};
    if (a->p.template_kind == NT_TEMPLATE_FIXED)
        shape = (nt_mf_kinetics){a->p.tau_on_s, a->p.tau_off_s};
    status = run_pass(a, rec, results, dt, n_workers, shape, err);
    if (status == NT_OK && a->p.detector == NT_DETECTOR_MATCHED &&
        a->p.template_kind == NT_TEMPLATE_AUTO && learn_shape(&a->p, rec, results, &shape))
        status = run_pass(a, rec, results, dt, n_workers, shape, err);
    return status;
}
