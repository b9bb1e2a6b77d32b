/*
 * reaper: the process between jobd and an exec handler, which makes sure
 * that nothing the handler started outlives it, or outlives jobd.
 *
 * jobd forks the reaper; the reaper forks and execs the command. The
 * reaper is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever the
 * command starts stays below it even when it double-forks or calls
 * setsid(): an orphan is reparented to the reaper, not to init. It ends
 * the whole tree (SIGKILL to every descendant, until it has no child
 * left) when
 *
 *   - the command exits: the rest of its tree must not run on unseen;
 *   - jobd closes the write end of the "life" pipe (force stop, a lost
 *     lease, a timeout), or jobd dies, whatever kills it: the kernel
 *     closes that end then, even after kill -9, so the read end reports
 *     end of file.
 *
 * and then exits with the command's own wait status (exit code, or the
 * same signal), so jobd reads the command's outcome from the reaper's.
 * SIGTERM sent to the reaper (a stop) goes on to the command's process
 * group.
 *
 * The reaper runs in the child of fork() of a multithreaded process and
 * never execs: it makes async-signal-safe calls only (no malloc, no
 * stdio), which is why it lists descendants from
 * /proc/self/task/PID/children with read(2) into a stack buffer.
 *
 * Rejected: PR_SET_PDEATHSIG alone (what jobd had: it reaches only the
 * direct child, whose children are reparented to init and run on); a
 * cgroup per handler with cgroup.kill (needs cgroup v2 with a delegated
 * subtree, which neither a plain service nor this CI machine's hybrid
 * v1 hierarchy gives, and Linux 5.14); a separate helper binary (one more
 * thing to install and find; the fork already has everything).
 */
#ifndef JOBD_SRC_HANDLERS_REAPER_H
#define JOBD_SRC_HANDLERS_REAPER_H

struct jobd_reaper_spec {
	const char *path;  /* program, borrowed */
	char *const *argv; /* borrowed */
	char *const *env;  /* borrowed */
	int in, out, err;  /* the command's stdin, stdout, stderr */
	int life;	   /* read end of the life pipe */
};

/*
 * The reaper's whole life, in the child of fork(): never returns. Closes
 * every descriptor but the spec's (the life pipe's write end included).
 */
void jobd_reaper_main(const struct jobd_reaper_spec *spec)
	__attribute__((noreturn));

#endif
