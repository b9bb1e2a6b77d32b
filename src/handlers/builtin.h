/*
 * handlers/builtin: the one list of jobd's built-in handlers.
 *
 * Each handler is also a built-in job type of the same name, with the
 * policy given here; a [type.NAME] section overrides it, and a type of
 * the conf names one of these as its "handler" (docs/job-types.md).
 * src/base/conf.c reads the names and policies (it needs no handler code),
 * jobd.c registers the functions with the engine's registry
 * (engine/registry.h) before the workers start, and the workers only
 * look them up.
 *
 * Adding a handler: write src/handlers/NAME.c defining
 * int jobd_handler_NAME(struct jobd_ctx *ctx) against engine/handler.h,
 * add one line below and the file to Makefile.am.
 */
#ifndef JOBD_SRC_HANDLERS_BUILTIN_H
#define JOBD_SRC_HANDLERS_BUILTIN_H

/* X(name, function, stoppable, restartable, system) */
#define JOBD_BUILTIN_HANDLERS(X)                                          \
	X("noop", jobd_handler_noop, true, false, false)                  \
	X("exec", jobd_handler_exec, true, false, false)                  \
	X("import", jobd_handler_import, true, true, false)               \
	X("export", jobd_handler_export, true, true, false)               \
	X("event", jobd_handler_event, true, false, false)                \
	X("action", jobd_handler_action, true, false, false)              \
	X("refactor", jobd_handler_refactor, true, false, true)           \
	X("relationship-update", jobd_handler_relationship_update, false, \
	  false, true)                                                    \
	X("cleanup", jobd_handler_cleanup, false, false, true)

struct jobd_ctx;

#define JOBD_BUILTIN_DECLARE(name, fn, stoppable, restartable, system) \
	int fn(struct jobd_ctx *ctx);
JOBD_BUILTIN_HANDLERS(JOBD_BUILTIN_DECLARE)
#undef JOBD_BUILTIN_DECLARE

/*
 * Registers every handler above under its name with
 * jobd_handler_register(). jobd calls it once before the worker pool
 * starts (so do tests that start one); calling again is harmless.
 */
void jobd_handlers_register_builtin(void);

#endif
