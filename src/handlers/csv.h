/*
 * csv: a streaming RFC 4180 reader and writer, and a line reader for
 * NDJSON, over any byte source.
 *
 * The reader returns one record at a time with the line it starts on and
 * the byte range it covers, so import can split a file into chunks at
 * record boundaries and resume at a byte offset. It never holds more than
 * one record (at most JOBD_CSV_RECORD_MAX bytes of field data) plus its
 * read buffer, whatever the file's size.
 *
 * Accepted: fields separated by ',', records ended by CRLF or LF (the last
 * one may lack it), quoted fields with "" for a quote and with embedded
 * commas and line breaks, a UTF-8 byte order mark at offset 0 (skipped).
 * Empty lines between records are skipped. Refused, one record at a time
 * (the reader resynchronises at the end of the bad record and goes on): a
 * quote inside an unquoted field, text after a closing quote, a quoted
 * field still open at the end of the input, a record over
 * JOBD_CSV_RECORD_MAX bytes, invalid UTF-8 or a NUL byte in a field.
 *
 * Pure apart from the read callback: no globals, one reader per thread.
 */
#ifndef JOBD_SRC_HANDLERS_CSV_H
#define JOBD_SRC_HANDLERS_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JOBD_CSV_RECORD_MAX (1 << 20) /* bytes of one record or line */
#define JOBD_CSV_FIELDS_MAX 4096      /* fields of one record */

/*
 * Reads up to N bytes into BUF: returns the count, 0 at the end of the
 * input, or -1 with errno set.
 */
typedef ssize_t (*jobd_csv_read_fn)(void *arg, char *buf, size_t n);

struct jobd_csv_reader;

/* One record; everything borrowed from the reader until the next call. */
struct jobd_csv_record {
	size_t n;	     /* fields */
	const char **fields; /* NUL-terminated field texts */
	const size_t *lens;  /* their lengths in bytes */
	int64_t line;	     /* line the record starts on, 1-based */
	int64_t offset;	     /* byte offset of its first byte */
	int64_t end;	     /* byte offset just past its line break */
};

/*
 * A reader calling FN(ARG, ...) (borrowed until _free); the first byte FN
 * returns is at byte OFFSET of the input and on line LINE (1 for the
 * start of a file). END (-1 = none) is the offset where the reader stops:
 * records starting at or after it are not returned. Returns NULL when out
 * of memory.
 */
struct jobd_csv_reader *jobd_csv_reader_new(jobd_csv_read_fn fn, void *arg,
					    int64_t offset, int64_t line,
					    int64_t end);
void jobd_csv_reader_free(struct jobd_csv_reader *r);

/* The line and byte offset the reader is at (past the last record). */
int64_t jobd_csv_reader_line(const struct jobd_csv_reader *r);
int64_t jobd_csv_reader_offset(const struct jobd_csv_reader *r);

/* Results of jobd_csv_next() and jobd_csv_next_line(). */
#define JOBD_CSV_RECORD 1 /* a record in *REC */
#define JOBD_CSV_EOF 0	  /* no more records */
#define JOBD_CSV_BAD \
	(-1)		 /* a bad record: REC's line and range set, the
			   * reason in errstr; call again for the next */
#define JOBD_CSV_IO (-2) /* the read callback failed: errno, errstr */

/* The next CSV record of R. */
int jobd_csv_next(struct jobd_csv_reader *r, struct jobd_csv_record *rec,
		  char *errstr, size_t errstr_size);

/*
 * The next non-empty line of R (for NDJSON) as a record of one field,
 * without its line break; checked for UTF-8 and NUL bytes like a field.
 */
int jobd_csv_next_line(struct jobd_csv_reader *r, struct jobd_csv_record *rec,
		       char *errstr, size_t errstr_size);

/* --- writing ------------------------------------------------------------ */

/* A growing output buffer; zero-initialise, release with _release. */
struct jobd_csv_buf {
	char *data; /* owned */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

void jobd_csv_buf_release(struct jobd_csv_buf *b);

/* Appends LEN bytes of S. Returns 0 or -1 when out of memory. */
int jobd_csv_buf_add(struct jobd_csv_buf *b, const char *s, size_t len);

/*
 * Appends one CSV record of N fields (texts and lengths borrowed), each
 * quoted when it holds a comma, a quote, CR or LF (quotes doubled), ended
 * by CRLF as RFC 4180 says. Returns 0 or -1 when out of memory.
 */
int jobd_csv_write_record(struct jobd_csv_buf *b, const char *const *fields,
			  const size_t *lens, size_t n);

#endif
