/*
 * handlers/datadir: files in data_dir for import and export, opened so
 * that no path, symlink or special file leads a handler outside it or
 * blocks a worker.
 */
#ifndef JOBD_SRC_HANDLERS_DATADIR_H
#define JOBD_SRC_HANDLERS_DATADIR_H

#include <stddef.h>
#include <sys/types.h>

#include "base/conf.h"

/*
 * Opens the directory holding PATH (relative to data_dir, or absolute
 * inside it) and sets *DIRFD (caller closes) and *BASE (the last
 * component, caller frees). Refused with a message in ERRSTR: an empty
 * path, a ".." component, an absolute path outside data_dir, a symlink
 * that leads out of data_dir (or, on kernels without openat2, any
 * symlinked directory). Returns 0 or -1.
 */
int jobd_handlers_open_dir(const struct jobd_conf *conf, const char *path,
			   int *dirfd, char **base, char *errstr,
			   size_t errstr_size);

/* Opens PATH inside data_dir for reading (same checks; the file itself
 * must not be a symlink, and must be a regular file: a FIFO or a device
 * would block a worker). Returns the fd or -1 with ERRSTR set. */
int jobd_handlers_open_read(const struct jobd_conf *conf, const char *path,
			    char *errstr, size_t errstr_size);

/*
 * openat(DIRFD, NAME, FLAGS | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, MODE)
 * that opens regular files only: whatever else is there (a FIFO, which
 * would block the open or every write, a device) is refused with EINVAL,
 * and so is a symlink (ELOOP). The fd it returns blocks as usual.
 */
int jobd_handlers_openat_regular(int dirfd, const char *name, int flags,
				 mode_t mode);

#endif
