/*
 * handlers/builtin: registers the handlers of builtin.h with the engine.
 */
#include "config.h"

#include <stdbool.h>

#include "engine/registry.h"
#include "handlers/builtin.h"

void jobd_handlers_register_builtin(void)
{
#define REGISTER(name, fn, stoppable, restartable, system) \
	jobd_handler_register(name, fn);
	JOBD_BUILTIN_HANDLERS(REGISTER)
#undef REGISTER
}
