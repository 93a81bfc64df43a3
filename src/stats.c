/* stats.c — small robust statistics and interpolation helpers. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* Hoare quickselect: the k-th smallest of a [n], reordering a. Expected O(n). */
static double select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                double tmp = a[i];
                a[i] = a[j];
                a[j] = tmp;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* Median of the values already copied into work [n]; reorders work. */
static double median_inplace(double *work, size_t n)
{
    double upper = select_kth(work, n, n / 2);
    if (n % 2 == 1)
        return upper;
    /* The lower middle is the largest of the elements left of n/2. */
    double lower = work[0];
    for (size_t i = 1; i < n / 2; i++)
        if (work[i] > lower)
            lower = work[i];
    return 0.5 * (lower + upper);
}

double nt_median(const double *x, size_t n, double *work)
{
    memcpy(work, x, n * sizeof *work);
    return median_inplace(work, n);
}

double nt_mad_sd(const double *x, size_t n, double *work)
{
    double med = nt_median(x, n, work);
    for (size_t i = 0; i < n; i++)
        work[i] = fabs(x[i] - med);
    /* 1.4826 = 1 / Φ^-1(3/4): makes the MAD a consistent σ for Gaussian noise. */
    return 1.4826 * median_inplace(work, n);
}

void nt_moving_mean(const double *t, const double *z, size_t n, double half_s, double *out)
{
    size_t lo = 0, hi = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        while (hi < n && t[hi] <= t[i] + half_s)
            sum += z[hi++];
        while (t[lo] < t[i] - half_s)
            sum -= z[lo++];
        out[i] = sum / (double)(hi - lo);
    }
}

int nt_linefit(const double *t, const double *y, size_t n, double *a, double *b)
{
    if (n < 2)
        return -1;
    double mt = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mt += t[i];
        my += y[i];
    }
    mt /= (double)n;
    my /= (double)n;
    double stt = 0, sty = 0;
    for (size_t i = 0; i < n; i++) {
        stt += (t[i] - mt) * (t[i] - mt);
        sty += (t[i] - mt) * (y[i] - my);
    }
    if (!(stt > 0))
        return -1;
    *b = sty / stt;
    *a = my - *b * mt;
    return 0;
}

size_t nt_lower_bound(const double *t, size_t n, double value)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

double nt_grid_deviation(const double *t, size_t n)
{
    double dt = (t[n - 1] - t[0]) / (double)(n - 1), dev = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(t[i] - (t[0] + (double)i * dt));
        if (d > dev)
            dev = d;
    }
    return dev;
}

double nt_cross_time(double t0, double y0, double t1, double y1, double level)
{
    return t0 + (level - y0) * (t1 - t0) / (y1 - y0);
}
