#!/usr/bin/python3
"""Cross-format equivalence test (run by `make check`).

One recording (samples/fast_slow.h5: 12 ROIs of uint16 counts, 8.33 Hz, one
stimulus at frame 200) is written in every format nirtrace reads, by writers
independent of nirtrace: h5py (any-dataset HDF5, NWB 2.x), python3-soundfile
(WAV, FLAC, AIFF, CAF, RF64, W64) and Python's csv module (ImageJ Multi
Measure, generic TSV with a time column, header-less ROIs-by-frames). Each
must give the same per-trial rows from `nirtrace detect` as the original,
within float rounding: the samples are integers, exact in every format.

Usage: tests/test_formats.py NIRTRACE_BIN SAMPLE.h5
Prints one line per case and 'N passed, N failed'; exits 1 on any failure.
"""
import csv
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import soundfile

NT, SAMPLE = sys.argv[1], sys.argv[2]


def run(args, out):
    """Runs nirtrace detect with args, writing the table to out."""
    r = subprocess.run([NT, "detect", "-q", "-o", out] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"detect {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")


def same(expected, actual, ignore, atol="1e-9"):
    r = subprocess.run([NT, "compare", "--rtol", "1e-6", "--atol", atol, "--ignore", ignore,
                        expected, actual], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


with h5py.File(SAMPLE, "r") as f:
    traces = f["/traces"][()]                       # [rois][frames] uint16
    rate = float(f["/traces"].attrs["rate_hz"])
    onsets = f["/stim/onsets"][()].astype(np.float64)
    names = [n.decode() if isinstance(n, bytes) else n for n in f["/rois/names"][()]]
n_rois, n_frames = traces.shape
times = np.arange(n_frames) / rate
stim_arg = ",".join(repr(float(s)) for s in onsets)
timing = ["--rate", repr(rate), "--stim", stim_arg]

tmp = tempfile.mkdtemp(prefix="nt_formats_")
reference = os.path.join(tmp, "reference.csv")
run([SAMPLE], reference)


def case_dataset_frames_by_rois():
    """Any HDF5 dataset, frames-by-ROIs float64, stimuli from another dataset."""
    path = os.path.join(tmp, "anydataset.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("acq/frames", data=traces.T.astype(np.float64), chunks=True,
                         compression="gzip")
        f.create_dataset("acq/stim", data=onsets)
    return [path + ":/acq/frames", "--layout", "frames-by-rois", "--rate", repr(rate),
            "--stim-dataset", "/acq/stim"], "file,roi"


def case_nwb():
    """NWB 2.x: a RoiResponseSeries [frames][rois] with starting_time and rate,
    stimuli from the /intervals/trials table, written to the schema by h5py."""
    path = os.path.join(tmp, "session.nwb")
    with h5py.File(path, "w") as f:
        f.attrs["namespace"] = "core"
        f.attrs["neurodata_type"] = "NWBFile"
        f.attrs["nwb_version"] = "2.5.0"
        ophys = f.create_group("processing/ophys")
        ophys.attrs["neurodata_type"] = "ProcessingModule"
        ophys.attrs["namespace"] = "core"
        fl = ophys.create_group("Fluorescence")
        fl.attrs["neurodata_type"] = "Fluorescence"
        fl.attrs["namespace"] = "core"
        rrs = fl.create_group("RoiResponseSeries")
        rrs.attrs["neurodata_type"] = "RoiResponseSeries"
        rrs.attrs["namespace"] = "core"
        d = rrs.create_dataset("data", data=traces.T.astype(np.float32))
        d.attrs["conversion"] = 1.0
        d.attrs["offset"] = 0.0
        d.attrs["unit"] = "a.u."
        st = rrs.create_dataset("starting_time", data=0.0)
        st.attrs["rate"] = rate
        st.attrs["unit"] = "seconds"
        trials = f.create_group("intervals/trials")
        trials.attrs["neurodata_type"] = "TimeIntervals"
        trials.attrs["namespace"] = "core"
        trials.attrs["colnames"] = np.array([b"start_time", b"stop_time"], dtype=object)
        trials.create_dataset("start_time", data=onsets)
        trials.create_dataset("stop_time", data=onsets + 30.0)
        trials.create_dataset("id", data=np.arange(len(onsets)))
    return [path], "file,roi"


def native_subset(n):
    """A native HDF5 file of the first n ROIs (h5py), and its table: the
    reference for formats that hold fewer channels (FLAC: at most 8)."""
    path = os.path.join(tmp, f"first{n}.h5")
    with h5py.File(path, "w") as f:
        d = f.create_dataset("traces", data=traces[:n])
        d.attrs["rate_hz"] = rate
        f.create_dataset("stim/onsets", data=onsets)
    out = os.path.join(tmp, f"first{n}.csv")
    run([path], out)
    return out


def case_sound(fmt, subtype, ext, channels=None):
    def make():
        path = os.path.join(tmp, "rig." + ext)
        data = traces if channels is None else traces[:channels]
        # Audio headers hold integer rates: the true rate comes from --rate.
        soundfile.write(path, data.T.astype(np.int16), 8, format=fmt, subtype=subtype)
        ref = reference if channels is None else native_subset(channels)
        return [path] + timing, "file,roi", ref
    make.__doc__ = f"{fmt} {subtype} by python3-soundfile" + (
        f" ({channels} ROIs: the format's channel limit)" if channels else "")
    return make


def case_trigger():
    """WAV with a 13th channel recording the stimulator's TTL, high from frame 200."""
    path = os.path.join(tmp, "trigger.wav")
    ttl = np.zeros((n_frames, 1), dtype=np.int16)
    ttl[200:204] = 1000
    data = np.hstack([traces.T.astype(np.int16), ttl])
    soundfile.write(path, data, 8, format="WAV", subtype="PCM_16")
    # The edge crosses 999.999 just before frame 200: the onset is frame 200's
    # time within 1e-6 frames (0.1 us). The fitted measures move by their own
    # convergence tolerance (about 1e-6 s) with it: atol 1e-5 s.
    return [path, "--rate", repr(rate), "--trigger", "13", "--trigger-threshold",
            "999.999"], "file,roi", reference, "1e-5"


def case_imagej():
    """ImageJ/Fiji Multi Measure results: index column, Area/Mean/Min/Max per ROI."""
    path = os.path.join(tmp, "Results.csv")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        header = [" "]
        for r in range(n_rois):
            header += [f"Area{r + 1}", f"Mean{r + 1}", f"Min{r + 1}", f"Max{r + 1}"]
        w.writerow(header)
        for i in range(n_frames):
            row = [i + 1]
            for r in range(n_rois):
                v = int(traces[r, i])
                row += [225, v, v - 50, v + 50]
            w.writerow(row)
    return [path] + timing, "file,roi"


def case_tsv_time():
    """Generic frames-by-ROIs TSV with a time_s column and ROI names."""
    path = os.path.join(tmp, "traces.tsv")
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["time_s"] + names)
        for i in range(n_frames):
            w.writerow([repr(float(times[i]))] + [int(v) for v in traces[:, i]])
    return [path, "--stim", stim_arg], "file"


def case_rows_no_header():
    """The header-less ROIs-by-frames CSV lab scripts write."""
    path = os.path.join(tmp, "rois.csv")
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(traces.astype(int).tolist())
    return [path] + timing, "file,roi"


def case_convert_roundtrip():
    """`nirtrace convert` of the WAV back to native HDF5, with --rate/--stim."""
    wav = os.path.join(tmp, "convert_in.wav")
    soundfile.write(wav, traces.T.astype(np.int16), 8, format="WAV", subtype="PCM_16")
    out = os.path.join(tmp, "converted.h5")
    r = subprocess.run([NT, "convert", wav, out] + timing, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"convert: exit {r.returncode}: {r.stderr.strip()}")
    return [out], "file,roi"


cases = [case_dataset_frames_by_rois, case_nwb,
         case_sound("WAV", "PCM_16", "wav"), case_sound("FLAC", "PCM_16", "flac", channels=8),
         case_sound("AIFF", "PCM_16", "aiff"), case_sound("CAF", "PCM_16", "caf"),
         case_sound("RF64", "PCM_16", "rf64"), case_sound("W64", "PCM_16", "w64"),
         case_trigger, case_imagej, case_tsv_time, case_rows_no_header,
         case_convert_roundtrip]

passed = failed = 0
for make in cases:
    name = make.__doc__.strip().splitlines()[0]
    try:
        args, ignore, *rest = make()
        expected = rest[0] if rest else reference
        atol = rest[1] if len(rest) > 1 else "1e-9"
        out = os.path.join(tmp, f"case{passed + failed}.csv")
        run(args, out)
        ok, detail = same(expected, out, ignore, atol)
    except RuntimeError as e:
        ok, detail = False, str(e)
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}\n     {detail[:2000]}")
print(f"formats: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
