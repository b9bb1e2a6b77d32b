/*
 * exec: the built-in "exec" handler (the contract is docs/exec-protocol.md).
 * Runs the type's command (argv, never a shell) with the payload on stdin,
 * reads commands from its stdout (execproto.h), turns stderr lines into warn
 * logs, and maps its exit status to the handler's result. Stop: SIGTERM to its
 * process group; force stop, a lost lease: SIGKILL to its whole tree
 * (reaper.h); the type's timeout: SIGTERM, then SIGKILL after
 * JOBD_EXEC_GRACE_MS.
 */
#ifndef JOBD_SRC_HANDLERS_EXEC_H
#define JOBD_SRC_HANDLERS_EXEC_H

#include "engine/handler.h"

/* Exit status meaning "stopped at the last checkpoint" after a stop. */
#define JOBD_EXEC_EXIT_STOPPED 75

/* Checkpoints longer than this go to a file (JOBD_CHECKPOINT_FILE). */
#define JOBD_EXEC_CHECKPOINT_ENV_MAX 65536

/* Time between SIGTERM and SIGKILL after a timeout, ms. */
#define JOBD_EXEC_GRACE_MS 5000

/* Handles a stdout line the exec protocol does not know; true = handled. */
typedef bool (*jobd_exec_line_fn)(void *arg, const char *line, size_t len);

struct jobd_exec_spec {
	char *const *argv; /* command, borrowed; argv[0] via PATH */
	const char *input; /* stdin bytes, borrowed */
	size_t input_len;
	const char *const *env;	     /* extra "NAME=value" strings, or NULL */
	const char *checkpoint;	     /* JOBD_CHECKPOINT for it, NULL = "" */
	bool keep_checkpoints;	     /* its checkpoint lines become the job's */
	double progress_base;	     /* its progress P maps to */
	double progress_span;	     /* base + span * P / 100 */
	const char *child_prefix;    /* prefixed to its child keys, or NULL */
	jobd_exec_line_fn line_hook; /* first look at each stdout line */
	void *line_arg;
	int64_t timeout_ms; /* 0 = none */
};

enum jobd_exec_result {
	JOBD_EXEC_OK,	   /* exit 0 */
	JOBD_EXEC_STOPPED, /* exit 75 after a stop, or abandoned */
	JOBD_EXEC_FAILED,  /* anything else: WHY says what */
};

/*
 * Runs RUN's command for the job with the exec protocol
 * (docs/exec-protocol.md): stdout lines are progress, log, error,
 * checkpoint and child commands, stderr lines warn logs. A stop delivered
 * to the job sends SIGTERM to its process group (inside an uninterruptible
 * section no stop is delivered, so the command runs to its end); an
 * abandoned attempt or the timeout kills its whole tree. Nothing the
 * command starts outlives it or jobd (reaper.h). WHY (may be NULL) gets
 * the reason of a failure.
 */
enum jobd_exec_result jobd_exec_run(struct jobd_ctx *ctx,
				    const struct jobd_exec_spec *run, char *why,
				    size_t why_size);

#endif
