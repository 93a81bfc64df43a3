/*
 * synth.h — synthetic signals of known answer for the tests: a seeded
 * Gaussian noise generator and the lab's response model
 * A·(1 - e^(-t/τon))·e^(-t/τoff) after a latency.
 */
#ifndef NT_TEST_SYNTH_H
#define NT_TEST_SYNTH_H

#include "nirtrace.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct synth_rng {
    uint64_t s;
} synth_rng;

/* splitmix64: small, seeded, the same on every platform. */
static inline uint64_t synth_next(synth_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline double synth_uniform(synth_rng *r)
{
    return ((double)(synth_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal by Box–Muller. */
static inline double synth_gauss(synth_rng *r)
{
    double u1 = synth_uniform(r), u2 = synth_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The response model at time t after its onset (0 before). */
static inline double synth_response(double t, double amp_scale, double tau_on, double tau_off)
{
    if (t <= 0)
        return 0;
    return amp_scale * (1.0 - exp(-t / tau_on)) * exp(-t / tau_off);
}

/* Peak value and time of the unit-scale model (closed form). */
static inline double synth_peak_time(double tau_on, double tau_off)
{
    return tau_on * log((tau_on + tau_off) / tau_on);
}
static inline double synth_peak_value(double tau_on, double tau_off)
{
    return synth_response(synth_peak_time(tau_on, tau_off), 1.0, tau_on, tau_off);
}

/* One ROI's response parameters; amp_dff is the true peak ΔF/F. */
typedef struct synth_roi {
    double amp_dff, latency_s, tau_on_s, tau_off_s, noise_dff, f0;
} synth_roi;

/* Fills ROI r of rec (which has a time base and stimuli) with F0·(1 + ΔF/F)
 * plus white Gaussian noise of noise_dff·F0, the response following every
 * stimulus. */
static inline void synth_fill(nt_recording *rec, size_t r, const synth_roi *p, synth_rng *rng)
{
    double scale = p->amp_dff / synth_peak_value(p->tau_on_s, p->tau_off_s);
    for (size_t i = 0; i < rec->n_frames; i++) {
        double dff = 0;
        for (size_t k = 0; k < rec->n_stims; k++)
            dff += synth_response(rec->time_s[i] - rec->stim_s[k] - p->latency_s, scale,
                                  p->tau_on_s, p->tau_off_s);
        rec->traces[r * rec->n_frames + i] =
            (float)(p->f0 * (1.0 + dff + p->noise_dff * synth_gauss(rng)));
    }
}

/* A recording of n_rois x n_frames at rate_hz with one stimulus at frame
 * stim_frame (the lab's 8.33 Hz / frame 200 layout by default). */
static inline nt_recording *synth_recording(size_t n_rois, size_t n_frames, double rate_hz,
                                            long stim_frame)
{
    nt_recording *rec = nt_recording_new(n_rois, n_frames);
    if (rec == NULL)
        return NULL;
    if (nt_recording_set_rate(rec, rate_hz, NULL) != NT_OK ||
        nt_recording_set_stim_frames(rec, &stim_frame, 1, NULL) != NT_OK) {
        nt_recording_free(rec);
        return NULL;
    }
    return rec;
}

#endif
