/*
 * notify: the service manager's readiness protocol (sd_notify(3)), spoken
 * directly: one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET
 * ('@' at its start names an abstract socket). Without the variable
 * (not run by systemd, or Type= is not notify) every call does nothing.
 * No libsystemd: a few lines, and one less dependency to install.
 */
#ifndef JOBD_SRC_BASE_NOTIFY_H
#define JOBD_SRC_BASE_NOTIFY_H

#include <stdint.h>

/*
 * Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and removes them
 * from the environment, so the programs jobs run do not inherit them.
 * Call once, before any thread starts.
 */
void jobd_notify_init(void);

/*
 * Sends STATE ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=...",
 * several separated by newlines). Returns 1 when sent, 0 without
 * $NOTIFY_SOCKET, or a negative errno.
 */
int jobd_notify(const char *state);

/*
 * The watchdog interval systemd expects pings within ($WATCHDOG_USEC when
 * $WATCHDOG_PID is unset or this process), in ms; 0 when there is none.
 */
int64_t jobd_notify_watchdog_ms(void);

#endif
