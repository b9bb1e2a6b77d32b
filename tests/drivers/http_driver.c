/*
 * http_driver: runs the monitor (jobd_http_start) for the HTTP and browser
 * tests until SIGTERM, before and independently of the daemon's main.
 *
 *	http_driver CONF           serve; prints "listening HOST:PORT"
 *	http_driver CONF --worker  a scripted worker, no HTTP
 *
 * The scripted worker claims every ready job and acts on its payload's
 * "sim" member, so the tests can put jobs in every status without real
 * handlers: "finish" (default) logs its "note" and finishes; "error" reports an
 * error and fails; "run" logs a step a second until a stop is requested,
 * then stops at its checkpoint, or with "steps": N finishes after N steps
 * (a parent has that long to get children it then waits for); "stuck"
 * runs and never honours a stop (it stays stopping until force-stopped).
 */
#include "config.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/conf.h"
#include "base/log.h"
#include "base/util.h"
#include "http/server.h"
#include "store/store.h"

#define LEASE 30000 /* ms */
#define MAX_RUNNING 256

struct sim {
	int64_t id;
	int64_t attempt;
	bool stuck;    /* ignores stop requests */
	int steps;     /* steps logged so far */
	int max_steps; /* finishes after this many; 0 = runs until stopped */
};

/* Waits up to MS for SIGTERM or SIGINT; true when one came. */
static bool signalled(const sigset_t *set, int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	return sigtimedwait(set, NULL, &ts) > 0;
}

/* The payload's "sim" (default "finish"), "note" (a line to log) and
 * "steps" (0 when absent). */
static const char *sim_of(const char *payload, char *note, size_t size,
			  int *steps)
{
	static char buf[16];
	json_t *j = json_loads(payload ? payload : "{}", 0, NULL);
	const char *s = json_string_value(json_object_get(j, "sim"));
	const char *n = json_string_value(json_object_get(j, "note"));

	snprintf(buf, sizeof(buf), "%s", s ? s : "finish");
	snprintf(note, size, "%s", n ? n : "all records processed");
	*steps = (int)json_integer_value(json_object_get(j, "steps"));
	json_decref(j);
	return buf;
}

static void finish(struct jobd_store *st, int64_t id, int64_t attempt,
		   enum jobd_outcome outcome, const char *msg, double progress,
		   int64_t errors)
{
	struct jobd_log_line line = { JOBD_LOG_INFO, msg };
	struct jobd_report r = { .id = id,
				 .attempt = attempt,
				 .progress = progress,
				 .errors = errors,
				 .logs = &line,
				 .nlogs = 1,
				 .outcome = outcome };
	enum jobd_result res;

	if (outcome == JOBD_OUTCOME_FAILED) {
		line.level = JOBD_LOG_ERROR;
		r.message = "simulated failure";
	}
	if (outcome == JOBD_OUTCOME_STOPPED)
		r.checkpoint = "{\"step\":1}";
	if (jobd_store_finish(st, &r, 1, &res) < 0)
		fprintf(stderr, "http_driver: finish %lld: %s\n", (long long)id,
			jobd_store_errstr(st));
}

static void step(struct jobd_store *st, struct sim *s)
{
	char msg[64];
	struct jobd_log_line lines[2] = {
		{ JOBD_LOG_INFO, msg },
		{ JOBD_LOG_DEBUG, "debug detail of the step" },
	};
	struct jobd_report r = { .id = s->id,
				 .attempt = s->attempt,
				 .progress = s->steps < 9 ? s->steps * 10 : 90,
				 .logs = lines,
				 .nlogs = 2 };
	enum jobd_result res;

	snprintf(msg, sizeof(msg), "step %d done", ++s->steps);
	jobd_store_report(st, &r, 1, &res);
}

static int run_worker(const struct jobd_conf *conf, const sigset_t *set)
{
	struct sim running[MAX_RUNNING];
	size_t nrun = 0;
	struct jobd_store *st;
	char err[512];
	int64_t last_step = 0;

	if (!(st = jobd_store_new(conf, err, sizeof(err)))) {
		fprintf(stderr, "http_driver: %s\n", err);
		return 1;
	}
	printf("worker ready\n");
	fflush(stdout);
	while (!signalled(set, 200)) {
		struct jobd_claim *claims = NULL;
		size_t n = 0;

		if (nrun < MAX_RUNNING &&
		    jobd_store_claim(st, "http-driver", 20, 20, LEASE, &claims,
				     &n) == 0) {
			for (size_t i = 0; i < n; i++) {
				char note[256];
				int steps;
				const char *sim = sim_of(claims[i].payload,
							 note, sizeof(note),
							 &steps);
				struct jobd_claim *c = &claims[i];

				if (!strcmp(sim, "run") ||
				    !strcmp(sim, "stuck")) {
					running[nrun++] = (struct sim){
						.id = c->id,
						.attempt = c->attempt,
						.stuck = !strcmp(sim, "stuck"),
						.max_steps = steps,
					};
					step(st, &running[nrun - 1]);
				} else if (!strcmp(sim, "error")) {
					finish(st, c->id, c->attempt,
					       JOBD_OUTCOME_FAILED,
					       "something broke", 50, 1);
				} else {
					finish(st, c->id, c->attempt,
					       JOBD_OUTCOME_DONE, note, 100, 0);
				}
				if (nrun == MAX_RUNNING)
					break;
			}
			jobd_store_claims_free(claims, n);
		}
		if (nrun && jobd_util_mono_ms() - last_step >= 1000) {
			int64_t ids[MAX_RUNNING], attempts[MAX_RUNNING];
			enum jobd_result res[MAX_RUNNING];
			size_t keep = 0;

			last_step = jobd_util_mono_ms();
			for (size_t i = 0; i < nrun; i++) {
				ids[i] = running[i].id;
				attempts[i] = running[i].attempt;
			}
			if (jobd_store_heartbeat(st, ids, attempts, nrun, LEASE,
						 res) < 0)
				continue;
			for (size_t i = 0; i < nrun; i++) {
				struct sim *s = &running[i];

				if (res[i] == JOBD_RESULT_FENCED)
					continue;
				if (res[i] == JOBD_RESULT_STOP && !s->stuck) {
					finish(st, s->id, s->attempt,
					       JOBD_OUTCOME_STOPPED,
					       "stopped at step 1", -1, 0);
					continue;
				}
				if (s->max_steps && s->steps >= s->max_steps) {
					finish(st, s->id, s->attempt,
					       JOBD_OUTCOME_DONE,
					       "all steps done", 100, 0);
					continue;
				}
				step(st, s);
				running[keep++] = *s;
			}
			nrun = keep;
		}
	}
	jobd_store_free(st);
	return 0;
}

int main(int argc, char **argv)
{
	struct jobd_conf *conf;
	struct jobd_http *h;
	sigset_t set;
	char err[512];
	int rc = 0;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && strcmp(argv[2], "--worker"))) {
		fprintf(stderr, "usage: http_driver CONF [--worker]\n");
		return 2;
	}
	jobd_log_set_ident("http_driver");
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!(conf = jobd_conf_load(argv[1], err, sizeof(err)))) {
		fprintf(stderr, "http_driver: %s\n", err);
		return 2;
	}
	if (argc == 3) {
		rc = run_worker(conf, &set);
		jobd_conf_free(conf);
		return rc;
	}
	if (!(h = jobd_http_start(conf, err, sizeof(err)))) {
		fprintf(stderr, "http_driver: %s\n", err);
		jobd_conf_free(conf);
		return 1;
	}
	printf("listening %s\n", jobd_http_address(h));
	fflush(stdout);
	while (!signalled(&set, 1000))
		;
	jobd_http_stop(h);
	jobd_conf_free(conf);
	return rc;
}
