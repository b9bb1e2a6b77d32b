/*
 * http: the monitor (role http, docs/monitor.md). The App Monitor "Jobs"
 * page at "/" (embedded in the binary, see page.h) and a JSON API at
 * /api/... with the shapes of `jobctl --json`, plus Prometheus text at
 * /metrics. docs/monitor.md lists every endpoint.
 *
 * One thread runs a libevent evhttp loop with its own store connection;
 * requests are served one at a time, each doing a few bounded store calls.
 */
#ifndef JOBD_SRC_HTTP_SERVER_H
#define JOBD_SRC_HTTP_SERVER_H

#include <stddef.h>

#include "base/conf.h"

struct jobd_http;

/*
 * Listens on conf->http_listen ("HOST:PORT", "[V6]:PORT" or ":PORT";
 * port 0 picks a free one) and starts the server thread. CONF is borrowed
 * and must outlive the server. Redis being down is not an error here: the
 * API answers 503 until it is back. Returns NULL with the reason in
 * errstr ("cannot listen on 127.0.0.1:8080: Address already in use").
 */
struct jobd_http *jobd_http_start(const struct jobd_conf *conf, char *errstr,
				  size_t errstr_size);

/*
 * Checks that the descriptor limit (RLIMIT_NOFILE now) leaves room for
 * the monitor's connections (see jobd_httpconn_limit()): jobd calls it at
 * start, so a bad [http] max_connections stops it instead of being
 * retried. Returns the connection limit, or -1 with the reason in errstr.
 */
int jobd_http_connection_limit(const struct jobd_conf *conf, char *errstr,
			       size_t errstr_size);

/*
 * The address actually bound, "127.0.0.1:41234" (borrowed from H until
 * jobd_http_stop).
 */
const char *jobd_http_address(const struct jobd_http *h);

/*
 * Stops the server from any thread other than its own: the loop finishes
 * the request in hand, the thread is joined, everything is freed.
 * jobd_http_stop(NULL) is a no-op.
 */
void jobd_http_stop(struct jobd_http *h);

struct jobd_workers;
struct jobd_consumer;

/*
 * This instance's worker pool and consumer (either may be NULL), whose
 * counters /metrics adds. Borrowed: call with NULLs before stopping them.
 */
void jobd_http_set_sources(struct jobd_http *h, struct jobd_workers *w,
			   struct jobd_consumer *c);

#endif
