/*
 * detect.c — did the ROI respond to this stimulus?
 *
 * Threshold detection as labs do it (DOMAIN.md): the filtered ΔF/F must rise
 * above k·σ of the baseline noise within the response window. Requiring it
 * to stay above for a minimum duration is what keeps the false-positive rate
 * low: low-passed noise crosses k·σ in brief excursions about 1/(2·fc) long,
 * while an evoked release stays up for at least about a second.
 */
#include "internal.h"

nt_detection nt_detect_threshold(const double *t, const double *y, size_t n, double level,
                                 double min_duration_s, double from_s, double to_s)
{
    nt_detection d = {0, 0};
    size_t i = nt_lower_bound(t, n, from_s);
    while (i < n && t[i] <= to_s) {
        if (!(y[i] > level)) {
            i++;
            continue;
        }
        /* A run above the level starts at i: follow it. */
        size_t j = i;
        while (j + 1 < n && y[j + 1] > level)
            j++;
        int ends_with_data = (j + 1 < n);
        if (t[j] - t[i] >= min_duration_s || (!ends_with_data && j > i)) {
            d.detected = 1;
            d.cross = i;
            return d;
        }
        i = j + 1;
    }
    return d;
}
