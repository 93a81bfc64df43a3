/*
 * filter_xcorr.c — FFT cross-correlation with FFTW, for the matched filter.
 *
 * Method: both sequences are zero-padded to N and transformed with a
 * real-to-complex FFT; the product A(f)·conj(B(f)) is transformed back
 * (unscaled by FFTW, so divided by N here), giving the circular
 * cross-correlation at every lag in O(N log N). The length is rounded up as
 * in filter_fft.c (a multiple of 4 whose other prime factors are 2, 3, 5, 7).
 *
 * The forward and inverse transforms have separate buffers, so that the
 * input's zero padding survives a correlation (only what the previous input
 * filled is cleared again) and a spectrum can be read in place
 * (nt_xcorr_transform) while correlations are taken against it.
 *
 * FFTW's planner is not thread-safe (only fftw_execute* is): plans are made
 * and destroyed under one static mutex. Each correlator owns its buffers,
 * so different threads may use different correlators at once.
 */
#include "filter_xcorr.h"

#include <fftw3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct nt_xcorr {
    size_t n_fft;
    double *buf;        /* [n_fft] forward input, FFTW-aligned; 0 from `filled` on */
    size_t filled;
    fftw_complex *spec; /* [n_fft/2 + 1] forward output */
    fftw_complex *prod; /* [n_fft/2 + 1] inverse input */
    double *out;        /* [n_fft] inverse output */
    fftw_plan forward;
    fftw_plan inverse;
};

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

int nt_xcorr_create(size_t min_length, nt_xcorr **out, nt_error *err)
{
    *out = NULL;
    if (min_length < 4)
        min_length = 4;
    if (min_length > ((size_t)1 << 30))
        return nt_error_set(err, NT_ERR_TOO_LARGE, "correlator: %zu-point FFT is too long",
                            min_length);
    nt_xcorr *x = calloc(1, sizeof *x);
    if (x == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "correlator: out of memory");
    int status = NT_OK;
    x->n_fft = nt_fft_smooth_size(min_length);
    x->buf = fftw_alloc_real(x->n_fft);
    x->spec = fftw_alloc_complex(x->n_fft / 2 + 1);
    x->prod = fftw_alloc_complex(x->n_fft / 2 + 1);
    x->out = fftw_alloc_real(x->n_fft);
    if (x->buf == NULL || x->spec == NULL || x->prod == NULL || x->out == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "correlator: out of memory for %zu-point FFT",
                              x->n_fft);
        goto cleanup;
    }
    pthread_mutex_lock(&plan_lock);
    x->forward = fftw_plan_dft_r2c_1d((int)x->n_fft, x->buf, x->spec, FFTW_ESTIMATE);
    x->inverse = fftw_plan_dft_c2r_1d((int)x->n_fft, x->prod, x->out, FFTW_ESTIMATE);
    pthread_mutex_unlock(&plan_lock);
    if (x->forward == NULL || x->inverse == NULL) {
        status = nt_error_set(err, NT_ERR_INTERNAL,
                              "correlator: FFTW could not plan a %zu-point FFT", x->n_fft);
        goto cleanup;
    }
    memset(x->buf, 0, x->n_fft * sizeof *x->buf);
    x->filled = 0;
    *out = x;
    x = NULL;
cleanup:
    nt_xcorr_destroy(x);
    return status;
}

size_t nt_xcorr_length(const nt_xcorr *x) { return x->n_fft; }
size_t nt_xcorr_bins(const nt_xcorr *x) { return x->n_fft / 2 + 1; }

const double *nt_xcorr_transform(nt_xcorr *x, const double *in, size_t n)
{
    if (n > x->n_fft)
        n = x->n_fft;
    memcpy(x->buf, in, n * sizeof *x->buf);
    if (x->filled > n)
        memset(x->buf + n, 0, (x->filled - n) * sizeof *x->buf);
    x->filled = n;
    fftw_execute(x->forward);
    return (const double *)x->spec;
}

void nt_xcorr_spectrum(nt_xcorr *x, const double *in, size_t n, double *spec)
{
    memcpy(spec, nt_xcorr_transform(x, in, n), nt_xcorr_bins(x) * sizeof *x->spec);
}

void nt_xcorr_correlate(nt_xcorr *x, const double *spec_a, const double *spec_b, double *out,
                        size_t n_out)
{
    const size_t n_bins = nt_xcorr_bins(x);
    const double scale = 1.0 / (double)x->n_fft;
    for (size_t k = 0; k < n_bins; k++) {
        double ar = spec_a[2 * k], ai = spec_a[2 * k + 1];
        double br = spec_b[2 * k], bi = spec_b[2 * k + 1];
        /* A · conj(B) */
        x->prod[k][0] = (ar * br + ai * bi) * scale;
        x->prod[k][1] = (ai * br - ar * bi) * scale;
    }
    fftw_execute(x->inverse);
    if (n_out > x->n_fft)
        n_out = x->n_fft;
    memcpy(out, x->out, n_out * sizeof *out);
}

void nt_xcorr_destroy(nt_xcorr *x)
{
    if (x == NULL)
        return;
    pthread_mutex_lock(&plan_lock);
    if (x->forward != NULL)
        fftw_destroy_plan(x->forward);
    if (x->inverse != NULL)
        fftw_destroy_plan(x->inverse);
    pthread_mutex_unlock(&plan_lock);
    fftw_free(x->buf);
    fftw_free(x->spec);
    fftw_free(x->prod);
    fftw_free(x->out);
    free(x);
}
