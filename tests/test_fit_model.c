/* test_fit_model.c — the response-model fit on signals of known answer:
 * the model itself (noiseless, on regular, millisecond-rounded and gapped
 * time axes), noisy slow and fast kinetics, pure noise, and the bounds. */
#include "fit_model.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

TestSuite(fit_model);

/* splitmix64 + Box–Muller: seeded, the same on every platform. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_gauss(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The model, written independently of the library. */
static double model(double t, double amp, double t0, double tau_on, double tau_off)
{
    double s = t - t0;
    return s > 0 ? amp * (1 - exp(-s / tau_on)) * exp(-s / tau_off) : 0;
}

static double peak_offset(double tau_on, double tau_off)
{
    return tau_on * log((tau_on + tau_off) / tau_on);
}

/* A such that the model's peak is peak_dff. */
static double amp_for_peak(double peak_dff, double tau_on, double tau_off)
{
    return peak_dff / model(peak_offset(tau_on, tau_off), 1, 0, tau_on, tau_off);
}

/* Simpson's rule over [t0, t0 + 60·τoff] (the tail beyond is < e^-60). */
static double model_integral(double amp, double t0, double tau_on, double tau_off)
{
    enum { M = 200000 };
    double h = 60 * tau_off / M, sum = 0;
    for (int k = 0; k <= M; k++) {
        double w = k == 0 || k == M ? 1 : k % 2 ? 4 : 2;
        sum += w * model(t0 + k * h, amp, t0, tau_on, tau_off);
    }
    return sum * h / 3;
}

static void assert_rel(double got, double want, double tol, const char *what)
{
    cr_assert(fabs(got / want - 1) <= tol, "%s: got %.9g, want %.9g (±%g relative)", what, got,
              want, tol);
}

static void assert_inside(const nt_model_fit *f, const nt_model_bounds *b)
{
    cr_assert(f->t0_s >= b->t0_min_s && f->t0_s <= b->t0_max_s, "t0 %.9g outside", f->t0_s);
    cr_assert(f->tau_on_s >= b->tau_on_min_s && f->tau_on_s <= b->tau_on_max_s,
              "tau_on %.9g outside", f->tau_on_s);
    cr_assert(f->tau_off_s >= b->tau_off_min_s && f->tau_off_s <= b->tau_off_max_s,
              "tau_off %.9g outside", f->tau_off_s);
    cr_assert(f->n_evals > 0 && f->n_evals <= 2000, "n_evals %d", f->n_evals);
}

enum { N = 600 };
#define RATE_HZ 8.33
#define T0 24.5
#define TAU_ON 0.2
#define TAU_OFF 2.0
#define PEAK 0.06

static const nt_model_bounds lab_bounds = {23.0, 27.0, 0.02, 20.0, 0.1, 100.0, 0};

/* The noiseless model on the time axis t [N]. */
static void fill_model(const double *t, double *y)
{
    double amp = amp_for_peak(PEAK, TAU_ON, TAU_OFF);
    for (int i = 0; i < N; i++)
        y[i] = model(t[i], amp, T0, TAU_ON, TAU_OFF);
}

/* Exact recovery of the noiseless model, from rough starting guesses. */
static void check_exact_recovery(const double *t, const double *y, double tol)
{
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f), 0);
    cr_assert_eq(f.converged, 1);
    assert_inside(&f, &lab_bounds);
    assert_rel(f.amp, amp_for_peak(PEAK, TAU_ON, TAU_OFF), tol, "amp");
    assert_rel(f.tau_on_s, TAU_ON, tol, "tau_on");
    assert_rel(f.tau_off_s, TAU_OFF, tol, "tau_off");
    cr_assert_float_eq(f.t0_s, T0, 0.01);
    assert_rel(f.peak_dff, PEAK, tol / 2, "peak");
    cr_assert_float_eq(f.peak_s, T0 + peak_offset(TAU_ON, TAU_OFF), 0.01);
    cr_assert(f.r2 > 0.999999, "r2 %.9g", f.r2);
}

Test(fit_model, noiseless_model_is_recovered_with_its_measures)
{
    double t[N], y[N];
    for (int i = 0; i < N; i++)
        t[i] = i / RATE_HZ;
    fill_model(t, y);
    check_exact_recovery(t, y, 0.01);

    nt_model_fit f;
    nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f);
    /* The area: the closed form against a numeric integral of the same
     * fitted curve, and against the true curve's. */
    assert_rel(f.auc_dff_s, model_integral(f.amp, f.t0_s, f.tau_on_s, f.tau_off_s), 1e-8,
               "auc (formula)");
    assert_rel(f.auc_dff_s, model_integral(amp_for_peak(PEAK, TAU_ON, TAU_OFF), T0, TAU_ON, TAU_OFF),
               0.01, "auc (truth)");
    /* The peak is the curve's maximum, and the crossings are where the
     * curve has the stated fraction of it, in the right order. */
    double at_peak = model(f.peak_s, f.amp, f.t0_s, f.tau_on_s, f.tau_off_s);
    assert_rel(at_peak, f.peak_dff, 1e-12, "model at peak_s");
    cr_assert(model(f.peak_s - 1e-3, f.amp, f.t0_s, f.tau_on_s, f.tau_off_s) < at_peak);
    cr_assert(model(f.peak_s + 1e-3, f.amp, f.t0_s, f.tau_on_s, f.tau_off_s) < at_peak);
    const double *when[] = {&f.t10_s, &f.t50_rise_s, &f.t90_s, &f.t50_fall_s};
    const double level[] = {0.1, 0.5, 0.9, 0.5};
    for (int k = 0; k < 4; k++)
        assert_rel(model(*when[k], f.amp, f.t0_s, f.tau_on_s, f.tau_off_s), level[k] * f.peak_dff,
                   1e-9, "model at a crossing");
    cr_assert(f.t0_s < f.t10_s && f.t10_s < f.t50_rise_s && f.t50_rise_s < f.t90_s &&
              f.t90_s < f.peak_s && f.peak_s < f.t50_fall_s);
}

Test(fit_model, millisecond_timestamps_are_fitted_exactly)
{
    /* Elapsed milliseconds per frame, as the acquisition software stores
     * them: off the regular grid by up to half a millisecond. */
    double t[N], y[N];
    for (int i = 0; i < N; i++)
        t[i] = round(1000.0 * i / RATE_HZ) / 1000.0;
    fill_model(t, y);
    check_exact_recovery(t, y, 2e-5);
}

Test(fit_model, irregular_time_axis_is_fitted_exactly)
{
    /* Acquisition paused for 4 s at sample 100, and three dropped frames
     * later: the axis is seconds away from any regular grid. */
    double t[N], y[N];
    for (int i = 0; i < N; i++)
        t[i] = i / RATE_HZ + (i >= 100 ? 4.0 : 0) + (i >= 400 ? 0.36 : 0);
    fill_model(t, y);
    check_exact_recovery(t, y, 2e-5);
}

Test(fit_model, slow_kinetics_in_noise)
{
    /* τon 3 s, τoff 20 s: the peak comes 6.1 s after the onset and the
     * decay is not over by the end of the recording; SNR 10. */
    const double tau_on = 3, tau_off = 20, peak = 0.08, sigma = 0.008;
    double t[N], y[N], amp = amp_for_peak(peak, tau_on, tau_off);
    uint64_t seed = 20240611;
    for (int i = 0; i < N; i++) {
        t[i] = i / RATE_HZ;
        y[i] = model(t[i], amp, T0, tau_on, tau_off) + sigma * rng_gauss(&seed);
    }
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 1.0, 10.0, &lab_bounds, &f), 0);
    cr_assert_eq(f.converged, 1);
    assert_inside(&f, &lab_bounds);
    assert_rel(f.tau_off_s, tau_off, 0.10, "tau_off");
    assert_rel(f.peak_dff, peak, 0.05, "peak");
    cr_assert_float_eq(f.peak_s, T0 + peak_offset(tau_on, tau_off), 0.5);
    /* Levenberg–Marquardt converged: no simplex fallback was needed. */
    cr_assert(f.n_evals <= 50, "n_evals %d", f.n_evals);
}

Test(fit_model, fast_kinetics_at_50_hz_in_noise)
{
    const double rate_hz = 50, t0 = 4.2, tau_on = 0.1, tau_off = 1, peak = 0.05, sigma = 0.005;
    const nt_model_bounds b = {3.0, 6.0, 0.01, 5.0, 0.05, 20.0, 0};
    double t[N], y[N], amp = amp_for_peak(peak, tau_on, tau_off);
    uint64_t seed = 77;
    for (int i = 0; i < N; i++) {
        t[i] = i / rate_hz;
        y[i] = model(t[i], amp, t0, tau_on, tau_off) + sigma * rng_gauss(&seed);
    }
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, N, 4.0, 0.3, 3.0, &b, &f), 0);
    cr_assert_eq(f.converged, 1);
    assert_inside(&f, &b);
    assert_rel(f.tau_off_s, tau_off, 0.10, "tau_off");
    cr_assert(f.n_evals <= 50, "n_evals %d", f.n_evals);
}

/*
 * Noisy fits end where the cost is least nearby: no point a small step
 * away in any coordinate (t0 by a tenth of a frame, either tau by 1 %) has
 * a lower residual. The cost has kinks where t0 passes a sample; the
 * minimum often sits on one, and must be found there too.
 */
Test(fit_model, noisy_fits_end_at_a_local_minimum)
{
    const double sigma = 0.01;
    uint64_t seed = 1234;
    int on_kink = 0;
    for (int trial = 0; trial < 40; trial++) {
        double t[N], y[N];
        double tau_on = 0.2 + 0.07 * trial, tau_off = 2 + 0.45 * trial;
        double amp = amp_for_peak(0.08, tau_on, tau_off);
        for (int i = 0; i < N; i++) {
            t[i] = i / RATE_HZ;
            y[i] = model(t[i], amp, T0 + 0.01 * trial, tau_on, tau_off) + sigma * rng_gauss(&seed);
        }
        nt_model_fit f;
        cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f), 0);
        if (!f.converged)
            continue;
        double k = f.t0_s * RATE_HZ;
        on_kink += fabs(k - round(k)) < 1e-6;
        const double d[3] = {0.1 / RATE_HZ, 0.01, 0.01};
        for (int c = 0; c < 3; c++) {
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                double p[3] = {f.t0_s, f.tau_on_s, f.tau_off_s};
                p[c] = c == 0 ? p[c] + sgn * d[c] : p[c] * (1 + sgn * d[c]);
                double sgy = 0, sgg = 0, syy = 0;
                for (int i = 0; i < N; i++) {
                    double g = model(t[i], 1, p[0], p[1], p[2]);
                    sgy += g * y[i];
                    sgg += g * g;
                    syy += y[i] * y[i];
                }
                double rss = syy - (sgy > 0 ? sgy * sgy / sgg : 0);
                cr_assert(rss >= f.rss * (1 - 1e-12), "trial %d: moving parameter %d by %+g "
                          "lowers the residual from %.12g to %.12g", trial, c, sgn * d[c],
                          f.rss, rss);
            }
        }
    }
    cr_assert(on_kink > 0, "no fit ended on a kink: the test does not test the kink handling");
}

/*
 * Pure noise must not yield a trusted response. The fit may find no
 * positive bump (-1), or one with a parameter on a bound (converged 0);
 * when it does report a converged fit, its peak must be within the noise:
 * below 4 standard errors of a peak estimate, σ/√n_eff with n_eff =
 * Σ g(t_i)² / g_peak² the number of samples the fitted shape effectively
 * averages. (The best of a family of templates fitted to noise is the
 * maximum of many correlated Gaussian scores, so 3 is too tight: in 2000
 * noise traces, 101 converged fits, 7 above 3 standard errors, none above
 * 3.5.) In every case a fit that returns 0 explains almost none of the
 * variance (r2 at most 0.028 in those 2000).
 */
Test(fit_model, pure_noise_is_not_a_trusted_response)
{
    const double sigma = 0.01;
    double t[N], y[N];
    uint64_t seed = 5;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < N; i++) {
            t[i] = i / RATE_HZ;
            y[i] = sigma * rng_gauss(&seed);
        }
        nt_model_fit f;
        int rc = nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f);
        if (rc != 0) {
            cr_assert_eq(rc, -1);
            cr_assert(isnan(f.amp) && isnan(f.peak_dff) && f.converged == 0);
            continue;
        }
        assert_inside(&f, &lab_bounds);
        cr_assert(f.r2 < 0.05, "trial %d: r2 %g on pure noise", trial, f.r2);
        if (!f.converged)
            continue;
        double g_peak = f.peak_dff / f.amp, sum = 0;
        for (int i = 0; i < N; i++) {
            double g = model(t[i], 1, f.t0_s, f.tau_on_s, f.tau_off_s) / g_peak;
            sum += g * g;
        }
        cr_assert(f.peak_dff < 4 * sigma / sqrt(sum), "trial %d: peak %g, n_eff %g", trial,
                  f.peak_dff, sum);
    }
}

Test(fit_model, a_start_outside_bounds_is_clamped)
{
    double t[N], y[N];
    for (int i = 0; i < N; i++)
        t[i] = i / RATE_HZ;
    fill_model(t, y);
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, N, 10.0, 50.0, 0.01, &lab_bounds, &f), 0);
    assert_inside(&f, &lab_bounds);
    cr_assert_eq(f.converged, 1);
    assert_rel(f.tau_off_s, TAU_OFF, 0.01, "tau_off");
    /* Non-finite and non-positive starts fall back to the middle. */
    cr_assert_eq(nt_fit_response_model(t, y, N, NAN, -1.0, INFINITY, &lab_bounds, &f), 0);
    assert_inside(&f, &lab_bounds);
}

Test(fit_model, a_truth_outside_bounds_ends_on_the_bound_unconverged)
{
    double t[N], y[N];
    for (int i = 0; i < N; i++)
        t[i] = i / RATE_HZ;
    fill_model(t, y);
    const nt_model_bounds b = {23.0, 27.0, 0.02, 20.0, 3.0, 100.0, 0};
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &b, &f), 0);
    assert_inside(&f, &b);
    cr_assert_float_eq(f.tau_off_s, 3.0, 3.0 * 0.01);
    cr_assert_eq(f.converged, 0);
}

Test(fit_model, impossible_fits_return_minus_one_and_nan)
{
    double t[N], y[N];
    for (int i = 0; i < N; i++)
        t[i] = i / RATE_HZ;
    fill_model(t, y);
    nt_model_fit f;
    const nt_model_bounds swapped = {27.0, 23.0, 0.02, 20.0, 0.1, 100.0, 0};
    const nt_model_bounds zero_tau = {23.0, 27.0, 0.0, 20.0, 0.1, 100.0, 0};
    const nt_model_bounds nan_tau = {23.0, 27.0, 0.02, 20.0, NAN, 100.0, 0};
    cr_assert_eq(nt_fit_response_model(t, y, 5, 24.2, 0.5, 5.0, &lab_bounds, &f), -1);
    cr_assert(isnan(f.amp) && isnan(f.t0_s) && isnan(f.auc_dff_s) && isnan(f.r2));
    cr_assert_eq(f.converged, 0);
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &swapped, &f), -1);
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &zero_tau, &f), -1);
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &nan_tau, &f), -1);
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, NULL, &f), -1);

    /* A downward response has no positive A anywhere. */
    for (int i = 0; i < N; i++)
        y[i] = -y[i];
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f), -1);
    cr_assert(isnan(f.peak_dff) && isnan(f.tau_off_s));

    /* Non-increasing times and non-finite samples. */
    y[10] = NAN;
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f), -1);
    y[10] = 0;
    t[20] = t[19];
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &lab_bounds, &f), -1);
}

/* The baseline line (bounds.line): the model on a line c0 + c1·t is
 * recovered with the line; slow kinetics in a window of 2.5 τoff, where a
 * fit without the line reads a drifting baseline as a slower or faster
 * decay. */
Test(fit_model, a_response_on_a_drifting_baseline_is_recovered_with_the_line)
{
    enum { M = 700 };
    const double rate = 10.0, t0 = 20.0, on = 2.0, off = 20.0, peak = 0.05;
    const double c0 = 0.004, c1 = -2.5e-4; /* ΔF/F, ΔF/F per second */
    double t[M], y[M];
    double amp = amp_for_peak(peak, on, off);
    for (int i = 0; i < M; i++) {
        t[i] = 2.0 + i / rate;
        y[i] = model(t[i], amp, t0, on, off) + c0 + c1 * t[i];
    }
    const nt_model_bounds with = {17.0, 25.0, 0.05, 20.0, 0.5, 500.0, 1};
    const nt_model_bounds without = {17.0, 25.0, 0.05, 20.0, 0.5, 500.0, 0};
    nt_model_fit f, g;
    cr_assert_eq(nt_fit_response_model(t, y, M, 21.0, 1.0, 10.0, &with, &f), 0);
    cr_assert_eq(f.converged, 1);
    assert_inside(&f, &with);
    assert_rel(f.tau_off_s, off, 1e-4, "tau_off");
    assert_rel(f.tau_on_s, on, 1e-4, "tau_on");
    assert_rel(f.peak_dff, peak, 1e-4, "peak");
    cr_assert_float_eq(f.t0_s, t0, 1e-3);
    cr_assert_float_eq(f.base_dff, c0 + c1 * f.t0_s, 1e-7, "base %.9g", f.base_dff);
    cr_assert_float_eq(f.base_slope_per_s, c1, 1e-9, "slope %.9g", f.base_slope_per_s);
    cr_assert(f.r2 > 0.999999, "r2 %.9g", f.r2);

    /* Without the line the same data give a wrong decay (the case the line
     * is for), and the line is reported as 0. */
    cr_assert_eq(nt_fit_response_model(t, y, M, 21.0, 1.0, 10.0, &without, &g), 0);
    cr_assert(fabs(g.tau_off_s / off - 1) > 0.2, "tau_off without the line %.9g", g.tau_off_s);
    cr_assert(g.base_dff == 0 && g.base_slope_per_s == 0);
}

Test(fit_model, a_line_alone_is_no_response_when_the_line_is_fitted)
{
    double t[N], y[N];
    for (int i = 0; i < N; i++) {
        t[i] = i / RATE_HZ;
        y[i] = 0.02 - 3e-4 * t[i];
    }
    nt_model_bounds b = lab_bounds;
    b.line = 1;
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, N, 24.2, 0.5, 5.0, &b, &f), -1);
    cr_assert(isnan(f.peak_dff) && isnan(f.base_dff));
}

Test(fit_model, noisy_slow_kinetics_on_a_line)
{
    enum { M = 900 };
    const double rate = 15.0, t0 = 25.0, on = 3.0, off = 25.0, peak = 0.08, sd = 0.004;
    double t[M], y[M];
    double amp = amp_for_peak(peak, on, off);
    uint64_t seed = 77;
    for (int i = 0; i < M; i++) {
        t[i] = 23.0 + i / rate;
        y[i] = model(t[i], amp, t0, on, off) + 0.003 + 1e-4 * (t[i] - 23.0) + sd * rng_gauss(&seed);
    }
    const nt_model_bounds b = {23.5, 30.0, 0.05, 30.0, 0.5, 600.0, 1};
    nt_model_fit f;
    cr_assert_eq(nt_fit_response_model(t, y, M, 26.0, 1.0, 10.0, &b, &f), 0);
    cr_assert_eq(f.converged, 1);
    /* SNR 20 over 60 s at 15 Hz: the decay τ to 5 %, the peak to 3 %. */
    assert_rel(f.tau_off_s, off, 0.05, "tau_off");
    assert_rel(f.peak_dff, peak, 0.03, "peak");
    cr_assert_float_eq(f.base_slope_per_s, 1e-4, 5e-5, "slope %.9g", f.base_slope_per_s);
}
