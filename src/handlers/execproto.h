/*
 * execproto: the line protocol an exec handler speaks on stdout
 * (docs/exec-protocol.md, the contract). One line in, one command out; no I/O
 * here. The caller reads lines, hands each (without its newline) to
 * jobd_execproto_parse() and acts on the command; an INVALID line becomes a
 * warn log with the reason as text.
 *
 *	progress P                 P in 0-100, may be fractional (1e-05 too)
 *	progress DONE/TOTAL        integers, TOTAL > 0, DONE <= TOTAL
 *	log LEVEL TEXT             LEVEL: debug, info, warn, error
 *	error TEXT                 counts as an error, logged at level error
 *	checkpoint JSON            any JSON value
 *	child TYPE KEY [WHEN] JSON TYPE, KEY: words; JSON: an object;
 *	                           WHEN: at=MS (ms since the epoch) or
 *	                           delay=MS (after its creation)
 *
 * Words are separated by spaces or tabs; TEXT and JSON are the rest of the
 * line after the separator. A trailing CR is dropped. Commands are lower
 * case. Numbers are read with strtod(): jobd runs in the C locale.
 */
#ifndef JOBD_SRC_HANDLERS_EXECPROTO_H
#define JOBD_SRC_HANDLERS_EXECPROTO_H

#include <stddef.h>

/* Longest line accepted, in bytes, without newline and CR. */
#define JOBD_EXEC_LINE_MAX 65536

/* Largest at= or delay= of a child line, in ms (some 31,000 years: far
 * inside what a double, Redis's and Lua's number, holds exactly). */
#define JOBD_EXEC_RUN_TIME_MAX 1000000000000000LL

enum jobd_exec_cmd {
	JOBD_EXEC_PROGRESS,
	JOBD_EXEC_LOG,
	JOBD_EXEC_ERROR,
	JOBD_EXEC_CHECKPOINT,
	JOBD_EXEC_CHILD,
	JOBD_EXEC_INVALID,
};

/* One parsed line. Strings are NUL-terminated valid UTF-8, owned by the
 * struct: release with jobd_execproto_line_release(). Unused ones are NULL. */
struct jobd_exec_line {
	enum jobd_exec_cmd cmd; /* what the line asks for */
	double progress;	/* PROGRESS: percent done, 0-100 */
	int level; /* LOG: enum jobd_log_level (0 debug .. 3 error); ERROR: JOBD_LOG_ERROR */
	char *text; /* LOG, ERROR: the text; INVALID: the reason (NULL if out of memory) */
	char *json; /* CHECKPOINT: the value; CHILD: the payload object; compact JSON */
	char *child_type; /* CHILD: the child's job type */
	char *child_key;  /* CHILD: its idempotency key within the parent */
	long long child_run_at; /* CHILD: ms since the epoch, 0 = now */
	long long child_delay;	/* CHILD: ms after its creation, 0 = now */
};

/*
 * Parses LINE of LEN bytes (borrowed for the call; need not be
 * NUL-terminated) into OUT, which is overwritten and always filled.
 * Returns 0 for a command; -EINVAL for an INVALID line (unknown command,
 * bad argument, over JOBD_EXEC_LINE_MAX, invalid UTF-8 or a NUL byte),
 * the reason in OUT->text, e.g. `unknown command "foo"`; -ENOMEM with
 * OUT->cmd INVALID.
 */
int jobd_execproto_parse(const char *line, size_t len,
			 struct jobd_exec_line *out);

/* Frees what L owns and zeroes it (cmd becomes 0). L itself is the caller's. */
void jobd_execproto_line_release(struct jobd_exec_line *l);

#endif
