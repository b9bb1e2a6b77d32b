/*
 * httpconn: the monitor's connections, counted, bounded and given a
 * deadline (see conn.h for the contract).
 *
 * Data flow: evhttp accepts a socket and asks our bevcb for its
 * bufferevent; we make the one it would have made, count the connection,
 * arm its deadline and hold a reference until the loop's next turn, when
 * the connection exists: we then read it back (the bufferevent's callback
 * argument is evhttp's connection) and register a close callback, which
 * evhttp calls whenever and however it frees the connection. So the count
 * is exact, idle connections that never send a byte included.
 *
 * Deadline: from connecting, or from queueing the answer to the previous
 * request, a connection has request_timeout to deliver a whole request
 * (headers and body). server.c stops the clock when a request reaches the
 * handler and starts it again when the answer is queued; bytes arriving
 * do not move it, so trickling cannot extend it. At the deadline the
 * connection is freed.
 *
 * Limit: at most max connections are open. The one that reaches the
 * limit frees the connection whose deadline is oldest (the one waiting
 * longest for its request), and while at the limit accepting pauses for
 * a turn of the loop after each connection, so a client that connected
 * and sent its request is read before more connections can push it out.
 * Pausing alone would not do: a new client would wait in the kernel's
 * backlog behind idle connections until their deadlines.
 *
 * Accept errors: after EMFILE, ENFILE or ENOBUFS accepting pauses for a
 * second rather than retrying at once (libevent's listener is level
 * triggered: it would spin, logging a line per try). Warnings are written
 * at most every 10 s, with the count of the ones held back.
 *
 * Rejected: evhttp_set_max_connections and the newreqcb (libevent 2.2
 * only); a filter bufferevent to learn of the free (evhttp then believes
 * an answer sent once it is in the filter, and closes a "Connection:
 * close" connection before the socket has written it); counting in the
 * request callback (idle connections would not be seen); shutdown() at the
 * deadline (evhttp frees the connection only when it next reads or writes
 * it); a listener of our own (evhttp 2.1 cannot adopt a socket).
 */
#include "config.h"

#include "http/conn.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "base/log.h"
#include "http/tls.h"

/* Descriptors kept for the rest of jobd: stdio, its log, the signalfd,
 * the loop, the stop pipe, the listener, Redis connections of main,
 * consumer, stats, dispatcher and monitor. */
#define RESERVE_BASE 64
/* Per worker: its Redis connection; running a command, four pipes (eight
 * ends while it starts: stdin, stdout, stderr, the reaper's life pipe)
 * and a pidfd; an import's or export's file. */
#define RESERVE_PER_WORKER 12
/* librdkafka's sockets and wake-up pipes, the embedded broker's peers. */
#define RESERVE_KAFKA 32
/* Per worker when jobs may use topics ([topics] allowed): the producer
 * of an import's topic sink or the reader of an export's topic source. */
#define RESERVE_KAFKA_PER_WORKER 8
#define MIN_CONNECTIONS 4    /* below this the limit is an error */
#define ACCEPT_PAUSE_MS 1000 /* after an accept error */
#define WARN_EVERY_MS 10000  /* at most one warning line of a kind */

struct conn {
	struct jobd_httpconn *hc; /* owner */
	struct bufferevent *bev;  /* evhttp's; a reference held until adopted */
	struct evhttp_connection *evcon; /* evhttp's; NULL until adopted */
	struct event *deadline;		 /* pending while a request is due */
	TAILQ_ENTRY(conn) link;		 /* in hc->conns */
	TAILQ_ENTRY(conn) fresh_link;	 /* in hc->fresh until adopted */
};

TAILQ_HEAD(conn_list, conn);

/* One kind of warning: at most one line per WARN_EVERY_MS. */
struct ratelog {
	int64_t last_ms;    /* monotonic ms of the last line, 0 = none yet */
	unsigned long held; /* occurrences since, not written */
};

struct jobd_httpconn {
	struct event_base *base;       /* borrowed */
	struct evconnlistener *lev;    /* borrowed from evhttp's socket */
	int max;		       /* connections at once */
	const struct timeval *timeout; /* request_timeout, a common timeout */
	struct event *adopt;	       /* active after a connection is made */
	struct event *resume;	       /* timer: accept again */
	struct conn_list conns;	       /* open, oldest deadline first */
	struct conn_list fresh;	       /* made, not adopted yet */
	int open;		       /* connections in conns */
	bool paused;		       /* accepting paused until resume */
	bool accepting;		       /* the listener is enabled */
	struct ratelog accept_log;     /* accept errors */
	struct ratelog limit_log;      /* connections freed at the limit */
	uint64_t deadline_closed;      /* connections freed at deadline */
	uint64_t limit_closed;	       /* connections freed at the limit */
	uint64_t accept_errors;	       /* accept() failures */
	struct ssl_ctx_st *tls;	       /* borrowed; NULL = plain HTTP */
};

/* The instance whose loop runs in this thread, for on_accept_error(). */
static _Thread_local struct jobd_httpconn *attached;

int jobd_httpconn_limit(const struct jobd_conf *conf, long nofile, char *errstr,
			size_t errstr_size)
{
	long reserve = RESERVE_BASE, left;

	if (conf->role_work)
		reserve +=
			(long)conf->workers *
			(RESERVE_PER_WORKER +
			 (conf->topics_allowed ? RESERVE_KAFKA_PER_WORKER : 0));
	if (conf->role_consume || conf->role_stats)
		reserve += RESERVE_KAFKA;
	left = nofile - reserve;
	if (conf->http_max_connections > 0) {
		if (conf->http_max_connections <= left)
			return conf->http_max_connections;
		snprintf(
			errstr, errstr_size,
			"[http] max_connections %d is more than the descriptor "
			"limit leaves: ulimit -n %ld minus %ld for workers, "
			"Redis and Kafka leaves %ld; lower it, or raise the "
			"limit",
			conf->http_max_connections, nofile, reserve,
			left > 0 ? left : 0);
		return -1;
	}
	if (left < MIN_CONNECTIONS) {
		snprintf(
			errstr, errstr_size,
			"descriptor limit too low for the monitor: ulimit -n "
			"%ld minus %ld for workers, Redis and Kafka leaves %ld "
			"connections, fewer than %d; raise the limit or lower "
			"[engine] workers",
			nofile, reserve, left > 0 ? left : 0, MIN_CONNECTIONS);
		return -1;
	}
	return left < JOBD_HTTPCONN_DEFAULT_MAX ? (int)left :
						  JOBD_HTTPCONN_DEFAULT_MAX;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * True when a line may be written now; SUFFIX (of SIZE) then says how many
 * were held back since the last ("" when none).
 */
static bool ratelog_due(struct ratelog *rl, char *suffix, size_t size)
{
	int64_t now = mono_ms();

	if (rl->last_ms && now - rl->last_ms < WARN_EVERY_MS) {
		rl->held++;
		return false;
	}
	rl->last_ms = now;
	suffix[0] = '\0';
	if (rl->held)
		snprintf(suffix, size, " (and %lu more times since)", rl->held);
	rl->held = 0;
	return true;
}

static void update_listener(struct jobd_httpconn *hc)
{
	bool want = !hc->paused && hc->open < hc->max;

	if (want == hc->accepting)
		return;
	hc->accepting = want;
	if (want)
		evconnlistener_enable(hc->lev);
	else
		evconnlistener_disable(hc->lev);
}

/* Stops accepting for MS (0: until the loop's next turn). */
static void pause_accept(struct jobd_httpconn *hc, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	hc->paused = true;
	update_listener(hc);
	event_add(hc->resume, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct jobd_httpconn *hc = arg;

	(void)fd;
	(void)what;
	hc->paused = false;
	update_listener(hc);
}

/* Forgets C, which evhttp has freed or never made. */
static void drop(struct conn *c)
{
	struct jobd_httpconn *hc = c->hc;

	TAILQ_REMOVE(&hc->conns, c, link);
	hc->open--;
	event_free(c->deadline);
	free(c);
	update_listener(hc);
}

/* evhttp frees the connection: called once, whatever the reason. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	drop(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->evcon) {
		/* Not adopted yet (only with a deadline of a few ms): soon. */
		event_add(c->deadline, c->hc->timeout);
		return;
	}
	c->hc->deadline_closed++;
	evhttp_connection_free(c->evcon); /* on_close() frees C */
}

/* (Re)starts C's deadline; C goes last in the order of deadlines. */
static void arm(struct conn *c)
{
	struct jobd_httpconn *hc = c->hc;

	TAILQ_REMOVE(&hc->conns, c, link);
	TAILQ_INSERT_TAIL(&hc->conns, c, link);
	event_add(c->deadline, hc->timeout);
}

/* Frees the adopted connection with the oldest deadline, if any. */
static void free_oldest(struct jobd_httpconn *hc)
{
	char more[64];
	struct conn *c;

	TAILQ_FOREACH(c, &hc->conns, link)
	{
		if (!c->evcon)
			continue;
		hc->limit_closed++;
		if (ratelog_due(&hc->limit_log, more, sizeof(more)))
			jobd_warn(
				"http: %d connections open, the limit ([http] max_connections): closing the one waiting longest for a request%s",
				hc->open, more);
		evhttp_connection_free(c->evcon); /* on_close() frees C */
		return;
	}
}

/*
 * evhttp's bevcb: the bufferevent for a new connection, the one evhttp
 * would make itself (its fd is set by evhttp right after).
 */
static struct bufferevent *on_connect(struct event_base *base, void *arg)
{
	struct jobd_httpconn *hc = arg;
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL; /* evhttp makes one, uncounted: out of memory */
	c->hc = hc;
	c->bev = hc->tls ? jobd_http_tls_bufferevent(base, hc->tls) :
			   bufferevent_socket_new(base, -1,
						  BEV_OPT_CLOSE_ON_FREE);
	c->deadline = event_new(base, -1, 0, on_deadline, c);
	if (!c->bev || !c->deadline) {
		if (c->bev)
			bufferevent_free(c->bev);
		if (c->deadline)
			event_free(c->deadline);
		free(c);
		return NULL;
	}
	/* Until adopt() reads evhttp's connection from it. */
	bufferevent_incref(c->bev);
	TAILQ_INSERT_TAIL(&hc->conns, c, link);
	TAILQ_INSERT_TAIL(&hc->fresh, c, fresh_link);
	hc->open++;
	event_add(c->deadline, hc->timeout);
	event_active(hc->adopt, EV_TIMEOUT, 1);
	if (hc->open >= hc->max) {
		free_oldest(hc);
		pause_accept(hc, 0);
	}
	return c->bev;
}

/* The loop's turn after on_connect(): evhttp's connections now exist. */
static void adopt(evutil_socket_t fd, short what, void *arg)
{
	struct jobd_httpconn *hc = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&hc->fresh))) {
		void *evcon = NULL;

		TAILQ_REMOVE(&hc->fresh, c, fresh_link);
		/* evhttp sets itself as the callback argument, and
		 * bufferevent_free() clears it when evhttp gave up. */
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
		bufferevent_decref(c->bev);
		if (!evcon) {
			drop(c);
			continue;
		}
		c->evcon = evcon;
		evhttp_connection_set_closecb(c->evcon, on_close, c);
	}
	/* A batch of accepts reached the limit before any was adopted. */
	if (hc->open >= hc->max)
		free_oldest(hc);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct jobd_httpconn *hc = attached;
	int err = errno;
	char more[64];

	(void)arg; /* evhttp's, not ours */
	if (!hc || hc->lev != lev) {
		evconnlistener_disable(lev);
		return;
	}
	hc->accept_errors++;
	pause_accept(hc, ACCEPT_PAUSE_MS);
	if (ratelog_due(&hc->accept_log, more, sizeof(more)))
		jobd_warn(
			"http: cannot accept a connection: %s (%d open, accepting again in %d ms)%s",
			strerror(err), hc->open, ACCEPT_PAUSE_MS, more);
}

struct jobd_httpconn *jobd_httpconn_new(struct event_base *base,
					struct evhttp *http,
					struct evhttp_bound_socket *bound,
					int max, int64_t timeout_ms)
{
	struct jobd_httpconn *hc = calloc(1, sizeof(*hc));
	struct timeval tv = { (time_t)(timeout_ms / 1000),
			      (suseconds_t)(timeout_ms % 1000) * 1000 };

	if (!hc)
		return NULL;
	hc->base = base;
	hc->lev = evhttp_bound_socket_get_listener(bound);
	hc->max = max;
	hc->accepting = true;
	TAILQ_INIT(&hc->conns);
	TAILQ_INIT(&hc->fresh);
	/* Every deadline has the same length: a queue, not a heap. */
	hc->timeout = event_base_init_common_timeout(base, &tv);
	hc->adopt = event_new(base, -1, 0, adopt, hc);
	hc->resume = event_new(base, -1, 0, on_resume, hc);
	if (!hc->timeout || !hc->adopt || !hc->resume) {
		jobd_httpconn_free(hc);
		return NULL;
	}
	evconnlistener_set_error_cb(hc->lev, on_accept_error);
	evhttp_set_bevcb(http, on_connect, hc);
	return hc;
}

void jobd_httpconn_attach(struct jobd_httpconn *hc)
{
	attached = hc;
}

static struct conn *find(struct jobd_httpconn *hc,
			 struct evhttp_connection *evcon)
{
	struct conn *c;

	if (!evcon)
		return NULL;
	TAILQ_FOREACH(c, &hc->conns, link)
	if (c->evcon == evcon)
		return c;
	return NULL;
}

void jobd_httpconn_request_begin(struct jobd_httpconn *hc,
				 struct evhttp_connection *evcon)
{
	struct conn *c = find(hc, evcon);

	if (c)
		event_del(c->deadline);
}

void jobd_httpconn_request_end(struct jobd_httpconn *hc,
			       struct evhttp_connection *evcon)
{
	struct conn *c = find(hc, evcon);

	if (c)
		arm(c);
}

void jobd_httpconn_stats(const struct jobd_httpconn *hc,
			 struct jobd_httpconn_stats *out)
{
	out->open = hc->open;
	out->max = hc->max;
	out->deadline_closed = hc->deadline_closed;
	out->limit_closed = hc->limit_closed;
	out->accept_errors = hc->accept_errors;
}

void jobd_httpconn_free(struct jobd_httpconn *hc)
{
	struct conn *c;

	if (!hc)
		return;
	if (attached == hc)
		attached = NULL;
	/* evhttp_free() closed the adopted ones; what is left was never
	 * adopted, and holds a reference on its bufferevent. */
	while ((c = TAILQ_FIRST(&hc->conns))) {
		TAILQ_REMOVE(&hc->conns, c, link);
		if (!c->evcon)
			bufferevent_decref(c->bev);
		event_free(c->deadline);
		free(c);
	}
	if (hc->adopt)
		event_free(hc->adopt);
	if (hc->resume)
		event_free(hc->resume);
	free(hc);
}

void jobd_httpconn_set_tls(struct jobd_httpconn *hc, struct ssl_ctx_st *ctx)
{
	hc->tls = ctx;
}
