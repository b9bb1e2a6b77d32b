/*
 * export: a record collection or a Kafka topic to a CSV or NDJSON file of
 * data_dir (docs/job-types.md).
 *
 * Streamed: the source is read a page at a time (JOBD_HANDLERS_BATCH
 * records), each page appended to a temp file next to the target
 * (".NAME.jobd-ID.part") and then checkpointed with the source's cursor
 * and the file's length. Memory holds one page, whatever the source's
 * size.
 *
 * Sources and their cursors:
 * - a collection: its index walked in id byte order (ZRANGEBYLEX after
 *   the last id written), cursor "after";
 * - a topic: read from the beginning to the high watermarks taken when the
 *   export first started ("ends"; later messages are not read), one
 *   partition after the other in ascending order so the file's order is
 *   fixed by the topic's content, cursor "next" (the next offset of every
 *   partition). A message's value is a JSON object (what an import
 *   publishes); its "id", else the message key, is the record id. Other
 *   messages are job errors naming topic/partition@offset; tombstones
 *   (null values) are skipped.
 *
 * Resume: the temp file is cut back to the checkpointed length (a crash
 * may have appended a page the checkpoint does not know) and the source
 * continues from the checkpointed cursor with the checkpointed columns,
 * so a stopped and resumed export writes the same bytes as one that never
 * stopped. A temp file that is gone or shorter than the checkpoint (the
 * job moved to a machine without it) restarts the export from the top.
 * At the end the file is fsynced and renamed over the target: readers see
 * the old file or the whole new one, never a part.
 *
 * Columns: "id" (the record id) first, then the payload's "fields"; a CSV
 * without "fields" first makes a pass over the whole source collecting
 * the union of field names (HKEYS for a collection), sorted by their
 * bytes, checkpointed as it goes ("phase": "columns"), so a record with
 * fields the first one lacks loses nothing. Rejected: the first record's
 * fields (silently drops the others) and growing the header while writing
 * (the header is the file's first line). NDJSON without "fields" writes
 * every field of each record and needs no pass.
 *
 * "pace_ms" in the payload sleeps that long between pages, to limit the
 * load an export puts on Redis (and to let tests stop one mid-way).
 */
#include "config.h"

#include "handlers/builtin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "handlers/chunks.h"
#include "handlers/common.h"
#include "handlers/csv.h"
#include "handlers/datadir.h"
#include "handlers/ndjson.h"
#include "handlers/sink.h"
#include "kafka/codec.h"
#include "kafka/kafka.h"

#define COLUMNS_MAX 10000   /* distinct field names of a union */
#define TOPIC_TRIES 3	    /* tries of the start (bounds) before failing */
#define TOPIC_RETRY_MS 1000 /* first pause between tries, doubled */
#define TOPIC_RETRY_MAX_MS 30000
#define TOPIC_WAIT_MS 10000 /* for a message or a broker answer */
#define BROKERS_MAX 4096    /* bytes of a bootstrap list */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends the rows of RECS to OUT. */
static void format_rows(struct jobd_csv_buf *out,
			const struct jobd_record *recs, size_t n,
			const json_t *cols, bool ndjson, bool all_fields,
			int64_t *written)
{
	size_t ncols = json_array_size(cols);
	const char **vals = calloc(ncols, sizeof(*vals));
	size_t *lens = calloc(ncols, sizeof(*lens));

	if (!vals || !lens)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct jobd_record *rec = &recs[i];

		if (!rec->exists)
			continue; /* deleted after the index was read */
		if (ndjson && all_fields) {
			char *s = jobd_record_json(rec);

			if (jobd_csv_buf_add(out, s, strlen(s)) < 0 ||
			    jobd_csv_buf_add(out, "\n", 1) < 0)
				abort();
			free(s);
		} else if (ndjson) {
			json_t *o = json_object();
			char *s;

			json_object_set_new(o, "id", json_string(rec->id));
			for (size_t c = 1; c < ncols; c++) {
				const char *name = json_string_value(
					json_array_get(cols, c));
				const char *v = jobd_record_field(rec, name);

				json_object_set_new(o, name,
						    v ? json_string(v) :
							json_null());
			}
			s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (!s || jobd_csv_buf_add(out, s, strlen(s)) < 0 ||
			    jobd_csv_buf_add(out, "\n", 1) < 0)
				abort();
			free(s);
			json_decref(o);
		} else {
			vals[0] = rec->id;
			lens[0] = strlen(rec->id);
			for (size_t c = 1; c < ncols; c++) {
				vals[c] = jobd_record_field(
					rec, json_string_value(
						     json_array_get(cols, c)));
				lens[c] = vals[c] ? strlen(vals[c]) : 0;
			}
			if (jobd_csv_write_record(out, vals, lens, ncols) < 0)
				abort();
		}
		(*written)++;
	}
	free(vals);
	free(lens);
}

struct run {
	const char *coll;  /* source collection (borrowed), or NULL */
	const char *topic; /* source topic (borrowed), or NULL */
	const char *file;  /* target, borrowed from the payload */
	bool ndjson;
	bool all_fields; /* NDJSON without "fields": every field */
	bool union_cols; /* CSV without "fields": a first pass for columns */
	bool collecting; /* in that first pass */
	int dirfd;	 /* the target's directory */
	char *base;	 /* the target's name */
	char *tmp;	 /* the temp file's name */
	int fd;		 /* the temp file, -1 = not open */
	json_t *cols;	 /* columns; in the first pass the names so far */
	char *after;	 /* collection cursor: last id read, "" = none */
	json_t *starts;	 /* topic: first offset of each partition */
	json_t *next;	 /* topic cursor: next offset of each partition */
	json_t *ends;	 /* topic: high watermarks when the export began */
	int64_t bytes;	 /* file length written */
	int64_t written; /* records written */
	int64_t done;	 /* ids or messages read in this pass */
	int64_t total;	 /* records (collection) or messages (topic) */
	struct jobd_kafka_reader *kr; /* topic reader, made on demand */
	int32_t kr_part;	      /* the partition it reads, -1 = none */
};

static int64_t at(const json_t *arr, size_t i)
{
	return json_integer_value(json_array_get(arr, i));
}

/* The cursor back at the source's beginning. */
static void rewind_source(struct run *r)
{
	free(r->after);
	r->after = strdup("");
	if (!r->after)
		abort();
	if (r->starts) {
		json_decref(r->next);
		r->next = json_deep_copy(r->starts);
	}
	r->done = 0;
	jobd_kafka_reader_free(r->kr);
	r->kr = NULL;
}

static void save(struct jobd_ctx *ctx, const struct run *r)
{
	json_t *ck = json_pack("{s:s, s:I, s:I, s:I, s:O}", "phase",
			       r->collecting ? "columns" : "rows", "bytes",
			       (json_int_t)r->bytes, "written",
			       (json_int_t)r->written, "done",
			       (json_int_t)r->done, "columns", r->cols);

	if (r->topic) {
		json_object_set(ck, "starts", r->starts);
		json_object_set(ck, "next", r->next);
		json_object_set(ck, "ends", r->ends);
	} else {
		json_object_set_new(ck, "after", json_string(r->after));
	}
	jobd_handlers_save(ctx, ck);
	json_decref(ck);
}

static void progress(struct jobd_ctx *ctx, const struct run *r)
{
	int64_t total = r->total > r->done ? r->total : r->done;

	if (!r->union_cols)
		jobd_ctx_progress_of(ctx, r->done, total);
	else
		jobd_ctx_progress_of(ctx, (r->collecting ? 0 : total) + r->done,
				     2 * total);
}

/* --- topic source ----------------------------------------------------------- */

/* A fresh reader of R's topic; 0, or -1 with WHY. */
static int open_reader(struct jobd_ctx *ctx, struct jobd_store *st,
		       struct run *r, int32_t *nparts, char *why,
		       size_t why_size)
{
	char brokers[BROKERS_MAX];

	jobd_kafka_reader_free(r->kr);
	r->kr = NULL;
	r->kr_part = -1;
	if (jobd_kafka_brokers(jobd_ctx_conf(ctx), st, brokers, sizeof(brokers),
			       why, why_size) < 0)
		return -1;
	r->kr = jobd_kafka_reader_new(jobd_ctx_conf(ctx), brokers, r->topic,
				      TOPIC_WAIT_MS, nparts, why, why_size);
	return r->kr ? 0 : -1;
}

/* The partitions' watermarks now: where a new export starts and ends. */
static int topic_bounds(struct jobd_ctx *ctx, struct jobd_store *st,
			struct run *r, char *why, size_t why_size)
{
	int32_t nparts;

	if (open_reader(ctx, st, r, &nparts, why, why_size) < 0)
		return -1;
	json_decref(r->starts);
	json_decref(r->ends);
	r->starts = json_array();
	r->ends = json_array();
	r->total = 0;
	for (int32_t i = 0; i < nparts; i++) {
		int64_t lo, hi;

		if (jobd_kafka_reader_watermarks(r->kr, i, TOPIC_WAIT_MS, &lo,
						 &hi, why, why_size) < 0)
			return -1;
		json_array_append_new(r->starts, json_integer(lo));
		json_array_append_new(r->ends, json_integer(hi));
		r->total += hi - lo;
	}
	json_decref(r->next);
	r->next = json_deep_copy(r->starts);
	return 0;
}

/*
 * The record in message M (REC's strings owned), or false: not a record
 * (WHY set, or WHY empty for a tombstone).
 */
static bool message_record(const struct jobd_kafka_message *m,
			   struct jobd_record *rec, char *why, size_t why_size)
{
	json_error_t e;
	json_t *obj, *v;
	const char *name;
	size_t i = 0;

	why[0] = '\0';
	memset(rec, 0, sizeof(*rec));
	if (!m->value)
		return false;
	obj = json_loadb(m->value, m->len, 0, &e);
	if (!json_is_object(obj)) {
		snprintf(why, why_size, "not a JSON object%s%s",
			 obj ? "" : ": ", obj ? "" : e.text);
		json_decref(obj);
		return false;
	}
	v = json_object_get(obj, "id");
	if (json_is_string(v) || json_is_integer(v))
		rec->id = jobd_json_text(v);
	else if (m->key && m->key_len > 0 &&
		 !memchr(m->key, '\0', m->key_len) &&
		 jobd_codec_valid_utf8(m->key, m->key_len))
		rec->id = strndup(m->key, m->key_len);
	if (!rec->id || !jobd_records_valid_id(rec->id)) {
		snprintf(why, why_size,
			 "no record id (an \"id\" member or a UTF-8 "
			 "message key of 1-512 bytes)");
		free(rec->id);
		rec->id = NULL;
		json_decref(obj);
		return false;
	}
	rec->exists = true;
	rec->fields = calloc(json_object_size(obj) + 1, sizeof(*rec->fields));
	if (!rec->fields)
		abort();
	json_object_foreach(obj, name, v)
	{
		if (strcmp(name, "id") == 0)
			continue;
		rec->fields[i].name = strdup(name);
		rec->fields[i].value = jobd_json_text(v);
		if (!rec->fields[i].name)
			abort();
		i++;
	}
	rec->n = i;
	json_decref(obj);
	return true;
}

/*
 * Up to JOBD_HANDLERS_BATCH records of the topic from the cursor on,
 * advancing it; 0 (*N = 0: the end) or -1 with WHY (a retriable read).
 */
static int topic_page(struct jobd_ctx *ctx, struct jobd_store *st,
		      struct run *r, struct jobd_record **recs, size_t *n,
		      char *why, size_t why_size)
{
	struct jobd_record *out = calloc(JOBD_HANDLERS_BATCH, sizeof(*out));
	size_t parts = json_array_size(r->ends), p;
	int32_t nparts;

	if (!out)
		abort();
	*recs = out;
	*n = 0;
	for (p = 0; p < parts && at(r->next, p) >= at(r->ends, p); p++)
		;
	if (p == parts)
		return 0;
	if (!r->kr && open_reader(ctx, st, r, &nparts, why, why_size) < 0)
		return -1;
	if (r->kr_part != (int32_t)p) {
		if (jobd_kafka_reader_seek(r->kr, (int32_t)p, at(r->next, p),
					   why, why_size) < 0)
			return -1;
		r->kr_part = (int32_t)p;
	}
	/* A page ends after BATCH messages too, records or not, so a run
	 * of tombstones is checkpointed and stoppable like any other. */
	for (size_t read = 0; *n < JOBD_HANDLERS_BATCH &&
			      read < JOBD_HANDLERS_BATCH &&
			      at(r->next, p) < at(r->ends, p);) {
		struct jobd_kafka_message m;
		char bad[256];
		int rc;

		rc = jobd_kafka_reader_next(r->kr, &m, TOPIC_WAIT_MS, why,
					    why_size);
		if (rc < 0)
			return -1;
		if (m.partition != (int32_t)p) {
			/* left over from an earlier seek */
			if (rc == 1)
				jobd_kafka_messages_release(&m, 1);
			continue;
		}
		if (rc == 0) {
			/* the partition ends early: messages were deleted */
			json_array_set_new(r->next, p,
					   json_integer(at(r->ends, p)));
			break;
		}
		if (m.offset >= at(r->ends, p)) {
			json_array_set_new(r->next, p,
					   json_integer(at(r->ends, p)));
			jobd_kafka_messages_release(&m, 1);
			break;
		}
		read++;
		r->done += m.offset + 1 - at(r->next, p);
		json_array_set_new(r->next, p, json_integer(m.offset + 1));
		if (message_record(&m, &out[*n], bad, sizeof(bad)))
			(*n)++;
		else if (bad[0] && !r->collecting)
			jobd_ctx_error(ctx, "topic %s/%zu@%" PRId64 ": %s",
				       r->topic, p, m.offset, bad);
		jobd_kafka_messages_release(&m, 1);
	}
	return 0;
}

/* --- reading a page --------------------------------------------------------- */

/*
 * The next page of records into *RECS (*N, free with jobd_records_free;
 * *N = 0 and *MORE false at the end), advancing the cursor. In the first
 * pass of a collection only the names are read. Returns 0 or a handler
 * result (stopped, failed).
 */
static int read_page(struct jobd_ctx *ctx, struct jobd_store *st, struct run *r,
		     struct jobd_record **recs, size_t *n, bool *more)
{
	int64_t backoff = 0, pause = TOPIC_RETRY_MS;
	char **ids = NULL, why[512];
	size_t nids = 0;
	int rc;

	*recs = NULL;
	*n = 0;
	*more = false;
	if (r->topic) {
		json_t *next = json_deep_copy(r->next);
		int64_t done = r->done;

		for (int try = 1;; try++) {
			jobd_records_free(*recs, *n);
			*recs = NULL;
			*n = 0;
			if (topic_page(ctx, st, r, recs, n, why, sizeof(why)) ==
			    0)
				break;
			/* the page is read again from where it began */
			json_decref(r->next);
			r->next = json_deep_copy(next);
			r->done = done;
			jobd_kafka_reader_free(r->kr);
			r->kr = NULL;
			/* The topic was there at the start: a broker away
			 * is waited for, as the consumers do. */
			jobd_ctx_log(ctx, JOBD_LOG_WARN,
				     "export: cannot read topic %s (try %d, "
				     "again in %" PRId64 " ms): %s",
				     r->topic, try, pause, why);
			if (!jobd_ctx_sleep(ctx, pause)) {
				json_decref(next);
				return JOBD_HANDLER_STOPPED;
			}
			pause = jobd_util_backoff(pause, TOPIC_RETRY_MS,
						  TOPIC_RETRY_MAX_MS);
		}
		json_decref(next);
		for (size_t p = 0; p < json_array_size(r->ends); p++)
			if (at(r->next, p) < at(r->ends, p))
				*more = true;
		return 0;
	}
	rc = jobd_handlers_ids(ctx, st, r->coll, r->after, NULL,
			       JOBD_HANDLERS_BATCH, &ids, &nids, &backoff);
	if (rc == JOBD_HANDLERS_STOPPED)
		return JOBD_HANDLER_STOPPED;
	if (rc < 0)
		return jobd_ctx_fail(ctx, "export: cannot read collection %s",
				     r->coll);
	if (nids == 0) {
		free(ids);
		return 0;
	}
	while ((rc = r->collecting ?
			     jobd_records_names(st, r->coll, ids, nids, recs) :
			     jobd_records_get(st, r->coll, ids, nids, recs)) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, &backoff)) {
			jobd_records_ids_free(ids, nids);
			return JOBD_HANDLER_STOPPED;
		}
	if (rc < 0) {
		jobd_records_ids_free(ids, nids);
		return jobd_ctx_fail(ctx, "export: cannot read collection %s",
				     r->coll);
	}
	*n = nids;
	*more = true;
	r->done += (int64_t)nids;
	free(r->after);
	r->after = strdup(ids[nids - 1]);
	if (!r->after)
		abort();
	jobd_records_ids_free(ids, nids);
	return 0;
}

/* --- columns ------------------------------------------------------------------ */

/* "id" and the payload's FIELDS. */
static json_t *given_columns(const json_t *fields)
{
	json_t *cols = json_array(), *v;
	size_t i;

	json_array_append_new(cols, json_string("id"));
	json_array_foreach(fields, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), "id") != 0)
			json_array_append(cols, v);
	}
	return cols;
}

static int by_bytes(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Adds the field names of RECS to the sorted name list R->cols; false
 * when the union grew past COLUMNS_MAX.
 */
static bool collect_names(struct run *r, const struct jobd_record *recs,
			  size_t n)
{
	json_t *set = json_object(), *v;
	const char **names;
	const char *name;
	size_t i, count = 0;

	json_array_foreach(r->cols, i, v)
		json_object_set(set, json_string_value(v), json_true());
	for (i = 0; i < n; i++)
		for (size_t j = 0; recs[i].exists && j < recs[i].n; j++)
			if (strcmp(recs[i].fields[j].name, "id") != 0)
				json_object_set(set, recs[i].fields[j].name,
						json_true());
	if (json_object_size(set) > COLUMNS_MAX) {
		json_decref(set);
		return false;
	}
	names = calloc(json_object_size(set) + 1, sizeof(*names));
	if (!names)
		abort();
	json_object_foreach(set, name, v) names[count++] = name;
	qsort(names, count, sizeof(*names), by_bytes);
	json_array_clear(r->cols);
	for (i = 0; i < count; i++)
		json_array_append_new(r->cols, json_string(names[i]));
	free(names);
	json_decref(set);
	return true;
}

/* --- the file ------------------------------------------------------------------- */

/* Opens the temp file of a checkpoint; false when it must start over. */
static bool resume_file(struct jobd_ctx *ctx, struct run *r, const json_t *ck)
{
	const char *phase = jobd_handlers_str(ck, "phase", "rows");
	bool topic_ok = !r->topic ||
			(json_is_array(json_object_get(ck, "next")) &&
			 json_is_array(json_object_get(ck, "ends")) &&
			 json_is_array(json_object_get(ck, "starts")));
	struct stat sb;

	if (!json_is_array(json_object_get(ck, "columns")) || !topic_ok)
		return false;
	r->cols = json_deep_copy(json_object_get(ck, "columns"));
	free(r->after);
	r->after = strdup(jobd_handlers_str(ck, "after", ""));
	if (!r->after)
		abort();
	if (r->topic) {
		r->starts = json_deep_copy(json_object_get(ck, "starts"));
		r->next = json_deep_copy(json_object_get(ck, "next"));
		r->ends = json_deep_copy(json_object_get(ck, "ends"));
		r->total = 0;
		for (size_t p = 0; p < json_array_size(r->ends); p++)
			r->total += at(r->ends, p) - at(r->starts, p);
	}
	r->done = jobd_handlers_int(ck, "done", 0);
	r->written = jobd_handlers_int(ck, "written", 0);
	if (strcmp(phase, "columns") == 0) {
		r->collecting = true;
		jobd_ctx_log(ctx, JOBD_LOG_INFO,
			     "export: resuming the pass over the fields after "
			     "%" PRId64 " records",
			     r->done);
		return true;
	}
	r->bytes = jobd_handlers_int(ck, "bytes", -1);
	r->fd = jobd_handlers_openat_regular(r->dirfd, r->tmp, O_WRONLY, 0);
	if (r->fd < 0 || fstat(r->fd, &sb) < 0 || r->bytes < 0 ||
	    sb.st_size < r->bytes) {
		jobd_ctx_log(ctx, JOBD_LOG_WARN,
			     "export: the partial file %s is gone or short: "
			     "starting over",
			     r->tmp);
		goto err;
	}
	if (ftruncate(r->fd, (off_t)r->bytes) < 0 ||
	    lseek(r->fd, (off_t)r->bytes, SEEK_SET) < 0)
		goto err;
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "export: resuming after %" PRId64 " records (%" PRId64
		     " bytes)",
		     r->written, r->bytes);
	return true;
err:
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	json_decref(r->cols);
	r->cols = NULL;
	return false;
}

/* Creates the temp file with the CSV header; 0 or a handler result. */
static int start_file(struct jobd_ctx *ctx, struct run *r)
{
	struct jobd_csv_buf buf = { 0 };

	r->fd = jobd_handlers_openat_regular(
		r->dirfd, r->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (r->fd < 0)
		return jobd_ctx_fail(ctx,
				     "export: cannot create %s in the "
				     "directory of \"%s\": %s",
				     r->tmp, r->file,
				     errno == EINVAL ? "not a regular file" :
						       strerror(errno));
	r->bytes = r->written = 0;
	if (!r->ndjson) {
		size_t nc = json_array_size(r->cols);
		const char **v = calloc(nc, sizeof(*v));
		size_t *l = calloc(nc, sizeof(*l));

		if (!v || !l)
			abort();
		for (size_t i = 0; i < nc; i++) {
			v[i] = json_string_value(json_array_get(r->cols, i));
			l[i] = strlen(v[i]);
		}
		if (jobd_csv_write_record(&buf, v, l, nc) < 0)
			abort();
		free(v);
		free(l);
	}
	if (write_all(r->fd, buf.data ? buf.data : "", buf.len) < 0) {
		jobd_csv_buf_release(&buf);
		return jobd_ctx_fail(ctx, "export: cannot write %s: %s", r->tmp,
				     strerror(errno));
	}
	r->bytes = (int64_t)buf.len;
	jobd_csv_buf_release(&buf);
	return 0;
}

/* --- the run ----------------------------------------------------------------------- */

/* A fresh start: bounds, columns, first pass or file. */
static int begin(struct jobd_ctx *ctx, struct jobd_store *st, const json_t *p,
		 struct run *r)
{
	const json_t *fields = json_object_get(p, "fields");
	char why[512];
	int64_t pause = TOPIC_RETRY_MS;

	rewind_source(r);
	r->written = r->bytes = 0;
	if (r->topic)
		for (int try = 1;; try++) {
			if (topic_bounds(ctx, st, r, why, sizeof(why)) == 0)
				break;
			if (try == TOPIC_TRIES)
				return jobd_ctx_fail(ctx, "export: %s", why);
			jobd_ctx_log(ctx, JOBD_LOG_WARN,
				     "export: %s (try %d of %d, again in "
				     "%" PRId64 " ms)",
				     why, try, TOPIC_TRIES, pause);
			if (!jobd_ctx_sleep(ctx, pause))
				return JOBD_HANDLER_STOPPED;
			pause *= 2;
		}
	json_decref(r->cols);
	if (r->union_cols) {
		r->cols = json_array();
		r->collecting = true;
		save(ctx, r);
		return 0;
	}
	r->cols = json_is_array(fields) ? given_columns(fields) : json_array();
	if (!json_is_array(fields))
		json_array_append_new(r->cols, json_string("id"));
	return start_file(ctx, r);
}

/* The first pass ended: the columns are known, the file begins. */
static int end_collecting(struct jobd_ctx *ctx, struct run *r)
{
	json_array_insert_new(r->cols, 0, json_string("id"));
	r->collecting = false;
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "export: %zu columns from the fields of %" PRId64
		     " records",
		     json_array_size(r->cols), r->done);
	rewind_source(r);
	return start_file(ctx, r);
}

static int export_run(struct jobd_ctx *ctx, struct jobd_store *st,
		      const json_t *p, struct run *r)
{
	json_t *ck = jobd_handlers_checkpoint(ctx);
	struct jobd_csv_buf buf = { 0 };
	struct jobd_record *recs = NULL;
	size_t n = 0;
	int64_t backoff = 0;
	int64_t pace = jobd_handlers_int(p, "pace_ms", 0);
	bool more;
	int ret = JOBD_HANDLER_DONE;

	if (r->coll)
		while (jobd_records_count(st, r->coll, &r->total) ==
		       JOBD_STORE_ERR_REDIS)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				ret = JOBD_HANDLER_STOPPED;
				goto out;
			}
	if (!ck || !resume_file(ctx, r, ck)) {
		ret = begin(ctx, st, p, r);
		if (ret != 0)
			goto out;
		if (!r->collecting)
			save(ctx, r);
	}
	for (;;) {
		ret = read_page(ctx, st, r, &recs, &n, &more);
		if (ret != 0)
			goto out;
		if (r->collecting) {
			if (!collect_names(r, recs, n)) {
				ret = jobd_ctx_fail(
					ctx,
					"export: more than %d distinct fields "
					"in %s %s: name the columns with "
					"\"fields\"",
					COLUMNS_MAX,
					r->coll ? "collection" : "topic",
					r->coll ? r->coll : r->topic);
				goto out;
			}
		} else {
			format_rows(&buf, recs, n, r->cols, r->ndjson,
				    r->all_fields, &r->written);
			if (write_all(r->fd, buf.data ? buf.data : "",
				      buf.len) < 0) {
				ret = jobd_ctx_fail(
					ctx, "export: cannot write %s: %s",
					r->tmp, strerror(errno));
				goto out;
			}
			r->bytes += (int64_t)buf.len;
			buf.len = 0;
		}
		jobd_records_free(recs, n);
		recs = NULL;
		n = 0;
		if (!more && r->collecting) {
			ret = end_collecting(ctx, r);
			if (ret != 0)
				goto out;
			more = true;
		}
		save(ctx, r);
		progress(ctx, r);
		if (!more)
			break;
		if (jobd_ctx_stop_requested(ctx) ||
		    (pace > 0 && !jobd_ctx_sleep(ctx, pace))) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
	}
	if (fsync(r->fd) < 0 || close(r->fd) < 0) {
		r->fd = -1;
		ret = jobd_ctx_fail(ctx, "export: cannot write %s: %s", r->tmp,
				    strerror(errno));
		goto out;
	}
	r->fd = -1;
	if (renameat(r->dirfd, r->tmp, r->dirfd, r->base) < 0) {
		ret = jobd_ctx_fail(ctx,
				    "export: cannot rename %s to \"%s\": %s",
				    r->tmp, r->file, strerror(errno));
		goto out;
	}
	jobd_ctx_progress(ctx, 100);
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "export: %" PRId64 " records of %s %s written to \"%s\" "
		     "(%" PRId64 " bytes)",
		     r->written, r->coll ? "collection" : "topic",
		     r->coll ? r->coll : r->topic, r->file, r->bytes);
out:
	jobd_records_free(recs, n);
	jobd_csv_buf_release(&buf);
	json_decref(ck);
	return ret;
}

/* The source of payload P into R; false when the job failed. */
static bool source_of(struct jobd_ctx *ctx, const json_t *p, struct run *r)
{
	const json_t *src = json_object_get(p, "source");
	const json_t *coll = json_object_get(p, "collection");
	const json_t *topic = NULL;

	if (src && !json_is_object(src)) {
		jobd_ctx_fail(ctx, "export: \"source\" is not an object like "
				   "{\"topic\": \"name\"}");
		return false;
	}
	if (src && coll) {
		jobd_ctx_fail(ctx, "export: give \"collection\" or "
				   "\"source\", not both");
		return false;
	}
	if (src) {
		coll = json_object_get(src, "collection");
		topic = json_object_get(src, "topic");
		if (!coll == !topic) {
			jobd_ctx_fail(ctx, "export: \"source\" needs exactly "
					   "one of \"collection\" or "
					   "\"topic\"");
			return false;
		}
	}
	if (topic) {
		char why[512];

		r->topic = json_string_value(topic);
		if (!jobd_sinks_topic_allowed(jobd_ctx_conf(ctx), r->topic, why,
					      sizeof(why))) {
			jobd_ctx_fail(ctx, "export: %s", why);
			return false;
		}
		return true;
	}
	r->coll = json_string_value(coll);
	if (!jobd_records_valid_collection(r->coll)) {
		jobd_ctx_fail(ctx,
			      "export: bad or missing \"collection\" \"%s\": "
			      "use 1-200 of A-Z a-z 0-9 _ . -",
			      r->coll ? r->coll : "");
		return false;
	}
	return true;
}

int jobd_handler_export(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	json_t *p = jobd_handlers_payload(ctx, "export");
	struct jobd_store *st;
	struct run r = { .dirfd = -1, .fd = -1, .kr_part = -1 };
	const char *format;
	char why[512];
	int ret;

	if (!p)
		return JOBD_HANDLER_FAILED;
	r.file = jobd_handlers_str(p, "file", NULL);
	format = jobd_handlers_str(p, "format", NULL);
	if (!source_of(ctx, p, &r)) {
		ret = JOBD_HANDLER_FAILED;
		goto out;
	}
	if (format && strcmp(format, "csv") && strcmp(format, "ndjson")) {
		ret = jobd_ctx_fail(
			ctx,
			"export: unknown \"format\" \"%s\": use csv "
			"or ndjson",
			format);
		goto out;
	}
	if (!r.file) {
		ret = jobd_ctx_fail(ctx, "export: the payload has no \"file\"");
		goto out;
	}
	if (json_object_get(p, "fields") &&
	    !json_is_array(json_object_get(p, "fields"))) {
		ret = jobd_ctx_fail(ctx, "export: \"fields\" is not an array "
					 "of field names");
		goto out;
	}
	r.ndjson = format ? strcmp(format, "ndjson") == 0 :
			    strstr(r.file, ".ndjson") ||
				    strstr(r.file, ".jsonl");
	r.all_fields = r.ndjson && !json_object_get(p, "fields");
	r.union_cols = !r.ndjson && !json_object_get(p, "fields");
	if (jobd_handlers_open_dir(conf, r.file, &r.dirfd, &r.base, why,
				   sizeof(why)) < 0) {
		ret = jobd_ctx_fail(ctx, "export: %s", why);
		goto out;
	}
	if (asprintf(&r.tmp, ".%s.jobd-%" PRId64 ".part", r.base,
		     jobd_ctx_job_id(ctx)) < 0)
		abort();
	r.after = strdup("");
	st = jobd_handlers_store(ctx);
	ret = st ? export_run(ctx, st, p, &r) : JOBD_HANDLER_FAILED;
	if (ret == JOBD_HANDLER_FAILED && r.fd >= 0)
		unlinkat(r.dirfd, r.tmp, 0);
out:
	if (r.fd >= 0)
		close(r.fd);
	if (r.dirfd >= 0)
		close(r.dirfd);
	jobd_kafka_reader_free(r.kr);
	json_decref(r.cols);
	json_decref(r.starts);
	json_decref(r.next);
	json_decref(r.ends);
	free(r.after);
	free(r.base);
	free(r.tmp);
	json_decref(p);
	return ret;
}
