/*
 * filter_xcorr.h — FFT cross-correlation for one transform length (private).
 *
 * The only FFTW user besides filter_fft.c: the house keeps fftw3.h inside
 * filter files, so the matched-filter detector (detect_matched.c) reaches
 * FFTW through this small interface.
 */
#ifndef NT_FILTER_XCORR_H
#define NT_FILTER_XCORR_H

#include "internal.h"

#include <stddef.h>

/* Real FFT plans and aligned buffers for one transform length. */
typedef struct nt_xcorr nt_xcorr;

/*
 * Creates a correlator whose transform length is the smallest multiple of 4
 * >= min_length with no prime factor above 7 (where FFTW is fastest). The
 * plans are made here (FFTW_ESTIMATE) under a process-wide mutex that
 * serialises every nt_xcorr_create and nt_xcorr_destroy; FFTW's planner is
 * not thread-safe, so the caller must not plan with FFTW elsewhere (e.g.
 * nt_lowpass_create) at the same moment from another thread.
 * On success *out is new; free with nt_xcorr_destroy.
 */
int nt_xcorr_create(size_t min_length, nt_xcorr **out, nt_error *err);

/* The transform length N, and the number of spectrum bins N/2 + 1. */
size_t nt_xcorr_length(const nt_xcorr *x);
size_t nt_xcorr_bins(const nt_xcorr *x);

/*
 * The spectrum of in [n] (n <= N), zero-padded to N, into spec
 * [2 · nt_xcorr_bins] (re, im interleaved). Uses the correlator's buffers:
 * one thread per correlator.
 */
void nt_xcorr_spectrum(nt_xcorr *x, const double *in, size_t n, double *spec);

/*
 * The same spectrum, left in the correlator: returns it (re, im
 * interleaved, nt_xcorr_bins pairs), valid until the next transform of x.
 * It may be passed to nt_xcorr_correlate as either spectrum.
 */
const double *nt_xcorr_transform(nt_xcorr *x, const double *in, size_t n);

/*
 * The circular cross-correlation out[l] = Σ_k a[(l + k) mod N] · b[k] for
 * l in [0, n_out) (n_out <= N), from the spectra of a and b (as made by
 * nt_xcorr_spectrum). The caller avoids the wrap by zero-padding.
 */
void nt_xcorr_correlate(nt_xcorr *x, const double *spec_a, const double *spec_b, double *out,
                        size_t n_out);

/* Frees x. Accepts NULL. */
void nt_xcorr_destroy(nt_xcorr *x);

#endif /* NT_FILTER_XCORR_H */
