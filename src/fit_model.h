/*
 * fit_model.h — least-squares fit of the lab's response model to one trial.
 *
 * The model, with s = t - t0:
 *     y(t) = A·(1 - e^(-s/τon))·e^(-s/τoff)   for s > 0,   0 for s <= 0,
 * plus, when asked (bounds->line), a baseline line c0 + c1·t fitted with it:
 * a ΔF/F whose F0 is off by a little and drifts (an extrapolated bleaching
 * fit) is the model on such a line, and a fit without it reads the line's
 * slope as decay. The line is projected out like A (variable projection),
 * so the search is still over t0, τon and τoff only.
 * A is a scale, not the peak; τon and τoff are not interchangeable.
 * Private to the library (not installed); tests include it directly.
 */
#ifndef NT_FIT_MODEL_H
#define NT_FIT_MODEL_H

#include <stddef.h>

/* The fitted model and the measures derived from it. Times ending in _s
 * without "tau" are absolute, on the time axis of the fitted samples. */
typedef struct nt_model_fit {
    double amp;         /* A, ΔF/F (scale, not the peak) */
    double t0_s;        /* onset time */
    double tau_on_s;
    double tau_off_s;
    double peak_dff;    /* the model's peak value */
    double peak_s;      /* time of the model's peak: t0 + τon·ln((τon+τoff)/τon) */
    double t10_s, t90_s;   /* rising edge at 10 % and 90 % of the peak */
    double t50_rise_s, t50_fall_s; /* half maximum on both sides; t50_fall_s is
                                      NaN when more than 50·τoff after the peak */
    double auc_dff_s;   /* integral of the model from t0 to infinity: A·τoff²/(τon+τoff) */
    double base_dff;    /* the fitted baseline line at t0_s (0 without the line) */
    double base_slope_per_s; /* its slope, ΔF/F per second (0 without the line) */
    double rss;         /* residual sum of squares over all n samples */
    double r2;          /* 1 - rss / Σ(y - mean y)²; NaN when y is constant */
    int converged;      /* 1 when the search converged and no parameter is on a bound */
    int n_evals;        /* passes over the samples (cost evaluations, with or
                           without derivatives), at most 2000 */
} nt_model_fit;

/* Search bounds, in seconds: min < max for each, and 0 < min for the taus;
 * line: 1 to fit the baseline line with the model (see above), 0 not. */
typedef struct nt_model_bounds {
    double t0_min_s, t0_max_s;
    double tau_on_min_s, tau_on_max_s;
    double tau_off_min_s, tau_off_max_s;
    int line;
} nt_model_bounds;

/*
 * Fits the model by least squares to the n samples (t [n], y [n]): y is
 * unfiltered ΔF/F whose baseline is 0 (or a line, bounds->line), t strictly
 * increasing, both finite.
 * Samples before the onset count (the model is 0 there), so include some
 * baseline before t0_min_s.
 *
 * The search starts at (t0_start_s, tau_on_start_s, tau_off_start_s); a start
 * outside bounds is clamped into them, and a non-finite (or, for a tau,
 * non-positive) start is replaced by the middle of its range (geometric
 * middle for the taus). The solution always lies inside bounds.
 *
 * "On a bound" (which clears converged) means within 1e-3 of the search
 * range from a bound: of [t0_min_s, t0_max_s] for t0, of [ln min, ln max]
 * for the taus.
 *
 * Returns 0 with *out filled (converged says whether to trust it), or -1
 * when no fit is possible — n < 6, NULL pointers, invalid bounds, non-finite
 * or non-increasing samples, or best scale A <= 0 (no positive response) —
 * with every double of *out NaN and converged 0. Allocates nothing; the
 * time is O(n) per evaluation: about 10 evaluations when Levenberg–Marquardt
 * converges, a few hundred when the simplex has to take over, at most 2000.
 */
int nt_fit_response_model(const double *t, const double *y, size_t n, double t0_start_s,
                          double tau_on_start_s, double tau_off_start_s,
                          const nt_model_bounds *bounds, nt_model_fit *out);

#endif /* NT_FIT_MODEL_H */
