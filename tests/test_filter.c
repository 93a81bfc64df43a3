/* test_filter.c — the FFT low-pass checked by its frequency response,
 * its zero phase and its edge handling. */
#include "internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#define N 600
#define RATE 8.33

static double x[N], y[N];

/* Amplitude of the sinusoid at f_hz in y over [i0, i1), by least squares
 * on sin and cos. */
static double amplitude_at(const double *s, size_t i0, size_t i1, double f_hz)
{
    double ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
    for (size_t i = i0; i < i1; i++) {
        double w = 2 * M_PI * f_hz * (double)i / RATE;
        double si = sin(w), co = cos(w);
        ss += si * si; cc += co * co; sc += si * co;
        ys += s[i] * si; yc += s[i] * co;
    }
    double det = ss * cc - sc * sc;
    double a = (ys * cc - yc * sc) / det, b = (yc * ss - ys * sc) / det;
    return hypot(a, b);
}

static nt_lowpass *make(double cutoff, int order)
{
    nt_lowpass *f = NULL;
    cr_assert_eq(nt_lowpass_create(N, RATE, cutoff, order, &f, NULL), NT_OK);
    return f;
}

TestSuite(filter);

Test(filter, passes_dc_exactly)
{
    nt_lowpass *f = make(2.0, 4);
    for (size_t i = 0; i < N; i++)
        x[i] = 1234.5;
    nt_lowpass_execute(f, x, y);
    for (size_t i = 0; i < N; i++)
        cr_assert_float_eq(y[i], 1234.5, 1e-9);
    nt_lowpass_destroy(f);
}

Test(filter, magnitude_response_matches_butterworth)
{
    const double cutoff = 1.5;
    nt_lowpass *f = make(cutoff, 4);
    const double freqs[] = {0.2, 1.0, 1.5, 2.0, 3.0};
    for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++) {
        for (size_t i = 0; i < N; i++)
            x[i] = sin(2 * M_PI * freqs[k] * (double)i / RATE);
        nt_lowpass_execute(f, x, y);
        double want = 1.0 / sqrt(1.0 + pow(freqs[k] / cutoff, 8.0));
        /* Away from the edges the output is the sinusoid times |H(f)|. */
        double got = amplitude_at(y, 100, N - 100, freqs[k]);
        cr_assert_float_eq(got, want, 0.01, "f=%g Hz: gain %g, want %g", freqs[k], got, want);
        cr_assert_float_eq(nt_lowpass_gain(f, freqs[k]), want, 1e-12);
    }
    /* At the cutoff the magnitude is 1/sqrt(2) whatever the order. */
    cr_assert_float_eq(nt_lowpass_gain(f, cutoff), M_SQRT1_2, 1e-12);
    nt_lowpass_destroy(f);
}

Test(filter, zero_phase_keeps_peak_in_place)
{
    nt_lowpass *f = make(1.0, 4);
    for (size_t i = 0; i < N; i++) {
        double d = ((double)i - 300.0) / RATE;
        x[i] = exp(-d * d / (2 * 0.5 * 0.5)); /* Gaussian pulse at sample 300 */
    }
    nt_lowpass_execute(f, x, y);
    size_t imax = 0;
    for (size_t i = 0; i < N; i++)
        if (y[i] > y[imax])
            imax = i;
    cr_assert_eq(imax, 300);
    for (size_t k = 1; k < 50; k++)
        cr_assert_float_eq(y[300 - k], y[300 + k], 1e-9, "asymmetry at +-%zu", k);
    nt_lowpass_destroy(f);
}

Test(filter, ramp_does_not_ring_at_the_edges)
{
    /* A bleaching-like slope: odd reflection makes it continuous in value
     * and slope, so the filter must pass it nearly unchanged to the ends. */
    nt_lowpass *f = make(2.0, 4);
    for (size_t i = 0; i < N; i++)
        x[i] = 5000.0 - 3.0 * (double)i;
    nt_lowpass_execute(f, x, y);
    for (size_t i = 0; i < N; i++)
        cr_assert_float_eq(y[i], x[i], 0.05, "sample %zu: %g vs %g", i, y[i], x[i]);
    nt_lowpass_destroy(f);
}

Test(filter, removes_white_noise_variance_by_bandwidth)
{
    /* White noise of unit variance keeps about the fraction of the band the
     * filter passes: integral of |H|^2 over 0..Nyquist / Nyquist. */
    nt_lowpass *f = make(1.0, 4);
    unsigned long s = 12345;
    double var = 0;
    for (size_t i = 0; i < N; i++) {
        double u1, u2;
        s = s * 6364136223846793005ul + 1442695040888963407ul;
        u1 = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        s = s * 6364136223846793005ul + 1442695040888963407ul;
        u2 = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        x[i] = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    }
    nt_lowpass_execute(f, x, y);
    for (size_t i = 50; i < N - 50; i++)
        var += y[i] * y[i];
    var /= (double)(N - 100);
    double nyq = RATE / 2, band = 0;
    for (int k = 0; k < 10000; k++) {
        double g = nt_lowpass_gain(f, nyq * (k + 0.5) / 10000);
        band += g * g / 10000;
    }
    cr_assert(var > 0.6 * band && var < 1.5 * band, "variance %g, expected about %g", var, band);
    nt_lowpass_destroy(f);
}

Test(filter, rejects_bad_arguments)
{
    nt_lowpass *f = (nt_lowpass *)&f;
    nt_error err;
    cr_assert_eq(nt_lowpass_create(1, RATE, 2, 4, &f, &err), NT_ERR_INVALID);
    cr_assert_null(f);
    cr_assert_eq(nt_lowpass_create(N, 0, 2, 4, &f, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_lowpass_create(N, RATE, -1, 4, &f, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_lowpass_create(N, RATE, 2, 0, &f, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "order") != NULL);
    nt_lowpass_destroy(NULL);
}

Test(filter, short_traces_are_filtered)
{
    /* Padding is capped at n - 1: a 3-sample trace still filters. */
    nt_lowpass *f = NULL;
    cr_assert_eq(nt_lowpass_create(3, RATE, 2, 4, &f, NULL), NT_OK);
    double a[3] = {1, 1, 1}, b[3];
    nt_lowpass_execute(f, a, b);
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(b[i], 1.0, 1e-12);
    nt_lowpass_destroy(f);
}

/* Several threads filter with one filter, each in its own scratch: the
 * result is the filter's own, to the bit, and the scratch is reusable. */
Test(filter, scratch_filters_exactly_like_the_filter)
{
    nt_lowpass *f = make(2.0, 4);
    nt_lowpass_scratch *s1 = NULL, *s2 = NULL;
    cr_assert_eq(nt_lowpass_scratch_create(f, &s1, NULL), NT_OK);
    cr_assert_eq(nt_lowpass_scratch_create(f, &s2, NULL), NT_OK);
    static double a[N], b[N];
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < N; i++)
            x[i] = 1000 + 50 * sin(0.05 * (double)(i * (k + 1))) + (double)(i % 7);
        nt_lowpass_execute(f, x, y);
        nt_lowpass_execute_in(f, k % 2 ? s1 : s2, x, a);
        memcpy(b, x, sizeof b);
        nt_lowpass_execute_in(f, s1, b, b); /* in place */
        cr_assert(memcmp(y, a, sizeof a) == 0 && memcmp(y, b, sizeof b) == 0, "pass %d", k);
    }
    nt_lowpass_scratch_destroy(s1);
    nt_lowpass_scratch_destroy(s2);
    nt_lowpass_scratch_destroy(NULL);
    nt_lowpass_destroy(f);
}

/* Traces of lengths that round the FFT up differently are all filtered
 * without edge ringing (a ramp stays a ramp). */
Test(filter, every_transform_length_keeps_a_ramp)
{
    static double r[N], out[N];
    for (size_t n = 500; n < 520; n++) {
        nt_lowpass *f = NULL;
        cr_assert_eq(nt_lowpass_create(n, RATE, 2.0, 4, &f, NULL), NT_OK);
        for (size_t i = 0; i < n; i++)
            r[i] = 100 + 0.5 * (double)i;
        nt_lowpass_execute(f, r, out);
        for (size_t i = 0; i < n; i++)
            cr_assert(fabs(out[i] - r[i]) < 0.01, "n %zu, sample %zu: %g", n, i, out[i] - r[i]);
        nt_lowpass_destroy(f);
    }
}
