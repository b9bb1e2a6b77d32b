/*
 * reaper: the process between jobd and an exec handler (reaper.h).
 *
 * Descriptors inside the reaper: 0, 1, 2 are the command's stdin, stdout
 * and stderr (kept on 2 for the reaper's own complaints, which jobd logs
 * as the job's warnings), 3 the life pipe, 4 a signalfd for SIGTERM and
 * SIGCHLD; every signal is blocked, so they arrive only there.
 */
#include "config.h"

#include "handlers/reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIFE_FD 3
#define SIG_FD 4

/* A message to the command's stderr (jobd logs it); async-signal-safe. */
static void say(const char *msg)
{
	size_t len = strlen(msg);

	if (write(STDERR_FILENO, msg, len) < 0)
		return; /* jobd is gone: nobody to tell */
}

static void __attribute__((noreturn)) die(const char *msg)
{
	say(msg);
	_exit(127);
}

static void close_from(int first)
{
	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0U) < 0)
		for (int fd = first; fd < 65536; fd++)
			close(fd);
}

/* Puts the spec's descriptors on 0-3 and closes every other one. */
static void arrange_fds(const struct jobd_reaper_spec *spec)
{
	int from[4] = { spec->in, spec->out, spec->err, spec->life }, hi[4];

	/* Above 10 first: a source may sit where another must go. */
	for (int i = 0; i < 4; i++) {
		hi[i] = fcntl(from[i], F_DUPFD, 10);
		if (hi[i] < 0)
			die("jobd: cannot start the command: no descriptor "
			    "left\n");
	}
	for (int i = 0; i < 4; i++)
		if (dup2(hi[i], i) < 0)
			die("jobd: cannot start the command: dup2 failed\n");
	close_from(LIFE_FD + 1);
}

/* Decimal text of N (>= 0) into BUF, NUL-terminated; returns BUF. */
static char *decimal(char *buf, size_t size, long n)
{
	char *p = buf + size - 1;

	*p = '\0';
	do
		*--p = (char)('0' + n % 10);
	while ((n /= 10) > 0 && p > buf);
	return p;
}

/*
 * SIGKILL to every child of the reaper (direct children: the command,
 * and every orphan of its tree reparented here). Returns how many were
 * listed, or -1 when /proc cannot tell.
 */
static int kill_children(void)
{
	char path[64] = "/proc/self/task/", num[24], buf[4096];
	const char *pid = decimal(num, sizeof(num), (long)getpid());
	size_t off = strlen(path);
	long cur = -1;
	int fd, n = 0;
	ssize_t got;

	memcpy(path + off, pid, strlen(pid));
	off += strlen(pid);
	memcpy(path + off, "/children", sizeof("/children"));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* "PID PID ... " in chunks: a number may span two reads. */
	while ((got = read(fd, buf, sizeof(buf))) > 0 ||
	       (got < 0 && errno == EINTR)) {
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
				continue;
			}
			if (cur > 0) {
				kill((pid_t)cur, SIGKILL);
				n++;
			}
			cur = -1;
		}
	}
	if (cur > 0) {
		kill((pid_t)cur, SIGKILL);
		n++;
	}
	close(fd);
	return n;
}

/*
 * Ends the tree below the reaper: its children die, their orphans come
 * to the reaper and die in turn, until none is left. Stores the
 * command's wait status in *STATUS when it is reaped here.
 */
static void kill_tree(pid_t cmd, int *status, bool *cmd_reaped)
{
	int st;
	pid_t p;

	kill(-cmd, SIGKILL); /* its process group, in one go */
	for (;;) {
		if (kill_children() < 0) {
			say("jobd: cannot list the command's processes in "
			    "/proc: those that left its process group may "
			    "survive it\n");
			return;
		}
		p = waitpid(-1, &st, 0);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			return; /* ECHILD: nothing left */
		if (p == cmd) {
			*status = st;
			*cmd_reaped = true;
		}
	}
}

static void __attribute__((noreturn))
run_command(const struct jobd_reaper_spec *spec, pid_t reaper)
{
	struct sigaction sa;
	sigset_t none;

	/* The command at least dies with a reaper that is killed itself
	 * (what it started then escapes: docs/reliability.md). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != reaper)
		_exit(127);
	setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close_from(LIFE_FD);
	execve(spec->path, spec->argv, spec->env);
	die("jobd: cannot exec the command\n");
}

/* Leaves the reaper with the command's wait status ST. */
static void __attribute__((noreturn)) exit_as(int st)
{
	struct rlimit no_core = { 0, 0 };
	struct sigaction sa;
	sigset_t one;
	int sig;

	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	if (!WIFSIGNALED(st))
		_exit(127);
	sig = WTERMSIG(st);
	/* The same signal, without a core of the reaper's own. */
	setrlimit(RLIMIT_CORE, &no_core);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(sig, &sa, NULL);
	kill(getpid(), sig);
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	_exit(128 + sig);
}

void jobd_reaper_main(const struct jobd_reaper_spec *spec)
{
	struct pollfd pfd[2] = { { .fd = LIFE_FD, .events = POLLIN },
				 { .fd = SIG_FD, .events = POLLIN } };
	struct signalfd_siginfo si;
	struct sigaction sa;
	sigset_t all, wanted;
	bool cmd_reaped = false;
	int st = 0, wst;
	pid_t cmd, p, reaper = getpid();

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Not "jobd": pkill jobd, killall jobd and the like mean jobd. */
	prctl(PR_SET_NAME, "jobd-reaper");
	/* jobd's handlers, inherited, never run with everything blocked;
	 * SIGCHLD must not be ignored, or children reap themselves. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	setpgid(0, 0);
	arrange_fds(spec);
	sigemptyset(&wanted);
	sigaddset(&wanted, SIGTERM);
	sigaddset(&wanted, SIGCHLD);
	if (signalfd(-1, &wanted, SFD_NONBLOCK) != SIG_FD)
		die("jobd: cannot start the command: no signalfd\n");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("jobd: cannot start the command: cannot be a subreaper\n");
	cmd = fork();
	if (cmd < 0)
		die("jobd: cannot start the command: fork failed\n");
	if (cmd == 0)
		run_command(spec, reaper);
	setpgid(cmd, cmd);
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue; /* EINTR: nothing is unblocked, but cheap */
		if (pfd[0].revents)
			break; /* jobd closed the pipe, or died */
		while (read(SIG_FD, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo == SIGTERM)
				kill(-cmd, SIGTERM);
		while ((p = waitpid(-1, &wst, WNOHANG)) > 0)
			if (p == cmd) {
				st = wst;
				cmd_reaped = true;
			}
		if (cmd_reaped)
			break;
	}
	kill_tree(cmd, &st, &cmd_reaped);
	if (!cmd_reaped)
		_exit(127);
	exit_as(st);
}
