/*
 * parallel.c — running one function in several threads (POSIX threads).
 *
 * The smallest pool that serves the analyzer: the calling thread is worker
 * 0 and the others are created for the call and joined before it returns,
 * so that no thread outlives a call and the library keeps no global state.
 * Creating and joining a thread costs tens of microseconds, against the
 * milliseconds of a recording's analysis. How work is shared is left to the
 * caller (the analyzer hands out ROIs from an atomic counter), and a thread
 * that cannot be created only means fewer workers.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct worker_arg {
    void (*fn)(void *ctx, unsigned worker);
    void *ctx;
    unsigned worker;
} worker_arg;

static void *thread_main(void *p)
{
    const worker_arg *w = p;
    w->fn(w->ctx, w->worker);
    return NULL;
}

unsigned nt_parallel_run(unsigned n_workers, void (*fn)(void *ctx, unsigned worker), void *ctx)
{
    enum { MAX_THREADS = 256 };
    pthread_t tid[MAX_THREADS];
    worker_arg arg[MAX_THREADS];
    unsigned started = 0;
    if (n_workers > MAX_THREADS)
        n_workers = MAX_THREADS;
    for (unsigned w = 1; w < n_workers; w++) {
        arg[started] = (worker_arg){fn, ctx, w};
        if (pthread_create(&tid[started], NULL, thread_main, &arg[started]) != 0)
            break;
        started++;
    }
    fn(ctx, 0);
    for (unsigned k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
    return started + 1;
}

unsigned nt_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}
