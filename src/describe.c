/* describe.c — what a container file offers beyond the recording read by
 * default (for NWB: every series and trial table), for `nirtrace info`. */
#include "internal.h"
#include "h5util.h"

#include <stdlib.h>

int nt_recording_describe(const char *path, char **text, nt_error *err)
{
    *text = NULL;
    int status = nt_nwb_describe(path, text, err);
    if (status == NT_ERR_FORMAT) {
        /* Not NWB: nothing to choose from. */
        *text = calloc(1, 1);
        return *text != NULL ? NT_OK : nt_error_set(err, NT_ERR_NOMEM, "out of memory");
    }
    return status;
}
