/*
 * scripts: the Redis Lua scripts of src/lua/, embedded at build time by
 * build-aux/lua2c.sh (lib.lua prepended to each). jobd and jobctl load
 * the same text, so they judge every transition the same way.
 */
#ifndef JOBD_SRC_SCRIPTS_H
#define JOBD_SRC_SCRIPTS_H

#include <stddef.h>

struct jobd_script {
	const char *name; /* file name without .lua, e.g. "claim" */
	const char *text; /* lib.lua + the script */
};

extern const struct jobd_script jobd_scripts[];
extern const size_t jobd_scripts_count;

#endif
