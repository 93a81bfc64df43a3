/*
 * writer_hdf5.h — private: the HDF5 file of processed trial windows that
 * `nirtrace detect --traces-out FILE.h5` writes for plotting. Its layout is
 * documented at the top of writer_hdf5.c. (nt_write_hdf5, the writer of
 * recordings, is public: see nirtrace.h.)
 */
#ifndef NT_WRITER_HDF5_H
#define NT_WRITER_HDF5_H

#include "nirtrace.h"

#include <stddef.h>

/* A traces file being written. Not thread-safe. */
typedef struct nt_traces_writer nt_traces_writer;

/*
 * Starts the traces file path. It is written under a temporary name in the
 * same directory ("<path>.tmp.XXXXXX") and only appears at path when
 * nt_traces_writer_close commits it; until then an existing file at path is
 * untouched. A path naming a directory or another non-regular file is
 * refused (NT_ERR_IO). The HDF5 file itself is built in memory and written
 * out by close: memory use grows with the windows added, by about the size
 * they take in the file (compressed float32).
 * On success *out is a new writer; end it with nt_traces_writer_close.
 * On failure *out is NULL and nothing is left on disk.
 */
int nt_traces_writer_create(const char *path, nt_traces_writer **out, nt_error *err);

/*
 * Adds one recording's trial windows as the group /recordings/NNN (000, 001,
 * ... in order of the calls). Every array is borrowed and copied to the file:
 *   t_rel_s:      [n_rois * n_trials][n_win] seconds relative to the
 *                 stimulus, NaN where the window leaves the recording
 *   dff:          [n_rois * n_trials][n_win] raw ΔF/F (fraction)
 *   dff_filtered: [n_rois * n_trials][n_win] low-passed ΔF/F
 *                 (all three ROI-major: row r * n_trials + k is ROI r, trial k)
 *   stim_s:       [n_trials] stimulus onsets, seconds from the first frame
 *   roi_names:    [n_rois] strings, or NULL (a NULL entry is written as "")
 *   stim_labels:  [n_trials] strings, or NULL (likewise)
 *   source:       the input path, stored as the group's `source` attribute
 * The arrays may be NULL only when they would hold no element.
 * Invalid arguments (NT_ERR_INVALID) leave the writer as it was. A failure
 * while adding (NT_ERR_NOMEM, or an HDF5 failure) leaves the file
 * incomplete: later adds fail and nt_traces_writer_close can only discard it.
 */
int nt_traces_writer_add(nt_traces_writer *w, const char *source, size_t n_rois,
                         size_t n_trials, size_t n_win, const double *t_rel_s, const double *dff,
                         const double *dff_filtered, const double *stim_s,
                         char *const *roi_names, char *const *stim_labels, nt_error *err);

/*
 * Ends the writer and frees it. commit != 0: finishes the file, syncs it to
 * disk and renames it over path; fails (the file is discarded, an existing
 * file at path untouched) when any earlier add failed or the file cannot be
 * finished. commit == 0: discards the file and returns NT_OK. Accepts NULL
 * (returns NT_OK).
 */
int nt_traces_writer_close(nt_traces_writer *w, int commit, nt_error *err);

#endif /* NT_WRITER_HDF5_H */
