/*
 * batch.h — running one job per input file in worker processes (CLI only).
 *
 * Every input is processed in a child process (up to `jobs` at once, each
 * taking one input after another, and replaced after an input that failed),
 * so that a crash, a hang or a runaway allocation inside a third-party
 * parser becomes that file's error and the batch goes on. A worker's rows
 * and messages for each input are collected through pipes and released in
 * input order, so the output of -j 8 is byte-identical to -j 1.
 */
#ifndef NT_CLI_BATCH_H
#define NT_CLI_BATCH_H

#include <stddef.h>
#include <stdio.h>

/* The work for input `index`, run in a worker process: writes its rows to
 * out and its messages to stderr; returns 0 when the input was processed,
 * 1 when it failed (after saying why on stderr), 2 when it ran out of
 * memory. A worker calls it for one input after another, so it must
 * release what it allocates for an input. */
typedef int (*batch_work_fn)(void *ctx, size_t index, FILE *out);

typedef struct batch_options {
    unsigned jobs;          /* worker processes at once (>= 1) */
    double timeout_s;       /* per input; 0 = none */
    size_t memory_bytes;    /* address-space limit of a worker; 0 = none */
    int progress;           /* draw a progress line on stderr */
} batch_options;

typedef struct batch_summary {
    size_t ok, failed;      /* inputs */
    size_t bytes_out;       /* bytes of rows written */
    int write_failed;       /* out reported a write error */
} batch_summary;

/*
 * Runs work for inputs 0..n-1 (names[i] names input i in messages), writing
 * each input's rows to out in input order as soon as it and all before it
 * are done. A worker killed by a signal is reported as
 * "nirtrace: NAME: reader crashed (SIGSEGV)", one past its timeout as
 * "... timed out after N s", one that ran out of its address space as
 * "... exceeds memory limit". failed_names (may be NULL) receives, for each
 * failed input, 1 at its index (caller-owned array [n]).
 */
void batch_run(const batch_options *opts, char *const *names, size_t n, batch_work_fn work,
               void *ctx, FILE *out, unsigned char *failed, batch_summary *summary);

#endif
