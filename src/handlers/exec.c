/*
 * exec: runs a job as a child process (docs/exec-protocol.md, the contract).
 *
 * Data flow: payload -> child's stdin (nonblocking writes); child's stdout
 * -> lines -> jobd_execproto_parse -> progress, logs, errors, checkpoints,
 * children through the handler context; stderr -> warn logs; exit status
 * -> done, stopped or failed. One poll() loop watches the three pipes, the
 * context's event fd (a stop was delivered, or the attempt abandoned) and
 * a pidfd for the child's exit, so nothing here polls on a timer.
 *
 * The child is a reaper (reaper.h), which forks and execs the command and
 * makes sure that nothing the command started outlives it or jobd: it is
 * a child subreaper, so a grandchild that double-forks or calls setsid()
 * stays below it, and it kills the whole tree when the command exits,
 * when jobd closes the "life" pipe (force stop, a lost lease, the
 * timeout's SIGKILL) and when jobd dies, even by kill -9 (the kernel
 * closes jobd's end of the pipe then). A stop is SIGTERM to the reaper,
 * which passes it to the command's process group. The reaper exits with
 * the command's wait status.
 *
 * Everything the child needs (path, argv, environment) is prepared before
 * fork(): between fork and exec only async-signal-safe calls, because jobd
 * is multithreaded. Descriptors above 2 are closed in the child
 * (close_range), since hiredis does not open its sockets close-on-exec.
 * The environment is minimal: PATH, HOME, LANG of jobd plus the JOBD_*
 * variables.
 *
 * Rejected: posix_spawn (the reaper must run code of ours before the
 * exec), system()/sh -c (the command is argv, never a shell), reading
 * with threads per pipe.
 */
#include "config.h"

#include "handlers/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "handlers/builtin.h"
#include "handlers/execproto.h"
#include "handlers/reaper.h"

#define READ_CHUNK 65536

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

/* --- running a command (also for listeners and actions) ----------------------------------------------------------- */

/* Child lines held for one create call, and the bytes of their payloads
 * that flush them sooner (a Lua call's arguments are held whole). */
#define CHILD_BATCH JOBD_STORE_BATCH
#define CHILD_BATCH_BYTES (1 << 20)

/* A child line read, not yet created. */
struct kid {
	struct jobd_exec_line line; /* the parsed line (type, JSON, time) */
	char *key;		    /* the key with the spec's child_prefix */
};

struct stream {
	int fd;		  /* read end, -1 once at EOF */
	char *buf;	  /* JOBD_EXEC_LINE_MAX + 1 bytes */
	size_t len;	  /* bytes in buf */
	bool discarding;  /* dropping the rest of an oversized line */
	bool is_stdout;	  /* commands, else warn logs */
	struct kid *kids; /* CHILD_BATCH, made with the first child line */
	size_t nkids;	  /* child lines held in kids */
	size_t kid_bytes; /* bytes of their payloads */
};

struct child {
	struct jobd_ctx *ctx; /* the attempt it runs for */
	pid_t pid;	      /* the reaper's; 0 once reaped */
	int pidfd;	      /* readable when it exits; -1 if unsupported */
	int life; /* write end of the life pipe; -1 once closed (kill) */
	int in;	  /* write end of its stdin, -1 when closed */
	const char *input;
	size_t input_len, written;
	int status;	/* wait status once reaped */
	bool term_sent; /* SIGTERM sent for a stop */
	bool kill_sent; /* SIGKILL sent */
	bool timed_out; /* the timeout passed */
};

/*
 * Creates the children held in S in one call (as one spawn each would),
 * and lets them go. Called before any other command is acted on, so that
 * a checkpoint written after child lines never reaches Redis before the
 * children do (a resume from it would skip them), and before the handler
 * waits for more output.
 */
static void kids_flush(struct jobd_ctx *ctx, struct stream *s)
{
	struct jobd_ctx_child c[CHILD_BATCH];

	if (s->nkids == 0)
		return;
	for (size_t i = 0; i < s->nkids; i++) {
		const struct jobd_exec_line *l = &s->kids[i].line;

		c[i] = (struct jobd_ctx_child){
			.type = l->child_type,
			.key = s->kids[i].key,
			.payload = l->json,
			.run_at = l->child_run_at,
			.delay = l->child_delay,
		};
	}
	/* Each was checked as it came: only the store may refuse one now,
	 * and that is logged per child. */
	jobd_ctx_spawn_many(ctx, c, s->nkids, NULL, NULL);
	for (size_t i = 0; i < s->nkids; i++) {
		jobd_execproto_line_release(&s->kids[i].line);
		free(s->kids[i].key);
	}
	s->nkids = 0;
	s->kid_bytes = 0;
}

/* Holds child line L (taken) for the next kids_flush, or logs why it
 * cannot be created as jobd_ctx_spawn would. */
static void kids_add(struct jobd_ctx *ctx, const struct jobd_exec_spec *run,
		     struct stream *s, struct jobd_exec_line *l)
{
	struct kid *k;
	char why[200];
	char *key;

	if (asprintf(&key, "%s%s", run->child_prefix ? run->child_prefix : "",
		     l->child_key) < 0)
		abort();
	if (!jobd_ctx_child_check(
		    ctx,
		    &(struct jobd_ctx_child){ .type = l->child_type,
					      .key = key,
					      .payload = l->json },
		    why, sizeof(why))) {
		jobd_ctx_log(ctx, JOBD_LOG_ERROR,
			     "cannot create child \"%s\" of type \"%s\": %s",
			     key, l->child_type, why);
		free(key);
		jobd_execproto_line_release(l);
		return;
	}
	if (!s->kids && !(s->kids = calloc(CHILD_BATCH, sizeof(*s->kids))))
		abort(); /* out of memory: nothing sensible to do */
	k = &s->kids[s->nkids++];
	k->line = *l;
	k->key = key;
	s->kid_bytes += strlen(l->json);
	memset(l, 0, sizeof(*l));
	if (s->nkids == CHILD_BATCH || s->kid_bytes >= CHILD_BATCH_BYTES)
		kids_flush(ctx, s);
}

static void stream_line(struct jobd_ctx *ctx, const struct jobd_exec_spec *run,
			struct stream *s, const char *line, size_t len)
{
	struct jobd_exec_line l;

	if (!s->is_stdout) {
		jobd_ctx_log(ctx, JOBD_LOG_WARN, "%.*s", (int)len, line);
		return;
	}
	if (run->line_hook) {
		kids_flush(ctx, s);
		if (run->line_hook(run->line_arg, line, len))
			return;
	}
	jobd_execproto_parse(line, len, &l);
	if (l.cmd != JOBD_EXEC_CHILD)
		kids_flush(ctx, s);
	switch (l.cmd) {
	case JOBD_EXEC_PROGRESS:
		jobd_ctx_progress(ctx, run->progress_base + run->progress_span *
								    l.progress /
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
		kids_add(ctx, run, s, &l);
		break;
	default:
		jobd_ctx_log(ctx, JOBD_LOG_WARN, "bad line on stdout: %s",
			     l.text ? l.text : "out of memory");
	}
	jobd_execproto_line_release(&l);
}

static void stream_read(struct jobd_ctx *ctx, const struct jobd_exec_spec *run,
			struct stream *s)
{
	char chunk[READ_CHUNK];
	ssize_t n;

	for (;;) {
		n = read(s->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* All that was written so far is read: the children
			 * among it go in one call before poll() waits. */
			kids_flush(ctx, s);
			return;
		}
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
	kids_flush(ctx, s);
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

/* SIGTERM goes to the command through the reaper; SIGKILL is the end
 * of the life pipe, on which the reaper kills the command's whole tree. */
static void child_signal(struct child *ch, int sig)
{
	if (sig != SIGKILL) {
		if (ch->pid > 0)
			kill(ch->pid, sig);
		return;
	}
	if (ch->life >= 0) {
		jobd_ctx_kill_fd(ch->ctx, -1);
		close(ch->life);
		ch->life = -1;
	}
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
		ch->pid = 0; /* the reaper left no process behind */
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

static char **make_env(struct jobd_ctx *ctx, const struct jobd_exec_spec *run,
		       const char *ck_file)
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
	    (ck_file ? asprintf(&env[n++], "JOBD_CHECKPOINT_FILE=%s", ck_file) :
		       asprintf(&env[n++], "JOBD_CHECKPOINT=%s",
				run->checkpoint ? run->checkpoint : "")) < 0)
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

static void supervise(struct jobd_ctx *ctx, const struct jobd_exec_spec *run,
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

static enum jobd_exec_result result_of(struct jobd_ctx *ctx,
				       const struct jobd_exec_spec *run,
				       const struct child *ch, char *why,
				       size_t why_size)
{
	int st = ch->status;

	if (jobd_ctx_abandoned(ctx))
		return JOBD_EXEC_STOPPED;
	if (ch->timed_out) {
		snprintf(why, why_size, "timed out after %" PRId64 " ms: %s %d",
			 run->timeout_ms,
			 WIFSIGNALED(st) ? "killed by signal" :
					   "exited with status",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		return JOBD_EXEC_FAILED;
	}
	if (WIFEXITED(st)) {
		if (WEXITSTATUS(st) == 0)
			return JOBD_EXEC_OK;
		if (WEXITSTATUS(st) == JOBD_EXEC_EXIT_STOPPED &&
		    jobd_ctx_stop_requested(ctx))
			return JOBD_EXEC_STOPPED;
		snprintf(why, why_size, "exited with status %d%s",
			 WEXITSTATUS(st),
			 WEXITSTATUS(st) == JOBD_EXEC_EXIT_STOPPED ?
				 " (stopped) without a stop request" :
				 "");
		return JOBD_EXEC_FAILED;
	}
	if (WIFSIGNALED(st))
		snprintf(why, why_size, "killed by signal %d (%s)",
			 WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(why, why_size, "ended with wait status %d", st);
	return JOBD_EXEC_FAILED;
}

enum jobd_exec_result jobd_exec_run(struct jobd_ctx *ctx,
				    const struct jobd_exec_spec *run, char *why,
				    size_t why_size)
{
	struct stream out = { .fd = -1, .is_stdout = true };
	struct stream err = { .fd = -1 };
	struct child ch = {
		.ctx = ctx, .pid = 0, .pidfd = -1, .life = -1, .in = -1
	};
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	int life_p[2] = { -1, -1 };
	char *path = NULL, **env = NULL, *ck_file = NULL, dummy[8];
	sigset_t pipe_set, old_set;
	struct timespec zero = { 0, 0 };
	enum jobd_exec_result rc = JOBD_EXEC_FAILED;

	if (!why) {
		why = dummy;
		why_size = sizeof(dummy);
	}
	why[0] = '\0';
	if (!run->argv || !run->argv[0]) {
		snprintf(why, why_size, "no command");
		return JOBD_EXEC_FAILED;
	}
	path = find_program(run->argv[0]);
	if (!path) {
		snprintf(why, why_size, "cannot find \"%s\" in PATH",
			 run->argv[0]);
		return JOBD_EXEC_FAILED;
	}
	if (run->checkpoint &&
	    strlen(run->checkpoint) > JOBD_EXEC_CHECKPOINT_ENV_MAX) {
		ck_file = checkpoint_file(run->checkpoint);
		if (!ck_file) {
			snprintf(why, why_size,
				 "cannot write the checkpoint to a file: %s",
				 strerror(errno));
			goto out_free;
		}
	}
	env = make_env(ctx, run, ck_file);
	out.buf = malloc(JOBD_EXEC_LINE_MAX + 1);
	err.buf = malloc(JOBD_EXEC_LINE_MAX + 1);
	if (!env || !out.buf || !err.buf) {
		snprintf(why, why_size, "out of memory");
		goto out_free;
	}
	if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
	    pipe2(err_p, O_CLOEXEC) < 0 || pipe2(life_p, O_CLOEXEC) < 0) {
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
	if (ch.pid == 0) {
		struct jobd_reaper_spec spec = {
			.path = path,
			.argv = run->argv,
			.env = env,
			.in = in_p[0],
			.out = out_p[1],
			.err = err_p[1],
			.life = life_p[0],
		};

		jobd_reaper_main(&spec);
	}
	ch.pidfd = (int)syscall(SYS_pidfd_open, ch.pid, 0);
	close(in_p[0]);
	close(out_p[1]);
	close(err_p[1]);
	close(life_p[0]);
	in_p[0] = out_p[1] = err_p[1] = life_p[0] = -1;
	ch.life = life_p[1];
	life_p[1] = -1;
	/* An abandon ends the tree even while this thread is elsewhere (a
	 * child's create blocked on a Redis cut off, say). */
	jobd_ctx_kill_fd(ctx, ch.life);
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
	if (ch.life >= 0) {
		jobd_ctx_kill_fd(ctx, -1);
		close(ch.life);
	}
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
		if (life_p[i] >= 0)
			close(life_p[i]);
	}
out_free:
	if (ck_file) {
		unlink(ck_file);
		free(ck_file);
	}
	free_env(env);
	free(out.buf);
	free(err.buf);
	free(out.kids); /* empty: each read flushes what it held */
	free(path);
	return rc;
}

/* The handler of the "exec" type: the type's command, as above. */
int jobd_handler_exec(struct jobd_ctx *ctx)
{
	const struct jobd_type_conf *tc = jobd_ctx_type_conf(ctx);
	const char *payload = jobd_ctx_payload(ctx);
	struct jobd_exec_spec run = {
		.input = payload,
		.input_len = strlen(payload),
		.checkpoint = jobd_ctx_checkpoint(ctx),
		.keep_checkpoints = true,
		.progress_base = 0,
		.progress_span = 100,
	};
	char why[256];

	if (!tc || !tc->command || !tc->command[0])
		return jobd_ctx_fail(ctx, "type \"%s\" has no command",
				     jobd_ctx_type(ctx));
	run.argv = tc->command;
	run.timeout_ms = tc->timeout;
	switch (jobd_exec_run(ctx, &run, why, sizeof(why))) {
	case JOBD_EXEC_OK:
		return JOBD_HANDLER_DONE;
	case JOBD_EXEC_STOPPED:
		return JOBD_HANDLER_STOPPED;
	default:
		return jobd_ctx_fail(ctx, "%s", why);
	}
}
