/*
 * jobd: the daemon. Loads the configuration, starts the roles it names
 * (consume, work, stats, http; with work, the ticker of the
 * [schedule.NAME] sections, engine/scheduler.h), and on SIGTERM or SIGINT
 * stops them gracefully and exits 0.
 *
 * Signals are blocked in every thread (the mask is set before any thread
 * starts) and read from a signalfd by the main thread, so no code runs in
 * signal context. SIGPIPE is ignored: a peer that went away is an error
 * return, never a death.
 *
 * The soft descriptor limit is raised to the hard one at start: the
 * monitor's connections, the workers' pipes and the Redis and Kafka
 * connections all come out of it (the monitor keeps to its share, see
 * http/conn.h).
 *
 * Under systemd (Type=notify) it says READY=1 once every role serves,
 * STOPPING=1 at a stop signal, and WATCHDOG=1 at half of WatchdogSec from
 * the main loop (base/notify.h). SIGHUP reloads what can change without a
 * restart (jobd_conf_reload in base/conf.h); a bad file is refused and
 * logged, and the running configuration stays.
 *
 * Exit codes: 0 after a graceful stop; 1 on a configuration error or a
 * fatal Redis error (wrong password); 2 on bad usage. jobd --check-config
 * FILE starts nothing: it exits 0 with the effective configuration on
 * stdout, or 2 with every error of FILE on stderr. An unreachable Redis
 * is not fatal: a daemon must survive Redis restarts, so jobd warns and
 * keeps trying with backoff (100 ms doubling to 5 s).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/conf.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/util.h"
#include "engine/scheduler.h"
#include "engine/worker.h"
#include "handlers/builtin.h"
#include "handlers/cleanup.h"
#include "http/server.h"
#include "http/tls.h"
#include "kafka/consumer.h"
#include "kafka/kafka.h"
#include "kafka/stats_producer.h"
#include "revision.h"
#include "store/store.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HOUSEKEEPING_MS 60000 /* between checks of the cleanup schedule */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: jobd [-c FILE] [--log-format F] [-h] [--version]\n"
		"            [--check-config FILE]\n"
		"  -c, --config FILE  configuration file (default: "
		"$JOBD_CONFIG, else built-in defaults)\n"
		"      --check-config FILE\n"
		"                     check every key of FILE, print the "
		"effective\n"
		"                     configuration (secrets hidden); exit 0, "
		"or 2 with\n"
		"                     FILE:LINE: for each error\n"
		"      --log-format F text or json (default: [log] format)\n"
		"  -h, --help         this help\n"
		"      --version      print the version and git revision\n");
}

/*
 * Waits up to MS for a termination signal on SFD. Returns the signal
 * number, or 0 on timeout.
 */
static int wait_signal(int sfd, int ms)
{
	struct pollfd pfd = { .fd = sfd, .events = POLLIN };
	struct signalfd_siginfo si;
	int n;

	n = poll(&pfd, 1, ms);
	if (n <= 0)
		return 0;
	if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static void limit_text(rlim_t n, char *buf, size_t size)
{
	if (n == RLIM_INFINITY)
		snprintf(buf, size, "unlimited");
	else
		snprintf(buf, size, "%llu", (unsigned long long)n);
}

/* Raises RLIMIT_NOFILE's soft limit to the hard one, and says so. */
static void raise_nofile(void)
{
	struct rlimit rl;
	char was[32], to[32];

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	limit_text(rl.rlim_cur, was, sizeof(was));
	limit_text(rl.rlim_max, to, sizeof(to));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		jobd_warn("cannot raise the descriptor limit (RLIMIT_NOFILE) "
			  "from %s to %s: %s",
			  was, to, strerror(errno));
	else
		jobd_info(
			"descriptor limit (RLIMIT_NOFILE) raised from %s to %s",
			was, to);
}

/*
 * jobd --check-config PATH: every error and warning of PATH, one
 * "FILE:LINE: ..." line each on stderr, and 2; or the effective
 * configuration on stdout, and 0.
 */
static int check_config(const char *path)
{
	struct jobd_conf_errors errors;
	struct jobd_conf *conf;
	int rc = 0;

	conf = jobd_conf_check(path, &errors);
	if (conf) {
		if (jobd_conf_write(conf, stdout) < 0 || fflush(stdout) != 0) {
			fprintf(stderr,
				"jobd: cannot write the configuration: %s\n",
				strerror(errno));
			rc = 2;
		}
		jobd_conf_free(conf);
		return rc;
	}
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "%s\n", errors.errors[i].msg);
	fprintf(stderr, "jobd: %s: %zu error%s", path,
		errors.n - errors.warnings,
		errors.n - errors.warnings == 1 ? "" : "s");
	if (errors.warnings)
		fprintf(stderr,
			", %zu warning%s (a start would ignore that line and "
			"keep the default: a check fails on it)",
			errors.warnings, errors.warnings == 1 ? "" : "s");
	fputc('\n', stderr);
	jobd_conf_errors_release(&errors);
	return 2;
}

/*
 * A Redis error that retrying will not fix: credentials, and TLS that
 * cannot work (src/store/link.c: "TLS: " starts what the settings or the
 * server's certificate get wrong, never a timeout or a lost connection),
 * or a server that does not speak Redis's protocol (plain to a TLS port),
 * and a cluster that jobd's prefix cannot live on (no hash tag).
 */
static bool redis_fatal(const char *err)
{
	return strstr(err, "cannot authenticate") || strstr(err, "WRONGPASS") ||
	       strstr(err, "NOAUTH") || strstr(err, "NOPERM") ||
	       strstr(err, "TLS: ") || strstr(err, "[redis] tls_") ||
	       strstr(err, "protocol error") || strstr(err, "a TLS port?") ||
	       strstr(err, "has no hash tag") ||
	       strstr(err, "bad redis cluster seed");
}

/* The role starters, in the one shape start_role() takes. */
static void *start_probe(const struct jobd_conf *conf, char *errstr,
			 size_t size)
{
	return jobd_store_new(conf, errstr, size);
}

static void *start_workers(const struct jobd_conf *conf, char *errstr,
			   size_t size)
{
	jobd_handlers_register_builtin();
	return jobd_workers_start(conf, errstr, size);
}

static void *start_scheduler(const struct jobd_conf *conf, char *errstr,
			     size_t size)
{
	return jobd_scheduler_start(conf, errstr, size);
}

static void *start_consumer(const struct jobd_conf *conf, char *errstr,
			    size_t size)
{
	return jobd_consumer_start(conf, errstr, size);
}

static void *start_stats(const struct jobd_conf *conf, char *errstr,
			 size_t size)
{
	return jobd_stats_producer_start(conf, errstr, size);
}

static void *start_http(const struct jobd_conf *conf, char *errstr, size_t size)
{
	return jobd_http_start(conf, errstr, size);
}

/*
 * Starts a role, retrying with backoff while Redis or Kafka is away (a
 * daemon must survive their restarts); a fatal error (a wrong password)
 * sets *RC to 1. Returns the role, or NULL when it gave up or a signal
 * came (*SIG).
 */
static void *
start_role(const char *what,
	   void *(*start)(const struct jobd_conf *, char *, size_t),
	   const struct jobd_conf *conf, int sfd, int *sig, int *rc)
{
	int64_t backoff = 0;
	char errstr[512];
	void *role;

	while (!(role = start(conf, errstr, sizeof(errstr)))) {
		if (redis_fatal(errstr)) {
			jobd_error("cannot start %s: %s", what, errstr);
			*rc = 1;
			return NULL;
		}
		backoff = jobd_util_backoff(backoff, BACKOFF_MIN_MS,
					    BACKOFF_MAX_MS);
		jobd_warn("cannot start %s: %s (retrying in %lld ms)", what,
			  errstr, (long long)backoff);
		jobd_notify("STATUS=waiting for Redis or Kafka");
		*sig = wait_signal(sfd, (int)backoff);
		if (*sig == SIGHUP)
			jobd_warn("SIGHUP while starting: ignored, send it "
				  "again once running");
		else if (*sig)
			return NULL;
		*sig = 0;
	}
	return role;
}

/* [log] level and format; FORMAT (--log-format) wins when not -1. */
static void apply_log(const struct jobd_conf *conf, int format)
{
	jobd_log_set_level((enum jobd_log_level)conf->log_level);
	jobd_log_set_format(format >= 0	   ? (enum jobd_log_format)format :
			    conf->log_json ? JOBD_LOG_JSON :
					     JOBD_LOG_TEXT);
}

/*
 * The per-type limits of this configuration, written into the store for
 * every instance (docs/job-types.md, "Limits"): each instance with the
 * work role writes them as it starts and reloads, the last one wins.
 */
static void write_limits(struct jobd_store *st, const struct jobd_conf *conf)
{
	char by[256];
	bool changed;

	if (!conf->role_work)
		return;
	if (jobd_store_limits_write(st, conf->instance, &changed, by,
				    sizeof(by)) < 0)
		jobd_warn("limits: cannot write the job types' limits: %s",
			  jobd_store_errstr(st));
	else if (changed)
		jobd_info("limits: the job types' limits of this configuration "
			  "now hold for every instance (they replace those "
			  "written by %s)",
			  by[0] ? by : "nobody");
	else if (by[0] && strcmp(by, conf->instance) != 0)
		jobd_info("limits: the job types' limits are those %s wrote",
			  by);
}

/*
 * A store without a job yet holds nothing of an earlier version: marks
 * every backfill step done (jobd_store_backfill_pending). The work role
 * does it with its first cleanup; an instance without that role does it
 * here, or until a worker started each of its creates would look for
 * the idempotency keys of the earlier layout as well (23 % of the Redis
 * time of a consume-only instance's creates).
 */
static void mark_new_store(struct jobd_store *st)
{
	if (jobd_store_backfill_pending(st) < 0)
		jobd_warn("%s", jobd_store_errstr(st));
}

/* The idempotency keys' window (docs/redis-keys.md, "Idempotency keys"),
 * by every instance as it starts and reloads. */
static void write_key_window(struct jobd_store *st,
			     const struct jobd_conf *conf)
{
	int64_t was;

	if (jobd_store_key_window_write(st, &was) < 0)
		jobd_warn("store: cannot write the key window: %s",
			  jobd_store_errstr(st));
	else if (was)
		jobd_info("store: the key window is now %lld ms, was %lld ms: "
			  "keys made under the old one are found for two of "
			  "its windows",
			  (long long)conf->key_window, (long long)was);
}

/* SIGHUP: the outcome is logged either way. */
static void reload(struct jobd_conf *conf, int format, struct jobd_store *st)
{
	char errstr[512];

	jobd_notify("RELOADING=1");
	/* The reload's warnings in the format it sets, as at start. */
	jobd_log_hold();
	if (jobd_conf_reload(conf, errstr, sizeof(errstr)) < 0) {
		jobd_log_release();
		jobd_error("reload refused, the running configuration stays: "
			   "%s",
			   errstr);
	} else {
		apply_log(conf, format);
		jobd_log_release();
		write_limits(st, conf);
		write_key_window(st, conf);
	}
	jobd_notify("READY=1");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "log-format", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *check = NULL;
	struct jobd_conf *conf;
	struct jobd_workers *workers = NULL;
	struct jobd_consumer *consumer = NULL;
	struct jobd_http *http = NULL;
	struct jobd_stats_producer *stats = NULL;
	struct jobd_scheduler *scheduler = NULL;
	struct jobd_store *st;
	char errstr[512], roles[64] = "";
	sigset_t mask;
	int opt, sfd, sig = 0, rc = 0, format = -1;
	int64_t watchdog, next = 0, now, wait;

	jobd_log_set_ident("jobd");
	jobd_notify_init();
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'L':
			if (strcmp(optarg, "text") != 0 &&
			    strcmp(optarg, "json") != 0) {
				fprintf(stderr,
					"jobd: bad --log-format \"%s\": use "
					"text or json\n",
					optarg);
				return 2;
			}
			format = strcmp(optarg, "json") == 0 ? JOBD_LOG_JSON :
							       JOBD_LOG_TEXT;
			jobd_log_set_format((enum jobd_log_format)format);
			break;
		case 'V':
			printf("jobd %s (revision %s, librdkafka %s)\n",
			       PACKAGE_VERSION, JOBD_REVISION,
			       jobd_kafka_version());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "jobd: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check)
		return check_config(check);

	/*
	 * The loader's warnings (a readable secret, ...) wait for the format
	 * [log] or --log-format sets, so that every line follows it.
	 */
	jobd_log_hold();
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	if (!conf) {
		jobd_log_release();
		if (format == JOBD_LOG_JSON)
			jobd_error("%s", errstr);
		else
			fprintf(stderr, "jobd: %s\n", errstr);
		return 1;
	}
	apply_log(conf, format);
	jobd_log_release();

	/* Before any thread exists, so every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		jobd_error("cannot create a signalfd: %s", strerror(errno));
		rc = 1;
		goto out_conf;
	}

	snprintf(roles, sizeof(roles), "%s%s%s%s",
		 conf->role_consume ? " consume" : "",
		 conf->role_work ? " work" : "",
		 conf->role_stats ? " stats" : "",
		 conf->role_http ? " http" : "");
	jobd_info("jobd %s (revision %s) starting: instance %s, redis %s, "
		  "roles:%s",
		  PACKAGE_VERSION, JOBD_REVISION, conf->instance,
		  conf->redis_address, roles[0] ? roles : " none");
	raise_nofile();
	if (conf->role_http &&
	    (jobd_http_connection_limit(conf, errstr, sizeof(errstr)) < 0 ||
	     jobd_http_tls_check(conf, errstr, sizeof(errstr)) < 0)) {
		jobd_error("%s", errstr);
		rc = 1;
		goto out_sfd;
	}

	/* Redis first: every role needs it. */
	st = start_role("redis", start_probe, conf, sfd, &sig, &rc);
	if (!st)
		goto out_sfd;
	if (!jobd_store_has_module(st))
		jobd_info("redis has no jobd module of this version: using "
			  "the Lua functions "
			  "(loadmodule %s in redis.conf is faster)",
			  JOBD_MODULE_PATH);
	write_limits(st, conf);
	write_key_window(st, conf);
	if (!conf->role_work)
		mark_new_store(st);
	/* Kept for main's own housekeeping (the cleanup schedule). */
	if (conf->role_work && !(workers = start_role("workers", start_workers,
						      conf, sfd, &sig, &rc)))
		goto out_roles;
	/* The schedules' ticker runs wherever jobs are worked
	 * (docs/schedules.md, "Which instances tick"). */
	if (conf->role_work && conf->schedules_count &&
	    !(scheduler = start_role("scheduler", start_scheduler, conf, sfd,
				     &sig, &rc)))
		goto out_roles;
	if (conf->role_consume &&
	    !(consumer = start_role("consumer", start_consumer, conf, sfd, &sig,
				    &rc)))
		goto out_roles;
	if (conf->role_stats &&
	    !(stats = start_role("stats", start_stats, conf, sfd, &sig, &rc)))
		goto out_roles;
	if (conf->role_http &&
	    !(http = start_role("http", start_http, conf, sfd, &sig, &rc)))
		goto out_roles;
	jobd_http_set_sources(http, workers, consumer);
	jobd_info("running");
	jobd_notify("READY=1\nSTATUS=running");

	watchdog = jobd_notify_watchdog_ms() / 2;
	while (!sig) {
		now = jobd_util_mono_ms();
		/* One cleanup job per hour, whichever instance is first. */
		if (conf->role_work && now >= next) {
			if (jobd_cleanup_schedule(st, next == 0) < 0)
				jobd_warn("%s", jobd_store_errstr(st));
			next = now + HOUSEKEEPING_MS;
		}
		if (watchdog)
			jobd_notify("WATCHDOG=1");
		wait = conf->role_work ? next - now : -1;
		if (watchdog && (wait < 0 || wait > watchdog))
			wait = watchdog;
		sig = wait_signal(sfd, (int)wait);
		if (sig == SIGHUP) {
			reload(conf, format, st);
			sig = 0;
		}
	}
	jobd_info("%s received: stopping", strsignal(sig));
	jobd_notify("STOPPING=1");

out_roles:
	/* Reverse order of start: http, stats, consume, the scheduler, then
	 * work. */
	jobd_http_set_sources(http, NULL, NULL);
	jobd_http_stop(http);
	jobd_stats_producer_stop(stats);
	jobd_consumer_stop(consumer);
	jobd_scheduler_stop(scheduler);
	jobd_workers_stop(workers);
	if (sig)
		jobd_info("stopped");
	jobd_store_free(st);
out_sfd:
	close(sfd);
out_conf:
	jobd_conf_free(conf);
	return rc;
}
