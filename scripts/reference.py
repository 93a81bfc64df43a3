#!/usr/bin/python3
"""Peer reference: the evoked-release analysis a lab would write with h5py + numpy + scipy.

Used as the comparison baseline in nirtrace benchmarks. Deliberately a plain,
typical lab script (fixed windows, one filter, one threshold), not an optimised one.

Usage: reference.py [--rate HZ] [--stim S[,S...]] [--grid PX] [-o OUT.csv] FILE.h5 [FILE.h5 ...]

Input: /traces [rois][frames], or a camera movie /movie [frames][height][width]
cut into square tiles of --grid PX pixels (default 15), one ROI per whole tile
(edge pixels past the last whole tile are dropped), each trace the mean of its
tile's pixels, ROIs named r000c000 (0-based tile row and column) in row-major
order: the same grid as nirtrace.

Per file, ROI and stimulus:
  F0            mean of the raw trace over the 2 s before the stimulus
  dF/F          (F - F0) / F0 over the whole trace
  filtered      4th-order Butterworth low-pass at 2 Hz, sosfiltfilt (zero phase)
  noise_sd_dff  1.4826 * MAD of the filtered dF/F over the same 2 s baseline
  detected      filtered dF/F > 3 sigma for >= 2 consecutive samples within 8 s
                after the stimulus
  amplitude     max of filtered dF/F in the 8 s window; peak_s its time
  onset latency first sample of the first qualifying run - stimulus
  time_to_peak  peak_s - stimulus
  rise_s        10-90 % rise time on the rising edge before the peak
  half_width_s  full width at half maximum around the peak
  decay_tau_s   curve_fit of A exp(-(t - tpeak)/tau) from the peak to the window end
  auc_dff_s     trapezoid integral of the positive part of filtered dF/F in the window
  snr           amplitude / noise_sd_dff
Non-detected trials report amplitude, peak, AUC, F0, noise and SNR; kinetics are NaN.

Timing: /time (seconds) wins over the rate_hz attribute of /traces (or /movie); --rate
overrides both. The filter uses the median frame interval of /time as its sampling rate.
"""
import argparse
import csv
import math
import signal
import sys

import h5py
import numpy as np
from scipy.optimize import curve_fit
from scipy.signal import butter, sosfiltfilt

BASELINE_S = 2.0
WINDOW_S = 8.0
CUTOFF_HZ = 2.0
ORDER = 4
K_SIGMA = 3.0
MIN_RUN = 2

HEADER = ["file", "roi", "trial", "stim_s", "label", "detected", "amplitude_dff",
          "peak_s", "onset_latency_s", "time_to_peak_s", "rise_s", "half_width_s",
          "decay_tau_s", "auc_dff_s", "f0", "noise_sd_dff", "snr"]


def as_str(x):
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def grid_traces(movie, grid):
    """Tile means of a movie [frames][height][width]: traces [rows * cols][frames]
    (row-major tiles) and their names."""
    n, height, width = movie.shape
    rows, cols = height // grid, width // grid
    if rows == 0 or cols == 0:
        sys.exit("movie of %d x %d px holds no whole %d px tile" % (height, width, grid))
    tiles = movie[:, :rows * grid, :cols * grid].reshape(n, rows, grid, cols, grid)
    means = tiles.mean(axis=(2, 4), dtype=np.float64)
    names = ["r%03dc%03d" % (r, c) for r in range(rows) for c in range(cols)]
    return means.reshape(n, rows * cols).T, names


def load(path, rate=None, stims=None, grid=15):
    with h5py.File(path, "r") as f:
        names = None
        if "traces" in f or "movie" not in f:
            data = f["traces"]
            traces = np.asarray(data[()], dtype=np.float64)
        else:
            data = f["movie"]
            traces, names = grid_traces(data[()], grid)
        if traces.ndim == 1:
            traces = traces[None, :]
        n = traces.shape[1]
        if rate is not None:
            t = np.arange(n) / rate
        elif "time" in f:
            t = np.asarray(f["time"][()], dtype=np.float64)
        elif "rate_hz" in data.attrs:
            t = np.arange(n) / float(data.attrs["rate_hz"])
        else:
            sys.exit("%s: no /time dataset and no rate_hz attribute; use --rate" % path)
        if t.size != n:
            sys.exit("%s: /time has %d samples, /traces has %d frames" % (path, t.size, n))
        labels = None
        if stims is None:
            if "stim/onsets" not in f:
                sys.exit("%s: no /stim/onsets; use --stim" % path)
            stims = [float(s) for s in np.atleast_1d(f["stim/onsets"][()])]
            if "stim/labels" in f:
                labels = [as_str(s) for s in np.atleast_1d(f["stim/labels"][()])]
        if labels is None or len(labels) != len(stims):
            labels = [""] * len(stims)
        if names is not None:
            pass
        elif "rois/names" in f:
            names = [as_str(s) for s in np.atleast_1d(f["rois/names"][()])]
        else:
            names = [str(i + 1) for i in range(traces.shape[0])]
    return traces, t, stims, labels, names


def level_cross(t, y, i0, i1, level):
    """Linear-interpolated time where y crosses `level` between samples i0 and i1."""
    y0, y1 = y[i0], y[i1]
    if y1 == y0:
        return t[i1]
    return t[i0] + (level - y0) * (t[i1] - t[i0]) / (y1 - y0)


def rising_cross(t, y, ipk, ilo, level):
    """Walk back from the peak to the last sample below level (not before ilo)."""
    i = ipk
    while i > ilo and y[i] >= level:
        i -= 1
    if y[i] >= level:
        return math.nan
    return level_cross(t, y, i, i + 1, level)


def falling_cross(t, y, ipk, ihi, level):
    """Walk forward from the peak to the first sample below level (not after ihi)."""
    i = ipk
    while i < ihi and y[i] >= level:
        i += 1
    if y[i] >= level:
        return math.nan
    return level_cross(t, y, i - 1, i, level)


def expdecay(tt, a, tau):
    return a * np.exp(-tt / tau)


def analyse_trial(t, y, stim, sigma, ilo_edge, ihi_edge):
    """Metrics for one ROI / one stimulus from the filtered dF/F y."""
    win = np.flatnonzero((t >= stim) & (t < stim + WINDOW_S))
    out = dict(detected=0, amplitude_dff=math.nan, peak_s=math.nan,
               onset_latency_s=math.nan, time_to_peak_s=math.nan, rise_s=math.nan,
               half_width_s=math.nan, decay_tau_s=math.nan, auc_dff_s=math.nan)
    if win.size == 0:
        return out
    yw, tw = y[win], t[win]
    ipk = win[int(np.argmax(yw))]
    amp = y[ipk]
    out["amplitude_dff"] = amp
    out["peak_s"] = t[ipk]
    out["auc_dff_s"] = float(np.trapz(np.clip(yw, 0.0, None), tw))

    # detection: >= MIN_RUN consecutive samples above K_SIGMA * sigma
    above = yw > K_SIGMA * sigma
    onset = None
    run = 0
    for k, a in enumerate(above):
        run = run + 1 if a else 0
        if run >= MIN_RUN:
            onset = k - MIN_RUN + 1
            break
    if onset is None:
        return out
    out["detected"] = 1
    out["onset_latency_s"] = tw[onset] - stim
    out["time_to_peak_s"] = t[ipk] - stim

    # 10-90 % rise on the rising edge before the peak (within the window)
    t10 = rising_cross(t, y, ipk, win[0], 0.1 * amp)
    t90 = rising_cross(t, y, ipk, win[0], 0.9 * amp)
    out["rise_s"] = t90 - t10

    # FWHM: left crossing back to the stimulus, right crossing up to the next
    # stimulus (or the end of the recording)
    tl = rising_cross(t, y, ipk, ilo_edge, 0.5 * amp)
    tr = falling_cross(t, y, ipk, ihi_edge, 0.5 * amp)
    out["half_width_s"] = tr - tl

    # single exponential from the peak to the end of the window
    seg = np.arange(ipk, win[-1] + 1)
    if seg.size >= 3:
        tt = t[seg] - t[ipk]
        try:
            with np.errstate(all="ignore"):
                p, _ = curve_fit(expdecay, tt, y[seg], p0=(amp, 2.0), maxfev=2000)
            if np.isfinite(p[1]) and p[1] > 0:
                out["decay_tau_s"] = float(p[1])
        except (RuntimeError, ValueError):
            pass
    return out


def analyse_file(path, rate=None, stims=None, grid=15):
    traces, t, stims, labels, names = load(path, rate, stims, grid)
    n = t.size
    if rate is not None:
        fs = rate
    else:
        fs = 1.0 / float(np.median(np.diff(t)))
    cutoff = min(CUTOFF_HZ, 0.45 * fs)
    sos = butter(ORDER, cutoff, btype="low", fs=fs, output="sos")
    rows = []
    results = {}
    for j, s in enumerate(stims):
        base = (t >= s - BASELINE_S) & (t < s)
        if base.sum() < 2:
            print("%s: stimulus %d at %.3f s has no 2 s baseline, skipped" % (path, j + 1, s),
                  file=sys.stderr)
            continue
        f0 = traces[:, base].mean(axis=1)
        dff = (traces - f0[:, None]) / f0[:, None]
        filt = sosfiltfilt(sos, dff, axis=1)
        fb = filt[:, base]
        mad = np.median(np.abs(fb - np.median(fb, axis=1)[:, None]), axis=1)
        sigma = 1.4826 * mad
        ilo_edge = int(np.searchsorted(t, s))
        ihi_edge = int(np.searchsorted(t, stims[j + 1])) - 1 if j + 1 < len(stims) else n - 1
        ihi_edge = min(max(ihi_edge, ilo_edge), n - 1)
        for r in range(traces.shape[0]):
            m = analyse_trial(t, filt[r], s, sigma[r], min(ilo_edge, n - 1), ihi_edge)
            snr = m["amplitude_dff"] / sigma[r] if sigma[r] > 0 else math.nan
            results[(r, j)] = [path, names[r], j + 1, s, labels[j], m["detected"],
                               m["amplitude_dff"], m["peak_s"], m["onset_latency_s"],
                               m["time_to_peak_s"], m["rise_s"], m["half_width_s"],
                               m["decay_tau_s"], m["auc_dff_s"], f0[r], sigma[r], snr]
    for r in range(traces.shape[0]):
        for j in range(len(stims)):
            if (r, j) in results:
                rows.append(results[(r, j)])
    return rows


def fmt(v):
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Inf" if v > 0 else "-Inf"
        return repr(v)
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", metavar="FILE.h5")
    ap.add_argument("--rate", type=float, help="sampling rate in Hz (overrides the file)")
    ap.add_argument("--stim", help="stimulus onsets in seconds, comma separated "
                                   "(overrides /stim/onsets)")
    ap.add_argument("--grid", type=int, default=15, metavar="PX",
                    help="movies: side of the square tile ROIs in pixels (default 15)")
    ap.add_argument("-o", "--output", help="output CSV (default stdout)")
    a = ap.parse_args(argv)
    if a.rate is not None and not a.rate > 0:
        ap.error("--rate must be > 0")
    if a.grid < 1:
        ap.error("--grid must be >= 1")
    stims = None
    if a.stim:
        try:
            stims = [float(x) for x in a.stim.split(",") if x.strip()]
        except ValueError:
            ap.error("--stim: expected comma-separated seconds")
    fh = open(a.output, "w", newline="") if a.output else sys.stdout
    try:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        for path in a.files:
            for row in analyse_file(path, a.rate, stims, a.grid):
                w.writerow([fmt(v) for v in row])
    finally:
        if fh is not sys.stdout:
            fh.close()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # quiet `| head`
    main()
