/* test_recording.c — the recording: time base and stimulus overrides,
 * readiness checks, and stimuli from a trigger channel. */
#include "internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

TestSuite(recording);

Test(recording, rate_and_stim_frames)
{
    nt_recording *rec = nt_recording_new(2, 600);
    cr_assert_eq(nt_recording_set_rate(rec, 8.33, NULL), NT_OK);
    cr_assert_float_eq(rec->time_s[200], 200 / 8.33, 1e-12);
    long frame = 200;
    cr_assert_eq(nt_recording_set_stim_frames(rec, &frame, 1, NULL), NT_OK);
    cr_assert_float_eq(rec->stim_s[0], 200 / 8.33, 1e-12);
    cr_assert_eq(rec->stim_source, NT_SOURCE_OVERRIDE);
    cr_assert_eq(nt_recording_check(rec, NULL), NT_OK);
    nt_error err;
    frame = 600;
    cr_assert_eq(nt_recording_set_stim_frames(rec, &frame, 1, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "outside") != NULL);
    cr_assert_eq(nt_recording_set_rate(rec, -1, &err), NT_ERR_INVALID);
    nt_recording_free(rec);
}

Test(recording, check_rejects_one_frame_and_unordered_time)
{
    nt_error err;
    nt_recording *rec = nt_recording_new(1, 1);
    cr_assert_eq(nt_recording_check(rec, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "frame") != NULL, "%s", err.message);
    nt_recording_free(rec);
    rec = nt_recording_new(1, 4);
    nt_recording_set_rate(rec, 1, NULL);
    rec->time_s[2] = rec->time_s[1];
    double s = 0.5;
    nt_recording_set_stims(rec, &s, 1, NULL);
    cr_assert_eq(nt_recording_check(rec, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "increasing") != NULL, "%s", err.message);
    nt_recording_free(rec);
}

/* A TTL channel with a 3-pulse train at 10 s and a single pulse at 40 s. */
static nt_recording *with_trigger(void)
{
    nt_recording *rec = nt_recording_new(3, 600);
    nt_recording_set_rate(rec, 10, NULL);
    for (size_t i = 0; i < 600; i++) {
        rec->traces[i] = 100;
        double t = rec->time_s[i];
        int high = (t >= 10.05 && t < 10.25) || (t >= 10.45 && t < 10.65) ||
                   (t >= 10.85 && t < 11.05) || (t >= 40.05 && t < 40.25);
        rec->traces[600 + i] = high ? 5.0f : 0.0f;
        rec->traces[1200 + i] = 200;
    }
    return rec;
}

Test(recording, trigger_train_is_one_trial_with_refractory)
{
    nt_recording *rec = with_trigger();
    cr_assert_eq(nt_recording_stims_from_trigger(rec, 1, NAN, 2.0, NULL), NT_OK);
    cr_assert_eq(rec->n_stims, 2);
    /* The edge is between 10.0 (0 V) and 10.1 s (5 V): half range at 10.05 s. */
    cr_assert_float_eq(rec->stim_s[0], 10.05, 1e-9);
    cr_assert_float_eq(rec->stim_s[1], 40.05, 1e-9);
    cr_assert_eq(rec->n_rois, 2, "the trigger channel is removed");
    cr_assert_float_eq(rec->traces[600], 200, 0, "ROI 3 moved to ROI 2");
    nt_recording_free(rec);
}

Test(recording, trigger_pulses_are_trials_without_refractory)
{
    nt_recording *rec = with_trigger();
    cr_assert_eq(nt_recording_stims_from_trigger(rec, 1, 1.0, 0.0, NULL), NT_OK);
    cr_assert_eq(rec->n_stims, 4);
    cr_assert_float_eq(rec->stim_s[1], 10.42, 1e-9); /* 1 V on a 0->5 V edge: 1/5 of the way */
    nt_recording_free(rec);
}

Test(recording, trigger_errors)
{
    nt_recording *rec = with_trigger();
    nt_error err;
    cr_assert_eq(nt_recording_stims_from_trigger(rec, 0, NAN, 1, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "constant") != NULL, "%s", err.message);
    cr_assert_eq(nt_recording_stims_from_trigger(rec, 7, NAN, 1, &err), NT_ERR_INVALID);
    cr_assert_eq(nt_recording_stims_from_trigger(rec, 1, 9.0, 1, &err), NT_ERR_INVALID);
    cr_assert(strstr(err.message, "no rising edge") != NULL, "%s", err.message);
    cr_assert_eq(rec->n_rois, 3, "a failed trigger leaves the ROIs alone");
    nt_recording_free(rec);
}
