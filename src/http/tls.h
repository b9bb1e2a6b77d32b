/*
 * http/tls: the monitor over HTTPS ([http] tls_cert and tls_key;
 * docs/security.md, "The monitor"). One OpenSSL context for the server,
 * TLS 1.2 or later only, and the libevent OpenSSL bufferevent that each
 * accepted connection gets in place of a plain one (conn.c).
 */
#ifndef JOBD_SRC_HTTP_TLS_H
#define JOBD_SRC_HTTP_TLS_H

#include <stddef.h>

struct bufferevent;
struct event_base;
struct jobd_conf;
struct ssl_ctx_st;

/*
 * The server context of CONF's [http] tls_cert and tls_key (both set).
 * Returns it (free with jobd_http_tls_free), or NULL with the reason in
 * errstr, naming the key and the file: "cannot read [http] tls_cert
 * \"/etc/jobd/cert.pem\": No such file or directory".
 */
struct ssl_ctx_st *jobd_http_tls_new(const struct jobd_conf *conf, char *errstr,
				     size_t errstr_size);

void jobd_http_tls_free(struct ssl_ctx_st *ctx);

/*
 * Loads CONF's certificate and key, if any, to check them: jobd calls it
 * at start, so that a bad one stops it instead of being retried. Returns
 * 0, or -1 with the reason in errstr (as jobd_http_tls_new()).
 */
int jobd_http_tls_check(const struct jobd_conf *conf, char *errstr,
			size_t errstr_size);

/*
 * A new server-side OpenSSL bufferevent on BASE without a socket yet
 * (evhttp sets it), freeing its SSL and socket with it; NULL when out of
 * memory. CTX is borrowed and must outlive it.
 */
struct bufferevent *jobd_http_tls_bufferevent(struct event_base *base,
					      struct ssl_ctx_st *ctx);

#endif
