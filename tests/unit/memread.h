/*
 * memread: the read callback the streaming parsers' tests and fuzz targets
 * feed an input through, in steps of at most STEP bytes (0 = as asked), so
 * that a record split across reads is exercised too; FAIL makes the next
 * read fail with EIO.
 */
#ifndef JOBD_TESTS_MEMREAD_H
#define JOBD_TESTS_MEMREAD_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct mem {
	const void *buf;
	size_t len, pos, step;
	bool fail;
};

static inline ssize_t mem_read(void *arg, char *buf, size_t n)
{
	struct mem *m = arg;

	if (m->fail) {
		errno = EIO;
		return -1;
	}
	if (m->step && n > m->step)
		n = m->step;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	memcpy(buf, (const char *)m->buf + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

#endif
