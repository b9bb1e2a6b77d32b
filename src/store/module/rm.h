/*
 * rm.h: the part of the Redis module API (Redis 7.0, API version 1) that
 * jobd's module uses, declared here so that the build needs no Redis
 * sources. Redis hands a module its functions by name: rm_init() asks
 * for each one below through the lookup function Redis stores at the
 * start of the context, and fails the load if one is missing.
 *
 * The constants are those of the module API documentation
 * (https://redis.io/docs/reference/modules/modules-api-ref/).
 */
#ifndef JOBD_SRC_STORE_MODULE_RM_H
#define JOBD_SRC_STORE_MODULE_RM_H

#include <stddef.h>

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleKey RedisModuleKey;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleScanCursor RedisModuleScanCursor;
typedef struct RedisModuleCommandFilterCtx RedisModuleCommandFilterCtx;
typedef struct RedisModuleCommandFilter RedisModuleCommandFilter;
typedef struct RedisModuleUser RedisModuleUser;
typedef struct RedisModuleCallReply RedisModuleCallReply;

typedef int (*rm_cmd_fn)(RedisModuleCtx *ctx, RedisModuleString **argv,
			 int argc);
typedef void (*rm_scan_fn)(RedisModuleKey *key, RedisModuleString *field,
			   RedisModuleString *value, void *privdata);
typedef void (*rm_filter_fn)(RedisModuleCommandFilterCtx *fctx);

#define RM_OK 0
#define RM_ERR 1
#define RM_APIVER_1 1

#define RM_READ (1 << 0)
#define RM_WRITE (1 << 1)

#define RM_KEYTYPE_EMPTY 0
#define RM_KEYTYPE_STRING 1
#define RM_KEYTYPE_LIST 2
#define RM_KEYTYPE_HASH 3
#define RM_KEYTYPE_SET 4
#define RM_KEYTYPE_ZSET 5

#define RM_LIST_HEAD 0
#define RM_LIST_TAIL 1

#define RM_POSTPONED_LEN -1
#define RM_HASH_NONE 0
#define RM_HASH_DELETE ((RedisModuleString *)(long)1)
#define RM_ZADD_NX (1 << 1)
#define RM_ZADD_ADDED (1 << 2)
#define RM_ZADD_UPDATED (1 << 3)

#define RM_NOTIFY_GENERIC (1 << 2)
#define RM_NOTIFY_STRING (1 << 3)
#define RM_NOTIFY_LIST (1 << 4)
#define RM_NOTIFY_HASH (1 << 6)
#define RM_NOTIFY_ZSET (1 << 7)

/* RedisModule_GetContextFlags: the server runs in cluster mode. */
#define RM_CTX_FLAGS_CLUSTER (1 << 5)

/* Key permissions, as in key specs (REDISMODULE_CMD_KEY_*). */
#define RM_KEY_ACCESS (1 << 4)
#define RM_KEY_UPDATE (1 << 5)
#define RM_KEY_INSERT (1 << 6)
#define RM_KEY_DELETE (1 << 7)

/* X(return type, name, parameter list): RedisModule_NAME in Redis. */
#define RM_FUNCTIONS(X)                                                        \
	X(void, SetModuleAttribs, (RedisModuleCtx *, const char *, int, int))  \
	X(int, IsModuleNameBusy, (const char *))                               \
	X(int, CreateCommand,                                                  \
	  (RedisModuleCtx *, const char *, rm_cmd_fn, const char *, int, int,  \
	   int))                                                               \
	X(int, WrongArity, (RedisModuleCtx *))                                 \
	X(int, ReplyWithArray, (RedisModuleCtx *, long))                       \
	X(void, ReplySetArrayLength, (RedisModuleCtx *, long))                 \
	X(int, ReplyWithLongLong, (RedisModuleCtx *, long long))               \
	X(int, ReplyWithError, (RedisModuleCtx *, const char *))               \
	X(int, ReplyWithSimpleString, (RedisModuleCtx *, const char *))        \
	X(int, ReplyWithStringBuffer,                                          \
	  (RedisModuleCtx *, const char *, size_t))                            \
	X(const char *, StringPtrLen, (const RedisModuleString *, size_t *))   \
	X(int, StringToLongLong, (const RedisModuleString *, long long *))     \
	X(int, StringToDouble, (const RedisModuleString *, double *))          \
	X(RedisModuleString *, CreateString,                                   \
	  (RedisModuleCtx *, const char *, size_t))                            \
	X(RedisModuleString *, CreateStringFromLongLong,                       \
	  (RedisModuleCtx *, long long))                                       \
	X(RedisModuleString *, HoldString,                                     \
	  (RedisModuleCtx *, RedisModuleString *))                             \
	X(void, FreeString, (RedisModuleCtx *, RedisModuleString *))           \
	X(RedisModuleKey *, OpenKey,                                           \
	  (RedisModuleCtx *, RedisModuleString *, int))                        \
	X(void, CloseKey, (RedisModuleKey *))                                  \
	X(int, KeyType, (RedisModuleKey *))                                    \
	X(size_t, ValueLength, (RedisModuleKey *))                             \
	X(int, HashGet, (RedisModuleKey *, int, ...))                          \
	X(int, HashSet, (RedisModuleKey *, int, ...))                          \
	X(int, ListPush, (RedisModuleKey *, int, RedisModuleString *))         \
	X(RedisModuleString *, ListPop, (RedisModuleKey *, int))               \
	X(RedisModuleString *, ListGet, (RedisModuleKey *, long))              \
	X(int, ZsetAdd,                                                        \
	  (RedisModuleKey *, double, RedisModuleString *, int *))              \
	X(int, ZsetRem, (RedisModuleKey *, RedisModuleString *, int *))        \
	X(int, ZsetScore, (RedisModuleKey *, RedisModuleString *, double *))   \
	X(int, ZsetFirstInScoreRange,                                          \
	  (RedisModuleKey *, double, double, int, int))                        \
	X(RedisModuleString *, ZsetRangeCurrentElement,                        \
	  (RedisModuleKey *, double *))                                        \
	X(int, ZsetRangeNext, (RedisModuleKey *))                              \
	X(void, ZsetRangeStop, (RedisModuleKey *))                             \
	X(int, ZsetRangeEndReached, (RedisModuleKey *))                        \
	X(int, StringSet, (RedisModuleKey *, RedisModuleString *))             \
	X(char *, StringDMA, (RedisModuleKey *, size_t *, int))                \
	X(int, SetAbsExpire, (RedisModuleKey *, long long))                    \
	X(long long, GetAbsExpire, (RedisModuleKey *))                         \
	X(int, Replicate, (RedisModuleCtx *, const char *, const char *, ...)) \
	X(RedisModuleCallReply *, Call,                                        \
	  (RedisModuleCtx *, const char *, const char *, ...))                 \
	X(long long, CallReplyInteger, (RedisModuleCallReply *))               \
	X(void, FreeCallReply, (RedisModuleCallReply *))                       \
	X(long long, Milliseconds, (void))                                     \
	X(int, GetContextFlags, (RedisModuleCtx *))                            \
	X(RedisModuleScanCursor *, ScanCursorCreate, (void))                   \
	X(void, ScanCursorDestroy, (RedisModuleScanCursor *))                  \
	X(int, ScanKey,                                                        \
	  (RedisModuleKey *, RedisModuleScanCursor *, rm_scan_fn, void *))     \
	X(int, PublishMessage,                                                 \
	  (RedisModuleCtx *, RedisModuleString *, RedisModuleString *))        \
	X(int, PublishMessageShard,                                            \
	  (RedisModuleCtx *, RedisModuleString *, RedisModuleString *))        \
	X(int, NotifyKeyspaceEvent,                                            \
	  (RedisModuleCtx *, int, const char *, RedisModuleString *))          \
	X(RedisModuleCommandFilter *, RegisterCommandFilter,                   \
	  (RedisModuleCtx *, rm_filter_fn, int))                               \
	X(int, CommandFilterArgsCount, (RedisModuleCommandFilterCtx *))        \
	X(RedisModuleString *, CommandFilterArgGet,                            \
	  (RedisModuleCommandFilterCtx *, int))                                \
	X(int, CommandFilterArgReplace,                                        \
	  (RedisModuleCommandFilterCtx *, int, RedisModuleString *))           \
	X(void, Log, (RedisModuleCtx *, const char *, const char *, ...))      \
	X(RedisModuleString *, GetCurrentUserName, (RedisModuleCtx *))         \
	X(RedisModuleUser *, GetModuleUserFromUserName, (RedisModuleString *)) \
	X(int, ACLCheckKeyPermissions,                                         \
	  (RedisModuleUser *, RedisModuleString *, int))                       \
	X(int, FreeModuleUser, (RedisModuleUser *))                            \
	X(int, ACLCheckCommandPermissions,                                     \
	  (RedisModuleUser *, RedisModuleString **, int))                      \
	X(void *, Alloc, (size_t))                                             \
	X(void *, Realloc, (void *, size_t))                                   \
	X(void, Free, (void *))

#define RM_DECLARE(ret, name, params) extern ret(*rm_##name) params;
RM_FUNCTIONS(RM_DECLARE)
#undef RM_DECLARE

/* Fetches every function above and registers module NAME. */
int rm_init(RedisModuleCtx *ctx, const char *name, int version);

#endif
