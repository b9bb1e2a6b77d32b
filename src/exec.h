/*
 * exec: the built-in "exec" handler (DESIGN section 6, contract; the
 * protocol is in docs/exec-protocol.md). Runs the type's command (argv,
 * never a shell) with the payload on stdin, reads commands from its stdout
 * (execproto.h), turns stderr lines into warn logs, and maps its exit
 * status to the handler's result. Stop: SIGTERM to its process group;
 * force stop, a lost lease: SIGKILL; the type's timeout: SIGTERM, then
 * SIGKILL after JOBD_EXEC_GRACE_MS.
 */
#ifndef JOBD_SRC_EXEC_H
#define JOBD_SRC_EXEC_H

#include "handler.h"

/* Exit status meaning "stopped at the last checkpoint" after a stop. */
#define JOBD_EXEC_EXIT_STOPPED 75

/* Checkpoints longer than this go to a file (JOBD_CHECKPOINT_FILE). */
#define JOBD_EXEC_CHECKPOINT_ENV_MAX 65536

/* Time between SIGTERM and SIGKILL after a timeout, ms. */
#define JOBD_EXEC_GRACE_MS 5000

/* The handler; registered as "exec". */
int jobd_exec_handler(struct jobd_ctx *ctx);

#endif
