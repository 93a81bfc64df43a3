/*
 * baseline.c — F0 and the photobleaching drift model of one trial.
 *
 * F0 is the mean of the raw trace over the pre-stimulus window, as labs
 * compute it (DOMAIN.md). With drift correction, F0 becomes a function of
 * time fitted on pre-stimulus data only — a line (NT_DRIFT_LINEAR) or an
 * exponential, fitted as a line to log F (NT_DRIFT_EXP) — and extrapolated
 * across the response. Fitting only before the stimulus means the response
 * itself can never be absorbed into the baseline, which a running median or
 * a whole-trace fit would do for responses lasting tens of seconds.
 */
#include "internal.h"

#include <math.h>

double nt_baseline_f0_at(const nt_baseline *b, double t_s)
{
    switch (b->drift) {
    case NT_DRIFT_LINEAR: return b->drift_a + b->drift_b * t_s;
    case NT_DRIFT_EXP: return exp(b->drift_a + b->drift_b * t_s);
    default: return b->f0;
    }
}

/* Fits the drift model over [i0, i1); returns 0, or -1 when it cannot
 * (too few points, or non-positive samples for the exponential). */
static int fit_drift(const double *t, const double *x, size_t i0, size_t i1, int drift,
                     nt_baseline *b)
{
    if (i1 < i0 + 3)
        return -1;
    if (drift == NT_DRIFT_LINEAR)
        return nt_linefit(t + i0, x + i0, i1 - i0, &b->drift_a, &b->drift_b);
    /* Exponential: least squares on log F, accumulated without a copy. */
    double mt = 0, my = 0, m = (double)(i1 - i0);
    for (size_t i = i0; i < i1; i++) {
        if (!(x[i] > 0))
            return -1;
        mt += t[i];
        my += log(x[i]);
    }
    mt /= m;
    my /= m;
    double stt = 0, sty = 0;
    for (size_t i = i0; i < i1; i++) {
        stt += (t[i] - mt) * (t[i] - mt);
        sty += (t[i] - mt) * (log(x[i]) - my);
    }
    if (!(stt > 0))
        return -1;
    b->drift_b = sty / stt;
    b->drift_a = my - b->drift_b * mt;
    return 0;
}

void nt_baseline_fit(const double *t, const double *x, size_t n, double stim_s,
                     double end_s, double from_s, const nt_params *p, nt_baseline *b)
{
    b->f0 = NAN;
    b->drift = NT_DRIFT_NONE;
    b->drift_a = b->drift_b = 0;
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
    double sum = 0;
    for (size_t i = i0; i < i1; i++)
        sum += x[i];
    b->f0 = sum / (double)b->n_samples;

    if (p->drift != NT_DRIFT_NONE) {
        double drift_from = stim_s - p->drift_window_s;
        if (drift_from < from_s)
            drift_from = from_s;
        size_t j0 = nt_lower_bound(t, n, drift_from);
        if (fit_drift(t, x, j0, i1, p->drift, b) == 0) {
            b->drift = p->drift;
            b->f0 = nt_baseline_f0_at(b, stim_s);
        }
    }
    if (!(b->f0 > 0) || !isfinite(b->f0))
        b->flags |= NT_FLAG_F0_NONPOSITIVE;
}
