/*
 * filter_fft.c — zero-phase low-pass filtering in the frequency domain (FFTW).
 *
 * Method: the trace is extended at both ends by odd reflection about its end
 * samples (x[-k] = 2·x[0] - x[k], as scipy's filtfilt pads), transformed with
 * a real-to-complex FFT, every bin is multiplied by the real gain
 * |H(f)| = 1 / sqrt(1 + (f/fc)^(2n)) — a Butterworth magnitude with zero
 * phase, so peaks are not delayed — and transformed back; the padding is
 * dropped. Odd reflection keeps the value and the slope continuous at the
 * ends, so a bleaching trend does not make a step that would ring into the
 * data, and the circular wrap of the FFT falls in the padding, not the data.
 *
 * The padding is 8 periods of the cutoff (8 · rate/fc samples, at least 16,
 * at most n - 1): the impulse response of a Butterworth magnitude of order
 * <= 8 has decayed below 1e-3 of its peak by then. The FFT length is rounded
 * up to a multiple of 4 whose other prime factors are 2, 3, 5 and 7, where
 * FFTW is fastest: its real transforms of odd or singly even lengths are
 * 2-4 times slower (measured with FFTW 3.3.10: a forward and inverse pair of
 * 6075 = 3^5·5^2 points takes 86 µs, of 6144 = 2^11·3 points 21 µs); the
 * extra samples extend the right padding.
 *
 * The plans are made once per filter (FFTW_ESTIMATE: no measuring, and the
 * buffers are not touched) and reused for every trace of that length.
 * FFTW_MEASURE plans run 20-30 % faster but take 0.3-1 s to make, more than
 * the filtering of a whole recording. Threads share the plans and bring
 * their own buffers (nt_lowpass_scratch, FFTW's new-array execute, which is
 * thread-safe; planning is not, and happens only in nt_lowpass_create).
 */
#include "internal.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nt_lowpass_scratch {
    size_t n_fft;
    double *buf;        /* [n_fft] time domain, FFTW-aligned */
    fftw_complex *spec; /* [n_fft/2 + 1] */
};

struct nt_lowpass {
    size_t n;          /* trace length */
    size_t pad;        /* samples of reflection before the data */
    size_t n_fft;      /* transform length */
    double rate_hz;
    double cutoff_hz;
    int order;
    nt_lowpass_scratch own; /* the buffers the plans were made on */
    double *gain;      /* [n_fft/2 + 1] |H| / n_fft (the inverse FFT is unscaled) */
    fftw_plan forward;
    fftw_plan inverse;
};

/* Allocates the buffers of s for n_fft points; 0, or -1 when out of memory
 * (s then holds what was allocated, for free_buffers). */
static int alloc_buffers(nt_lowpass_scratch *s, size_t n_fft)
{
    s->n_fft = n_fft;
    s->buf = fftw_alloc_real(n_fft);
    s->spec = fftw_alloc_complex(n_fft / 2 + 1);
    return s->buf != NULL && s->spec != NULL ? 0 : -1;
}

static void free_buffers(nt_lowpass_scratch *s)
{
    fftw_free(s->buf);
    fftw_free(s->spec);
    s->buf = NULL;
    s->spec = NULL;
}

int nt_lowpass_scratch_create(const nt_lowpass *f, nt_lowpass_scratch **out, nt_error *err)
{
    *out = NULL;
    nt_lowpass_scratch *s = calloc(1, sizeof *s);
    if (s == NULL || alloc_buffers(s, f->n_fft) != 0) {
        nt_lowpass_scratch_destroy(s);
        return nt_error_set(err, NT_ERR_NOMEM, "low-pass: out of memory for %zu-point FFT",
                            f->n_fft);
    }
    *out = s;
    return NT_OK;
}

void nt_lowpass_scratch_destroy(nt_lowpass_scratch *s)
{
    if (s == NULL)
        return;
    free_buffers(s);
    free(s);
}

size_t nt_fft_smooth_size(size_t n)
{
    for (size_t m = (n + 3) / 4 * 4;; m += 4) {
        size_t r = m;
        while (r % 2 == 0) r /= 2;
        while (r % 3 == 0) r /= 3;
        while (r % 5 == 0) r /= 5;
        while (r % 7 == 0) r /= 7;
        if (r == 1)
            return m;
    }
}

static double butterworth_gain(double f_hz, double cutoff_hz, int order)
{
    return 1.0 / sqrt(1.0 + pow(f_hz / cutoff_hz, 2.0 * order));
}

int nt_lowpass_create(size_t n, double rate_hz, double cutoff_hz, int order,
                      nt_lowpass **out, nt_error *err)
{
    *out = NULL;
    if (n < 2)
        return nt_error_set(err, NT_ERR_INVALID, "low-pass: trace of %zu samples is too short", n);
    if (!(rate_hz > 0) || !isfinite(rate_hz))
        return nt_error_set(err, NT_ERR_INVALID, "low-pass: rate %g Hz is not positive", rate_hz);
    if (!(cutoff_hz > 0) || !isfinite(cutoff_hz))
        return nt_error_set(err, NT_ERR_INVALID, "low-pass: cutoff %g Hz is not positive",
                            cutoff_hz);
    if (order < 1 || order > 16)
        return nt_error_set(err, NT_ERR_INVALID, "low-pass: order %d is not in 1-16", order);
    if (n > ((size_t)1 << 40))
        return nt_error_set(err, NT_ERR_TOO_LARGE, "low-pass: trace of %zu samples is too long", n);

    nt_lowpass *f = calloc(1, sizeof *f);
    if (f == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "low-pass: out of memory");
    int status = NT_OK;
    double pad = ceil(8.0 * rate_hz / cutoff_hz);
    if (pad < 16)
        pad = 16;
    if (pad > (double)(n - 1))
        pad = (double)(n - 1);
    f->n = n;
    f->pad = (size_t)pad;
    f->n_fft = nt_fft_smooth_size(n + 2 * f->pad);
    f->rate_hz = rate_hz;
    f->cutoff_hz = cutoff_hz;
    f->order = order;

    size_t n_bins = f->n_fft / 2 + 1;
    f->gain = malloc(n_bins * sizeof *f->gain);
    if (alloc_buffers(&f->own, f->n_fft) != 0 || f->gain == NULL) {
        status = nt_error_set(err, NT_ERR_NOMEM, "low-pass: out of memory for %zu-point FFT",
                              f->n_fft);
        goto cleanup;
    }
    for (size_t k = 0; k < n_bins; k++) {
        double f_hz = (double)k * rate_hz / (double)f->n_fft;
        f->gain[k] = butterworth_gain(f_hz, cutoff_hz, order) / (double)f->n_fft;
    }
    f->forward = fftw_plan_dft_r2c_1d((int)f->n_fft, f->own.buf, f->own.spec, FFTW_ESTIMATE);
    f->inverse = fftw_plan_dft_c2r_1d((int)f->n_fft, f->own.spec, f->own.buf, FFTW_ESTIMATE);
    if (f->forward == NULL || f->inverse == NULL) {
        status = nt_error_set(err, NT_ERR_INTERNAL, "low-pass: FFTW could not plan a %zu-point FFT",
                              f->n_fft);
        goto cleanup;
    }
    *out = f;
    f = NULL;
cleanup:
    nt_lowpass_destroy(f);
    return status;
}

void nt_lowpass_execute_in(const nt_lowpass *f, nt_lowpass_scratch *s, const double *x,
                           double *y)
{
    const size_t n = f->n, pad = f->pad;
    double *b = s->buf;
    fftw_complex *spec = s->spec;
    const double first = x[0], last = x[n - 1];

    for (size_t k = 1; k <= pad; k++)
        b[pad - k] = 2.0 * first - x[k];
    memmove(b + pad, x, n * sizeof *b);
    /* Right padding: reflect while there are samples to reflect, then hold. */
    size_t right = f->n_fft - (pad + n), reflect = right < n - 1 ? right : n - 1;
    for (size_t k = 1; k <= reflect; k++)
        b[pad + n - 1 + k] = 2.0 * last - x[n - 1 - k];
    for (size_t k = reflect + 1; k <= right; k++)
        b[pad + n - 1 + k] = 2.0 * last - x[0];

    fftw_execute_dft_r2c(f->forward, b, spec);
    size_t n_bins = f->n_fft / 2 + 1;
    for (size_t k = 0; k < n_bins; k++) {
        spec[k][0] *= f->gain[k];
        spec[k][1] *= f->gain[k];
    }
    fftw_execute_dft_c2r(f->inverse, spec, b);
    memmove(y, b + pad, n * sizeof *y);
}

void nt_lowpass_execute(nt_lowpass *f, const double *x, double *y)
{
    nt_lowpass_execute_in(f, &f->own, x, y);
}

double nt_lowpass_gain(const nt_lowpass *f, double f_hz)
{
    return butterworth_gain(fabs(f_hz), f->cutoff_hz, f->order);
}

size_t nt_lowpass_length(const nt_lowpass *f) { return f->n; }
double nt_lowpass_rate_hz(const nt_lowpass *f) { return f->rate_hz; }
double nt_lowpass_cutoff_hz(const nt_lowpass *f) { return f->cutoff_hz; }
int nt_lowpass_order(const nt_lowpass *f) { return f->order; }

void nt_lowpass_destroy(nt_lowpass *f)
{
    if (f == NULL)
        return;
    if (f->forward != NULL)
        fftw_destroy_plan(f->forward);
    if (f->inverse != NULL)
        fftw_destroy_plan(f->inverse);
    free_buffers(&f->own);
    free(f->gain);
    free(f);
}
