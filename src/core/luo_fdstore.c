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
 * With LUO_FDSTORE=connections every other preserved socket (connected
 * ones, datagram sockets) is stored too, under the same scheme.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <luo/abi.h>
#include <luo/fdstore.h>

#include "log.h"
#include "luo_hash.h"
#include "luo_fdstore.h"
#include "luo_notify.h"

#define ARENA_NAME "luo.arena"
#define NAME_MAX_LEN 256 /* systemd's FDNAME limit is 255 */

#define FD_CLOSED (-1)
#define FD_HANDED_OUT (-2) /* removed at ready unless preserved again */

struct named_fd {
	char name[NAME_MAX_LEN];
	int fd; /* or FD_CLOSED, FD_HANDED_OUT */
};

/* A name this image put in the store (for FDSTOREREMOVE=1). */
struct pushed_name {
	struct luo_hnode node;
	char name[];
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;
static bool store_enabled, store_connections;
/* What the manager handed back at start, sorted by name, until taken. */
static struct named_fd *recovered;
static size_t nrecovered;
/* Hashed: with connections stored, one look-up per accept and close. */
static struct luo_htable pushed;

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

static bool hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/*
 * Whether @name is one file_name() writes: "luo.s.", a session of
 * allowed characters and %XX (upper-case hex, no escaped character that
 * needs none), a dot, and a token in decimal without leading zeros that
 * fits in 64 bits.  Untrusted: anything may sit in the store.
 */
static bool file_name_valid(const char *name)
{
	const char *dot = strrchr(name, '.'), *p;
	uint64_t token = 0;

	if (strncmp(name, "luo.s.", 6) || !dot || dot == name + 6 - 1 ||
	    dot == name + 6 || !dot[1] || (dot[1] == '0' && dot[2]))
		return false;
	for (p = dot + 1; *p; p++) {
		if (*p < '0' || *p > '9' ||
		    token > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		token = token * 10 + (uint64_t)(*p - '0');
	}
	for (p = name + 6; p < dot; p++) {
		if (*p == '%') {
			if (dot - p < 3 || !hex_digit(p[1]) || !hex_digit(p[2]))
				return false;
			char c =
				(char)strtol((char[]){p[1], p[2], 0}, NULL, 16);

			if (!c || session_char_ok(c))
				return false;
			p += 2;
		} else if (!session_char_ok(*p)) {
			return false;
		}
	}
	return true;
}

static void remove_name(const char *name)
{
	char msg[NAME_MAX_LEN + 32];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	luo_notify(msg);
}

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named_fd *)a)->name,
		      ((const struct named_fd *)b)->name);
}

/*
 * Drop what cannot be handed out under its name: a "luo." name that does
 * not parse, a session's file that is not a socket, a name that came
 * twice (which copy is the right one is unknown: both go).  Sorted after.
 */
static void check_recovered(void)
{
	size_t i, n = 0;

	for (i = 0; i < nrecovered; i++) {
		struct named_fd *r = &recovered[i];
		struct stat st;
		const char *why = NULL;

		if (strcmp(r->name, ARENA_NAME) && !file_name_valid(r->name))
			why = "a name the library does not write";
		else if (strcmp(r->name, ARENA_NAME) &&
			 (fstat(r->fd, &st) || !S_ISSOCK(st.st_mode)))
			why = "not a socket";
		if (why) {
			pr_warn("descriptor store: '%s' handed back is %s; closed and removed from the store",
				r->name, why);
			close(r->fd);
			remove_name(r->name);
			continue;
		}
		recovered[n++] = *r;
	}
	nrecovered = n;
	qsort(recovered, nrecovered, sizeof(*recovered), cmp_named);
	for (i = n = 0; i < nrecovered; i = n) {
		for (n = i + 1; n < nrecovered &&
				!strcmp(recovered[n].name, recovered[i].name);
		     n++)
			;
		if (n - i < 2)
			continue;
		pr_warn("descriptor store: '%s' was handed back %zu times; none is used, all closed and the name removed from the store",
			recovered[i].name, n - i);
		remove_name(recovered[i].name);
		for (size_t k = i; k < n; k++) {
			close(recovered[k].fd);
			recovered[k].fd = -1;
		}
	}
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
	if (n <= 0 || n > 1 << 20)
		return;
	recovered = calloc((size_t)n, sizeof(*recovered));
	if (!recovered) {
		pr_warn("descriptor store: out of memory for the %ld descriptors handed back; they are not used",
			n);
		return;
	}
	for (long i = 0; i < n && names; i++) {
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
	check_recovered();
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

/* A name the service drops; nothing kept for it. */
static struct named_fd *find_recovered(const char *name)
{
	struct named_fd key, *r;

	if (!nrecovered)
		return NULL;
	snprintf(key.name, sizeof(key.name), "%s", name);
	r = bsearch(&key, recovered, nrecovered, sizeof(*recovered), cmp_named);
	return r && r->fd >= 0 ? r : NULL;
}

static void capture(void)
{
	const char *v = getenv("FDSTORE"), *opt = getenv("LUO_FDSTORE");

	bool conns = opt && !strcmp(opt, "connections");

	store_enabled =
		luo_notify_enabled() && ((v && strtol(v, NULL, 10) > 0) ||
					 (opt && !strcmp(opt, "1")) || conns);
	store_connections = store_enabled && conns;
	take_listen_fds();
}

void luo_fdstore_capture(void)
{
	pthread_once(&store_once, capture);
}

static uint64_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return h;
}

/* Under store_lock. */
static bool was_pushed(const char *name, bool forget)
{
	uint64_t key = name_hash(name);

	for (struct luo_hnode *n = luo_hash_find(&pushed, key); n;
	     n = luo_hash_next(n)) {
		struct pushed_name *p =
			luo_hash_entry(n, struct pushed_name, node);

		if (strcmp(p->name, name))
			continue;
		if (forget) {
			luo_hash_del(&pushed, n);
			free(p);
		}
		return true;
	}
	return false;
}

/* Under store_lock.  Return: false on allocation failure. */
static bool note_pushed(const char *name)
{
	size_t len = strlen(name) + 1;
	struct pushed_name *p = malloc(sizeof(*p) + len);

	if (!p)
		return false;
	memcpy(p->name, name, len);
	if (luo_hash_add(&pushed, &p->node, name_hash(name))) {
		free(p);
		return false;
	}
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
	for (struct named_fd *r = find_recovered(ARENA_NAME); r; r = NULL) {
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
	struct named_fd *r = find_recovered(ARENA_NAME);

	if (r) {
		fd = r->fd;
		r->fd = -1;
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
	/* A listener, or with the option any other socket; no other file. */
	if (!store_enabled ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) ||
	    (!acc && !store_connections))
		return;
	if (!file_name(name, session, token)) {
		pr_warn("descriptor store: the name for session '%s' token %llu is too long; this socket is not kept through a crash",
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
	struct named_fd *r = find_recovered(name);

	if (r) {
		*fd = r->fd;
		r->fd = FD_HANDED_OUT;
		err = 0;
	}
	pthread_mutex_unlock(&store_lock);
	return err;
}

int liveupdate_fdstore_forget(const char *session, uint64_t token)
{
	char name[NAME_MAX_LEN];

	if (!session || !file_name(name, session, token))
		return -EINVAL;
	luo_fdstore_capture();
	if (!store_enabled)
		return 0;
	pthread_mutex_lock(&store_lock);
	was_pushed(name, true);
	remove_name(name);
	pthread_mutex_unlock(&store_lock);
	return 0;
}

void luo_fdstore_release_unclaimed(void)
{
	pthread_mutex_lock(&store_lock);
	for (size_t i = 0; i < nrecovered; i++) {
		struct named_fd *r = &recovered[i];

		/* Taken but not preserved again: the store must not keep it. */
		if (r->fd == FD_HANDED_OUT) {
			r->fd = FD_CLOSED;
			if (!was_pushed(r->name, false))
				remove_name(r->name);
			continue;
		}
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
