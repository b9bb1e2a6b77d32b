/*
 * scripts: the Redis function library built from src/store/lua/ by
 * build-aux/lua2c.sh: lib.lua, then every script as a function named
 * jobd_library_prefix + the script's name ("jobd_1a2b3c4d_claim"). jobd
 * and jobctl load the same library, so they judge every transition the
 * same way; loaded once (FUNCTION LOAD), its shared code is not run again
 * on every call as a script's would be.
 */
#ifndef JOBD_SRC_STORE_SCRIPTS_H
#define JOBD_SRC_STORE_SCRIPTS_H

extern const char jobd_library[];
extern const char jobd_library_prefix[];

#endif
