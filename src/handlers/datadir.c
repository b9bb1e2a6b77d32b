/*
 * handlers/datadir: files opened only inside data_dir (datadir.h).
 *
 * data_dir confinement: openat2(RESOLVE_BENEATH) resolves the whole path
 * under the data_dir descriptor and fails with EXDEV when "..", an
 * absolute symlink or a symlink chain would leave it. Kernels before 5.6
 * lack openat2: then every component is opened with O_NOFOLLOW, which
 * refuses symlinks altogether (stricter, never looser). A lexical check
 * first gives ".." and foreign absolute paths a clear message.
 */
#include "config.h"

#include "handlers/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* PATH relative to data_dir (a new string), or NULL with ERRSTR set. */
static char *relative_path(const struct jobd_conf *conf, const char *path,
			   char *errstr, size_t errstr_size)
{
	char real[PATH_MAX];
	const char *rel = path, *p;
	size_t dl;

	if (!path || !*path) {
		snprintf(errstr, errstr_size, "no file given");
		return NULL;
	}
	if (path[0] == '/') {
		const char *dirs[2] = { conf->data_dir, NULL };

		if (realpath(conf->data_dir, real))
			dirs[1] = real;
		rel = NULL;
		for (int i = 0; i < 2 && !rel; i++) {
			if (!dirs[i])
				continue;
			dl = strlen(dirs[i]);
			while (dl > 1 && dirs[i][dl - 1] == '/')
				dl--;
			if (strncmp(path, dirs[i], dl) == 0 && path[dl] == '/')
				rel = path + dl + 1;
		}
		if (!rel) {
			snprintf(errstr, errstr_size,
				 "path \"%s\" is outside data_dir %s: refused",
				 path, conf->data_dir);
			return NULL;
		}
	}
	while (*rel == '/')
		rel++;
	for (p = rel; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(errstr, errstr_size,
				 "path \"%s\" escapes data_dir %s with \"..\": "
				 "refused",
				 path, conf->data_dir);
			return NULL;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (!*rel) {
		snprintf(errstr, errstr_size, "path \"%s\" names no file",
			 path);
		return NULL;
	}
	return strdup(rel);
}

/* openat() confined to DIRFD: openat2 RESOLVE_BENEATH, else no symlinks. */
static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode,
			const char *path, const struct jobd_conf *conf,
			char *errstr, size_t errstr_size)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	char *copy, *comp, *next;
	int fd, cur, nfd;

	fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno == EXDEV) {
		snprintf(errstr, errstr_size,
			 "path \"%s\" leads out of data_dir %s through a "
			 "symlink: refused",
			 path, conf->data_dir);
		return -1;
	}
	if (errno != ENOSYS && errno != EPERM) {
		snprintf(errstr, errstr_size, "cannot open \"%s\" in %s: %s",
			 path, conf->data_dir, strerror(errno));
		return -1;
	}
	/* No openat2: walk the components without following any symlink. */
	copy = strdup(rel);
	if (!copy)
		abort();
	cur = dup(dirfd);
	for (comp = copy; cur >= 0; comp = next) {
		next = strchr(comp, '/');
		if (!next)
			break;
		*next++ = '\0';
		while (*next == '/')
			next++;
		if (!*comp || strcmp(comp, ".") == 0)
			continue;
		nfd = openat(cur, comp,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(cur);
		cur = nfd;
	}
	fd = cur < 0 ? -1 :
		       openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		snprintf(errstr, errstr_size, "cannot open \"%s\" in %s: %s%s",
			 path, conf->data_dir, strerror(errno),
			 errno == ELOOP || errno == ENOTDIR ?
				 " (symlinks are refused)" :
				 "");
	if (cur >= 0)
		close(cur);
	free(copy);
	return fd;
}

static int open_data_dir(const struct jobd_conf *conf, char *errstr,
			 size_t errstr_size)
{
	int fd = open(conf->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		snprintf(errstr, errstr_size, "cannot open data_dir %s: %s",
			 conf->data_dir, strerror(errno));
	return fd;
}

int jobd_handlers_open_dir(const struct jobd_conf *conf, const char *path,
			   int *dirfd, char **base, char *errstr,
			   size_t errstr_size)
{
	char *rel, *slash;
	int root, fd;

	*dirfd = -1;
	*base = NULL;
	rel = relative_path(conf, path, errstr, errstr_size);
	if (!rel)
		return -1;
	slash = strrchr(rel, '/');
	if (slash && !slash[1]) {
		snprintf(errstr, errstr_size, "path \"%s\" names a directory",
			 path);
		free(rel);
		return -1;
	}
	root = open_data_dir(conf, errstr, errstr_size);
	if (root < 0) {
		free(rel);
		return -1;
	}
	if (slash) {
		*slash = '\0';
		fd = open_beneath(root, rel, O_RDONLY | O_DIRECTORY, 0, path,
				  conf, errstr, errstr_size);
		close(root);
		if (fd < 0) {
			free(rel);
			return -1;
		}
		*base = strdup(slash + 1);
	} else {
		fd = root;
		*base = strdup(rel);
	}
	free(rel);
	if (!*base)
		abort();
	if (strcmp(*base, ".") == 0) {
		snprintf(errstr, errstr_size, "path \"%s\" names a directory",
			 path);
		close(fd);
		free(*base);
		*base = NULL;
		return -1;
	}
	*dirfd = fd;
	return 0;
}

/* Whether FD is a regular file; if so it blocks again (O_NONBLOCK off). */
static bool regular_blocking(int fd)
{
	struct stat sb;
	int fl;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		return false;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0;
}

int jobd_handlers_openat_regular(int dirfd, const char *name, int flags,
				 mode_t mode)
{
	int fd = openat(dirfd, name,
			flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd >= 0 && !regular_blocking(fd)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

int jobd_handlers_open_read(const struct jobd_conf *conf, const char *path,
			    char *errstr, size_t errstr_size)
{
	char *rel;
	int root, fd;

	rel = relative_path(conf, path, errstr, errstr_size);
	if (!rel)
		return -1;
	root = open_data_dir(conf, errstr, errstr_size);
	if (root < 0) {
		free(rel);
		return -1;
	}
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open_beneath(root, rel, O_RDONLY | O_NONBLOCK, 0, path, conf,
			  errstr, errstr_size);
	close(root);
	free(rel);
	if (fd >= 0 && !regular_blocking(fd)) {
		snprintf(errstr, errstr_size, "\"%s\" is not a regular file",
			 path);
		close(fd);
		return -1;
	}
	return fd;
}
