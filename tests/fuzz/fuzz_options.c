/*
 * fuzz_options.c — libFuzzer harness of the library's parsers of untrusted
 * text other than recordings, and of the parameter checks:
 *  - nt_params_check, nt_params_json and the analysis under any parameters
 *    that pass the check (the CLI passes every --baseline, --lowpass, ...
 *    value it can parse as a number to nt_params_check, then analyses);
 *  - the matched detector's templates (--template, --tau-on, --tau-off)
 *    and nt_events_detect (`nirtrace events`) under parameters derived
 *    from the same bytes (below), so the corpus keeps its layout;
 *  - nt_drift_parse / nt_drift_name (--drift);
 *  - nt_manifest_read and nt_manifest_find (--manifest);
 *  - nt_csv_compare (`nirtrace compare`, --ignore) and nt_csv_merge
 *    (`nirtrace merge`).
 * The option parsing of the CLI itself (src/cli/nirtrace.c) is a program's
 * and not reachable from here.
 *
 * Input layout:
 *   bytes 0-71   nine doubles, little-endian as the machine stores them:
 *                baseline_s, drift_window_s, noise_window_s, lowpass_hz,
 *                threshold_sd, min_duration_s, window_s, peak_max_s,
 *                decay_max_s. A non-finite value keeps its default: the
 *                CLI reads numbers with strtod, which can give Inf and NaN,
 *                but nt_params_check refuses those and that is all.
 *   bytes 72-83  three ints: drift, lowpass_order, jitter_frames.
 *   byte 84      flags: bit 0 keeps the trial windows (--traces-out);
 *                bits 1-2 the template kind (3: bank); bits 3-4 the
 *                events' polarity (3: positive); bit 5 the events'
 *                threshold detector.
 * Derived: the fixed template's τon, τoff are window_s and peak_max_s;
 * the events take threshold_sd, min_duration_s, lowpass_hz,
 * lowpass_order, decay_max_s, 3 x drift_window_s as the baseline window
 * and noise_window_s / 100 false events per minute.
 *   the rest     NUL-separated: a drift name (also the --ignore list of
 *                compare), a manifest, an expected CSV table, an actual
 *                CSV table. A short input keeps the defaults for the
 *                fields it does not reach; a missing text is empty.
 * The memory limit of every reader is its own default (these readers bound
 * their records themselves: csv.h).
 */
#include "fuzz_common.h"

#include <math.h>
#include <stdint.h>

#define N_DOUBLES 9
#define N_INTS 3
#define PARAMS_BYTES (N_DOUBLES * 8 + N_INTS * 4 + 1)
#define N_TEXTS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames, ROIs and rate of the synthetic recording the parameters are
 * tried on: a rising-and-decaying response to each of two stimuli on a
 * slowly bleaching baseline with deterministic noise. */
#define SYN_ROIS 3
#define SYN_FRAMES 1200
#define SYN_RATE_HZ 8.33

static nt_recording *synthetic(void)
{
    static nt_recording *rec; /* made once; reachable until exit */
    if (rec != NULL)
        return rec;
    nt_error err;
    rec = nt_recording_new(SYN_ROIS, SYN_FRAMES);
    long frames[2] = {400, 800};
    if (rec == NULL || nt_recording_set_rate(rec, SYN_RATE_HZ, &err) != NT_OK ||
        nt_recording_set_stim_frames(rec, frames, 2, &err) != NT_OK)
        abort();
    uint32_t noise = 12345;
    for (size_t r = 0; r < SYN_ROIS; r++)
        for (size_t f = 0; f < SYN_FRAMES; f++) {
            double t = rec->time_s[f], v = 1000.0 * exp(-t / 600.0);
            for (int k = 0; k < 2; k++) {
                double dt = t - rec->stim_s[k] - 0.5;
                if (dt > 0 && r < 2)
                    v += (r + 1) * 40.0 * (1 - exp(-dt / 0.5)) * exp(-dt / 8.0);
            }
            noise = noise * 1664525u + 1013904223u;
            rec->traces[r * SYN_FRAMES + f] = (float)(v + (double)(noise >> 24) / 32.0 - 4.0);
        }
    return rec;
}

static void read_params(const uint8_t *data, size_t size, nt_params *p, int *keep_windows,
                        nt_event_params *ev)
{
    double *d[N_DOUBLES] = {&p->baseline_s, &p->drift_window_s, &p->noise_window_s,
                            &p->lowpass_hz, &p->threshold_sd, &p->min_duration_s,
                            &p->window_s, &p->peak_max_s, &p->decay_max_s};
    int *k[N_INTS] = {&p->drift, &p->lowpass_order, &p->jitter_frames};
    nt_params_default(p);
    for (size_t i = 0; i < N_DOUBLES && (i + 1) * 8 <= size; i++) {
        double v;
        memcpy(&v, data + i * 8, sizeof v);
        if (isfinite(v))
            *d[i] = v;
    }
    for (size_t i = 0; i < N_INTS && N_DOUBLES * 8 + (i + 1) * 4 <= size; i++)
        memcpy(k[i], data + N_DOUBLES * 8 + i * 4, sizeof(int));
    unsigned flags = size >= PARAMS_BYTES ? data[PARAMS_BYTES - 1] : 0;
    *keep_windows = flags & 1;
    p->template_kind = (flags >> 1) & 3;
    if (p->template_kind == 3)
        p->template_kind = NT_TEMPLATE_BANK;
    p->tau_on_s = p->window_s;
    p->tau_off_s = p->peak_max_s;
    nt_event_params_default(ev);
    ev->polarity = (flags >> 3) & 3;
    if (ev->polarity == 3)
        ev->polarity = NT_POLARITY_POSITIVE;
    ev->detector = (flags >> 5) & 1 ? NT_DETECTOR_THRESHOLD : NT_DETECTOR_MATCHED;
    ev->threshold_sd = p->threshold_sd;
    ev->min_duration_s = p->min_duration_s;
    ev->lowpass_hz = p->lowpass_hz;
    ev->lowpass_order = p->lowpass_order;
    ev->decay_max_s = p->decay_max_s;
    ev->baseline_window_s = 3.0 * p->drift_window_s;
    ev->false_alarm_per_min = p->noise_window_s / 100.0;
}

/* The events of the synthetic recording under ev, when the check passes;
 * every event belongs to one of its ROIs, numbered from 0 in each. */
static void try_events(const nt_event_params *ev)
{
    nt_error err;
    if (nt_event_params_check(ev, &err) != NT_OK)
        return;
    nt_recording *rec = synthetic();
    nt_event *e = NULL;
    size_t n = 0;
    nt_event_roi rois[SYN_ROIS];
    if (nt_events_detect(rec, ev, &e, &n, rois, &err) != NT_OK)
        return;
    size_t total = 0;
    for (size_t r = 0; r < SYN_ROIS; r++)
        total += rois[r].n_events;
    if (total != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (e[i].roi >= SYN_ROIS ||
            (i > 0 && e[i].roi == e[i - 1].roi && e[i].index != e[i - 1].index + 1))
            abort();
    nt_events_free(e);
}

static void try_params(const nt_params *p, int keep_windows)
{
    nt_error err;
    if (nt_params_check(p, &err) != NT_OK)
        return;
    /* The JSON record: the length it says it needs, whatever the buffer. */
    char json[2048], small[16];
    size_t need = nt_params_json(p, json, sizeof json);
    if (need < sizeof json && strlen(json) != need)
        abort();
    if (nt_params_json(p, small, sizeof small) != need || strlen(small) != sizeof small - 1)
        abort();

    nt_recording *rec = synthetic();
    nt_analyzer *an = NULL;
    nt_trial_result res[SYN_ROIS * 2];
    if (nt_analyzer_create(p, &an, &err) != NT_OK)
        return;
    if (keep_windows)
        nt_analyzer_keep_windows(an, fmax(p->baseline_s, p->noise_window_s), p->decay_max_s,
                                 &err);
    if (nt_analyzer_execute(an, rec, res, &err) == NT_OK && keep_windows) {
        size_t n_win;
        const double *t_rel, *dff, *dff_f;
        if (nt_analyzer_windows(an, &n_win, &t_rel, &dff, &dff_f) == NT_OK && n_win > 0) {
            /* Touch both ends of every array: ASan checks the sizes. */
            size_t last = SYN_ROIS * 2 * n_win - 1;
            volatile double sink = t_rel[0] + t_rel[last] + dff[0] + dff[last] + dff_f[0] +
                                   dff_f[last];
            (void)sink;
        }
    }
    nt_analyzer_destroy(an);
}

static void try_manifest(const char *path, const char *name)
{
    nt_error err;
    nt_manifest *m = NULL;
    if (nt_manifest_read(path, &m, &err) != NT_OK) {
        if (m != NULL)
            abort(); /* the contract: *out is NULL on failure */
        return;
    }
    size_t n_cols = nt_manifest_n_columns(m);
    char *const *cols = nt_manifest_columns(m);
    for (size_t j = 0; j < n_cols; j++)
        if (strlen(cols[j]) > (size_t)1 << 30)
            abort();
    for (size_t i = 0; i < nt_manifest_n_rows(m); i++) {
        const char *file = nt_manifest_file(m, i);
        char *const *values = nt_manifest_values(m, i);
        for (size_t j = 0; j < n_cols; j++)
            if (values[j] == NULL)
                abort();
        long found = nt_manifest_find(m, file);
        if (found < 0 || (size_t)found > i)
            abort(); /* a row's own file finds it, or an earlier row with the same path */
    }
    nt_manifest_find(m, name);
    nt_manifest_find(m, "dir/sub/slice1.h5");
    nt_manifest_free(m);
}

static void count_report(void *ctx, const char *line)
{
    size_t *n = ctx;
    if (strchr(line, '\n') != NULL)
        abort(); /* one line per difference */
    (*n)++;
}

static void try_tables(const char *expected, const char *actual, const char *ignore)
{
    nt_error err;
    nt_compare_options co = {1e-4, 1e-9, ignore};
    size_t n_diffs = 0, n_reported = 0;
    nt_csv_compare(expected, actual, &co, count_report, &n_reported, &n_diffs, &err);
    co.ignore = NULL;
    nt_csv_compare(expected, expected, &co, NULL, NULL, &n_diffs, &err);

    FILE *out = fopen("/dev/null", "w");
    if (out == NULL)
        abort();
    char *parts[3] = {(char *)expected, (char *)actual, (char *)expected};
    size_t rows;
    nt_csv_merge(parts, 3, out, &rows, &err);
    fclose(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nt_params p;
    nt_event_params ev;
    int keep_windows;
    read_params(data, size, &p, &keep_windows, &ev);
    try_events(&ev);

    /* The texts after the parameters, split at NUL bytes. */
    const uint8_t *text[N_TEXTS];
    size_t len[N_TEXTS];
    size_t at = size < PARAMS_BYTES ? size : PARAMS_BYTES;
    for (int i = 0; i < N_TEXTS; i++) {
        const uint8_t *end = memchr(data + at, 0, size - at);
        size_t n = end != NULL ? (size_t)(end - (data + at)) : size - at;
        text[i] = data + at;
        len[i] = n;
        at += n + (end != NULL);
    }

    char name[64];
    size_t n = len[0] < sizeof name - 1 ? len[0] : sizeof name - 1;
    memcpy(name, text[0], n);
    name[n] = '\0';
    int drift = nt_drift_parse(name);
    if (drift >= 0) {
        const char *back = nt_drift_name(drift);
        if (back == NULL || strcmp(back, name) != 0)
            abort(); /* parse and name are inverses */
        p.drift = drift;
    }
    try_params(&p, keep_windows);

    const char *manifest = fuzz_file_write(1, text[1], len[1]);
    const char *expected = fuzz_file_write(2, text[2], len[2]);
    const char *actual = fuzz_file_write(3, text[3], len[3]);
    try_manifest(manifest, name);
    try_tables(expected, actual, name);
    return 0;
}
