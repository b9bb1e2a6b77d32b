/*
 * fuzz_ndjson: an NDJSON import's reading on arbitrary bytes, the way
 * src/handlers/import.c drives the line reader (src/handlers/csv.h).
 *
 * The split pass reads the whole file line by line and, every CHUNK
 * rows, notes the reader's offset and line: the byte range and first
 * line of a child job. Each chunk then reads its range again with a new
 * reader started at that offset and line and stopped at the next
 * chunk's offset, as a chunk job (or a resumed one) does. The first byte
 * picks CHUNK (1-8) and the read size (1-16 bytes, or whole reads).
 *
 * Checked: the chunks together return exactly the split's rows, good and
 * bad, with the same lines, byte ranges and texts (no row lost, none read
 * twice, whatever the boundaries); a good row's text is the input's bytes
 * at its offset, followed only by its line break; it holds no NUL and is
 * valid UTF-8 (jansson, which the import hands it to, takes it whole);
 * every row becomes a record as the import makes it (src/handlers/ndjson.c): a
 * valid id and its fields, or a refusal that says why.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "handlers/csv.h"
#include "handlers/ndjson.h"
#include "tests/unit/memread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROWS 4096 /* rows remembered; inputs are smaller */

/* One row as the split saw it. */
struct row {
	int rc; /* JOBD_CSV_RECORD or JOBD_CSV_BAD */
	int64_t line, offset, end;
	char *text; /* owned; NULL for a bad row */
	size_t len;
};

/* A chunk: where its reader starts and stops. */
struct chunk {
	int64_t offset, line, end; /* end -1: to the end of the file */
	size_t first, rows;	   /* its rows in the split's list */
};

static bool is_break(const uint8_t *s, size_t n)
{
	return n == 0 || (n == 1 && (s[0] == '\n' || s[0] == '\r')) ||
	       (n == 2 && s[0] == '\r' && s[1] == '\n');
}

static void check_row(const uint8_t *in, size_t size,
		      const struct jobd_csv_record *rec)
{
	size_t skip = 0, len = rec->lens[0], bytes = 0;
	struct jobd_record r;
	json_error_t e;
	char why[512];
	json_t *j;

	if (rec->n != 1 || strlen(rec->fields[0]) != len)
		abort();
	/* A byte order mark at offset 0 is not part of the first row. */
	if (rec->offset == 0 && size >= 3 && !memcmp(in, "\xef\xbb\xbf", 3))
		skip = 3;
	if ((size_t)rec->offset + skip + len > (size_t)rec->end ||
	    memcmp(in + rec->offset + skip, rec->fields[0], len) != 0 ||
	    !is_break(in + rec->offset + skip + len,
		      (size_t)rec->end - (size_t)rec->offset - skip - len))
		abort();
	/* jansson refuses bad UTF-8: the reader must have refused it first. */
	j = json_loadb(rec->fields[0], len, JSON_DECODE_ANY, &e);
	if (!j && json_error_code(&e) == json_error_invalid_utf8)
		abort();
	json_decref(j);
	/* What the import does with the row: the record it becomes. */
	why[0] = '\0';
	if (jobd_ndjson_record(rec->fields[0], len, "id", &r, &bytes, why,
			       sizeof(why))) {
		/* the id member is one of the fields */
		if (!jobd_records_valid_id(r.id) || r.n == 0)
			abort();
		jobd_ndjson_record_clear(&r);
	} else if (!why[0]) {
		abort(); /* a refusal always says why */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct row rows[MAX_ROWS];
	static struct chunk chunks[MAX_ROWS + 1];
	struct jobd_csv_record rec;
	struct jobd_csv_reader *r;
	struct mem m;
	size_t n = 0, nchunks = 0, per, step;
	char err[256];
	int rc;

	if (size == 0 || size > MAX_ROWS)
		return 0;
	per = 1 + data[0] % 8;
	step = (size_t)(data[0] >> 3) % 17; /* 0 = whole reads */
	data++;
	size--;

	/* The split. */
	m = (struct mem){ .buf = data, .len = size, .step = step };
	if (!(r = jobd_csv_reader_new(mem_read, &m, 0, 1, -1)))
		abort();
	chunks[0] = (struct chunk){ .offset = 0, .line = 1, .end = -1 };
	while ((rc = jobd_csv_next_line(r, &rec, err, sizeof(err))) ==
		       JOBD_CSV_RECORD ||
	       rc == JOBD_CSV_BAD) {
		if (n == MAX_ROWS)
			abort(); /* more rows than bytes: a loop */
		rows[n] = (struct row){ .rc = rc,
					.line = rec.line,
					.offset = rec.offset,
					.end = rec.end };
		if (rc == JOBD_CSV_RECORD) {
			check_row(data, size, &rec);
			rows[n].len = rec.lens[0];
			if (!(rows[n].text = malloc(rec.lens[0] + 1)))
				abort();
			memcpy(rows[n].text, rec.fields[0], rec.lens[0] + 1);
		} else if (!err[0]) {
			abort(); /* a bad row says why */
		}
		n++;
		chunks[nchunks].rows++;
		if (chunks[nchunks].rows == per) {
			/* The split's checkpoint: the next chunk starts here. */
			chunks[nchunks].end = jobd_csv_reader_offset(r);
			chunks[++nchunks] = (struct chunk){
				.offset = jobd_csv_reader_offset(r),
				.line = jobd_csv_reader_line(r),
				.end = -1,
				.first = n,
			};
		}
	}
	if (rc != JOBD_CSV_EOF)
		abort(); /* memory reads do not fail */
	jobd_csv_reader_free(r);
	nchunks++;

	/* Each chunk reads its range again from a fresh reader. */
	for (size_t c = 0; c < nchunks; c++) {
		const struct chunk *ch = &chunks[c];
		size_t got = 0;

		m = (struct mem){ .buf = data,
				  .len = size,
				  .pos = (size_t)ch->offset,
				  .step = step };
		r = jobd_csv_reader_new(mem_read, &m, ch->offset, ch->line,
					ch->end);
		if (!r)
			abort();
		while ((rc = jobd_csv_next_line(r, &rec, err, sizeof(err))) ==
			       JOBD_CSV_RECORD ||
		       rc == JOBD_CSV_BAD) {
			const struct row *w = &rows[ch->first + got];

			if (got == ch->rows || w->rc != rc ||
			    w->line != rec.line || w->offset != rec.offset ||
			    w->end != rec.end)
				abort();
			if (rc == JOBD_CSV_RECORD &&
			    (rec.lens[0] != w->len ||
			     memcmp(rec.fields[0], w->text, w->len) != 0))
				abort();
			got++;
		}
		if (rc != JOBD_CSV_EOF || got != ch->rows)
			abort();
		jobd_csv_reader_free(r);
	}
	for (size_t i = 0; i < n; i++)
		free(rows[i].text);
	return 0;
}
