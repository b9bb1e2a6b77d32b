/*
 * import: a CSV or NDJSON file of data_dir into its sinks: a record
 * collection, a Kafka topic, a [sink.NAME] command, or several of them
 * (docs/job-types.md; sink.h).
 *
 * Two roles under one type. The root job ("split") reads the file once,
 * record by record (quotes decide where a CSV record ends, so a byte count
 * cannot), and every chunk_size rows spawns a child job ("chunk") naming
 * the byte range and first line of those rows; the children import in
 * parallel under the fair scheduler. The chunks are made in batches
 * (handlers/common.h, the spawner: the first alone, then twice as many
 * each time up to a store batch), and the split checkpoints the next
 * byte offset, line and chunk number after each batch; child keys carry a
 * token fixed at the first split attempt, so a resumed split makes no
 * chunk twice while a restarted job (checkpoint reset) makes fresh ones.
 *
 * A chunk writes its rows JOBD_HANDLERS_BATCH at a time to every sink
 * (a collection: one MULTI per batch, each record replaced whole, so
 * writing a row again is harmless) and after each batch checkpoints the
 * byte offset and line of the next row. A stop is honoured only at those
 * points, so a stopped and resumed chunk imports no row twice and skips
 * none; a crash between a batch and its checkpoint rewrites that batch
 * with the same values (a topic then holds it twice: at-least-once).
 *
 * Bad rows (malformed CSV, ragged rows, invalid UTF-8, JSON that is not an
 * object, a missing or empty id) are job errors naming the line; the good
 * rows of the chunk are still imported. Memory is one batch of rows plus
 * the reader's buffer, whatever the file's size.
 *
 * "pace_ms" in the payload makes each chunk sleep that long between
 * batches (limits the write load; lets tests stop a chunk mid-way).
 *
 * Progress: the split's own progress is the share of the file scanned;
 * each chunk's is its rows done over its rows, so the root's overall
 * progress is rows done over rows total (chunks are equal in rows).
 */
#include "config.h"

#include "handlers/builtin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handlers/common.h"
#include "handlers/csv.h"
#include "handlers/datadir.h"
#include "handlers/ndjson.h"
#include "handlers/sink.h"

#define BATCH_BYTES (8 << 20) /* flush a batch past this much row data */

struct spec {
	const char *file;	  /* borrowed from the payload */
	struct jobd_sinks *sinks; /* owned: jobd_sinks_free */
	const char *key;	  /* the id column or field */
	bool ndjson;
	int64_t chunk_size;
};

static ssize_t fd_read(void *arg, char *buf, size_t n)
{
	return read(*(int *)arg, buf, n);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Reads SPEC from payload P; false when the job failed (reason set). */
static bool spec_read(struct jobd_ctx *ctx, const json_t *p, struct spec *sp)
{
	const struct jobd_type_conf *tc = jobd_ctx_type_conf(ctx);
	const char *format;
	char why[512];

	sp->file = jobd_handlers_str(p, "file", NULL);
	sp->key = jobd_handlers_str(p, "key", "id");
	sp->chunk_size =
		jobd_handlers_int(p, "chunk_size", tc ? tc->chunk_size : 1000);
	if (sp->chunk_size <= 0)
		sp->chunk_size = 1000;
	format = jobd_handlers_str(p, "format", NULL);
	if (!sp->file) {
		jobd_ctx_fail(ctx, "import: the payload has no \"file\"");
		return false;
	}
	sp->sinks = jobd_sinks_new(jobd_ctx_conf(ctx), p, why, sizeof(why));
	if (!sp->sinks) {
		jobd_ctx_fail(ctx, "import: %s", why);
		return false;
	}
	if (format && strcmp(format, "csv") != 0 &&
	    strcmp(format, "ndjson") != 0) {
		jobd_ctx_fail(ctx,
			      "import: unknown \"format\" \"%s\": use csv or "
			      "ndjson",
			      format);
		return false;
	}
	sp->ndjson = format ? strcmp(format, "ndjson") == 0 :
			      ends_with(sp->file, ".ndjson") ||
				      ends_with(sp->file, ".jsonl");
	return true;
}

static int next_row(struct jobd_csv_reader *r, bool ndjson,
		    struct jobd_csv_record *rec, char *why, size_t why_size)
{
	return ndjson ? jobd_csv_next_line(r, rec, why, why_size) :
			jobd_csv_next(r, rec, why, why_size);
}

/* --- split: the root job ---------------------------------------------------- */

/* Checks the CSV header; returns it as a JSON array or NULL (WHY set). */
static json_t *header_of(const struct jobd_csv_record *rec, const char *key,
			 char *why, size_t why_size)
{
	json_t *h = json_array();
	bool has_key = false;

	for (size_t i = 0; i < rec->n; i++) {
		if (rec->lens[i] == 0) {
			snprintf(why, why_size, "column %zu has no name",
				 i + 1);
			goto err;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(rec->fields[i], rec->fields[j]) == 0) {
				snprintf(why, why_size,
					 "column \"%s\" appears twice",
					 rec->fields[i]);
				goto err;
			}
		if (strcmp(rec->fields[i], key) == 0)
			has_key = true;
		json_array_append_new(h, json_string(rec->fields[i]));
	}
	if (!has_key) {
		snprintf(why, why_size, "no \"%s\" column for the record ids",
			 key);
		goto err;
	}
	return h;
err:
	json_decref(h);
	return NULL;
}

/* Where the split is: after the chunks made, the next one's start. */
struct split_at {
	int64_t token, offset, line, rows, size;
	json_t *header; /* borrowed; NULL for NDJSON */
};

/* Creates the chunks KIDS holds, if any, then checkpoints the split at
 * AT and reports its progress; returns as split(). */
static int split_flush(struct jobd_ctx *ctx, struct jobd_handlers_spawner *kids,
		       const struct split_at *at)
{
	json_t *nck = json_pack("{s:I, s:I, s:I, s:I, s:I}", "token",
				(json_int_t)at->token, "offset",
				(json_int_t)at->offset, "line",
				(json_int_t)at->line, "chunk",
				(json_int_t)jobd_handlers_spawner_next(kids),
				"rows", (json_int_t)at->rows);
	int rc;

	if (at->header)
		json_object_set(nck, "header", at->header);
	rc = jobd_handlers_spawner_flush(ctx, kids, nck);
	json_decref(nck);
	if (rc == JOBD_HANDLER_DONE)
		jobd_ctx_progress_of(ctx, at->offset, at->size);
	return rc;
}

static int split(struct jobd_ctx *ctx, const json_t *p, const struct spec *sp)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	struct jobd_csv_reader *r = NULL;
	struct jobd_csv_record rec;
	struct jobd_handlers_spawner *kids = NULL;
	struct split_at at = { 0 };
	json_t *ck = jobd_handlers_checkpoint(ctx), *header = NULL, *child;
	int64_t chunk;
	struct stat sb;
	char why[512], key[64];
	int fd, rc, ret = JOBD_HANDLER_DONE;

	fd = jobd_handlers_open_read(conf, sp->file, why, sizeof(why));
	if (fd < 0) {
		json_decref(ck);
		return jobd_ctx_fail(ctx, "import: %s", why);
	}
	at.size = fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : 0;
	if (ck) {
		at.token = jobd_handlers_int(ck, "token", 0);
		at.offset = jobd_handlers_int(ck, "offset", 0);
		at.line = jobd_handlers_int(ck, "line", 1);
		chunk = jobd_handlers_int(ck, "chunk", 0);
		at.rows = jobd_handlers_int(ck, "rows", 0);
		header = json_incref(json_object_get(ck, "header"));
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "import: resuming the split at line %" PRId64
			     " (chunk %" PRId64 ")",
			     at.line, chunk);
	} else {
		at.token = jobd_ctx_attempt(ctx);
		at.offset = 0;
		at.line = 1;
		chunk = 0;
	}
	if (!ck && !sp->ndjson) {
		r = jobd_csv_reader_new(fd_read, &fd, 0, 1, -1);
		if (!r)
			abort();
		rc = jobd_csv_next(r, &rec, why, sizeof(why));
		if (rc == JOBD_CSV_EOF)
			snprintf(why, sizeof(why), "the file is empty");
		if (rc == JOBD_CSV_RECORD)
			header = header_of(&rec, sp->key, why, sizeof(why));
		if (!header) {
			ret = jobd_ctx_fail(ctx,
					    "import: bad header in \"%s\" on "
					    "line 1: %s",
					    sp->file, why);
			goto out;
		}
		at.offset = jobd_csv_reader_offset(r);
		at.line = jobd_csv_reader_line(r);
		jobd_csv_reader_free(r);
		r = NULL;
	}
	at.header = header;
	if (lseek(fd, (off_t)at.offset, SEEK_SET) < 0) {
		ret = jobd_ctx_fail(ctx, "import: cannot seek in \"%s\": %s",
				    sp->file, strerror(errno));
		goto out;
	}
	r = jobd_csv_reader_new(fd_read, &fd, at.offset, at.line, -1);
	if (!r)
		abort();
	kids = jobd_handlers_spawner_new(chunk, "import: cannot create chunk");
	for (;;) {
		int64_t start = -1, end = at.offset, first = at.line, n = 0;

		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
		while (n < sp->chunk_size) {
			rc = next_row(r, sp->ndjson, &rec, why, sizeof(why));
			if (rc == JOBD_CSV_EOF)
				break;
			if (rc == JOBD_CSV_IO) {
				ret = jobd_ctx_fail(ctx, "import: \"%s\": %s",
						    sp->file, why);
				goto out;
			}
			if (n == 0) {
				start = rec.offset;
				first = rec.line;
			}
			end = rec.end;
			n++;
		}
		if (n == 0)
			break;
		chunk = jobd_handlers_spawner_next(kids);
		child = json_pack(
			"{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}",
			"chunk", (json_int_t)chunk, "file", sp->file, "format",
			sp->ndjson ? "ndjson" : "csv", "key", sp->key, "offset",
			(json_int_t)start, "end", (json_int_t)end, "line",
			(json_int_t)first, "rows", (json_int_t)n, "pace_ms",
			(json_int_t)jobd_handlers_int(p, "pace_ms", 0));
		/* the sinks exactly as given: the chunk parses them again */
		if (json_object_get(p, "collection"))
			json_object_set(child, "collection",
					json_object_get(p, "collection"));
		if (json_object_get(p, "sink"))
			json_object_set(child, "sink",
					json_object_get(p, "sink"));
		if (header)
			json_object_set(child, "header", header);
		snprintf(key, sizeof(key), "c%" PRId64 "-%" PRId64, at.token,
			 chunk);
		at.rows += n;
		at.offset = end;
		at.line = jobd_csv_reader_line(r);
		if (jobd_handlers_spawner_add(kids, jobd_ctx_type(ctx), key,
					      child) &&
		    (ret = split_flush(ctx, kids, &at)) != JOBD_HANDLER_DONE) {
			json_decref(child);
			goto out;
		}
		json_decref(child);
	}
	if ((ret = split_flush(ctx, kids, &at)) != JOBD_HANDLER_DONE)
		goto out;
	jobd_ctx_progress(ctx, 100);
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "import: \"%s\" has %" PRId64 " rows: %" PRId64
		     " chunks of up to %" PRId64 " into %s",
		     sp->file, at.rows, jobd_handlers_spawner_next(kids),
		     sp->chunk_size, jobd_sinks_describe(sp->sinks));
out:
	/* The chunks held when a stop came or the file failed: made, as
	 * they were one by one, and the split checkpointed after them. */
	if (kids && !jobd_ctx_abandoned(ctx) &&
	    (rc = split_flush(ctx, kids, &at)) != JOBD_HANDLER_DONE &&
	    ret != JOBD_HANDLER_FAILED)
		ret = rc;
	jobd_handlers_spawner_free(kids);
	jobd_csv_reader_free(r);
	json_decref(header);
	json_decref(ck);
	close(fd);
	return ret;
}

/* --- chunk: a child job -------------------------------------------------------- */

struct batch {
	struct jobd_record recs[JOBD_HANDLERS_BATCH]; /* owned strings */
	size_t n;
	size_t bytes; /* row data held */
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		for (size_t j = 0; j < b->recs[i].n; j++) {
			free(b->recs[i].fields[j].name);
			free(b->recs[i].fields[j].value);
		}
		free(b->recs[i].fields);
		free(b->recs[i].id);
	}
	memset(b->recs, 0, b->n * sizeof(b->recs[0]));
	b->n = 0;
	b->bytes = 0;
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (!d)
		abort();
	return d;
}

/* Adds a CSV row; false with WHY when the row is bad. */
static bool add_csv(struct batch *b, const struct jobd_csv_record *rec,
		    const json_t *header, size_t keycol, char *why,
		    size_t why_size)
{
	struct jobd_record *out;
	size_t cols = json_array_size(header);

	if (rec->n != cols) {
		snprintf(why, why_size, "%zu fields, the header has %zu",
			 rec->n, cols);
		return false;
	}
	if (!jobd_records_valid_id(rec->fields[keycol])) {
		snprintf(why, why_size, "%s id in column \"%s\"",
			 rec->lens[keycol] ? "too long an" : "empty",
			 json_string_value(json_array_get(header, keycol)));
		return false;
	}
	out = &b->recs[b->n++];
	out->id = xstrndup(rec->fields[keycol], rec->lens[keycol]);
	out->n = cols;
	out->fields = calloc(cols, sizeof(*out->fields));
	if (!out->fields)
		abort();
	for (size_t i = 0; i < cols; i++) {
		const char *name = json_string_value(json_array_get(header, i));

		out->fields[i].name = xstrndup(name, strlen(name));
		out->fields[i].value = xstrndup(rec->fields[i], rec->lens[i]);
		b->bytes += rec->lens[i] + strlen(name);
	}
	return true;
}

/* Adds an NDJSON line; false with WHY when the line is bad. */
static bool add_ndjson(struct batch *b, const struct jobd_csv_record *rec,
		       const char *key, char *why, size_t why_size)
{
	if (!jobd_ndjson_record(rec->fields[0], rec->lens[0], key,
				&b->recs[b->n], &b->bytes, why, why_size))
		return false;
	b->n++;
	return true;
}

/* Writes the batch to every sink; 0 or a handler result. */
static int flush(struct jobd_ctx *ctx, struct jobd_store *st,
		 const struct spec *sp, const struct batch *b, int64_t offset,
		 int64_t first, int64_t last)
{
	char key_base[64], lines[64];

	snprintf(key_base, sizeof(key_base), "%" PRId64, offset);
	if (first == last)
		snprintf(lines, sizeof(lines), "line %" PRId64, first);
	else
		snprintf(lines, sizeof(lines), "lines %" PRId64 "-%" PRId64,
			 first, last);
	return jobd_sinks_write(sp->sinks, ctx, st, b->recs, b->n, key_base,
				lines);
}

static int chunk(struct jobd_ctx *ctx, const json_t *p, const struct spec *sp)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	struct jobd_store *st;
	struct jobd_csv_reader *r = NULL;
	struct jobd_csv_record rec;
	struct batch *b;
	json_t *ck, *header = json_object_get(p, "header"), *nck;
	int64_t offset, line, end, rows, done, imported, bad, flushed_at;
	int64_t first = 0, last = 0; /* lines of the batch's rows */
	int64_t pace = jobd_handlers_int(p, "pace_ms", 0);
	size_t keycol = 0;
	char why[512];
	int fd, rc, fr, ret = JOBD_HANDLER_DONE;

	end = jobd_handlers_int(p, "end", -1);
	rows = jobd_handlers_int(p, "rows", 0);
	if (!sp->ndjson) {
		size_t i;

		for (i = 0; i < json_array_size(header); i++) {
			const char *col =
				json_string_value(json_array_get(header, i));

			if (col && strcmp(col, sp->key) == 0)
				break;
		}
		if (i == json_array_size(header))
			return jobd_ctx_fail(ctx, "import: chunk without a "
						  "header naming its key");
		keycol = i;
	}
	st = jobd_handlers_store(ctx);
	if (!st)
		return JOBD_HANDLER_FAILED;
	ck = jobd_handlers_checkpoint(ctx);
	offset = jobd_handlers_int(ck ? ck : p, "offset", 0);
	line = jobd_handlers_int(ck ? ck : p, "line", 1);
	done = jobd_handlers_int(ck, "done", 0);
	imported = jobd_handlers_int(ck, "imported", 0);
	bad = jobd_handlers_int(ck, "bad", 0);
	if (ck)
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "import: resuming at line %" PRId64 " (%" PRId64
			     " of %" PRId64 " rows done)",
			     line, done, rows);
	json_decref(ck);
	fd = jobd_handlers_open_read(conf, sp->file, why, sizeof(why));
	if (fd < 0)
		return jobd_ctx_fail(ctx, "import: %s", why);
	if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
		close(fd);
		return jobd_ctx_fail(ctx, "import: cannot seek in \"%s\": %s",
				     sp->file, strerror(errno));
	}
	r = jobd_csv_reader_new(fd_read, &fd, offset, line, end);
	b = calloc(1, sizeof(*b));
	if (!r || !b)
		abort();
	flushed_at = done;
	for (;;) {
		rc = next_row(r, sp->ndjson, &rec, why, sizeof(why));
		if (rc == JOBD_CSV_IO) {
			ret = jobd_ctx_fail(ctx, "import: \"%s\": %s", sp->file,
					    why);
			goto out;
		}
		if (rc == JOBD_CSV_RECORD || rc == JOBD_CSV_BAD) {
			bool ok = rc == JOBD_CSV_RECORD;

			if (ok && sp->ndjson)
				ok = add_ndjson(b, &rec, sp->key, why,
						sizeof(why));
			else if (ok)
				ok = add_csv(b, &rec, header, keycol, why,
					     sizeof(why));
			if (!ok) {
				jobd_ctx_error(ctx, "line %" PRId64 ": %s",
					       rec.line, why);
				bad++;
			} else {
				if (first == 0)
					first = rec.line;
				last = rec.line;
			}
			done++;
		}
		if (rc == JOBD_CSV_EOF || b->n == JOBD_HANDLERS_BATCH ||
		    b->bytes >= BATCH_BYTES ||
		    done - flushed_at >= JOBD_HANDLERS_BATCH) {
			offset = jobd_csv_reader_offset(r);
			fr = flush(ctx, st, sp, b, offset, first, last);
			if (fr != 0) {
				ret = fr;
				goto out;
			}
			imported += (int64_t)b->n;
			batch_clear(b);
			first = last = 0;
			flushed_at = done;
			nck = json_pack("{s:I, s:I, s:I, s:I, s:I}", "offset",
					(json_int_t)offset, "line",
					(json_int_t)jobd_csv_reader_line(r),
					"done", (json_int_t)done, "imported",
					(json_int_t)imported, "bad",
					(json_int_t)bad);
			jobd_handlers_save(ctx, nck);
			json_decref(nck);
			jobd_ctx_progress_of(ctx, done, rows);
			if (rc == JOBD_CSV_EOF)
				break;
			if (jobd_ctx_stop_requested(ctx) ||
			    (pace > 0 && !jobd_ctx_sleep(ctx, pace))) {
				ret = JOBD_HANDLER_STOPPED;
				goto out;
			}
		}
	}
	jobd_ctx_progress(ctx, 100);
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "import: chunk %" PRId64 ": %" PRId64 " rows, %" PRId64
		     " imported into %s, %" PRId64 " bad",
		     jobd_handlers_int(p, "chunk", 0), done, imported,
		     jobd_sinks_describe(sp->sinks), bad);
out:
	batch_clear(b);
	free(b);
	jobd_csv_reader_free(r);
	close(fd);
	return ret;
}

int jobd_handler_import(struct jobd_ctx *ctx)
{
	json_t *p = jobd_handlers_payload(ctx, "import");
	struct spec sp = { 0 };
	int ret;

	if (!p)
		return JOBD_HANDLER_FAILED;
	if (!spec_read(ctx, p, &sp))
		ret = JOBD_HANDLER_FAILED;
	else if (json_object_get(p, "chunk"))
		ret = chunk(ctx, p, &sp);
	else
		ret = split(ctx, p, &sp);
	jobd_sinks_free(sp.sinks);
	json_decref(p);
	return ret;
}
