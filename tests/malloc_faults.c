/*
 * malloc_faults.c — an LD_PRELOAD library for the allocation-failure tests
 * (tests/test_alloc_faults.c): it stands in for the C allocator and makes
 * one chosen allocation fail, the way a worker at its address-space limit
 * or a full machine does. Built as build/libntmallocfaults.so; never linked
 * into nirtrace itself.
 *
 * Environment:
 *  - NT_FAIL_ALLOC=N: the N-th allocation (1-based) returns NULL with errno
 *    ENOMEM (posix_memalign returns ENOMEM); every other one succeeds.
 *  - NT_COUNT_ALLOC=FILE: when the process ends (exit, or _exit / _Exit as
 *    the batch workers end), one line "PID COUNT" is appended to FILE.
 *  - NT_FAIL_ALLOC_TRACE=FILE: the call stack of the failed allocation is
 *    appended to FILE (glibc's backtrace_symbols_fd: function names where
 *    exported, else module+offset for addr2line), so that a test failure
 *    can say where the allocation was.
 * An allocation is a call of malloc, calloc, realloc (size > 0),
 * posix_memalign, aligned_alloc, memalign or valloc, from the program or
 * from any library (glibc's own internal allocations go through these
 * symbols too, so fopen or strdup fail with ENOMEM as they would), made
 * from the moment main is entered. The allocations of the shared
 * libraries' constructors before main (GnuTLS, pulled in by HDF5's libcurl,
 * makes about a thousand) are not counted and never fail: no code of ours
 * runs there, and those libraries print and carry on. main is found by
 * standing in for __libc_start_main, which the program's start-up code
 * calls through the dynamic linker.
 *
 * Processes. The counter is a plain global, so fork copies it: a worker
 * goes on counting from the number its parent had reached when it forked,
 * while the parent goes on from the same number. Allocation N is therefore
 * the parent's N-th, and also the worker's if the worker gets that far: the
 * largest COUNT written by any process is the number of allocation sites a
 * test must try, whichever process each belongs to.
 *
 * Bootstrapping: dlsym itself may allocate before the real functions are
 * known; those few blocks come from a static arena and are never freed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void free(void *p);
int posix_memalign(void **out, size_t alignment, size_t size);
void *aligned_alloc(size_t alignment, size_t size);
void *memalign(size_t alignment, size_t size);
void *valloc(size_t size);
void _exit(int status);
void _Exit(int status);
int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end);

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void (*real__exit)(int);

static int (*real_libc_start_main)(int (*)(int, char **, char **), int, char **,
                                   void (*)(void), void (*)(void), void (*)(void), void *);
static int (*real_main)(int, char **, char **);

static unsigned long fail_at; /* 0: never */
static unsigned long count;
static int counting; /* main has been entered */
static int ready, resolving;

/* The arena of the allocations made while dlsym runs. */
static _Alignas(64) unsigned char arena[64 * 1024];
static size_t arena_used;

static void *arena_alloc(size_t size)
{
    size_t at = (arena_used + 63) & ~(size_t)63;
    if (size > sizeof arena - at)
        return NULL;
    arena_used = at + size;
    return arena + at;
}

static int in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

static void resolve(void)
{
    if (ready || resolving)
        return;
    resolving = 1;
    *(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc");
    *(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
    *(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
    *(void **)&real_free = dlsym(RTLD_NEXT, "free");
    *(void **)&real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    *(void **)&real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    *(void **)&real_memalign = dlsym(RTLD_NEXT, "memalign");
    *(void **)&real_valloc = dlsym(RTLD_NEXT, "valloc");
    *(void **)&real__exit = dlsym(RTLD_NEXT, "_exit");
    *(void **)&real_libc_start_main = dlsym(RTLD_NEXT, "__libc_start_main");
    const char *n = getenv("NT_FAIL_ALLOC");
    fail_at = n != NULL ? strtoul(n, NULL, 10) : 0;
    resolving = 0;
    ready = 1;
}

/* Writes the current call stack to $NT_FAIL_ALLOC_TRACE. backtrace may
 * load libgcc_s and allocate: those later allocations are counted and
 * succeed, since only one ever fails. */
static void trace_failure(unsigned long n)
{
    const char *path = getenv("NT_FAIL_ALLOC_TRACE");
    if (path == NULL || *path == '\0')
        return;
    void *frames[64];
    int depth = backtrace(frames, 64);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char head[80];
    int len = snprintf(head, sizeof head, "allocation %lu failed in process %ld:\n", n,
                       (long)getpid());
    ssize_t w = write(fd, head, (size_t)len);
    (void)w;
    backtrace_symbols_fd(frames + 2, depth > 2 ? depth - 2 : 0, fd);
    close(fd);
}

/* Counts one allocation; 1 when it is the one to fail. */
static int fail_this(void)
{
    if (!__atomic_load_n(&counting, __ATOMIC_RELAXED))
        return 0;
    unsigned long n = __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
    if (fail_at != 0 && n == fail_at) {
        trace_failure(n);
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

/* Appends "PID COUNT\n" to $NT_COUNT_ALLOC, with system calls only (no
 * stdio, which would allocate). */
static void record_count(void)
{
    const char *path = getenv("NT_COUNT_ALLOC");
    if (path == NULL || *path == '\0')
        return;
    char line[64], digits[24];
    size_t len = 0;
    unsigned long values[2] = {(unsigned long)getpid(), __atomic_load_n(&count, __ATOMIC_RELAXED)};
    for (int k = 0; k < 2; k++) {
        size_t nd = 0;
        unsigned long v = values[k];
        do {
            digits[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (nd > 0)
            line[len++] = digits[--nd];
        line[len++] = k == 0 ? ' ' : '\n';
    }
    int saved = errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, line, len);
        (void)w;
        close(fd);
    }
    errno = saved;
}

__attribute__((destructor)) static void at_exit(void)
{
    record_count();
}

void _exit(int status)
{
    record_count();
    resolve();
    if (real__exit != NULL)
        real__exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

void _Exit(int status)
{
    _exit(status);
}

static int counted_main(int argc, char **argv, char **envp)
{
    __atomic_store_n(&counting, 1, __ATOMIC_RELAXED);
    return real_main(argc, argv, envp);
}

int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                      void *stack_end)
{
    resolve();
    real_main = main;
    return real_libc_start_main(counted_main, argc, argv, init, fini, rtld_fini, stack_end);
}

void *malloc(size_t size)
{
    resolve();
    if (!ready)
        return arena_alloc(size);
    return fail_this() ? NULL : real_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    resolve();
    if (!ready) {
        if (size != 0 && n > SIZE_MAX / size)
            return NULL;
        return arena_alloc(n * size); /* static storage: already zero */
    }
    return fail_this() ? NULL : real_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    resolve();
    if (in_arena(p)) {
        /* Rare (a bootstrap block grown): move it out of the arena. */
        void *q = malloc(size);
        if (q != NULL)
            memcpy(q, p, size < (size_t)(arena + sizeof arena - (unsigned char *)p)
                             ? size
                             : (size_t)(arena + sizeof arena - (unsigned char *)p));
        return q;
    }
    if (!ready)
        return NULL;
    if (size > 0 && fail_this())
        return NULL;
    return real_realloc(p, size);
}

void free(void *p)
{
    if (p == NULL || in_arena(p))
        return;
    resolve();
    real_free(p);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    resolve();
    if (!ready) {
        *out = arena_alloc((size + alignment - 1) & ~(alignment - 1));
        return *out != NULL ? 0 : ENOMEM;
    }
    if (fail_this())
        return ENOMEM;
    return real_posix_memalign(out, alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size)
{
    resolve();
    if (!ready)
        return arena_alloc(size); /* 64-byte aligned; no caller asks for more this early */
    return fail_this() ? NULL : real_aligned_alloc(alignment, size);
}

void *memalign(size_t alignment, size_t size)
{
    resolve();
    if (!ready)
        return arena_alloc(size); /* 64-byte aligned; no caller asks for more this early */
    return fail_this() ? NULL : real_memalign(alignment, size);
}

void *valloc(size_t size)
{
    resolve();
    if (!ready)
        return arena_alloc(size); /* 64-byte aligned; no caller asks for more this early */
    return fail_this() ? NULL : real_valloc(size);
}
