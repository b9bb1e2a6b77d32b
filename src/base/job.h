/*
 * job: one job as read from its Redis hash, and its JSON form (docs/design.md,
 * "The job"). Live values (waiting_ms, duration_ms) are computed against the
 * Redis clock passed in, never the local one, so every reader agrees.
 */
#ifndef JOBD_SRC_BASE_JOB_H
#define JOBD_SRC_BASE_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jobd_status {
	JOBD_PENDING,
	JOBD_IN_PROGRESS,
	JOBD_STOPPING,
	JOBD_STOPPED,
	JOBD_FINISHED,
	JOBD_CANCELED,
	JOBD_STATUS_COUNT,
};

struct jobd_children {
	int64_t total, pending, in_progress, stopping, stopped, finished,
		canceled,
		errors; /* direct children; errors = finished with errors */
};

struct jobd_job {
	int64_t id;
	char *key;    /* idempotency key, NULL if none */
	char *source; /* "jobs.records/2@1041", NULL if none */
	char *type;
	enum jobd_status status;
	bool system;
	bool low_priority;
	bool stoppable;	  /* its type's policy, copied at creation */
	bool restartable; /* the same */
	char *run_by;	  /* NULL for system jobs and when nobody is named */
	int64_t parent;	  /* 0 = root job */
	int64_t root;
	int64_t created_at; /* ms since epoch, Redis clock */
	int64_t queued_at;  /* ms: creation or last restart */
	int64_t started_at; /* ms: first start of the current run, 0 = not yet */
	int64_t finished_at; /* ms, 0 = not yet */
	int64_t run_ms;	     /* ms spent running in finished attempts */
	int64_t run_since;   /* ms: start of the running attempt, 0 = none */
	double progress;     /* 0-100 */
	double children_progress; /* sum of the children's overall progress */
	int64_t errors;		  /* this job's own error count */
	bool with_errors;	  /* finished with errors (own or a child's) */
	int64_t attempt;
	int64_t restarts;
	bool inconsistent;
	bool awaiting;	     /* handler returned, waiting for children */
	int64_t not_before;  /* ms: retry or run time, 0 = none */
	int64_t run_at;	     /* ms: the run time asked for at creation,
			     * 0 = none (docs/design.md, "Scheduled jobs") */
	char *instance;	     /* instance of the last claim, NULL if never */
	int64_t claimed_at;  /* ms: the last claim, 0 = never */
	char *created_by;    /* the actor, when not run_by (e.g. "kafka") */
	char *payload;	     /* JSON text */
	char *checkpoint;    /* JSON text, NULL if none */
	char *held_by_limit; /* pending, held back by its type's limit: which
			      * and where it stands (show only), else NULL */
	struct jobd_children children;
};

struct jobd_job_list {
	struct jobd_job **jobs; /* owned */
	size_t n;
	int64_t next; /* cursor of the next page, 0 = none */
	int64_t now;  /* ms, Redis clock when read */
	/* A list in another order than newest first (jobd_store_list with
	 * a sort): its next page's cursor, "" = none, and how much of the
	 * store the order covers. */
	bool sorted;
	char after[64];	 /* "1042" (created) or "KEY:ID:AT" */
	bool complete;	 /* false: only the newest jobs were sorted */
	size_t examined; /* index entries read for this page */
};

extern const char *const jobd_status_names[JOBD_STATUS_COUNT];

/* "in_progress" -> JOBD_IN_PROGRESS; -1 when unknown. */
int jobd_status_parse(const char *s);

/* "created", "started", ...: the orders a list of jobs can be sorted in
 * (jobd_filter.sort, GET /api/jobs?sort=). */
bool jobd_job_sort_known(const char *by);

/* "In Progress" for the table and the page. */
const char *jobd_status_label(enum jobd_status s);

/*
 * Builds a job from the field/value pairs of its hash (all borrowed).
 * Returns NULL when the fields do not make a job (no id). Caller frees
 * with jobd_job_free().
 */
struct jobd_job *jobd_job_from_fields(const char *const *names,
				      const char *const *values, size_t n);
void jobd_job_free(struct jobd_job *job);
void jobd_job_list_release(struct jobd_job_list *list);

/* Pending with its run time later than NOW (ms, Redis clock): shown
 * as Scheduled, not claimable before run_at. */
bool jobd_job_scheduled(const struct jobd_job *job, int64_t now);

/* "Scheduled" for a scheduled job, else jobd_status_label(). */
const char *jobd_job_label(const struct jobd_job *job, int64_t now);

/* From queued_at (creation, the run time of a scheduled job, or the
 * last restart) to the first start; 0 before queued_at. */
int64_t jobd_job_waiting_ms(const struct jobd_job *job, int64_t now);
int64_t jobd_job_duration_ms(const struct jobd_job *job, int64_t now);
double jobd_job_overall_progress(const struct jobd_job *job);

/* The job's JSON object (docs/design.md, "The job"); caller owns it. */
json_t *jobd_job_to_json(const struct jobd_job *job, int64_t now);

/* {"jobs": [...], "next": cursor|null}; caller owns the reference. */
json_t *jobd_job_list_to_json(const struct jobd_job_list *list);

#endif
