/*
 * csv: RFC 4180 records from a byte stream, one at a time.
 *
 * A byte-at-a-time state machine over a 64 KiB read buffer: it knows the
 * offset and line of every byte, so each record carries its exact byte
 * range and starting line (import's chunks and checkpoints are byte
 * offsets). Field bytes go into one growing buffer, NUL-terminated each,
 * capped at JOBD_CSV_RECORD_MAX: past the cap the record is still read to
 * its end (quotes decide where that is) but nothing more is stored, so a
 * huge or broken record costs no memory.
 *
 * After an error the rest of the record is read by the same rules as a
 * good one (a stray quote is kept as data), so the reader resynchronises
 * at the next line break outside quotes. An unterminated quote swallows
 * the rest of the input: that is what the bytes say, and the error names
 * the line it opened on.
 *
 * Rejected: a lenient mode that accepts stray quotes (it hides broken
 * exports; a bad row is reported and the good ones still import), and
 * mmap (the reader also serves pipes and the fuzzer's memory).
 */
#include "config.h"

#include "handlers/csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kafka/codec.h"

#define READ_BUF 65536
#define C_EOF (-1)
#define C_IO (-2)

struct jobd_csv_reader {
	jobd_csv_read_fn fn; /* borrowed */
	void *arg;
	char buf[READ_BUF];
	size_t pos, len;   /* unread bytes are buf[pos..len) */
	bool eof;	   /* fn returned 0 */
	int io_errno;	   /* fn failed: errno, 0 = no */
	int64_t offset;	   /* input offset of buf[pos] */
	int64_t line;	   /* line of buf[pos], 1-based */
	int64_t end;	   /* stop offset, -1 = none */
	bool bom_checked;  /* offset 0 looked at */
	char *data;	   /* field bytes, NUL after each field */
	size_t dlen, dcap; /* bytes used / allocated */
	size_t *starts;	   /* field i starts at data + starts[i] */
	size_t *lens;	   /* field lengths */
	const char **fields;
	size_t nf, fcap; /* fields used / allocated */
	bool overflow;	 /* this record passed the size cap */
	char why[160];	 /* first problem of this record, "" = none */
};

struct jobd_csv_reader *jobd_csv_reader_new(jobd_csv_read_fn fn, void *arg,
					    int64_t offset, int64_t line,
					    int64_t end)
{
	struct jobd_csv_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->fn = fn;
	r->arg = arg;
	r->offset = offset;
	r->line = line > 0 ? line : 1;
	r->end = end;
	r->bom_checked = offset != 0;
	return r;
}

void jobd_csv_reader_free(struct jobd_csv_reader *r)
{
	if (!r)
		return;
	free(r->data);
	free(r->starts);
	free(r->lens);
	free(r->fields);
	free(r);
}

int64_t jobd_csv_reader_line(const struct jobd_csv_reader *r)
{
	return r->line;
}

int64_t jobd_csv_reader_offset(const struct jobd_csv_reader *r)
{
	return r->offset;
}

/* Makes at least WANT bytes available unless the input ends first. */
static int fill(struct jobd_csv_reader *r, size_t want)
{
	ssize_t n;

	if (r->pos > 0 && r->len - r->pos < want) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	while (r->len - r->pos < want && !r->eof) {
		n = r->fn(r->arg, r->buf + r->len, sizeof(r->buf) - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->io_errno = errno ? errno : EIO;
			return C_IO;
		}
		if (n == 0)
			r->eof = true;
		r->len += (size_t)n;
	}
	return 0;
}

static inline int peek(struct jobd_csv_reader *r)
{
	if (r->pos < r->len)
		return (unsigned char)r->buf[r->pos];
	if (fill(r, 1) < 0)
		return C_IO;
	return r->pos < r->len ? (unsigned char)r->buf[r->pos] : C_EOF;
}

/* Consumes the byte peek() returned. */
static inline void skip(struct jobd_csv_reader *r, int c)
{
	r->pos++;
	r->offset++;
	if (c == '\n')
		r->line++;
}

static void problem(struct jobd_csv_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct jobd_csv_reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->why[0])
		return; /* the first problem is the one reported */
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static int grow_data(struct jobd_csv_reader *r, size_t need)
{
	return jobd_util_grow(&r->data, &r->dcap, r->dlen + need - 1, 1, 256);
}

/* Appends byte C to the current field (dropped past the cap). */
static inline int add(struct jobd_csv_reader *r, int c)
{
	if (r->overflow)
		return 0;
	if (r->dlen >= JOBD_CSV_RECORD_MAX) {
		r->overflow = true;
		problem(r, "record over %d bytes", JOBD_CSV_RECORD_MAX);
		return 0;
	}
	if (r->dlen + 1 >= r->dcap && grow_data(r, 2) < 0)
		return -1;
	r->data[r->dlen++] = (char)c;
	return 0;
}

static int field_begin(struct jobd_csv_reader *r)
{
	if (r->nf == r->fcap) {
		size_t cap = r->fcap ? r->fcap * 2 : 16;

		if (jobd_util_resize(&r->starts, cap, sizeof(*r->starts)) < 0 ||
		    jobd_util_resize(&r->lens, cap, sizeof(*r->lens)) < 0)
			return -1;
		r->fcap = cap;
	}
	r->starts[r->nf] = r->dlen;
	return 0;
}

static int field_end(struct jobd_csv_reader *r)
{
	if (grow_data(r, 1) < 0)
		return -1;
	r->lens[r->nf] = r->dlen - r->starts[r->nf];
	r->data[r->dlen++] = '\0';
	r->nf++;
	return 0;
}

/* Skips a UTF-8 byte order mark at offset 0. */
static int skip_bom(struct jobd_csv_reader *r)
{
	r->bom_checked = true;
	if (fill(r, 3) < 0)
		return C_IO;
	if (r->len - r->pos >= 3 &&
	    memcmp(r->buf + r->pos, "\xef\xbb\xbf", 3) == 0) {
		r->pos += 3;
		r->offset += 3;
	}
	return 0;
}

/*
 * Skips empty lines. Returns 1 when a record starts here, 0 at the end
 * (of the input or of the range), C_IO.
 */
static int record_start(struct jobd_csv_reader *r)
{
	int c;

	if (!r->bom_checked && skip_bom(r) < 0)
		return C_IO;
	for (;;) {
		if (r->end >= 0 && r->offset >= r->end)
			return 0;
		c = peek(r);
		if (c == C_IO)
			return C_IO;
		if (c == C_EOF)
			return 0;
		if (c == '\n') {
			skip(r, c);
			continue;
		}
		if (c == '\r') {
			if (fill(r, 2) < 0)
				return C_IO;
			if (r->len - r->pos >= 2 &&
			    r->buf[r->pos + 1] == '\n') {
				skip(r, '\r');
				skip(r, '\n');
				continue;
			}
		}
		return 1;
	}
}

static void record_reset(struct jobd_csv_reader *r, struct jobd_csv_record *rec)
{
	r->dlen = 0;
	r->nf = 0;
	r->overflow = false;
	r->why[0] = '\0';
	memset(rec, 0, sizeof(*rec));
	rec->offset = r->offset;
	rec->line = r->line;
}

/* Fills REC from the fields read; checks UTF-8; the result code. */
static int record_finish(struct jobd_csv_reader *r, struct jobd_csv_record *rec,
			 char *errstr, size_t errstr_size)
{
	const char **f;

	f = realloc(r->fields, (r->nf ? r->nf : 1) * sizeof(*f));
	if (!f) {
		problem(r, "out of memory");
		r->nf = 0;
	} else {
		r->fields = f;
	}
	for (size_t i = 0; i < r->nf; i++) {
		const char *s = r->data + r->starts[i];

		r->fields[i] = s;
		if (r->why[0])
			continue;
		if (memchr(s, '\0', r->lens[i]))
			problem(r, "NUL byte in field %zu", i + 1);
		else if (!jobd_codec_valid_utf8(s, r->lens[i]))
			problem(r, "invalid UTF-8 in field %zu", i + 1);
	}
	rec->n = r->nf;
	rec->fields = r->fields;
	rec->lens = r->lens;
	rec->end = r->offset;
	if (r->why[0]) {
		snprintf(errstr, errstr_size, "%s", r->why);
		return JOBD_CSV_BAD;
	}
	return JOBD_CSV_RECORD;
}

static int io_fail(struct jobd_csv_reader *r, char *errstr, size_t errstr_size)
{
	snprintf(errstr, errstr_size, "cannot read: %s", strerror(r->io_errno));
	return JOBD_CSV_IO;
}

int jobd_csv_next(struct jobd_csv_reader *r, struct jobd_csv_record *rec,
		  char *errstr, size_t errstr_size)
{
	int c, rc;
	int64_t open_line;

	rc = record_start(r);
	if (rc == C_IO)
		return io_fail(r, errstr, errstr_size);
	if (rc == 0)
		return JOBD_CSV_EOF;
	record_reset(r, rec);
	for (;;) {
		/* A field starts. */
		if (r->nf >= JOBD_CSV_FIELDS_MAX) {
			problem(r, "more than %d fields", JOBD_CSV_FIELDS_MAX);
			r->overflow = true;
		}
		if (field_begin(r) < 0)
			goto oom;
		c = peek(r);
		if (c == C_IO)
			return io_fail(r, errstr, errstr_size);
		if (c == '"') {
			skip(r, c);
			open_line = r->line;
			for (;;) {
				c = peek(r);
				if (c == C_IO)
					return io_fail(r, errstr, errstr_size);
				if (c == C_EOF) {
					problem(r,
						"unterminated quoted field %zu "
						"(opened on line %lld)",
						r->nf + 1,
						(long long)open_line);
					goto record_end;
				}
				skip(r, c);
				if (c == '"') {
					if (peek(r) != '"')
						break;
					skip(r, '"');
				}
				if (add(r, c) < 0)
					goto oom;
			}
			/* After the closing quote. */
			c = peek(r);
			if (c != ',' && c != '\n' && c != '\r' && c != C_EOF &&
			    c != C_IO)
				problem(r,
					"text after the closing quote of "
					"field %zu",
					r->nf + 1);
		}
		/* Unquoted text, or what follows a closing quote. */
		for (;;) {
			c = peek(r);
			if (c == C_IO)
				return io_fail(r, errstr, errstr_size);
			if (c == C_EOF)
				goto record_end;
			if (c == ',') {
				skip(r, c);
				if (field_end(r) < 0)
					goto oom;
				break; /* next field */
			}
			if (c == '\n') {
				skip(r, c);
				goto record_end;
			}
			if (c == '\r') {
				if (fill(r, 2) < 0)
					return io_fail(r, errstr, errstr_size);
				if (r->len - r->pos >= 2 &&
				    r->buf[r->pos + 1] == '\n') {
					skip(r, '\r');
					skip(r, '\n');
					goto record_end;
				}
			}
			if (c == '"')
				problem(r, "quote inside unquoted field %zu",
					r->nf + 1);
			skip(r, c);
			if (add(r, c) < 0)
				goto oom;
		}
	}
record_end:
	if (field_end(r) < 0)
		goto oom;
	return record_finish(r, rec, errstr, errstr_size);
oom:
	snprintf(errstr, errstr_size, "out of memory");
	errno = ENOMEM;
	r->io_errno = ENOMEM;
	return JOBD_CSV_IO;
}

int jobd_csv_next_line(struct jobd_csv_reader *r, struct jobd_csv_record *rec,
		       char *errstr, size_t errstr_size)
{
	int c, rc;

	for (;;) {
		rc = record_start(r);
		if (rc == C_IO)
			return io_fail(r, errstr, errstr_size);
		if (rc == 0)
			return JOBD_CSV_EOF;
		record_reset(r, rec);
		if (field_begin(r) < 0)
			goto oom;
		for (;;) {
			c = peek(r);
			if (c == C_IO)
				return io_fail(r, errstr, errstr_size);
			if (c == C_EOF)
				break;
			skip(r, c);
			if (c == '\n')
				break;
			if (add(r, c) < 0)
				goto oom;
		}
		if (!r->overflow && r->dlen > 0 && r->data[r->dlen - 1] == '\r')
			r->dlen--;
		if (field_end(r) < 0)
			goto oom;
		/* A line of only blanks is skipped like an empty one. */
		if (!r->why[0] && strspn(r->data, " \t\r") == r->lens[0])
			continue;
		return record_finish(r, rec, errstr, errstr_size);
	}
oom:
	snprintf(errstr, errstr_size, "out of memory");
	r->io_errno = ENOMEM;
	return JOBD_CSV_IO;
}

/* --- writing ------------------------------------------------------------ */

void jobd_csv_buf_release(struct jobd_csv_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int jobd_csv_buf_add(struct jobd_csv_buf *b, const char *s, size_t len)
{
	if (jobd_util_grow(&b->data, &b->cap, b->len + len, 1, 256) < 0)
		return -1;
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

static bool needs_quotes(const char *s, size_t len)
{
	/* A byte order mark opening the file would be skipped on reading. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		return true;
	for (size_t i = 0; i < len; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
			return true;
	return false;
}

int jobd_csv_write_record(struct jobd_csv_buf *b, const char *const *fields,
			  const size_t *lens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = fields[i] ? fields[i] : "";
		size_t len = fields[i] ? lens[i] : 0;

		if (i > 0 && jobd_csv_buf_add(b, ",", 1) < 0)
			return -1;
		/* A lone empty field would read back as an empty line. */
		if (!needs_quotes(s, len) && !(n == 1 && len == 0)) {
			if (jobd_csv_buf_add(b, s, len) < 0)
				return -1;
			continue;
		}
		if (jobd_csv_buf_add(b, "\"", 1) < 0)
			return -1;
		for (size_t j = 0; j < len; j++) {
			if (s[j] == '"' && jobd_csv_buf_add(b, "\"", 1) < 0)
				return -1;
			if (jobd_csv_buf_add(b, s + j, 1) < 0)
				return -1;
		}
		if (jobd_csv_buf_add(b, "\"", 1) < 0)
			return -1;
	}
	return jobd_csv_buf_add(b, "\r\n", 2);
}
