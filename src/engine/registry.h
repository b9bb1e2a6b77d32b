/*
 * registry: handlers by name. jobd registers the built-in ones
 * (handlers/builtin.h) before its workers start; a worker looks a job's
 * handler up by the job's type, then by its type's "handler". Tests
 * register their own.
 */
#ifndef JOBD_SRC_ENGINE_REGISTRY_H
#define JOBD_SRC_ENGINE_REGISTRY_H

#include "engine/handler.h"

/* Handlers the registry holds at most. */
#define JOBD_REGISTRY_MAX 64

/*
 * Registers FN under NAME (borrowed: a string literal or one that outlives
 * jobd), replacing an earlier one. Returns 0, or -1 when the table is full.
 * Thread-safe.
 */
int jobd_handler_register(const char *name, jobd_handler_fn fn);

/* The handler registered as NAME, or NULL (also for a NULL NAME). */
jobd_handler_fn jobd_handler_find(const char *name);

#endif
