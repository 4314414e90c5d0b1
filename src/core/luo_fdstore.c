// SPDX-License-Identifier: MIT
/*
 * The service manager's descriptor store as a backstop for crashes
 * (include/luo/fdstore.h, docs/systemd.md): preserved listeners and the
 * arena memfd are also handed to systemd (FDSTORE=1, FDNAME=), which keeps
 * them while a crashed unit restarts and passes them back in LISTEN_FDS.
 * A live update needs none of this: it carries everything itself, and
 * systemd ignores a descriptor it already holds.
 *
 * Names: "luo.arena", and "luo.s.SESSION.TOKEN" for a session's file
 * (the token in decimal, so the last dot ends the session's name).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <luo/abi.h>
#include <luo/fdstore.h>

#include "log.h"
#include "luo_fdstore.h"
#include "luo_notify.h"

#define ARENA_NAME "luo.arena"
#define NAME_MAX_LEN 256 /* systemd's FDNAME limit is 255 */
#define RECOVERED_MAX 256

struct named_fd {
	char name[NAME_MAX_LEN];
	int fd; /* -1 once handed out or closed */
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;
static bool store_enabled;
/* What the manager handed back at start, until taken or released. */
static struct named_fd recovered[RECOVERED_MAX];
static size_t nrecovered;
/* The names this image put in the store, for FDSTOREREMOVE=1. */
static char (*pushed)[NAME_MAX_LEN];
static size_t npushed, pushed_cap;

static bool session_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
	       c == '+' || c == ',';
}

/* "luo.s.SESSION.TOKEN"; false if it does not fit. */
static bool file_name(char *buf, const char *session, uint64_t token)
{
	size_t n = (size_t)snprintf(buf, NAME_MAX_LEN, "luo.s.");

	for (const char *p = session; *p; p++) {
		if (n + 4 >= NAME_MAX_LEN)
			return false;
		if (session_char_ok(*p))
			buf[n++] = *p;
		else
			n += (size_t)snprintf(buf + n, 4, "%%%02X",
					      (unsigned char)*p);
	}
	return (size_t)snprintf(buf + n, NAME_MAX_LEN - n, ".%llu",
				(unsigned long long)token) < NAME_MAX_LEN - n;
}

/* The variables of socket activation, if they are for this process. */
static void take_listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	long n;

	bool all_ours = true;

	/* A live update's new image: these name the previous image's fds. */
	if (getenv(LUO_HANDOVER_ENV))
		return;
	if (!pid || !nfds || !names || strtol(pid, NULL, 10) != getpid())
		return;
	n = strtol(nfds, NULL, 10);
	for (long i = 0; i < n && names && nrecovered < RECOVERED_MAX; i++) {
		const char *end = strchr(names, ':');
		size_t len = end ? (size_t)(end - names) : strlen(names);

		if (len > 4 && len < NAME_MAX_LEN &&
		    !strncmp(names, "luo.", 4)) {
			struct named_fd *r = &recovered[nrecovered++];

			memcpy(r->name, names, len);
			r->name[len] = '\0';
			r->fd = 3 + (int)i;
			fcntl(r->fd, F_SETFD, FD_CLOEXEC);
		} else {
			all_ours = false;
		}
		names = end ? end + 1 : NULL;
	}
	if (!nrecovered)
		return;
	pr_info("the service manager handed back %zu descriptor%s kept through the previous process's end",
		nrecovered, nrecovered == 1 ? "" : "s");
	/*
	 * Stale in any image this one execs into (same PID); left for the
	 * service when some are its own (socket activation), which it must
	 * then read before a live update.
	 */
	if (!all_ours)
		return;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

static void capture(void)
{
	const char *v = getenv("FDSTORE"), *opt = getenv("LUO_FDSTORE");

	store_enabled =
		luo_notify_enabled() &&
		((v && strtol(v, NULL, 10) > 0) || (opt && !strcmp(opt, "1")));
	take_listen_fds();
}

void luo_fdstore_capture(void)
{
	pthread_once(&store_once, capture);
}

static bool was_pushed(const char *name, bool forget)
{
	for (size_t i = 0; i < npushed; i++) {
		if (strcmp(pushed[i], name))
			continue;
		if (forget)
			memmove(pushed[i], pushed[i + 1],
				(npushed-- - i - 1) * sizeof(*pushed));
		return true;
	}
	return false;
}

/* Under store_lock.  Return: false on allocation failure. */
static bool note_pushed(const char *name)
{
	if (npushed == pushed_cap) {
		size_t cap = pushed_cap ? pushed_cap * 2 : 16;
		void *p = realloc(pushed, cap * sizeof(*pushed));

		if (!p)
			return false;
		pushed = p;
		pushed_cap = cap;
	}
	snprintf(pushed[npushed++], NAME_MAX_LEN, "%s", name);
	return true;
}

/* Under store_lock. */
static void push(const char *name, int fd)
{
	char msg[NAME_MAX_LEN + 32];

	if (!was_pushed(name, false) && !note_pushed(name)) {
		pr_warn("descriptor store: out of memory; %s is not kept through a crash",
			name);
		return;
	}
	/* Sent again after an update too: systemd keeps one copy. */
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	if (luo_notify_fds(msg, &fd, 1) < 0)
		pr_warn("descriptor store: %s was not stored; check FileDescriptorStoreMax= in the unit",
			name);
}

/* Under store_lock. */
static void remove_name(const char *name)
{
	char msg[NAME_MAX_LEN + 32];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	luo_notify(msg);
}

void luo_fdstore_arena(int fd, bool adopted)
{
	luo_fdstore_capture();
	pthread_mutex_lock(&store_lock);
	if (adopted) {
		/*
		 * A live update's arena is the very file the first image
		 * stored: note it for the removal at exit, send nothing
		 * (this runs inside the blackout).
		 */
		if (store_enabled && !was_pushed(ARENA_NAME, false))
			note_pushed(ARENA_NAME);
		pthread_mutex_unlock(&store_lock);
		return;
	}
	for (size_t i = 0; i < nrecovered; i++) {
		struct named_fd *r = &recovered[i];

		if (r->fd < 0 || strcmp(r->name, ARENA_NAME))
			continue;
		pr_warn("descriptor store: the arena of a process that ended without a handover (a crash) came back, and this service ignores handovers; starting with a fresh arena");
		close(r->fd);
		r->fd = -1;
		remove_name(ARENA_NAME);
	}
	if (store_enabled && fd >= 0)
		push(ARENA_NAME, fd);
	pthread_mutex_unlock(&store_lock);
}

int luo_fdstore_take_arena(void)
{
	int fd = -1;

	luo_fdstore_capture();
	pthread_mutex_lock(&store_lock);
	for (size_t i = 0; i < nrecovered && fd < 0; i++) {
		if (recovered[i].fd >= 0 &&
		    !strcmp(recovered[i].name, ARENA_NAME)) {
			fd = recovered[i].fd;
			recovered[i].fd = -1;
		}
	}
	pthread_mutex_unlock(&store_lock);
	return fd;
}

void luo_fdstore_arena_refused(void)
{
	pthread_mutex_lock(&store_lock);
	remove_name(ARENA_NAME);
	pthread_mutex_unlock(&store_lock);
}

void luo_fdstore_arena_gone(void)
{
	pthread_mutex_lock(&store_lock);
	if (was_pushed(ARENA_NAME, true))
		remove_name(ARENA_NAME);
	pthread_mutex_unlock(&store_lock);
}

void luo_fdstore_preserved(const char *session, uint64_t token, int fd)
{
	char name[NAME_MAX_LEN];
	int acc = 0;
	socklen_t len = sizeof(acc);

	luo_fdstore_capture();
	if (!store_enabled ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc)
		return;
	if (!file_name(name, session, token)) {
		pr_warn("descriptor store: the name for session '%s' token %llu is too long; this listener is not kept through a crash",
			session, (unsigned long long)token);
		return;
	}
	pthread_mutex_lock(&store_lock);
	push(name, fd);
	pthread_mutex_unlock(&store_lock);
}

void luo_fdstore_unpreserved(const char *session, uint64_t token)
{
	char name[NAME_MAX_LEN];

	/* Nothing was stored without a store: no work per closed client. */
	if (!store_enabled || !file_name(name, session, token))
		return;
	pthread_mutex_lock(&store_lock);
	if (was_pushed(name, true))
		remove_name(name);
	pthread_mutex_unlock(&store_lock);
}

int liveupdate_fdstore_retrieve(const char *session, uint64_t token, int *fd)
{
	char name[NAME_MAX_LEN];
	int err = -ENOENT;

	if (!session || !fd || !file_name(name, session, token))
		return -EINVAL;
	luo_fdstore_capture();
	pthread_mutex_lock(&store_lock);
	for (size_t i = 0; i < nrecovered; i++) {
		if (recovered[i].fd >= 0 && !strcmp(recovered[i].name, name)) {
			*fd = recovered[i].fd;
			recovered[i].fd = -1;
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&store_lock);
	return err;
}

void luo_fdstore_release_unclaimed(void)
{
	pthread_mutex_lock(&store_lock);
	for (size_t i = 0; i < nrecovered; i++) {
		struct named_fd *r = &recovered[i];

		if (r->fd < 0)
			continue;
		pr_info("descriptor store: %s came back but the service did not take it; closed and removed from the store",
			r->name);
		close(r->fd);
		r->fd = -1;
		if (!was_pushed(r->name, false))
			remove_name(r->name);
	}
	pthread_mutex_unlock(&store_lock);
}
