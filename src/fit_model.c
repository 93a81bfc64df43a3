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
 * The search runs over u ∈ [0, 1]³, where u maps linearly onto t0, ln τon,
 * ln τoff between their bounds; log taus make one step size fit sub-second
 * and tens-of-seconds kinetics alike, and trial points are clamped into the
 * box. It is Levenberg–Marquardt first (lm_run: Gauss–Newton steps on
 * Kaufman's variable-projection Jacobian, with analytic derivatives),
 * because it converges in about a dozen O(n) passes. The cost is only
 * piecewise smooth in t0 — a sample enters the model when t0 passes it — so
 * on noisy data it has shallow local minima a fraction of a frame apart in
 * t0, traded against τon; LM ends in the one its start leads to. Measured on
 * 7200 synthetic trials (the benchmark's kinetics, 4 seeds), its ending
 * differs from the simplex's below on about 13 % of the fits, and the
 * errors against the truth are the same (paired mean differences of |error|
 * below 1.5 standard errors for amplitude, time to peak, onset and τoff).
 * lm_run also stops t0 on a kink rather than creeping up to it.
 *
 * When LM does not converge inside the box, the Nelder–Mead simplex runs
 * from the same start (Nelder & Mead 1965, Comput. J. 7:308; reflection 1,
 * expansion 2, contraction and shrink 1/2, the standard coefficients
 * analysed by Lagarias et al. 1998, SIAM J. Optim. 9:112): it needs a few
 * hundred evaluations but no derivatives, and its large first steps cross
 * the kinks. A simplex that has flattened against a face or stalled (its
 * known false convergence, McKinnon 1998, SIAM J. Optim. 9:148) is
 * restarted from its best vertex with its initial size, until a restart no
 * longer lowers the cost by more than the tolerance (at most MAX_RESTARTS
 * times); this also lets a simplex that started on a bound (a clamped
 * start) leave it.
 *
 * The derived measures come from the fitted curve, not from the samples.
 * With a = τon, b = τoff: g'(s) = 0 where e^(-s/a) = a/(a+b), so the peak
 * is at s_p = a·ln((a+b)/a), of value A·(b/(a+b))·(a/(a+b))^(a/b); the
 * area is A·∫₀^∞ (e^(-s/b) - e^(-s(a+b)/(ab))) ds = A·(b - ab/(a+b))
 * = A·b²/(a+b). The 10/50/90 % times have no closed form; they are solved
 * for (solve_level) on the monotone edges [0, s_p] and [s_p, s_p + 50·b].
 */
#include "fit_model.h"
#include "internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum {
    NP = 3,           /* searched parameters: t0, ln τon, ln τoff */
    MAX_EVALS = 2000, /* cost evaluations per fit, all runs together */
    MAX_RESTARTS = 3,
    ANCHOR = 128,     /* samples per exact exp along the grid */
    BISECTIONS = 200  /* steps of solve_level: far more than it needs */
};

#define LM_MAX_ITER 100   /* Levenberg–Marquardt steps tried, accepted or not */
#define LM_X_TOL 1e-6     /* converged: a step this small (fraction of range), see lm_run */
#define LM_X_STALL 1e-10  /* ... or no step longer than this lowers the cost */
#define LM_LAMBDA0 1e-3
#define LM_LAMBDA_MIN 1e-12
#define LM_LAMBDA_MAX 1e16
#define SIMPLEX_STEP 0.1 /* initial edge, as a fraction of each range */
#define X_TOL 1e-6       /* converged: every vertex this close to the best (fraction of range) */
#define F_TOL 1e-12      /* ... and the cost spread below this fraction of Σy² */
#define BOUND_TOL 1e-3   /* "on a bound": this close to it (fraction of range) */
/* Below RISE_FLOOR (< ε/2), 1 - e^(-s/τon) rounds to 1 anyway, so e^(-s/τon)
 * is set to 0 (and not computed past s = RISE_DONE·τon, e^-42 < RISE_FLOOR),
 * which also keeps the recurrence out of slow subnormal arithmetic. Terms
 * below DECAY_FLOOR (of a unit model) are dropped: they cannot change the
 * cost visibly. Both floors stay normal numbers over an ANCHOR block when
 * τ >= dt/4 (the analyzer's bounds: a block multiplies them by at least
 * e^-512 > 1e-223); smaller taus may meet subnormals, which only costs time. */
#define RISE_FLOOR 0x1p-60
#define RISE_DONE 42.0
#define DECAY_FLOOR 1e-60
#define GRID_TOL 0.025    /* see projected_rss */
#define EXACT_GRID 1e-12  /* grid deviation / τ below which no correction is needed */
#define FALL_SPAN 50.0    /* the half-maximum is sought this many τoff past the peak */

/* The Jacobian pass works on NT_FIT_LANES samples at once with GCC/Clang
 * vector types (portable: the compiler splits them to the machine's vector
 * width; the sums, and so the results, do not depend on that width). */
#ifndef NT_FIT_LANES
#if defined(__GNUC__)
#define NT_FIT_LANES 2
#else
#define NT_FIT_LANES 1
#endif
#endif
#if NT_FIT_LANES > 1
typedef double lanes __attribute__((vector_size(NT_FIT_LANES * sizeof(double))));

/* The lanes of two decaying exponentials that start at e_off and e_on and
 * step by r_off and r_on per sample: lane l holds e·r^l (*v), and each lane
 * then advances by r^LANES (*q). */
static void lanes_start(double e_off, double e_on, double r_off, double r_on, lanes *v_off,
                        lanes *v_on, lanes *q_off, lanes *q_on)
{
    double po = 1, pn = 1;
    for (int l = 0; l < NT_FIT_LANES; l++) {
        (*v_off)[l] = e_off * po;
        (*v_on)[l] = e_on * pn;
        po *= r_off;
        pn *= r_on;
    }
    for (int l = 0; l < NT_FIT_LANES; l++) {
        (*q_off)[l] = po;
        (*q_on)[l] = pn;
    }
}
#endif

typedef struct problem {
    const double *t, *y;
    size_t n;
    double syy;                /* Σy² */
    /* The nuisance line (bounds->line): c0 + c1·(t - tc), tc the mean of t.
     * Its two columns are orthogonal, so projecting a vector v out of them
     * takes (Σv)²/n + (Σv·(t - tc))²/Stt (line_dot); without the line
     * inv_n = inv_stt = 0 and every projection is the identity. */
    double tc, inv_n, inv_stt;
    double ly[2];              /* Σy, Σy·(t - tc) */
    double syy_perp;           /* Σy² less y's part along the line */
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
                             double *sgy, double *sgg, double sgl[2])
{
#if NT_FIT_LANES > 1
    /* In lanes, as add_block_jac. */
    if (!correct && end - i >= NT_FIT_LANES) {
        lanes v_off = {0}, v_on = {0}, q_off = {0}, q_on = {0}, a_gy = {0}, a_gg = {0};
        lanes a_g = {0}, a_gt = {0};
        lanes_start(e_off, e_on, r_off, r_on, &v_off, &v_on, &q_off, &q_on);
        for (; end - i >= NT_FIT_LANES; i += NT_FIT_LANES) {
            lanes y, tv;
            memcpy(&y, p->y + i, sizeof y);
            memcpy(&tv, p->t + i, sizeof tv);
            lanes g = v_off - v_off * v_on;
            a_gy += g * y;
            a_gg += g * g;
            a_g += g;
            a_gt += g * tv;
            v_off *= q_off;
            v_on *= q_on;
        }
        for (int l = 0; l < NT_FIT_LANES; l++) {
            *sgy += a_gy[l];
            *sgg += a_gg[l];
            sgl[0] += a_g[l];
            sgl[1] += a_gt[l];
        }
        e_off = v_off[0];
        e_on = v_on[0];
    }
#endif
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
        sgl[0] += g;
        sgl[1] += g * p->t[i];
        e_off *= r_off;
        e_on *= r_on;
    }
}

/* How the two exponentials are walked along the samples from t0 (see
 * projected_rss): on the grid, in blocks of ANCHOR samples stepped by r_off
 * and r_on (moved to the true times when correct), or exactly at every
 * sample. */
typedef struct walk {
    double t0, tau_on, k_on, k_off, r_on, r_off;
    int on_grid, correct;
    size_t block;
} walk;

/* Sets up w; returns the first sample after t0. */
static size_t walk_start(const problem *p, double t0, double tau_on, double tau_off, walk *w)
{
    w->t0 = t0;
    w->tau_on = tau_on;
    w->k_on = 1 / tau_on;
    w->k_off = 1 / tau_off;
    double dev_max = p->grid_dev * fmax(w->k_on, w->k_off);
    w->on_grid = dev_max <= GRID_TOL;
    w->correct = dev_max > EXACT_GRID;
    w->r_on = w->on_grid ? exp(-p->dt * w->k_on) : 0;
    w->r_off = w->on_grid ? exp(-p->dt * w->k_off) : 0;
    w->block = w->on_grid ? ANCHOR : 1;
    return nt_lower_bound(p->t, p->n, t0);
}

/* The block of samples [i, *end) and the exponentials at its first sample;
 * 0 when there is none (past the last sample, or the decay has died out). */
static int walk_block(const problem *p, const walk *w, size_t i, size_t *end, double *e_off,
                      double *e_on)
{
    if (i >= p->n)
        return 0;
    double s = (w->on_grid ? p->t[0] + (double)i * p->dt : p->t[i]) - w->t0;
    *e_off = exp(-s * w->k_off);
    if (*e_off < DECAY_FLOOR)
        return 0;
    *e_on = s < RISE_DONE * w->tau_on ? exp(-s * w->k_on) : 0;
    if (*e_on < RISE_FLOOR)
        *e_on = 0;
    *end = p->n - i > w->block ? i + w->block : p->n;
    return 1;
}

/* uᵀ·(LᵀL)⁻¹·v for the line parts lu = Lᵀu, lv = Lᵀv (0 without the line). */
static double line_dot(const problem *p, const double lu[2], const double lv[2])
{
    return lu[0] * lv[0] * p->inv_n + lu[1] * lv[1] * p->inv_stt;
}

/* Turns (Σv, Σv·t) into Lᵀv = (Σv, Σv·(t - tc)). */
static void line_part(const problem *p, double sl[2])
{
    sl[1] -= p->tc * sl[0];
}

/* g's scale A >= 0 and the residual sum of squares at it, from Σg·y, Σg²
 * and Lᵀg, with the line (if any) fitted too: variable projection on g and
 * y with the line projected out of both. *gg_perp gets Σg⊥². */
static double scale_and_rss(const problem *p, double sgy, double sgg, const double lg[2],
                            double *amp, double *gg_perp)
{
    double gy = sgy - line_dot(p, lg, p->ly), gg = sgg - line_dot(p, lg, lg);
    /* A g that is (nearly) a line has no scale of its own, and a y that is
     * a line (to rounding) has no response. */
    double a = gy > 1e-12 * sqrt(gg * p->syy) && gg > 1e-12 * sgg ? gy / gg : 0;
    *amp = a;
    *gg_perp = gg;
    return p->syy_perp - a * gy;
}

/*
 * The residual sum of squares at the best A >= 0 for these parameters
 * (A through amp, the baseline line's c0 and c1 about tc through line;
 * either may be NULL). Samples before t0 contribute their constant y²
 * through Σy² only.
 *
 * exp dominates the cost, so when every sample lies within GRID_TOL·τ of
 * the nominal grid t[0] + i·dt (always for a rate-derived axis; for
 * millisecond timestamps whenever τ >= ~40 ms), each exponential is
 * advanced along the grid by one multiplication per sample, re-anchored on
 * an exact exp every ANCHOR samples, and moved from the grid point to the
 * sample's true time by exp_small unless the axis is uniform to rounding:
 * two exp calls per ANCHOR samples instead of two per sample, at a relative
 * error of at most ~1e-12 (EXACT_GRID, or exp_small's; ANCHOR roundings of
 * the recurrence are below 3e-14). Otherwise both are computed at every
 * sample.
 */
static double projected_rss(const problem *p, double t0, double tau_on, double tau_off,
                            double *amp, double line[2])
{
    double sgy = 0, sgg = 0, sgl[2] = {0, 0}, e_off, e_on;
    walk w;
    size_t end;
    for (size_t i = walk_start(p, t0, tau_on, tau_off, &w);
         walk_block(p, &w, i, &end, &e_off, &e_on); i = end) {
        if (w.on_grid && w.correct)
            add_block(p, i, end, e_off, e_on, w.r_off, w.r_on, w.k_off, w.k_on, 1, &sgy, &sgg,
                      sgl);
        else
            add_block(p, i, end, e_off, e_on, w.r_off, w.r_on, w.k_off, w.k_on, 0, &sgy, &sgg,
                      sgl);
    }
    line_part(p, sgl);
    double a, gg;
    double rss = scale_and_rss(p, sgy, sgg, sgl, &a, &gg);
    if (amp != NULL)
        *amp = a;
    if (line != NULL) {
        /* The line's least-squares coefficients on y - A·g. */
        line[0] = (p->ly[0] - a * sgl[0]) * p->inv_n;
        line[1] = (p->ly[1] - a * sgl[1]) * p->inv_stt;
    }
    return rss;
}

static double cost(problem *p, const double u[NP])
{
    double t0, tau_on, tau_off;
    to_params(p, u, &t0, &tau_on, &tau_off);
    p->n_evals++;
    return projected_rss(p, t0, tau_on, tau_off, NULL, NULL);
}

/* The sums the Levenberg–Marquardt step needs, over the samples after t0:
 * with g the unit model and D_k = ∂g/∂u_k (u the unit coordinates). */
typedef struct jac_sums {
    double sgy, sgg;          /* Σ g·y, Σ g² */
    double sdy[NP], sdg[NP];  /* Σ D_k·y, Σ D_k·g */
    double sdd[NP][NP];       /* Σ D_j·D_k (upper triangle) */
    double sgl[2];            /* Σ g, Σ g·t (then Lᵀg, line_part) */
    double sdl[NP][2];        /* Σ D_k, Σ D_k·t (then Lᵀ D_k) */
} jac_sums;

/* The Jacobian pass over samples [i, end), as add_block. With s = t - t0,
 * e_off = e^(-s/τoff), e_on = e^(-s/τon), h = e_off·e_on and g = e_off - h:
 *   ∂g/∂t0     = g/τoff - h/τon
 *   ∂g/∂ln τon = -(s/τon)·h
 *   ∂g/∂ln τoff = (s/τoff)·g
 * each times the span of its unit coordinate. */
static inline void add_block_jac(const problem *p, size_t i, size_t end, double e_off,
                                 double e_on, double r_off, double r_on, double k_off,
                                 double k_on, double t0, int correct, jac_sums *S)
{
    double sgy = 0, sgg = 0, dy0 = 0, dy1 = 0, dy2 = 0, dg0 = 0, dg1 = 0, dg2 = 0;
    double d00 = 0, d01 = 0, d02 = 0, d11 = 0, d12 = 0, d22 = 0;
    double g1 = 0, gt = 0, l0 = 0, l1 = 0, l2 = 0, lt0 = 0, lt1 = 0, lt2 = 0;
    const double c0 = p->span[0], c1 = p->span[1] * k_on, c2 = p->span[2] * k_off;
#if NT_FIT_LANES > 1
    /* LANES consecutive samples at a time, in vector registers; each lane
     * has its own partial sums, added at the end. The exponentials advance
     * by r^LANES, the lanes starting at e, e·r, e·r², ... */
    if (!correct && end - i >= NT_FIT_LANES) {
        lanes v_off = {0}, v_on = {0}, q_off = {0}, q_on = {0}, a[22] = {{0}};
        lanes_start(e_off, e_on, r_off, r_on, &v_off, &v_on, &q_off, &q_on);
        for (; end - i >= NT_FIT_LANES; i += NT_FIT_LANES) {
            lanes tv, y;
            memcpy(&tv, p->t + i, sizeof tv);
            memcpy(&y, p->y + i, sizeof y);
            lanes h = v_off * v_on, g = v_off - h, s = tv - t0;
            lanes d0 = c0 * (g * k_off - h * k_on), d1 = -c1 * s * h, d2 = c2 * s * g;
            a[0] += g * y;
            a[1] += g * g;
            a[2] += d0 * y;
            a[3] += d1 * y;
            a[4] += d2 * y;
            a[5] += d0 * g;
            a[6] += d1 * g;
            a[7] += d2 * g;
            a[8] += d0 * d0;
            a[9] += d0 * d1;
            a[10] += d0 * d2;
            a[11] += d1 * d1;
            a[12] += d1 * d2;
            a[13] += d2 * d2;
            a[14] += g;
            a[15] += g * tv;
            a[16] += d0;
            a[17] += d1;
            a[18] += d2;
            a[19] += d0 * tv;
            a[20] += d1 * tv;
            a[21] += d2 * tv;
            v_off *= q_off;
            v_on *= q_on;
        }
        double sum[22];
        for (int k = 0; k < 22; k++) {
            sum[k] = 0;
            for (int l = 0; l < NT_FIT_LANES; l++)
                sum[k] += a[k][l];
        }
        sgy = sum[0], sgg = sum[1], dy0 = sum[2], dy1 = sum[3], dy2 = sum[4];
        dg0 = sum[5], dg1 = sum[6], dg2 = sum[7], d00 = sum[8], d01 = sum[9];
        d02 = sum[10], d11 = sum[11], d12 = sum[12], d22 = sum[13];
        g1 = sum[14], gt = sum[15], l0 = sum[16], l1 = sum[17], l2 = sum[18];
        lt0 = sum[19], lt1 = sum[20], lt2 = sum[21];
        e_off = v_off[0];
        e_on = v_on[0];
    }
#endif
    for (; i < end; i++) {
        double off = e_off, on = e_on;
        if (correct) {
            double dev = p->t[i] - (p->t[0] + (double)i * p->dt);
            off *= exp_small(dev * k_off);
            on *= exp_small(dev * k_on);
        }
        double h = off * on, g = off - h, s = p->t[i] - t0, y = p->y[i];
        double d0 = c0 * (g * k_off - h * k_on), d1 = -c1 * s * h, d2 = c2 * s * g;
        sgy += g * y;
        sgg += g * g;
        dy0 += d0 * y;
        dy1 += d1 * y;
        dy2 += d2 * y;
        dg0 += d0 * g;
        dg1 += d1 * g;
        dg2 += d2 * g;
        d00 += d0 * d0;
        d01 += d0 * d1;
        d02 += d0 * d2;
        d11 += d1 * d1;
        d12 += d1 * d2;
        d22 += d2 * d2;
        g1 += g;
        gt += g * p->t[i];
        l0 += d0;
        l1 += d1;
        l2 += d2;
        lt0 += d0 * p->t[i];
        lt1 += d1 * p->t[i];
        lt2 += d2 * p->t[i];
        e_off *= r_off;
        e_on *= r_on;
    }
    S->sgy += sgy;
    S->sgg += sgg;
    S->sdy[0] += dy0;
    S->sdy[1] += dy1;
    S->sdy[2] += dy2;
    S->sdg[0] += dg0;
    S->sdg[1] += dg1;
    S->sdg[2] += dg2;
    S->sdd[0][0] += d00;
    S->sdd[0][1] += d01;
    S->sdd[0][2] += d02;
    S->sdd[1][1] += d11;
    S->sdd[1][2] += d12;
    S->sdd[2][2] += d22;
    S->sgl[0] += g1;
    S->sgl[1] += gt;
    S->sdl[0][0] += l0;
    S->sdl[1][0] += l1;
    S->sdl[2][0] += l2;
    S->sdl[0][1] += lt0;
    S->sdl[1][1] += lt1;
    S->sdl[2][1] += lt2;
}

/*
 * The cost at u with its gradient and the Gauss–Newton matrix, both with
 * respect to u. With A = Σg·y / Σg² (variable projection) and the residual
 * r = y - A·g, Kaufman's approximation (Kaufman 1975, BIT 15:49) of the
 * projected residual's Jacobian, J_k = -A·(D_k - g·(Σg·D_k)/Σg²), gives
 *   cost     = Σy² - A·Σg·y,
 *   gradient = 2·Jᵀr = -2A·(Σ D_k·y - A·Σ D_k·g)   (exact),
 *   JᵀJ      = A²·(Σ D_j·D_k - (Σ D_j·g)(Σ D_k·g)/Σg²).
 * With the nuisance line L (linear, so projected out as well), every sum
 * Σu·v above is the one of the projections, Σu·v - (Lᵀu)ᵀ(LᵀL)⁻¹(Lᵀv)
 * (line_dot): the residual is orthogonal to L, so the gradient stays exact.
 * The exponentials are advanced as in projected_rss. Returns 0 when there is
 * no positive A at u.
 */
static int cost_jacobian(problem *p, const double u[NP], double *f, double grad[NP],
                         double jtj[NP][NP])
{
    double t0, tau_on, tau_off;
    to_params(p, u, &t0, &tau_on, &tau_off);
    p->n_evals++;
    jac_sums S = {0};
    double e_off, e_on;
    walk w;
    size_t end;
    for (size_t i = walk_start(p, t0, tau_on, tau_off, &w);
         walk_block(p, &w, i, &end, &e_off, &e_on); i = end) {
        if (w.on_grid && w.correct)
            add_block_jac(p, i, end, e_off, e_on, w.r_off, w.r_on, w.k_off, w.k_on, t0, 1, &S);
        else
            add_block_jac(p, i, end, e_off, e_on, w.r_off, w.r_on, w.k_off, w.k_on, t0, 0, &S);
    }
    line_part(p, S.sgl);
    for (int k = 0; k < NP; k++)
        line_part(p, S.sdl[k]);
    double a, gg;
    *f = scale_and_rss(p, S.sgy, S.sgg, S.sgl, &a, &gg);
    if (!(a > 0))
        return 0;
    double dg[NP];
    for (int k = 0; k < NP; k++)
        dg[k] = S.sdg[k] - line_dot(p, S.sdl[k], S.sgl);
    for (int j = 0; j < NP; j++) {
        double dy = S.sdy[j] - line_dot(p, S.sdl[j], p->ly);
        grad[j] = -2 * a * (dy - a * dg[j]);
        for (int k = j; k < NP; k++) {
            double dd = S.sdd[j][k] - line_dot(p, S.sdl[j], S.sdl[k]);
            jtj[j][k] = jtj[k][j] = a * a * (dd - dg[j] * dg[k] / gg);
        }
    }
    return 1;
}

/* Solves the n x n system m·x = b (m symmetric, n <= NP) by Cholesky;
 * returns 0 when m is not positive definite. m and b are overwritten. */
static int cholesky_solve(int n, double m[NP][NP], double b[NP], double x[NP])
{
    for (int j = 0; j < n; j++) {
        double d = m[j][j];
        for (int k = 0; k < j; k++)
            d -= m[j][k] * m[j][k];
        if (!(d > 0))
            return 0;
        m[j][j] = sqrt(d);
        for (int i = j + 1; i < n; i++) {
            double v = m[i][j];
            for (int k = 0; k < j; k++)
                v -= m[i][k] * m[j][k];
            m[i][j] = v / m[j][j];
        }
    }
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++)
            v -= m[i][k] * x[k];
        x[i] = v / m[i][i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = x[i];
        for (int k = i + 1; k < n; k++)
            v -= m[k][i] * x[k];
        x[i] = v / m[i][i];
    }
    return 1;
}

/* The damped Gauss–Newton step of lm_run from u: solves
 * (JᵀJ + λ·diag JᵀJ)·x = -Jᵀr over the coordinates that are free — not on a
 * face of the box with the gradient pointing out of it, and not held (t0
 * held at a kink) — and writes the clamped trial point to ut. Returns the
 * largest coordinate move, or -1 when the damped matrix is not positive
 * definite. */
static double lm_step(const double u[NP], const double grad[NP], double jtj[NP][NP],
                      double lambda, int hold_t0, double ut[NP])
{
    int idx[NP], n_free = 0;
    for (int k = 0; k < NP; k++) {
        ut[k] = u[k];
        if (!((u[k] <= 0 && grad[k] > 0) || (u[k] >= 1 && grad[k] < 0) || (k == 0 && hold_t0)))
            idx[n_free++] = k;
    }
    double m[NP][NP], b[NP], x[NP], move = 0;
    for (int j = 0; j < n_free; j++) {
        for (int k = 0; k < n_free; k++)
            m[j][k] = jtj[idx[j]][idx[k]];
        m[j][j] += lambda * fmax(jtj[idx[j]][idx[j]], 1e-300);
        b[j] = -0.5 * grad[idx[j]];
    }
    if (n_free > 0 && !cholesky_solve(n_free, m, b, x))
        return -1;
    for (int j = 0; j < n_free; j++) {
        int k = idx[j];
        double v = u[k] + x[j];
        ut[k] = v < 0 ? 0 : v > 1 ? 1 : v;
        move = fmax(move, fabs(ut[k] - u[k]));
    }
    return move;
}

/* The unit t0 coordinate of the first sample time strictly between the t0
 * of from and of to (the first kink of the cost on the way), or -1. */
static double first_kink(const problem *p, double from, double to)
{
    double a = p->lo[0] + from * p->span[0], b = p->lo[0] + to * p->span[0];
    size_t i = nt_lower_bound(p->t, p->n, fmin(a, b));
    if (b > a) {
        while (i < p->n && !(p->t[i] > a))
            i++;
        if (i < p->n && p->t[i] < b)
            return (p->t[i] - p->lo[0]) / p->span[0];
    } else {
        size_t j = nt_lower_bound(p->t, p->n, a);
        if (j > 0 && p->t[j - 1] > b)
            return (p->t[j - 1] - p->lo[0]) / p->span[0];
    }
    return -1;
}

/*
 * Levenberg–Marquardt (Marquardt 1963, SIAM J. Appl. Math. 11:431) from u
 * in the unit box: damped Gauss–Newton steps (lm_step), trial points clamped
 * into the box, a coordinate on a face whose gradient points out of the box
 * held there (projected active set). λ is divided by 10 after a step that
 * lowers the cost and multiplied by 10 after one that does not.
 *
 * Kinks: the cost is not differentiable where t0 passes a sample, and its
 * minimum often lies on such a kink, where the quadratic model is wrong on
 * one side. A step that crosses a kink and fails is therefore retried with
 * t0 stopped on the kink; and while t0 sits on a kink, a failed step is
 * retried with t0 held there (the kink treated as a bound). Without this LM
 * creeps up to the kink by ever shorter steps (tens of evaluations).
 *
 * Returns 1 when an accepted step moved no coordinate by more than
 * LM_X_TOL, or when no step longer than LM_X_STALL lowers the cost; leaves
 * the best point in u and its cost in *f. Returns 0 (u may have moved) when
 * there is no positive A, λ overflows or the iterations run out.
 */
static int lm_run(problem *p, double u[NP], double *f)
{
    double grad[NP], jtj[NP][NP];
    if (!cost_jacobian(p, u, f, grad, jtj))
        return 0;
    double lambda = LM_LAMBDA0;
    int on_kink = 0;
    for (int it = 0; it < LM_MAX_ITER && p->n_evals < MAX_EVALS; it++) {
        double ut[NP], ft, gt[NP], jt[NP][NP];
        double move = lm_step(u, grad, jtj, lambda, 0, ut);
        if (move < 0) {
            lambda *= 10;
            if (lambda > LM_LAMBDA_MAX)
                return 0;
            continue;
        }
        if (move <= LM_X_STALL || (move <= LM_X_TOL && lambda <= LM_LAMBDA0))
            return 1;
        int ok = cost_jacobian(p, ut, &ft, gt, jt) && ft < *f, kink = 0;
        if (!ok && ut[0] != u[0]) {
            double uk = first_kink(p, u[0], ut[0]);
            if (uk >= 0) {
                ut[0] = uk;
                kink = 1;
            } else if (on_kink) {
                move = lm_step(u, grad, jtj, lambda, 1, ut);
                kink = 1;
            }
            if (kink && move > LM_X_STALL) {
                move = 0;
                for (int k = 0; k < NP; k++)
                    move = fmax(move, fabs(ut[k] - u[k]));
                ok = cost_jacobian(p, ut, &ft, gt, jt) && ft < *f;
            }
        }
        if (ok) {
            for (int k = 0; k < NP; k++) {
                u[k] = ut[k];
                grad[k] = gt[k];
                for (int j = 0; j < NP; j++)
                    jtj[k][j] = jt[k][j];
            }
            *f = ft;
            on_kink = kink;
            if (move <= LM_X_TOL)
                return 1;
            lambda = fmax(0.1 * lambda, LM_LAMBDA_MIN);
        } else {
            lambda *= 10;
            if (lambda > LM_LAMBDA_MAX)
                return 0;
        }
    }
    return 0;
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

/*
 * The least-squares search from u (see the file comment): LM, and when it
 * does not converge inside the box (it failed, or it converged onto a
 * face), the restarted simplex from the same start. The simplex mostly
 * ends on the same face, but its large first steps sometimes find an
 * interior minimum that LM's first Gauss–Newton step jumped past (LM onto
 * the τon = min face with a later t0): skipping it turned 2 of 200 fast
 * synthetic responders into nofit rows, for 4 % less work. Leaves the
 * solution in u, its cost in *f; returns converged.
 */
static int search(problem *p, double u[NP], double *f)
{
    double u_lm[NP] = {u[0], u[1], u[2]};
    if (lm_run(p, u_lm, f)) {
        int inside = 1;
        for (int k = 0; k < NP; k++)
            if (u_lm[k] <= BOUND_TOL || u_lm[k] >= 1.0 - BOUND_TOL)
                inside = 0;
        if (inside) {
            for (int k = 0; k < NP; k++)
                u[k] = u_lm[k];
            return 1;
        }
    }
    *f = cost(p, u);
    int converged = simplex_run(p, u, f);
    for (int r = 0; r < MAX_RESTARTS && p->n_evals <= MAX_EVALS - 2 * (NP + 1); r++) {
        double ur[NP] = {u[0], u[1], u[2]}, fr = *f;
        converged = simplex_run(p, ur, &fr);
        int improved = fr < *f - F_TOL * p->syy;
        if (fr < *f)
            set_vertex(u, f, ur, fr);
        if (!improved)
            break;
    }
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

/*
 * The offset s in [lo, hi] where the unit model crosses level, g(lo) and
 * g(hi) being on either side of it; rising says g increases on [lo, hi].
 * Newton's method on g(s) - level, with
 * g'(s) = e^(-s/τoff)·(e^(-s/τon)/τon - (1 - e^(-s/τon))/τoff), kept inside
 * the bracket, which every step narrows, by a bisection whenever a Newton
 * step would leave it ("rtsafe", Press et al., Numerical Recipes 9.4): it
 * reaches adjacent doubles in a handful of steps where bisection alone
 * needs about 50.
 */
static double solve_level(double lo, double hi, double level, double tau_on, double tau_off,
                          int rising)
{
    double s = 0.5 * (lo + hi);
    for (int it = 0; it < BISECTIONS; it++) {
        double e_off = exp(-s / tau_off);
        double rise = s < RISE_DONE * tau_on ? -expm1(-s / tau_on) : 1.0;
        double f = rise * e_off - level;
        if (f == 0)
            return s;
        if (rising ? f < 0 : f > 0)
            lo = s;
        else
            hi = s;
        double slope = e_off * ((1 - rise) / tau_on - rise / tau_off);
        double next = s - f / slope;
        if (!(next > lo && next < hi)) {
            next = 0.5 * (lo + hi);
            if (!(next > lo && next < hi))
                return s;
        }
        if (fabs(next - s) <= 2 * DBL_EPSILON * fabs(s))
            return next;
        s = next;
    }
    return s;
}

static void set_nan(nt_model_fit *out)
{
    out->amp = out->t0_s = out->tau_on_s = out->tau_off_s = NAN;
    out->peak_dff = out->peak_s = NAN;
    out->t10_s = out->t90_s = out->t50_rise_s = out->t50_fall_s = NAN;
    out->auc_dff_s = out->rss = out->r2 = NAN;
    out->base_dff = out->base_slope_per_s = NAN;
    out->converged = 0;
    out->n_evals = 0;
}

static int valid_range(double lo, double hi)
{
    return isfinite(lo) && isfinite(hi) && lo < hi;
}

/* Fills the measures of out that follow from amp, t0, tau_on and tau_off. */
static void derive_measures(const double *y, size_t n, double rss, nt_model_fit *out)
{
    double a = out->tau_on_s, b = out->tau_off_s, t0 = out->t0_s;
    double sp = a * log1p(b / a);
    double g_peak = b / (a + b) * exp(-(a / b) * log1p(b / a));
    out->peak_dff = out->amp * g_peak;
    out->peak_s = t0 + sp;
    out->t10_s = t0 + solve_level(0, sp, 0.1 * g_peak, a, b, 1);
    out->t90_s = t0 + solve_level(0, sp, 0.9 * g_peak, a, b, 1);
    out->t50_rise_s = t0 + solve_level(0, sp, 0.5 * g_peak, a, b, 1);
    double s_end = sp + FALL_SPAN * b;
    out->t50_fall_s = unit_model(s_end, a, b) > 0.5 * g_peak
                          ? NAN
                          : t0 + solve_level(sp, s_end, 0.5 * g_peak, a, b, 0);
    out->auc_dff_s = out->amp * b * b / (a + b);

    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        mean += y[i];
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
    double st = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(t[i]) || !isfinite(y[i]) || (i > 0 && !(t[i] > t[i - 1])))
            return -1;
        p.syy += y[i] * y[i];
        st += t[i];
    }
    p.syy_perp = p.syy;
    if (bd->line) {
        double stt = 0;
        p.tc = st / (double)n;
        p.ly[0] = p.ly[1] = 0;
        for (size_t i = 0; i < n; i++) {
            double c = t[i] - p.tc;
            stt += c * c;
            p.ly[0] += y[i];
            p.ly[1] += y[i] * c;
        }
        p.inv_n = 1.0 / (double)n;
        p.inv_stt = 1.0 / stt;    /* > 0: t strictly increasing, n >= 6 */
        p.syy_perp = p.syy - line_dot(&p, p.ly, p.ly);
    }
    p.dt = (t[n - 1] - t[0]) / (double)(n - 1);
    p.grid_dev = nt_grid_deviation(t, n);
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
    double f;
    int converged = search(&p, u, &f);

    /* Clamped again because exp(log(max)) may round one ulp past max. */
    double t0, tau_on, tau_off, amp, line[2];
    to_params(&p, u, &t0, &tau_on, &tau_off);
    t0 = fmin(fmax(t0, bd->t0_min_s), bd->t0_max_s);
    tau_on = fmin(fmax(tau_on, bd->tau_on_min_s), bd->tau_on_max_s);
    tau_off = fmin(fmax(tau_off, bd->tau_off_min_s), bd->tau_off_max_s);
    double rss = projected_rss(&p, t0, tau_on, tau_off, &amp, line);
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
    out->base_dff = bd->line ? line[0] + line[1] * (t0 - p.tc) : 0;
    out->base_slope_per_s = bd->line ? line[1] : 0;
    derive_measures(y, n, rss, out);
    out->converged = converged;
    out->n_evals = p.n_evals;
    return 0;
}
