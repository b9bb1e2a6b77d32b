/*
 * handlers/common: what the built-in record handlers share: a Redis
 * connection per worker thread, retrying while Redis is away, files
 * opened only inside data_dir, running a command with the exec protocol,
 * payload helpers, and the relationship-update trigger.
 *
 * Internal to src/handlers/; the list of handlers that jobd registers is
 * builtin.h.
 */
#ifndef JOBD_SRC_HANDLERS_COMMON_H
#define JOBD_SRC_HANDLERS_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"
#include "engine/handler.h"
#include "store/records.h"
#include "store/store.h"

/* Records written or read per Redis round trip. */
#define JOBD_HANDLERS_BATCH 500

/*
 * The worker thread's store (jobd_ctx_store), waiting with backoff while
 * Redis cannot be connected to. NULL only when a stop or abandon came
 * meanwhile; then the job has failed with the reason (jobd_ctx_fail), so
 * "return JOBD_HANDLER_FAILED".
 */
struct jobd_store *jobd_handlers_store(struct jobd_ctx *ctx);

/*
 * After a JOBD_STORE_ERR_REDIS: logs, sleeps with backoff (*BACKOFF ms,
 * start at 0) and returns true to call again, or false when a stop or
 * abandon came meanwhile (return JOBD_HANDLER_STOPPED: the last
 * checkpoint is where a resume starts).
 */
bool jobd_handlers_retry(struct jobd_ctx *ctx, struct jobd_store *st,
			 int64_t *backoff);

/* JOBD_HANDLERS_STOPPED: the job was stopped while Redis was away. */
#define JOBD_HANDLERS_STOPPED 1

/*
 * jobd_records_ids() retried with backoff while Redis is unreachable:
 * 0 with the page in *IDS and *N, a negative JOBD_STORE_ERR_* when the store
 * refused, or JOBD_HANDLERS_STOPPED when a stop or abandon came while
 * waiting (return JOBD_HANDLER_STOPPED then).
 */
int jobd_handlers_ids(struct jobd_ctx *ctx, struct jobd_store *st,
		      const char *coll, const char *after, const char *upto,
		      size_t limit, char ***ids, size_t *n, int64_t *backoff);

/* --- files in data_dir ---------------------------------------------------- */

/*
 * Opens the directory holding PATH (relative to data_dir, or absolute
 * inside it) and sets *DIRFD (caller closes) and *BASE (the last
 * component, caller frees). Refused with a message in ERRSTR: an empty
 * path, a ".." component, an absolute path outside data_dir, a symlink
 * that leads out of data_dir (or, on kernels without openat2, any
 * symlinked directory). Returns 0 or -1.
 */
int jobd_handlers_open_dir(const struct jobd_conf *conf, const char *path,
			   int *dirfd, char **base, char *errstr,
			   size_t errstr_size);

/* Opens PATH inside data_dir for reading (same checks; the file itself
 * must not be a symlink, and must be a regular file: a FIFO or a device
 * would block a worker). Returns the fd or -1 with ERRSTR set. */
int jobd_handlers_open_read(const struct jobd_conf *conf, const char *path,
			    char *errstr, size_t errstr_size);

/*
 * openat(DIRFD, NAME, FLAGS | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, MODE)
 * that opens regular files only: whatever else is there (a FIFO, which
 * would block the open or every write, a device) is refused with EINVAL,
 * and so is a symlink (ELOOP). The fd it returns blocks as usual.
 */
int jobd_handlers_openat_regular(int dirfd, const char *name, int flags,
				 mode_t mode);

/* --- running a command ------------------------------------------------------ */

/* --- payload and checkpoint helpers ------------------------------------------ */

/* The payload as a JSON object (caller decrefs), or NULL: the job failed. */
json_t *jobd_handlers_payload(struct jobd_ctx *ctx, const char *what);

/* The checkpoint as a JSON object (caller decrefs), NULL when none. */
json_t *jobd_handlers_checkpoint(struct jobd_ctx *ctx);

/* Saves OBJ (borrowed) as the checkpoint. */
void jobd_handlers_save(struct jobd_ctx *ctx, const json_t *obj);

/* OBJ[KEY] as a string, DEF when absent or not a string. */
const char *jobd_handlers_str(const json_t *obj, const char *key,
			      const char *def);

/* OBJ[KEY] as an integer, DEF when absent or not a number. */
int64_t jobd_handlers_int(const json_t *obj, const char *key, int64_t def);

/* Spawns a child with a payload object (borrowed); jobd_ctx_spawn's codes. */
int jobd_handlers_spawn(struct jobd_ctx *ctx, const char *type, const char *key,
			const json_t *payload);

/* --- chunked work over a collection ------------------------------------------- */

/*
 * The parent side: walks COLL's ids CHUNK at a time and spawns for each
 * chunk a child of the job's own type with PAYLOAD (borrowed) plus
 * "part", "after" (the id before the chunk, "" for the first) and "upto"
 * (its last id). Checkpoints after each spawn; child keys carry a token
 * fixed at the first attempt (a restart makes fresh children). Returns a
 * handler result; *PARTS (may be NULL) = children spawned in all.
 */
int jobd_handlers_split(struct jobd_ctx *ctx, struct jobd_store *st,
			const char *coll, int64_t chunk, const json_t *payload,
			int64_t *parts);

/* Works on N ids of a page; returns 0, or a handler result to end with. */
typedef int (*jobd_handlers_page_fn)(struct jobd_ctx *ctx,
				     struct jobd_store *st, char **ids,
				     size_t n, void *arg);

/*
 * The child side: calls FN for the ids of COLL after AFTER up to UPTO
 * (NULL/"" = open ends), JOBD_HANDLERS_BATCH at a time, checkpointing the
 * last id done after each page and honouring a stop between pages. A
 * resumed job continues after its checkpoint. EXPECTED is the id count
 * for progress (0 = unknown). Returns a handler result.
 */
int jobd_handlers_walk(struct jobd_ctx *ctx, struct jobd_store *st,
		       const char *coll, const char *after, const char *upto,
		       int64_t expected, jobd_handlers_page_fn fn, void *arg);

/* --- relations ----------------------------------------------------------------- */

/*
 * After records of COLL were replaced or updated: for every
 * [relation.NAME] whose source is COLL and whose label field changed from
 * OLDS[i] (the records before, NULL = did not exist: no change) to
 * NEWS[i], creates one system job "relationship-update" with the changes.
 * KEY_BASE (borrowed) makes its idempotency key, so a retried batch does
 * not create it twice. Redis errors are retried (false: stop requested).
 */
bool jobd_handlers_relations(struct jobd_ctx *ctx, struct jobd_store *st,
			     const char *coll, const struct jobd_record *olds,
			     const struct jobd_record *news, size_t n,
			     const char *key_base);

/* The value of field NAME in REC, NULL when absent. */
const char *jobd_handlers_field(const struct jobd_record *rec,
				const char *name);

#endif
