/*
 * memread: the read callback the streaming parsers' fuzz targets feed an
 * input through, in steps of at most STEP bytes (0 = as asked), so that a
 * record split across reads is exercised too.
 */
#ifndef JOBD_TESTS_FUZZ_MEMREAD_H
#define JOBD_TESTS_FUZZ_MEMREAD_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct mem {
	const uint8_t *buf;
	size_t len, pos, step;
};

static inline ssize_t mem_read(void *arg, char *buf, size_t n)
{
	struct mem *m = arg;

	if (m->step && n > m->step)
		n = m->step;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	memcpy(buf, m->buf + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

#endif
