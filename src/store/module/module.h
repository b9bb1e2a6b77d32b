/*
 * module.h: what jobd and its Redis module (docs/redis-module.md) agree
 * on. JOBD.VERSION answers jobd_library_prefix (the Lua library the
 * module mirrors) followed by JOBD_MODULE_REVISION, and a jobd uses the
 * module only when that is exactly its own: raise the revision with every
 * change of what the module writes or answers.
 */
#ifndef JOBD_SRC_STORE_MODULE_MODULE_H
#define JOBD_SRC_STORE_MODULE_MODULE_H

#define JOBD_MODULE_REVISION "r15"

#endif
