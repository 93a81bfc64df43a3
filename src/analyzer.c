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
 */
#include "internal.h"
#include "fit_model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct nt_analyzer {
    nt_params p;
    nt_lowpass *lowpass; /* for the last trace length and rate seen */
    size_t cap;          /* frames the buffers hold */
    double *x;           /* raw trace */
    double *xf;          /* filtered raw trace */
    double *dff;         /* ΔF/F of the current trial */
    double *yf;          /* filtered ΔF/F of the current trial */
    double *work;        /* scratch: uniform grid, noise samples */
    double *work2;       /* scratch: medians */
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

static void free_buffers(nt_analyzer *a)
{
    free(a->x);
    free(a->xf);
    free(a->dff);
    free(a->yf);
    free(a->work);
    free(a->work2);
    a->x = a->xf = a->dff = a->yf = a->work = a->work2 = NULL;
    a->cap = 0;
}

void nt_analyzer_destroy(nt_analyzer *a)
{
    if (a == NULL)
        return;
    nt_lowpass_destroy(a->lowpass);
    free_buffers(a);
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
static void fill_window(nt_analyzer *a, const nt_recording *rec, size_t row, double stim,
                        const nt_baseline *b)
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
        wd[k] = a->x[i] / f0 - 1.0;
        wf[k] = a->xf[i] / f0 - 1.0;
    }
}

static int reserve(nt_analyzer *a, size_t n, nt_error *err)
{
    if (n <= a->cap)
        return NT_OK;
    free_buffers(a);
    a->x = malloc(n * sizeof *a->x);
    a->xf = malloc(n * sizeof *a->xf);
    a->dff = malloc(n * sizeof *a->dff);
    a->yf = malloc(n * sizeof *a->yf);
    a->work = malloc(n * sizeof *a->work);
    a->work2 = malloc(n * sizeof *a->work2);
    if (!a->x || !a->xf || !a->dff || !a->yf || !a->work || !a->work2) {
        free_buffers(a);
        return nt_error_set(err, NT_ERR_NOMEM, "out of memory for traces of %zu frames", n);
    }
    a->cap = n;
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

/* Filters the raw trace a->x into a->xf on the times t [n]. */
static void filter_trace(nt_analyzer *a, const double *t, size_t n, int regular, double dt)
{
    if (a->lowpass == NULL) {
        memcpy(a->xf, a->x, n * sizeof *a->xf);
        return;
    }
    if (regular) {
        nt_lowpass_execute(a->lowpass, a->x, a->xf);
        return;
    }
    /* Uniform grid u_i = t0 + i·dt: interpolate on, filter, interpolate back. */
    double *u = a->work;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        double tu = t[0] + (double)i * dt;
        while (j + 1 < n && t[j + 1] < tu)
            j++;
        u[i] = (j + 1 < n) ? a->x[j] + (a->x[j + 1] - a->x[j]) * (tu - t[j]) / (t[j + 1] - t[j])
                           : a->x[n - 1];
    }
    nt_lowpass_execute(a->lowpass, u, u);
    for (size_t i = 0; i < n; i++) {
        double pos = (t[i] - t[0]) / dt;
        size_t k = pos <= 0 ? 0 : (size_t)pos;
        if (k >= n - 1) {
            a->xf[i] = u[n - 1];
        } else {
            double w = pos - (double)k;
            a->xf[i] = u[k] + (u[k + 1] - u[k]) * w;
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
static double noise_sd(nt_analyzer *a, const double *t, const double *y, size_t i0, size_t i1)
{
    size_t m = i1 - i0;
    double c0 = 0, c1 = 0;
    if (nt_linefit(t + i0, y + i0, m, &c0, &c1) != 0)
        c0 = c1 = 0;
    for (size_t i = 0; i < m; i++)
        a->work[i] = y[i0 + i] - (c0 + c1 * t[i0 + i]);
    return nt_mad_sd(a->work, m, a->work2);
}

/*
 * Refines the waveform measures of a detected response in r with the lab's
 * model A·(1 - e^(-(t-t0)/τon))·e^(-(t-t0)/τoff), fitted to the unfiltered
 * ΔF/F d over [stim - 2 s, decay end].
 *
 * The waveform measures give the starts: t0 from the 10 % point, τon from
 * the 10-90 % rise (= τon·ln 9 for an exponential rise), and τoff from two
 * guesses — the half width / ln 2 and the single-exponential decay — since
 * either can be far off on a noisy trace and the model has local minima
 * (a small, slow tail). τon is bounded by twice the waveform's time to peak
 * (the model peaks at t0 + τon·ln((τon+τoff)/τon) >= τon·ln 2 when
 * τon <= τoff). Of the fits that converge inside their bounds with
 * τon <= τoff (a rise faster than the decay: otherwise the two constants
 * swap roles and τoff no longer measures the decay), the one with the least
 * residual is kept, if it peaks inside the peak search span and within a
 * factor of 1.5 of the waveform's peak. Its measures then replace the
 * waveform's; otherwise the row keeps the waveform measures and is flagged
 * NT_FLAG_NOFIT.
 */
static void refine_with_model(const double *ts, const double *d, size_t m, double dt,
                              double jitter_s, const nt_params *p, const nt_response_span *span,
                              nt_trial_result *r)
{
    const double stim = span->stim_s;
    size_t i0 = nt_lower_bound(ts, m, stim - fmin(2.0, p->baseline_s));
    size_t i1 = nt_lower_bound(ts, m, span->decay_end_s);
    if (i1 < m)
        i1++;
    double tau_on_max = fmin(p->peak_max_s, fmax(2.0 * r->time_to_peak_s, 4.0 * dt));
    nt_model_bounds bounds = {
        stim - jitter_s - dt, stim + p->window_s,
        0.25 * dt, tau_on_max,
        0.25 * dt, 10.0 * (span->decay_end_s - stim),
    };
    double t0 = isfinite(r->onset_latency_s) ? stim + r->onset_latency_s : stim;
    double tau_on = (isfinite(r->rise_s) && r->rise_s > 0) ? r->rise_s / log(9.0) : 4.0 * dt;
    double tau_off_starts[2] = {
        isfinite(r->half_width_s) ? r->half_width_s / log(2.0) : NAN,
        r->decay_tau_s,
    };
    nt_model_fit best = {0};
    int have = 0;
    for (int k = 0; k < 2 && i1 > i0; k++) {
        if (!isfinite(tau_off_starts[k]) || (k == 1 && tau_off_starts[1] == tau_off_starts[0]))
            continue;
        nt_model_fit fit;
        if (nt_fit_response_model(ts + i0, d + i0, i1 - i0, t0, tau_on, tau_off_starts[k],
                                  &bounds, &fit) != 0)
            continue;
        if (!fit.converged || fit.tau_on_s > fit.tau_off_s)
            continue;
        if (!have || fit.rss < best.rss) {
            best = fit;
            have = 1;
        }
    }
    int ok = have && best.peak_s >= stim - jitter_s && best.peak_s <= span->peak_end_s &&
             best.peak_dff < 1.5 * r->amplitude_dff && best.peak_dff > r->amplitude_dff / 1.5;
    if (!ok) {
        r->flags |= NT_FLAG_NOFIT;
        return;
    }
    r->amplitude_dff = best.peak_dff;
    r->peak_s = best.peak_s;
    r->time_to_peak_s = best.peak_s - stim;
    r->onset_latency_s = best.t0_s - stim;
    r->rise_s = best.t90_s - best.t10_s;
    r->half_width_s = best.t50_fall_s - best.t50_rise_s;
    r->decay_tau_s = best.tau_off_s;
}

static void analyse_trial(nt_analyzer *a, const nt_recording *rec, size_t k, double dt,
                          nt_trial_result *r)
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
    nt_baseline_fit(t, a->x, n, stim, stim - jitter_s, prev, p, &b);
    r->flags |= b.flags;
    r->f0 = b.f0;
    int unmeasured = (b.flags & (NT_FLAG_NO_BASELINE | NT_FLAG_F0_NONPOSITIVE)) != 0;
    if (windows_enabled(a))
        fill_window(a, rec, r->roi * rec->n_stims + k, stim, unmeasured ? NULL : &b);
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
    for (size_t i = lo; i < hi; i++) {
        double f0 = nt_baseline_f0_at(&b, t[i]);
        a->dff[i] = a->x[i] / f0 - 1.0;
        a->yf[i] = a->xf[i] / f0 - 1.0;
    }
    const double *ts = t + lo, *y = a->yf + lo, *d = a->dff + lo;
    size_t m = hi - lo;

    size_t n0 = nt_lower_bound(ts, m, stim - p->noise_window_s);
    size_t n1 = nt_lower_bound(ts, m, stim - jitter_s);
    if (n1 < n0 + 3) {
        r->flags |= NT_FLAG_NO_BASELINE;
        return;
    }
    double sd = noise_sd(a, ts, y, n0, n1);
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

    /* Shadow: a dip below -k·σ in the first second (at most the window). */
    double shadow_to = stim + fmin(1.0, p->window_s);
    for (size_t i = nt_lower_bound(ts, m, stim); i < m && ts[i] <= shadow_to; i++)
        if (y[i] < -level) {
            r->flags |= NT_FLAG_SHADOW;
            break;
        }

    nt_detection det = nt_detect_threshold(ts, y, m, level, p->min_duration_s, win_from, win_to);
    if (det.detected) {
        r->detected = 1;
        nt_response_span span = {stim, back_s, peak_end_s, decay_end_s};
        nt_measure_response(ts, y, d, m, det.cross, level, &span, r);
        refine_with_model(ts, d, m, dt, jitter_s, p, &span, r);
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

int nt_analyzer_execute(nt_analyzer *a, const nt_recording *rec, nt_trial_result *results,
                        nt_error *err)
{
    int status = nt_recording_check(rec, err);
    if (status != NT_OK)
        return status;
    if (rec->traces == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "recording has no samples (header only)");
    const size_t n = rec->n_frames, n_stims = rec->n_stims;
    const double *t = rec->time_s;
    double dt = (t[n - 1] - t[0]) / (double)(n - 1);
    int regular = times_regular(t, n, dt);

    status = reserve(a, n, err);
    if (status == NT_OK && windows_enabled(a))
        status = reserve_windows(a, rec, err);
    if (status != NT_OK)
        return status;
    if (a->p.lowpass_hz > 0) {
        status = get_lowpass(a, n, 1.0 / dt, err);
        if (status != NT_OK)
            return status;
    } else {
        nt_lowpass_destroy(a->lowpass);
        a->lowpass = NULL;
    }

    for (size_t roi = 0; roi < rec->n_rois; roi++) {
        const float *src = rec->traces + roi * n;
        nt_trial_result *row = results + roi * n_stims;
        int finite = 1;
        for (size_t i = 0; i < n; i++) {
            a->x[i] = src[i];
            if (!isfinite(a->x[i]))
                finite = 0;
        }
        for (size_t k = 0; k < n_stims; k++)
            result_init(&row[k], roi, k, rec->stim_s[k]);
        if (!finite) {
            for (size_t k = 0; k < n_stims; k++) {
                row[k].flags |= NT_FLAG_NONFINITE;
                if (windows_enabled(a))
                    fill_window(a, rec, roi * n_stims + k, rec->stim_s[k], NULL);
            }
            continue;
        }
        filter_trace(a, t, n, regular, dt);
        for (size_t k = 0; k < n_stims; k++)
            analyse_trial(a, rec, k, dt, &row[k]);
    }
    return NT_OK;
}
