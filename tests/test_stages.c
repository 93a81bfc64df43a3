/* test_stages.c — statistics, baseline, detection and measurement stages,
 * each on a signal whose answer is known. */
#include "internal.h"
#include "synth.h"

#include <criterion/criterion.h>
#include <math.h>

TestSuite(stats);

Test(stats, median_odd_and_even)
{
    double a[] = {5, 1, 4, 2, 3}, b[] = {4, 1, 3, 2}, w[5];
    cr_assert_float_eq(nt_median(a, 5, w), 3.0, 1e-15);
    cr_assert_float_eq(nt_median(b, 4, w), 2.5, 1e-15);
    cr_assert_float_eq(a[0], 5.0, 0, "input must not be reordered");
}

Test(stats, mad_sd_is_consistent_for_gaussian_noise)
{
    enum { M = 20000 };
    static double v[M], w[M];
    synth_rng rng = {7};
    for (int i = 0; i < M; i++)
        v[i] = 10 + 2.5 * synth_gauss(&rng);
    cr_assert_float_eq(nt_mad_sd(v, M, w), 2.5, 0.05);
}

Test(stats, mad_sd_ignores_outliers)
{
    double v[] = {1, 2, 3, 4, 5, 6, 7, 1e9}, w[8];
    /* MAD of 1..7 plus an outlier: median 4.5, deviations median 2. */
    cr_assert_float_eq(nt_mad_sd(v, 8, w), 1.4826 * 2.0, 1e-12);
}

Test(stats, linefit_recovers_line)
{
    double t[10], y[10], a, b;
    for (int i = 0; i < 10; i++) {
        t[i] = 0.5 * i;
        y[i] = 3 - 2 * t[i];
    }
    cr_assert_eq(nt_linefit(t, y, 10, &a, &b), 0);
    cr_assert_float_eq(a, 3.0, 1e-12);
    cr_assert_float_eq(b, -2.0, 1e-12);
    cr_assert_eq(nt_linefit(t, y, 1, &a, &b), -1);
}

Test(stats, lower_bound_and_crossing)
{
    double t[] = {0, 1, 2, 3};
    cr_assert_eq(nt_lower_bound(t, 4, 1.5), 2);
    cr_assert_eq(nt_lower_bound(t, 4, 2.0), 2);
    cr_assert_eq(nt_lower_bound(t, 4, 9.0), 4);
    cr_assert_float_eq(nt_cross_time(1, 0, 2, 10, 2.5), 1.25, 1e-15);
}

TestSuite(baseline);

static double bt[200], bx[200];

static void ramp(double f0, double slope)
{
    for (int i = 0; i < 200; i++) {
        bt[i] = 0.1 * i;
        bx[i] = f0 + slope * bt[i];
    }
}

Test(baseline, mean_of_window_before_stimulus)
{
    nt_params p;
    nt_params_default(&p);
    ramp(1000, 0);
    for (int i = 150; i < 200; i++)
        bx[i] = 2000; /* the response after the stimulus at 15 s must not count */
    nt_baseline b;
    nt_baseline_fit(bt, bx, 200, 15.0, 14.8, -INFINITY, &p, &b);
    cr_assert_float_eq(b.f0, 1000.0, 1e-9);
    cr_assert_eq(b.flags, 0);
    cr_assert_eq(b.n_samples, 48); /* [10 s, 14.8 s) at 10 Hz */
}

Test(baseline, linear_drift_extrapolates_across_response)
{
    nt_params p;
    nt_params_default(&p);
    p.drift = NT_DRIFT_LINEAR;
    ramp(1000, -2.0);
    nt_baseline b;
    nt_baseline_fit(bt, bx, 200, 15.0, 14.8, -INFINITY, &p, &b);
    /* F0 is the mean of the [10, 14.8) s window; F0(t) follows the slope. */
    cr_assert_float_eq(b.f0, 1000 - 2.0 * b.t_mid_s, 1e-6);
    cr_assert_float_eq(b.t_mid_s, 12.35, 1e-9);
    cr_assert_float_eq(nt_baseline_f0_at(&b, 19.0), 1000 - 2.0 * 19.0, 1e-6);
}

Test(baseline, exponential_drift)
{
    nt_params p;
    nt_params_default(&p);
    p.drift = NT_DRIFT_EXP;
    for (int i = 0; i < 200; i++) {
        bt[i] = 0.1 * i;
        bx[i] = 3000 * exp(-bt[i] / 50.0);
    }
    nt_baseline b;
    nt_baseline_fit(bt, bx, 200, 15.0, 14.8, -INFINITY, &p, &b);
    /* Anchored at the arithmetic mean of the window: exact to second order
     * in slope x window length (here 5e-4 relative). */
    double want = 3000 * exp(-19.0 / 50.0);
    cr_assert(fabs(nt_baseline_f0_at(&b, 19.0) - want) < 5e-4 * want, "%g vs %g",
              nt_baseline_f0_at(&b, 19.0), want);
    cr_assert_float_eq(b.slope, -1.0 / 50.0, 1e-9);
}

/* 1/F0 along a trial, filled at once, is 1/F0 at each time to 1e-13: on a
 * rate-derived axis (by recurrence), on a jittered one (exactly), and for
 * every drift model. */
Test(baseline, inverse_fill_matches_f0_at)
{
    enum { M = 1000 };
    static double t[M], jit[M], inv[M];
    for (int i = 0; i < M; i++) {
        t[i] = 300 + i / 8.33;
        jit[i] = t[i] + 0.004 * sin(1.7 * i);
    }
    const double dev = nt_grid_deviation(t, M), dev_jit = nt_grid_deviation(jit, M);
    cr_assert(dev < 1e-12 && dev_jit > 1e-3, "%g %g", dev, dev_jit);
    const int drifts[] = {NT_DRIFT_EXP, NT_DRIFT_LINEAR, NT_DRIFT_NONE};
    for (int k = 0; k < 3; k++) {
        nt_baseline b = {4000, 310, k == 1 ? -0.8 : -2e-3, drifts[k], 40, 0};
        for (int axis = 0; axis < 2; axis++) {
            const double *ta = axis ? jit : t;
            nt_baseline_inverse_fill(&b, ta, M, axis ? dev_jit : dev, inv);
            for (int i = 0; i < M; i++) {
                double want = 1 / nt_baseline_f0_at(&b, ta[i]);
                cr_assert(fabs(inv[i] - want) <= 1e-13 * want, "drift %d axis %d sample %d: "
                          "%.17g vs %.17g", drifts[k], axis, i, inv[i], want);
            }
        }
    }
}

Test(stats, grid_deviation)
{
    double t[5] = {0, 1, 2, 3, 4};
    cr_assert_float_eq(nt_grid_deviation(t, 5), 0, 1e-15);
    t[2] = 2.25;
    cr_assert_float_eq(nt_grid_deviation(t, 5), 0.25, 1e-15);
}

Test(baseline, flags_short_missing_and_nonpositive)
{
    nt_params p;
    nt_params_default(&p);
    ramp(1000, 0);
    nt_baseline b;
    nt_baseline_fit(bt, bx, 200, 2.0, 1.8, -INFINITY, &p, &b);
    cr_assert(b.flags & NT_FLAG_SHORT_BASELINE);
    cr_assert_float_eq(b.f0, 1000.0, 1e-9);
    nt_baseline_fit(bt, bx, 200, 0.2, 0.0, -INFINITY, &p, &b);
    cr_assert(b.flags & NT_FLAG_NO_BASELINE);
    cr_assert(isnan(b.f0));
    ramp(0, 0);
    nt_baseline_fit(bt, bx, 200, 15.0, 14.8, -INFINITY, &p, &b);
    cr_assert(b.flags & NT_FLAG_F0_NONPOSITIVE);
}

TestSuite(detect);

Test(detect, sustained_rise_is_detected_brief_spike_is_not)
{
    double t[100], y[100];
    for (int i = 0; i < 100; i++) {
        t[i] = 0.1 * i;
        y[i] = 0;
    }
    y[30] = y[31] = 5; /* 0.1 s above: too brief for 0.5 s */
    nt_detection d = nt_detect_threshold(t, y, 100, 3.0, 0.5, 2.0, 7.0);
    cr_assert_eq(d.detected, 0);
    for (int i = 50; i < 60; i++)
        y[i] = 5; /* 0.9 s above */
    d = nt_detect_threshold(t, y, 100, 3.0, 0.5, 2.0, 7.0);
    cr_assert_eq(d.detected, 1);
    cr_assert_eq(d.cross, 50);
    /* A rise after the window does not count. */
    d = nt_detect_threshold(t, y, 100, 3.0, 0.5, 2.0, 4.0);
    cr_assert_eq(d.detected, 0);
}

TestSuite(measure);

Test(measure, exp_decay_fit_noiseless)
{
    double t[200], y[200], amp;
    for (int i = 0; i < 200; i++) {
        t[i] = 10 + 0.12 * i;
        y[i] = 0.08 * exp(-(t[i] - 10) / 4.2);
    }
    double tau = nt_fit_exp_decay(t, y, 200, 10, 0.06, 240, &amp);
    cr_assert_float_eq(tau, 4.2, 1e-4);
    cr_assert_float_eq(amp, 0.08, 1e-6);
}

Test(measure, exp_decay_fit_noisy_within_5_percent)
{
    double t[400], y[400];
    synth_rng rng = {99};
    for (int i = 0; i < 400; i++) {
        t[i] = 0.12 * i;
        y[i] = 0.05 * exp(-t[i] / 20.0) + 0.002 * synth_gauss(&rng);
    }
    double tau = nt_fit_exp_decay(t, y, 400, 0, 0.06, 480, NULL);
    cr_assert(fabs(tau - 20.0) < 1.0, "tau %g, want 20 +- 1", tau);
}

/* The fit advances the exponential along a regular grid; off the grid it
 * takes an exp per sample. Both give the same τ. */
Test(measure, exp_decay_fit_same_on_and_off_the_grid)
{
    double t[300], t2[300], y[300];
    synth_rng rng = {7};
    for (int i = 0; i < 300; i++) {
        t[i] = t2[i] = 500 + i / 8.33;
        y[i] = 0.05 * exp(-(t[i] - 500) / 6.0) + 0.002 * synth_gauss(&rng);
    }
    t2[150] += 1e-6; /* off the grid by far more than rounding */
    double a1, a2;
    double tau1 = nt_fit_exp_decay(t, y, 300, 500, 0.06, 360, &a1);
    double tau2 = nt_fit_exp_decay(t2, y, 300, 500, 0.06, 360, &a2);
    cr_assert(fabs(tau1 / tau2 - 1) < 1e-6, "%.12g vs %.12g", tau1, tau2);
    cr_assert(fabs(a1 / a2 - 1) < 1e-6, "%.12g vs %.12g", a1, a2);
    cr_assert(fabs(tau1 - 6.0) < 0.5, "tau %g", tau1);
}

Test(measure, exp_decay_fit_undetermined_is_nan)
{
    double t[50], y[50];
    for (int i = 0; i < 50; i++) {
        t[i] = 0.1 * i;
        y[i] = -0.01; /* negative amplitude: no decay to fit */
    }
    cr_assert(isnan(nt_fit_exp_decay(t, y, 50, 0, 0.05, 50, NULL)));
    cr_assert(isnan(nt_fit_exp_decay(t, y, 2, 0, 0.05, 50, NULL)));
}

Test(measure, noiseless_response_measured_back)
{
    /* A known transient at 50 Hz: every measure has a closed-form answer. */
    enum { M = 3000 };
    static double t[M], y[M];
    const double stim = 10, lat = 0.5, ton = 0.3, toff = 3.0, amp = 0.06;
    double scale = amp / synth_peak_value(ton, toff);
    for (int i = 0; i < M; i++) {
        t[i] = 0.02 * i;
        y[i] = synth_response(t[i] - stim - lat, scale, ton, toff);
    }
    size_t cross = nt_lower_bound(t, M, stim + lat + 0.01);
    nt_response_span span = {stim, stim - 5, stim + 30, stim + 50};
    nt_trial_result r;
    size_t peak = nt_measure_response(t, y, M, cross, 0.001, &span, &r);
    cr_assert(isnan(r.decay_tau_s));
    r.decay_tau_s = nt_measure_decay_tau(t, y, M, peak, &span);
    double tp = synth_peak_time(ton, toff);
    cr_assert_float_eq(r.amplitude_dff, amp, 1e-4 * amp);
    cr_assert_float_eq(r.time_to_peak_s, lat + tp, 0.01);
    /* 10 % crossing of the rise: solve numerically on a fine grid. */
    double t10 = NAN, t90 = NAN;
    for (double s = 0; s < tp; s += 1e-5) {
        double v = synth_response(s, scale, ton, toff);
        if (isnan(t10) && v >= 0.1 * amp) t10 = s;
        if (isnan(t90) && v >= 0.9 * amp) t90 = s;
    }
    cr_assert_float_eq(r.onset_latency_s, lat + t10, 0.005);
    cr_assert_float_eq(r.rise_s, t90 - t10, 0.005);
    /* Decay from the peak: the model's tail is e^(-t/τoff) once the rise
     * has saturated, so τ comes back close to τoff. */
    cr_assert(fabs(r.decay_tau_s - toff) / toff < 0.05, "tau %g", r.decay_tau_s);
    /* AUC: the integral of the model from the onset (10 %) on. */
    double auc = 0;
    for (double s = t10; s < 40; s += 1e-4)
        auc += synth_response(s, scale, ton, toff) * 1e-4;
    cr_assert(fabs(r.auc_dff_s - auc) / auc < 0.01, "auc %g want %g", r.auc_dff_s, auc);
    cr_assert(r.half_width_s > 0);
}
