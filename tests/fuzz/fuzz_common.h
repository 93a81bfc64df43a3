/*
 * fuzz_common.h — what the libFuzzer harnesses share (header-only: each
 * harness is one program, built by the fuzz rules of the Makefile).
 *
 *  - fuzz_file_write: the readers that take a path (HDF5, CSV/TSV,
 *    manifest, compare) get the input as a file in memory, in
 *    /dev/shm/nt_fuzz (else $TMPDIR or /tmp), named by process, so that
 *    parallel fuzzing jobs never share a file; the files of crashed
 *    processes are removed by the next one.
 *  - fuzz_analyse: a recording that a reader accepted goes on through what
 *    `nirtrace detect` does with it (overrides for a missing time base or
 *    stimulus, the check, the analysis), so that values only a hostile file
 *    can hold (irregular times, huge or denormal samples) reach the stages.
 */
#ifndef NT_FUZZ_COMMON_H
#define NT_FUZZ_COMMON_H

#include "nirtrace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory of the input files: one for every harness and process,
 * each file named PID-SLOT. Files of a process that died without removing
 * them (a crash, a -fork job killed at its timeout) are removed by the
 * next process that starts. */
static char fuzz_dir[256];

static inline void fuzz_files_remove(void)
{
    char path[300];
    for (int slot = 0; slot < 8; slot++) {
        snprintf(path, sizeof path, "%s/%ld-%d", fuzz_dir, (long)getpid(), slot);
        unlink(path);
    }
}

static inline void fuzz_dir_open(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/nt_fuzz", base != NULL ? base : "/tmp");
    if (mkdir(fuzz_dir, 0700) != 0 && errno != EEXIST) {
        perror("fuzz: mkdir");
        abort();
    }
    DIR *d = opendir(fuzz_dir);
    struct dirent *ent;
    while (d != NULL && (ent = readdir(d)) != NULL) {
        long pid;
        int slot;
        char path[600];
        if (sscanf(ent->d_name, "%ld-%d", &pid, &slot) == 2 && pid != (long)getpid() &&
            kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            snprintf(path, sizeof path, "%s/%s", fuzz_dir, ent->d_name);
            unlink(path);
        }
    }
    if (d != NULL)
        closedir(d);
    atexit(fuzz_files_remove);
}

/*
 * Writes data [size] to file number slot (0-7) of this process and returns
 * its path (static storage, one per slot). A real file, not a memfd:
 * HDF5 1.10 resolves the real path of what it opens, which a memfd's
 * /proc/self/fd/N has not. Aborts when the file system fails, which is the
 * harness's fault, never the input's.
 */
static inline const char *fuzz_file_write(int slot, const void *data, size_t size)
{
    static char paths[8][300];
    if (fuzz_dir[0] == '\0')
        fuzz_dir_open();
    snprintf(paths[slot], sizeof paths[slot], "%s/%ld-%d", fuzz_dir, (long)getpid(), slot);
    int fd = open(paths[slot], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("fuzz: open");
        abort();
    }
    const unsigned char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n <= 0) {
            perror("fuzz: write");
            abort();
        }
        p += n;
        left -= (size_t)n;
    }
    close(fd);
    return paths[slot];
}

/* The readers' memory limit in the harnesses: small enough that a file
 * declaring a huge dataset is refused rather than run into libFuzzer's
 * -rss_limit_mb. */
#define FUZZ_MAX_BYTES ((size_t)64 << 20)

/* Largest recording analysed: the analysis costs a fit per (ROI, trial). */
#define FUZZ_MAX_ROIS 16
#define FUZZ_MAX_STIMS 8
#define FUZZ_MAX_FRAMES 20000

/*
 * Analyses rec (which the caller still owns and frees) as the CLI would,
 * when it is small enough: the lab default rate (8.33 Hz) when it has no
 * time base, a stimulus at its middle frame when it has none. Failures are
 * the input's and end the function quietly; only memory errors and
 * undefined behaviour are findings.
 */
static inline void fuzz_analyse(nt_recording *rec)
{
    nt_error err;
    nt_analyzer *an = NULL;
    nt_trial_result *res = NULL;
    if (rec == NULL || rec->traces == NULL || rec->n_rois > FUZZ_MAX_ROIS ||
        rec->n_frames > FUZZ_MAX_FRAMES)
        return;
    if (rec->time_s == NULL && nt_recording_set_rate(rec, 8.33, &err) != NT_OK)
        return;
    if (rec->n_stims == 0) {
        long frame = (long)(rec->n_frames / 2);
        if (nt_recording_set_stim_frames(rec, &frame, 1, &err) != NT_OK)
            return;
    }
    if (rec->n_stims > FUZZ_MAX_STIMS || nt_recording_check(rec, &err) != NT_OK)
        return;
    res = calloc(rec->n_rois * rec->n_stims, sizeof *res);
    if (res != NULL && nt_analyzer_create(NULL, &an, &err) == NT_OK)
        nt_analyzer_execute(an, rec, res, &err);
    nt_analyzer_destroy(an);
    free(res);
}

#endif
