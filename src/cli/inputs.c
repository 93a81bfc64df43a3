/*
 * inputs.c — expands directories, globs and list files into input paths.
 * Directories are walked in name order and globs sorted, so that a batch's
 * rows come out in the same order on every machine.
 */
#include "inputs.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Extensions of the formats nirtrace reads (README: Input formats). */
static const char *const extensions[] = {"h5",  "hdf5", "he5", "nwb", "wav", "flac",
                                         "aif", "aiff", "aifc", "caf", "rf64", "w64",
                                         "au",  "snd",  "ogg", "csv", "tsv", "txt"};

static int has_recording_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return 0;
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++)
        if (strcasecmp(dot + 1, extensions[i]) == 0)
            return 1;
    return 0;
}

/* A CSV that a directory holds may be a result table (nirtrace's own, or a
 * truth table with the same key columns) rather than a recording: those
 * start with "file,roi,trial" and are skipped in directory walks. */
static int is_result_table(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL || (strcasecmp(dot, ".csv") != 0 && strcasecmp(dot, ".tsv") != 0 &&
                        strcasecmp(dot, ".txt") != 0))
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char head[32] = "";
    size_t got = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[got] = '\0';
    return strncmp(head, "file,roi,trial", 14) == 0 || strncmp(head, "file\troi\ttrial", 14) == 0;
}

static int push(input_list *list, const char *path)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 64;
        char **p = realloc(list->paths, cap * sizeof *p);
        if (p == NULL) {
            fprintf(stderr, "nirtrace: out of memory for the list of inputs\n");
            return INPUTS_NOMEM;
        }
        list->paths = p;
        list->cap = cap;
    }
    size_t len = strlen(path) + 1;
    char *copy = malloc(len);
    if (copy == NULL) {
        fprintf(stderr, "nirtrace: out of memory for the list of inputs\n");
        return INPUTS_NOMEM;
    }
    memcpy(copy, path, len);
    list->paths[list->n++] = copy;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the recording files below dir, in name order; depth bounds the
 * recursion (a symlink loop cannot run away). */
static int add_directory(input_list *list, const char *dir, int depth)
{
    if (depth > 64) {
        fprintf(stderr, "nirtrace: %s: directories nested too deep\n", dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "nirtrace: %s: cannot read directory: %s\n", dir, strerror(errno));
        return -1;
    }
    input_list names = {NULL, 0, 0};
    int status = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden files such as ._ resource forks */
        if (push(&names, e->d_name) != 0) {
            status = -1;
            break;
        }
    }
    closedir(d);
    if (names.n > 0)
        qsort(names.paths, names.n, sizeof *names.paths, compare_names);
    for (size_t i = 0; i < names.n && status == 0; i++) {
        size_t len = strlen(dir) + strlen(names.paths[i]) + 2;
        char *path = malloc(len);
        if (path == NULL) {
            status = -1;
            break;
        }
        snprintf(path, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                 names.paths[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            status = add_directory(list, path, depth + 1);
        else if (has_recording_extension(names.paths[i]) && !is_result_table(path))
            status = push(list, path);
        free(path);
    }
    inputs_free(&names);
    return status;
}

int inputs_add(input_list *list, const char *arg)
{
    struct stat st;
    if (stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return add_directory(list, arg, 0);
        return push(list, arg);
    }
    if (strpbrk(arg, "*?[") != NULL) {
        glob_t g;
        int r = glob(arg, 0, NULL, &g);
        if (r == GLOB_NOMATCH) {
            fprintf(stderr, "nirtrace: %s: no file matches\n", arg);
            return -1;
        }
        if (r != 0) {
            fprintf(stderr, "nirtrace: %s: cannot expand\n", arg);
            return -1;
        }
        int status = 0;
        for (size_t i = 0; i < g.gl_pathc && status == 0; i++)
            status = inputs_add(list, g.gl_pathv[i]);
        globfree(&g);
        return status;
    }
    return push(list, arg);
}

int inputs_add_from(input_list *list, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "nirtrace: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int status = 0;
    size_t lineno = 0;
    while (status == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "nirtrace: %s: line %zu: path too long\n", path, lineno);
            status = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        status = inputs_add(list, line);
    }
    if (f != stdin)
        fclose(f);
    return status;
}

void inputs_free(input_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->paths[i]);
    free(list->paths);
    list->paths = NULL;
    list->n = list->cap = 0;
}
