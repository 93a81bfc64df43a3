/*
 * detect_matched.c — whitened matched-filter detection of evoked release.
 *
 * Model. Around one stimulus the unfiltered ΔF/F is
 *     d[t] = A·s(t − l) + c0 + c1·t + e[t],
 * s the lab's response (1 − e^(−t/τon))·e^(−t/τoff) scaled to a unit peak,
 * l the onset lag, c0 + c1·t a nuisance line (an F0 that is off, the drift
 * line the baseline stage fits before the stimulus and extrapolates across
 * the response, photobleaching), e stationary Gaussian noise: white shot
 * noise, short-memory (AR-like) fluctuations, 1/f wander.
 *
 * Working rate. Traces are block-averaged by D = round(rate / 10 Hz) (at
 * least 1), templates alike: the templates hold little information above a
 * few hertz, and an AR model at 50 Hz spends its lags on the first 0.2 s
 * and cannot follow the noise below 1 Hz where the slow templates live
 * (measured on 1/f noise at 50 Hz: false alarms 9 % at the full rate, 5 %
 * block-averaged to 10 Hz). Onsets are found on the block grid.
 *
 * Noise model: AR(p), fitted by Burg's method (Kay, Modern Spectral
 * Estimation, 1988, §7.4) to all the noise spans at once (the forward and
 * backward prediction errors summed over the spans), each span block-
 * averaged and detrended, p <= 8 chosen by AICc (Hurvich & Tsai 1989). Burg
 * rather than Yule–Walker because it stays unbiased on short records, and
 * AR because its prediction-error filter is causal and short: whitening
 * u[t] = Σ a[i]·d[t − i] is exact from p samples into the record, with no
 * circular wrap and no leak of a response back into the noise window, which
 * frequency-domain whitening by 1/sqrt(S(f)) of a finite record has; the
 * filter's magnitude is σ/sqrt(S(f)) of the AR spectrum, so the test is the
 * same. (A fractionally integrated ARFIMA(p, δ) model, fitted by Whittle's
 * method, was tried for 1/f noise and dropped: on the 20-40 s of noise a
 * first trial has, δ comes out near 0 and the model is the AR model.)
 *
 * Statistic: the generalised likelihood ratio for A > 0 with the line as
 * nuisance, on a window that slides with the lag, [l − pre, l + post)
 * (NT_MF_PRE_S, NT_MF_POST_S): with w the whitened data and g the whitened
 * template at lag l, both with their projection on span{1, t} over the
 * window removed,
 *     T(l) = <w, g⊥> / (σ·||g⊥||),
 * N(0,1) at every lag under noise alone when the model is right. <w, g> at
 * every lag comes from one FFT correlation per template (filter_xcorr.c),
 * the projections from prefix sums of w, t·w, g, k·g and g². The window is
 * local so that the line absorbs the slow wander of 1/f noise, and the same
 * at every lag so that the statistic computed on noise-only spans has the
 * trial statistic's distribution.
 *
 * Empirical calibration. A model fitted on finite data misses noise power at
 * the lowest frequencies (1/f above all), and the slow templates, whose
 * energy sits there, then spread wider than N(0,1). So the statistic is
 * computed at the lags of the noise spans whose window fits in them, and
 * its robust spread s_j = 1.4826·MAD per template sets
 *     κ_j² = (n_eff·s_j² + n_0·κ0_j²) / (n_eff + n_0),   κ_j >= 1,
 * by which T is divided: the data's spread, shrunk towards a prior κ0_j with
 * the weight of n_0 = 10 independent lags. n_eff is the number of lags over
 * τ_j = 1 + 2·Σ_k r_j(k)², r_j the statistic's own lag correlation (a slow
 * template's spans hold few independent lags). Values that close carry
 * little new information, so template j is computed at every s_j-th lag
 * only, s_j = ⌊τ_j / 4⌋ (1 when τ_j < 8), and n_eff counts those values
 * over 1 + 2·Σ_k r_j(k·s_j)²: the same information for a fraction of the
 * work (on 4096 ROIs × 6000 frames, a third of the time went to the
 * calibration's correlations and medians at every lag). The median is not
 * subtracted: T is linear in zero-mean noise, so its null mean is 0 whatever
 * the spectrum, and a median of few correlated values would only add noise.
 * The prior: a span of L samples pins the spectrum down only above a few
 * cycles per span, f_0 = 3/L (L the longest span); below f_0 the AR model
 * levels off while 1/f noise keeps rising. So the model's own log-log slope
 * β over [f_0, 2 f_0] is continued below f_0, and κ0_j² is the statistic's
 * variance under that spectrum, Σ|H_j(f)|²·max(1, (f_0/f)^β) / Σ|H_j(f)|²
 * (H_j the statistic's kernel). White and short-memory noise have β ≈ 0
 * there and keep κ0 = 1.
 *
 * Threshold: the largest T(l)/κ_j over L lags and J templates exceeds u
 * under noise alone with a probability of at most
 *     Σ_j [Q(u) + (L − 1)·P(X_l <= u < X_(l+1))]
 * (the first lag exceeds u, or an up-crossing happens between neighbours),
 * P(X <= u < Y) = 2·T_Owen(u, sqrt((1 − ρ_j)/(1 + ρ_j))) for standard
 * normals of correlation ρ_j = r_j(1) (Owen 1956), solved for u at p_fa.
 */
#include "detect_matched.h"

#include "filter_xcorr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Measured (see the header): >= 95 % of the matched-filter SNR for every
 * response of the fast and slow ranges, in white, AR(1) and 1/f noise. */
static const nt_mf_kinetics default_bank[] = {
    {0.2, 1.5},
    {0.3, 4.0},
    {1.5, 10.0},
    {3.0, 25.0},
};

/* Traces are block-averaged to about this rate. */
#define WORK_RATE_HZ 10.0
/* AR order cap of the noise model, at the working rate. */
#define AR_ORDER_MAX 8
/* Weight, in independent lags, of the prior κ0 in the calibration. */
#define KAPPA_PRIOR_LAGS 10.0
/* Cycles per span above which a span's spectrum is trusted (the prior). */
#define PRIOR_CYCLES 3.0
/* Below this much noise (seconds, all spans) white noise is assumed. */
#define MIN_NOISE_S 3.0

struct nt_mf {
    size_t n_max;    /* samples at the trace rate */
    double rate_hz;
    size_t dec;      /* block length D */
    size_t nd_max;   /* samples at the working rate */
    size_t n_bank;
    nt_mf_kinetics bank[NT_MF_BANK_MAX];
    nt_xcorr *xc;    /* transform length N >= 4·(pre + post), see scan_lags */
    size_t n_fft;
    size_t n_bins;
    size_t pre;      /* window samples before a lag (working rate) */
    size_t post;     /* window samples from a lag on (working rate), <= nd_max */
    double *tmpl;    /* [n_bank][post] block-averaged unit-peak templates */
    double *spec_g;  /* [n_bank][2 n_bins] spectra of the whitened templates */
    double *p1;      /* [n_bank][post + 1] prefix sums of g */
    double *p2;      /*                     ... of g² */
    double *pk;      /*                     ... of k·g[k] */
    double *hpow;    /* [n_bank][n_bins] |H_j|², the statistics' kernels */
    double *shift;   /* [2 n_bins] e^(−2πi·f·pre/N): a delay by pre */
    double *line_box;  /* [2 n_bins] spectrum of 1 over the window [0, pre + post) */
    double *line_ramp; /* [2 n_bins] ... of t − tbar over it */
    double rho[NT_MF_BANK_MAX];   /* the statistic's correlation at adjacent lags */
    double tau[NT_MF_BANK_MAX];   /* lags per independent lag, for variances */
    size_t stride[NT_MF_BANK_MAX];   /* calibration lag step s_j */
    double tau_s[NT_MF_BANK_MAX];    /* tau of the values s_j lags apart */
    double kappa[NT_MF_BANK_MAX]; /* calibration factors */
    /* the noise model (working rate) */
    int have_model;
    int order;
    double a[NT_MF_AR_MAX + 1];
    double sigma;
    unsigned model_flags;
    /* buffers for one record (working rate) */
    double *x;       /* [nd_max] the block-averaged record */
    double *w;       /* [nd_max] whitened, 0 outside [st, n) */
    double *corr;    /* [n_fft] one block's correlations */
    double *cw;      /* [nd_max + 1] prefix sums of w */
    double *ctw;     /* [nd_max + 1] prefix sums of (t − st)·w */
    double *work;    /* [max(n_fft, nd_max)] */
    /* the last threshold */
    size_t thr_lags;
    double thr_pfa;
    double thr_u;
};

const nt_mf_kinetics *nt_mf_default_bank(size_t *n)
{
    *n = sizeof default_bank / sizeof default_bank[0];
    return default_bank;
}

size_t nt_mf_max_length(const nt_mf *m) { return m->n_max; }
double nt_mf_rate_hz(const nt_mf *m) { return m->rate_hz; }
size_t nt_mf_block(const nt_mf *m) { return m->dec; }

double nt_mf_kappa(const nt_mf *m, size_t j) { return j < m->n_bank ? m->kappa[j] : NAN; }

const nt_mf_kinetics *nt_mf_bank(const nt_mf *m, size_t *n)
{
    *n = m->n_bank;
    return m->bank;
}

/* ------------------------------------------------------------ templates */

/* Whitens x [n] into out [n] for t >= st (0 before) with the AR filter. */
static void whiten(const nt_mf *m, const double *x, size_t n, size_t st, double *out)
{
    const int p = m->order;
    for (size_t t = 0; t < n; t++) {
        if (t < st) {
            out[t] = 0;
            continue;
        }
        double acc = 0;
        for (int i = 0; i <= p && (size_t)i <= t; i++)
            acc += m->a[i] * x[t - (size_t)i];
        out[t] = acc;
    }
}

/* Peak value of (1 − e^(−t/τon))·e^(−t/τoff), at t = τon·ln(1 + τoff/τon). */
static double model_peak(double tau_on, double tau_off)
{
    double tp = tau_on * log1p(tau_off / tau_on);
    return -expm1(-tp / tau_on) * exp(-tp / tau_off);
}

/* The unit-peak template with its onset at the start of block 0, averaged
 * over blocks of dec samples at rate_hz. */
static void fill_template(double *s, size_t n, double rate_hz, size_t dec, nt_mf_kinetics k)
{
    double scale = 1.0 / model_peak(k.tau_on_s, k.tau_off_s);
    for (size_t b = 0; b < n; b++) {
        double acc = 0;
        for (size_t i = 0; i < dec; i++) {
            double t = (double)(b * dec + i) / rate_hz;
            acc += -expm1(-t / k.tau_on_s) * exp(-t / k.tau_off_s);
        }
        s[b] = scale * acc / (double)dec;
    }
}

/*
 * Template j's statistic kernel h: the whitened template g [post] placed
 * after pre zeros, with the window's line projected out (an interior lag,
 * whole window). Its power spectrum goes to hpow (for the prior); its
 * autocorrelation r(k), the statistic's correlation between lags k apart
 * under white whitened noise, gives rho[j] = r(1) (for the threshold) and
 * tau[j] = 1 + 2·Σ r(k)² (a sample variance over c lags is as good as one
 * over c / tau independent values).
 *
 * No transform is taken: h's spectrum is g's (spec_g, already made) shifted
 * by pre, less the line's, whose two parts (a box and a ramp over the
 * window) are fixed and made once (line_box, line_ramp); Σ_k r(k)² over
 * all k is (1/N)·Σ_f |H(f)|⁴ (Parseval: r is the inverse transform of |H|²,
 * without wrap as N >= 2·len); r(0) and r(1) are summed directly. The
 * calibration's values s_j lags apart have 1 + 2·Σ_m r(m·s_j)², which for
 * s_j <= tau/4 (r changes little over s_j lags) is 1 + (tau − 1)/s_j.
 */
static void kernel_stats(nt_mf *m, const double *g, size_t j)
{
    const size_t len = m->pre + m->post, nb = m->n_bins;
    const double mm = (double)len, tbar = 0.5 * (mm - 1.0);
    const double norm_t2 = mm * (mm * mm - 1.0) / 12.0;
    const double *p1 = m->p1 + j * (m->post + 1), *pk = m->pk + j * (m->post + 1);
    /* The line's coefficients: h's sum and its moment about tbar. */
    const double a0 = p1[m->post] / mm;
    const double a1 = ((double)m->pre - tbar) * p1[m->post] + pk[m->post];
    double *h = m->work;
    memset(h, 0, len * sizeof *h);
    memcpy(h + m->pre, g, m->post * sizeof *h);
    double r0 = 0, r1 = 0;
    for (size_t t = 0; t < len; t++) {
        h[t] -= a0 + a1 / norm_t2 * ((double)t - tbar);
        r0 += h[t] * h[t];
        if (t > 0)
            r1 += h[t - 1] * h[t];
    }
    const double *gs = m->spec_g + j * 2 * nb;
    double *e = m->hpow + j * nb, sum4 = 0;
    for (size_t k = 0; k < nb; k++) {
        const double *sh = m->shift + 2 * k, *bx = m->line_box + 2 * k, *rp = m->line_ramp + 2 * k;
        double re = gs[2 * k] * sh[0] - gs[2 * k + 1] * sh[1] - a0 * bx[0] - a1 / norm_t2 * rp[0];
        double im = gs[2 * k] * sh[1] + gs[2 * k + 1] * sh[0] - a0 * bx[1] - a1 / norm_t2 * rp[1];
        e[k] = re * re + im * im;
        sum4 += (k > 0 && 2 * k < m->n_fft ? 2.0 : 1.0) * e[k] * e[k];
    }
    double tau = 1.0;
    m->rho[j] = 0;
    if (r0 > 0) {
        m->rho[j] = r1 / r0;
        tau = fmax(1.0, sum4 / (double)m->n_fft / (r0 * r0));
    }
    size_t stride = tau >= 8.0 ? (size_t)(tau / 4.0) : 1;
    m->tau[j] = tau;
    m->stride[j] = stride;
    m->tau_s[j] = 1.0 + (tau - 1.0) / (double)stride;
}

/* Makes the current model's whitened templates: their spectra, prefix sums,
 * kernels; resets the calibration. */
static void whiten_templates(nt_mf *m)
{
    const size_t n = m->post;
    double *g = m->w;
    for (size_t j = 0; j < m->n_bank; j++) {
        whiten(m, m->tmpl + j * n, n, 0, g);
        double *p1 = m->p1 + j * (n + 1), *p2 = m->p2 + j * (n + 1), *pk = m->pk + j * (n + 1);
        p1[0] = p2[0] = pk[0] = 0;
        for (size_t k = 0; k < n; k++) {
            p1[k + 1] = p1[k] + g[k];
            p2[k + 1] = p2[k] + g[k] * g[k];
            pk[k + 1] = pk[k] + (double)k * g[k];
        }
        nt_xcorr_spectrum(m->xc, g, n, m->spec_g + j * 2 * m->n_bins);
        kernel_stats(m, g, j);
        m->kappa[j] = 1.0;
    }
    m->thr_lags = 0;
}

/* ------------------------------------------------------------ create */

int nt_mf_create(size_t n_max, double rate_hz, const nt_mf_kinetics *bank, size_t n_bank,
                 nt_mf **out, nt_error *err)
{
    *out = NULL;
    if (n_max < NT_MF_MIN_SAMPLES || n_max > ((size_t)1 << 24))
        return nt_error_set(err, NT_ERR_INVALID, "matched filter: %zu samples is not in %d-2^24",
                            n_max, NT_MF_MIN_SAMPLES);
    if (!(rate_hz > 0) || !isfinite(rate_hz) || rate_hz > 1e6)
        return nt_error_set(err, NT_ERR_INVALID, "matched filter: rate %g Hz is not in (0, 1e6]",
                            rate_hz);
    if (bank == NULL || n_bank == 0)
        bank = nt_mf_default_bank(&n_bank);
    if (n_bank > NT_MF_BANK_MAX)
        return nt_error_set(err, NT_ERR_INVALID, "matched filter: %zu templates (at most %d)",
                            n_bank, NT_MF_BANK_MAX);
    for (size_t j = 0; j < n_bank; j++)
        if (!(bank[j].tau_on_s > 0) || !(bank[j].tau_off_s > 0) || !isfinite(bank[j].tau_on_s) ||
            !isfinite(bank[j].tau_off_s))
            return nt_error_set(err, NT_ERR_INVALID,
                                "matched filter: template %zu: time constants %g, %g s", j,
                                bank[j].tau_on_s, bank[j].tau_off_s);

    int status = NT_OK;
    nt_mf *m = calloc(1, sizeof *m);
    if (m == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "matched filter: out of memory");
    m->n_max = n_max;
    m->rate_hz = rate_hz;
    double dec = floor(rate_hz / WORK_RATE_HZ + 0.5);
    m->dec = dec < 1 ? 1 : (size_t)dec;
    m->nd_max = (n_max + m->dec - 1) / m->dec;
    if (m->nd_max < 16)
        m->nd_max = 16;
    m->n_bank = n_bank;
    memcpy(m->bank, bank, n_bank * sizeof *bank);
    const double work_hz = rate_hz / (double)m->dec;
    m->pre = (size_t)lround(NT_MF_PRE_S * work_hz);
    m->post = (size_t)lround(NT_MF_POST_S * work_hz);
    if (m->post > m->nd_max)
        m->post = m->nd_max;
    if (m->post < 2)
        m->post = 2;
    /* Correlations are taken block by block (scan_lags): the transform
     * covers a few windows, however long the trace (4 windows keep the
     * kernels' spectra finely sampled for the prior and leave 3/4 of each
     * block as output), or the whole record twice over when that is less,
     * and at least twice the window (the kernel's autocorrelation must not
     * wrap: kernel_stats). */
    const size_t win = m->pre + m->post;
    size_t n_block = 4 * win < 2 * m->nd_max ? 4 * win : 2 * m->nd_max;
    if (n_block < 2 * win)
        n_block = 2 * win;
    status = nt_xcorr_create(n_block, &m->xc, err);
    if (status != NT_OK)
        goto cleanup;
    m->n_fft = nt_xcorr_length(m->xc);
    m->n_bins = nt_xcorr_bins(m->xc);
    const size_t post = m->post, nd = m->nd_max;
    m->tmpl = malloc(n_bank * post * sizeof *m->tmpl);
    m->spec_g = malloc(n_bank * 2 * m->n_bins * sizeof *m->spec_g);
    m->p1 = malloc(n_bank * (post + 1) * sizeof *m->p1);
    m->p2 = malloc(n_bank * (post + 1) * sizeof *m->p2);
    m->pk = malloc(n_bank * (post + 1) * sizeof *m->pk);
    m->hpow = malloc(n_bank * m->n_bins * sizeof *m->hpow);
    m->shift = malloc(2 * m->n_bins * sizeof *m->shift);
    m->line_box = malloc(2 * m->n_bins * sizeof *m->line_box);
    m->line_ramp = malloc(2 * m->n_bins * sizeof *m->line_ramp);
    m->x = malloc(nd * sizeof *m->x);
    m->w = malloc(nd * sizeof *m->w);
    m->corr = malloc(m->n_fft * sizeof *m->corr);
    m->cw = malloc((nd + 1) * sizeof *m->cw);
    m->ctw = malloc((nd + 1) * sizeof *m->ctw);
    m->work = malloc((m->n_fft > nd ? m->n_fft : nd) * sizeof *m->work);
    if (m->tmpl == NULL || m->spec_g == NULL || m->p1 == NULL || m->p2 == NULL ||
        m->pk == NULL || m->hpow == NULL || m->shift == NULL || m->line_box == NULL ||
        m->line_ramp == NULL || m->x == NULL || m->w == NULL ||
        m->corr == NULL || m->cw == NULL || m->ctw == NULL ||
        m->work == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM,
                              "matched filter: out of memory for %zu-sample traces", n_max);
        goto cleanup;
    }
    for (size_t j = 0; j < n_bank; j++)
        fill_template(m->tmpl + j * post, post, rate_hz, m->dec, bank[j]);
    /* The fixed spectra of kernel_stats: a delay by pre, and the window's
     * constant and centred ramp (work holds >= win samples). */
    for (size_t k = 0; k < m->n_bins; k++) {
        double w = 2.0 * M_PI * (double)k * (double)m->pre / (double)m->n_fft;
        m->shift[2 * k] = cos(w);
        m->shift[2 * k + 1] = -sin(w);
    }
    for (size_t t = 0; t < win; t++)
        m->work[t] = 1.0;
    nt_xcorr_spectrum(m->xc, m->work, win, m->line_box);
    for (size_t t = 0; t < win; t++)
        m->work[t] = (double)t - 0.5 * ((double)win - 1.0);
    nt_xcorr_spectrum(m->xc, m->work, win, m->line_ramp);
    /* Until a model is learnt: white noise of unit σ. */
    m->order = 0;
    m->a[0] = 1.0;
    m->sigma = 1.0;
    m->model_flags = NT_MF_WHITE | NT_MF_UNCALIBRATED;
    whiten_templates(m);
    *out = m;
    m = NULL;
cleanup:
    nt_mf_destroy(m);
    return status;
}

void nt_mf_destroy(nt_mf *m)
{
    if (m == NULL)
        return;
    nt_xcorr_destroy(m->xc);
    free(m->tmpl);
    free(m->spec_g);
    free(m->p1);
    free(m->p2);
    free(m->pk);
    free(m->hpow);
    free(m->shift);
    free(m->line_box);
    free(m->line_ramp);
    free(m->x);
    free(m->w);
    free(m->corr);
    free(m->cw);
    free(m->ctw);
    free(m->work);
    free(m);
}

int nt_mf_set_noise(nt_mf *m, const double *a, int order, double sigma, nt_error *err)
{
    if (order < 0 || order > NT_MF_AR_MAX)
        return nt_error_set(err, NT_ERR_INVALID, "matched filter: AR order %d is not in 0-%d",
                            order, NT_MF_AR_MAX);
    if (order > 0 && (a == NULL || a[0] != 1.0))
        return nt_error_set(err, NT_ERR_INVALID, "matched filter: a[0] must be 1");
    if (!(sigma > 0) || !isfinite(sigma))
        return nt_error_set(err, NT_ERR_INVALID, "matched filter: σ %g is not positive", sigma);
    m->order = order;
    memset(m->a, 0, sizeof m->a);
    m->a[0] = 1.0;
    for (int i = 1; i <= order; i++)
        m->a[i] = a[i];
    m->sigma = sigma;
    m->model_flags = NT_MF_UNCALIBRATED;
    m->have_model = 1;
    whiten_templates(m);
    return NT_OK;
}

/* ------------------------------------------------------------ statistic */

/* Where the whitened record lives: [st, n). */
typedef struct record {
    size_t st, n;
} record;

/* Whitens the working-rate record x [n] into m->w on [st, n), zero
 * elsewhere; takes the prefix sums of w and (t − st)·w. */
static void prepare_record(nt_mf *m, const double *x, size_t n, size_t st, record *rec)
{
    double *w = m->w;
    whiten(m, x, n, st, w);
    rec->st = st;
    rec->n = n;
    m->cw[st] = m->ctw[st] = 0;
    for (size_t t = st; t < n; t++) {
        m->cw[t + 1] = m->cw[t] + w[t];
        m->ctw[t + 1] = m->ctw[t] + (double)(t - st) * w[t];
    }
}

/*
 * Template j's statistic numerator and ||g⊥||² at lag l (st <= l < n), c
 * being <w, g> over the template's first post samples. The window is
 * [max(st, l − pre), min(n, l + post)); the nuisance line is projected out
 * of both w and g on it.
 */
static void lag_terms(const nt_mf *m, const record *rec, size_t j, size_t l, double c,
                      double *num, double *den2)
{
    const size_t u0 = l - rec->st > m->pre ? l - m->pre : rec->st;
    const size_t u1 = rec->n - l > m->post ? l + m->post : rec->n;
    const size_t K = u1 - l, stride = m->post + 1;
    const double mm = (double)(u1 - u0);
    /* Indices relative to st; tbar is the window's mean index. */
    const double tbar = 0.5 * ((double)(u0 - rec->st) + (double)(u1 - 1 - rec->st));
    const double sqrt_m = sqrt(mm), norm_t = sqrt(mm * (mm * mm - 1.0) / 12.0);
    const double s0 = m->cw[u1] - m->cw[u0], s1 = m->ctw[u1] - m->ctw[u0];
    const double a0 = s0 / sqrt_m, a1 = norm_t > 0 ? (s1 - tbar * s0) / norm_t : 0;
    const double G1 = m->p1[j * stride + K], G2 = m->p2[j * stride + K];
    const double GK = m->pk[j * stride + K];
    const double gu0 = G1 / sqrt_m;
    const double gu1 = norm_t > 0 ? (GK + ((double)(l - rec->st) - tbar) * G1) / norm_t : 0;
    *num = c - a0 * gu0 - a1 * gu1;
    *den2 = G2 - gu0 * gu0 - gu1 * gu1;
    /* A template that the line explains (all but ~1e-9 of it) carries no
     * information here; rounding could even make den2 negative. */
    if (!(*den2 > 1e-9 * G2))
        *den2 = 0;
}

/* What scan_lags calls for template j at lag l with the statistic's terms. */
typedef void (*lag_fn)(nt_mf *m, size_t j, size_t l, double num, double den2, void *ctx);

/*
 * Calls fn for every template at every lag l in [lo, hi] (st <= lo, hi < n)
 * of the prepared record. <w, g_j> at those lags comes from FFT correlation
 * by overlap-save: a block of N samples of w starting at lag b gives the
 * lags b .. b + N − post exactly (no wrap, the templates being post long),
 * so the transforms are N long however long the trace, and cover only the
 * lags asked for. Lags are visited block by block, templates within a
 * block, lags in increasing order within a template; with stride, template
 * j only at lags lo + i·stride[j].
 */
static void scan_lags(nt_mf *m, const record *rec, size_t lo, size_t hi, const size_t *stride,
                      lag_fn fn, void *ctx)
{
    const size_t per_block = m->n_fft - m->post + 1;
    for (size_t b = lo; b <= hi; b += per_block) {
        const size_t n_lags = hi - b + 1 < per_block ? hi - b + 1 : per_block;
        const size_t seg = rec->n - b < m->n_fft ? rec->n - b : m->n_fft;
        const double *spec_w = nt_xcorr_transform(m->xc, m->w + b, seg);
        for (size_t j = 0; j < m->n_bank; j++) {
            nt_xcorr_correlate(m->xc, spec_w, m->spec_g + j * 2 * m->n_bins, m->corr, n_lags);
            for (size_t i = 0; i < n_lags; i++) {
                if (stride != NULL && (b + i - lo) % stride[j] != 0)
                    continue;
                double num, den2;
                lag_terms(m, rec, j, b + i, m->corr[i], &num, &den2);
                fn(m, j, b + i, num, den2, ctx);
            }
        }
    }
}

/* ------------------------------------------------------------ threshold */

static double normal_sf(double u) { return 0.5 * erfc(u / M_SQRT2); }

/* Owen's T(h, a) = (1/2π) ∫_0^a exp(−h²(1 + x²)/2) / (1 + x²) dx, 0 <= a <= 1,
 * by composite Simpson on 32 intervals (the integrand is smooth; the error is
 * far below what a threshold needs). */
static double owen_t(double h, double a)
{
    enum { STEPS = 32 };
    if (a <= 0)
        return 0;
    const double dx = a / STEPS, hh = 0.5 * h * h;
    double sum = 0;
    for (int i = 0; i <= STEPS; i++) {
        double x = dx * i, f = exp(-hh * (1.0 + x * x)) / (1.0 + x * x);
        sum += (i == 0 || i == STEPS) ? f : (i % 2 ? 4.0 * f : 2.0 * f);
    }
    return sum * dx / 3.0 / (2.0 * M_PI);
}

/* The bound on P(max T > u) above, and its derivative in u (from
 * dQ/du = −φ(u) and ∂T_Owen(u, a)/∂u = −φ(u)·(Φ(a·u) − 1/2)). */
static double p_exceed(const nt_mf *m, size_t n_lags, double u, double *dp_du)
{
    const double q = normal_sf(u), phi = exp(-0.5 * u * u) / sqrt(2.0 * M_PI);
    double total = 0, slope = 0;
    for (size_t j = 0; j < m->n_bank; j++) {
        double rho = fmin(fmax(m->rho[j], -1.0), 1.0);
        double a = sqrt((1.0 - rho) / (1.0 + rho + 1e-300));
        double cross = 2.0 * owen_t(u, a);
        total += q + (double)(n_lags - 1) * cross;
        slope -= phi * (1.0 + 2.0 * (double)(n_lags - 1) * (0.5 - normal_sf(a * u)));
    }
    *dp_du = slope;
    return total;
}

/*
 * Solves p_exceed(u) = p_fa for u in [0, 12] by Newton's method on
 * ln p_exceed, kept inside a bracket that every step narrows (a step that
 * would leave it bisects instead). It starts from the same point every
 * time, so that a ROI's threshold never depends on the ROI before it, and
 * converges in about five steps where bisection took 48.
 */
double nt_mf_threshold(nt_mf *m, size_t n_lags, double p_fa)
{
    if (n_lags == 0)
        n_lags = 1;
    if (m->thr_lags == n_lags && m->thr_pfa == p_fa)
        return m->thr_u;
    double lo = 0.0, hi = 12.0, target = log(p_fa);
    double u = 4.0;
    for (int it = 0; it < 100 && hi - lo > 1e-12; it++) {
        double dp, p = p_exceed(m, n_lags, u, &dp);
        double g = log(p) - target;
        if (g > 0)
            lo = u;
        else
            hi = u;
        double next = p > 0 && dp < 0 ? u - g * p / dp : NAN;
        if (!(next > lo && next < hi))
            next = 0.5 * (lo + hi);
        if (fabs(next - u) < 1e-12)
            break;
        u = next;
    }
    m->thr_lags = n_lags;
    m->thr_pfa = p_fa;
    m->thr_u = u;
    return u;
}

/* ------------------------------------------------------------ noise model */

/* Removes the least-squares line of y [n] (n >= 2) over its index. */
static void detrend(double *y, size_t n)
{
    double nbar = 0.5 * (double)(n - 1), my = 0, sty = 0;
    for (size_t i = 0; i < n; i++)
        my += y[i];
    my /= (double)n;
    for (size_t i = 0; i < n; i++)
        sty += ((double)i - nbar) * (y[i] - my);
    double stt = (double)n * ((double)n * (double)n - 1.0) / 12.0;
    double b = stt > 0 ? sty / stt : 0;
    for (size_t i = 0; i < n; i++)
        y[i] -= my + b * ((double)i - nbar);
}

/* Block-averages src [n] into dst [n / dec]; returns n / dec. */
static size_t decimate(const double *src, size_t n, size_t dec, double *dst)
{
    size_t nd = n / dec;
    for (size_t b = 0; b < nd; b++) {
        double acc = 0;
        for (size_t i = 0; i < dec; i++)
            acc += src[b * dec + i];
        dst[b] = acc / (double)dec;
    }
    return nd;
}

/*
 * Burg's method on the pieces of y (piece k is y[off[k] .. off[k+1])),
 * forward and backward prediction errors pooled over the pieces. Fills
 * as[p][0..p] and err_var[p] for p = 0..p_max. f, b: scratch [off[n_pieces]].
 * Returns the highest order reached (lower than p_max when the errors vanish).
 */
static int burg(const double *y, const size_t *off, size_t n_pieces, int p_max, double *f,
                double *b, double as[][NT_MF_AR_MAX + 1], double *err_var)
{
    const size_t total = off[n_pieces];
    double e0 = 0;
    for (size_t i = 0; i < total; i++) {
        f[i] = b[i] = y[i];
        e0 += y[i] * y[i];
    }
    memset(as, 0, (size_t)(p_max + 1) * sizeof as[0]);
    as[0][0] = 1.0;
    err_var[0] = e0 / (double)total;
    for (int p = 0; p < p_max; p++) {
        double num = 0, den = 0;
        for (size_t k = 0; k < n_pieces; k++)
            for (size_t i = off[k] + (size_t)p + 1; i < off[k + 1]; i++) {
                num += f[i] * b[i - 1];
                den += f[i] * f[i] + b[i - 1] * b[i - 1];
            }
        if (!(den > 0))
            return p;
        double kr = -2.0 * num / den;
        for (int i = 0; i <= p + 1; i++)
            as[p + 1][i] = as[p][i] + kr * as[p][p + 1 - i];
        as[p + 1][0] = 1.0;
        err_var[p + 1] = err_var[p] * (1.0 - kr * kr);
        /* Descending, so that b[i − 1] is still the previous order's. */
        for (size_t k = 0; k < n_pieces; k++)
            for (size_t i = off[k + 1]; i-- > off[k] + (size_t)p + 1;) {
                double fi = f[i], bi = b[i - 1];
                f[i] = fi + kr * bi;
                b[i] = bi + kr * fi;
            }
        if (!(err_var[p + 1] > 0))
            return p + 1;
    }
    return p_max;
}

/* The AR model's spectrum 1/|A(e^(i2πf))|² at f cycles per sample (σ = 1). */
static double ar_power(const nt_mf *m, double f)
{
    double re = 0, im = 0;
    for (int i = 0; i <= m->order; i++) {
        re += m->a[i] * cos(2.0 * M_PI * f * i);
        im -= m->a[i] * sin(2.0 * M_PI * f * i);
    }
    return 1.0 / (re * re + im * im);
}

/* The prior κ0_j² of every template for spans whose longest has L samples
 * (see the file's head). */
static void kappa_prior(const nt_mf *m, size_t longest, double *prior2)
{
    const double f_0 = PRIOR_CYCLES / (double)longest;
    double beta = log(ar_power(m, f_0) / ar_power(m, 2.0 * f_0)) / log(2.0);
    beta = fmin(fmax(beta, 0.0), 2.0);
    for (size_t j = 0; j < m->n_bank; j++) {
        const double *e = m->hpow + j * m->n_bins;
        double num = 0, den = 0;
        for (size_t k = 1; k < m->n_bins; k++) {
            double fk = (double)k / (double)m->n_fft;
            num += e[k] * (fk < f_0 ? pow(f_0 / fk, beta) : 1.0);
            den += e[k];
        }
        prior2[j] = den > 0 ? num / den : 1.0;
    }
}

/* Where calib_piece puts the statistic's values. */
typedef struct calib_sink {
    double **vals;
    size_t *count;
} calib_sink;

static void calib_lag(nt_mf *m, size_t j, size_t l, double num, double den2, void *ctx)
{
    calib_sink *sink = ctx;
    (void)l;
    if (den2 > 0)
        sink->vals[j][sink->count[j]++] = num / (m->sigma * sqrt(den2));
}

/* Appends to vals[j] (count[j] values so far) template j's statistic at
 * every lag of the piece y [n] (n <= nd_max) whose whole window lies in it. */
static void calib_piece(nt_mf *m, const double *y, size_t n, double **vals, size_t *count)
{
    const size_t st = (size_t)m->order;
    if (n < st + m->pre + m->post + 1)
        return;
    record rec;
    prepare_record(m, y, n, st, &rec);
    calib_sink sink = {vals, count};
    scan_lags(m, &rec, st + m->pre, n - m->post, m->stride, calib_lag, &sink);
}

int nt_mf_learn_noise(nt_mf *m, const double *x, const nt_mf_span *spans, size_t n_spans,
                      int relative, nt_error *err)
{
    int status = NT_OK;
    const size_t dec = m->dec;
    const double work_hz = m->rate_hz / (double)dec;
    size_t total = 0, n_pieces = 0;
    for (size_t k = 0; k < n_spans; k++)
        if (spans[k].end >= spans[k].begin + 2 * dec) {
            total += (spans[k].end - spans[k].begin) / dec;
            n_pieces++;
        }
    if (total < 4)
        return nt_error_set(err, NT_ERR_INVALID,
                            "matched filter: %zu noise samples (at least %zu needed)",
                            total * dec, 4 * dec);

    double *y = malloc(total * sizeof *y), *f = malloc(total * sizeof *f);
    double *b = malloc(total * sizeof *b);
    size_t *off = malloc((n_pieces + 1) * sizeof *off);
    double *vals[NT_MF_BANK_MAX] = {NULL};
    if (y == NULL || f == NULL || b == NULL || off == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "matched filter: out of memory");
        goto cleanup;
    }

    /* Pieces: each span made relative (if asked), block-averaged and
     * detrended (a line is bleaching, not noise). */
    size_t pos = 0, piece = 0, longest = 0;
    for (size_t k = 0; k < n_spans; k++) {
        if (spans[k].end < spans[k].begin + 2 * dec)
            continue;
        const size_t len_full = spans[k].end - spans[k].begin;
        const double *src = x + spans[k].begin;
        double mean = 0;
        for (size_t i = 0; i < len_full; i++)
            mean += src[i];
        mean /= (double)len_full;
        if (relative && !(mean > 0)) {
            status = nt_error_set(err, NT_ERR_INVALID,
                                  "matched filter: noise span [%zu, %zu) has mean %g, not > 0",
                                  spans[k].begin, spans[k].end, mean);
            goto cleanup;
        }
        size_t len = decimate(src, len_full, dec, y + pos);
        if (relative)
            for (size_t i = 0; i < len; i++)
                y[pos + i] = y[pos + i] / mean - 1.0;
        detrend(y + pos, len);
        off[piece++] = pos;
        pos += len;
        if (len > longest)
            longest = len;
    }
    off[piece] = pos;

    double as[NT_MF_AR_MAX + 1][NT_MF_AR_MAX + 1], err_var[NT_MF_AR_MAX + 1];
    int order = 0;
    double sigma;
    unsigned flags = 0;
    int p_max = AR_ORDER_MAX;
    if ((double)p_max > (double)total / 10.0)
        p_max = (int)(total / 10);
    if ((double)total < MIN_NOISE_S * work_hz || total < 16 || p_max < 1) {
        /* Too little for a spectrum: white noise, robust σ (f is scratch). */
        flags |= NT_MF_WHITE;
        sigma = nt_mad_sd(y, total, f);
        if (!(sigma > 0)) {
            double ss = 0;
            for (size_t i = 0; i < total; i++)
                ss += y[i] * y[i];
            sigma = sqrt(ss / (double)total);
        }
        memset(as, 0, sizeof as[0]);
        as[0][0] = 1.0;
    } else {
        int reached = burg(y, off, n_pieces, p_max, f, b, as, err_var);
        double n = (double)total, best = INFINITY;
        for (int p = 0; p <= reached; p++) {
            if (!(err_var[p] > 0))
                break;
            double aicc = n * log(err_var[p]) + 2.0 * (p + 1) * n / (n - p - 2);
            if (aicc < best) {
                best = aicc;
                order = p;
            }
        }
        sigma = sqrt(err_var[order]);
    }
    if (!(sigma > 0) || !isfinite(sigma)) {
        status = nt_error_set(err, NT_ERR_INVALID, "matched filter: the noise spans are constant");
        goto cleanup;
    }
    m->order = order;
    memcpy(m->a, as[order], sizeof m->a);
    m->sigma = sigma;
    m->have_model = 1;
    whiten_templates(m);

    /* Calibration: the statistic at every lag of the pieces whose window
     * lies inside them; pieces longer than nd_max are cut into overlapping
     * chunks so that no window is lost at the cuts. */
    double prior2[NT_MF_BANK_MAX];
    kappa_prior(m, longest, prior2);
    size_t count[NT_MF_BANK_MAX];
    for (size_t j = 0; j < m->n_bank; j++) {
        count[j] = 0;
        m->kappa[j] = sqrt(prior2[j]);
        vals[j] = malloc(total * sizeof *vals[j]);
        if (vals[j] == NULL) {
            status = nt_error_set(err, NT_ERR_NOMEM, "matched filter: out of memory");
            goto cleanup;
        }
    }
    const size_t span_w = (size_t)m->order + m->pre + m->post;
    const size_t step = m->nd_max > span_w ? m->nd_max - span_w : 1;
    for (size_t k = 0; k < n_pieces; k++)
        for (size_t s = off[k];; s += step) {
            size_t len = off[k + 1] - s < m->nd_max ? off[k + 1] - s : m->nd_max;
            calib_piece(m, y + s, len, vals, count);
            if (s + len >= off[k + 1] || step == 1)
                break;
        }
    int calibrated = 0;
    for (size_t j = 0; j < m->n_bank; j++) {
        if (count[j] < 8)
            continue;
        double n_eff = (double)count[j] / m->tau_s[j];
        double sd = nt_mad_sd(vals[j], count[j], f);
        double k2 = (n_eff * sd * sd + KAPPA_PRIOR_LAGS * prior2[j]) /
                    (n_eff + KAPPA_PRIOR_LAGS);
        m->kappa[j] = k2 > 1.0 ? sqrt(k2) : 1.0;
        if (n_eff >= 5)
            calibrated = 1;
    }
    if (!calibrated)
        flags |= NT_MF_UNCALIBRATED;
    m->model_flags = flags;
    m->thr_lags = 0;

cleanup:
    for (size_t j = 0; j < NT_MF_BANK_MAX; j++)
        free(vals[j]);
    free(y);
    free(f);
    free(b);
    free(off);
    return status;
}

/* ------------------------------------------------------------ execute */

/* Template j's calibrated statistic T/κ_j from lag_terms' terms; −∞ where
 * the template carries no information. */
static double calibrated(const nt_mf *m, size_t j, double num, double den2, double sigma)
{
    return den2 > 0 ? num / (sigma * sqrt(den2)) / m->kappa[j] : -INFINITY;
}

/* Where nt_mf_scan puts each lag's best statistic. */
typedef struct scan_sink {
    double *stat;
    unsigned char *kin;
} scan_sink;

static void keep_each(nt_mf *m, size_t j, size_t l, double num, double den2, void *ctx)
{
    scan_sink *s = ctx;
    double t = calibrated(m, j, num, den2, m->sigma);
    if (t > s->stat[l]) {
        s->stat[l] = t;
        if (s->kin != NULL)
            s->kin[l] = (unsigned char)j;
    }
}

size_t nt_mf_scan(nt_mf *m, const double *d, size_t n, double *stat, unsigned char *kin)
{
    if (n > m->n_max)
        n = m->n_max;
    const size_t nd = decimate(d, n, m->dec, m->x), st = (size_t)m->order;
    for (size_t b = 0; b < nd; b++) {
        stat[b] = -INFINITY;
        if (kin != NULL)
            kin[b] = 0;
    }
    if (nd < st + 2)
        return nd;
    record rec;
    prepare_record(m, m->x, nd, st, &rec);
    scan_sink sink = {stat, kin};
    scan_lags(m, &rec, st, nd - 2, NULL, keep_each, &sink);
    return nd;
}

/* The largest calibrated statistic over lags and templates, and where. */
typedef struct best_lag {
    double stat;
    double sigma;
    size_t dec;
    nt_mf_result *res;
} best_lag;

static void keep_best(nt_mf *m, size_t j, size_t l, double num, double den2, void *ctx)
{
    best_lag *b = ctx;
    double t = calibrated(m, j, num, den2, b->sigma);
    if (t > b->stat) {
        b->stat = t;
        b->res->onset = l * b->dec;
        b->res->kinetics = j;
        b->res->amplitude = num / den2;
        b->res->kappa = m->kappa[j];
    }
}

int nt_mf_execute(nt_mf *m, const double *d, size_t n, size_t n0, size_t n1, size_t from,
                  size_t to, double p_fa, unsigned flags, nt_mf_result *res, nt_error *err)
{
    memset(res, 0, sizeof *res);
    res->stat = res->threshold = res->amplitude = res->sigma = NAN;
    res->kappa = 1.0;
    if (n > m->n_max)
        return nt_error_set(err, NT_ERR_INVALID,
                            "matched filter: trial of %zu samples (made for at most %zu)", n,
                            m->n_max);
    if (n1 > n || n1 < n0 + 4 * m->dec || to < from)
        return nt_error_set(err, NT_ERR_INVALID,
                            "matched filter: noise window [%zu, %zu), lags [%zu, %zu] in a "
                            "trial of %zu samples",
                            n0, n1, from, to, n);
    if (!(p_fa > 0 && p_fa < 0.5))
        return nt_error_set(err, NT_ERR_INVALID,
                            "matched filter: false-alarm probability %g is not in (0, 0.5)", p_fa);
    if ((flags & NT_MF_TRIAL_NOISE) || !m->have_model) {
        nt_mf_span span = {n0, n1};
        int status = nt_mf_learn_noise(m, d, &span, 1, 0, err);
        if (status != NT_OK)
            return status;
    }
    res->ar_order = m->order;
    res->flags = m->model_flags;

    /* The record on the block grid: block b is d[b·D, (b + 1)·D). */
    const size_t dec = m->dec;
    const size_t nd = decimate(d, n, dec, m->x);
    const size_t n0d = (n0 + dec - 1) / dec, n1d = n1 / dec;
    const size_t st = n0d + (size_t)m->order;
    if (nd < 2 || n1d < st + 1) {
        res->flags |= NT_MF_NO_LAGS;
        return NT_OK;
    }
    record rec;
    prepare_record(m, m->x, nd, st, &rec);

    /* σ: the model's, unless the trial's own noise window is clearly
     * noisier (beyond 3 standard errors of its robust σ): noise that grew
     * since the spans the model was learnt on. */
    double sigma = m->sigma;
    if (n1d >= st + 20) {
        size_t nb = n1d - st;
        double s_loc = nt_mad_sd(m->w + st, nb, m->work);
        if (s_loc > sigma * (1.0 + 3.0 * 0.825 / sqrt((double)nb))) {
            sigma = s_loc;
            res->flags |= NT_MF_LOCAL_SIGMA;
        }
    }
    res->sigma = sigma;

    size_t lo = (from + dec - 1) / dec, hi = to / dec;
    if (lo < st)
        lo = st;
    if (hi > nd - 2)
        hi = nd - 2;
    if (hi < lo) {
        res->flags |= NT_MF_NO_LAGS;
        return NT_OK;
    }
    res->threshold = nt_mf_threshold(m, hi - lo + 1, p_fa);

    best_lag best = {-INFINITY, sigma, m->dec, res};
    scan_lags(m, &rec, lo, hi, NULL, keep_best, &best);
    if (best.stat == -INFINITY) {
        res->flags |= NT_MF_NO_LAGS;
        return NT_OK;
    }
    res->stat = best.stat;
    res->detected = best.stat > res->threshold;
    return NT_OK;
}
