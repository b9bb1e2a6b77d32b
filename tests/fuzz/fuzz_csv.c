/*
 * fuzz_csv: the CSV and NDJSON line reader (src/handlers/csv.h) on arbitrary bytes.
 *
 * The first byte picks the read size (1-16 bytes, or whole), so records
 * split across reads at every position get exercised; the rest is the
 * input. Each input is read twice, as CSV and as lines. Checked: the
 * reader ends (no result loops forever), every record's range is inside
 * the input and after the previous one, lines only grow, fields hold
 * their stated length, and a good CSV record written back with the writer
 * reads back to the same fields.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "handlers/csv.h"
#include "tests/unit/memread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct jobd_csv_record *rec)
{
	struct jobd_csv_buf b = { 0 };
	struct jobd_csv_record back;
	struct jobd_csv_reader *r;
	struct mem m;
	char err[256];

	if (jobd_csv_write_record(&b, rec->fields, rec->lens, rec->n) < 0)
		abort();
	m = (struct mem){ .buf = (const uint8_t *)b.data, .len = b.len };
	r = jobd_csv_reader_new(mem_read, &m, 0, 1, -1);
	if (!r)
		abort();
	if (jobd_csv_next(r, &back, err, sizeof(err)) != JOBD_CSV_RECORD ||
	    back.n != rec->n)
		abort();
	for (size_t i = 0; i < rec->n; i++)
		if (back.lens[i] != rec->lens[i] ||
		    memcmp(back.fields[i], rec->fields[i], rec->lens[i]) != 0)
			abort();
	if (jobd_csv_next(r, &back, err, sizeof(err)) != JOBD_CSV_EOF)
		abort();
	jobd_csv_reader_free(r);
	jobd_csv_buf_release(&b);
}

static void read_all(const uint8_t *data, size_t size, size_t step, bool lines)
{
	struct mem m = { .buf = data, .len = size, .step = step };
	struct jobd_csv_reader *r = jobd_csv_reader_new(mem_read, &m, 0, 1, -1);
	struct jobd_csv_record rec;
	int64_t last_end = 0, last_line = 0;
	char err[256];
	int rc;

	if (!r)
		abort();
	for (size_t guard = 0; guard <= size + 1; guard++) {
		rc = lines ? jobd_csv_next_line(r, &rec, err, sizeof(err)) :
			     jobd_csv_next(r, &rec, err, sizeof(err));
		if (rc == JOBD_CSV_EOF || rc == JOBD_CSV_IO)
			break;
		if (rec.offset < last_end || rec.end <= rec.offset ||
		    rec.end > (int64_t)size || rec.line < last_line)
			abort();
		last_end = rec.end;
		last_line = rec.line;
		for (size_t i = 0; i < rec.n; i++)
			if (strlen(rec.fields[i]) > rec.lens[i])
				abort();
		if (rc == JOBD_CSV_RECORD && !lines)
			roundtrip(&rec);
		if (guard == size + 1)
			abort(); /* more records than bytes: a loop */
	}
	jobd_csv_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t step;

	if (size == 0)
		return 0;
	step = data[0] % 17; /* 0 = whole reads */
	read_all(data + 1, size - 1, step, false);
	read_all(data + 1, size - 1, step, true);
	return 0;
}
