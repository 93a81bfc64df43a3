/* test_analyzer.c — the whole pipeline on synthetic recordings of known
 * amplitude, latency and kinetics, at lab and non-lab rates. */
#include "internal.h"
#include "synth.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static nt_trial_result *run(const nt_recording *rec, const nt_params *p)
{
    nt_analyzer *a = NULL;
    cr_assert_eq(nt_analyzer_create(p, &a, NULL), NT_OK);
    nt_trial_result *res = calloc(rec->n_rois * rec->n_stims, sizeof *res);
    cr_assert_not_null(res);
    nt_error err;
    cr_assert_eq(nt_analyzer_execute(a, rec, res, &err), NT_OK, "%s", err.message);
    nt_analyzer_destroy(a);
    return res;
}

TestSuite(analyzer);

/* A fast and a slow responder and a silent ROI at 8.33 Hz, stimulus at
 * frame 200, SNR 12 (amplitude / per-frame noise). */
Test(analyzer, measures_known_transients)
{
    nt_recording *rec = synth_recording(3, 600, 8.33, 200);
    cr_assert_not_null(rec);
    synth_rng rng = {2024};
    synth_roi fast = {0.06, 0.3, 0.2, 2.0, 0.005, 3000};
    synth_roi slow = {0.08, 0.5, 3.0, 20.0, 0.0066, 5000};
    synth_roi none = {0.0, 0.0, 1.0, 1.0, 0.005, 4000};
    synth_fill(rec, 0, &fast, &rng);
    synth_fill(rec, 1, &slow, &rng);
    synth_fill(rec, 2, &none, &rng);
    nt_trial_result *r = run(rec, NULL);
    double frame = 1 / 8.33;

    cr_assert_eq(r[0].detected, 1);
    cr_assert(fabs(r[0].amplitude_dff - 0.06) / 0.06 < 0.1, "fast amp %g", r[0].amplitude_dff);
    double tp_fast = fast.latency_s + synth_peak_time(0.2, 2.0);
    cr_assert(fabs(r[0].time_to_peak_s - tp_fast) <= 2 * frame, "fast ttp %g want %g",
              r[0].time_to_peak_s, tp_fast);
    cr_assert(fabs(r[0].decay_tau_s - 2.0) / 2.0 < 0.15, "fast tau %g", r[0].decay_tau_s);
    cr_assert(r[0].onset_latency_s > 0 && r[0].onset_latency_s < tp_fast);
    cr_assert_float_eq(r[0].f0, 3000, 30);

    cr_assert_eq(r[1].detected, 1);
    cr_assert(fabs(r[1].amplitude_dff - 0.08) / 0.08 < 0.1, "slow amp %g", r[1].amplitude_dff);
    double tp_slow = slow.latency_s + synth_peak_time(3.0, 20.0);
    cr_assert(fabs(r[1].time_to_peak_s - tp_slow) < 1.5, "slow ttp %g want %g",
              r[1].time_to_peak_s, tp_slow);
    cr_assert(tp_slow > 6, "the slow model peaks late (%g s)", tp_slow);
    cr_assert(r[1].decay_tau_s > 14 && r[1].decay_tau_s < 30, "slow tau %g", r[1].decay_tau_s);

    cr_assert_eq(r[2].detected, 0);
    cr_assert(isnan(r[2].decay_tau_s) && isnan(r[2].onset_latency_s));
    cr_assert(isfinite(r[2].noise_sd_dff));
    free(r);
    nt_recording_free(rec);
}

/* Silent ROIs with white noise: the false-positive rate must be low. */
Test(analyzer, few_false_positives_on_noise)
{
    const size_t n_rois = 400;
    nt_recording *rec = synth_recording(n_rois, 600, 8.33, 200);
    synth_rng rng = {5};
    synth_roi none = {0.0, 0.0, 1.0, 1.0, 0.01, 2000};
    for (size_t r = 0; r < n_rois; r++)
        synth_fill(rec, r, &none, &rng);
    nt_trial_result *res = run(rec, NULL);
    size_t fp = 0;
    for (size_t r = 0; r < n_rois; r++)
        fp += (size_t)res[r].detected;
    cr_assert(fp <= n_rois / 50, "%zu false positives in %zu silent ROIs", fp, n_rois);
    free(res);
    nt_recording_free(rec);
}

/* Rates from 5 to 50 Hz: the same response is found and timed. */
Test(analyzer, works_across_rates)
{
    const double rates[] = {5.0, 8.33, 20.0, 50.0};
    for (size_t k = 0; k < 4; k++) {
        double rate = rates[k];
        size_t n = (size_t)(72 * rate);
        nt_recording *rec = synth_recording(1, n, rate, (long)(24 * rate));
        synth_rng rng = {11 + k};
        synth_roi roi = {0.05, 0.4, 0.3, 3.0, 0.004, 3000};
        synth_fill(rec, 0, &roi, &rng);
        nt_trial_result *r = run(rec, NULL);
        double tp = roi.latency_s + synth_peak_time(0.3, 3.0);
        cr_assert_eq(r[0].detected, 1, "rate %g", rate);
        cr_assert(fabs(r[0].amplitude_dff - 0.05) / 0.05 < 0.12, "rate %g amp %g", rate,
                  r[0].amplitude_dff);
        cr_assert(fabs(r[0].time_to_peak_s - tp) < fmax(2 / rate, 0.15), "rate %g ttp %g want %g",
                  rate, r[0].time_to_peak_s, tp);
        free(r);
        nt_recording_free(rec);
    }
}

/* Irregular frame times: measures use the true timestamps. */
Test(analyzer, irregular_timestamps)
{
    nt_recording *rec = nt_recording_new(1, 600);
    rec->time_s = malloc(600 * sizeof(double));
    synth_rng jit = {3};
    for (size_t i = 0; i < 600; i++)
        rec->time_s[i] = i / 8.29 + 0.008 * (synth_uniform(&jit) - 0.5);
    rec->rate_hz = 599 / (rec->time_s[599] - rec->time_s[0]);
    rec->time_source = NT_SOURCE_FILE_TIME;
    double stim = rec->time_s[200];
    nt_recording_set_stims(rec, &stim, 1, NULL);
    synth_rng rng = {4};
    synth_roi roi = {0.05, 0.5, 0.3, 3.0, 0.003, 3000};
    synth_fill(rec, 0, &roi, &rng);
    nt_trial_result *r = run(rec, NULL);
    double tp = roi.latency_s + synth_peak_time(0.3, 3.0);
    cr_assert_eq(r[0].detected, 1);
    cr_assert(fabs(r[0].time_to_peak_s - tp) < 0.15, "ttp %g want %g", r[0].time_to_peak_s, tp);
    cr_assert(fabs(r[0].decay_tau_s - 3.0) / 3.0 < 0.1, "tau %g", r[0].decay_tau_s);
    free(r);
    nt_recording_free(rec);
}

/* Three stimuli: each trial gets its own baseline and its own response. */
Test(analyzer, multiple_stimuli)
{
    nt_recording *rec = nt_recording_new(1, 2400);
    nt_recording_set_rate(rec, 8.33, NULL);
    double stims[] = {24.0, 112.0, 200.0};
    nt_recording_set_stims(rec, stims, 3, NULL);
    synth_rng rng = {8};
    synth_roi roi = {0.04, 0.3, 0.5, 4.0, 0.003, 3000};
    synth_fill(rec, 0, &roi, &rng);
    nt_trial_result *r = run(rec, NULL);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(r[k].detected, 1, "trial %d", k + 1);
        cr_assert_eq(r[k].trial, (size_t)k);
        cr_assert_float_eq(r[k].stim_s, stims[k], 1e-12);
        cr_assert(fabs(r[k].amplitude_dff - 0.04) / 0.04 < 0.15, "trial %d amp %g", k + 1,
                  r[k].amplitude_dff);
    }
    free(r);
    nt_recording_free(rec);
}

/* Two results are the same to the bit (NaN equal to NaN). */
static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void assert_same_results(const nt_trial_result *x, const nt_trial_result *y, size_t n,
                                const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const nt_trial_result *a = &x[i], *b = &y[i];
        int same = a->roi == b->roi && a->trial == b->trial && a->detected == b->detected &&
                   a->flags == b->flags && same_double(a->stim_s, b->stim_s) &&
                   same_double(a->amplitude_dff, b->amplitude_dff) &&
                   same_double(a->peak_s, b->peak_s) &&
                   same_double(a->onset_latency_s, b->onset_latency_s) &&
                   same_double(a->time_to_peak_s, b->time_to_peak_s) &&
                   same_double(a->rise_s, b->rise_s) &&
                   same_double(a->half_width_s, b->half_width_s) &&
                   same_double(a->decay_tau_s, b->decay_tau_s) &&
                   same_double(a->auc_dff_s, b->auc_dff_s) && same_double(a->f0, b->f0) &&
                   same_double(a->noise_sd_dff, b->noise_sd_dff) && same_double(a->snr, b->snr);
        cr_assert(same, "%s: row %zu differs", what, i);
    }
}

/* A recording big enough for several threads: responders of varied
 * kinetics, silent ROIs and one ROI with a NaN sample, two stimuli. */
static nt_recording *threads_recording(size_t n_rois, size_t n_frames, unsigned seed)
{
    nt_recording *rec = nt_recording_new(n_rois, n_frames);
    nt_recording_set_rate(rec, 8.33, NULL);
    double stims[] = {30.0, 0.5 * (double)n_frames / 8.33 + 15};
    nt_recording_set_stims(rec, stims, 2, NULL);
    synth_rng rng = {seed};
    for (size_t r = 0; r < n_rois; r++) {
        synth_roi roi = {r % 3 ? 0.02 + 0.1 * synth_uniform(&rng) : 0.0, 0.3,
                         0.2 + 2.0 * synth_uniform(&rng), 3.0 + 15.0 * synth_uniform(&rng),
                         0.005, 2000 + 4000 * synth_uniform(&rng)};
        synth_fill(rec, r, &roi, &rng);
    }
    rec->traces[(n_rois > 5 ? 5 : n_rois - 1) * n_frames + 100] = NAN;
    return rec;
}

/* ROIs are shared among threads; the results must not depend on how many,
 * nor on an analyzer reused across recordings of other lengths. */
Test(analyzer, results_do_not_depend_on_threads)
{
    nt_recording *big = threads_recording(90, 4800, 31), *small = threads_recording(4, 600, 32);
    size_t n_big = big->n_rois * big->n_stims, n_small = small->n_rois * small->n_stims;
    nt_params p;
    nt_params_default(&p);
    p.threads = 1;
    nt_trial_result *one = run(big, &p), *small_one = run(small, &p);
    const int counts[] = {2, 3, 0};
    for (size_t k = 0; k < 3; k++) {
        p.threads = counts[k];
        nt_trial_result *many = run(big, &p);
        assert_same_results(one, many, n_big, "fresh analyzer");
        free(many);
    }

    /* The kept windows too: one thread against three. */
    p.threads = 1;
    nt_analyzer *a1 = NULL;
    cr_assert_eq(nt_analyzer_create(&p, &a1, NULL), NT_OK);
    cr_assert_eq(nt_analyzer_keep_windows(a1, 5.0, 20.0, NULL), NT_OK);
    nt_trial_result *res = calloc(n_big, sizeof *res);
    cr_assert_eq(nt_analyzer_execute(a1, big, res, NULL), NT_OK);
    size_t w1;
    const double *t1, *d1, *f1;
    cr_assert_eq(nt_analyzer_windows(a1, &w1, &t1, &d1, &f1), NT_OK);

    p.threads = 3;
    nt_analyzer *a = NULL;
    cr_assert_eq(nt_analyzer_create(&p, &a, NULL), NT_OK);
    cr_assert_eq(nt_analyzer_keep_windows(a, 5.0, 20.0, NULL), NT_OK);
    for (int pass = 0; pass < 2; pass++) {
        cr_assert_eq(nt_analyzer_execute(a, big, res, NULL), NT_OK);
        assert_same_results(one, res, n_big, "reused analyzer, big");
        size_t w3;
        const double *t3, *d3, *f3;
        cr_assert_eq(nt_analyzer_windows(a, &w3, &t3, &d3, &f3), NT_OK);
        cr_assert_eq(w3, w1);
        size_t bytes = n_big * w1 * sizeof(double);
        cr_assert(memcmp(t1, t3, bytes) == 0 && memcmp(d1, d3, bytes) == 0 &&
                      memcmp(f1, f3, bytes) == 0,
                  "kept windows differ");
        cr_assert_eq(nt_analyzer_execute(a, small, res, NULL), NT_OK);
        assert_same_results(small_one, res, n_small, "reused analyzer, small");
    }
    nt_analyzer_destroy(a);
    nt_analyzer_destroy(a1);
    free(res);
    free(one);
    free(small_one);
    nt_recording_free(big);
    nt_recording_free(small);
}

Test(analyzer, rejects_bad_thread_counts)
{
    nt_params p;
    nt_params_default(&p);
    cr_assert_eq(p.threads, 0);
    p.threads = -1;
    nt_analyzer *a = NULL;
    nt_error err;
    cr_assert_eq(nt_analyzer_create(&p, &a, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "threads") != NULL);
    cr_assert_null(a);
}

/* Bad samples and baselines give flagged NaN rows, not failures. */
Test(analyzer, nonfinite_and_nonpositive_rows_are_flagged)
{
    nt_recording *rec = synth_recording(3, 600, 8.33, 200);
    synth_rng rng = {1};
    synth_roi roi = {0.05, 0.3, 0.2, 2.0, 0.004, 3000};
    for (size_t r = 0; r < 3; r++)
        synth_fill(rec, r, &roi, &rng);
    rec->traces[0 * 600 + 17] = NAN;
    for (size_t i = 0; i < 600; i++)
        rec->traces[1 * 600 + i] = (float)(rec->traces[1 * 600 + i] - 4000.0f);
    nt_trial_result *r = run(rec, NULL);
    cr_assert(r[0].flags & NT_FLAG_NONFINITE);
    cr_assert(isnan(r[0].amplitude_dff) && r[0].detected == 0);
    cr_assert(r[1].flags & NT_FLAG_F0_NONPOSITIVE);
    cr_assert(isnan(r[1].amplitude_dff) && r[1].detected == 0);
    cr_assert_eq(r[2].flags, 0);
    cr_assert_eq(r[2].detected, 1);
    free(r);
    nt_recording_free(rec);
}

Test(analyzer, constant_trace_is_flat)
{
    nt_recording *rec = synth_recording(1, 600, 8.33, 200);
    for (size_t i = 0; i < 600; i++)
        rec->traces[i] = 1000;
    nt_trial_result *r = run(rec, NULL);
    cr_assert(r[0].flags & NT_FLAG_FLAT);
    cr_assert_eq(r[0].detected, 0);
    cr_assert_float_eq(r[0].f0, 1000, 1e-9);
    free(r);
    nt_recording_free(rec);
}

Test(analyzer, rejects_unready_recordings)
{
    nt_analyzer *a = NULL;
    nt_analyzer_create(NULL, &a, NULL);
    nt_recording *rec = nt_recording_new(1, 100);
    nt_trial_result res[1];
    nt_error err;
    cr_assert_eq(nt_analyzer_execute(a, rec, res, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "rate") != NULL, "%s", err.message);
    nt_recording_set_rate(rec, 10, NULL);
    cr_assert_eq(nt_analyzer_execute(a, rec, res, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "stimul") != NULL, "%s", err.message);
    double late = 50;
    nt_recording_set_stims(rec, &late, 1, NULL);
    cr_assert_eq(nt_analyzer_execute(a, rec, res, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "outside") != NULL, "%s", err.message);
    nt_recording_free(rec);
    nt_analyzer_destroy(a);
}

Test(analyzer, rejects_bad_params)
{
    nt_params p;
    nt_params_default(&p);
    p.threshold_sd = -1;
    nt_analyzer *a = NULL;
    nt_error err;
    cr_assert_eq(nt_analyzer_create(&p, &a, &err), NT_ERR_INVALID);
    cr_assert_null(a);
    cr_assert(strstr(err.message, "threshold") != NULL);
}

Test(analyzer, params_json_records_every_parameter)
{
    nt_params p;
    nt_params_default(&p);
    char buf[2048];
    size_t n = nt_params_json(&p, buf, sizeof buf);
    cr_assert(n > 0 && n < sizeof buf);
    const char *keys[] = {"nirtrace_version", "baseline_s", "drift", "noise_window_s",
                          "lowpass_hz", "threshold_sd", "min_duration_s", "window_s",
                          "jitter_frames", "peak_max_s", "decay_max_s", "detector",
                          "false_alarm", "template", "tau_on_s", "tau_off_s"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(buf, keys[i]) != NULL, "missing %s", keys[i]);
}

/* Kept windows hold the trial's ΔF/F on true frame times around the
 * stimulus, NaN past the recording. */
Test(analyzer, keeps_trace_windows)
{
    nt_recording *rec = synth_recording(2, 600, 10.0, 200);
    synth_rng rng = {6};
    synth_roi roi = {0.05, 0.5, 0.3, 3.0, 0.0, 1000};
    synth_fill(rec, 0, &roi, &rng);
    synth_fill(rec, 1, &roi, &rng);
    nt_params p;
    nt_params_default(&p);
    p.drift = NT_DRIFT_NONE;
    nt_analyzer *a = NULL;
    cr_assert_eq(nt_analyzer_create(&p, &a, NULL), NT_OK);
    cr_assert_eq(nt_analyzer_keep_windows(a, 5.0, 50.0, NULL), NT_OK);
    nt_trial_result res[2];
    cr_assert_eq(nt_analyzer_execute(a, rec, res, NULL), NT_OK);
    size_t w;
    const double *t, *d, *f;
    cr_assert_eq(nt_analyzer_windows(a, &w, &t, &d, &f), NT_OK);
    cr_assert_eq(w, 551); /* 55 s at 10 Hz, both ends included */
    cr_assert_float_eq(t[0], -5.0, 1e-9);
    cr_assert_float_eq(d[0], 0.0, 1e-6);
    /* 2 s after the stimulus: the model, noiseless. */
    double scale = 0.05 / synth_peak_value(0.3, 3.0);
    cr_assert_float_eq(d[70], synth_response(1.5, scale, 0.3, 3.0), 1e-5);
    cr_assert(fabs(f[70] - d[70]) < 0.005, "filtered %g vs raw %g", f[70], d[70]);
    /* 40 s + 20 s pass the 60 s recording: NaN at the end of the window. */
    cr_assert(isnan(t[w - 1]) && isnan(d[w - 1]));
    cr_assert_float_eq(t[w + 0], -5.0, 1e-9, "second row starts its own window");
    nt_analyzer_destroy(a);
    nt_recording_free(rec);
}

/* Responders of one known shape and silent ROIs: the fixed template of
 * that shape and the learnt one (auto) find every responder, keep the
 * silent ROIs quiet and measure the decay (median within 10 %). */
Test(analyzer, fixed_and_auto_templates_find_known_responses)
{
    const size_t n_resp = 30, n_rois = 60;
    nt_recording *rec = synth_recording(n_rois, 600, 8.33, 200);
    cr_assert_not_null(rec);
    synth_rng rng = {77};
    synth_roi resp = {0.05, 0.3, 0.4, 4.0, 0.005, 3000};
    synth_roi none = {0.0, 0.0, 1.0, 1.0, 0.005, 3000};
    for (size_t r = 0; r < n_rois; r++)
        synth_fill(rec, r, r < n_resp ? &resp : &none, &rng);
    const int kinds[] = {NT_TEMPLATE_FIXED, NT_TEMPLATE_AUTO};
    for (size_t k = 0; k < 2; k++) {
        nt_params p;
        nt_params_default(&p);
        p.template_kind = kinds[k];
        p.tau_on_s = 0.4;
        p.tau_off_s = 4.0;
        nt_trial_result *res = run(rec, &p);
        size_t hits = 0, fp = 0, n_tau = 0;
        double tau[60], work[60];
        for (size_t r = 0; r < n_rois; r++) {
            if (r < n_resp) {
                hits += (size_t)res[r].detected;
                if (isfinite(res[r].decay_tau_s))
                    tau[n_tau++] = res[r].decay_tau_s;
            } else {
                fp += (size_t)res[r].detected;
            }
        }
        const char *name = nt_template_name(kinds[k]);
        cr_assert_eq(hits, n_resp, "%s: %zu of %zu responders found", name, hits, n_resp);
        cr_assert(fp <= 1, "%s: %zu false positives", name, fp);
        double med = n_tau > 0 ? nt_median(tau, n_tau, work) : NAN;
        cr_assert(n_tau >= n_resp - 1 && fabs(med / 4.0 - 1.0) < 0.1,
                  "%s: %zu decays, median %g s (true 4 s)", name, n_tau, med);
        free(res);
    }
    nt_recording_free(rec);
}

/* Weak responses of one shape: the single template of that shape needs a
 * lower threshold than the four-shape bank (fewer shapes to try under
 * noise alone), so it finds at least as many. */
Test(analyzer, fixed_template_is_at_least_as_sensitive_as_the_bank)
{
    const size_t n_rois = 300;
    nt_recording *rec = synth_recording(n_rois, 600, 8.33, 200);
    cr_assert_not_null(rec);
    synth_rng rng = {4242};
    synth_roi weak = {0.004, 0.3, 0.3, 3.0, 0.005, 3000}; /* SNR 0.8 */
    for (size_t r = 0; r < n_rois; r++)
        synth_fill(rec, r, &weak, &rng);
    size_t found[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        nt_params p;
        nt_params_default(&p);
        if (k == 1) {
            p.template_kind = NT_TEMPLATE_FIXED;
            p.tau_on_s = 0.3;
            p.tau_off_s = 3.0;
        }
        nt_trial_result *res = run(rec, &p);
        for (size_t r = 0; r < n_rois; r++)
            found[k] += (size_t)res[r].detected;
        free(res);
    }
    cr_assert(found[0] > n_rois / 4 && found[0] < n_rois, "bank found %zu of %zu", found[0],
              n_rois);
    cr_assert_geq(found[1], found[0], "fixed found %zu, bank %zu", found[1], found[0]);
    nt_recording_free(rec);
}

Test(analyzer, rejects_bad_template_parameters)
{
    nt_params p;
    nt_params_default(&p);
    p.tau_on_s = 0;
    nt_error err;
    cr_assert_eq(nt_params_check(&p, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "time constants") != NULL, "%s", err.message);
    nt_params_default(&p);
    p.template_kind = 7;
    cr_assert_eq(nt_params_check(&p, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_template_parse("auto"), NT_TEMPLATE_AUTO);
    cr_assert_eq(nt_template_parse("fixed"), NT_TEMPLATE_FIXED);
    cr_assert_eq(nt_template_parse("Bank"), -1);
    cr_assert_str_eq(nt_template_name(NT_TEMPLATE_BANK), "bank");
}

/* Weak responses (SNR 2.5): where the model fit is not trusted (nofit),
 * the matched detector reports its template's least-squares amplitude,
 * which is closer to the truth than the largest sample of the filtered
 * trace that the threshold detector reports (biased upwards by noise). */
Test(analyzer, nofit_rows_take_the_matched_filter_amplitude)
{
    const size_t n_rois = 300;
    nt_recording *rec = synth_recording(n_rois, 600, 8.33, 200);
    cr_assert_not_null(rec);
    synth_rng rng = {9090};
    synth_roi weak = {0.0125, 0.3, 0.3, 3.0, 0.005, 3000};
    for (size_t r = 0; r < n_rois; r++)
        synth_fill(rec, r, &weak, &rng);
    nt_params p;
    nt_params_default(&p);
    nt_trial_result *mf = run(rec, &p);
    p.detector = NT_DETECTOR_THRESHOLD;
    nt_trial_result *thr = run(rec, &p);
    double err_mf[300], err_thr[300], work[300];
    size_t n = 0;
    for (size_t r = 0; r < n_rois; r++)
        if (mf[r].detected && thr[r].detected && (mf[r].flags & NT_FLAG_NOFIT) &&
            (thr[r].flags & NT_FLAG_NOFIT)) {
            err_mf[n] = fabs(mf[r].amplitude_dff / weak.amp_dff - 1.0);
            err_thr[n++] = fabs(thr[r].amplitude_dff / weak.amp_dff - 1.0);
        }
    cr_assert_geq(n, 10, "only %zu rows unfitted by both", n);
    double e_mf = nt_median(err_mf, n, work), e_thr = nt_median(err_thr, n, work);
    cr_log_info("%zu unfitted rows: median amplitude error %.3f (matched) vs %.3f (waveform)", n,
                e_mf, e_thr);
    cr_assert_lt(e_mf, e_thr, "matched %g, waveform %g over %zu rows", e_mf, e_thr, n);
    free(mf);
    free(thr);
    nt_recording_free(rec);
}

/* A recording too short for a matched filter (12 frames) is still
 * analysed, by the threshold detector, rather than failing. */
Test(analyzer, too_short_for_the_matched_filter_falls_back)
{
    nt_recording *rec = synth_recording(2, 12, 8.33, 6);
    cr_assert_not_null(rec);
    synth_rng rng = {3};
    synth_roi roi = {0.2, 0.0, 0.1, 0.5, 0.002, 3000};
    synth_fill(rec, 0, &roi, &rng);
    synth_fill(rec, 1, &roi, &rng);
    nt_params p;
    nt_params_default(&p);
    cr_assert_eq(p.detector, NT_DETECTOR_MATCHED);
    nt_trial_result *res = run(rec, &p);
    p.detector = NT_DETECTOR_THRESHOLD;
    nt_trial_result *thr = run(rec, &p);
    for (size_t r = 0; r < 2; r++) {
        cr_assert_eq(res[r].detected, thr[r].detected, "roi %zu", r);
        cr_assert(isfinite(res[r].f0));
    }
    free(res);
    free(thr);
    nt_recording_free(rec);
}

/* The shadow flag marks a real dip right after the stimulus (an electrode
 * or bubble artefact), and not the low-pass's ringing before a strong,
 * fast response recorded at a high rate. */
Test(analyzer, shadow_marks_real_dips_only)
{
    const double rate = 1000.0;
    const size_t n = (size_t)(40 * rate);
    nt_recording *rec = synth_recording(2, n, rate, (long)(20 * rate));
    cr_assert_not_null(rec);
    synth_rng rng = {21};
    /* ROI 0: a strong fast response (SNR 5 per sample at 1 kHz). */
    synth_roi fast = {0.05, 0.2, 0.05, 1.0, 0.01, 3000};
    synth_fill(rec, 0, &fast, &rng);
    /* ROI 1: noise, and a 0.3 s dip of 2 % from 0.1 s after the stimulus. */
    synth_roi none = {0.0, 0.0, 1.0, 1.0, 0.01, 3000};
    synth_fill(rec, 1, &none, &rng);
    for (size_t i = 0; i < n; i++) {
        double u = rec->time_s[i] - rec->stim_s[0];
        if (u >= 0.1 && u < 0.4)
            rec->traces[n + i] *= 0.98f;
    }
    nt_trial_result *r = run(rec, NULL);
    cr_assert_eq(r[0].detected, 1);
    cr_assert_eq(r[0].flags & NT_FLAG_SHADOW, 0u, "the clean response is flagged shadow");
    cr_assert_neq(r[1].flags & NT_FLAG_SHADOW, 0u, "the dip is not flagged");
    free(r);
    nt_recording_free(rec);
}
