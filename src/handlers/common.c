/*
 * handlers/common: shared plumbing of the record handlers (common.h).
 *
 * data_dir confinement: openat2(RESOLVE_BENEATH) resolves the whole path
 * under the data_dir descriptor and fails with EXDEV when "..", an
 * absolute symlink or a symlink chain would leave it. Kernels before 5.6
 * lack openat2: then every component is opened with O_NOFOLLOW, which
 * refuses symlinks altogether (stricter, never looser). A lexical check
 * first gives ".." and foreign absolute paths a clear message.
 *
 * Running a command: the same exec protocol and process handling as the
 * exec handler (exec.c: own process group, PR_SET_PDEATHSIG, argv without
 * a shell, minimal environment, SIGTERM on stop, SIGKILL when abandoned),
 * but with the command, stdin and progress mapping chosen by the caller,
 * which exec.c's handler entry point cannot take. It belongs in exec.c as
 * jobd_exec_run() once that file can change; the behaviour is kept
 * identical so the move is mechanical.
 */
#include "config.h"

#include "handlers/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "execproto.h"
#include "log.h"
#include "util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READ_CHUNK 65536

/* --- the thread's store ----------------------------------------------------- */

struct jobd_store *jobd_handlers_store(struct jobd_ctx *ctx)
{
	struct jobd_store *st;
	int64_t backoff = 0;

	while (!(st = jobd_ctx_store(ctx))) {
		backoff = backoff < BACKOFF_MIN_MS ? BACKOFF_MIN_MS :
			  backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							 backoff * 2;
		if (!jobd_ctx_sleep(ctx, backoff)) {
			jobd_ctx_fail(ctx, "cannot connect to redis");
			return NULL;
		}
	}
	return st;
}

bool jobd_handlers_retry(struct jobd_ctx *ctx, struct jobd_store *st,
			 int64_t *backoff)
{
	*backoff = *backoff < BACKOFF_MIN_MS	  ? BACKOFF_MIN_MS :
		   *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
						   *backoff * 2;
	jobd_warn("job %" PRId64 ": %s (retrying in %" PRId64 " ms)",
		  jobd_ctx_job_id(ctx), jobd_store_errstr(st), *backoff);
	return jobd_ctx_sleep(ctx, *backoff);
}

/* --- files in data_dir --------------------------------------------------------- */

/* PATH relative to data_dir (a new string), or NULL with ERRSTR set. */
static char *relative_path(const struct jobd_conf *conf, const char *path,
			   char *errstr, size_t errstr_size)
{
	char real[PATH_MAX];
	const char *rel = path, *p;
	size_t dl;

	if (!path || !*path) {
		snprintf(errstr, errstr_size, "no file given");
		return NULL;
	}
	if (path[0] == '/') {
		const char *dirs[2] = { conf->data_dir, NULL };

		if (realpath(conf->data_dir, real))
			dirs[1] = real;
		rel = NULL;
		for (int i = 0; i < 2 && !rel; i++) {
			if (!dirs[i])
				continue;
			dl = strlen(dirs[i]);
			while (dl > 1 && dirs[i][dl - 1] == '/')
				dl--;
			if (strncmp(path, dirs[i], dl) == 0 && path[dl] == '/')
				rel = path + dl + 1;
		}
		if (!rel) {
			snprintf(errstr, errstr_size,
				 "path \"%s\" is outside data_dir %s: refused",
				 path, conf->data_dir);
			return NULL;
		}
	}
	while (*rel == '/')
		rel++;
	for (p = rel; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(errstr, errstr_size,
				 "path \"%s\" escapes data_dir %s with \"..\": "
				 "refused",
				 path, conf->data_dir);
			return NULL;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	if (!*rel) {
		snprintf(errstr, errstr_size, "path \"%s\" names no file",
			 path);
		return NULL;
	}
	return strdup(rel);
}

/* openat() confined to DIRFD: openat2 RESOLVE_BENEATH, else no symlinks. */
static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode,
			const char *path, const struct jobd_conf *conf,
			char *errstr, size_t errstr_size)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	char *copy, *comp, *next;
	int fd, cur, nfd;

	fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno == EXDEV) {
		snprintf(errstr, errstr_size,
			 "path \"%s\" leads out of data_dir %s through a "
			 "symlink: refused",
			 path, conf->data_dir);
		return -1;
	}
	if (errno != ENOSYS && errno != EPERM) {
		snprintf(errstr, errstr_size, "cannot open \"%s\" in %s: %s",
			 path, conf->data_dir, strerror(errno));
		return -1;
	}
	/* No openat2: walk the components without following any symlink. */
	copy = strdup(rel);
	if (!copy)
		abort();
	cur = dup(dirfd);
	for (comp = copy; cur >= 0; comp = next) {
		next = strchr(comp, '/');
		if (!next)
			break;
		*next++ = '\0';
		while (*next == '/')
			next++;
		if (!*comp || strcmp(comp, ".") == 0)
			continue;
		nfd = openat(cur, comp,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(cur);
		cur = nfd;
	}
	fd = cur < 0 ? -1 :
		       openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		snprintf(errstr, errstr_size, "cannot open \"%s\" in %s: %s%s",
			 path, conf->data_dir, strerror(errno),
			 errno == ELOOP || errno == ENOTDIR ?
				 " (symlinks are refused)" :
				 "");
	if (cur >= 0)
		close(cur);
	free(copy);
	return fd;
}

static int open_data_dir(const struct jobd_conf *conf, char *errstr,
			 size_t errstr_size)
{
	int fd = open(conf->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		snprintf(errstr, errstr_size, "cannot open data_dir %s: %s",
			 conf->data_dir, strerror(errno));
	return fd;
}

int jobd_handlers_open_dir(const struct jobd_conf *conf, const char *path,
			   int *dirfd, char **base, char *errstr,
			   size_t errstr_size)
{
	char *rel, *slash;
	int root, fd;

	*dirfd = -1;
	*base = NULL;
	rel = relative_path(conf, path, errstr, errstr_size);
	if (!rel)
		return -1;
	slash = strrchr(rel, '/');
	if (slash && !slash[1]) {
		snprintf(errstr, errstr_size, "path \"%s\" names a directory",
			 path);
		free(rel);
		return -1;
	}
	root = open_data_dir(conf, errstr, errstr_size);
	if (root < 0) {
		free(rel);
		return -1;
	}
	if (slash) {
		*slash = '\0';
		fd = open_beneath(root, rel, O_RDONLY | O_DIRECTORY, 0, path,
				  conf, errstr, errstr_size);
		close(root);
		if (fd < 0) {
			free(rel);
			return -1;
		}
		*base = strdup(slash + 1);
	} else {
		fd = root;
		*base = strdup(rel);
	}
	free(rel);
	if (!*base)
		abort();
	if (strcmp(*base, ".") == 0) {
		snprintf(errstr, errstr_size, "path \"%s\" names a directory",
			 path);
		close(fd);
		free(*base);
		*base = NULL;
		return -1;
	}
	*dirfd = fd;
	return 0;
}

int jobd_handlers_open_read(const struct jobd_conf *conf, const char *path,
			    char *errstr, size_t errstr_size)
{
	struct stat sb;
	char *rel;
	int root, fd;

	rel = relative_path(conf, path, errstr, errstr_size);
	if (!rel)
		return -1;
	root = open_data_dir(conf, errstr, errstr_size);
	if (root < 0) {
		free(rel);
		return -1;
	}
	fd = open_beneath(root, rel, O_RDONLY, 0, path, conf, errstr,
			  errstr_size);
	close(root);
	free(rel);
	if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
		snprintf(errstr, errstr_size, "\"%s\" is not a regular file",
			 path);
		close(fd);
		return -1;
	}
	return fd;
}

/* --- running a command ----------------------------------------------------------- */

struct stream {
	int fd;		 /* read end, -1 once at EOF */
	char *buf;	 /* JOBD_EXEC_LINE_MAX + 1 bytes */
	size_t len;	 /* bytes in buf */
	bool discarding; /* dropping the rest of an oversized line */
	bool is_stdout;	 /* commands, else warn logs */
};

struct child {
	pid_t pid; /* leader and process group id; 0 once reaped */
	int pidfd; /* readable when it exits; -1 if unsupported */
	int in;	   /* write end of its stdin, -1 when closed */
	const char *input;
	size_t input_len, written;
	int status;	/* wait status once reaped */
	bool term_sent; /* SIGTERM sent for a stop */
	bool kill_sent; /* SIGKILL sent */
	bool timed_out; /* the timeout passed */
};

static void stream_line(struct jobd_ctx *ctx, const struct jobd_run *run,
			struct stream *s, const char *line, size_t len)
{
	struct jobd_exec_line l;
	char *key;

	if (!s->is_stdout) {
		jobd_ctx_log(ctx, JOBD_LOG_WARN, "%.*s", (int)len, line);
		return;
	}
	if (run->line_hook && run->line_hook(run->line_arg, line, len))
		return;
	jobd_execproto_parse(line, len, &l);
	switch (l.cmd) {
	case JOBD_EXEC_PROGRESS:
		jobd_ctx_progress(ctx, run->progress_base +
					       run->progress_span * l.progress /
						       100.0);
		break;
	case JOBD_EXEC_LOG:
		jobd_ctx_log(ctx, (enum jobd_log_level)l.level, "%s",
			     l.text ? l.text : "");
		break;
	case JOBD_EXEC_ERROR:
		jobd_ctx_error(ctx, "%s", l.text ? l.text : "");
		break;
	case JOBD_EXEC_CHECKPOINT:
		if (run->keep_checkpoints)
			jobd_ctx_save_checkpoint(ctx, l.json);
		else
			jobd_ctx_log(ctx, JOBD_LOG_DEBUG,
				     "checkpoint line ignored: %s", l.json);
		break;
	case JOBD_EXEC_CHILD:
		if (asprintf(&key, "%s%s",
			     run->child_prefix ? run->child_prefix : "",
			     l.child_key) < 0)
			abort();
		jobd_ctx_spawn(ctx, l.child_type, key, l.json, NULL);
		free(key);
		break;
	default:
		jobd_ctx_log(ctx, JOBD_LOG_WARN, "bad line on stdout: %s",
			     l.text ? l.text : "out of memory");
	}
	jobd_execproto_line_release(&l);
}

static void stream_read(struct jobd_ctx *ctx, const struct jobd_run *run,
			struct stream *s)
{
	char chunk[READ_CHUNK];
	ssize_t n;

	for (;;) {
		n = read(s->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char c = chunk[i];

			if (c == '\n') {
				if (!s->discarding)
					stream_line(ctx, run, s, s->buf,
						    s->len);
				s->discarding = false;
				s->len = 0;
			} else if (s->discarding) {
				continue;
			} else if (s->len >= JOBD_EXEC_LINE_MAX + 1) {
				jobd_ctx_log(ctx, JOBD_LOG_WARN,
					     "line over %d bytes on %s dropped",
					     JOBD_EXEC_LINE_MAX,
					     s->is_stdout ? "stdout" :
							    "stderr");
				s->discarding = true;
				s->len = 0;
			} else {
				s->buf[s->len++] = c;
			}
		}
	}
	if (s->len && !s->discarding)
		stream_line(ctx, run, s, s->buf, s->len);
	s->len = 0;
	close(s->fd);
	s->fd = -1;
}

static void child_write(struct child *ch)
{
	ssize_t n;

	while (ch->in >= 0 && ch->written < ch->input_len) {
		n = write(ch->in, ch->input + ch->written,
			  ch->input_len - ch->written);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			break; /* EPIPE: it does not read its stdin */
		ch->written += (size_t)n;
	}
	if (ch->in >= 0) {
		close(ch->in);
		ch->in = -1;
	}
}

static void child_signal(struct child *ch, int sig)
{
	if (ch->pid > 0)
		kill(-ch->pid, sig);
	if (sig == SIGKILL)
		ch->kill_sent = true;
}

static bool child_reap(struct child *ch, bool block)
{
	pid_t r;

	if (ch->pid <= 0)
		return true;
	do
		r = waitpid(ch->pid, &ch->status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == ch->pid || (r < 0 && errno == ECHILD)) {
		kill(-ch->pid, SIGKILL);
		ch->pid = 0;
		return true;
	}
	return false;
}

static char *find_program(const char *prog)
{
	const char *path = getenv("PATH"), *p, *end;
	char *full;

	if (strchr(prog, '/'))
		return strdup(prog);
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (asprintf(&full, "%.*s/%s", (int)(end - p),
			     end > p ? p : ".", prog) < 0)
			return NULL;
		if (access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

static void free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

static char **make_env(struct jobd_ctx *ctx, const struct jobd_run *run)
{
	static const char *const keep[] = { "PATH", "HOME", "LANG" };
	size_t extra = 0, n = 0;
	char **env;
	const char *v;

	while (run->env && run->env[extra])
		extra++;
	env = calloc(8 + extra, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		v = getenv(keep[i]);
		if (v && asprintf(&env[n++], "%s=%s", keep[i], v) < 0)
			goto err;
	}
	if (asprintf(&env[n++], "JOBD_JOB_ID=%" PRId64, jobd_ctx_job_id(ctx)) <
		    0 ||
	    asprintf(&env[n++], "JOBD_JOB_TYPE=%s", jobd_ctx_type(ctx)) < 0 ||
	    asprintf(&env[n++], "JOBD_ATTEMPT=%" PRId64,
		     jobd_ctx_attempt(ctx)) < 0 ||
	    asprintf(&env[n++], "JOBD_CHECKPOINT=%s",
		     run->checkpoint ? run->checkpoint : "") < 0)
		goto err;
	for (size_t i = 0; i < extra; i++)
		if (!(env[n++] = strdup(run->env[i])))
			goto err;
	return env;
err:
	env[n - 1] = NULL;
	free_env(env);
	return NULL;
}

static void __attribute__((noreturn))
exec_child(const char *path, char *const argv[], char *const env[],
	   pid_t parent, int in, int out, int err)
{
	static const char msg[] = "jobd: cannot exec the command\n";
	struct sigaction sa;
	sigset_t none;

	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		_exit(127);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	execve(path, argv, env);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void drain_event(int efd)
{
	uint64_t v;

	while (read(efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

static void supervise(struct jobd_ctx *ctx, const struct jobd_run *run,
		      struct child *ch, struct stream *out, struct stream *err)
{
	int64_t start = jobd_util_mono_ms(), now, wake;
	int64_t term_at = run->timeout_ms > 0 ? start + run->timeout_ms : -1;
	int64_t kill_at = -1;
	struct pollfd pfd[5];
	int n, timeout, efd = jobd_ctx_event_fd(ctx);
	bool exited = false;

	for (;;) {
		now = jobd_util_mono_ms();
		if (jobd_ctx_abandoned(ctx) && !ch->kill_sent) {
			child_signal(ch, SIGKILL);
		} else if (jobd_ctx_stop_requested(ctx) && !ch->term_sent) {
			child_signal(ch, SIGTERM);
			ch->term_sent = true;
		}
		if (term_at >= 0 && now >= term_at && !ch->timed_out) {
			ch->timed_out = true;
			child_signal(ch, SIGTERM);
			kill_at = now + JOBD_EXEC_GRACE_MS;
		}
		if (kill_at >= 0 && now >= kill_at && !ch->kill_sent)
			child_signal(ch, SIGKILL);
		if (!exited && child_reap(ch, false))
			exited = true;
		if (exited) {
			if (out->fd >= 0)
				stream_read(ctx, run, out);
			if (err->fd >= 0)
				stream_read(ctx, run, err);
			return;
		}
		n = 0;
		if (out->fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = out->fd,
						    .events = POLLIN };
		if (err->fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = err->fd,
						    .events = POLLIN };
		if (ch->in >= 0)
			pfd[n++] = (struct pollfd){ .fd = ch->in,
						    .events = POLLOUT };
		if (ch->pidfd >= 0)
			pfd[n++] = (struct pollfd){ .fd = ch->pidfd,
						    .events = POLLIN };
		if (efd >= 0)
			pfd[n++] =
				(struct pollfd){ .fd = efd, .events = POLLIN };
		timeout = -1;
		wake = kill_at >= 0 && !ch->kill_sent ? kill_at :
		       !ch->timed_out		      ? term_at :
							-1;
		if (wake >= 0)
			timeout = wake > now ? (int)(wake - now) : 0;
		if (ch->pidfd < 0 && (timeout < 0 || timeout > 50))
			timeout = 50;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			sleep(1);
		if (efd >= 0)
			drain_event(efd);
		if (ch->in >= 0)
			child_write(ch);
		if (out->fd >= 0)
			stream_read(ctx, run, out);
		if (err->fd >= 0)
			stream_read(ctx, run, err);
	}
}

static enum jobd_run_result result_of(struct jobd_ctx *ctx,
				      const struct jobd_run *run,
				      const struct child *ch, char *why,
				      size_t why_size)
{
	int st = ch->status;

	if (jobd_ctx_abandoned(ctx))
		return JOBD_RUN_STOPPED;
	if (ch->timed_out) {
		snprintf(why, why_size, "timed out after %" PRId64 " ms",
			 run->timeout_ms);
		return JOBD_RUN_FAILED;
	}
	if (WIFEXITED(st)) {
		if (WEXITSTATUS(st) == 0)
			return JOBD_RUN_OK;
		if (WEXITSTATUS(st) == JOBD_EXEC_EXIT_STOPPED &&
		    jobd_ctx_stop_requested(ctx))
			return JOBD_RUN_STOPPED;
		snprintf(why, why_size, "exited with status %d%s",
			 WEXITSTATUS(st),
			 WEXITSTATUS(st) == JOBD_EXEC_EXIT_STOPPED ?
				 " (stopped) without a stop request" :
				 "");
		return JOBD_RUN_FAILED;
	}
	if (WIFSIGNALED(st))
		snprintf(why, why_size, "killed by signal %d (%s)",
			 WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(why, why_size, "ended with wait status %d", st);
	return JOBD_RUN_FAILED;
}

enum jobd_run_result jobd_handlers_run(struct jobd_ctx *ctx,
				       const struct jobd_run *run, char *why,
				       size_t why_size)
{
	struct stream out = { .fd = -1, .is_stdout = true };
	struct stream err = { .fd = -1 };
	struct child ch = { .pid = 0, .pidfd = -1, .in = -1 };
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	char *path = NULL, **env = NULL, dummy[8];
	sigset_t pipe_set, old_set;
	struct timespec zero = { 0, 0 };
	pid_t parent = getpid();
	enum jobd_run_result rc = JOBD_RUN_FAILED;

	if (!why) {
		why = dummy;
		why_size = sizeof(dummy);
	}
	why[0] = '\0';
	if (!run->argv || !run->argv[0]) {
		snprintf(why, why_size, "no command");
		return JOBD_RUN_FAILED;
	}
	path = find_program(run->argv[0]);
	if (!path) {
		snprintf(why, why_size, "cannot find \"%s\" in PATH",
			 run->argv[0]);
		return JOBD_RUN_FAILED;
	}
	env = make_env(ctx, run);
	out.buf = malloc(JOBD_EXEC_LINE_MAX + 1);
	err.buf = malloc(JOBD_EXEC_LINE_MAX + 1);
	if (!env || !out.buf || !err.buf) {
		snprintf(why, why_size, "out of memory");
		goto out_free;
	}
	if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
	    pipe2(err_p, O_CLOEXEC) < 0) {
		snprintf(why, why_size, "cannot create pipes: %s",
			 strerror(errno));
		goto out_close;
	}
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	ch.pid = fork();
	if (ch.pid < 0) {
		ch.pid = 0;
		snprintf(why, why_size, "cannot fork: %s", strerror(errno));
		goto out_mask;
	}
	if (ch.pid == 0)
		exec_child(path, run->argv, env, parent, in_p[0], out_p[1],
			   err_p[1]);
	setpgid(ch.pid, ch.pid);
	ch.pidfd = (int)syscall(SYS_pidfd_open, ch.pid, 0);
	close(in_p[0]);
	close(out_p[1]);
	close(err_p[1]);
	in_p[0] = out_p[1] = err_p[1] = -1;
	ch.in = in_p[1];
	out.fd = out_p[0];
	err.fd = err_p[0];
	in_p[1] = out_p[0] = err_p[0] = -1;
	set_nonblock(ch.in);
	set_nonblock(out.fd);
	set_nonblock(err.fd);
	ch.input = run->input ? run->input : "";
	ch.input_len = run->input ? run->input_len : 0;
	jobd_ctx_log(ctx, JOBD_LOG_DEBUG, "started %s (pid %d)", path,
		     (int)ch.pid);
	supervise(ctx, run, &ch, &out, &err);
	child_reap(&ch, true);
	rc = result_of(ctx, run, &ch, why, why_size);
	if (ch.in >= 0)
		close(ch.in);
	if (out.fd >= 0)
		close(out.fd);
	if (err.fd >= 0)
		close(err.fd);
	if (ch.pidfd >= 0)
		close(ch.pidfd);
out_mask:
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
out_close:
	for (int i = 0; i < 2; i++) {
		if (in_p[i] >= 0)
			close(in_p[i]);
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
	}
out_free:
	free_env(env);
	free(out.buf);
	free(err.buf);
	free(path);
	return rc;
}

/* --- payload and checkpoint helpers ------------------------------------------------ */

json_t *jobd_handlers_payload(struct jobd_ctx *ctx, const char *what)
{
	json_error_t e;
	json_t *p = json_loads(jobd_ctx_payload(ctx), 0, &e);

	if (!json_is_object(p)) {
		json_decref(p);
		jobd_ctx_fail(ctx, "%s: the payload is not a JSON object",
			      what);
		return NULL;
	}
	return p;
}

json_t *jobd_handlers_checkpoint(struct jobd_ctx *ctx)
{
	const char *ck = jobd_ctx_checkpoint(ctx);
	json_error_t e;
	json_t *v;

	if (!ck)
		return NULL;
	v = json_loads(ck, 0, &e);
	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

void jobd_handlers_save(struct jobd_ctx *ctx, const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (!s)
		abort();
	jobd_ctx_save_checkpoint(ctx, s);
	free(s);
}

const char *jobd_handlers_str(const json_t *obj, const char *key,
			      const char *def)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : def;
}

int64_t jobd_handlers_int(const json_t *obj, const char *key, int64_t def)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return def;
}

char *jobd_handlers_field_text(const json_t *v)
{
	char *s;

	if (json_is_string(v))
		s = strndup(json_string_value(v), json_string_length(v));
	else if (!v || json_is_null(v))
		s = strdup("");
	else
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
					  JSON_PRESERVE_ORDER);
	if (!s)
		abort();
	return s;
}

int jobd_handlers_spawn(struct jobd_ctx *ctx, const char *type,
			const char *key, const json_t *payload)
{
	char *s = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int rc;

	if (!s)
		abort();
	rc = jobd_ctx_spawn(ctx, type, key, s, NULL);
	free(s);
	return rc;
}

/* --- chunked work over a collection --------------------------------------------------- */

int jobd_handlers_split(struct jobd_ctx *ctx, struct jobd_store *st,
			const char *coll, int64_t chunk, const json_t *payload,
			int64_t *parts)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *child, *nck;
	int64_t token, part, backoff = 0;
	char **ids = NULL, key[64], *after;
	size_t n = 0;
	int rc, ret = JOBD_HANDLER_DONE;

	token = ck ? jobd_handlers_int(ck, "token", 0) : jobd_ctx_attempt(ctx);
	part = jobd_handlers_int(ck, "part", 0);
	after = strdup(jobd_handlers_str(ck, "after", ""));
	if (!after)
		abort();
	json_decref(ck);
	for (;;) {
		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		while ((rc = jobd_records_ids(st, coll, after, NULL,
					      (size_t)chunk, &ids, &n)) ==
		       JOBD_STORE_ERR_REDIS)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				ret = JOBD_HANDLER_STOPPED;
				goto out;
			}
		if (rc < 0) {
			ret = jobd_ctx_fail(ctx, "cannot read collection %s",
					    coll);
			break;
		}
		if (n == 0)
			break;
		child = json_deep_copy(payload);
		json_object_set_new(child, "part", json_integer(part));
		json_object_set_new(child, "after", json_string(after));
		json_object_set_new(child, "upto", json_string(ids[n - 1]));
		snprintf(key, sizeof(key), "p%" PRId64 "-%" PRId64, token,
			 part);
		rc = jobd_handlers_spawn(ctx, jobd_ctx_type(ctx), key, child);
		json_decref(child);
		if (rc == JOBD_CTX_ERR_ABANDONED) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		if (rc < 0) {
			ret = jobd_ctx_fail(ctx, "cannot create part %" PRId64,
					    part);
			break;
		}
		part++;
		free(after);
		after = strdup(ids[n - 1]);
		if (!after)
			abort();
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		nck = json_pack("{s:I, s:I, s:s}", "token", (json_int_t)token,
				"part", (json_int_t)part, "after", after);
		jobd_handlers_save(ctx, nck);
		json_decref(nck);
	}
out:
	if (ret == JOBD_HANDLER_DONE)
		jobd_ctx_progress(ctx, 100);
	if (parts)
		*parts = part;
	jobd_records_ids_free(ids, n);
	free(after);
	return ret;
}

int jobd_handlers_walk(struct jobd_ctx *ctx, struct jobd_store *st,
		       const char *coll, const char *after, const char *upto,
		       int64_t expected, jobd_handlers_page_fn fn, void *arg)
{
	json_t *ck = jobd_handlers_checkpoint(ctx), *nck;
	int64_t done, backoff = 0;
	char **ids = NULL, *cur;
	size_t n = 0;
	int rc, ret = JOBD_HANDLER_DONE;

	cur = strdup(ck ? jobd_handlers_str(ck, "after", "") :
			  (after ? after : ""));
	done = jobd_handlers_int(ck, "done", 0);
	json_decref(ck);
	if (!cur)
		abort();
	for (;;) {
		if (jobd_ctx_stop_requested(ctx)) {
			ret = JOBD_HANDLER_STOPPED;
			break;
		}
		while ((rc = jobd_records_ids(st, coll, cur, upto,
					      JOBD_HANDLERS_BATCH, &ids, &n)) ==
		       JOBD_STORE_ERR_REDIS)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				ret = JOBD_HANDLER_STOPPED;
				goto out;
			}
		if (rc < 0) {
			ret = jobd_ctx_fail(ctx, "cannot read collection %s",
					    coll);
			break;
		}
		if (n == 0)
			break;
		rc = fn(ctx, st, ids, n, arg);
		if (rc != 0) {
			ret = rc;
			break;
		}
		done += (int64_t)n;
		free(cur);
		cur = strdup(ids[n - 1]);
		if (!cur)
			abort();
		jobd_records_ids_free(ids, n);
		ids = NULL;
		n = 0;
		nck = json_pack("{s:s, s:I}", "after", cur, "done",
				(json_int_t)done);
		jobd_handlers_save(ctx, nck);
		json_decref(nck);
		jobd_ctx_progress_of(ctx, done, expected > done ? expected : done);
	}
out:
	if (ret == JOBD_HANDLER_DONE)
		jobd_ctx_progress(ctx, 100);
	jobd_records_ids_free(ids, n);
	free(cur);
	return ret;
}

/* --- relations --------------------------------------------------------------------- */

const char *jobd_handlers_field(const struct jobd_record *rec,
				const char *name)
{
	for (size_t i = 0; i < rec->n; i++)
		if (strcmp(rec->fields[i].name, name) == 0)
			return rec->fields[i].value;
	return NULL;
}

bool jobd_handlers_relations(struct jobd_ctx *ctx, struct jobd_store *st,
			     const char *coll, const struct jobd_record *olds,
			     const struct jobd_record *news, size_t n,
			     const char *key_base)
{
	const struct jobd_conf *conf = jobd_ctx_conf(ctx);

	for (size_t r = 0; r < conf->relations_count; r++) {
		const struct jobd_relation_conf *rel = &conf->relations[r];
		json_t *changes, *payload;
		struct jobd_spec spec = { 0 };
		struct jobd_created out;
		int64_t backoff = 0;
		char key[512];
		char *text;

		if (strcmp(rel->source, coll) != 0)
			continue;
		changes = json_object();
		for (size_t i = 0; i < n; i++) {
			const char *was, *now;

			if (!olds[i].exists)
				continue;
			was = jobd_handlers_field(&olds[i], rel->label);
			now = jobd_handlers_field(&news[i], rel->label);
			if (!now || (was && strcmp(was, now) == 0))
				continue;
			json_object_set_new(changes, news[i].id,
					    json_string(now));
		}
		if (json_object_size(changes) == 0) {
			json_decref(changes);
			continue;
		}
		payload = json_pack("{s:s, s:o, s:I}", "relation", rel->name,
				    "changes", changes, "cause",
				    (json_int_t)jobd_ctx_job_id(ctx));
		text = json_dumps(payload, JSON_COMPACT);
		if (!text)
			abort();
		snprintf(key, sizeof(key), "relupd:%s:%" PRId64 ":%s",
			 rel->name, jobd_ctx_job_id(ctx), key_base);
		spec.type = "relationship-update";
		spec.key = key;
		spec.payload = text;
		while (jobd_store_create(st, "jobd", &spec, 1, &out) < 0)
			if (!jobd_handlers_retry(ctx, st, &backoff)) {
				free(text);
				json_decref(payload);
				return false;
			}
		if (out.id == 0)
			jobd_ctx_error(ctx,
				       "cannot create relationship-update for "
				       "relation %s: %s",
				       rel->name, out.error);
		else if (!out.existed)
			jobd_ctx_log(ctx, JOBD_LOG_INFO,
				     "%zu %s labels changed: relationship-"
				     "update job %" PRId64 " (relation %s)",
				     json_object_size(changes), coll, out.id,
				     rel->name);
		free(text);
		json_decref(payload);
	}
	return true;
}
