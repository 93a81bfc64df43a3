/*
 * batch.c — one worker process per input, outputs released in input order.
 *
 * Method: the parent forks a child per input (at most opts->jobs at once).
 * The child's rows go to one pipe and its stderr to another; the parent
 * polls every pipe, buffers what arrives, and when an input and all inputs
 * before it are finished, writes that input's messages to stderr and its
 * rows to the output. A child that dies by a signal, outlives its timeout
 * (the parent kills it) or exits with status 2 (out of memory under its
 * address-space limit) becomes a one-line error for that input; the others
 * are unaffected. Only the order of release depends on the inputs, never on
 * timing, so any -j gives the same bytes.
 */
#include "batch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum job_state { JOB_PENDING, JOB_RUNNING, JOB_DONE, JOB_EMITTED };

typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer;

typedef struct job {
    int state;
    pid_t pid;
    int out_fd, err_fd;   /* -1 once closed */
    buffer out, err;
    double started_s;
    int timed_out;
    int wait_status;
    int spawn_failed;
} job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Appends to b; on allocation failure the data is dropped and the job will
 * be reported as failed by its exit status or missing output. */
static int buffer_append(buffer *b, const char *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void buffer_free(buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGPIPE: return "SIGPIPE";
    case SIGXCPU: return "SIGXCPU";
    default: return "a signal";
    }
}

/* In the child: limits, default signal dispositions, then the work. */
static void run_child(const batch_options *opts, size_t index, int out_fd, int err_fd,
                      batch_work_fn work, void *ctx)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
#if defined(__SANITIZE_ADDRESS__)
    (void)opts;
#else
    /* AddressSanitizer reserves terabytes of address space: an address
     * space limit would stop it, so sanitizer builds run without one. */
    if (opts->memory_bytes > 0) {
        struct rlimit rl = {opts->memory_bytes, opts->memory_bytes};
        setrlimit(RLIMIT_AS, &rl);
    }
#endif
    if (dup2(err_fd, STDERR_FILENO) < 0)
        _exit(1);
    close(err_fd);
    FILE *out = fdopen(out_fd, "w");
    if (out == NULL)
        _exit(1);
    int status = work(ctx, index, out);
    if (fclose(out) != 0 && status == 0)
        status = 1;
    fflush(stderr);
    _exit(status);
}

static void start_job(const batch_options *opts, job *j, size_t index, batch_work_fn work,
                      void *ctx)
{
    int out_pipe[2], err_pipe[2];
    j->state = JOB_RUNNING;
    j->started_s = now_s();
    if (pipe(out_pipe) != 0) {
        j->spawn_failed = errno;
        j->state = JOB_DONE;
        return;
    }
    if (pipe(err_pipe) != 0) {
        j->spawn_failed = errno;
        close(out_pipe[0]);
        close(out_pipe[1]);
        j->state = JOB_DONE;
        return;
    }
    fflush(NULL); /* the child must not write the parent's buffered output again */
    pid_t pid = fork();
    if (pid < 0) {
        j->spawn_failed = errno;
        close(out_pipe[0]);
        close(out_pipe[1]);
        close(err_pipe[0]);
        close(err_pipe[1]);
        j->state = JOB_DONE;
        return;
    }
    if (pid == 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        run_child(opts, index, out_pipe[1], err_pipe[1], work, ctx);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    j->pid = pid;
    j->out_fd = out_pipe[0];
    j->err_fd = err_pipe[0];
}

/* Reads what is available on fd into b; closes it at end of file. */
static void drain(int *fd, buffer *b)
{
    char chunk[65536];
    ssize_t got = read(*fd, chunk, sizeof chunk);
    if (got > 0) {
        buffer_append(b, chunk, (size_t)got);
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
    }
}

static void clear_progress(const batch_options *opts)
{
    if (opts->progress)
        fputs("\r\033[K", stderr);
}

static void draw_progress(const batch_options *opts, size_t done, size_t n, size_t failed,
                          double started_s)
{
    if (!opts->progress)
        return;
    double elapsed = now_s() - started_s;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double left = rate > 0 ? (double)(n - done) / rate : 0;
    fprintf(stderr, "\r\033[Knirtrace: %zu/%zu files, %.1f files/s, %d:%02d left, %zu failed",
            done, n, rate, (int)(left / 60), (int)left % 60, failed);
    fflush(stderr);
}

/* Writes a finished input's messages and rows, and reports how it ended. */
static void emit(const batch_options *opts, job *j, const char *name, FILE *out,
                 unsigned char *failed, size_t index, batch_summary *s)
{
    clear_progress(opts);
    if (j->err.len > 0)
        fwrite(j->err.data, 1, j->err.len, stderr);
    int ok = 0;
    if (j->spawn_failed) {
        fprintf(stderr, "nirtrace: %s: cannot start a worker: %s\n", name,
                strerror(j->spawn_failed));
    } else if (j->timed_out) {
        fprintf(stderr, "nirtrace: %s: timed out after %g s\n", name, opts->timeout_s);
    } else if (WIFSIGNALED(j->wait_status)) {
        int sig = WTERMSIG(j->wait_status);
        if (sig == SIGKILL)
            fprintf(stderr, "nirtrace: %s: worker killed (SIGKILL), likely out of memory\n", name);
        else
            fprintf(stderr, "nirtrace: %s: reader crashed (%s)\n", name, signal_name(sig));
    } else if (WIFEXITED(j->wait_status) && WEXITSTATUS(j->wait_status) == 2) {
        fprintf(stderr, "nirtrace: %s: exceeds memory limit (%zu MB)\n", name,
                opts->memory_bytes >> 20);
    } else if (WIFEXITED(j->wait_status) && WEXITSTATUS(j->wait_status) == 0) {
        ok = 1;
    } else if (WIFEXITED(j->wait_status) &&
               (WEXITSTATUS(j->wait_status) != 1 || j->err.len == 0)) {
        /* A library that calls exit() itself (HDF5 1.10 does when it runs
         * out of memory), or a worker that could not even set up its pipes:
         * the input still gets its line. */
        fprintf(stderr, "nirtrace: %s: worker exited with status %d\n", name,
                WEXITSTATUS(j->wait_status));
    }
    /* Rows of a failed input are not written: a crashed worker may have
     * sent a partial set, and a table must never look complete when it is
     * not. */
    if (ok && j->out.len > 0) {
        if (fwrite(j->out.data, 1, j->out.len, out) != j->out.len)
            s->write_failed = 1;
        s->bytes_out += j->out.len;
    }
    if (ok)
        s->ok++;
    else
        s->failed++;
    if (failed != NULL)
        failed[index] = (unsigned char)!ok;
    buffer_free(&j->out);
    buffer_free(&j->err);
    j->state = JOB_EMITTED;
}

void batch_run(const batch_options *opts, char *const *names, size_t n, batch_work_fn work,
               void *ctx, FILE *out, unsigned char *failed, batch_summary *s)
{
    memset(s, 0, sizeof *s);
    job *jobs = calloc(n > 0 ? n : 1, sizeof *jobs);
    struct pollfd *fds = calloc(2 * (size_t)opts->jobs + 1, sizeof *fds);
    size_t *owner = calloc(2 * (size_t)opts->jobs + 1, sizeof *owner);
    if (jobs == NULL || fds == NULL || owner == NULL) {
        fprintf(stderr, "nirtrace: out of memory for %zu inputs\n", n);
        s->failed = n;
        free(jobs);
        free(fds);
        free(owner);
        return;
    }
    for (size_t i = 0; i < n; i++)
        jobs[i].out_fd = jobs[i].err_fd = -1;
    size_t next_start = 0, next_emit = 0, running = 0;
    double started_s = now_s();

    while (next_emit < n) {
        while (running < opts->jobs && next_start < n) {
            start_job(opts, &jobs[next_start], next_start, work, ctx);
            if (jobs[next_start].state == JOB_RUNNING)
                running++;
            next_start++;
        }
        /* Wait for output, an exit, a timeout or a progress tick. */
        nfds_t nfds = 0;
        double wait_s = opts->progress ? 0.25 : 1.0;
        double t = now_s();
        for (size_t i = next_emit; i < next_start; i++) {
            job *j = &jobs[i];
            if (j->state != JOB_RUNNING)
                continue;
            if (j->out_fd >= 0) {
                fds[nfds] = (struct pollfd){.fd = j->out_fd, .events = POLLIN};
                owner[nfds++] = i;
            }
            if (j->err_fd >= 0) {
                fds[nfds] = (struct pollfd){.fd = j->err_fd, .events = POLLIN};
                owner[nfds++] = i;
            }
            if (opts->timeout_s > 0 && !j->timed_out) {
                double left = j->started_s + opts->timeout_s - t;
                if (left < wait_s)
                    wait_s = left > 0 ? left : 0;
            }
        }
        int ready = poll(fds, nfds, nfds > 0 ? (int)(wait_s * 1000) + 1 : 10);
        if (ready > 0) {
            for (nfds_t k = 0; k < nfds; k++) {
                if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                job *j = &jobs[owner[k]];
                if (fds[k].fd == j->out_fd)
                    drain(&j->out_fd, &j->out);
                else if (fds[k].fd == j->err_fd)
                    drain(&j->err_fd, &j->err);
            }
        }
        t = now_s();
        for (size_t i = next_emit; i < next_start; i++) {
            job *j = &jobs[i];
            if (j->state != JOB_RUNNING)
                continue;
            if (opts->timeout_s > 0 && !j->timed_out && t - j->started_s > opts->timeout_s) {
                kill(j->pid, SIGKILL);
                j->timed_out = 1;
            }
            if (j->out_fd >= 0 || j->err_fd >= 0)
                continue;
            pid_t r = waitpid(j->pid, &j->wait_status, j->timed_out ? 0 : WNOHANG);
            if (r == j->pid || (r < 0 && errno == ECHILD)) {
                j->state = JOB_DONE;
                running--;
            }
        }
        size_t emitted_before = next_emit;
        while (next_emit < n && jobs[next_emit].state == JOB_DONE) {
            emit(opts, &jobs[next_emit], names[next_emit], out, failed, next_emit, s);
            next_emit++;
        }
        if (next_emit != emitted_before || opts->progress)
            draw_progress(opts, next_emit, n, s->failed, started_s);
    }
    clear_progress(opts);
    free(jobs);
    free(fds);
    free(owner);
}
