/*
 * faults.c — an LD_PRELOAD library for the containment tests: it stands in
 * for HDF5's H5Fopen and, for a file whose path contains the string in an
 * environment variable, crashes (NT_FAULT_CRASH) or hangs (NT_FAULT_HANG)
 * the way a third-party parser does on a hostile file. Every other call goes
 * to the real H5Fopen. Built as build/libntfaults.so; never linked into
 * nirtrace itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <hdf5.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

hid_t H5Fopen(const char *name, unsigned flags, hid_t fapl);

static int matches(const char *var, const char *name)
{
    const char *needle = getenv(var);
    return needle != NULL && *needle != '\0' && strstr(name, needle) != NULL;
}

hid_t H5Fopen(const char *name, unsigned flags, hid_t fapl)
{
    if (matches("NT_FAULT_CRASH", name))
        raise(SIGSEGV);
    if (matches("NT_FAULT_HANG", name))
        for (;;)
            pause();
    hid_t (*real)(const char *, unsigned, hid_t);
    *(void **)&real = dlsym(RTLD_NEXT, "H5Fopen");
    return real(name, flags, fapl);
}
