// SPDX-License-Identifier: MIT
/*
 * Where services listen, by the library's rule (luo_ctl_default_path()):
 * /run/luo/NAME.sock for root, $XDG_RUNTIME_DIR/luo/NAME.sock for other
 * users, /tmp/luo-UID/NAME.sock for those started without
 * XDG_RUNTIME_DIR.  A service and luoctl may not share an environment,
 * so luoctl looks in every place the rule can give for its user, and
 * root in every user's (its services are theirs to control, and root may).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luo_control_proto.h"
#include "luoctl.h"

/*
 * A directory the library would have made for @uid: a real directory that
 * @uid owns and only it can write.  Anything else under /tmp may be
 * someone else's bait.
 */
static bool dir_of(const char *dir, unsigned uid)
{
	struct stat st;

	return !lstat(dir, &st) && S_ISDIR(st.st_mode) && st.st_uid == uid &&
	       !(st.st_mode & 0022);
}

static bool is_socket(const char *path, unsigned *uid)
{
	struct stat st;

	if (lstat(path, &st) || !S_ISSOCK(st.st_mode))
		return false;
	if (uid)
		*uid = st.st_uid;
	return true;
}

/* Parse the UID of "luo-UID" (or of a plain number for /run/user/UID). */
static bool uid_of(const char *s, const char *prefix, unsigned *uid)
{
	size_t n = strlen(prefix);
	char *end;
	unsigned long v;

	if (strncmp(s, prefix, n) || !s[n])
		return false;
	errno = 0;
	v = strtoul(s + n, &end, 10);
	if (errno || *end || v > 0xffffffffUL)
		return false;
	*uid = (unsigned)v;
	return true;
}

/*
 * Every directory services may listen in, with the uid that must own it:
 * for root /run/luo and every user's; otherwise this user's own.
 */
static void for_each_dir(void (*fn)(const char *dir, unsigned uid, void *arg),
			 void *arg)
{
	unsigned me = (unsigned)geteuid(), uid;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[PATH_MAX_LUO];
	struct dirent *e;
	DIR *d;

	if (me == 0 && dir_of("/run/luo", 0))
		fn("/run/luo", 0, arg);
	if (me != 0 && xdg && *xdg == '/') {
		snprintf(dir, sizeof(dir), "%s/luo", xdg);
		if (dir_of(dir, me))
			fn(dir, me, arg);
	}
	d = opendir("/run/user");
	while (d && (e = readdir(d))) {
		if (!uid_of(e->d_name, "", &uid) || (me && uid != me))
			continue;
		snprintf(dir, sizeof(dir), "/run/user/%u/luo", uid);
		/* XDG_RUNTIME_DIR's own was done above. */
		if (me && xdg && !strncmp(dir, xdg, strlen(xdg)) &&
		    !strcmp(dir + strlen(xdg), "/luo"))
			continue;
		if (dir_of(dir, uid))
			fn(dir, uid, arg);
	}
	if (d)
		closedir(d);
	d = opendir("/tmp");
	while (d && (e = readdir(d))) {
		if (!uid_of(e->d_name, "luo-", &uid) || (me && uid != me))
			continue;
		snprintf(dir, sizeof(dir), "/tmp/luo-%u", uid);
		if (dir_of(dir, uid))
			fn(dir, uid, arg);
	}
	if (d)
		closedir(d);
}

struct find {
	const char *name;
	char first[PATH_MAX_LUO];
	char found[4][PATH_MAX_LUO];
	int n;
};

static void find_in(const char *dir, unsigned uid, void *arg)
{
	struct find *f = arg;
	char path[PATH_MAX_LUO];
	unsigned owner;

	snprintf(path, sizeof(path), "%s/%s.sock", dir, f->name);
	if (!is_socket(path, &owner) || owner != uid || !strcmp(path, f->first))
		return;
	if (f->n < 4)
		snprintf(f->found[f->n], sizeof(f->found[0]), "%s", path);
	f->n++;
}

int find_service(const char *name, char *path, size_t len)
{
	struct find f = {.name = name};

	if (!*name || strchr(name, '/') ||
	    luo_ctl_default_path(name, f.first, sizeof(f.first)) ||
	    strlen(f.first) >= len) {
		fprintf(stderr, "luoctl: '%s' is not a service name\n", name);
		return EXIT_USAGE;
	}
	snprintf(path, len, "%s", f.first);
	/* Where this user's service, started like luoctl, listens. */
	if (is_socket(f.first, NULL))
		return 0;
	for_each_dir(find_in, &f);
	if (f.n == 1) {
		snprintf(path, len, "%s", f.found[0]);
		return 0;
	}
	if (f.n > 1) {
		fprintf(stderr,
			"luoctl: %d services are named '%s'; choose one with -S:\n",
			f.n, name);
		for (int i = 0; i < f.n && i < 4; i++)
			fprintf(stderr, "  luoctl -S %s ...\n", f.found[i]);
		return EXIT_USAGE;
	}
	/* None: the default path, whose connect() says so. */
	return 0;
}

struct each {
	void (*fn)(const char *path, unsigned uid, void *arg);
	void *arg;
};

static void list_in(const char *dir, unsigned uid, void *arg)
{
	struct each *each = arg;
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		size_t l = strlen(names[i]->d_name);
		char path[PATH_MAX_LUO];
		unsigned owner;

		size_t dl = strlen(dir);

		if (l > 5 && !strcmp(names[i]->d_name + l - 5, ".sock") &&
		    dl + 1 + l < sizeof(path)) {
			memcpy(path, dir, dl);
			path[dl] = '/';
			memcpy(path + dl + 1, names[i]->d_name, l + 1);
			if (is_socket(path, &owner) && owner == uid)
				each->fn(path, uid, each->arg);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

void for_each_service_socket(void (*fn)(const char *path, unsigned uid,
					void *arg),
			     void *arg)
{
	struct each each = {fn, arg};

	for_each_dir(list_in, &each);
}
