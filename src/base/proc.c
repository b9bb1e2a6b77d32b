/*
 * base/proc: the process_* figures the Prometheus client libraries
 * export, read the way they read them: /proc/self/stat for CPU time,
 * resident pages and the start (in clock ticks after boot, plus btime of
 * /proc/stat), /proc/self/fd for the descriptors, getrlimit() for their
 * limit. A scrape reads them afresh: nothing is kept.
 */
#include "config.h"

#include "base/proc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Fields 14 (utime), 15 (stime), 22 (starttime) and 24 (rss) of
 * /proc/self/stat; the second field, the command, may hold spaces and
 * parentheses, so the count starts after its last ')'. */
static int read_stat(unsigned long long *ticks, unsigned long long *start,
		     long long *rss_pages)
{
	char buf[1024], *p;
	unsigned long long utime, stime;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (!(p = strrchr(buf, ')')))
		return -EINVAL;
	/* After ')': field 3 (state) onwards. */
	if (sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
		   " %*d %*d %*d %*d %*d %*d %llu %*u %lld",
		   &utime, &stime, start, rss_pages) != 4)
		return -EINVAL;
	*ticks = utime + stime;
	return 0;
}

/* The boot time, s since the epoch ("btime" of /proc/stat). */
static int read_btime(long long *btime)
{
	char line[256];
	FILE *f = fopen("/proc/stat", "r");
	int rc = -EINVAL;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", btime) == 1) {
			rc = 0;
			break;
		}
	fclose(f);
	return rc;
}

static int count_fds(int64_t *n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return -errno;
	*n = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			(*n)++;
	closedir(d);
	/* Not the one opendir() held while counting. */
	(*n)--;
	return 0;
}

int jobd_proc_stats(struct jobd_proc_stats *out)
{
	unsigned long long ticks, start;
	long long rss, btime;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	int rc;

	memset(out, 0, sizeof(*out));
	if (hz <= 0 || page <= 0)
		return -EINVAL;
	if ((rc = read_stat(&ticks, &start, &rss)) < 0 ||
	    (rc = read_btime(&btime)) < 0 ||
	    (rc = count_fds(&out->open_fds)) < 0)
		return rc;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	out->cpu_seconds = (double)ticks / (double)hz;
	out->resident_bytes = (int64_t)rss * page;
	out->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_cur;
	out->start_time = (double)btime + (double)start / (double)hz;
	return 0;
}
