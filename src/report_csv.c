/*
 * report_csv.c — the per-trial table as CSV (RFC 4180): a header line, one
 * row per (ROI, trial), '.' as decimal point whatever the locale, NaN for a
 * value that could not be measured. Numbers are written with 6 significant
 * digits (%g): more than the data's precision, few enough to read.
 */
#include "internal.h"
#include "csv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const flag_names[] = {
    "nonfinite", "f0_nonpositive", "no_baseline", "short_baseline",
    "truncated", "shadow",         "flat",        "nofit",
};

size_t nt_flags_format(unsigned flags, char *buf, size_t len)
{
    size_t need = 0;
    if (len > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++) {
        if (!(flags & (1u << i)))
            continue;
        const char *sep = need > 0 ? ";" : "";
        int w = snprintf(len > need ? buf + need : NULL, len > need ? len - need : 0, "%s%s", sep,
                         flag_names[i]);
        if (w > 0)
            need += (size_t)w;
    }
    return need;
}

/* %g is locale-dependent only in its decimal point, which C programs keep
 * as '.' unless they call setlocale; the library never does. */
static void put_number(FILE *out, double v)
{
    if (isnan(v))
        fputs(",NaN", out);
    else if (isinf(v))
        fputs(v > 0 ? ",Inf" : ",-Inf", out);
    else
        fprintf(out, ",%.6g", v);
}

/* The ROI's name, or its 1-based number, in the `roi` column. */
static void put_roi(FILE *out, const nt_recording *rec, size_t roi)
{
    if (rec->roi_names != NULL && roi < rec->n_rois)
        nt_csv_put_field(out, rec->roi_names[roi]);
    else
        fprintf(out, "%zu", roi + 1);
}

int nt_csv_write_header(FILE *out)
{
    return nt_csv_write_header_ex(out, NULL, 0);
}

int nt_csv_write_header_ex(FILE *out, char *const *extra_columns, size_t n_extra)
{
    fputs("file,roi,trial,stim_s,label,detected,amplitude_dff,peak_s,onset_latency_s,"
          "time_to_peak_s,rise_s,half_width_s,decay_tau_s,auc_dff_s,f0,noise_sd_dff,snr,"
          "flags",
          out);
    for (size_t k = 0; k < n_extra; k++) {
        fputc(',', out);
        nt_csv_put_field(out, extra_columns[k]);
    }
    fputc('\n', out);
    return ferror(out) ? NT_ERR_IO : NT_OK;
}

int nt_csv_write_rows(FILE *out, const char *file, const nt_recording *rec,
                      const nt_trial_result *results, size_t n)
{
    return nt_csv_write_rows_ex(out, file, rec, results, n, NULL, 0);
}

int nt_csv_write_rows_ex(FILE *out, const char *file, const nt_recording *rec,
                         const nt_trial_result *results, size_t n, char *const *extra_values,
                         size_t n_extra)
{
    char flags[128];
    for (size_t i = 0; i < n; i++) {
        const nt_trial_result *r = &results[i];
        nt_csv_put_field(out, file);
        fputc(',', out);
        put_roi(out, rec, r->roi);
        fprintf(out, ",%zu", r->trial + 1);
        put_number(out, r->stim_s);
        fputc(',', out);
        if (rec->stim_labels != NULL && r->trial < rec->n_stims)
            nt_csv_put_field(out, rec->stim_labels[r->trial]);
        fprintf(out, ",%d", r->detected);
        put_number(out, r->amplitude_dff);
        put_number(out, r->peak_s);
        put_number(out, r->onset_latency_s);
        put_number(out, r->time_to_peak_s);
        put_number(out, r->rise_s);
        put_number(out, r->half_width_s);
        put_number(out, r->decay_tau_s);
        put_number(out, r->auc_dff_s);
        put_number(out, r->f0);
        put_number(out, r->noise_sd_dff);
        put_number(out, r->snr);
        fputc(',', out);
        nt_flags_format(r->flags, flags, sizeof flags);
        fputs(flags, out);
        for (size_t k = 0; k < n_extra; k++) {
            fputc(',', out);
            if (extra_values != NULL && extra_values[k] != NULL)
                nt_csv_put_field(out, extra_values[k]);
        }
        fputc('\n', out);
        if (ferror(out))
            return NT_ERR_IO;
    }
    return NT_OK;
}

int nt_events_csv_write_header(FILE *out)
{
    fputs("file,roi,event,onset_s,peak_s,amplitude_dff,rise_s,half_width_s,decay_tau_s,"
          "auc_dff_s,snr\n",
          out);
    return ferror(out) ? NT_ERR_IO : NT_OK;
}

int nt_events_csv_write_rows(FILE *out, const char *file, const nt_recording *rec,
                             const nt_event *events, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const nt_event *e = &events[i];
        nt_csv_put_field(out, file);
        fputc(',', out);
        put_roi(out, rec, e->roi);
        fprintf(out, ",%zu", e->index + 1);
        put_number(out, e->onset_s);
        put_number(out, e->peak_s);
        put_number(out, e->amplitude_dff);
        put_number(out, e->rise_s);
        put_number(out, e->half_width_s);
        put_number(out, e->decay_tau_s);
        put_number(out, e->auc_dff_s);
        put_number(out, e->snr);
        fputc('\n', out);
        if (ferror(out))
            return NT_ERR_IO;
    }
    return NT_OK;
}

int nt_events_summary_write_header(FILE *out)
{
    fputs("file,roi,n_events,duration_s,events_per_min,noise_sd_dff,flags\n", out);
    return ferror(out) ? NT_ERR_IO : NT_OK;
}

int nt_events_summary_write_rows(FILE *out, const char *file, const nt_recording *rec,
                                 const nt_event_roi *rois)
{
    char flags[128];
    for (size_t r = 0; r < rec->n_rois; r++) {
        const nt_event_roi *s = &rois[r];
        nt_csv_put_field(out, file);
        fputc(',', out);
        put_roi(out, rec, r);
        if (s->flags != 0)
            fputs(",NaN", out);
        else
            fprintf(out, ",%zu", s->n_events);
        put_number(out, s->duration_s);
        put_number(out, s->events_per_min);
        put_number(out, s->noise_sd_dff);
        fputc(',', out);
        nt_flags_format(s->flags, flags, sizeof flags);
        fputs(flags, out);
        fputc('\n', out);
        if (ferror(out))
            return NT_ERR_IO;
    }
    return NT_OK;
}
