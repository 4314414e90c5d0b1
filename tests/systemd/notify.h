/* SPDX-License-Identifier: MIT */
/* notify: what its files share (notify.c, notify_receiver.c,
 * notify_fdstore.c). */
#ifndef LUO_TESTS_NOTIFY_H
#define LUO_TESTS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One datagram the receiver got. */
struct msg {
	char text[1024];
	pid_t pid;
	uint64_t at_us;
	int fd; /* the first descriptor sent with it, or -1 */
	int nfds;
};

/* notify_receiver.c: the manager's side. */
uint64_t mono_us(void);
/* A receiver like systemd's: SOCK_DGRAM, SO_PASSCRED; its address in
 * @value ("@..." for an abstract one). */
int receiver(bool abstract, char *value, size_t len);
/* Messages until STOPPING=1, the child's exit or 30 s; returns count. */
int collect(int fd, pid_t child, struct msg *m, int max, int *status);
/* "notify service ..." as a child, NOTIFY_SOCKET=@notify or unset. */
pid_t spawn(const char *self, char *const argv[], const char *notify);
bool has_line(const struct msg *m, const char *line);
const char *value_of(const struct msg *m, const char *key);
void show(const struct msg *m, int n);

/* notify_fdstore.c: the descriptor store's cases, both sides. */
int service_fdstore(void);
int service_fdstore_updated(void);
int service_restarted(void);
void fdstore(const char *self);
void restarted(const char *self);

/* notify_fdconn.c: connections in the store. */
int service_conns(void);
int service_conns_restarted(void);
void fdconn(const char *self);
int service_conns_update(void);
int service_conns_update_new(void);
void fdconn_update(const char *self);

#endif
