/*
 * notify: sd_notify's datagram, without libsystemd (notify.h). A socket is
 * made for each message: jobd sends a handful a minute, and a kept socket
 * would need a lock between the threads that send.
 */
#include "config.h"

#include "base/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int64_t watchdog_ms;

void jobd_notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	int64_t us = 0, p = 0;

	if (path && strlen(path) < sizeof(notify_path))
		strcpy(notify_path, path);
	if (usec && jobd_util_parse_i64(usec, &us) == 0 && us > 0 &&
	    (!pid || !*pid ||
	     (jobd_util_parse_i64(pid, &p) == 0 && p == (int64_t)getpid())))
		watchdog_ms = us / 1000 > 0 ? us / 1000 : 1;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int jobd_notify(const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(notify_path);
	socklen_t salen;
	ssize_t n;
	int fd, err = 0;

	if (len == 0)
		return 0;
	if (notify_path[0] != '/' && notify_path[0] != '@')
		return -EINVAL;
	memcpy(sa.sun_path, notify_path, len);
	if (notify_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: the name has no NUL */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			    (notify_path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&sa, salen);
	if (n < 0)
		err = -errno;
	close(fd);
	return err ? err : 1;
}

int64_t jobd_notify_watchdog_ms(void)
{
	return watchdog_ms;
}
