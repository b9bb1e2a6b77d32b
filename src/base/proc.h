/*
 * base/proc: this process's resources as the kernel counts them (Linux
 * /proc), for the process_* series of /metrics (docs/metrics.md).
 */
#ifndef JOBD_SRC_BASE_PROC_H
#define JOBD_SRC_BASE_PROC_H

#include <stdint.h>

struct jobd_proc_stats {
	double cpu_seconds;	/* user + system CPU time, s */
	int64_t resident_bytes; /* resident set size */
	int64_t open_fds;	/* descriptors open now */
	int64_t max_fds;	/* RLIMIT_NOFILE soft limit; -1: unlimited */
	double start_time;	/* s since the epoch */
};

/*
 * Reads OUT from /proc/self and /proc/stat. Returns 0, or -errno when
 * one of them cannot be read or parsed (OUT is then partly filled and
 * not to be used).
 */
int jobd_proc_stats(struct jobd_proc_stats *out);

#endif
