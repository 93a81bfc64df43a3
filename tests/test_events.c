/*
 * test_events.c — spontaneous event detection (src/events.c) on signals of
 * known answer, its CSV tables, and the `nirtrace events` command.
 */
#include "internal.h"
#include "synth.h"
#include "testutil.h"

#include <math.h>
#include <sys/wait.h>

static void setup(void)
{
    tmp_dir_create("events");
}

static void teardown(void)
{
    tmp_dir_remove();
}

TestSuite(events, .init = setup, .fini = teardown);

/* A recording of n_rois x duration_s at rate_hz without stimuli. */
static nt_recording *make_rec(size_t n_rois, double duration_s, double rate_hz)
{
    nt_recording *rec = nt_recording_new(n_rois, (size_t)(duration_s * rate_hz));
    cr_assert_not_null(rec);
    cr_assert_eq(nt_recording_set_rate(rec, rate_hz, NULL), NT_OK);
    return rec;
}

/* One ROI's events: the same kinetics, onsets [n] with peak ΔF/F amps [n]
 * (negative for dips). */
typedef struct ev_truth {
    size_t n;
    double onset_s[8], amp_dff[8];
    double tau_on_s, tau_off_s;
} ev_truth;

/* Fills ROI r with F0·b(t)·(1 + events + noise): bleach is the fraction lost
 * over the recording (exponential), noise white Gaussian of noise_dff. */
static void fill_roi(nt_recording *rec, size_t r, const ev_truth *ev, double noise_dff,
                     double bleach, synth_rng *rng)
{
    const double f0 = 2000, span = rec->time_s[rec->n_frames - 1];
    const double pv = synth_peak_value(ev->tau_on_s, ev->tau_off_s);
    for (size_t i = 0; i < rec->n_frames; i++) {
        double t = rec->time_s[i], dff = 0;
        for (size_t k = 0; k < ev->n; k++)
            dff += synth_response(t - ev->onset_s[k], ev->amp_dff[k] / pv, ev->tau_on_s,
                                  ev->tau_off_s);
        double b = exp(log1p(-bleach) * t / span);
        rec->traces[r * rec->n_frames + i] =
            (float)(f0 * b * (1.0 + dff + noise_dff * synth_gauss(rng)));
    }
}

/* Detects with p and checks that every true event of ROI 0 is found once:
 * onset within onset_tol_s, amplitude within amp_rel, τ within tau_rel. */
static void check_events(const nt_recording *rec, const nt_event_params *p, const ev_truth *ev,
                         double onset_tol_s, double amp_rel, double tau_rel)
{
    nt_event *e = NULL;
    size_t n = 0;
    nt_event_roi roi;
    nt_error err = {0, ""};
    cr_assert_eq(nt_events_detect(rec, p, &e, &n, &roi, &err), NT_OK, "%s", err.message);
    cr_assert_eq(n, ev->n, "found %zu events, expected %zu", n, ev->n);
    cr_assert_eq(roi.n_events, n);
    cr_assert_eq(roi.flags, 0u);
    cr_assert_float_eq(roi.events_per_min, 60.0 * (double)n / roi.duration_s, 1e-9);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(e[k].roi, 0u);
        cr_assert_eq(e[k].index, k);
        cr_assert(fabs(e[k].onset_s - ev->onset_s[k]) <= onset_tol_s,
                  "event %zu: onset %g s, true %g s", k + 1, e[k].onset_s, ev->onset_s[k]);
        cr_assert(fabs(e[k].amplitude_dff - ev->amp_dff[k]) <= amp_rel * fabs(ev->amp_dff[k]),
                  "event %zu: amplitude %g, true %g", k + 1, e[k].amplitude_dff, ev->amp_dff[k]);
        cr_assert(fabs(e[k].decay_tau_s - ev->tau_off_s) <= tau_rel * ev->tau_off_s,
                  "event %zu: decay tau %g s, true %g s", k + 1, e[k].decay_tau_s,
                  ev->tau_off_s);
        cr_assert(e[k].peak_s > e[k].onset_s && e[k].rise_s > 0 && e[k].half_width_s > 0);
        cr_assert((e[k].auc_dff_s > 0) == (ev->amp_dff[k] > 0), "event %zu: area %g", k + 1,
                  e[k].auc_dff_s);
        cr_assert(e[k].snr > 5, "event %zu: snr %g", k + 1, e[k].snr);
    }
    nt_events_free(e);
}

Test(events, fast_events_in_white_noise)
{
    nt_recording *rec = make_rec(1, 300, 10.0);
    ev_truth ev = {4, {40, 100, 160, 230}, {0.05, 0.03, 0.08, 0.04}, 0.2, 3.0};
    synth_rng rng = {11};
    fill_roi(rec, 0, &ev, 0.004, 0.0, &rng);
    /* Onset within two frames, amplitude within 5 %, τ within 10 %. */
    check_events(rec, NULL, &ev, 0.2, 0.05, 0.10);
    nt_recording_free(rec);
}

Test(events, slow_events_with_bleaching)
{
    /* nIRCat-like kinetics, 8.33 Hz, 15 % bleaching over the recording. */
    nt_recording *rec = make_rec(1, 400, 8.33);
    ev_truth ev = {3, {50, 170, 290}, {0.06, 0.04, 0.08}, 2.0, 20.0};
    synth_rng rng = {12};
    fill_roi(rec, 0, &ev, 0.004, 0.15, &rng);
    check_events(rec, NULL, &ev, 0.3, 0.05, 0.10);
    nt_recording_free(rec);
}

Test(events, fast_rate_events)
{
    nt_recording *rec = make_rec(1, 200, 50.0);
    ev_truth ev = {3, {30, 90, 150}, {0.03, 0.05, 0.04}, 0.1, 1.5};
    synth_rng rng = {13};
    fill_roi(rec, 0, &ev, 0.006, 0.10, &rng);
    /* SNR 5-8 per frame: the amplitude's own noise is about 3 %. */
    check_events(rec, NULL, &ev, 0.04, 0.08, 0.10);
    nt_recording_free(rec);
}

Test(events, event_on_the_decay_of_another_is_split)
{
    /* The second event starts when the first is still at 27 % of its peak. */
    nt_recording *rec = make_rec(1, 200, 10.0);
    ev_truth ev = {2, {50, 64}, {0.08, 0.05}, 0.3, 10.0};
    synth_rng rng = {14};
    fill_roi(rec, 0, &ev, 0.003, 0.0, &rng);
    nt_event *e = NULL;
    size_t n = 0;
    cr_assert_eq(nt_events_detect(rec, NULL, &e, &n, NULL, NULL), NT_OK);
    cr_assert_eq(n, 2u, "found %zu events", n);
    cr_assert(fabs(e[0].onset_s - 50) < 0.3 && fabs(e[1].onset_s - 64) < 0.5,
              "onsets %g, %g", e[0].onset_s, e[1].onset_s);
    /* Measured from its pedestal: its own amplitude, not the sum. */
    cr_assert(fabs(e[1].amplitude_dff - 0.05) < 0.1 * 0.05, "amplitude %g", e[1].amplitude_dff);
    nt_events_free(e);
    nt_recording_free(rec);
}

Test(events, pure_noise_gives_few_false_events)
{
    /* 10 ROIs x 10 min of white noise at two rates, with bleaching: 3 sigma
     * for 0.5 s is crossed rarely; at most one false event per 20 ROI-min. */
    const double rates[] = {5.0, 30.0};
    size_t total = 0;
    for (size_t k = 0; k < 2; k++) {
        nt_recording *rec = make_rec(10, 600, rates[k]);
        ev_truth none = {0, {0}, {0}, 1, 1};
        synth_rng rng = {100 + k};
        for (size_t r = 0; r < 10; r++)
            fill_roi(rec, r, &none, 0.01, 0.2, &rng);
        nt_event *e = NULL;
        size_t n = 0;
        nt_event_roi rois[10];
        cr_assert_eq(nt_events_detect(rec, NULL, &e, &n, rois, NULL), NT_OK);
        for (size_t r = 0; r < 10; r++) {
            cr_assert_eq(rois[r].flags, 0u);
            /* σ of the 2 Hz low-passed noise is below the per-frame σ. */
            cr_assert(rois[r].noise_sd_dff > 0.002 && rois[r].noise_sd_dff < 0.0105,
                      "noise %g", rois[r].noise_sd_dff);
        }
        total += n;
        nt_events_free(e);
        nt_recording_free(rec);
    }
    cr_assert(total <= 10, "%zu false events in 200 ROI-minutes", total);
}

/* Each polarity reports the true events of its sign(s), with their sign,
 * and nothing of the other sign. The threshold detector reports exactly
 * those; the matched one may add a false event (it relaxes the minimum
 * duration: on this 5 min trace with both signs, one 3.2 σ blip). */
Test(events, polarity)
{
    nt_recording *rec = make_rec(1, 300, 10.0);
    /* Two rises and two dips. */
    ev_truth ev = {4, {40, 100, 160, 230}, {0.05, -0.04, 0.06, -0.05}, 0.3, 4.0};
    synth_rng rng = {15};
    fill_roi(rec, 0, &ev, 0.004, 0.05, &rng);
    const int pols[] = {NT_POLARITY_POSITIVE, NT_POLARITY_NEGATIVE, NT_POLARITY_BOTH};
    const size_t expect[] = {2, 2, 4};
    for (int det = 0; det < 2; det++) {
        nt_event_params p;
        nt_event_params_default(&p);
        p.detector = det == 0 ? NT_DETECTOR_THRESHOLD : NT_DETECTOR_MATCHED;
        for (size_t k = 0; k < 3; k++) {
            p.polarity = pols[k];
            nt_event *e = NULL;
            size_t n = 0;
            cr_assert_eq(nt_events_detect(rec, &p, &e, &n, NULL, NULL), NT_OK);
            const char *name = nt_polarity_name(pols[k]);
            cr_assert(n >= expect[k] && n <= expect[k] + (size_t)det, "%s, %s: %zu events",
                      nt_detector_name(p.detector), name, n);
            for (size_t j = 0; j < ev.n; j++) {
                if ((pols[k] == NT_POLARITY_POSITIVE && ev.amp_dff[j] < 0) ||
                    (pols[k] == NT_POLARITY_NEGATIVE && ev.amp_dff[j] > 0))
                    continue;
                size_t i = 0;
                while (i < n && fabs(e[i].onset_s - ev.onset_s[j]) >= 0.3)
                    i++;
                cr_assert(i < n, "%s: the event at %g s is missing", name, ev.onset_s[j]);
                cr_assert(fabs(e[i].amplitude_dff - ev.amp_dff[j]) < 0.1 * fabs(ev.amp_dff[j]),
                          "amplitude %g, true %g", e[i].amplitude_dff, ev.amp_dff[j]);
                cr_assert(e[i].snr > 0 && e[i].decay_tau_s > 0);
            }
            for (size_t i = 0; i < n; i++) {
                cr_assert(pols[k] == NT_POLARITY_BOTH ||
                              (e[i].amplitude_dff > 0) == (pols[k] == NT_POLARITY_POSITIVE),
                          "%s: an event of amplitude %g", name, e[i].amplitude_dff);
                if (i > 0)
                    cr_assert(e[i].peak_s > e[i - 1].peak_s, "events out of time order");
            }
            nt_events_free(e);
        }
    }
    nt_recording_free(rec);
}

Test(events, bad_rois_are_flagged_not_fatal)
{
    nt_recording *rec = make_rec(3, 120, 10.0);
    ev_truth ev = {1, {50}, {0.05}, 0.3, 3.0};
    synth_rng rng = {16};
    fill_roi(rec, 0, &ev, 0.004, 0.0, &rng);
    for (size_t i = 0; i < rec->n_frames; i++) {
        rec->traces[rec->n_frames + i] = 500.0f;               /* constant */
        rec->traces[2 * rec->n_frames + i] = i == 7 ? NAN : 500.0f;
    }
    nt_event *e = NULL;
    size_t n = 0;
    nt_event_roi rois[3];
    cr_assert_eq(nt_events_detect(rec, NULL, &e, &n, rois, NULL), NT_OK);
    cr_assert_eq(n, 1u);
    cr_assert_eq(rois[0].n_events, 1u);
    cr_assert_eq(rois[1].flags, (unsigned)NT_FLAG_FLAT);
    cr_assert_eq(rois[2].flags, (unsigned)NT_FLAG_NONFINITE);
    cr_assert(isnan(rois[2].events_per_min) && rois[2].n_events == 0);
    nt_events_free(e);
    nt_recording_free(rec);
}

Test(events, invalid_input)
{
    nt_recording *rec = nt_recording_new(1, 100);
    nt_event *e = (nt_event *)1;
    size_t n = 5;
    nt_error err = {0, ""};
    /* No time base. */
    cr_assert_eq(nt_events_detect(rec, NULL, &e, &n, NULL, &err), NT_ERR_INVALID);
    cr_assert(e == NULL && n == 0);
    cr_assert(strstr(err.message, "rate") != NULL, "%s", err.message);
    cr_assert_eq(nt_recording_set_rate(rec, 10, NULL), NT_OK);
    nt_event_params p;
    nt_event_params_default(&p);
    p.threshold_sd = 0;
    cr_assert_eq(nt_events_detect(rec, &p, &e, &n, NULL, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "threshold") != NULL, "%s", err.message);
    nt_event_params_default(&p);
    p.polarity = 7;
    cr_assert_eq(nt_event_params_check(&p, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_polarity_parse("both"), NT_POLARITY_BOTH);
    cr_assert_eq(nt_polarity_parse("up"), -1);
    cr_assert_str_eq(nt_polarity_name(NT_POLARITY_NEGATIVE), "negative");
    nt_events_free(NULL);
    nt_recording_free(rec);
}

Test(events, csv_tables)
{
    nt_recording *rec = make_rec(2, 10, 10.0);
    char *names[] = {"a,1", "b"};
    rec->roi_names = malloc(2 * sizeof *rec->roi_names);
    cr_assert_not_null(rec->roi_names);
    rec->roi_names[0] = nt_strdup(names[0]);
    rec->roi_names[1] = nt_strdup(names[1]);
    nt_event ev = {1, 0, 1.5, 2.25, -0.05, 0.5, 1.0, NAN, -0.1, 12.5};
    nt_event_roi rois[2] = {{0, 10, 0, 0.01, 0}, {1, 10, 6, 0.02, NT_FLAG_FLAT}};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(nt_events_csv_write_header(f), NT_OK);
    cr_assert_eq(nt_events_csv_write_rows(f, "x.h5", rec, &ev, 1), NT_OK);
    cr_assert_eq(nt_events_summary_write_header(f), NT_OK);
    cr_assert_eq(nt_events_summary_write_rows(f, "x.h5", rec, rois), NT_OK);
    fclose(f);
    cr_assert_str_eq(text,
                     "file,roi,event,onset_s,peak_s,amplitude_dff,rise_s,half_width_s,"
                     "decay_tau_s,auc_dff_s,snr\n"
                     "x.h5,b,1,1.5,2.25,-0.05,0.5,1,NaN,-0.1,12.5\n"
                     "file,roi,n_events,duration_s,events_per_min,noise_sd_dff,flags\n"
                     "x.h5,\"a,1\",0,10,0,0.01,\n"
                     "x.h5,b,NaN,10,6,0.02,flat\n");
    free(text);
    nt_recording_free(rec);
}

/* ------------------------------------------------------------------- CLI */

/* Runs `nirtrace ARGS` through the shell with stdout and stderr in
 * tmp_dir/out.txt and err.txt; returns the exit status. */
static int cli(const char *args)
{
    const char *bin = getenv("NIRTRACE_BIN");
    cr_assert(bin != NULL && bin[0] != '\0', "NIRTRACE_BIN is not set: run with make test");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >out.txt 2>err.txt", tmp_dir, bin, args);
    int st = system(cmd);
    cr_assert(st != -1 && WIFEXITED(st), "cannot run: %s", cmd);
    return WEXITSTATUS(st);
}

static size_t count_lines_of(const char *text)
{
    size_t n = 0;
    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

static char *tmp_slurp(const char *name)
{
    return slurp(tmp_path(name), NULL);
}

/* Writes a CSV recording (time_s and two ROIs, no stimuli) with one event in
 * roi1 at 30 s and noise only in roi2. */
static void write_csv_recording(const char *name)
{
    FILE *f = fopen(tmp_path(name), "w");
    cr_assert_not_null(f);
    fputs("time_s,roi1,roi2\n", f);
    synth_rng rng = {21};
    double pv = synth_peak_value(0.3, 3.0);
    for (int i = 0; i < 1000; i++) {
        double t = i / 10.0;
        double ev = synth_response(t - 30.0, 0.06 / pv, 0.3, 3.0);
        fprintf(f, "%.2f,%.3f,%.3f\n", t, 1000 * (1 + ev + 0.004 * synth_gauss(&rng)),
                1000 * (1 + 0.004 * synth_gauss(&rng)));
    }
    fclose(f);
}

Test(events, cli_finds_the_event)
{
    write_csv_recording("rec.csv");
    cr_assert_eq(cli("events -q -o ev.csv --summary sum.csv rec.csv"), 0);
    char *ev = tmp_slurp("ev.csv"), *sum = tmp_slurp("sum.csv"), *out = tmp_slurp("out.txt");
    cr_assert_str_eq(out, "");
    const char *header = "file,roi,event,onset_s,peak_s,amplitude_dff,rise_s,half_width_s,"
                         "decay_tau_s,auc_dff_s,snr\n";
    cr_assert(strncmp(ev, header, strlen(header)) == 0, "%s", ev);
    cr_assert(strstr(ev, "\nrec.csv,roi1,1,30") != NULL || strstr(ev, "\nrec.csv,roi1,1,29.9") != NULL,
              "%s", ev);
    cr_assert(strstr(ev, "roi2") == NULL, "%s", ev);
    assert_contains(sum, "file,roi,n_events,duration_s,events_per_min,noise_sd_dff,flags\n");
    assert_contains(sum, "\nrec.csv,roi1,1,100,0.6,");
    assert_contains(sum, "\nrec.csv,roi2,0,100,0,");
    free(ev);
    free(sum);
    free(out);

    /* The same to stdout, with -j 1 and a second copy: rows in input order. */
    write_csv_recording("rec2.csv");
    cr_assert_eq(cli("events -q -j 1 rec.csv rec2.csv"), 0);
    out = tmp_slurp("out.txt");
    char *a = strstr(out, "\nrec.csv,roi1,1,"), *b = strstr(out, "\nrec2.csv,roi1,1,");
    cr_assert(a != NULL && b != NULL && a < b, "%s", out);
    free(out);
}

Test(events, cli_bad_file_and_usage)
{
    write_csv_recording("rec.csv");
    tmp_write_text("bad.h5", "\x89HDF\r\n\x1a\nnot really");
    /* One bad input: named on stderr, exit 1, the good rows still written,
     * none of the bad file; with --summary too. */
    cr_assert_eq(cli("events -q -o ev.csv --summary sum.csv bad.h5 rec.csv"), 1);
    char *err = tmp_slurp("err.txt"), *ev = tmp_slurp("ev.csv"), *sum = tmp_slurp("sum.csv");
    assert_contains(err, "nirtrace: bad.h5: ");
    cr_assert_eq(count_lines_of(err), 1u, "%s", err);
    cr_assert(strstr(ev, "bad.h5") == NULL && strstr(ev, "rec.csv,roi1,1,") != NULL, "%s", ev);
    cr_assert(strstr(sum, "bad.h5") == NULL && strstr(sum, "rec.csv,roi2,") != NULL, "%s", sum);
    free(err);
    free(ev);
    free(sum);

    /* A missing file alone: exit 1 and, as detect does, a table with its
     * header and no rows. */
    cr_assert_eq(cli("events -q -o none.csv missing.h5"), 1);
    char *none = tmp_slurp("none.csv");
    cr_assert_eq(count_lines_of(none), 1u, "%s", none);
    free(none);

    cr_assert_eq(cli("events --polarity sideways rec.csv"), 2);
    err = tmp_slurp("err.txt");
    assert_contains(err, "--polarity must be positive, negative or both");
    free(err);
    cr_assert_eq(cli("events --threshold -1 rec.csv"), 2);
    cr_assert_eq(cli("events --bogus rec.csv"), 2);
    cr_assert_eq(cli("events"), 2);
    cr_assert_eq(cli("events --help"), 0);
    char *help = tmp_slurp("out.txt");
    assert_contains(help, "--polarity P");
    assert_contains(help, "--summary FILE");
    assert_contains(help, "--rate HZ");
    free(help);
    cr_assert_eq(cli("--help"), 0);
    help = tmp_slurp("out.txt");
    assert_contains(help, "events FILE...");
    free(help);
}

/* Counts the events of e [n] within tol_s of a true onset of ROI r (each
 * true event counted once). */
static size_t count_found(const nt_event *e, size_t n, size_t r, const ev_truth *ev, double tol_s)
{
    size_t found = 0;
    for (size_t k = 0; k < ev->n; k++)
        for (size_t i = 0; i < n; i++)
            if (e[i].roi == r && fabs(e[i].onset_s - ev->onset_s[k]) <= tol_s) {
                found++;
                break;
            }
    return found;
}

/* Brief events that reach about 3 σ of the filtered trace but do not stay
 * above it for the minimum duration: the matched filter adds them (and the
 * threshold events all stay); on pure noise it adds few false events. */
Test(events, matched_detector_adds_brief_weak_events)
{
    const size_t n_rois = 20;
    nt_recording *rec = make_rec(n_rois, 300, 10.0);
    ev_truth ev = {6, {30, 70, 110, 150, 190, 230}, {0.03, 0.03, 0.03, 0.03, 0.03, 0.03},
                   0.1, 0.8};
    synth_rng rng = {31};
    for (size_t r = 0; r < n_rois; r++)
        fill_roi(rec, r, &ev, 0.01, 0.1, &rng);
    size_t found[2] = {0, 0}, extra[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        nt_event_params p;
        nt_event_params_default(&p);
        p.detector = k == 0 ? NT_DETECTOR_THRESHOLD : NT_DETECTOR_MATCHED;
        nt_event *e = NULL;
        size_t n = 0;
        cr_assert_eq(nt_events_detect(rec, &p, &e, &n, NULL, NULL), NT_OK);
        for (size_t r = 0; r < n_rois; r++)
            found[k] += count_found(e, n, r, &ev, 1.0);
        extra[k] = n - found[k];
        nt_events_free(e);
    }
    cr_log_info("threshold: %zu of %zu found, %zu other; matched: %zu found, %zu other",
                found[0], n_rois * ev.n, extra[0], found[1], extra[1]);
    cr_assert(found[1] >= found[0] + n_rois * ev.n / 10,
              "matched found %zu, threshold %zu (of %zu)", found[1], found[0], n_rois * ev.n);
    cr_assert(extra[1] <= extra[0] + 5, "matched: %zu events that are not true, threshold %zu",
              extra[1], extra[0]);
    nt_recording_free(rec);

    /* 20 ROIs x 10 min of noise: at most 0.1 false events per ROI-minute. */
    rec = make_rec(n_rois, 600, 10.0);
    ev_truth none = {0, {0}, {0}, 1, 1};
    for (size_t r = 0; r < n_rois; r++)
        fill_roi(rec, r, &none, 0.01, 0.2, &rng);
    nt_event_params p;
    nt_event_params_default(&p);
    p.detector = NT_DETECTOR_MATCHED;
    nt_event *e = NULL;
    size_t n = 0;
    cr_assert_eq(nt_events_detect(rec, &p, &e, &n, NULL, NULL), NT_OK);
    cr_assert(n <= 20, "%zu false events in 200 ROI-minutes", n);
    nt_events_free(e);
    nt_recording_free(rec);
}
