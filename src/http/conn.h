/*
 * httpconn: the monitor's connections, counted and bounded (issue 17).
 * evhttp in libevent 2.1 has no connection limit, its timeout restarts with
 * every byte (a client trickling a header line every few seconds holds a
 * connection for ever), and its listener retries at once, for ever, when
 * accept() fails for want of descriptors. This module gives each
 * connection a deadline for its request, keeps at most a limit of them,
 * and pauses accepting after an error; see conn.c for how.
 *
 * Everything here runs in the monitor's thread, the one running the event
 * loop; jobd_httpconn_limit() excepted, which any thread may call.
 */
#ifndef JOBD_SRC_HTTP_CONN_H
#define JOBD_SRC_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "base/conf.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct jobd_httpconn;
struct ssl_ctx_st;

/* Connections when [http] max_connections is 0, if descriptors allow. */
#define JOBD_HTTPCONN_DEFAULT_MAX 256

/*
 * The connection limit for CONF when the process may open NOFILE
 * descriptors (RLIMIT_NOFILE's soft limit): [http] max_connections, or
 * when that is 0, JOBD_HTTPCONN_DEFAULT_MAX or what NOFILE leaves, if less.
 * NOFILE must leave room for the workers (each has a Redis connection and,
 * running a command, three pipes and a pidfd) and for Redis and Kafka
 * connections. Returns the limit (at least 4), or -1 with the reason in
 * errstr: "[http] max_connections 900 is more than ulimit -n 1024 leaves
 * ...".
 */
int jobd_httpconn_limit(const struct jobd_conf *conf, long nofile, char *errstr,
			size_t errstr_size);

/*
 * Takes charge of the connections that HTTP (running on BASE) accepts on
 * BOUND: at most MAX open at once, each with TIMEOUT_MS to send a request.
 * BASE, HTTP and BOUND are borrowed and must outlive the result; call
 * before the loop runs, and jobd_httpconn_attach() from the loop's
 * thread. Returns NULL when out of memory.
 */
struct jobd_httpconn *jobd_httpconn_new(struct event_base *base,
					struct evhttp *http,
					struct evhttp_bound_socket *bound,
					int max, int64_t timeout_ms);

/*
 * Makes HC the one the listener's error callback serves: call from the
 * thread that runs the loop, before it runs (libevent passes that callback
 * evhttp's argument, not ours, so it finds HC through the thread).
 */
void jobd_httpconn_attach(struct jobd_httpconn *hc);

/*
 * Serves every connection accepted from now on over TLS with CTX
 * (borrowed; it must outlive HC), made by jobd_http_tls_new().
 */
void jobd_httpconn_set_tls(struct jobd_httpconn *hc, struct ssl_ctx_st *ctx);

/*
 * A whole request reached the handler on EVCON (borrowed; NULL is
 * ignored): its deadline stops while the handler runs, which answers
 * without yielding to the loop.
 */
void jobd_httpconn_request_begin(struct jobd_httpconn *hc,
				 struct evhttp_connection *evcon);

/*
 * The answer on EVCON is queued: the deadline starts again, for sending
 * the answer and the next request. Take EVCON before answering: the
 * request may be freed by evhttp_send_reply().
 */
void jobd_httpconn_request_end(struct jobd_httpconn *hc,
			       struct evhttp_connection *evcon);

/* What /metrics shows. */
struct jobd_httpconn_stats {
	int open;		  /* connections now, closing ones included */
	int max;		  /* the limit */
	uint64_t deadline_closed; /* closed at their deadline */
	uint64_t limit_closed;	  /* closed to make room for a new one */
	uint64_t accept_errors;	  /* accept() failures (EMFILE, ...) */
};

void jobd_httpconn_stats(const struct jobd_httpconn *hc,
			 struct jobd_httpconn_stats *out);

/*
 * Frees HC after evhttp_free() (which closes the connections) and before
 * event_base_free(). jobd_httpconn_free(NULL) is a no-op.
 */
void jobd_httpconn_free(struct jobd_httpconn *hc);

#endif
