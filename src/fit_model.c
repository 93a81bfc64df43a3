/*
 * fit_model.c — least-squares fit of the response model
 *     y(t) = A·(1 - e^(-s/τon))·e^(-s/τoff),  s = t - t0 > 0  (0 before t0).
 *
 * Variable projection (Golub & Pereyra 1973, SIAM J. Numer. Anal. 10:413):
 * the model is linear in A, so for given (t0, τon, τoff) the best A is
 * Σy·g / Σg² (g the model with A = 1) and the residual sum of squares is
 * Σy² - A·Σy·g. Only three nonlinear parameters are searched, A needs
 * neither a start nor a bound, and the cost surface loses its most
 * correlated direction. A is held at 0 when Σy·g <= 0: a negative response
 * is not this model, and the cost stays continuous (it tends to Σy² as
 * Σy·g -> 0) — so the search cannot drift into fitting an inverted bump.
 *
 * The search is the Nelder–Mead simplex (Nelder & Mead 1965, Comput. J.
 * 7:308; reflection 1, expansion 2, contraction and shrink 1/2, the
 * standard coefficients analysed by Lagarias et al. 1998, SIAM J. Optim.
 * 9:112) over u ∈ [0, 1]³, where u maps linearly onto t0, ln τon, ln τoff
 * between their bounds. Why a simplex: the cost is only piecewise smooth in
 * t0 (a sample enters the model when t0 passes it), which derivative-based
 * methods such as Levenberg–Marquardt handle badly, and in three dimensions
 * the simplex needs a few hundred O(n) evaluations. Log taus make one step
 * size fit sub-second and tens-of-seconds kinetics alike. Trial points are
 * clamped into the box. A simplex that has flattened against a face or
 * stalled (its known false convergence, McKinnon 1998, SIAM J. Optim.
 * 9:148) is restarted from its best vertex with its initial size, until a
 * restart no longer lowers the cost by more than the tolerance (at most
 * MAX_RESTARTS times); this also lets a simplex that started on a bound
 * (a clamped start) leave it.
 *
 * The derived measures come from the fitted curve, not from the samples.
 * With a = τon, b = τoff: g'(s) = 0 where e^(-s/a) = a/(a+b), so the peak
 * is at s_p = a·ln((a+b)/a), of value A·(b/(a+b))·(a/(a+b))^(a/b); the
 * area is A·∫₀^∞ (e^(-s/b) - e^(-s(a+b)/(ab))) ds = A·(b - ab/(a+b))
 * = A·b²/(a+b). The 10/50/90 % times have no closed form; they are
 * bisected on the monotone edges [0, s_p] and [s_p, s_p + 50·b].
 */
#include "fit_model.h"
#include "internal.h"

#include <math.h>

enum {
    NP = 3,           /* searched parameters: t0, ln τon, ln τoff */
    MAX_EVALS = 2000, /* cost evaluations per fit, all runs together */
    MAX_RESTARTS = 3,
    ANCHOR = 32,      /* samples per exact exp along the grid */
    BISECTIONS = 200  /* more than enough to reach adjacent doubles */
};

#define SIMPLEX_STEP 0.1 /* initial edge, as a fraction of each range */
#define X_TOL 1e-6       /* converged: every vertex this close to the best (fraction of range) */
#define F_TOL 1e-12      /* ... and the cost spread below this fraction of Σy² */
#define BOUND_TOL 1e-3   /* "on a bound": this close to it (fraction of range) */
/* Below RISE_FLOOR (< ε/2), 1 - e^(-s/τon) rounds to 1 anyway, so e^(-s/τon)
 * is set to 0 (and not computed past s = RISE_DONE·τon, e^-42 < RISE_FLOOR),
 * which also keeps the recurrence out of slow subnormal arithmetic. Terms
 * below DECAY_FLOOR are dropped: they cannot change the cost visibly. */
#define RISE_FLOOR 0x1p-60
#define RISE_DONE 42.0
#define DECAY_FLOOR 1e-200
#define GRID_TOL 0.025    /* see projected_rss */
#define EXACT_GRID 1e-12  /* grid deviation / τ below which no correction is needed */
#define FALL_SPAN 50.0    /* the half-maximum is sought this many τoff past the peak */

typedef struct problem {
    const double *t, *y;
    size_t n;
    double syy;                /* Σy² */
    double dt;                 /* nominal interval (t[n-1] - t[0]) / (n - 1) */
    double grid_dev;           /* max |t[i] - (t[0] + i·dt)| */
    double lo[NP], span[NP];   /* parameter k = lo[k] + u[k]·span[k] */
    int n_evals;
} problem;

static double unit_model(double s, double tau_on, double tau_off)
{
    if (!(s > 0))
        return 0;
    double rise = s < RISE_DONE * tau_on ? -expm1(-s / tau_on) : 1.0;
    return rise * exp(-s / tau_off);
}

static void to_params(const problem *p, const double u[NP], double *t0, double *tau_on,
                      double *tau_off)
{
    *t0 = p->lo[0] + u[0] * p->span[0];
    *tau_on = exp(p->lo[1] + u[1] * p->span[1]);
    *tau_off = exp(p->lo[2] + u[2] * p->span[2]);
}

/* e^(-x) for |x| <= GRID_TOL, by its Taylor series to x⁵ (relative error
 * below x⁶/690 < 4e-13). */
static double exp_small(double x)
{
    return 1 + x * (-1 + x * (1.0 / 2 + x * (-1.0 / 6 + x * (1.0 / 24 - x * (1.0 / 120)))));
}

/* Adds samples [i, end) to Σy·g and Σg², the two exponentials being e_off
 * and e_on at the grid point of sample i and stepping by r_off and r_on per
 * sample; with correct, each is moved from its grid point to the sample's
 * true time. (Called with a constant correct, so each call site compiles to
 * its own loop.) */
static inline void add_block(const problem *p, size_t i, size_t end, double e_off, double e_on,
                             double r_off, double r_on, double k_off, double k_on, int correct,
                             double *sgy, double *sgg)
{
    for (; i < end; i++) {
        double off = e_off, on = e_on;
        if (correct) {
            double dev = p->t[i] - (p->t[0] + (double)i * p->dt);
            off *= exp_small(dev * k_off);
            on *= exp_small(dev * k_on);
        }
        double g = off - off * on;
        *sgy += g * p->y[i];
        *sgg += g * g;
        e_off *= r_off;
        e_on *= r_on;
    }
}

/*
 * The residual sum of squares at the best A >= 0 for these parameters
 * (A through amp, which may be NULL). Samples before t0 contribute their
 * constant y² through Σy² only.
 *
 * exp dominates the cost, so when every sample lies within GRID_TOL·τ of
 * the nominal grid t[0] + i·dt (always for a rate-derived axis; for
 * millisecond timestamps whenever τ >= ~40 ms), each exponential is
 * advanced along the grid by one multiplication per sample, re-anchored on
 * an exact exp every ANCHOR samples, and moved from the grid point to the
 * sample's true time by exp_small unless the axis is uniform to rounding:
 * two exp calls per ANCHOR samples instead of two per sample, at a relative
 * error of at most ~1e-12 (EXACT_GRID, or exp_small's). Otherwise both are
 * computed at every sample.
 */
static double projected_rss(const problem *p, double t0, double tau_on, double tau_off,
                            double *amp)
{
    double k_on = 1 / tau_on, k_off = 1 / tau_off;
    double dev_max = p->grid_dev * fmax(k_on, k_off);
    int on_grid = dev_max <= GRID_TOL, correct = dev_max > EXACT_GRID;
    double r_on = on_grid ? exp(-p->dt * k_on) : 0, r_off = on_grid ? exp(-p->dt * k_off) : 0;
    size_t block = on_grid ? ANCHOR : 1;
    double sgy = 0, sgg = 0;
    size_t i = nt_lower_bound(p->t, p->n, t0);
    while (i < p->n) {
        double s = (on_grid ? p->t[0] + (double)i * p->dt : p->t[i]) - t0;
        double e_off = exp(-s * k_off);
        if (e_off < DECAY_FLOOR)
            break;
        double e_on = s < RISE_DONE * tau_on ? exp(-s * k_on) : 0;
        if (e_on < RISE_FLOOR)
            e_on = 0;
        size_t end = p->n - i > block ? i + block : p->n;
        if (on_grid && correct)
            add_block(p, i, end, e_off, e_on, r_off, r_on, k_off, k_on, 1, &sgy, &sgg);
        else
            add_block(p, i, end, e_off, e_on, r_off, r_on, k_off, k_on, 0, &sgy, &sgg);
        i = end;
    }
    double a = sgy > 0 && sgg > 0 ? sgy / sgg : 0;
    if (amp != NULL)
        *amp = a;
    return p->syy - a * sgy;
}

static double cost(problem *p, const double u[NP])
{
    double t0, tau_on, tau_off;
    to_params(p, u, &t0, &tau_on, &tau_off);
    p->n_evals++;
    return projected_rss(p, t0, tau_on, tau_off, NULL);
}

/* out = c + k·(c - w), clamped into the unit box. */
static void along(const double c[NP], const double w[NP], double k, double out[NP])
{
    for (int j = 0; j < NP; j++) {
        double x = c[j] + k * (c[j] - w[j]);
        out[j] = x < 0 ? 0 : x > 1 ? 1 : x;
    }
}

static void set_vertex(double v[NP], double *fv, const double x[NP], double fx)
{
    for (int j = 0; j < NP; j++)
        v[j] = x[j];
    *fv = fx;
}

/* One simplex run from u, whose cost is *f; leaves the best vertex in u and
 * its cost in *f. Returns 1 when the simplex met the tolerances, 0 when the
 * evaluation budget ran out first. */
static int simplex_run(problem *p, double u[NP], double *f)
{
    double v[NP + 1][NP], fv[NP + 1];
    set_vertex(v[0], &fv[0], u, *f);
    for (int k = 1; k <= NP; k++) {
        double x[NP];
        for (int j = 0; j < NP; j++)
            x[j] = u[j];
        x[k - 1] += x[k - 1] + SIMPLEX_STEP <= 1 ? SIMPLEX_STEP : -SIMPLEX_STEP;
        set_vertex(v[k], &fv[k], x, cost(p, x));
    }

    int converged = 0;
    for (;;) {
        for (int k = 1; k <= NP; k++) {
            for (int m = k; m > 0 && fv[m] < fv[m - 1]; m--) {
                double tv[NP], tf;
                set_vertex(tv, &tf, v[m], fv[m]);
                set_vertex(v[m], &fv[m], v[m - 1], fv[m - 1]);
                set_vertex(v[m - 1], &fv[m - 1], tv, tf);
            }
        }
        double size = 0;
        for (int k = 1; k <= NP; k++)
            for (int j = 0; j < NP; j++)
                size = fmax(size, fabs(v[k][j] - v[0][j]));
        if (size <= X_TOL && fv[NP] - fv[0] <= F_TOL * p->syy) {
            converged = 1;
            break;
        }
        if (p->n_evals > MAX_EVALS - (NP + 2))
            break;

        double c[NP] = {0};
        for (int k = 0; k < NP; k++)
            for (int j = 0; j < NP; j++)
                c[j] += v[k][j] / NP;
        double xr[NP], xt[NP];
        along(c, v[NP], 1.0, xr);
        double fr = cost(p, xr);
        if (fr < fv[0]) {
            along(c, v[NP], 2.0, xt);
            double fe = cost(p, xt);
            if (fe < fr)
                set_vertex(v[NP], &fv[NP], xt, fe);
            else
                set_vertex(v[NP], &fv[NP], xr, fr);
        } else if (fr < fv[NP - 1]) {
            set_vertex(v[NP], &fv[NP], xr, fr);
        } else {
            int outside = fr < fv[NP];
            along(c, v[NP], outside ? 0.5 : -0.5, xt);
            double fc = cost(p, xt);
            if (outside ? fc <= fr : fc < fv[NP]) {
                set_vertex(v[NP], &fv[NP], xt, fc);
            } else {
                for (int k = 1; k <= NP; k++) {
                    for (int j = 0; j < NP; j++)
                        v[k][j] = v[0][j] + 0.5 * (v[k][j] - v[0][j]);
                    fv[k] = cost(p, v[k]);
                }
            }
        }
    }
    set_vertex(u, f, v[0], fv[0]);
    return converged;
}

/* A start value as a coordinate in [0, 1]: clamped, or the middle when
 * it is not finite. */
static double start_coordinate(double x, double lo, double span)
{
    if (!isfinite(x))
        return 0.5;
    double u = (x - lo) / span;
    return u < 0 ? 0 : u > 1 ? 1 : u;
}

static double start_tau(double tau, double lo, double span)
{
    return tau > 0 ? start_coordinate(log(tau), lo, span) : 0.5;
}

/* The offset s in [lo, hi] where the unit model crosses level, g(lo) and
 * g(hi) being on either side of it; rising says g increases on [lo, hi]. */
static double bisect_level(double lo, double hi, double level, double tau_on, double tau_off,
                           int rising)
{
    for (int it = 0; it < BISECTIONS; it++) {
        double mid = 0.5 * (lo + hi);
        if (!(mid > lo && mid < hi))
            break;
        double g = unit_model(mid, tau_on, tau_off);
        if (rising ? g < level : g > level)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static void set_nan(nt_model_fit *out)
{
    out->amp = out->t0_s = out->tau_on_s = out->tau_off_s = NAN;
    out->peak_dff = out->peak_s = NAN;
    out->t10_s = out->t90_s = out->t50_rise_s = out->t50_fall_s = NAN;
    out->auc_dff_s = out->rss = out->r2 = NAN;
    out->converged = 0;
    out->n_evals = 0;
}

static int valid_range(double lo, double hi)
{
    return isfinite(lo) && isfinite(hi) && lo < hi;
}

/* Fills the measures of out that follow from amp, t0, tau_on and tau_off. */
static void derive_measures(const double *t, const double *y, size_t n, nt_model_fit *out)
{
    double a = out->tau_on_s, b = out->tau_off_s, t0 = out->t0_s;
    double sp = a * log1p(b / a);
    double g_peak = b / (a + b) * exp(-(a / b) * log1p(b / a));
    out->peak_dff = out->amp * g_peak;
    out->peak_s = t0 + sp;
    out->t10_s = t0 + bisect_level(0, sp, 0.1 * g_peak, a, b, 1);
    out->t90_s = t0 + bisect_level(0, sp, 0.9 * g_peak, a, b, 1);
    out->t50_rise_s = t0 + bisect_level(0, sp, 0.5 * g_peak, a, b, 1);
    double s_end = sp + FALL_SPAN * b;
    out->t50_fall_s = unit_model(s_end, a, b) > 0.5 * g_peak
                          ? NAN
                          : t0 + bisect_level(sp, s_end, 0.5 * g_peak, a, b, 0);
    out->auc_dff_s = out->amp * b * b / (a + b);

    double rss = 0, mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double r = y[i] - out->amp * unit_model(t[i] - t0, a, b);
        rss += r * r;
        mean += y[i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (y[i] - mean) * (y[i] - mean);
    out->rss = rss;
    out->r2 = ss > 0 ? 1.0 - rss / ss : NAN;
}

int nt_fit_response_model(const double *t, const double *y, size_t n, double t0_start_s,
                          double tau_on_start_s, double tau_off_start_s,
                          const nt_model_bounds *bounds, nt_model_fit *out)
{
    if (out == NULL)
        return -1;
    set_nan(out);
    if (t == NULL || y == NULL || bounds == NULL || n < 6)
        return -1;
    const nt_model_bounds *bd = bounds;
    if (!valid_range(bd->t0_min_s, bd->t0_max_s) || !(bd->tau_on_min_s > 0) ||
        !valid_range(bd->tau_on_min_s, bd->tau_on_max_s) || !(bd->tau_off_min_s > 0) ||
        !valid_range(bd->tau_off_min_s, bd->tau_off_max_s))
        return -1;

    problem p = {.t = t, .y = y, .n = n, .syy = 0, .n_evals = 0};
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(t[i]) || !isfinite(y[i]) || (i > 0 && !(t[i] > t[i - 1])))
            return -1;
        p.syy += y[i] * y[i];
    }
    p.dt = (t[n - 1] - t[0]) / (double)(n - 1);
    p.grid_dev = 0;
    for (size_t i = 0; i < n; i++)
        p.grid_dev = fmax(p.grid_dev, fabs(t[i] - (t[0] + (double)i * p.dt)));
    p.lo[0] = bd->t0_min_s;
    p.span[0] = bd->t0_max_s - bd->t0_min_s;
    p.lo[1] = log(bd->tau_on_min_s);
    p.span[1] = log(bd->tau_on_max_s) - p.lo[1];
    p.lo[2] = log(bd->tau_off_min_s);
    p.span[2] = log(bd->tau_off_max_s) - p.lo[2];
    for (int k = 0; k < NP; k++)
        if (!(p.span[k] > 0) || !isfinite(p.span[k]))
            return -1;

    double u[NP] = {start_coordinate(t0_start_s, p.lo[0], p.span[0]),
                    start_tau(tau_on_start_s, p.lo[1], p.span[1]),
                    start_tau(tau_off_start_s, p.lo[2], p.span[2])};
    double f = cost(&p, u);
    int converged = simplex_run(&p, u, &f);
    for (int r = 0; r < MAX_RESTARTS && p.n_evals <= MAX_EVALS - 2 * (NP + 1); r++) {
        double ur[NP] = {u[0], u[1], u[2]}, fr = f;
        converged = simplex_run(&p, ur, &fr);
        int improved = fr < f - F_TOL * p.syy;
        if (fr < f)
            set_vertex(u, &f, ur, fr);
        if (!improved)
            break;
    }

    /* Clamped again because exp(log(max)) may round one ulp past max. */
    double t0, tau_on, tau_off, amp;
    to_params(&p, u, &t0, &tau_on, &tau_off);
    t0 = fmin(fmax(t0, bd->t0_min_s), bd->t0_max_s);
    tau_on = fmin(fmax(tau_on, bd->tau_on_min_s), bd->tau_on_max_s);
    tau_off = fmin(fmax(tau_off, bd->tau_off_min_s), bd->tau_off_max_s);
    projected_rss(&p, t0, tau_on, tau_off, &amp);
    if (!(amp > 0)) {
        out->n_evals = p.n_evals;
        return -1;
    }
    for (int k = 0; k < NP; k++)
        if (u[k] <= BOUND_TOL || u[k] >= 1.0 - BOUND_TOL)
            converged = 0;

    out->amp = amp;
    out->t0_s = t0;
    out->tau_on_s = tau_on;
    out->tau_off_s = tau_off;
    derive_measures(t, y, n, out);
    out->converged = converged;
    out->n_evals = p.n_evals;
    return 0;
}
