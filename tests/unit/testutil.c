/*
 * testutil: real services for Check tests, started and always stopped.
 *
 * redis-server runs in the foreground as a child of the test program, not
 * daemonized: the child sets PR_SET_PDEATHSIG before exec, so the kernel
 * kills it when the test program dies, even by SIGKILL or a crash. A normal
 * exit and SIGTERM/SIGINT/SIGHUP also remove its temp dir, through an
 * atexit handler and a signal handler that walk a small registry.
 *
 * Check's fork mode runs each test in a child that calls exit(), which runs
 * the atexit handlers too: every cleanup therefore acts only in the process
 * that started the server (owner pid).
 *
 * Talking to Redis uses a raw unix socket and inline commands (PING,
 * FLUSHALL) rather than hiredis, so this file does not depend on the store
 * layer's library choice. Rejected: scripts/redis from C (daemonized, so a
 * crashed test would leave the server behind).
 */
#include "config.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/conf.h"
#include "engine/worker.h"
#include "handlers/builtin.h"
#include "store/store.h"

#define REDIS_READY_MS 10000 /* ms redis-server may take to answer PING */
#define REDIS_IO_MS 5000     /* ms, timeout of one command on the socket */
#define REDIS_MAX 8	     /* servers one test program may run at once */

struct jobd_test_redis {
	pid_t pid;   /* redis-server child; 0 once reaped */
	pid_t owner; /* the test program that started it */
	char *dir;   /* temp dir holding socket and log; owned */
	char *sock;  /* dir + "/redis.sock"; owned */
	char *log;   /* dir + "/redis.log": the server's stdout and stderr */
};

/* Servers still running, for the atexit and signal handlers. */
static struct jobd_test_redis *volatile running[REDIS_MAX];
static bool handlers_installed;

static char *path_join(const char *dir, const char *name)
{
	size_t size = strlen(dir) + 1 + strlen(name) + 1;
	char *path = malloc(size);

	if (path)
		snprintf(path, size, "%s/%s", dir, name);
	return path;
}

/* Full path of PROG found in $PATH, or NULL. Caller frees. */
static char *find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	const char *p, *end;
	char *dir, *full;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		dir = strndup(p, (size_t)(end - p));
		if (!dir)
			return NULL;
		full = path_join(*dir ? dir : ".", prog);
		free(dir);
		if (full && access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/*
 * Kills and reaps the server and removes its files. Only async-signal-safe
 * calls: this also runs from the signal handler. The server never writes
 * anything but its socket and log (no persistence), so no directory walk
 * is needed.
 */
static void redis_kill(struct jobd_test_redis *r)
{
	int saved_errno = errno;

	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
			;
		r->pid = 0;
	}
	unlink(r->sock);
	unlink(r->log);
	rmdir(r->dir);
	errno = saved_errno;
}

static void kill_all(void)
{
	struct jobd_test_redis *r;
	int i;

	for (i = 0; i < REDIS_MAX; i++) {
		r = running[i];
		if (r && r->owner == getpid()) {
			running[i] = NULL;
			redis_kill(r);
		}
	}
}

static void on_signal(int sig)
{
	kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;
	size_t i;

	if (handlers_installed)
		return;
	handlers_installed = true;
	atexit(kill_all);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Sends the inline command CMD ("PING\r\n") on a new connection to SOCK and
 * reads the first reply line into REPLY. Returns 0 or -1 (errno set).
 */
static int redis_command(const char *sock, const char *cmd, char *reply,
			 size_t reply_size)
{
	struct sockaddr_un addr;
	struct timeval tv = { REDIS_IO_MS / 1000, (REDIS_IO_MS % 1000) * 1000 };
	size_t len = strlen(cmd), got = 0;
	ssize_t n;
	int fd, saved_errno;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto err_close;
	/* MSG_NOSIGNAL: a server that died must not kill us with SIGPIPE. */
	if (send(fd, cmd, len, MSG_NOSIGNAL) != (ssize_t)len)
		goto err_close;
	while (got + 1 < reply_size) {
		n = read(fd, reply + got, reply_size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(reply, '\n', got))
			break;
	}
	reply[got] = '\0';
	close(fd);
	if (got == 0) {
		errno = ECONNRESET;
		return -1;
	}
	reply[strcspn(reply, "\r\n")] = '\0';
	return 0;

err_close:
	saved_errno = errno;
	close(fd);
	errno = saved_errno;
	return -1;
}

/* Prints the end of the server's log, to explain a failed start. */
static void print_log(const struct jobd_test_redis *r)
{
	char buf[2048];
	ssize_t n;
	off_t size;
	int fd;

	fd = open(r->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0,
	      SEEK_SET);
	n = read(fd, buf, sizeof(buf));
	if (n > 0)
		fprintf(stderr, "%.*s", (int)n, buf);
	close(fd);
}

/*
 * jobd's Redis module as make built it, or NULL: the tests run with it
 * unless JOBD_TEST_MODULE=no (as tests/lib.sh does), so they test its
 * paths too; tests/equivalence/module.sh compares it with the Lua functions alone.
 * In the child, before exec: a static buffer.
 */
static const char *module_path(void)
{
	static char path[4096];
	const char *b = getenv("top_builddir");
	const char *m = getenv("JOBD_TEST_MODULE");

	if ((m && strcmp(m, "no") == 0) || !b ||
	    (size_t)snprintf(path, sizeof(path), "%s/src/store/module/jobd.so",
			     b) >= sizeof(path) ||
	    access(path, R_OK) != 0)
		return NULL;
	return path;
}

/* In the child: becomes redis-server, or exits 127. */
static void exec_redis(const struct jobd_test_redis *r, const char *server,
		       pid_t parent)
{
	const char *module = module_path();
	/* clang-format off */
	char *argv[] = {
		(char *)server,
		"--port", "0",
		"--unixsocket", r->sock,
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "no",
		"--dir", r->dir,
		"--daemonize", "no",
		module ? "--loadmodule" : NULL, (char *)module,
		NULL,
	};
	/* clang-format on */
	int fd;

	/* The parent may have died before prctl took effect. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	fd = open("/dev/null", O_RDONLY);
	if (fd > STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd > STDERR_FILENO) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	execv(server, argv);
	_exit(127);
}

/* Waits until the server answers PING. Returns 0, or -1 after a message. */
static int wait_ready(struct jobd_test_redis *r)
{
	int64_t deadline = mono_ms() + REDIS_READY_MS;
	char reply[64];
	int rc, status;

	for (;;) {
		rc = redis_command(r->sock, "PING\r\n", reply, sizeof(reply));
		if (rc == 0 && strcmp(reply, "+PONG") == 0)
			return 0;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			fprintf(stderr,
				"redis-server exited during startup (status %d):\n",
				status);
			print_log(r);
			return -1;
		}
		if (mono_ms() > deadline) {
			fprintf(stderr,
				"redis-server did not answer PING on '%s' within %d ms:\n",
				r->sock, REDIS_READY_MS);
			print_log(r);
			return -1;
		}
		sleep_ms(10);
	}
}

static void redis_free(struct jobd_test_redis *r)
{
	free(r->dir);
	free(r->sock);
	free(r->log);
	free(r);
}

static int registry_add(struct jobd_test_redis *r)
{
	int i;

	for (i = 0; i < REDIS_MAX; i++) {
		if (!running[i]) {
			running[i] = r;
			return 0;
		}
	}
	return -1;
}

static void registry_remove(struct jobd_test_redis *r)
{
	int i;

	for (i = 0; i < REDIS_MAX; i++)
		if (running[i] == r)
			running[i] = NULL;
}

struct jobd_test_redis *jobd_test_redis_start(void)
{
	struct jobd_test_redis *r;
	struct sockaddr_un addr;
	char *server;
	pid_t parent = getpid();

	server = find_in_path("redis-server");
	if (!server) {
		fprintf(stderr,
			"cannot find 'redis-server' in $PATH (run scripts/bootstrap)\n");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto err_free_server;
	r->owner = parent;
	r->dir = jobd_test_tmpdir();
	if (!r->dir) {
		fprintf(stderr, "cannot create a temp dir: %s\n",
			strerror(errno));
		goto err_free_r;
	}
	/* A unix socket path has at most 107 bytes; a long $TMPDIR cannot. */
	if (strlen(r->dir) + sizeof("/redis.sock") > sizeof(addr.sun_path)) {
		rmdir(r->dir);
		free(r->dir);
		r->dir = strdup("/tmp/jobd-test.XXXXXX");
		if (!r->dir || !mkdtemp(r->dir)) {
			fprintf(stderr,
				"cannot create a temp dir in /tmp: %s\n",
				strerror(errno));
			goto err_free_r;
		}
	}
	r->sock = path_join(r->dir, "redis.sock");
	r->log = path_join(r->dir, "redis.log");
	if (!r->sock || !r->log)
		goto err_rmdir;

	install_handlers();
	/* Registered before fork, so a signal in between still kills it. */
	if (registry_add(r) < 0) {
		fprintf(stderr, "cannot start more than %d redis-servers\n",
			REDIS_MAX);
		goto err_rmdir;
	}
	r->pid = fork();
	if (r->pid < 0) {
		r->pid = 0;
		fprintf(stderr, "cannot fork: %s\n", strerror(errno));
		goto err_unregister;
	}
	if (r->pid == 0)
		exec_redis(r, server, parent);
	if (wait_ready(r) < 0)
		goto err_unregister;
	free(server);
	return r;

err_unregister:
	registry_remove(r);
	redis_kill(r);
err_rmdir:
	jobd_test_rmrf(r->dir);
err_free_r:
	redis_free(r);
err_free_server:
	free(server);
	return NULL;
}

const char *jobd_test_redis_address(const struct jobd_test_redis *r)
{
	return r->sock;
}

void jobd_test_redis_flush(struct jobd_test_redis *r)
{
	char reply[256];

	if (redis_command(r->sock, "FLUSHALL\r\n", reply, sizeof(reply)) < 0)
		ck_abort_msg("cannot FLUSHALL redis at '%s': %s", r->sock,
			     strerror(errno));
	ck_assert_msg(strcmp(reply, "+OK") == 0,
		      "FLUSHALL on '%s' answered '%s'", r->sock, reply);
}

void jobd_test_redis_stop(struct jobd_test_redis *r)
{
	if (!r || r->owner != getpid())
		return;
	registry_remove(r);
	redis_kill(r);
	/* Only if the server left something unexpected behind. */
	jobd_test_rmrf(r->dir);
	redis_free(r);
}

void jobd_test_mock_start(struct jobd_test_mock *m)
{
	char why[512];

	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), why,
			     sizeof(why));
	ck_assert_msg(m->rk != NULL, "%s", why);
	m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
	ck_assert_msg(m->mc != NULL, "cannot start librdkafka's mock cluster");
}

void jobd_test_mock_stop(struct jobd_test_mock *m)
{
	if (m->mc)
		rd_kafka_mock_cluster_destroy(m->mc);
	if (m->rk)
		rd_kafka_destroy(m->rk);
	m->mc = NULL;
	m->rk = NULL;
}

void jobd_test_skip_or_fail(const char *why)
{
	const char *ci = getenv("CI");

	if (ci && strcmp(ci, "true") == 0) {
		fprintf(stderr,
			"FAIL: %s (CI=true: a missing service fails CI)\n",
			why);
		exit(1);
	}
	fprintf(stderr, "SKIP: %s\n", why);
	exit(77);
}

int jobd_test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_fork_status(sr, CK_FORK_GETENV);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

TCase *jobd_test_tcase(Suite *s, const char *name, void (*setup)(void),
		       void (*teardown)(void), int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

int jobd_test_run_suite_with_redis(Suite *(*suite)(void),
				   struct jobd_test_redis **r)
{
	int rc;

	*r = jobd_test_redis_start();
	if (!*r)
		jobd_test_skip_or_fail("redis-server not available");
	rc = jobd_test_run_suite(suite());
	jobd_test_redis_stop(*r);
	*r = NULL;
	return rc;
}

char *jobd_test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl;

	if (!base || !*base)
		base = "/tmp";
	tmpl = path_join(base, "jobd-test.XXXXXX");
	if (!tmpl)
		return NULL;
	if (!mkdtemp(tmpl)) {
		free(tmpl);
		return NULL;
	}
	return tmpl;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	remove(path);
	return 0;
}

void jobd_test_rmrf(const char *dir)
{
	if (dir)
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void jobd_test_pool_start(struct jobd_test_pool *p, struct jobd_test_redis *r,
			  const char *text)
{
	char err[512];

	jobd_test_redis_flush(r);
	p->conf = jobd_conf_parse(text, strlen(text), "test.conf", err,
				  sizeof(err));
	ck_assert_msg(p->conf != NULL, "conf: %s", err);
	p->st = jobd_store_new(p->conf, err, sizeof(err));
	ck_assert_msg(p->st != NULL, "store: %s", err);
	jobd_handlers_register_builtin();
	p->pool = jobd_workers_start(p->conf, err, sizeof(err));
	ck_assert_msg(p->pool != NULL, "workers: %s", err);
}

void jobd_test_pool_stop(struct jobd_test_pool *p)
{
	jobd_workers_stop(p->pool);
	jobd_store_free(p->st);
	jobd_conf_free(p->conf);
	memset(p, 0, sizeof(*p));
}

struct jobd_job *jobd_test_job(struct jobd_store *st, long long id)
{
	struct jobd_job *job = NULL;
	int64_t now;

	ck_assert_int_eq(jobd_store_get(st, id, &job, &now), 0);
	ck_assert_msg(job != NULL, "job %lld is gone", id);
	return job;
}

void jobd_test_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}
