/*
 * handlers: registers the built-in record and event handlers (handlers.h)
 * under their type names, so the worker finds them for the built-in types
 * of the conf and for [type.NAME] sections naming them as "handler".
 */
#include "config.h"

#include "handlers/handlers.h"

void jobd_handlers_register_builtin(void)
{
	static const struct {
		const char *name;
		jobd_handler_fn fn;
	} all[] = {
		{ "import", jobd_handler_import },
		{ "export", jobd_handler_export },
		{ "event", jobd_handler_event },
		{ "action", jobd_handler_action },
		{ "refactor", jobd_handler_refactor },
		{ "relationship-update", jobd_handler_relationship_update },
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		jobd_handler_register(all[i].name, all[i].fn);
}
