/*
 * http_int: for the files of the monitor's server only (server.c,
 * metrics.c, reply.c): the server, a request, and how to answer it.
 */
#ifndef JOBD_SRC_HTTP_HTTP_INT_H
#define JOBD_SRC_HTTP_HTTP_INT_H

#include <event2/http.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/worker.h"
#include "http/conn.h"
#include "http/parse.h"
#include "kafka/consumer.h"
#include "store/store.h"

#define STORE_TIMEOUT 3000 /* ms per Redis call */

/* Status codes counted for jobd_http_requests_total; the last (0) is
 * "other". */
#define HTTP_COUNTED_CODES \
	200, 201, 304, 400, 401, 403, 404, 405, 409, 413, 414, 421, 500, 503, 0
#define HTTP_NCODES (sizeof((int[]){ HTTP_COUNTED_CODES }) / sizeof(int))
extern const int http_counted_codes[HTTP_NCODES];

struct jobd_http {
	const struct jobd_conf *conf; /* borrowed */
	struct event_base *base;
	struct evhttp *http;
	struct event *wake; /* reads stop_pipe[0] */
	int stop_pipe[2];   /* a byte written = stop the loop */
	pthread_t thread;
	struct jobd_store *st;	     /* NULL until Redis answers */
	struct jobd_httpconn *conns; /* limit and deadlines */
	struct ssl_ctx_st *tls;	     /* [http] tls_cert; NULL = plain HTTP */
	char **hosts; /* names for the Host header besides addresses and
		       * localhost, NULL-terminated */
	char address[INET6_ADDRSTRLEN + 8]; /* bound address, "host:port" */
	uint64_t requests[HTTP_NCODES];	    /* answers per status code */
	pthread_mutex_t sources_mu;
	struct jobd_workers *workers;	/* borrowed, NULL without role work */
	struct jobd_consumer *consumer; /* borrowed, NULL without role consume */
};

/* One request being answered. */
struct req {
	struct jobd_http *h;
	struct evhttp_request *r;
	char *path;			/* decoded path, owned */
	struct jobd_httpparse_query qs; /* decoded parameters */
	const char *actor; /* who operates: user name, "admin", "http" */
	char actor_buf[80];
	bool counted; /* already in h->requests */
};

/* reply.c: answers. */
const char *http_reason(int code);

void http_count(struct jobd_http *h, int code);

/* Sends CODE with BUF (taken) as the body of type CTYPE. */
void http_send_buf(struct req *q, int code, const char *ctype,
		   struct evbuffer *buf);

/* Sends J (taken) as JSON. */
void http_send_json(struct req *q, int code, json_t *j);

void http_send_error(struct req *q, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answers a refusal of httpparse (RC < 0, the reason in ERR): TOO_BIG
 * is the code for a request too large. */
void http_refuse(struct req *q, int rc, const char *err, int too_big);

/* For the paths that take no parameters. */
bool http_no_params(struct req *q);

/* GET /metrics (metrics.c). */
void http_get_metrics(struct req *q);

#endif
