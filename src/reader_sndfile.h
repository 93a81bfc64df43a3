/*
 * reader_sndfile.h — private entry points of the audio reader (reader_sndfile.c)
 * beyond nt_read_sndfile, for callers that hold a file in memory: the fuzz
 * harness and the tests. Not installed; does not include sndfile.h.
 */
#ifndef NT_READER_SNDFILE_H
#define NT_READER_SNDFILE_H

#include "nirtrace.h"

#include <stddef.h>

/*
 * Reads the audio file whose bytes are data [size], with the contract of
 * nt_read_sndfile (and so of nt_recording_read): opts may be NULL for
 * defaults; on success *out is a new recording, free with nt_recording_free;
 * on failure *out is NULL and err (if not NULL) says why.
 * data is borrowed: it is read during the call only, never modified or kept.
 * An empty buffer (size 0, data may then be NULL) is NT_ERR_FORMAT.
 */
int nt_read_sndfile_memory(const void *data, size_t size, const nt_read_options *opts,
                           nt_recording **out, nt_error *err);

#endif /* NT_READER_SNDFILE_H */
