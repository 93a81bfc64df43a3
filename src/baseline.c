/*
 * baseline.c — F0 and the photobleaching drift of one trial.
 *
 * F0 is the mean of the raw trace over the pre-stimulus window, as labs
 * compute it (DOMAIN.md). Nanosensor and photometry recordings bleach, and a
 * constant F0 then turns the slow decline into a negative ΔF/F that grows
 * through the response: late peaks come out early and small, decays short.
 * So by default F0 follows the drift: a slope fitted on pre-stimulus data
 * only — of F (linear) or of log F (exponential) — anchored at the mean of
 * the F0 window and extrapolated across the response. Fitting before the
 * stimulus only means the response itself can never be absorbed into the
 * baseline, as a running median or a whole-trace fit would do for responses
 * that last tens of seconds.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

double nt_baseline_f0_at(const nt_baseline *b, double t_s)
{
    switch (b->drift) {
    case NT_DRIFT_LINEAR: return b->f0 + b->slope * (t_s - b->t_mid_s);
    case NT_DRIFT_EXP: return b->f0 * exp(b->slope * (t_s - b->t_mid_s));
    default: return b->f0;
    }
}

void nt_baseline_inverse_fill(const nt_baseline *b, const double *t, size_t n,
                              double grid_dev_s, double *inv_f0)
{
    enum { ANCHOR = 32 };
    /* On a regular grid, 1/F0 = e^(-slope·(t - t_mid))/f0 is advanced by one
     * multiplication per sample and re-anchored on an exact exp every
     * ANCHOR samples: a relative error of ANCHOR roundings, plus |slope|
     * times the deviation of the times from the grid t[0] + i·dt (at most
     * twice grid_dev_s), below 1e-13 (else an exp per sample). */
    if (b->drift != NT_DRIFT_EXP || n < 2 || !(fabs(b->slope) * 2 * grid_dev_s <= 1e-13)) {
        for (size_t i = 0; i < n; i++)
            inv_f0[i] = 1.0 / nt_baseline_f0_at(b, t[i]);
        return;
    }
    double dt = (t[n - 1] - t[0]) / (double)(n - 1), q = exp(-b->slope * dt);
    for (size_t i = 0; i < n; i += ANCHOR) {
        double f = exp(-b->slope * (t[0] + (double)i * dt - b->t_mid_s)) / b->f0;
        size_t end = n - i > ANCHOR ? i + ANCHOR : n;
        for (size_t j = i; j < end; j++) {
            inv_f0[j] = f;
            f *= q;
        }
    }
}

/* Least-squares slope of x (or of log x) against t over [i0, i1); returns
 * 0, or -1 when it cannot (too few points, or non-positive samples for the
 * exponential). One pass, without copies, so that each log is taken once:
 * the sums are accumulated about the first point, which keeps the
 * cancellation in Σt² - (Σt)²/m to a few bits over a window of seconds. */
static int fit_slope(const double *t, const double *x, size_t i0, size_t i1, int drift,
                     double *slope)
{
    if (i1 < i0 + 3)
        return -1;
    if (drift == NT_DRIFT_EXP && !(x[i0] > 0))
        return -1;
    const double t_ref = t[i0], y_ref = drift == NT_DRIFT_EXP ? log(x[i0]) : x[i0];
    double st = 0, sy = 0, stt = 0, sty = 0, m = (double)(i1 - i0);
    for (size_t i = i0; i < i1; i++) {
        if (drift == NT_DRIFT_EXP && !(x[i] > 0))
            return -1;
        double u = t[i] - t_ref, y = (drift == NT_DRIFT_EXP ? log(x[i]) : x[i]) - y_ref;
        st += u;
        sy += y;
        stt += u * u;
        sty += u * y;
    }
    stt -= st * st / m;
    sty -= st * sy / m;
    if (!(stt > 0))
        return -1;
    *slope = sty / stt;
    return 0;
}

void nt_baseline_fit(const double *t, const double *x, size_t n, double stim_s,
                     double end_s, double from_s, const nt_params *p, nt_baseline *b)
{
    b->f0 = NAN;
    b->t_mid_s = stim_s;
    b->slope = 0;
    b->drift = NT_DRIFT_NONE;
    b->flags = 0;

    double start_s = stim_s - p->baseline_s;
    if (start_s < t[0])
        b->flags |= NT_FLAG_SHORT_BASELINE;
    size_t i0 = nt_lower_bound(t, n, start_s);
    size_t i1 = nt_lower_bound(t, n, end_s);
    b->n_samples = i1 > i0 ? i1 - i0 : 0;
    if (b->n_samples < 3) {
        b->flags |= NT_FLAG_NO_BASELINE;
        return;
    }
    double sum = 0, sum_t = 0;
    for (size_t i = i0; i < i1; i++) {
        sum += x[i];
        sum_t += t[i];
    }
    b->f0 = sum / (double)b->n_samples;
    b->t_mid_s = sum_t / (double)b->n_samples;
    if (!(b->f0 > 0) || !isfinite(b->f0)) {
        b->flags |= NT_FLAG_F0_NONPOSITIVE;
        return;
    }
    if (p->drift != NT_DRIFT_NONE) {
        double drift_from = fmax(stim_s - p->drift_window_s, from_s);
        size_t j0 = nt_lower_bound(t, n, drift_from);
        if (fit_slope(t, x, j0, i1, p->drift, &b->slope) == 0)
            b->drift = p->drift;
    }
}

/*
 * The running baseline of spontaneous-event recordings (nt_baseline_running).
 * Without a stimulus there is no pre-stimulus window, so F0 must come from
 * the whole trace while the transients stay out of it. Each knot is the
 * value at the knot of a least-squares line through the unmasked samples of
 * its window: a line rather than a mean or a median, so that bleaching (a
 * smooth decline over minutes) is followed without lag or bias even when the
 * window spans the whole recording. The caller masks the transients it has
 * found (and the samples far out on their side) and calls again, so that
 * long, slow ones (a nanosensor decaying over tens of seconds) end up
 * outside F0 — the "moving average that skips the response" of the lab
 * scripts (DOMAIN.md). A least-squares line is pulled towards an unmasked
 * transient only by its mean over the window, so even the first call,
 * with nothing masked yet, leaves the peak of a transient standing out.
 * Knots a quarter window apart, joined by straight lines, cost one fit per
 * knot rather than per sample.
 */
int nt_baseline_running(const double *t, const double *x, const unsigned char *mask, size_t n,
                        double window_s, double *work, double *f0)
{
    const double step = 0.25 * window_s, span = t[n - 1] - t[0];
    size_t n_knots = (size_t)ceil(span / step) + 1;
    double *knot = malloc(n_knots * sizeof *knot);
    if (knot == NULL)
        return NT_ERR_NOMEM;
    int any = 0;
    for (size_t j = 0; j < n_knots; j++) {
        double c = t[0] + (double)j * step;
        size_t i0 = nt_lower_bound(t, n, c - 0.5 * window_s);
        size_t i1 = nt_lower_bound(t, n, c + 0.5 * window_s);
        size_t m = 0;
        double *tw = work, *xw = work + n, a, b;
        for (size_t i = i0; i < i1; i++)
            if (mask == NULL || !mask[i]) {
                tw[m] = t[i] - c;
                xw[m++] = x[i];
            }
        knot[j] = NAN;
        if (m >= 3 && 10 * m >= i1 - i0 && nt_linefit(tw, xw, m, &a, &b) == 0) {
            knot[j] = a;
            any = 1;
        }
    }
    if (!any) {
        free(knot);
        return NT_ERR_INVALID;
    }
    /* Knots without enough data: interpolated between the nearest valid ones. */
    for (size_t j = 0; j < n_knots; j++) {
        if (!isnan(knot[j]))
            continue;
        size_t a = j, b = j;
        while (a > 0 && isnan(knot[a]))
            a--;
        while (b + 1 < n_knots && isnan(knot[b]))
            b++;
        if (isnan(knot[a]))
            knot[j] = knot[b];
        else if (isnan(knot[b]))
            knot[j] = knot[a];
        else
            knot[j] = knot[a] + (knot[b] - knot[a]) * (double)(j - a) / (double)(b - a);
    }
    for (size_t i = 0; i < n; i++) {
        double pos = (t[i] - t[0]) / step;
        size_t k = (size_t)pos;
        if (k + 1 >= n_knots)
            f0[i] = knot[n_knots - 1];
        else
            f0[i] = knot[k] + (knot[k + 1] - knot[k]) * (pos - (double)k);
    }
    free(knot);
    return NT_OK;
}
