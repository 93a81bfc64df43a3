/*
 * batch.c — inputs analysed by long-lived worker processes, outputs released
 * in input order.
 *
 * Method: the parent starts up to opts->jobs workers (fork, no exec). Each
 * worker reads input indexes from its command socket, runs the work for one
 * input at a time with its rows going to a memory buffer, then sends one
 * frame on its result pipe: {index, status, length} and the rows. Its stderr
 * is a third pipe; since a worker works on one input at a time and flushes
 * stderr before it sends the frame, every message byte belongs to the input
 * the parent last gave that worker. A worker lives across inputs, so its
 * FFT plans, tables and library start-up are paid once per worker, not once
 * per file.
 *
 * Containment is the same as one process per input: a worker that dies by a
 * signal, outlives the timeout of its current input (the parent kills it)
 * or exits without a frame makes that input a one-line error, and a new
 * worker takes the remaining inputs. A worker whose input failed in any way
 * is not reused: it exits after its frame, so a parser left in a bad state
 * by a damaged file never sees the next one. When an input and all inputs
 * before it are finished, the parent writes its messages to stderr and its
 * rows to the output; only the order of release depends on the inputs,
 * never on timing, so any -j gives the same bytes.
 */
#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum job_state { JOB_PENDING, JOB_RUNNING, JOB_DONE, JOB_EMITTED };

typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer;

/* One input. */
typedef struct job {
    int state;
    buffer out, err;
    int timed_out;
    int wait_status;   /* how it ended, in waitpid(2) form */
    int spawn_failed;  /* errno of a failed fork or pipe */
} job;

#define NO_INPUT SIZE_MAX

/* One worker process; pid 0 when there is none. */
typedef struct worker {
    pid_t pid;
    int cmd_fd;        /* parent's end of the command socket, -1 once closed */
    int res_fd;        /* result frames; -1 once at end of file */
    int err_fd;        /* the worker's stderr; -1 once at end of file */
    size_t current;    /* input it works on, or NO_INPUT */
    double started_s;  /* when it was given current */
    buffer res;        /* result bytes not yet parsed */
} worker;

/* The head of a result frame; `len` bytes of rows follow it. */
typedef struct frame {
    uint64_t index;
    int64_t status;
    uint64_t len;
} frame;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Appends to b; on allocation failure the data is dropped and -1 returned. */
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

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes; 0 on success, 1 at end of file, -1 on error. */
static int read_all(int fd, void *data, size_t len)
{
    char *p = data;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 && p == (char *)data ? 1 : -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* The worker: limits, default signal dispositions, then one input per
 * index read from cmd_fd until end of file or a failed input. */
static _Noreturn void run_worker(const batch_options *opts, int cmd_fd, int res_fd, int err_fd,
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
    for (;;) {
        uint64_t index;
        int r = read_all(cmd_fd, &index, sizeof index);
        if (r != 0)
            _exit(r > 0 ? 0 : 1);
        char *rows = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&rows, &len);
        int status = out == NULL ? 2 : work(ctx, (size_t)index, out);
        /* A memory stream whose final buffer cannot be allocated still
         * closes with 0, leaving rows NULL. */
        if (out != NULL && (fclose(out) != 0 || rows == NULL) && status == 0)
            status = 2;
        fflush(stderr);
        frame f = {index, status, status == 0 ? len : 0};
        if (write_all(res_fd, &f, sizeof f) != 0 ||
            (f.len > 0 && write_all(res_fd, rows, len) != 0))
            _exit(1);
        free(rows);
        if (status != 0)
            _exit(0);
    }
}

/* Starts worker w; closes, in the child, the parent's ends of the other
 * workers' channels (a worker holding another's command socket would keep
 * it from ever seeing end of file). Returns 0 or an errno value. */
static int spawn_worker(const batch_options *opts, worker *ws, size_t n_ws, worker *w,
                        batch_work_fn work, void *ctx)
{
    int cmd[2], res[2], err[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, cmd) != 0)
        return errno;
    if (pipe(res) != 0) {
        int e = errno;
        close(cmd[0]);
        close(cmd[1]);
        return e;
    }
    if (pipe(err) != 0) {
        int e = errno;
        close(cmd[0]);
        close(cmd[1]);
        close(res[0]);
        close(res[1]);
        return e;
    }
    fflush(NULL); /* the child must not write the parent's buffered output again */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        for (int k = 0; k < 2; k++) {
            close(cmd[k]);
            close(res[k]);
            close(err[k]);
        }
        return e;
    }
    if (pid == 0) {
        for (size_t k = 0; k < n_ws; k++) {
            if (ws[k].cmd_fd >= 0)
                close(ws[k].cmd_fd);
            if (ws[k].res_fd >= 0)
                close(ws[k].res_fd);
            if (ws[k].err_fd >= 0)
                close(ws[k].err_fd);
        }
        close(cmd[0]);
        close(res[0]);
        close(err[0]);
        run_worker(opts, cmd[1], res[1], err[1], work, ctx);
    }
    close(cmd[1]);
    close(res[1]);
    close(err[1]);
    fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
    *w = (worker){.pid = pid, .cmd_fd = cmd[0], .res_fd = res[0], .err_fd = err[0],
                  .current = NO_INPUT};
    return 0;
}

/* Reads what is available on *fd into b (or drops it when b is NULL);
 * closes *fd at end of file. Returns the bytes read. */
static ssize_t drain(int *fd, buffer *b)
{
    char chunk[65536];
    ssize_t got = read(*fd, chunk, sizeof chunk);
    if (got > 0) {
        if (b != NULL)
            buffer_append(b, chunk, (size_t)got);
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
    }
    return got;
}

/* Everything the worker has written to stderr so far goes to its current
 * input (the stderr pipe is non-blocking in the parent). */
static void drain_err(worker *w, job *jobs)
{
    while (w->err_fd >= 0 &&
           drain(&w->err_fd, w->current != NO_INPUT ? &jobs[w->current].err : NULL) > 0)
        ;
}

/* Parses the complete frames in w->res: each finishes its input. */
static void take_frames(worker *w, job *jobs, size_t n)
{
    size_t at = 0;
    frame f;
    while (w->res.len - at >= sizeof f) {
        memcpy(&f, w->res.data + at, sizeof f);
        if (w->res.len - at - sizeof f < f.len)
            break;
        if (f.index == w->current && f.index < n) {
            drain_err(w, jobs);
            job *j = &jobs[f.index];
            if (f.len > 0 && buffer_append(&j->out, w->res.data + at + sizeof f, f.len) != 0)
                f.status = 2;
            j->wait_status = (int)(f.status & 0xff) << 8; /* as if it had exited */
            j->state = JOB_DONE;
            w->current = NO_INPUT;
            /* After a failed input the worker exits: give it nothing more. */
            if (f.status != 0 && w->cmd_fd >= 0) {
                close(w->cmd_fd);
                w->cmd_fd = -1;
            }
        }
        at += sizeof f + f.len;
    }
    memmove(w->res.data, w->res.data + at, w->res.len - at);
    w->res.len -= at;
}

/* The worker's result pipe is at end of file: it exited or was killed.
 * Reaps it and, when it died during an input, ends that input with how it
 * died. */
static void reap_worker(worker *w, job *jobs)
{
    drain_err(w, jobs);
    if (w->err_fd >= 0)
        close(w->err_fd);
    if (w->cmd_fd >= 0)
        close(w->cmd_fd);
    int wait_status = 0;
    while (waitpid(w->pid, &wait_status, 0) < 0 && errno == EINTR)
        ;
    if (w->current != NO_INPUT) {
        job *j = &jobs[w->current];
        /* An exit without a frame is never a success. */
        if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)
            wait_status = 1 << 8;
        j->wait_status = wait_status;
        j->state = JOB_DONE;
    }
    buffer_free(&w->res);
    *w = (worker){.pid = 0, .cmd_fd = -1, .res_fd = -1, .err_fd = -1, .current = NO_INPUT};
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

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void batch_run(const batch_options *opts, char *const *names, size_t n, batch_work_fn work,
               void *ctx, FILE *out, unsigned char *failed, batch_summary *s)
{
    memset(s, 0, sizeof *s);
    size_t n_ws = opts->jobs < n ? opts->jobs : n;
    if (n_ws == 0)
        n_ws = 1;
    job *jobs = calloc(n > 0 ? n : 1, sizeof *jobs);
    worker *ws = calloc(n_ws, sizeof *ws);
    struct pollfd *fds = calloc(2 * n_ws, sizeof *fds);
    size_t *owner = calloc(2 * n_ws, sizeof *owner);
    if (jobs == NULL || ws == NULL || fds == NULL || owner == NULL) {
        fprintf(stderr, "nirtrace: out of memory for %zu inputs\n", n);
        s->failed = n;
        free(jobs);
        free(ws);
        free(fds);
        free(owner);
        return;
    }
    for (size_t k = 0; k < n_ws; k++)
        ws[k] = (worker){.pid = 0, .cmd_fd = -1, .res_fd = -1, .err_fd = -1, .current = NO_INPUT};
    size_t next_start = 0, next_emit = 0;
    double started_s = now_s();

    while (next_emit < n) {
        /* Idle workers (started when missing) get the next inputs. */
        for (size_t k = 0; k < n_ws && next_start < n; k++) {
            worker *w = &ws[k];
            if (w->pid != 0 && (w->current != NO_INPUT || w->cmd_fd < 0))
                continue;
            if (w->pid == 0) {
                int e = spawn_worker(opts, ws, n_ws, w, work, ctx);
                if (e != 0) {
                    jobs[next_start].spawn_failed = e;
                    jobs[next_start++].state = JOB_DONE;
                    continue;
                }
            }
            uint64_t index = next_start;
            if (send(w->cmd_fd, &index, sizeof index, MSG_NOSIGNAL) != (ssize_t)sizeof index) {
                /* It has gone; it is reaped at the end of its result pipe. */
                close_fd(&w->cmd_fd);
                continue;
            }
            w->current = next_start;
            w->started_s = now_s();
            jobs[next_start++].state = JOB_RUNNING;
        }
        /* Once every input is given out, idle workers are told to exit. */
        for (size_t k = 0; next_start == n && k < n_ws; k++)
            if (ws[k].current == NO_INPUT)
                close_fd(&ws[k].cmd_fd);

        /* Wait for output, an exit, a timeout or a progress tick. */
        nfds_t nfds = 0;
        double wait_s = opts->progress ? 0.25 : 1.0;
        double t = now_s();
        for (size_t k = 0; k < n_ws; k++) {
            worker *w = &ws[k];
            if (w->res_fd >= 0) {
                fds[nfds] = (struct pollfd){.fd = w->res_fd, .events = POLLIN};
                owner[nfds++] = k;
            }
            if (w->err_fd >= 0) {
                fds[nfds] = (struct pollfd){.fd = w->err_fd, .events = POLLIN};
                owner[nfds++] = k;
            }
            if (opts->timeout_s > 0 && w->current != NO_INPUT && !jobs[w->current].timed_out) {
                double left = w->started_s + opts->timeout_s - t;
                if (left < wait_s)
                    wait_s = left > 0 ? left : 0;
            }
        }
        int ready = poll(fds, nfds, nfds > 0 ? (int)(wait_s * 1000) + 1 : 10);
        for (nfds_t i = 0; ready > 0 && i < nfds; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            worker *w = &ws[owner[i]];
            if (fds[i].fd == w->res_fd) {
                if (drain(&w->res_fd, &w->res) > 0)
                    take_frames(w, jobs, n);
            } else if (fds[i].fd == w->err_fd) {
                drain_err(w, jobs);
            }
        }
        t = now_s();
        for (size_t k = 0; k < n_ws; k++) {
            worker *w = &ws[k];
            if (w->pid == 0)
                continue;
            if (w->current != NO_INPUT && jobs[w->current].state == JOB_RUNNING &&
                opts->timeout_s > 0 && !jobs[w->current].timed_out &&
                t - w->started_s > opts->timeout_s) {
                kill(w->pid, SIGKILL);
                jobs[w->current].timed_out = 1;
            }
            if (w->res_fd < 0)
                reap_worker(w, jobs);
        }
        size_t emitted_before = next_emit;
        while (next_emit < n && jobs[next_emit].state == JOB_DONE) {
            emit(opts, &jobs[next_emit], names[next_emit], out, failed, next_emit, s);
            next_emit++;
        }
        if (next_emit != emitted_before || opts->progress)
            draw_progress(opts, next_emit, n, s->failed, started_s);
    }
    for (size_t k = 0; k < n_ws; k++) {
        if (ws[k].pid == 0)
            continue;
        close_fd(&ws[k].cmd_fd);
        close_fd(&ws[k].res_fd);
        reap_worker(&ws[k], jobs);
    }
    clear_progress(opts);
    free(jobs);
    free(ws);
    free(fds);
    free(owner);
}
