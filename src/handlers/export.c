/*
 * export: a record collection to a CSV or NDJSON file of data_dir
 * (docs/job-types.md).
 *
 * Streamed: the collection's index is walked in id byte order
 * (ZRANGEBYLEX from the last id written), JOBD_HANDLERS_BATCH records per
 * round trip, each page appended to a temp file next to the target
 * (".NAME.jobd-ID.part") and then checkpointed as {after: last id, bytes:
 * file length, written, columns}. Memory holds one page, whatever the
 * collection's size.
 *
 * Resume: the temp file is cut back to the checkpointed length (a crash
 * may have appended a page the checkpoint does not know) and the walk
 * continues after the checkpointed id with the checkpointed columns, so a
 * stopped and resumed export writes the same bytes as one that never
 * stopped. A temp file that is gone or shorter than the checkpoint (the
 * job moved to a machine without it) restarts the export from the top.
 * At the end the file is fsynced and renamed over the target: readers see
 * the old file or the whole new one, never a part.
 *
 * "pace_ms" in the payload sleeps that long between pages, to limit the
 * load an export puts on Redis (and to let tests stop one mid-way).
 *
 * Columns: "id" (the record id) first, then the payload's "fields", or
 * else the fields of the first record in hash order. CSV writes a header
 * row and one row per record (a missing field is empty; fields beyond the
 * columns are not written); NDJSON one object per record with "id" first.
 */
#include "config.h"

#include "handlers/handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "handlers/common.h"

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

/* Columns from the payload's fields, else from the first record. */
static json_t *columns_of(struct jobd_ctx *ctx, struct jobd_store *st,
			  const char *coll, const json_t *fields, bool *stopped)
{
	json_t *cols = json_array();
	struct jobd_record *recs = NULL;
	char **ids = NULL;
	size_t n = 0;
	int64_t backoff = 0;
	size_t i;
	json_t *v;

	*stopped = false;
	json_array_append_new(cols, json_string("id"));
	if (json_is_array(fields)) {
		json_array_foreach(fields, i, v)
		{
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), "id") != 0)
				json_array_append(cols, v);
		}
		return cols;
	}
	if (jobd_handlers_ids(ctx, st, coll, NULL, NULL, 1, &ids, &n,
			      &backoff) == JOBD_HANDLERS_STOPPED)
		goto stop;
	if (n == 0)
		goto out;
	while (jobd_records_get(st, coll, ids, 1, &recs) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, &backoff))
			goto stop;
	for (i = 0; recs && i < recs[0].n; i++)
		if (strcmp(recs[0].fields[i].name, "id") != 0)
			json_array_append_new(
				cols, json_string(recs[0].fields[i].name));
	goto out;
stop:
	*stopped = true;
	json_decref(cols);
	cols = NULL;
out:
	jobd_records_free(recs, recs ? n : 0);
	jobd_records_ids_free(ids, n);
	return cols;
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
		if (ndjson) {
			json_t *o = json_object();
			char *s;

			json_object_set_new(o, "id", json_string(rec->id));
			if (all_fields) {
				for (size_t j = 0; j < rec->n; j++)
					if (strcmp(rec->fields[j].name, "id"))
						json_object_set_new(
							o, rec->fields[j].name,
							json_string(
								rec->fields[j]
									.value));
			} else {
				for (size_t c = 1; c < ncols; c++) {
					const char *name = json_string_value(
						json_array_get(cols, c));
					const char *v =
						jobd_handlers_field(rec, name);

					json_object_set_new(o, name,
							    v ? json_string(v) :
								json_null());
				}
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
				vals[c] = jobd_handlers_field(
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
	const char *coll; /* borrowed from the payload */
	const char *file;
	bool ndjson;
	bool all_fields; /* NDJSON without "fields": every field */
	int dirfd;	 /* the target's directory */
	char *base;	 /* the target's name */
	char *tmp;	 /* the temp file's name */
	int fd;		 /* the temp file, -1 = not open */
	json_t *cols;	 /* columns */
	char *after;	 /* last id written, "" = none */
	int64_t bytes;	 /* file length written */
	int64_t written; /* records written */
};

/* Opens the temp file of a checkpoint; false when it must start over. */
static bool resume_file(struct jobd_ctx *ctx, struct run *r, const json_t *ck)
{
	struct stat sb;

	r->bytes = jobd_handlers_int(ck, "bytes", -1);
	r->fd = openat(r->dirfd, r->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &sb) < 0 || r->bytes < 0 ||
	    sb.st_size < r->bytes ||
	    !json_is_array(json_object_get(ck, "columns"))) {
		jobd_ctx_log(ctx, JOBD_LOG_WARN,
			     "export: the partial file %s is gone or short: "
			     "starting over",
			     r->tmp);
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		return false;
	}
	if (ftruncate(r->fd, (off_t)r->bytes) < 0 ||
	    lseek(r->fd, (off_t)r->bytes, SEEK_SET) < 0) {
		close(r->fd);
		r->fd = -1;
		return false;
	}
	r->cols = json_incref(json_object_get(ck, "columns"));
	free(r->after);
	r->after = strdup(jobd_handlers_str(ck, "after", ""));
	r->written = jobd_handlers_int(ck, "written", 0);
	jobd_ctx_log(ctx, JOBD_LOG_INFO,
		     "export: resuming after %" PRId64 " records (%" PRId64
		     " bytes)",
		     r->written, r->bytes);
	return true;
}

static void save(struct jobd_ctx *ctx, const struct run *r)
{
	json_t *ck = json_pack("{s:s, s:I, s:I, s:O}", "after", r->after,
			       "bytes", (json_int_t)r->bytes, "written",
			       (json_int_t)r->written, "columns", r->cols);

	jobd_handlers_save(ctx, ck);
	json_decref(ck);
}

static int export_run(struct jobd_ctx *ctx, struct jobd_store *st,
		      const json_t *p, struct run *r)
{
	json_t *ck = jobd_handlers_checkpoint(ctx);
	struct jobd_csv_buf buf = { 0 };
	struct jobd_record *recs = NULL;
	char **ids = NULL;
	size_t n = 0;
	int64_t total = 0, backoff = 0;
	int64_t pace = jobd_handlers_int(p, "pace_ms", 0);
	bool stopped;
	int ret = JOBD_HANDLER_DONE;

	while (jobd_records_count(st, r->coll, &total) == JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, &backoff))
			goto stop;
	if (!ck || !resume_file(ctx, r, ck)) {
		r->cols = columns_of(ctx, st, r->coll,
				     json_object_get(p, "fields"), &stopped);
		if (!r->cols)
			goto stop;
		r->fd = openat(r->dirfd, r->tmp,
			       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
				       O_CLOEXEC,
			       0644);
		if (r->fd < 0) {
			ret = jobd_ctx_fail(ctx,
					    "export: cannot create %s in the "
					    "directory of \"%s\": %s",
					    r->tmp, r->file, strerror(errno));
			goto out;
		}
		r->bytes = r->written = 0;
		if (!r->ndjson) {
			size_t nc = json_array_size(r->cols);
			const char **v = calloc(nc, sizeof(*v));
			size_t *l = calloc(nc, sizeof(*l));

			if (!v || !l)
				abort();
			for (size_t i = 0; i < nc; i++) {
				v[i] = json_string_value(
					json_array_get(r->cols, i));
				l[i] = strlen(v[i]);
			}
			if (jobd_csv_write_record(&buf, v, l, nc) < 0)
				abort();
			free(v);
			free(l);
		}
		if (write_all(r->fd, buf.data ? buf.data : "", buf.len) < 0)
			goto write_failed;
		r->bytes = (int64_t)buf.len;
		buf.len = 0;
		save(ctx, r);
	}
	for (;;) {
		if (jobd_handlers_ids(ctx, st, r->coll, r->after, NULL,
				      JOBD_HANDLERS_BATCH, &ids, &n,
				      &backoff) == JOBD_HANDLERS_STOPPED)
			goto stop;
		if (n == 0)
			break;
		while (jobd_records_get(st, r->coll, ids, n, &recs) ==
		       JOBD_STORE_ERR_REDIS)
			if (!jobd_handlers_retry(ctx, st, &backoff))
				goto stop;
		format_rows(&buf, recs, n, r->cols, r->ndjson, r->all_fields,
			    &r->written);
		if (write_all(r->fd, buf.data ? buf.data : "", buf.len) < 0)
			goto write_failed;
		r->bytes += (int64_t)buf.len;
		buf.len = 0;
		free(r->after);
		r->after = strdup(ids[n - 1]);
		if (!r->after)
			abort();
		jobd_records_free(recs, n);
		recs = NULL;
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		save(ctx, r);
		jobd_ctx_progress_of(ctx, r->written,
				     total > r->written ? total : r->written);
		if (jobd_ctx_stop_requested(ctx))
			goto stop;
		if (pace > 0 && !jobd_ctx_sleep(ctx, pace))
			goto stop;
	}
	if (fsync(r->fd) < 0 || close(r->fd) < 0) {
		r->fd = -1;
		goto write_failed;
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
		     "export: %" PRId64 " records of %s written to \"%s\" "
		     "(%" PRId64 " bytes)",
		     r->written, r->coll, r->file, r->bytes);
	goto out;
write_failed:
	ret = jobd_ctx_fail(ctx, "export: cannot write %s: %s", r->tmp,
			    strerror(errno));
	goto out;
stop:
	ret = JOBD_HANDLER_STOPPED;
out:
	jobd_records_free(recs, recs ? n : 0);
	jobd_records_ids_free(ids, n);
	jobd_csv_buf_release(&buf);
	json_decref(ck);
	return ret;
}

int jobd_handler_export(struct jobd_ctx *ctx)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);
	json_t *p = jobd_handlers_payload(ctx, "export");
	struct jobd_store *st;
	struct run r = { .dirfd = -1, .fd = -1 };
	const char *format;
	char why[512];
	int ret;

	if (!p)
		return JOBD_HANDLER_FAILED;
	r.coll = jobd_handlers_str(p, "collection", NULL);
	r.file = jobd_handlers_str(p, "file", NULL);
	format = jobd_handlers_str(p, "format", NULL);
	if (!jobd_records_valid_collection(r.coll)) {
		ret = jobd_ctx_fail(ctx,
				    "export: bad or missing \"collection\": "
				    "use 1-200 of A-Z a-z 0-9 _ . -");
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
	r.ndjson = format ? strcmp(format, "ndjson") == 0 :
			    strstr(r.file, ".ndjson") ||
				    strstr(r.file, ".jsonl");
	r.all_fields = r.ndjson && !json_object_get(p, "fields");
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
	json_decref(r.cols);
	free(r.after);
	free(r.base);
	free(r.tmp);
	json_decref(p);
	return ret;
}
