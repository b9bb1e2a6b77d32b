/*
 * store/link: one connection to Redis, for the files of src/store/ only:
 * a TCP or unix socket, in clear or through TLS (OpenSSL), speaking RESP
 * through hiredis's formatter and reader. conn.c owns the links of a
 * store; nothing else in jobd opens a socket to Redis.
 *
 * The calls block, each I/O bounded by the link's timeout, as hiredis's
 * blocking context does; any failure leaves the link unusable (the caller
 * drops it and reconnects) with the reason in store_link_errstr().
 */
#ifndef JOBD_SRC_STORE_LINK_H
#define JOBD_SRC_STORE_LINK_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/conf.h"

struct store_tls;
struct store_link;

/*
 * The TLS settings of CONF's [redis] keys (CONF borrowed for the life of
 * the result): the CA to verify the server with (tls_ca, else the
 * system's), the client certificate and key, the name to verify. Returns
 * a context for store_link_open (caller frees with store_tls_free), or
 * NULL with errstr naming the key and the file that failed.
 */
struct store_tls *store_tls_new(const struct jobd_conf *conf, char *errstr,
				size_t errstr_size);

/* Frees TLS (NULL is a no-op); its links must be gone. */
void store_tls_free(struct store_tls *tls);

/*
 * Why the PEM file PATH of [SECTION] KEY did not load, after an OpenSSL
 * call refused it: "cannot read [SECTION] KEY "PATH": WHY" when the file
 * cannot be opened, else OpenSSL's reason and that a PEM WANT
 * ("private key") is expected. Clears OpenSSL's error queue. Also the
 * monitor's (http/tls.c).
 */
void store_tls_load_error(const char *section, const char *key,
			  const char *path, const char *want, char *errstr,
			  size_t errstr_size);

/*
 * Connects to ADDR (borrowed), through TLS when ADDR says rediss:// (TLS,
 * borrowed until the link is freed, then required) with the server's
 * certificate and name verified, each I/O bounded by TIMEOUT_MS. Returns
 * the link (caller frees with store_link_free) or NULL with errstr set:
 * what failed and why, with a hint when one is known.
 */
struct store_link *store_link_open(const struct jobd_redis_address *addr,
				   struct store_tls *tls, int timeout_ms,
				   char *errstr, size_t errstr_size);

/* Closes L (NULL is a no-op): a TLS link says goodbye when it can. */
void store_link_free(struct store_link *l);

/* Each I/O of L from now on waits at most MS. */
void store_link_set_timeout(struct store_link *l, int ms);

/* Adds a command to L's output, sent by the next flush or reply. */
void store_link_append_argv(struct store_link *l, int argc, const char **argv,
			    const size_t *lens);
void store_link_vappend(struct store_link *l, const char *fmt, va_list ap);
void store_link_append(struct store_link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sends all of L's output. Returns 0 or -1 (see store_link_errstr). */
int store_link_flush(struct store_link *l);

/*
 * The next reply into *R (caller frees with freeReplyObject), sending the
 * output first. Returns 0 or -1 (*R NULL).
 */
int store_link_reply(struct store_link *l, redisReply **r);

/* Appends one command and reads its reply: the reply or NULL. */
redisReply *store_link_command(struct store_link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
redisReply *store_link_vcommand(struct store_link *l, const char *fmt,
				va_list ap);
redisReply *store_link_command_argv(struct store_link *l, int argc,
				    const char **argv, const size_t *lens);

/*
 * For a subscriber: waits up to TIMEOUT_MS for something to read, reads
 * what came, and puts the next whole reply into *R (caller frees).
 * Returns 1 with a reply, 0 with none yet, -1 when the link failed.
 * Replies already read are handed out before any waiting.
 */
int store_link_wait(struct store_link *l, int timeout_ms, redisReply **r);

/*
 * Whether L, idle (every reply read), can take a command: the server has
 * neither closed it (a node killed or restarted) nor sent anything
 * unasked. Never waits. A TLS link reads, without blocking, the records
 * a server may send on its own (TLS 1.3 session tickets after the
 * handshake); anything else makes it unusable, with the reason in
 * store_link_errstr(). For a caller that must not write a command on a
 * dead link: nothing was sent yet, so reconnecting is safe.
 */
bool store_link_alive(struct store_link *l);

/* Why the last call on L failed. */
const char *store_link_errstr(const struct store_link *l);

/* Whether L failed with an I/O or protocol error before any reply came,
 * as on a port that speaks another protocol. */
bool store_link_never_answered(const struct store_link *l);

/*
 * Whether L, in clear, failed as a client in clear of a TLS port does:
 * reset before any reply came, or answered with bytes that are no reply.
 * For the caller's hint to write rediss:// (a unix socket has no TLS:
 * the caller knows whether L is one).
 */
bool store_link_looks_tls(const struct store_link *l);

#endif
