/*
 * testutil.h — scaffolding shared by the test files: a fresh temporary
 * directory per test (tmp_dir, made by tmp_dir_create in a suite's .init
 * and removed with everything in it by tmp_dir_remove in its .fini), paths
 * inside it, whole-file writes and reads that assert on I/O errors, and
 * running a program to its end (spawn_wait).
 *
 * Everything here is static: each test file that includes this header gets
 * its own tmp_dir and its own copies of the helpers it uses (the test
 * binary is built from the tests/test_*.c files alone).
 */
#ifndef NT_TESTUTIL_H
#define NT_TESTUTIL_H

#include "nirtrace.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The current test's temporary directory. */
static char tmp_dir[64];

/* Makes a fresh tmp_dir, /tmp/nt_test_<tag>_XXXXXX. */
static inline void tmp_dir_create(const char *tag)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nt_test_%s_XXXXXX", tag);
    cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp failed: %s", strerror(errno));
}

/* Removes path and, when it is a directory, everything below it (symbolic
 * links are removed, not followed). Best effort: errors are ignored. */
static inline void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            int len = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            if (len < 0 || (size_t)len >= sizeof child)
                continue; /* never act on a cut path */
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

static inline void tmp_dir_remove(void)
{
    remove_tree(tmp_dir);
}

/* Path of name inside tmp_dir (static storage, eight in rotation, so that
 * a few may be alive at once). */
static inline const char *tmp_path(const char *name)
{
    static char paths[8][512];
    static unsigned next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/%s", tmp_dir, name);
    return path;
}

/* Creates (or truncates) path and writes len bytes of data into it. */
static inline void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len, "short write to %s", path);
    cr_assert_eq(fclose(f), 0, "cannot close %s", path);
}

static inline void write_file_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

/* write_file into tmp_dir/name; returns the path (as tmp_path). */
static inline const char *tmp_write(const char *name, const void *data, size_t len)
{
    const char *path = tmp_path(name);
    write_file(path, data, len);
    return path;
}

static inline const char *tmp_write_text(const char *name, const char *text)
{
    return tmp_write(name, text, strlen(text));
}

/* The whole content of path as a new buffer with a NUL byte after its end
 * (free it), or NULL when the file cannot be opened. *len_out (may be
 * NULL) gets the size. */
static inline void *slurp_or_null(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            cr_assert_not_null(bigger);
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return buf;
}

/* slurp_or_null for a file that must be there. */
static inline void *slurp(const char *path, size_t *len_out)
{
    void *buf = slurp_or_null(path, len_out);
    cr_assert_not_null(buf, "cannot open %s: %s", path, strerror(errno));
    return buf;
}

static inline off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return st.st_size;
}

static inline int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries of dir whose name contains part. */
static inline int count_entries_containing(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part) != NULL)
            n++;
    closedir(d);
    return n;
}

static inline void assert_contains(const char *text, const char *part)
{
    cr_assert_not_null(strstr(text, part), "\"%s\" does not contain \"%s\"", text, part);
}

/* How a child process ended: exited with code, or signaled by sig. */
typedef struct child_end {
    int exited, code, signaled, sig;
} child_end;

/*
 * Runs bin with argv (argv[0] included) and env, stdin from in_path,
 * stdout to out_path (opened with out_flags: O_WRONLY | O_CREAT | O_TRUNC
 * for a fresh capture, O_WRONLY for an existing file), stderr to err_path
 * (fresh), and waits for it.
 */
static inline child_end spawn_wait(const char *bin, char *const argv[], char *const env[],
                                   const char *in_path, const char *out_path, int out_flags,
                                   const char *err_path)
{
    posix_spawn_file_actions_t fa;
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 1, out_path, out_flags, 0600), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 2, err_path,
                                                  O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s", bin, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
    child_end e = {0, -1, 0, 0};
    if (WIFEXITED(status)) {
        e.exited = 1;
        e.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        e.signaled = 1;
        e.sig = WTERMSIG(status);
    }
    return e;
}

/* Reads path with opts (NULL: the defaults), asserting success. */
static inline nt_recording *read_recording_ok(const char *path, const nt_read_options *opts)
{
    nt_recording *rec = NULL;
    nt_error err = {0, ""};
    int status = nt_recording_read(path, opts, &rec, &err);
    cr_assert_eq(status, NT_OK, "read %s: status %d: %s", path, status, err.message);
    cr_assert_not_null(rec, "no recording");
    return rec;
}

/* Reads path with opts, asserting that it fails with status, sets
 * err->status and a message, and resets *out to NULL. */
static inline void read_recording_fails(const char *path, const nt_read_options *opts, int status,
                                        nt_error *err)
{
    nt_recording *rec = (nt_recording *)&rec; /* must be reset to NULL */
    int got = nt_recording_read(path, opts, &rec, err);
    cr_assert_eq(got, status, "expected status %d, got %d: %s", status, got, err->message);
    cr_assert_eq(err->status, status, "err->status not set");
    cr_assert_null(rec, "*out must be NULL on failure");
    cr_assert_neq(err->message[0], '\0', "empty message");
}

#endif
