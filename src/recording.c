/* recording.c — the in-memory recording: allocation, time base, stimuli,
 * and the check that it is ready for analysis. */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nt_read_options_default(nt_read_options *opts)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGE_SIZE);
    size_t phys = (pages > 0 && page_size > 0) ? (size_t)pages * (size_t)page_size
                                               : (size_t)1 << 32;
    memset(opts, 0, sizeof *opts);
    opts->max_bytes = phys / 2;
    opts->layout = NT_LAYOUT_AUTO;
    opts->header = -1;
    opts->grid_px = NT_GRID_PX_DEFAULT;
}

nt_recording *nt_recording_new(size_t n_rois, size_t n_frames)
{
    nt_recording *rec = calloc(1, sizeof *rec);
    if (rec == NULL)
        return NULL;
    rec->n_rois = n_rois;
    rec->n_frames = n_frames;
    rec->rate_hz = NAN;
    if (n_rois > 0 && n_frames > 0) {
        if (n_rois > SIZE_MAX / sizeof(float) / n_frames) {
            free(rec);
            return NULL;
        }
        rec->traces = calloc(n_rois * n_frames, sizeof(float));
        if (rec->traces == NULL) {
            free(rec);
            return NULL;
        }
    }
    return rec;
}

void nt_recording_free(nt_recording *rec)
{
    if (rec == NULL)
        return;
    free(rec->traces);
    free(rec->time_s);
    free(rec->stim_s);
    nt_strings_free(rec->stim_labels, rec->n_stims);
    nt_strings_free(rec->roi_names, rec->n_rois);
    free(rec);
}

int nt_recording_set_rate(nt_recording *rec, double rate_hz, nt_error *err)
{
    if (!(rate_hz > 0) || !isfinite(rate_hz))
        return nt_error_set(err, NT_ERR_INVALID, "rate must be a positive number of Hz, got %g",
                            rate_hz);
    if (rec->n_frames == 0)
        return nt_error_set(err, NT_ERR_INVALID, "recording has no frames");
    double *t = malloc(rec->n_frames * sizeof *t);
    if (t == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the time axis");
    for (size_t i = 0; i < rec->n_frames; i++)
        t[i] = (double)i / rate_hz;
    free(rec->time_s);
    rec->time_s = t;
    rec->rate_hz = rate_hz;
    rec->time_source = NT_SOURCE_OVERRIDE;
    return NT_OK;
}

int nt_recording_set_stims(nt_recording *rec, const double *stim_s, size_t n, nt_error *err)
{
    double *copy = NULL;
    if (n > 0) {
        copy = malloc(n * sizeof *copy);
        if (copy == NULL)
            return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate %zu stimuli", n);
        memcpy(copy, stim_s, n * sizeof *copy);
    }
    nt_strings_free(rec->stim_labels, rec->n_stims);
    rec->stim_labels = NULL;
    free(rec->stim_s);
    rec->stim_s = copy;
    rec->n_stims = n;
    rec->stim_source = NT_SOURCE_OVERRIDE;
    return NT_OK;
}

int nt_recording_set_stim_frames(nt_recording *rec, const long *frames, size_t n,
                                 nt_error *err)
{
    if (rec->time_s == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "stimulus frames need a time base (rate_hz, /time or --rate)");
    double *s = malloc((n > 0 ? n : 1) * sizeof *s);
    if (s == NULL)
        return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate %zu stimuli", n);
    for (size_t i = 0; i < n; i++) {
        if (frames[i] < 0 || (size_t)frames[i] >= rec->n_frames) {
            free(s);
            return nt_error_set(err, NT_ERR_INVALID,
                                "stimulus frame %ld is outside the recording (frames 0-%zu)",
                                frames[i], rec->n_frames - 1);
        }
        s[i] = rec->time_s[frames[i]];
    }
    int status = nt_recording_set_stims(rec, s, n, err);
    free(s);
    return status;
}

int nt_recording_check(const nt_recording *rec, nt_error *err)
{
    if (rec->n_rois == 0)
        return nt_error_set(err, NT_ERR_INVALID, "recording has no ROIs");
    if (rec->n_frames < 2)
        return nt_error_set(err, NT_ERR_INVALID, "recording has %zu frame%s, need at least 2",
                            rec->n_frames, rec->n_frames == 1 ? "" : "s");
    if (rec->time_s == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "no sampling rate: the file has no rate_hz attribute on /traces and "
                            "no /time dataset (use --rate HZ)");
    for (size_t i = 0; i < rec->n_frames; i++) {
        if (!isfinite(rec->time_s[i]))
            return nt_error_set(err, NT_ERR_INVALID, "time of frame %zu is not finite", i);
        if (i > 0 && !(rec->time_s[i] > rec->time_s[i - 1]))
            return nt_error_set(err, NT_ERR_INVALID,
                                "time is not strictly increasing at frame %zu (%g s after %g s)",
                                i, rec->time_s[i], rec->time_s[i - 1]);
    }
    if (!(rec->rate_hz > 0) || !isfinite(rec->rate_hz))
        return nt_error_set(err, NT_ERR_INVALID, "sampling rate %g Hz is not positive",
                            rec->rate_hz);
    if (rec->n_stims == 0)
        return nt_error_set(err, NT_ERR_INVALID,
                            "no stimuli: the file has no /stim/onsets (use --stim S or "
                            "--stim-frame N)");
    double t_first = rec->time_s[0], t_last = rec->time_s[rec->n_frames - 1];
    for (size_t k = 0; k < rec->n_stims; k++) {
        double s = rec->stim_s[k];
        if (!isfinite(s) || s < t_first || s > t_last)
            return nt_error_set(err, NT_ERR_INVALID,
                                "stimulus %zu at %g s is outside the recording (%g-%g s)",
                                k + 1, s, t_first, t_last);
    }
    return NT_OK;
}

/*
 * Trigger channels: a stimulator's TTL or trigger output recorded beside the
 * traces. An onset is a rising crossing of the threshold, placed between the
 * two frames by linear interpolation (a TTL edge falls between frames). The
 * refractory time merges the pulses of a train into one trial when it is
 * longer than the train; shorter, each pulse is a trial.
 */
int nt_recording_stims_from_trigger(nt_recording *rec, size_t channel, double threshold,
                                    double refractory_s, nt_error *err)
{
    if (channel >= rec->n_rois)
        return nt_error_set(err, NT_ERR_INVALID, "trigger channel %zu does not exist (%zu channels)",
                            channel + 1, rec->n_rois);
    if (rec->n_rois < 2)
        return nt_error_set(err, NT_ERR_INVALID,
                            "the trigger channel is the only channel: no traces left");
    if (rec->time_s == NULL)
        return nt_error_set(err, NT_ERR_INVALID,
                            "a trigger channel needs a time base (rate_hz, /time or --rate)");
    if (rec->traces == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "recording has no samples (header only)");
    if (!(refractory_s >= 0) || !isfinite(refractory_s))
        return nt_error_set(err, NT_ERR_INVALID, "trigger refractory time must be >= 0 s");
    const size_t n = rec->n_frames;
    const float *x = rec->traces + channel * n;
    if (isnan(threshold)) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i]))
                continue;
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
        }
        if (!(hi > lo))
            return nt_error_set(err, NT_ERR_INVALID,
                                "trigger channel %zu is constant: no edges", channel + 1);
        threshold = 0.5 * (lo + hi);
    }
    /* Count first, to allocate exactly; a sample equal to the threshold is
     * below it, so a TTL that sits at the threshold level gives no edge. */
    size_t n_edges = 0;
    double last = -INFINITY;
    for (int pass = 0; pass < 2; pass++) {
        double *onsets = NULL;
        if (pass == 1) {
            onsets = malloc((n_edges > 0 ? n_edges : 1) * sizeof *onsets);
            if (onsets == NULL)
                return nt_error_set(err, NT_ERR_NOMEM, "cannot allocate %zu stimuli", n_edges);
        }
        size_t k = 0;
        last = -INFINITY;
        for (size_t i = 1; i < n; i++) {
            if (!(x[i - 1] <= threshold && x[i] > threshold))
                continue;
            double t = nt_cross_time(rec->time_s[i - 1], x[i - 1], rec->time_s[i], x[i], threshold);
            if (t - last < refractory_s)
                continue;
            last = t;
            if (onsets != NULL)
                onsets[k] = t;
            k++;
        }
        if (pass == 0) {
            n_edges = k;
            if (n_edges == 0)
                return nt_error_set(err, NT_ERR_INVALID,
                                    "trigger channel %zu has no rising edge through %g", channel + 1,
                                    threshold);
            continue;
        }
        int status = nt_recording_set_stims(rec, onsets, n_edges, err);
        free(onsets);
        if (status != NT_OK)
            return status;
    }
    /* Remove the channel: shift the later ROIs (and names) down by one. */
    memmove(rec->traces + channel * n, rec->traces + (channel + 1) * n,
            (rec->n_rois - channel - 1) * n * sizeof *rec->traces);
    if (rec->roi_names != NULL) {
        free(rec->roi_names[channel]);
        memmove(rec->roi_names + channel, rec->roi_names + channel + 1,
                (rec->n_rois - channel - 1) * sizeof *rec->roi_names);
    }
    rec->n_rois--;
    return NT_OK;
}
