/*
 * handlers/common: shared plumbing of the record handlers (common.h).
 *
 * data_dir confinement: openat2(RESOLVE_BENEATH) resolves the whole path
 * under the data_dir descriptor and fails with EXDEV when "..", an
 * absolute symlink or a symlink chain would leave it. Kernels before 5.6
 * lack openat2: then every component is opened with O_NOFOLLOW, which
 * refuses symlinks altogether (stricter, never looser). A lexical check
 * first gives ".." and foreign absolute paths a clear message.
 *
 * Running a command: the same exec protocol and process handling as the
 * exec handler (exec.c: own process group, PR_SET_PDEATHSIG, argv without
 * a shell, minimal environment, SIGTERM on stop, SIGKILL when abandoned),
 * but with the command, stdin and progress mapping chosen by the caller,
 * which exec.c's handler entry point cannot take. It belongs in exec.c as
 * jobd_exec_run() once that file can change; the behaviour is kept
 * identical so the move is mechanical.
 */
#include "config.h"

#include "handlers/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "handlers/exec.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READ_CHUNK 65536

/* --- the thread's store ----------------------------------------------------- */

struct jobd_store *jobd_handlers_store(struct jobd_ctx *ctx)
{
	struct jobd_store *st;
	int64_t backoff = 0;

	while (!(st = jobd_ctx_store(ctx))) {
		backoff = backoff < BACKOFF_MIN_MS     ? BACKOFF_MIN_MS :
			  backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							 backoff * 2;
		if (!jobd_ctx_sleep(ctx, backoff)) {
			jobd_ctx_fail(ctx, "cannot connect to redis");
			return NULL;
		}
	}
	return st;
}

bool jobd_handlers_retry(struct jobd_ctx *ctx, struct jobd_store *st,
			 int64_t *backoff)
{
	*backoff = *backoff < BACKOFF_MIN_MS	 ? BACKOFF_MIN_MS :
		   *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
						   *backoff * 2;
	jobd_warn("job %" PRId64 ": %s (retrying in %" PRId64 " ms)",
		  jobd_ctx_job_id(ctx), jobd_store_errstr(st), *backoff);
	return jobd_ctx_sleep(ctx, *backoff);
}

int jobd_handlers_ids(struct jobd_ctx *ctx, struct jobd_store *st,
		      const char *coll, const char *after, const char *upto,
		      size_t limit, char ***ids, size_t *n, int64_t *backoff)
{
	int rc;

	while ((rc = jobd_records_ids(st, coll, after, upto, limit, ids, n)) ==
	       JOBD_STORE_ERR_REDIS)
		if (!jobd_handlers_retry(ctx, st, backoff))
			return JOBD_HANDLERS_STOPPED;
	return rc;
}

/* --- files in data_dir --------------------------------------------------------- */

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

/* --- payload and checkpoint helpers ------------------------------------------------ */

json_t *jobd_handlers_payload(struct jobd_ctx *ctx, const char *what)
{
	json_error_t e;
	json_t *p = json_loads(jobd_ctx_payload(ctx), 0, &e);

	if (!json_is_object(p)) {
		json_decref(p);
		jobd_ctx_fail(ctx, "%s: the payload is not a JSON object",
			      what);
		return NULL;
	}
	return p;
}

json_t *jobd_handlers_checkpoint(struct jobd_ctx *ctx)
{
	const char *ck = jobd_ctx_checkpoint(ctx);
	json_error_t e;
	json_t *v;

	if (!ck)
		return NULL;
	v = json_loads(ck, 0, &e);
	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

void jobd_handlers_save(struct jobd_ctx *ctx, const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (!s)
		abort();
	jobd_ctx_save_checkpoint(ctx, s);
	free(s);
}

const char *jobd_handlers_str(const json_t *obj, const char *key,
			      const char *def)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : def;
}

int64_t jobd_handlers_int(const json_t *obj, const char *key, int64_t def)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return def;
}

int jobd_handlers_spawn(struct jobd_ctx *ctx, const char *type, const char *key,
			const json_t *payload)
{
	char *s = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int rc;

	if (!s)
		abort();
	rc = jobd_ctx_spawn(ctx, type, key, s, NULL);
	free(s);
	return rc;
}

/* --- chunked work over a collection --------------------------------------------------- */

int jobd_handlers_split(struct jobd_ctx *ctx, struct jobd_store *st,
			const char *coll, int64_t chunk, const json_t *payload,
			int64_t *parts)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *child, *nck;
	int64_t token, part, backoff = 0;
	char **ids = NULL, key[64], *after;
	size_t n = 0;
	int rc, ret = JOBD_HANDLER_DONE;

	token = ck ? jobd_handlers_int(ck, "token", 0) : jobd_ctx_attempt(ctx);
	part = jobd_handlers_int(ck, "part", 0);
	after = strdup(jobd_handlers_str(ck, "after", ""));
	if (!after)
		abort();
	json_decref(ck);
	for (;;) {
		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		rc = jobd_handlers_ids(ctx, st, coll, after, NULL,
				       (size_t)chunk, &ids, &n, &backoff);
		if (rc == JOBD_HANDLERS_STOPPED) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
		if (rc < 0) {
			ret = jobd_ctx_fail(ctx, "cannot read collection %s",
					    coll);
			break;
		}
		if (n == 0)
			break;
		child = json_deep_copy(payload);
		json_object_set_new(child, "part", json_integer(part));
		json_object_set_new(child, "after", json_string(after));
		json_object_set_new(child, "upto", json_string(ids[n - 1]));
		snprintf(key, sizeof(key), "p%" PRId64 "-%" PRId64, token,
			 part);
		rc = jobd_handlers_spawn(ctx, jobd_ctx_type(ctx), key, child);
		json_decref(child);
		if (rc == JOBD_CTX_ERR_ABANDONED) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		if (rc < 0) {
			ret = jobd_ctx_fail(ctx, "cannot create part %" PRId64,
					    part);
			break;
		}
		part++;
		free(after);
		after = strdup(ids[n - 1]);
		if (!after)
			abort();
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		nck = json_pack("{s:I, s:I, s:s}", "token", (json_int_t)token,
				"part", (json_int_t)part, "after", after);
		jobd_handlers_save(ctx, nck);
		json_decref(nck);
	}
out:
	if (ret == JOBD_HANDLER_DONE)
		jobd_ctx_progress(ctx, 100);
	if (parts)
		*parts = part;
	jobd_records_ids_free(ids, n);
	free(after);
	return ret;
}

int jobd_handlers_walk(struct jobd_ctx *ctx, struct jobd_store *st,
		       const char *coll, const char *after, const char *upto,
		       int64_t expected, jobd_handlers_page_fn fn, void *arg)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *nck;
	int64_t done, backoff = 0;
	char **ids = NULL, *cur;
	size_t n = 0;
	int rc, ret = JOBD_HANDLER_DONE;

	cur = strdup(ck ? jobd_handlers_str(ck, "after", "") :
			  (after ? after : ""));
	done = jobd_handlers_int(ck, "done", 0);
	json_decref(ck);
	if (!cur)
		abort();
	for (;;) {
		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		rc = jobd_handlers_ids(ctx, st, coll, cur, upto,
				       JOBD_HANDLERS_BATCH, &ids, &n, &backoff);
		if (rc == JOBD_HANDLERS_STOPPED) {
			ret = JOBD_HANDLER_STOPPED;
			goto out;
		}
		if (rc < 0) {
			ret = jobd_ctx_fail(ctx, "cannot read collection %s",
					    coll);
			break;
		}
		if (n == 0)
			break;
		rc = fn(ctx, st, ids, n, arg);
		if (rc != 0) {
			ret = rc;
			break;
		}
		done += (int64_t)n;
		free(cur);
		cur = strdup(ids[n - 1]);
		if (!cur)
			abort();
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		nck = json_pack("{s:s, s:I}", "after", cur, "done",
				(json_int_t)done);
		jobd_handlers_save(ctx, nck);
		json_decref(nck);
		jobd_ctx_progress_of(ctx, done,
				     expected > done ? expected : done);
	}
out:
	if (ret == JOBD_HANDLER_DONE)
		jobd_ctx_progress(ctx, 100);
	jobd_records_ids_free(ids, n);
	free(cur);
	return ret;
}

/* --- relations --------------------------------------------------------------------- */

const char *jobd_handlers_field(const struct jobd_record *rec, const char *name)
{
	for (size_t i = 0; i < rec->n; i++)
		if (strcmp(rec->fields[i].name, name) == 0)
			return rec->fields[i].value;
	return NULL;
}

bool jobd_handlers_relations(struct jobd_ctx *ctx, struct jobd_store *st,
			     const char *coll, const struct jobd_record *olds,
			     const struct jobd_record *news, size_t n,
			     const char *key_base)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);

	for (size_t r = 0; r < conf->relations_count; r++) {
		const struct jobd_relation_conf *rel = &conf->relations[r];
		json_t *changes, *payload;
		struct jobd_spec spec = { 0 };
		struct jobd_created out;
		int64_t backoff = 0;
		char key[512];
		char *text;

		if (strcmp(rel->source, coll) != 0)
			continue;
		changes = json_object();
		for (size_t i = 0; i < n; i++) {
			const char *was, *now;

			if (!olds[i].exists)
				continue;
			was = jobd_handlers_field(&olds[i], rel->label);
			now = jobd_handlers_field(&news[i], rel->label);
			if (!now || (was && strcmp(was, now) == 0))
				continue;
			json_object_set_new(changes, news[i].id,
					    json_string(now));
		}
		if (json_object_size(changes) == 0) {
			json_decref(changes);
			continue;
		}
		payload = json_pack("{s:s, s:o, s:I}", "relation", rel->name,
				    "changes", changes, "cause",
				    (json_int_t)jobd_ctx_job_id(ctx));
		text = json_dumps(payload, JSON_COMPACT);
		if (!text)
			abort();
		snprintf(key, sizeof(key), "relupd:%s:%" PRId64 ":%s",
			 rel->name, jobd_ctx_job_id(ctx), key_base);
		spec.type = "relationship-update";
		spec.key = key;
		spec.payload = text;
		while (jobd_store_create(st, "jobd", &spec, 1, &out) < 0)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				free(text);
				json_decref(payload);
				return false;
			}
		if (out.id == 0)
			jobd_ctx_error(ctx,
				       "cannot create relationship-update for "
				       "relation %s: %s",
				       rel->name, out.error);
		else if (!out.existed)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "%zu %s labels changed: relationship-"
				     "update job %" PRId64 " (relation %s)",
				     json_object_size(changes), coll, out.id,
				     rel->name);
		free(text);
		json_decref(payload);
	}
	return true;
}
