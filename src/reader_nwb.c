/*
 * reader_nwb.c — reads the fluorescence traces of an NWB 2.x file
 * (Neurodata Without Borders, https://nwb-schema.readthedocs.io) into an
 * nt_recording, and describes what such a file offers (nt_nwb_describe).
 *
 * What is read, and from where:
 *  - The series: a TimeSeries group, by default the first RoiResponseSeries
 *    (neurodata_type attribute) under /processing/ophys, its containers
 *    included, in name order — preferring one that is not inside a DfOverF
 *    container, because nirtrace computes ΔF/F itself from raw fluorescence.
 *    opts->series names another: a link name searched under
 *    /processing/ophys then /acquisition, or an absolute path.
 *  - Its `data`, [frames][rois] in NWB (1-D: one ROI), read transposed into
 *    the ROI-major traces (opts->layout ROIS_BY_FRAMES reads it as stored).
 *    Values are data·conversion + offset, the two optional attributes of
 *    `data` (NWB's scaling to the declared unit).
 *  - Time: `timestamps` [frames], or the `starting_time` scalar and its
 *    `rate` attribute (opts->time_dataset replaces both).
 *  - Stimuli: the start_time column of /intervals/trials, labelled by the
 *    column opts->trial_label (strings, or numbers written with %g); without
 *    a trials table, the first source in name order under
 *    /stimulus/presentation (a TimeSeries: its timestamps, labelled by its
 *    data when those are strings, as in an AnnotationSeries; a TimeIntervals:
 *    its start_time), then under /intervals (epochs, ...).
 *    opts->stim_dataset replaces all of that.
 *  - ROI names "roi<id>" when the series' `rois` region resolves to the `id`
 *    column of its PlaneSegmentation; none otherwise (names are optional:
 *    a region that does not resolve leaves them out rather than failing).
 *
 * Clock. NWB times (starting_time, timestamps, trial start times) are all
 * seconds on the session clock, from session_start_time; nirtrace counts
 * seconds from the first frame. So the time base becomes t - t0, t0 being
 * the starting_time or the first timestamp of the series, and every
 * stimulus time (also from opts->stim_dataset, which is on the same clock)
 * is shifted by the same -t0: the stimuli keep their place relative to the
 * frames.
 *
 * The checks on untrusted files (declared sizes, vlen allocation, HDF5
 * errors made ours) are those of h5util.c; walking the file is bounded in
 * depth, group size and objects visited.
 */
#include "h5util.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest group searched below /processing/ophys or /acquisition. */
#define MAX_DEPTH 3
/* Most members of one group, and most objects one search may visit. */
#define MAX_MEMBERS 100000u
#define MAX_VISITS 200000u
/* neurodata_type names kept (longer ones are cut). */
#define TYPE_LEN 64

static const char ophys[] = "/processing/ophys";
static const char acquisition[] = "/acquisition";
static const char trials[] = "/intervals/trials";

/* ------------------------------------------------------------- text */

/* A growing NUL-terminated string; a failed allocation is remembered. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sbuf_printf(sbuf *b, const char *fmt, ...) NT_PRINTF(2, 3);

static void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (b->failed)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(b->s != NULL ? b->s + b->len : NULL, b->s != NULL ? b->cap - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (b->s == NULL || (size_t)n >= b->cap - b->len) {
        size_t cap = b->cap > 0 ? b->cap : 256;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* ----------------------------------------------------------- objects */

/* The neurodata_type of obj into type [TYPE_LEN] ("" when it has none or it
 * is not a string: the walks below skip what they do not recognise). */
static void read_type(const nt_h5ctx *c, hid_t obj, const char *where, char *type)
{
    nt_error quiet_err;
    nt_h5ctx quiet = *c;
    char *s = NULL;
    quiet.err = &quiet_err;
    type[0] = '\0';
    if (nt_h5_attr_string(&quiet, obj, where, "neurodata_type", &s) == NT_OK && s != NULL)
        snprintf(type, TYPE_LEN, "%s", s);
    free(s);
    H5Eclear2(H5E_DEFAULT);
}

/* 1 when group obj has a link called name. */
static int has_link(hid_t obj, const char *name)
{
    htri_t yes = H5Lexists(obj, name, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    return yes > 0;
}

/* What a walk sees of one object. */
typedef struct nwb_obj {
    const char *path;
    const char *name;        /* link name, the last part of path */
    int is_group;
    int has_data;            /* a group with a `data` link: a TimeSeries */
    const char *type;        /* neurodata_type, "" when none */
    const char *parent_type; /* neurodata_type of the group holding it */
} nwb_obj;

/* Looks at the object at path. */
static int inspect(const nt_h5ctx *c, const char *path, int *exists, int *is_group,
                   int *has_data, char *type)
{
    hid_t obj;
    *exists = *is_group = *has_data = 0;
    type[0] = '\0';
    int status = nt_h5_open_path(c, path, &obj);
    if (status != NT_OK || obj < 0)
        return status;
    *exists = 1;
    if (H5Iget_type(obj) == H5I_GROUP) {
        *is_group = 1;
        *has_data = has_link(obj, "data");
        read_type(c, obj, path, type);
    }
    H5Oclose(obj);
    return NT_OK;
}

typedef struct name_list {
    char **names;
    size_t n, cap;
    int overflow, nomem;
} name_list;

static herr_t collect_link(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    name_list *l = data;
    (void)group;
    if (info->type != H5L_TYPE_HARD)
        return 0; /* soft and external links are not followed */
    if (l->n == MAX_MEMBERS) {
        l->overflow = 1;
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? 2 * l->cap : 16;
        char **names = realloc(l->names, cap * sizeof *names);
        if (names == NULL) {
            l->nomem = 1;
            return 1;
        }
        l->names = names;
        l->cap = cap;
    }
    l->names[l->n] = nt_strdup(name);
    if (l->names[l->n] == NULL) {
        l->nomem = 1;
        return 1;
    }
    l->n++;
    return 0;
}

/* The names of the members of the group at path, in name order (an empty
 * list when path does not exist or is not a group). Free with
 * nt_strings_free(list->names, list->n). */
static int list_members(const nt_h5ctx *c, const char *path, name_list *list)
{
    hid_t group;
    memset(list, 0, sizeof *list);
    int status = nt_h5_open_path(c, path, &group);
    if (status != NT_OK || group < 0)
        return status;
    if (H5Iget_type(group) == H5I_GROUP &&
        H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_link, list) < 0)
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot list the group");
    H5Oclose(group);
    if (status == NT_OK && list->nomem)
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot list the group", path);
    if (status == NT_OK && list->overflow)
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE, "%s: more than %u members", path,
                              MAX_MEMBERS);
    if (status != NT_OK) {
        nt_strings_free(list->names, list->n);
        memset(list, 0, sizeof *list);
    }
    return status;
}

/* Called for every object of a walk; sets *stop to end the walk. */
typedef int (*visit_fn)(const nt_h5ctx *c, const nwb_obj *o, void *data, int *stop);

typedef struct walker {
    visit_fn visit;
    void *data;
    size_t visits;
    int stop;
} walker;

/* Visits the members of the group at path (of neurodata_type type), then
 * descends into those that are groups but not TimeSeries, depth-first in
 * name order. */
static int walk(const nt_h5ctx *c, const char *path, const char *type, int depth, walker *w)
{
    name_list list;
    int status = list_members(c, path, &list);
    for (size_t i = 0; status == NT_OK && i < list.n && !w->stop; i++) {
        char child[NT_H5_MAX_PATH], child_type[TYPE_LEN];
        int n = snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") == 0 ? "" : path,
                         list.names[i]);
        if (n < 0 || (size_t)n >= sizeof child)
            continue; /* a name no writer makes; nothing to find there */
        if (++w->visits > MAX_VISITS) {
            status = nt_error_set(c->err, NT_ERR_TOO_LARGE, "%s: more than %u objects to search",
                                  path, MAX_VISITS);
            break;
        }
        int exists, is_group, has_data;
        status = inspect(c, child, &exists, &is_group, &has_data, child_type);
        if (status != NT_OK || !exists)
            continue;
        nwb_obj o = {child, list.names[i], is_group, has_data, child_type, type};
        status = w->visit(c, &o, w->data, &w->stop);
        if (status == NT_OK && !w->stop && is_group && !has_data && depth < MAX_DEPTH)
            status = walk(c, child, child_type, depth + 1, w);
    }
    nt_strings_free(list.names, list.n);
    return status;
}

static int walk_from(const nt_h5ctx *c, const char *path, visit_fn visit, void *data)
{
    char type[TYPE_LEN];
    int exists, is_group, has_data;
    int status = inspect(c, path, &exists, &is_group, &has_data, type);
    if (status != NT_OK || !is_group)
        return status;
    walker w = {visit, data, 0, 0};
    return walk(c, path, type, 1, &w);
}

/* ------------------------------------------------------------ series */

/* A TimeSeries found by a walk. */
typedef struct found_series {
    const char *want;          /* name looked for, or NULL for the default */
    char path[NT_H5_MAX_PATH]; /* the answer ("" none) */
    char type[TYPE_LEN];
    char any[NT_H5_MAX_PATH];  /* default search: the first RoiResponseSeries at all */
    char any_type[TYPE_LEN];
} found_series;

static int visit_find_series(const nt_h5ctx *c, const nwb_obj *o, void *data, int *stop)
{
    found_series *f = data;
    (void)c;
    if (!o->is_group || !o->has_data)
        return NT_OK;
    if (f->want != NULL) {
        if (strcmp(o->name, f->want) == 0) {
            snprintf(f->path, sizeof f->path, "%s", o->path);
            snprintf(f->type, sizeof f->type, "%s", o->type);
            *stop = 1;
        }
        return NT_OK;
    }
    if (strcmp(o->type, "RoiResponseSeries") != 0)
        return NT_OK;
    if (f->any[0] == '\0') {
        snprintf(f->any, sizeof f->any, "%s", o->path);
        snprintf(f->any_type, sizeof f->any_type, "%s", o->type);
    }
    if (strcmp(o->parent_type, "DfOverF") != 0) {
        snprintf(f->path, sizeof f->path, "%s", o->path);
        snprintf(f->type, sizeof f->type, "%s", o->type);
        *stop = 1;
    }
    return NT_OK;
}

/* Finds the series to read (see the top of this file) into series
 * [NT_H5_MAX_PATH] and its neurodata_type into type [TYPE_LEN]. */
static int choose_series(const nt_h5ctx *c, const char *want, char *series, char *type)
{
    found_series f;
    int status;
    memset(&f, 0, sizeof f);
    if (want != NULL && want[0] == '\0')
        want = NULL;
    if (want != NULL && want[0] == '/') {
        int exists, is_group, has_data;
        if (strlen(want) >= NT_H5_MAX_PATH)
            return nt_error_set(c->err, NT_ERR_INVALID, "%.64s...: path too long", want);
        status = inspect(c, want, &exists, &is_group, &has_data, type);
        if (status != NT_OK)
            return status;
        if (!exists)
            return nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such TimeSeries", want);
        if (!is_group)
            return nt_error_set(c->err, NT_ERR_FORMAT,
                                "%s: expected a TimeSeries group, found a dataset", want);
        if (!has_data)
            return nt_error_set(c->err, NT_ERR_FORMAT, "%s: not a TimeSeries (no data dataset)",
                                want);
        snprintf(series, NT_H5_MAX_PATH, "%s", want);
        return NT_OK;
    }
    f.want = want;
    status = walk_from(c, ophys, visit_find_series, &f);
    if (status == NT_OK && want != NULL && f.path[0] == '\0')
        status = walk_from(c, acquisition, visit_find_series, &f);
    if (status != NT_OK)
        return status;
    if (f.path[0] == '\0' && f.any[0] != '\0') {
        memcpy(f.path, f.any, sizeof f.path);
        memcpy(f.type, f.any_type, sizeof f.type);
    }
    if (f.path[0] == '\0') {
        if (want != NULL)
            return nt_error_set(c->err, NT_ERR_FORMAT,
                                "no TimeSeries named \"%s\" under %s or %s", want, ophys,
                                acquisition);
        return nt_error_set(c->err, NT_ERR_FORMAT,
                            "no RoiResponseSeries (neurodata_type) under %s or its Fluorescence "
                            "and DfOverF containers; name a TimeSeries with --series",
                            ophys);
    }
    memcpy(series, f.path, NT_H5_MAX_PATH);
    memcpy(type, f.type, TYPE_LEN);
    return NT_OK;
}

/* Writes "NWB <type> <series>, <storage>" into rec->storage, shortening
 * the path from the left (".../Fluorescence/RoiResponseSeries") to fit. */
static void compose_storage(nt_recording *rec, const char *type, const char *series)
{
    char layout[sizeof rec->storage];
    const size_t cap = sizeof rec->storage;
    memcpy(layout, rec->storage, sizeof layout);
    int n = snprintf(rec->storage, cap, "NWB %s %s, %s", type[0] ? type : "TimeSeries", series,
                     layout);
    if (n >= 0 && (size_t)n < cap)
        return;
    for (const char *p = series; p != NULL; p = strchr(p + 1, '/')) {
        n = snprintf(rec->storage, cap, "NWB %s%s, %s", p == series ? "" : "...", p, layout);
        if (n >= 0 && (size_t)n < cap)
            return;
    }
    n = snprintf(rec->storage, cap, "NWB, %s", layout); /* cut when it must be */
    if (n < 0)
        rec->storage[0] = '\0';
}

/* ------------------------------------------------------------ time */

/* Reads the 1-D dataset of seconds at path, which must hold n values, into
 * a new array *out (NULL when n is 0). */
static int read_seconds(const nt_h5ctx *c, const char *path, size_t n, const char *of,
                        double **out)
{
    hid_t dset;
    hsize_t got;
    *out = NULL;
    int status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK)
        return status;
    if (dset < 0)
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", path);
    status = nt_h5_extent(dset, path, "a 1-D dataset [frames]", 1, 1, 0, &got, NULL, c->err);
    if (status == NT_OK && got != n)
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: has %llu value%s, %s has %zu frame%s",
                              path, (unsigned long long)got, got == 1 ? "" : "s", of, n,
                              n == 1 ? "" : "s");
    if (status == NT_OK)
        status = nt_h5_read_numbers(c, dset, path, got, out);
    H5Dclose(dset);
    if (status == NT_OK && *out != NULL && !isfinite((*out)[0])) {
        status = nt_error_set(c->err, NT_ERR_INVALID, "%s: the first time is %g", path,
                              (*out)[0]);
        free(*out);
        *out = NULL;
    }
    return status;
}

/* Gives rec its time base from the series (or opts->time_dataset) and sets
 * *t0 to the session time of the first frame (0 when there is none). */
static int read_series_time(const nt_h5ctx *c, const nt_read_options *opts, const char *series,
                            const char *data, nt_recording *rec, double *t0)
{
    char path[NT_H5_MAX_PATH + 16];
    hid_t dset = H5I_INVALID_HID;
    double *t = NULL;
    int status;
    *t0 = 0;
    if (opts->time_dataset == NULL) {
        snprintf(path, sizeof path, "%s/timestamps", series);
        status = nt_h5_open_path(c, path, &dset);
        if (status != NT_OK)
            return status;
    }
    if (opts->time_dataset != NULL || dset >= 0) {
        if (dset >= 0)
            H5Oclose(dset);
        status = read_seconds(c, opts->time_dataset != NULL ? opts->time_dataset : path,
                              rec->n_frames, data, &t);
        if (status != NT_OK)
            return status;
        *t0 = t != NULL ? t[0] : 0;
        nt_h5_set_time(rec, t, *t0);
        return NT_OK;
    }

    static const char *const rate_name[] = {"rate"};
    hsize_t n;
    double rate_hz = NAN;
    int found = 0;
    snprintf(path, sizeof path, "%s/starting_time", series);
    status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK || dset < 0)
        return status;
    status = nt_h5_extent(dset, path, "one number of seconds", 1, 1, 1, &n, NULL, c->err);
    if (status == NT_OK && n != 1)
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "%s: expected one number of seconds, found %llu", path,
                              (unsigned long long)n);
    if (status == NT_OK)
        status = nt_h5_read_numbers(c, dset, path, 1, &t);
    if (status == NT_OK)
        status = nt_h5_read_rate(c, dset, path, rate_name, 1, &found, &rate_hz);
    H5Dclose(dset);
    if (status == NT_OK && !found)
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: no rate attribute", path);
    if (status == NT_OK && !isfinite(t[0]))
        status = nt_error_set(c->err, NT_ERR_INVALID, "%s: is %g, must be a number of seconds",
                              path, t[0]);
    if (status == NT_OK) {
        *t0 = t[0];
        status = nt_h5_set_regular_time(c, data, rec, rate_hz);
    }
    free(t);
    return status;
}

/* --------------------------------------------------------- stimuli */

enum stim_kind { STIM_NONE, STIM_TABLE, STIM_EVENTS };

typedef struct found_stim {
    char path[NT_H5_MAX_PATH];
    int kind;                  /* enum stim_kind */
} found_stim;

/* A TimeIntervals table is a group with a start_time column; a TimeSeries
 * of events a group with timestamps. */
static int visit_find_stim(const nt_h5ctx *c, const nwb_obj *o, void *data, int *stop)
{
    found_stim *f = data;
    hid_t obj;
    if (!o->is_group)
        return NT_OK;
    int status = nt_h5_open_path(c, o->path, &obj);
    if (status != NT_OK || obj < 0)
        return status;
    if (has_link(obj, "start_time"))
        f->kind = STIM_TABLE;
    else if (o->has_data && has_link(obj, "timestamps"))
        f->kind = STIM_EVENTS;
    H5Oclose(obj);
    if (f->kind != STIM_NONE) {
        snprintf(f->path, sizeof f->path, "%s", o->path);
        *stop = 1;
    }
    return NT_OK;
}

/* The source of the stimuli when no dataset is named: /intervals/trials,
 * else the first table or event series under /stimulus/presentation, then
 * /intervals. Only the members of those groups are looked at. */
static int find_stim_source(const nt_h5ctx *c, found_stim *f)
{
    char type[TYPE_LEN];
    int exists, is_group, has_data;
    memset(f, 0, sizeof *f);
    int status = inspect(c, trials, &exists, &is_group, &has_data, type);
    if (status != NT_OK)
        return status;
    if (is_group) {
        snprintf(f->path, sizeof f->path, "%s", trials);
        f->kind = STIM_TABLE;
        return NT_OK;
    }
    static const char *const places[] = {"/stimulus/presentation", "/intervals"};
    for (size_t i = 0; i < 2 && f->kind == STIM_NONE; i++) {
        name_list list;
        status = list_members(c, places[i], &list);
        for (size_t k = 0; status == NT_OK && k < list.n && f->kind == STIM_NONE; k++) {
            char path[NT_H5_MAX_PATH];
            int n = snprintf(path, sizeof path, "%s/%s", places[i], list.names[k]);
            if (n < 0 || (size_t)n >= sizeof path)
                continue;
            status = inspect(c, path, &exists, &is_group, &has_data, type);
            if (status != NT_OK)
                break;
            nwb_obj o = {path, list.names[k], is_group, has_data, type, ""};
            int stop = 0;
            status = visit_find_stim(c, &o, f, &stop);
        }
        nt_strings_free(list.names, list.n);
        if (status != NT_OK)
            return status;
    }
    return NT_OK;
}

/* Appends the column names of the table at path to b, ", "-separated: its
 * colnames attribute, else its datasets other than id and *_index. */
static int table_columns(const nt_h5ctx *c, const char *path, sbuf *b)
{
    hid_t group;
    char **names = NULL;
    size_t n = 0;
    int status = nt_h5_open_path(c, path, &group);
    if (status != NT_OK || group < 0)
        return status;
    status = nt_h5_attr_strings(c, group, path, "colnames", &n, &names);
    H5Oclose(group);
    if (status != NT_OK)
        return status;
    if (names != NULL) {
        for (size_t i = 0; i < n; i++)
            sbuf_printf(b, "%s%s", i > 0 ? ", " : "", names[i]);
        nt_strings_free(names, n);
        return NT_OK;
    }
    name_list list;
    status = list_members(c, path, &list);
    size_t shown = 0;
    for (size_t i = 0; status == NT_OK && i < list.n; i++) {
        const char *name = list.names[i];
        size_t len = strlen(name);
        char child[NT_H5_MAX_PATH];
        hid_t obj;
        if (strcmp(name, "id") == 0 || (len >= 6 && strcmp(name + len - 6, "_index") == 0))
            continue;
        int w = snprintf(child, sizeof child, "%s/%s", path, name);
        if (w < 0 || (size_t)w >= sizeof child)
            continue;
        status = nt_h5_open_path(c, child, &obj);
        if (status != NT_OK || obj < 0)
            continue;
        if (H5Iget_type(obj) == H5I_DATASET)
            sbuf_printf(b, "%s%s", shown++ > 0 ? ", " : "", name);
        H5Oclose(obj);
    }
    nt_strings_free(list.names, list.n);
    return status;
}

/* Reads the label column at path (n values: strings, or numbers written
 * with %g) into a new array *out. */
static int read_label_column(const nt_h5ctx *c, const char *path, size_t n, char ***out)
{
    hid_t dset, type;
    double *v = NULL;
    char **labels = NULL;
    size_t got = 0;
    *out = NULL;
    int status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK || dset < 0)
        return status;
    type = H5Dget_type(dset);
    if (type < 0) {
        H5Dclose(dset);
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot read the datatype");
    }
    if (H5Tget_class(type) == H5T_STRING) {
        status = nt_h5_read_strings(c, dset, path, &got, &labels);
    } else if (nt_h5_is_standard_number(type)) {
        hsize_t dims[1];
        status = nt_h5_extent(dset, path, "a 1-D column", 1, 1, 0, dims, NULL, c->err);
        if (status == NT_OK && dims[0] != n)
            got = (size_t)(dims[0] < NT_H5_MAX_LIST_ENTRIES ? dims[0] : NT_H5_MAX_LIST_ENTRIES);
        else if (status == NT_OK)
            status = nt_h5_read_numbers(c, dset, path, dims[0], &v);
        if (status == NT_OK && v != NULL) {
            got = n;
            labels = calloc(n, sizeof *labels);
            for (size_t i = 0; labels != NULL && i < n; i++) {
                char text[32];
                snprintf(text, sizeof text, "%g", v[i]);
                labels[i] = nt_strdup(text);
                if (labels[i] == NULL) {
                    nt_strings_free(labels, n);
                    labels = NULL;
                }
            }
            if (labels == NULL)
                status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate labels", path);
        }
    } else {
        char name[64];
        nt_h5_describe_type(type, name, sizeof name);
        status = nt_error_set(c->err, NT_ERR_FORMAT,
                              "%s: expected strings or numbers for labels, found %s", path, name);
    }
    free(v);
    H5Tclose(type);
    H5Dclose(dset);
    if (status == NT_OK && got != n) {
        nt_strings_free(labels, got);
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: %zu value%s for %zu row%s", path, got,
                            got == 1 ? "" : "s", n, n == 1 ? "" : "s");
    }
    if (status == NT_OK)
        *out = labels;
    return status;
}

/* Reads the onsets at path (1-D or one scalar) into rec, shifted by -t0. */
static int read_onsets(const nt_h5ctx *c, const char *path, double t0, nt_recording *rec)
{
    hid_t dset;
    hsize_t n = 0;
    double *onsets = NULL;
    int status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK)
        return status;
    if (dset < 0)
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", path);
    status = nt_h5_extent(dset, path, "a 1-D dataset of seconds", 1, 1, 1, &n, NULL, c->err);
    if (status == NT_OK && n > NT_H5_MAX_LIST_ENTRIES)
        status = nt_error_set(c->err, NT_ERR_TOO_LARGE,
                              "%s: declares %llu onsets, more than the limit of %u", path,
                              (unsigned long long)n, NT_H5_MAX_LIST_ENTRIES);
    if (status == NT_OK)
        status = nt_h5_read_numbers(c, dset, path, n, &onsets);
    H5Dclose(dset);
    if (status != NT_OK)
        return status;
    for (size_t k = 0; k < (size_t)n; k++)
        onsets[k] -= t0;
    rec->stim_s = onsets;
    rec->n_stims = (size_t)n;
    rec->stim_source = n > 0 ? NT_SOURCE_FILE_STIM : NT_SOURCE_NONE;
    return NT_OK;
}

/* Stimuli from the table at path: its start_time, labelled by the column
 * label (NULL: none). */
static int read_table_stims(const nt_h5ctx *c, const char *table, const char *label, double t0,
                            nt_recording *rec)
{
    char path[NT_H5_MAX_PATH + 16], column[2 * NT_H5_MAX_PATH];
    hid_t obj;
    snprintf(path, sizeof path, "%s/start_time", table);
    int status = read_onsets(c, path, t0, rec);
    if (status != NT_OK || label == NULL)
        return status;
    if (strchr(label, '/') != NULL || strlen(label) > 256)
        return nt_error_set(c->err, NT_ERR_INVALID, "trial label \"%s\" is not a column name",
                            label);
    snprintf(column, sizeof column, "%s/%s_index", table, label);
    status = nt_h5_open_path(c, column, &obj);
    if (status != NT_OK)
        return status;
    if (obj >= 0) {
        H5Oclose(obj);
        return nt_error_set(c->err, NT_ERR_FORMAT,
                            "%s/%s: a ragged column (with %s_index) cannot label trials", table,
                            label, label);
    }
    snprintf(column, sizeof column, "%s/%s", table, label);
    status = nt_h5_open_path(c, column, &obj);
    if (status != NT_OK)
        return status;
    if (obj < 0) {
        sbuf cols = {NULL, 0, 0, 0};
        status = table_columns(c, table, &cols);
        if (status == NT_OK)
            status = nt_error_set(c->err, NT_ERR_FORMAT,
                                  "%s: no column \"%s\" for the trial label (columns: %s)", table,
                                  label, cols.s != NULL ? cols.s : "none");
        free(cols.s);
        return status;
    }
    H5Oclose(obj);
    return read_label_column(c, column, rec->n_stims, &rec->stim_labels);
}

/* Stimuli from a TimeSeries of events at path: its timestamps, labelled by
 * its data when those are strings (an AnnotationSeries). */
static int read_event_stims(const nt_h5ctx *c, const char *series, double t0, nt_recording *rec)
{
    char path[NT_H5_MAX_PATH + 16];
    hid_t dset, type;
    snprintf(path, sizeof path, "%s/timestamps", series);
    int status = read_onsets(c, path, t0, rec);
    if (status != NT_OK)
        return status;
    snprintf(path, sizeof path, "%s/data", series);
    status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK || dset < 0)
        return status;
    type = H5Dget_type(dset);
    int strings = type >= 0 && H5Tget_class(type) == H5T_STRING;
    if (type >= 0)
        H5Tclose(type);
    H5Dclose(dset);
    H5Eclear2(H5E_DEFAULT);
    if (!strings)
        return NT_OK;
    return nt_h5_read_string_list(c, path, rec->n_stims, "label", "onset", &rec->stim_labels);
}

static int read_nwb_stims(const nt_h5ctx *c, const nt_read_options *opts, double t0,
                          nt_recording *rec)
{
    found_stim f;
    const char *label = opts->trial_label;
    if (label != NULL && label[0] == '\0')
        label = NULL;
    if (opts->stim_dataset != NULL) {
        if (label != NULL)
            return nt_error_set(c->err, NT_ERR_INVALID,
                                "trial label \"%s\": the stimuli come from %s, not a table",
                                label, opts->stim_dataset);
        return read_onsets(c, opts->stim_dataset, t0, rec);
    }
    int status = find_stim_source(c, &f);
    if (status != NT_OK)
        return status;
    if (f.kind == STIM_TABLE)
        return read_table_stims(c, f.path, label, t0, rec);
    if (label != NULL)
        return f.kind == STIM_EVENTS
                   ? nt_error_set(c->err, NT_ERR_FORMAT,
                                  "trial label \"%s\": no %s table; the stimuli come from %s",
                                  label, trials, f.path)
                   : nt_error_set(c->err, NT_ERR_FORMAT,
                                  "%s: no such table for the trial label \"%s\"", trials, label);
    if (f.kind == STIM_EVENTS)
        return read_event_stims(c, f.path, t0, rec);
    return NT_OK;
}

/* ------------------------------------------------------------ ROI names */

/*
 * Names the ROIs "roi<id>" from the series' rois region: a 1-D integer
 * dataset [n_rois] of row indices into the table its `table` attribute
 * references, whose `id` column holds the ids. Anything that does not
 * resolve leaves the names out; only running out of memory fails.
 */
static int read_roi_names(const nt_h5ctx *c, const char *series, nt_recording *rec)
{
    char path[NT_H5_MAX_PATH + 16];
    nt_error quiet_err = {NT_OK, ""};
    nt_h5ctx q = *c;
    hid_t rois = H5I_INVALID_HID, attr = H5I_INVALID_HID, space = H5I_INVALID_HID;
    hid_t atype = H5I_INVALID_HID, table = H5I_INVALID_HID, ids_dset = H5I_INVALID_HID;
    double *index = NULL, *ids = NULL;
    char **names = NULL;
    hsize_t n_index = 0, n_ids = 0;
    int status = NT_OK;
    q.err = &quiet_err;

    snprintf(path, sizeof path, "%s/rois", series);
    if (rec->n_rois == 0 || nt_h5_open_dataset(&q, path, &rois) != NT_OK || rois < 0)
        goto cleanup;
    if (nt_h5_extent(rois, path, "1-D", 1, 1, 0, &n_index, NULL, q.err) != NT_OK ||
        n_index != rec->n_rois || nt_h5_read_numbers(&q, rois, path, n_index, &index) != NT_OK)
        goto cleanup;
    if (H5Aexists(rois, "table") <= 0)
        goto cleanup;
    attr = H5Aopen(rois, "table", H5P_DEFAULT);
    space = attr >= 0 ? H5Aget_space(attr) : H5I_INVALID_HID;
    atype = attr >= 0 ? H5Aget_type(attr) : H5I_INVALID_HID;
    if (space < 0 || atype < 0 || H5Sget_simple_extent_npoints(space) != 1 ||
        H5Tequal(atype, H5T_STD_REF_OBJ) <= 0)
        goto cleanup;
    hobj_ref_t ref;
    if (H5Aread(attr, H5T_STD_REF_OBJ, &ref) < 0)
        goto cleanup;
    table = H5Rdereference2(rois, H5P_DEFAULT, H5R_OBJECT, &ref);
    if (table < 0 || H5Iget_type(table) != H5I_GROUP || !has_link(table, "id"))
        goto cleanup;
    ids_dset = H5Dopen2(table, "id", H5P_DEFAULT);
    if (ids_dset < 0 ||
        nt_h5_extent(ids_dset, "id", "1-D", 1, 1, 0, &n_ids, NULL, q.err) != NT_OK ||
        n_ids > NT_H5_MAX_LIST_ENTRIES ||
        nt_h5_read_numbers(&q, ids_dset, "id", n_ids, &ids) != NT_OK)
        goto cleanup;
    for (size_t r = 0; r < rec->n_rois; r++) {
        double i = index[r];
        if (!(i >= 0 && i < (double)n_ids && i == floor(i)) || !(fabs(ids[(size_t)i]) < 1e15) ||
            ids[(size_t)i] != floor(ids[(size_t)i]))
            goto cleanup;
    }
    names = calloc(rec->n_rois, sizeof *names);
    for (size_t r = 0; names != NULL && r < rec->n_rois; r++) {
        char text[32];
        snprintf(text, sizeof text, "roi%lld", (long long)ids[(size_t)index[r]]);
        names[r] = nt_strdup(text);
        if (names[r] == NULL) {
            nt_strings_free(names, rec->n_rois);
            names = NULL;
        }
    }
    if (names == NULL)
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s: cannot allocate ROI names", path);
    rec->roi_names = names;
cleanup:
    if (quiet_err.status == NT_ERR_NOMEM && status == NT_OK)
        status = nt_error_set(c->err, NT_ERR_NOMEM, "%s", quiet_err.message);
    free(index);
    free(ids);
    if (ids_dset >= 0)
        H5Dclose(ids_dset);
    if (table >= 0)
        H5Oclose(table);
    if (atype >= 0)
        H5Tclose(atype);
    if (space >= 0)
        H5Sclose(space);
    if (attr >= 0)
        H5Aclose(attr);
    if (rois >= 0)
        H5Dclose(rois);
    H5Eclear2(H5E_DEFAULT);
    return status;
}

/* ------------------------------------------------------------ reading */

int nt_h5_is_nwb(const nt_h5ctx *c, int *is_nwb)
{
    char *type = NULL;
    *is_nwb = 0;
    htri_t has_version = H5Aexists(c->file, "nwb_version");
    if (has_version < 0)
        return nt_h5_fail(c->err, NT_ERR_CORRUPT, "/", "cannot read the attributes");
    if (has_version > 0) {
        *is_nwb = 1;
        return NT_OK;
    }
    nt_error quiet_err;
    nt_h5ctx q = *c;
    q.err = &quiet_err;
    int status = nt_h5_attr_string(&q, c->file, "/", "neurodata_type", &type);
    if (status == NT_OK)
        *is_nwb = type != NULL && strcmp(type, "NWBFile") == 0;
    else if (status != NT_ERR_FORMAT) /* a root attribute of another kind: not NWB */
        nt_error_set(c->err, status, "%s", quiet_err.message);
    else
        status = NT_OK;
    free(type);
    return status;
}

int nt_h5_nwb_claims(const nt_h5ctx *c, const char *path, char *series, size_t len,
                     int *claimed)
{
    char type[TYPE_LEN];
    int exists, is_group, has_data;
    *claimed = 0;
    int status = inspect(c, path, &exists, &is_group, &has_data, type);
    if (status != NT_OK || !exists)
        return status;
    if (is_group) {
        if (has_data && strlen(path) < len) {
            snprintf(series, len, "%s", path);
            *claimed = 1;
        }
        return NT_OK;
    }
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path || strcmp(slash, "/data") != 0 ||
        (size_t)(slash - path) >= len)
        return NT_OK;
    char parent[NT_H5_MAX_PATH];
    memcpy(parent, path, (size_t)(slash - path));
    parent[slash - path] = '\0';
    status = inspect(c, parent, &exists, &is_group, &has_data, type);
    if (status == NT_OK && is_group && type[0] != '\0') {
        snprintf(series, len, "%s", parent);
        *claimed = 1;
    }
    return status;
}

int nt_h5_read_nwb(const nt_h5ctx *c, const nt_read_options *opts, nt_recording *rec)
{
    char series[NT_H5_MAX_PATH], type[TYPE_LEN], data[NT_H5_MAX_PATH + 8];
    nt_h5_matrix m = {H5I_INVALID_HID, data, 2, {0, 0}, 0};
    double conversion = 1, offset = 0, t0 = 0;
    int found;

    int status = choose_series(c, opts->series, series, type);
    if (status != NT_OK)
        return status;
    snprintf(data, sizeof data, "%s/data", series);
    status = nt_h5_open_dataset(c, data, &m.dset);
    if (status != NT_OK)
        goto cleanup;
    if (m.dset < 0) {
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", data);
        goto cleanup;
    }
    status = nt_h5_extent(m.dset, data, "a 1-D or 2-D dataset", 1, 2, 0, m.dims, &m.rank, c->err);
    if (status != NT_OK)
        goto cleanup;
    m.transpose = m.rank == 2 && opts->layout != NT_LAYOUT_ROIS_BY_FRAMES;
    status = nt_h5_matrix_prepare(c, &m, opts->header_only, rec);
    if (status != NT_OK)
        goto cleanup;
    compose_storage(rec, type, series);
    status = nt_h5_attr_number(c, m.dset, data, "conversion", &found, &conversion);
    if (status == NT_OK && !found)
        conversion = 1;
    if (status == NT_OK)
        status = nt_h5_attr_number(c, m.dset, data, "offset", &found, &offset);
    if (status == NT_OK && !found)
        offset = 0;
    if (status == NT_OK && (!isfinite(conversion) || !isfinite(offset)))
        status = nt_error_set(c->err, NT_ERR_INVALID,
                              "%s: conversion %g and offset %g must be finite numbers", data,
                              conversion, offset);
    if (status == NT_OK)
        status = read_series_time(c, opts, series, data, rec, &t0);
    if (status == NT_OK)
        status = read_nwb_stims(c, opts, t0, rec);
    if (status == NT_OK)
        status = read_roi_names(c, series, rec);
    if (status != NT_OK || opts->header_only)
        goto cleanup;
    status = nt_h5_matrix_read(c, &m, rec);
    if (status == NT_OK && (conversion != 1 || offset != 0)) {
        size_t n = rec->n_rois * rec->n_frames;
        for (size_t i = 0; i < n; i++)
            rec->traces[i] = (float)((double)rec->traces[i] * conversion + offset);
    }
cleanup:
    if (m.dset >= 0)
        H5Dclose(m.dset);
    return status;
}

int nt_read_nwb(const char *path, const nt_read_options *opts, nt_recording **out, nt_error *err)
{
    nt_read_options local;
    nt_h5ctx c;
    nt_recording *rec = NULL;
    int is_nwb = 0;

    if (out == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_read_nwb: path and out must not be NULL");
    *out = NULL;
    if (opts != NULL)
        local = *opts;
    else
        nt_read_options_default(&local);
    int status = nt_h5_open(&c, path, local.max_bytes, err);
    if (status == NT_OK)
        status = nt_h5_is_nwb(&c, &is_nwb);
    if (status == NT_OK && !is_nwb)
        status = nt_error_set(err, NT_ERR_FORMAT,
                              "not an NWB file (the root group has no nwb_version attribute "
                              "and no neurodata_type NWBFile)");
    char series[NT_H5_MAX_PATH];
    if (status == NT_OK && local.dataset != NULL) {
        int claimed = 0;
        status = nt_h5_nwb_claims(&c, local.dataset, series, sizeof series, &claimed);
        if (status == NT_OK && !claimed)
            status = nt_error_set(err, NT_ERR_FORMAT, "%s: not a TimeSeries or the data of one",
                                  local.dataset);
        local.series = series;
        local.dataset = NULL;
    }
    if (status == NT_OK) {
        rec = nt_recording_new(0, 0);
        if (rec == NULL)
            status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate a recording");
    }
    if (status == NT_OK)
        status = nt_h5_read_nwb(&c, &local, rec);
    status = nt_h5_close(&c, status);
    if (status == NT_OK)
        *out = rec;
    else
        nt_recording_free(rec);
    return status;
}

/* ------------------------------------------------------------ describe */

typedef struct describe_state {
    sbuf *b;
    const char *default_series;
    const char *stim_source;
} describe_state;

/* The dimensions of the dataset at path (any rank up to 8) into dims,
 * or a description of why not into b. */
static int data_shape(const nt_h5ctx *c, const char *path, hsize_t *dims, int *rank)
{
    hid_t dset;
    int status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK)
        return status;
    if (dset < 0)
        return nt_error_set(c->err, NT_ERR_FORMAT, "%s: no such dataset", path);
    status = nt_h5_extent(dset, path, "a dataset", 1, H5S_MAX_RANK, 1, dims, rank, c->err);
    H5Dclose(dset);
    return status;
}

/* The first and last values of the 1-D dataset at path (n >= 1 values). */
static int first_last(const nt_h5ctx *c, const char *path, hsize_t n, double *first,
                      double *last)
{
    hid_t dset = H5Dopen2(c->file, path, H5P_DEFAULT);
    hid_t space = dset >= 0 ? H5Dget_space(dset) : H5I_INVALID_HID;
    hid_t mem = H5Screate_simple(1, (hsize_t[]){2}, NULL);
    hid_t type = dset >= 0 ? H5Dget_type(dset) : H5I_INVALID_HID;
    hsize_t points[2] = {0, n - 1};
    double v[2] = {0, 0};
    int status = NT_OK;
    if (type >= 0 && !nt_h5_is_standard_number(type))
        status = nt_error_set(c->err, NT_ERR_FORMAT, "%s: expected numbers", path);
    else if (dset < 0 || type < 0 || space < 0 || mem < 0 ||
        H5Sselect_elements(space, H5S_SELECT_SET, 2, points) < 0 ||
        H5Dread(dset, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, v) < 0)
        status = nt_h5_fail(c->err, NT_ERR_CORRUPT, path, "cannot read data");
    *first = v[0];
    *last = v[1];
    if (type >= 0)
        H5Tclose(type);
    if (mem >= 0)
        H5Sclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0)
        H5Dclose(dset);
    return status;
}

/* Appends how the series at path is timed: "rate R Hz", "timestamps, mean
 * rate R Hz", or "no time base". */
static int describe_timing(const nt_h5ctx *c, const char *series, size_t n_frames, sbuf *b)
{
    char path[NT_H5_MAX_PATH + 16];
    hid_t dset;
    hsize_t dims[H5S_MAX_RANK];
    int rank, found = 0;
    double rate = NAN;
    static const char *const rate_name[] = {"rate"};
    snprintf(path, sizeof path, "%s/timestamps", series);
    int status = nt_h5_open_path(c, path, &dset);
    if (status != NT_OK)
        return status;
    if (dset >= 0) {
        H5Oclose(dset);
        status = data_shape(c, path, dims, &rank);
        if (status != NT_OK)
            return status;
        if (rank != 1 || dims[0] != n_frames) {
            sbuf_printf(b, "timestamps do not match the frames");
            return NT_OK;
        }
        double first = 0, last = 0;
        if (n_frames >= 2 && (status = first_last(c, path, dims[0], &first, &last)) != NT_OK)
            return status;
        rate = n_frames >= 2 ? (double)(n_frames - 1) / (last - first) : NAN;
        if (rate > 0 && isfinite(rate))
            sbuf_printf(b, "timestamps, mean rate %.4g Hz", rate);
        else
            sbuf_printf(b, "timestamps");
        return NT_OK;
    }
    snprintf(path, sizeof path, "%s/starting_time", series);
    status = nt_h5_open_dataset(c, path, &dset);
    if (status != NT_OK)
        return status;
    if (dset < 0) {
        sbuf_printf(b, "no time base");
        return NT_OK;
    }
    status = nt_h5_read_rate(c, dset, path, rate_name, 1, &found, &rate);
    H5Dclose(dset);
    if (status != NT_OK)
        return status;
    if (found)
        sbuf_printf(b, "rate %.4g Hz", rate);
    else
        sbuf_printf(b, "no rate");
    return NT_OK;
}

/*
 * Ends the description of one item: its line (built in line, freed here)
 * goes to d->b when status is NT_OK. An item the file holds in a form we do
 * not read (NT_ERR_FORMAT, NT_ERR_INVALID, detail in item_err) becomes a
 * line "kind path: message" rather than failing the whole description;
 * other failures are returned, with their detail in c->err.
 */
static int end_item(const nt_h5ctx *c, describe_state *d, sbuf *line, int status,
                    const char *kind, const char *path, const nt_error *item_err)
{
    if (line->failed)
        d->b->failed = 1;
    if (status == NT_OK && line->s != NULL)
        sbuf_printf(d->b, "%s", line->s);
    free(line->s);
    if (status == NT_ERR_FORMAT || status == NT_ERR_INVALID) {
        sbuf_printf(d->b, "%s %s: %s\n", kind, path, item_err->message);
        return NT_OK;
    }
    if (status != NT_OK)
        nt_error_set(c->err, status, "%s", item_err->message);
    return status;
}

static int describe_series(const nt_h5ctx *c, const nwb_obj *o, const describe_state *d,
                           sbuf *line)
{
    char path[NT_H5_MAX_PATH + 8];
    hsize_t dims[H5S_MAX_RANK];
    int rank = 0;
    sbuf_printf(line, "series %s", o->path);
    if (strcmp(o->type, "RoiResponseSeries") != 0)
        sbuf_printf(line, " (%s)", o->type[0] != '\0' ? o->type : "no neurodata_type");
    snprintf(path, sizeof path, "%s/data", o->path);
    int status = data_shape(c, path, dims, &rank);
    if (status != NT_OK)
        return status;
    if (rank > 2) {
        sbuf_printf(line, ": %d-D data, not traces\n", rank);
        return NT_OK;
    }
    size_t rois = rank == 2 ? (size_t)dims[1] : 1, frames = (size_t)dims[0];
    sbuf_printf(line, ": %zu ROI%s x %zu frame%s, ", rois, rois == 1 ? "" : "s", frames,
                frames == 1 ? "" : "s");
    status = describe_timing(c, o->path, frames, line);
    if (status != NT_OK)
        return status;
    if (d->default_series != NULL && strcmp(o->path, d->default_series) == 0)
        sbuf_printf(line, " [default]");
    sbuf_printf(line, "\n");
    return NT_OK;
}

static int visit_describe_series(const nt_h5ctx *c, const nwb_obj *o, void *data, int *stop)
{
    describe_state *d = data;
    nt_error item_err = {NT_OK, ""};
    nt_h5ctx q = *c;
    sbuf line = {NULL, 0, 0, 0};
    (void)stop;
    if (!o->is_group || !o->has_data)
        return NT_OK;
    q.err = &item_err;
    int status = describe_series(&q, o, d, &line);
    return end_item(c, d, &line, status, "series", o->path, &item_err);
}

/* Writes into line the line of a table or event series at path (kind as
 * in find_stim_source), or nothing when it is neither. */
static int describe_stim(const nt_h5ctx *c, const char *path, const char *link,
                         const describe_state *d, sbuf *line)
{
    char type[TYPE_LEN], column[NT_H5_MAX_PATH + 16];
    int exists, is_group, has_data, rank;
    hsize_t dims[H5S_MAX_RANK];
    found_stim f;
    memset(&f, 0, sizeof f);
    int status = inspect(c, path, &exists, &is_group, &has_data, type);
    if (status != NT_OK)
        return status;
    nwb_obj o = {path, link, is_group, has_data, type, ""};
    int stop = 0;
    status = visit_find_stim(c, &o, &f, &stop);
    if (status != NT_OK || f.kind == STIM_NONE)
        return status;
    int is_trials = strcmp(path, trials) == 0;
    if (f.kind == STIM_TABLE) {
        snprintf(column, sizeof column, "%s/start_time", path);
        status = data_shape(c, column, dims, &rank);
        if (status != NT_OK)
            return status;
        sbuf_printf(line, "%s %s: %llu row%s, columns ", is_trials ? "trials" : "intervals", path,
                    (unsigned long long)dims[0], dims[0] == 1 ? "" : "s");
        status = table_columns(c, path, line);
    } else {
        snprintf(column, sizeof column, "%s/timestamps", path);
        status = data_shape(c, column, dims, &rank);
        if (status != NT_OK)
            return status;
        sbuf_printf(line, "events %s (%s): %llu timestamp%s", path,
                    type[0] != '\0' ? type : "no neurodata_type", (unsigned long long)dims[0],
                    dims[0] == 1 ? "" : "s");
    }
    if (status == NT_OK && d->stim_source != NULL && strcmp(path, d->stim_source) == 0)
        sbuf_printf(line, " [stimuli]");
    sbuf_printf(line, "\n");
    return status;
}

static int describe_stim_source(const nt_h5ctx *c, const char *path, const char *link,
                                describe_state *d)
{
    nt_error item_err = {NT_OK, ""};
    nt_h5ctx q = *c;
    sbuf line = {NULL, 0, 0, 0};
    q.err = &item_err;
    int status = describe_stim(&q, path, link, d, &line);
    return end_item(c, d, &line, status, "table", path, &item_err);
}

static int describe_file(const nt_h5ctx *c, sbuf *b)
{
    char series[NT_H5_MAX_PATH], type[TYPE_LEN];
    nt_error quiet_err;
    nt_h5ctx q = *c;
    found_stim f;
    describe_state d = {b, NULL, NULL};
    q.err = &quiet_err;
    int status = choose_series(&q, NULL, series, type);
    if (status == NT_OK)
        d.default_series = series;
    else if (status != NT_ERR_FORMAT)
        return nt_error_set(c->err, status, "%s", quiet_err.message);
    status = find_stim_source(c, &f);
    if (status != NT_OK)
        return status;
    if (f.kind != STIM_NONE)
        d.stim_source = f.path;
    status = walk_from(c, ophys, visit_describe_series, &d);
    if (status == NT_OK)
        status = walk_from(c, acquisition, visit_describe_series, &d);
    static const char *const places[] = {"/intervals", "/stimulus/presentation"};
    for (size_t i = 0; status == NT_OK && i < 2; i++) {
        name_list list;
        status = list_members(c, places[i], &list);
        for (size_t k = 0; status == NT_OK && k < list.n; k++) {
            char path[NT_H5_MAX_PATH];
            int n = snprintf(path, sizeof path, "%s/%s", places[i], list.names[k]);
            if (n >= 0 && (size_t)n < sizeof path)
                status = describe_stim_source(c, path, list.names[k], &d);
        }
        nt_strings_free(list.names, list.n);
    }
    return status;
}

int nt_nwb_describe(const char *path, char **text, nt_error *err)
{
    nt_h5ctx c;
    sbuf b = {NULL, 0, 0, 0};
    int is_nwb = 0;
    if (text == NULL || path == NULL)
        return nt_error_set(err, NT_ERR_INVALID, "nt_nwb_describe: path and text must not be NULL");
    *text = NULL;
    int status = nt_h5_open(&c, path, SIZE_MAX, err);
    if (status == NT_OK)
        status = nt_h5_is_nwb(&c, &is_nwb);
    if (status == NT_OK && !is_nwb)
        status = nt_error_set(err, NT_ERR_FORMAT,
                              "not an NWB file (the root group has no nwb_version attribute "
                              "and no neurodata_type NWBFile)");
    if (status == NT_OK)
        status = describe_file(&c, &b);
    status = nt_h5_close(&c, status);
    sbuf_printf(&b, "%s", "");
    if (status == NT_OK && b.failed)
        status = nt_error_set(err, NT_ERR_NOMEM, "cannot allocate the description");
    if (status == NT_OK) {
        *text = b.s;
        b.s = NULL;
    }
    free(b.s);
    return status;
}
