/*
 * jobd: the daemon. Loads the configuration, starts the roles it names
 * (consume, work, stats, http), and on SIGTERM or SIGINT stops them
 * gracefully and exits 0.
 *
 * Signals are blocked in every thread (the mask is set before any thread
 * starts) and read from a signalfd by the main thread, so no code runs in
 * signal context. SIGPIPE is ignored: a peer that went away is an error
 * return, never a death.
 *
 * Exit codes: 0 after a graceful stop; 1 on a configuration error or a
 * fatal Redis error (wrong password); 2 on bad usage. An unreachable Redis
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
#include <sys/signalfd.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "worker.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static void usage(FILE *f)
{
	fprintf(f, "usage: jobd [-c FILE] [-h] [--version]\n"
		   "  -c, --config FILE  configuration file (default: "
		   "$JOBD_CONFIG, else built-in defaults)\n"
		   "  -h, --help         this help\n"
		   "      --version      print the version\n");
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

/* A Redis error that retrying will not fix. */
static bool redis_fatal(const char *err)
{
	return strstr(err, "cannot authenticate") || strstr(err, "WRONGPASS") ||
	       strstr(err, "NOAUTH") || strstr(err, "NOPERM");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	struct jobd_conf *conf;
	struct jobd_workers *workers = NULL;
	struct jobd_store *st;
	char errstr[512], roles[64] = "";
	sigset_t mask;
	int64_t backoff = 0;
	int opt, sfd, sig = 0, rc = 0;

	jobd_log_set_ident("jobd");
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("jobd %s\n", PACKAGE_VERSION);
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

	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	if (!conf) {
		fprintf(stderr, "jobd: %s\n", errstr);
		return 1;
	}

	/* Before any thread exists, so every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
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
	jobd_info("jobd %s starting: instance %s, redis %s, roles:%s",
		  PACKAGE_VERSION, conf->instance, conf->redis_address,
		  roles[0] ? roles : " none");

	/* Redis first: every role needs it. */
	for (;;) {
		st = jobd_store_new(conf, errstr, sizeof(errstr));
		if (st)
			break;
		if (redis_fatal(errstr)) {
			jobd_error("%s", errstr);
			rc = 1;
			goto out_sfd;
		}
		backoff = backoff < BACKOFF_MIN_MS     ? BACKOFF_MIN_MS :
			  backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							 backoff * 2;
		jobd_warn("%s (retrying in %lld ms)", errstr,
			  (long long)backoff);
		sig = wait_signal(sfd, (int)backoff);
		if (sig)
			goto out_sfd;
	}
	jobd_store_free(st);

	if (conf->role_work) {
		backoff = 0;
		while (!(workers = jobd_workers_start(conf, errstr,
						      sizeof(errstr)))) {
			if (redis_fatal(errstr)) {
				jobd_error("%s", errstr);
				rc = 1;
				goto out_roles;
			}
			backoff = backoff < BACKOFF_MIN_MS ? BACKOFF_MIN_MS :
				  backoff * 2 > BACKOFF_MAX_MS ?
							     BACKOFF_MAX_MS :
							     backoff * 2;
			jobd_warn("cannot start the workers: %s (retrying in "
				  "%lld ms)",
				  errstr, (long long)backoff);
			sig = wait_signal(sfd, (int)backoff);
			if (sig)
				goto out_roles;
		}
	}
	if (conf->role_consume) {
		/* Role consume: the Kafka consumers (consumers/) start here. */
	}
	if (conf->role_stats) {
		/* Role stats: the per-minute stats producer starts here. */
	}
	if (conf->role_http) {
		/* Role http: the monitor and API server start here. */
	}
	jobd_info("running");

	while (!sig)
		sig = wait_signal(sfd, -1);
	jobd_info("%s received: stopping", strsignal(sig));

out_roles:
	/* Reverse order of start: http, stats, consume, then work. */
	jobd_workers_stop(workers);
	if (sig)
		jobd_info("stopped");
out_sfd:
	close(sfd);
out_conf:
	jobd_conf_free(conf);
	return rc;
}
