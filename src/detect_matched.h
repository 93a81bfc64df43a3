/*
 * detect_matched.h — whitened matched-filter detection of one trial (private).
 *
 * Did the ROI respond? The unfiltered ΔF/F around one stimulus is whitened
 * with an autoregressive model of its noise and correlated with a small bank
 * of response templates A·(1 − e^(−t/τon))·e^(−t/τoff) at every onset lag
 * of the search range; the largest statistic is compared with a threshold
 * set for a chosen false-alarm probability per trial. The method and its
 * references are in detect_matched.c.
 *
 * Typical use, one object per worker thread and trial length:
 *
 *     nt_mf *mf;
 *     nt_mf_create(n_max, rate_hz, NULL, 0, &mf, &err);       // default bank
 *     for each ROI:
 *         nt_mf_learn_noise(mf, raw, quiet, n_quiet, 1, &err);  // once per ROI
 *         for each trial:
 *             nt_mf_execute(mf, dff, n, n0, n1, from, to, 0.002, 0, &res, &err);
 *     nt_mf_destroy(mf);
 *
 * The noise model needs noise: learn it once per ROI on every stretch of the
 * raw trace that holds no response (before the first stimulus, and from
 * about 60 s after each stimulus to the next one minus its jitter), not on
 * one trial's 10 s baseline. Measured on recordings made like
 * scripts/accuracy's (white, AR(1) and 1/f noise, 40 % no-release trials,
 * ΔF/F as the baseline stage makes it), false alarms per no-release trial /
 * recall at SNR 2-3 / recall at SNR >= 4:
 *     model per ROI, p_fa 0.002:  1.0-1.2 % / 0.84-0.88 / 0.998-1.000
 *     model per ROI, p_fa 0.005:  1.4-2.0 % / 0.86-0.90 / 0.999-1.000
 *     model per trial (10 s):     7.6 %     / 0.81      / 0.975 (10 Hz)
 * (5, 10 and 50 Hz). Most false alarms left are in 1/f noise (2-5 %), whose
 * power below 0.1 Hz 20-150 s of noise cannot pin down.
 *
 * Units: every index is a sample index into the array it refers to; every
 * time is in seconds; σ and amplitudes are in the units of the data (ΔF/F).
 */
#ifndef NT_DETECT_MATCHED_H
#define NT_DETECT_MATCHED_H

#include "internal.h"

#include <stddef.h>

/* The largest AR order nt_mf_set_noise accepts (learnt models use <= 8). */
#define NT_MF_AR_MAX 32
/* The largest template bank. */
#define NT_MF_BANK_MAX 8
/* The shortest trace (samples) a detector can be made for. */
#define NT_MF_MIN_SAMPLES 16
/* The statistic at onset lag l is computed on the window [l − NT_MF_PRE_S,
 * l + NT_MF_POST_S) (cut at the ends of the data): long enough for the slow
 * kinetics to keep most of their SNR, short enough that a straight nuisance
 * line absorbs the slow wander of 1/f noise (see detect_matched.c). */
#define NT_MF_PRE_S 10.0
#define NT_MF_POST_S 30.0

/* One template's kinetics, in seconds (0 < tau_on_s, 0 < tau_off_s). */
typedef struct nt_mf_kinetics {
    double tau_on_s;
    double tau_off_s;
} nt_mf_kinetics;

/* A half-open range of sample indices [begin, end). */
typedef struct nt_mf_span {
    size_t begin;
    size_t end;
} nt_mf_span;

/* Result flags. */
enum {
    NT_MF_WHITE = 1u << 0,       /* under 3 s of noise data: white noise was assumed */
    NT_MF_UNCALIBRATED = 1u << 1,/* too little noise data to check the statistic's spread
                                    (the model's normalisation was used alone) */
    NT_MF_NO_LAGS = 1u << 2,     /* the search range held no usable lag: not detected */
    NT_MF_LOCAL_SIGMA = 1u << 3  /* the trial's baseline was noisier than the noise model:
                                    its own σ was used */
};

/* Execute flags. */
enum {
    /* Fit the noise model on [n0, n1) of this trial's d (as nt_mf_learn_noise
     * with relative = 0) instead of using the model learnt before. Implied when
     * no model has been learnt or set. */
    NT_MF_TRIAL_NOISE = 1u << 0
};

/* The outcome of one trial. */
typedef struct nt_mf_result {
    int detected;      /* stat > threshold */
    size_t onset;      /* index in d of the best onset lag (the template is 0 there) */
    size_t kinetics;   /* index in the bank of the best template */
    double stat;       /* largest calibrated statistic over the lags and the bank
                          (~N(0,1) at each lag under noise alone) */
    double threshold;  /* the level for the requested false-alarm probability */
    double amplitude;  /* least-squares peak of the best template at onset (units of d) */
    double sigma;      /* innovation σ of the whitened, block-averaged data (units of d) */
    double kappa;      /* the best template's calibration factor (>= 1) */
    int ar_order;      /* AR order p of the noise model (0: white) */
    unsigned flags;    /* NT_MF_* result flags */
} nt_mf_result;

/* The matched-filter detector: FFT plans, templates and buffers for traces
 * of up to n_max samples at one rate, and the current noise model. */
typedef struct nt_mf nt_mf;

/*
 * The default bank, chosen by measurement over the lab's kinetics (fast:
 * τon 0.1-0.5 s, τoff 1-6 s; slow: τon 1.5-4 s, τoff 10-30 s): every
 * response in those ranges keeps >= 95 % of its matched-filter SNR with its
 * nearest template. *n receives the number of templates. Static storage.
 */
const nt_mf_kinetics *nt_mf_default_bank(size_t *n);

/*
 * Creates a detector for trials of up to n_max samples (16 <= n_max <=
 * 2^24) sampled at rate_hz (> 0) with the templates bank [n_bank]
 * (n_bank <= NT_MF_BANK_MAX; bank NULL or n_bank 0: the default bank).
 * FFTW plans are made here, under a mutex shared with every other
 * nt_mf_create/nt_mf_destroy (see nt_xcorr_create: other FFTW planning,
 * such as nt_lowpass_create, must not run at the same moment in another
 * thread). One object per thread: executes reuse its buffers.
 * On success *out is new; free with nt_mf_destroy.
 */
int nt_mf_create(size_t n_max, double rate_hz, const nt_mf_kinetics *bank, size_t n_bank,
                 nt_mf **out, nt_error *err);

/* Frees m. Accepts NULL. */
void nt_mf_destroy(nt_mf *m);

/* The sample count, rate and bank the detector was made for, and its block
 * length D (traces are block-averaged by D to about 10 Hz; onsets are
 * multiples of D). */
size_t nt_mf_max_length(const nt_mf *m);
double nt_mf_rate_hz(const nt_mf *m);
const nt_mf_kinetics *nt_mf_bank(const nt_mf *m, size_t *n);
size_t nt_mf_block(const nt_mf *m);

/*
 * Learns the noise model from noise-only data: x [..] holds the samples,
 * spans [n_spans] the ranges of x that contain no response (any lengths; x
 * may be longer than n_max, e.g. the ROI's whole raw trace with the trial
 * windows left out). Each span is made zero-mean — with relative != 0 it is
 * first divided by its mean (x/mean − 1: raw counts become relative units,
 * matching ΔF/F) — and its least-squares line is removed (photobleaching).
 * An AR(p) model is fitted to all spans at once by Burg's method, p chosen
 * by AICc up to min(NT_MF_AR_MAX, max(8, 0.8·rate_hz), samples/10); with
 * fewer than 3 s of samples in all (or fewer than 16), white noise is
 * assumed (σ: 1.4826·MAD). Then the statistic is computed at every lag of
 * the spans where it fits, and its robust spread per template becomes that
 * template's calibration factor κ >= 1 (shrunk towards 1 when the spans
 * hold few independent lags).
 * Returns NT_OK; NT_ERR_INVALID when the spans hold fewer than 4 samples in
 * all, when relative and a span's mean is not positive, or when the data are
 * constant (the model is then unchanged); NT_ERR_NOMEM.
 */
int nt_mf_learn_noise(nt_mf *m, const double *x, const nt_mf_span *spans, size_t n_spans,
                      int relative, nt_error *err);

/*
 * The calibrated statistic at every onset lag of the record d [n] (n <=
 * n_max, units of the learnt noise), for finding transients anywhere in a
 * trace: stat[b] is the largest T/κ over the templates with the onset at
 * block b (sample b·D), kin[b] (when kin is not NULL) that template's index;
 * -INFINITY before the AR filter has its p samples and where a template
 * carries no information. The window of every lag is the detector's
 * [l − pre, l + post), cut at the ends of d. Uses the current noise model
 * (nt_mf_learn_noise first). Returns the number of blocks, n / D (at most
 * nd_max).
 */
size_t nt_mf_scan(nt_mf *m, const double *d, size_t n, double *stat, unsigned char *kin);

/*
 * Sets the noise model, at the working rate (after block-averaging by
 * nt_mf_block): the prediction-error filter a [order + 1] (a[0] = 1; may be
 * NULL when order is 0; whitened u[t] = Σ a[i]·x[t − i]) and the innovation
 * σ (> 0) of the block-averaged data. No calibration (κ = 1). Order 0 is
 * white noise of SD sigma.
 * Returns NT_OK or NT_ERR_INVALID (order > NT_MF_AR_MAX, a[0] != 1, σ <= 0).
 */
int nt_mf_set_noise(nt_mf *m, const double *a, int order, double sigma, nt_error *err);

/*
 * Detection on one trial. d [n] (n <= n_max, finite): the unfiltered ΔF/F of
 * one ROI on a regular time grid, from the start of the noise window to the
 * end of the trial (the next stimulus minus its jitter, or the end of the
 * decay window; 30 s after the last onset searched is all the statistic
 * uses). [n0, n1): the pre-stimulus noise window (n1 at the stimulus minus
 * its jitter; 10 s or more). [from, to]: the onset lags searched (e.g. the
 * stimulus − 2 frames to the stimulus + 5 s), clamped to [n0 + p, n − 2] on
 * the block grid (traces are block-averaged by nt_mf_block; res->onset is a
 * multiple of it). p_fa: the false-alarm probability per trial (0 < p_fa <
 * 0.5; 0.002 keeps the measured rate near 1 %, see the head of this file).
 * flags: NT_MF_TRIAL_NOISE, or 0 to use the model learnt last.
 * Offset and slope of d on each lag's window are nuisance parameters,
 * estimated jointly with the template's amplitude: a baseline that is off,
 * or a drift line extrapolated from before the stimulus, do not bias the
 * statistic. The model's σ is used unless the trial's own noise window is
 * clearly noisier (NT_MF_LOCAL_SIGMA).
 * Fills *res. Returns NT_OK; NT_ERR_INVALID for inconsistent indices
 * (n > n_max, n1 > n, n1 < n0 + 4 blocks, to < from) or p_fa out of range,
 * or a trial-noise fit that failed; NT_ERR_NOMEM.
 */
int nt_mf_execute(nt_mf *m, const double *d, size_t n, size_t n0, size_t n1, size_t from,
                  size_t to, double p_fa, unsigned flags, nt_mf_result *res, nt_error *err);

/* Template j's calibration factor κ_j (>= 1) under the current noise model
 * (1 for a model set with nt_mf_set_noise): how much wider than N(0,1) its
 * statistic spread on the noise spans. j < the bank's size. */
double nt_mf_kappa(const nt_mf *m, size_t j);

/*
 * The threshold on the calibrated statistic for n_lags onset lags and the
 * current model's bank: the u with Σ_j [Q(u) + (n_lags − 1)·P(X_l <= u <
 * X_{l+1})] = p_fa, X_l, X_{l+1} being standard normal with the correlation
 * of template j's statistic at adjacent lags (an upper bound on the
 * probability that the largest statistic exceeds u under noise alone).
 */
double nt_mf_threshold(nt_mf *m, size_t n_lags, double p_fa);

#endif /* NT_DETECT_MATCHED_H */
