/*
 * inputs.h — the list of input files of a command (CLI only).
 */
#ifndef NT_CLI_INPUTS_H
#define NT_CLI_INPUTS_H

#include <stddef.h>

/* Returned by inputs_add and inputs_add_from when memory ran out (after a
 * message on stderr): not a bad command line. */
#define INPUTS_NOMEM (-2)

/* A growable list of paths; every string is owned by the list. */
typedef struct input_list {
    char **paths;
    size_t n, cap;
} input_list;

/*
 * Appends the inputs named by arg: a directory adds every recording file
 * below it (by extension, recursively, in name order; CSV result tables,
 * whose header starts "file,roi,trial", are not recordings and are skipped); an argument that does
 * not exist but holds glob characters adds its matches (sorted); anything
 * else is added as it is (a missing file is then reported by the reader).
 * Returns 0, or -1 with a message on stderr (an unreadable directory, a
 * glob with no match), or INPUTS_NOMEM.
 */
int inputs_add(input_list *list, const char *arg);

/* Appends each non-empty line of the file at path ("-" for stdin) as an
 * input (through inputs_add). Returns 0 or -1 with a message on stderr. */
int inputs_add_from(input_list *list, const char *path);

void inputs_free(input_list *list);

#endif
