/*
 * rm: the Redis module API that src/store/module/ calls, as function
 * pointers fetched once at load (rm.h lists them). Its own file so that
 * every file of the module calls it and it calls none of them.
 */
#include "store/module/rm.h"

#define RM_DEFINE(ret, name, params) ret(*rm_##name) params;
RM_FUNCTIONS(RM_DEFINE)
#undef RM_DEFINE

int rm_init(RedisModuleCtx *ctx, const char *name, int version)
{
	int (*get)(const char *, void *) =
		(int (*)(const char *, void *))((void **)ctx)[0];

#define RM_FETCH(ret, fn, params)                               \
	if (get("RedisModule_" #fn, (void *)&rm_##fn) != RM_OK) \
		return RM_ERR;
	RM_FUNCTIONS(RM_FETCH)
#undef RM_FETCH
	if (rm_IsModuleNameBusy(name))
		return RM_ERR;
	rm_SetModuleAttribs(ctx, name, version, RM_APIVER_1);
	return RM_OK;
}
