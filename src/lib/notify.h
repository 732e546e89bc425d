/*
 * notify.h - tell a service manager how the daemon is doing.
 *
 * systemd's readiness protocol (sd_notify(3)), written out here so that
 * posternd needs no libsystemd: when NOTIFY_SOCKET names a Unix datagram
 * socket, each state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...")
 * is one datagram to it. Without NOTIFY_SOCKET nothing happens, so the
 * calls cost nothing under OpenRC, sysvinit or a shell.
 */
#ifndef POSTERN_NOTIFY_H
#define POSTERN_NOTIFY_H

/*
 * Send state to the service manager. Returns 1 when sent, 0 when no
 * manager listens, -1 with errno when the socket named could not be used.
 */
int svc_notify(const char *state);

#endif
