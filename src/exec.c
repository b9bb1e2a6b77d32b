/*
 * exec: runs a job as a child process (DESIGN section 6, contract).
 *
 * Data flow: payload -> child's stdin (nonblocking writes); child's stdout
 * -> lines -> jobd_execproto_parse -> progress, logs, errors, checkpoints,
 * children through the handler context; stderr -> warn logs; exit status
 * -> done, stopped or failed. One poll() loop watches the three pipes, the
 * context's event fd (a stop was delivered, or the attempt abandoned) and
 * a pidfd for the child's exit, so nothing here polls on a timer.
 *
 * The child: its own process group (setpgid), so a signal reaches
 * everything it started; PR_SET_PDEATHSIG SIGKILL, then getppid() checked
 * against the forking process in case jobd died before prctl. The death
 * signal fires when the *thread* that forked exits, not the process: we
 * fork from the worker thread that runs this handler, a thread that lives
 * until the pool stops, and this function does not return before the child
 * is reaped, so the forking thread never exits while its child runs except
 * when all of jobd dies, which is exactly when the child must die too.
 *
 * Everything the child needs (path, argv, environment) is prepared before
 * fork(): between fork and exec only async-signal-safe calls, because jobd
 * is multithreaded. Descriptors above 2 are closed in the child
 * (close_range), since hiredis does not open its sockets close-on-exec.
 * The environment is minimal: PATH, HOME, LANG of jobd plus the JOBD_*
 * variables. When the leader exits, the rest of its process group is
 * killed: a job leaves no processes behind.
 *
 * Rejected: posix_spawn (cannot set the death signal), system()/sh -c (the
 * command is argv, never a shell), reading with threads per pipe.
 */
#include "config.h"

#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "execproto.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK 65536

/* Lines of one output stream. */
struct stream {
	int fd;		 /* read end, -1 once at EOF */
	char *buf;	 /* JOBD_EXEC_LINE_MAX + 1 bytes */
	size_t len;	 /* bytes in buf */
	bool discarding; /* dropping the rest of an oversized line */
	bool is_stdout;	 /* commands, else warn logs */
};

struct child {
	pid_t pid;	     /* leader and process group id; 0 once reaped */
	int pidfd;	     /* readable when it exits; -1 if unsupported */
	int in;		     /* write end of its stdin, -1 when closed */
	const char *payload; /* borrowed */
	size_t payload_len, written;
	int status;	/* wait status once reaped */
	bool term_sent; /* SIGTERM sent for a stop */
	bool kill_sent; /* SIGKILL sent */
	bool timed_out; /* the type's timeout passed */
};

static void stream_line(struct jobd_ctx *ctx, struct stream *s,
			const char *line, size_t len)
{
	struct jobd_exec_line l;

	if (!s->is_stdout) {
		jobd_ctx_log(ctx, JOBD_LOG_WARN, "%.*s", (int)len, line);
		return;
	}
	jobd_execproto_parse(line, len, &l);
	switch (l.cmd) {
	case JOBD_EXEC_PROGRESS:
		jobd_ctx_progress(ctx, l.progress);
		break;
	case JOBD_EXEC_LOG:
		jobd_ctx_log(ctx, (enum jobd_log_level)l.level, "%s",
			     l.text ? l.text : "");
		break;
	case JOBD_EXEC_ERROR:
		jobd_ctx_error(ctx, "%s", l.text ? l.text : "");
		break;
	case JOBD_EXEC_CHECKPOINT:
		jobd_ctx_save_checkpoint(ctx, l.json);
		break;
	case JOBD_EXEC_CHILD:
		jobd_ctx_spawn(ctx, l.child_type, l.child_key, l.json, NULL);
		break;
	default:
		jobd_ctx_log(ctx, JOBD_LOG_WARN, "bad line on stdout: %s",
			     l.text ? l.text : "out of memory");
	}
	jobd_execproto_line_release(&l);
}

/* Reads what is there; splits lines; closes the stream at EOF. */
static void stream_read(struct jobd_ctx *ctx, struct stream *s)
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
					stream_line(ctx, s, s->buf, s->len);
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
	/* EOF or a read error: a last line without newline counts. */
	if (s->len && !s->discarding)
		stream_line(ctx, s, s->buf, s->len);
	s->len = 0;
	close(s->fd);
	s->fd = -1;
}

static void child_write(struct child *ch)
{
	ssize_t n;

	while (ch->in >= 0 && ch->written < ch->payload_len) {
		n = write(ch->in, ch->payload + ch->written,
			  ch->payload_len - ch->written);
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

/* Reaps the leader if it exited. Returns true once reaped. */
static bool child_reap(struct child *ch, bool block)
{
	pid_t r;

	if (ch->pid <= 0)
		return true;
	do
		r = waitpid(ch->pid, &ch->status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == ch->pid || (r < 0 && errno == ECHILD)) {
		/* Whatever it left in its group goes with it. */
		kill(-ch->pid, SIGKILL);
		ch->pid = 0;
		return true;
	}
	return false;
}

/* Full path of PROG: as given when it has a '/', else searched in PATH. */
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
		if (end == p) {
			free(full);
			if (asprintf(&full, "./%s", prog) < 0)
				return NULL;
		}
		if (access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/* The child's environment; each string owned, array NULL-terminated. */
static char **make_env(struct jobd_ctx *ctx, const char *ck,
		       const char *ck_file)
{
	static const char *const keep[] = { "PATH", "HOME", "LANG" };
	char **env = calloc(8, sizeof(*env));
	size_t n = 0;
	const char *v;

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
		     jobd_ctx_attempt(ctx)) < 0)
		goto err;
	if (ck_file) {
		if (asprintf(&env[n++], "JOBD_CHECKPOINT_FILE=%s", ck_file) < 0)
			goto err;
	} else if (asprintf(&env[n++], "JOBD_CHECKPOINT=%s", ck ? ck : "") <
		   0) {
		goto err;
	}
	return env;

err:
	/* asprintf leaves its pointer undefined on failure. */
	env[n - 1] = NULL;
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* Writes a big checkpoint to a temp file; returns its path or NULL. */
static char *checkpoint_file(const char *ck)
{
	const char *dir = getenv("TMPDIR");
	size_t len = strlen(ck), off = 0;
	char *path;
	ssize_t n;
	int fd;

	if (asprintf(&path, "%s/jobd-checkpoint.XXXXXX",
		     dir && *dir ? dir : "/tmp") < 0)
		return NULL;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		goto err_free;
	while (off < len) {
		n = write(fd, ck + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err_unlink;
		off += (size_t)n;
	}
	close(fd);
	return path;

err_unlink:
	close(fd);
	unlink(path);
err_free:
	free(path);
	return NULL;
}

/* In the child, after fork: only async-signal-safe calls. */
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
	/* jobd ignores SIGPIPE and blocks signals for its signalfd. */
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

/* How the run ended, as the handler's result. */
static int result_of(struct jobd_ctx *ctx, const struct child *ch,
		     const struct jobd_type_conf *tc)
{
	int st = ch->status;

	if (jobd_ctx_abandoned(ctx))
		return JOBD_HANDLER_STOPPED;
	if (ch->timed_out)
		return jobd_ctx_fail(
			ctx, "timed out after %" PRId64 " ms: %s %d",
			tc->timeout,
			WIFSIGNALED(st) ? "killed by signal" :
					  "exited with status",
			WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	if (WIFEXITED(st)) {
		if (WEXITSTATUS(st) == 0)
			return JOBD_HANDLER_DONE;
		if (WEXITSTATUS(st) == JOBD_EXEC_EXIT_STOPPED &&
		    jobd_ctx_stop_requested(ctx))
			return JOBD_HANDLER_STOPPED;
		if (WEXITSTATUS(st) == JOBD_EXEC_EXIT_STOPPED)
			return jobd_ctx_fail(
				ctx, "exited with status 75 "
				     "(stopped) without a stop request");
		return jobd_ctx_fail(ctx, "exited with status %d",
				     WEXITSTATUS(st));
	}
	if (WIFSIGNALED(st))
		return jobd_ctx_fail(ctx, "killed by signal %d (%s)",
				     WTERMSIG(st), strsignal(WTERMSIG(st)));
	return jobd_ctx_fail(ctx, "ended with wait status %d", st);
}

/* Resets the context's event fd; the flags say what happened. */
static void drain_event(int efd)
{
	uint64_t v;

	while (read(efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/* The poll loop: until the leader exited and its output is read. */
static void supervise(struct jobd_ctx *ctx, struct child *ch,
		      struct stream *out, struct stream *err,
		      const struct jobd_type_conf *tc)
{
	int64_t start = jobd_util_mono_ms(), now, wake;
	int64_t term_at = tc->timeout > 0 ? start + tc->timeout : -1;
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
			jobd_ctx_log(ctx, JOBD_LOG_ERROR,
				     "timeout of %" PRId64 " ms reached: "
				     "sending SIGTERM",
				     tc->timeout);
			ch->timed_out = true;
			child_signal(ch, SIGTERM);
			kill_at = now + JOBD_EXEC_GRACE_MS;
		}
		if (kill_at >= 0 && now >= kill_at && !ch->kill_sent) {
			jobd_ctx_log(ctx, JOBD_LOG_ERROR,
				     "still running %d ms after SIGTERM: "
				     "sending SIGKILL",
				     JOBD_EXEC_GRACE_MS);
			child_signal(ch, SIGKILL);
		}
		if (!exited && child_reap(ch, false))
			exited = true;
		if (exited) {
			/* Drain what is buffered; descendants are killed. */
			if (out->fd >= 0)
				stream_read(ctx, out);
			if (err->fd >= 0)
				stream_read(ctx, err);
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
		/* Read below, so it wakes us again for the next event. */
		if (efd >= 0)
			pfd[n++] =
				(struct pollfd){ .fd = efd, .events = POLLIN };
		timeout = -1;
		wake = kill_at >= 0 && !ch->kill_sent ? kill_at :
		       !ch->timed_out		      ? term_at :
							-1;
		if (wake >= 0)
			timeout = wake > now ? (int)(wake - now) : 0;
		if (ch->pidfd < 0 && (out->fd < 0 && err->fd < 0))
			timeout = timeout < 0 || timeout > 50 ? 50 : timeout;
		if (ch->pidfd < 0 && timeout < 0)
			timeout = 200;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			jobd_warn("poll failed for job %" PRId64 ": %s",
				  jobd_ctx_job_id(ctx), strerror(errno));
			sleep(1);
		}
		if (efd >= 0)
			drain_event(efd);
		if (ch->in >= 0)
			child_write(ch);
		if (out->fd >= 0)
			stream_read(ctx, out);
		if (err->fd >= 0)
			stream_read(ctx, err);
	}
}

int jobd_exec_handler(struct jobd_ctx *ctx)
{
	const struct jobd_type_conf *tc = jobd_ctx_type_conf(ctx);
	const char *ck = jobd_ctx_checkpoint(ctx);
	struct stream out = { .fd = -1, .is_stdout = true };
	struct stream err = { .fd = -1 };
	struct child ch = { .pid = 0, .pidfd = -1, .in = -1 };
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	char *path = NULL, *ck_file = NULL, **env = NULL;
	sigset_t pipe_set, old_set;
	struct timespec zero = { 0, 0 };
	pid_t parent = getpid();
	int rc;

	if (!tc || !tc->command || !tc->command[0])
		return jobd_ctx_fail(ctx, "type \"%s\" has no command",
				     jobd_ctx_type(ctx));
	path = find_program(tc->command[0]);
	if (!path)
		return jobd_ctx_fail(ctx, "cannot find \"%s\" in PATH",
				     tc->command[0]);
	if (ck && strlen(ck) > JOBD_EXEC_CHECKPOINT_ENV_MAX) {
		ck_file = checkpoint_file(ck);
		if (!ck_file) {
			rc = jobd_ctx_fail(ctx,
					   "cannot write the checkpoint "
					   "to a file: %s",
					   strerror(errno));
			goto out_free;
		}
	}
	env = make_env(ctx, ck, ck_file);
	out.buf = malloc(JOBD_EXEC_LINE_MAX + 1);
	err.buf = malloc(JOBD_EXEC_LINE_MAX + 1);
	if (!env || !out.buf || !err.buf) {
		rc = jobd_ctx_fail(ctx, "out of memory");
		goto out_free;
	}
	if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
	    pipe2(err_p, O_CLOEXEC) < 0) {
		rc = jobd_ctx_fail(ctx, "cannot create pipes: %s",
				   strerror(errno));
		goto out_close;
	}
	/* A write to a child that closed its stdin must not kill jobd. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

	ch.pid = fork();
	if (ch.pid < 0) {
		ch.pid = 0;
		rc = jobd_ctx_fail(ctx, "cannot fork: %s", strerror(errno));
		goto out_mask;
	}
	if (ch.pid == 0)
		exec_child(path, tc->command, env, parent, in_p[0], out_p[1],
			   err_p[1]);
	/* Also here, so no signal can miss the group. */
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
	ch.payload = jobd_ctx_payload(ctx);
	ch.payload_len = strlen(ch.payload);
	jobd_ctx_log(ctx, JOBD_LOG_DEBUG, "started %s (pid %d)", path,
		     (int)ch.pid);

	supervise(ctx, &ch, &out, &err, tc);
	child_reap(&ch, true);
	rc = result_of(ctx, &ch, tc);

	if (ch.in >= 0)
		close(ch.in);
	if (out.fd >= 0)
		close(out.fd);
	if (err.fd >= 0)
		close(err.fd);
	if (ch.pidfd >= 0)
		close(ch.pidfd);
out_mask:
	/* Discard a SIGPIPE our writes raised, then restore the mask. */
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
	if (ck_file) {
		unlink(ck_file);
		free(ck_file);
	}
	free_env(env);
	free(out.buf);
	free(err.buf);
	free(path);
	return rc;
}
