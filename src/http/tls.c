/*
 * http/tls: see tls.h. Each connection's SSL is made from the one context
 * and handed to bufferevent_openssl_socket_new() in the accepting state;
 * evhttp then reads and writes through it as through a plain bufferevent,
 * so the server and its limits (conn.c) do not change.
 *
 * TLS 1.2 is the floor: 1.0 and 1.1 are deprecated (RFC 8996) and every
 * browser and curl of Debian 12 speaks 1.3. The cipher lists stay
 * OpenSSL's defaults, which Debian keeps current. Rejected: a TLS proxy in
 * front (stunnel, nginx), still a good deployment, because a monitor that
 * holds a token should not need one to be safe on a network.
 */
#include "config.h"

#include "http/tls.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "base/conf.h"
#include "store/link.h"

struct ssl_ctx_st *jobd_http_tls_new(const struct jobd_conf *conf, char *errstr,
				     size_t errstr_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		snprintf(errstr, errstr_size,
			 "cannot set up TLS: out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->http_tls_cert) != 1) {
		store_tls_load_error("http", "tls_cert", conf->http_tls_cert,
				     "certificate (chain)", errstr,
				     errstr_size);
		goto err_free_ctx;
	}
	ERR_clear_error();
	if (SSL_CTX_use_PrivateKey_file(ctx, conf->http_tls_key,
					SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH) {
		store_tls_load_error("http", "tls_key", conf->http_tls_key,
				     "private key", errstr, errstr_size);
		goto err_free_ctx;
	}
	if (ERR_peek_error() || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(errstr, errstr_size,
			 "[http] tls_key \"%s\" is not the key of tls_cert "
			 "\"%s\": give the key the certificate was made for",
			 conf->http_tls_key, conf->http_tls_cert);
		ERR_clear_error();
		goto err_free_ctx;
	}
	return ctx;

err_free_ctx:
	SSL_CTX_free(ctx);
	return NULL;
}

void jobd_http_tls_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

int jobd_http_tls_check(const struct jobd_conf *conf, char *errstr,
			size_t errstr_size)
{
	SSL_CTX *ctx;

	if (!conf->http_tls_cert)
		return 0;
	if (!(ctx = jobd_http_tls_new(conf, errstr, errstr_size)))
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

struct bufferevent *jobd_http_tls_bufferevent(struct event_base *base,
					      struct ssl_ctx_st *ctx)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		return NULL;
	/* On failure libevent frees nothing: SSL stays ours to free. */
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
		BEV_OPT_CLOSE_ON_FREE);

	if (!bev)
		SSL_free(ssl);
	return bev;
}
