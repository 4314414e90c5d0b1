// SPDX-License-Identifier: MIT
/*
 * retrieve-all: liveupdate_session_retrieve_all() across a real update.
 *
 *   files-retrieve-all MODE CASE
 *
 * MODE is how the files cross: "carrier" (exec mode, in flight),
 * "inherit" (exec mode, LUO_INIT_EXEC_INHERIT), "trusted" (exec mode, in
 * flight, LUO_INIT_TRUST_CARRIER) or "spawn" (spawn mode, received
 * ahead).  The old image preserves NFILES memfds under scattered tokens
 * in session "bulk" (each holds its own token) and 5 under tokens 1 to 5
 * in session "rising"; the new image writes "ok" or what failed to a
 * result file the test reads.
 *
 *   set      one call hands out exactly the preserved set, each file
 *            under its token, FD_CLOEXEC, in handover order for
 *            "rising"; a second call hands out nothing, a retrieval by
 *            token of one of them is -EALREADY
 *   args     NULL session or array: -EINVAL; too small an array: -ENOSPC
 *            and nothing retrieved; an outgoing session: -EINVAL
 *   mixed    half the tokens retrieved one by one first: the call hands
 *            out exactly the other half
 *   stale    the sealed identity of one file rewritten at freeze: that
 *            entry is -ESTALE with fd -1 (again on the next call), the
 *            others are handed out
 *   callback a handler with a retrieve callback (the per-file path): it
 *            runs once per file, and the call from inside it is -EDEADLK
 *   dup      one token of "bulk" rewritten at freeze to repeat another:
 *            the new image refuses the handover with -EBADMSG
 *   dup-rising the same in "rising" (1, 2, 2, 4, 5: tokens that rise
 *            need no index to be told apart, these do not quite rise)
 *   sealed   the rewrite of "stale" without LUO_SEAL_FULL=1: the seal
 *            uses the file table's checksum taken at prepare, so the new
 *            image refuses the handover (-EBADMSG) rather than adopt a
 *            table changed behind the library's back
 *
 * stale, dup and dup-rising edit the arena before the seal, so they run
 * with LUO_SEAL_FULL=1: the seal then reads every block again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <luo/abi.h>
#include <luo/luo.h>

#include "common.h"

#define NFILES 300
#define NRISING 5
#define NCB 3

static const char *mode, *tcase, *out;
static char failure[512];

#define FAIL(...)                                                              \
	do {                                                                   \
		if (!*failure)                                                 \
			snprintf(failure, sizeof(failure), __VA_ARGS__);       \
	} while (0)
#define EXPECT_EQ(a, b)                                                        \
	do {                                                                   \
		long long a_ = (a), b_ = (b);                                  \
		if (a_ != b_)                                                  \
			FAIL("line %d: %s is %lld, expected %lld", __LINE__,   \
			     #a, a_, b_);                                      \
	} while (0)

static int index_of(uint64_t token)
{
	for (int i = 0; i < NFILES; i++)
		if (scattered_token(i) == token)
			return i;
	return -1;
}

static unsigned int init_flags(void)
{
	if (!strcmp(mode, "inherit"))
		return LUO_INIT_EXEC_INHERIT;
	if (!strcmp(mode, "trusted"))
		return LUO_INIT_TRUST_CARRIER;
	return 0;
}

/* The memfd holds its token as 16 hex digits. */
static bool holds_token(int fd, uint64_t token)
{
	char want[32], got[32] = "";

	snprintf(want, sizeof(want), "%016llx", (unsigned long long)token);
	return pread(fd, got, sizeof(got), 0) == 16 && !memcmp(got, want, 16);
}

static int memfd_with(const char *name, uint64_t token)
{
	char text[32];
	int fd = memfd_create(name, MFD_CLOEXEC);

	snprintf(text, sizeof(text), "%016llx", (unsigned long long)token);
	if (fd < 0 || write(fd, text, 16) != 16)
		return -1;
	return fd;
}

/* A handler with a retrieve callback for memfds named "bulk-cb". */
static struct luo_session *cb_session;
static int cb_calls, cb_err = 1;

static bool cb_can(struct liveupdate_file_handler *h, int fd)
{
	char path[64], link[64];
	ssize_t n;

	(void)h;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	return n > 0 && (link[n] = 0, !strncmp(link, "/memfd:bulk-cb", 14));
}

static int cb_preserve(struct liveupdate_file_op_args *args)
{
	args->serialized_data = 0xcb;
	return 0;
}

static int cb_retrieve(struct liveupdate_file_op_args *args)
{
	cb_calls++;
	cb_err = liveupdate_session_retrieve_all(cb_session, NULL, 0);
	return args->serialized_data == 0xcb ? 0 : -EINVAL;
}

static const struct liveupdate_file_ops cb_ops = {
	.can_preserve = cb_can,
	.preserve = cb_preserve,
	.retrieve = cb_retrieve,
};
static struct liveupdate_file_handler cb_handler = {.ops = &cb_ops,
						    .compatible = "bulk-cb-v1"};

/* The whole arena mapped writable (*@len bytes), or NULL. */
static char *map_arena(size_t *len)
{
	int fd = arena_memfd();
	struct stat st;
	char *buf;

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	*len = (size_t)st.st_size;
	buf = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return buf == MAP_FAILED ? NULL : buf;
}

/* Rewrite, in the arena before the seal, token @from of a memfd to @to. */
static int rewrite_token(uint64_t from, uint64_t to)
{
	size_t tok_off = offsetof(struct luo_file_ser, token), len;
	char *buf = map_arena(&len);
	int found = -EIO;

	if (!buf)
		return -EIO;
	for (size_t i = 0; i + sizeof(struct luo_file_ser) <= len; i += 8) {
		uint64_t t;

		memcpy(&t, buf + i + tok_off, sizeof(t));
		if (t != from || strcmp(buf + i, "memfd-v1"))
			continue;
		memcpy(buf + i + tok_off, &to, sizeof(to));
		found = 0;
		break;
	}
	munmap(buf, len);
	return found;
}

/* The identity of a preserved memfd, to find its luo_file_fd_ser. */
static uint64_t victim_ino;

static int rewrite_identity(void)
{
	size_t len;
	char *buf = map_arena(&len);
	int found = -EIO;

	if (!buf)
		return -EIO;
	for (size_t i = 0; i + sizeof(struct luo_file_fd_ser) <= len; i += 8) {
		struct luo_file_fd_ser id;

		memcpy(&id, buf + i, sizeof(id));
		if (id.ino != victim_ino || id.mode != S_IFREG)
			continue;
		id.ino += 1000003;
		memcpy(buf + i, &id, sizeof(id));
		found = 0;
		break;
	}
	munmap(buf, len);
	return found;
}

/* The new image must refuse the handover. */
static bool refused_case(void)
{
	return !strncmp(tcase, "dup", 3) || !strcmp(tcase, "sealed");
}

static int sub_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	*data = 0;
	if (!strcmp(tcase, "dup"))
		return rewrite_token(scattered_token(7), scattered_token(3));
	if (!strcmp(tcase, "dup-rising"))
		return rewrite_token(3, 2);
	if (!strcmp(tcase, "stale") || !strcmp(tcase, "sealed"))
		return rewrite_identity();
	return 0;
}

static const struct liveupdate_subsystem_ops sub_ops = {.freeze = sub_freeze};
static struct liveupdate_subsystem sub = {.ops = &sub_ops,
					  .name = "retrieve-all-test"};

static int old_image(const char *self)
{
	char *argv[] = {(char *)self,  "--new",	    (char *)mode,
			(char *)tcase, (char *)out, NULL};
	struct luo_session *s, *r;
	struct stat st;
	int err;

	if (!strcmp(tcase, "stale") || !strncmp(tcase, "dup", 3))
		setenv("LUO_SEAL_FULL", "1", 1);
	if (luo_init(&(struct luo_init_opts){.flags = init_flags()}) ||
	    liveupdate_register_file_handler(&cb_handler) ||
	    liveupdate_register_subsystem(&sub) ||
	    liveupdate_create_session("bulk", &s) ||
	    liveupdate_create_session("rising", &r))
		return 1;
	for (int i = 0; i < NFILES; i++) {
		int fd = memfd_with("bulk", scattered_token(i));

		if (fd < 0 ||
		    liveupdate_session_preserve_fd(s, fd, scattered_token(i)))
			return 1;
		if (i == 11 && (fstat(fd, &st) || !(victim_ino = st.st_ino)))
			return 1;
		close(fd);
	}
	for (int i = 0; !strcmp(tcase, "callback") && i < NCB; i++) {
		int fd = memfd_with("bulk-cb", 1000 + i);

		if (fd < 0 || liveupdate_session_preserve_fd(s, fd, 1000 + i))
			return 1;
		close(fd);
	}
	for (int i = 1; i <= NRISING; i++) {
		int fd = memfd_with("rising", i);

		if (fd < 0 || liveupdate_session_preserve_fd(r, fd, i))
			return 1;
		close(fd);
	}
	if (!strcmp(mode, "spawn")) {
		struct liveupdate_update_opts o = {
			.mode = LIVEUPDATE_MODE_SPAWN,
			.path = self,
			.argv = argv,
			.deadline_ms = 30000};
		struct liveupdate_update_report rep;

		err = liveupdate_update(&o, &rep);
		/*
		 * The new image refuses a corrupt handover and is rolled
		 * back (killed, maybe before it could write): the report
		 * says why, and this image writes the result.
		 */
		if (refused_case()) {
			FILE *f = fopen(out, "w");

			if (!f)
				return 1;
			if (err == -ECANCELED && rep.error == -EBADMSG)
				fprintf(f, "ok\n");
			else
				fprintf(f, "update: %d, report error %d (%s)\n",
					err, rep.error, rep.text);
			fclose(f);
			return 0;
		}
		if (err)
			fprintf(stderr,
				"old image: the update failed: %s (%s)\n",
				strerror(-err), rep.text);
		return err ? 1 : 0;
	}
	err = liveupdate_prepare() ?: liveupdate_reboot(self, argv, NULL);
	fprintf(stderr, "old image: the exec failed: %s\n", strerror(-err));
	return 1;
}

/* Check a call's entries against the tokens it should hand out. */
static void check_entries(const struct liveupdate_session_file *f, int n,
			  const bool *want, int nwant)
{
	static bool seen[NFILES];
	int got = 0;

	memset(seen, 0, sizeof(seen));
	for (int k = 0; k < n; k++) {
		int i = index_of(f[k].token);

		if (i < 0 || !want[i] || seen[i]) {
			FAIL("entry %d: token %#llx is not one to hand out, or twice",
			     k, (unsigned long long)f[k].token);
			return;
		}
		seen[i] = true;
		if (f[k].err || f[k].fd < 0 ||
		    !holds_token(f[k].fd, f[k].token) ||
		    fcntl(f[k].fd, F_GETFD) != FD_CLOEXEC) {
			FAIL("token %#llx: err %d fd %d, not its file with FD_CLOEXEC",
			     (unsigned long long)f[k].token, f[k].err, f[k].fd);
			return;
		}
		got++;
	}
	EXPECT_EQ(got, nwant);
}

static void case_set(struct luo_session *s, struct luo_session *r)
{
	static struct liveupdate_session_file f[NFILES + 1];
	static bool all[NFILES];
	int fd, n;

	memset(all, 1, sizeof(all));
	EXPECT_EQ(liveupdate_session_get_tokens(s, NULL, 0), NFILES);
	n = liveupdate_session_retrieve_all(s, f, NFILES + 1);
	EXPECT_EQ(n, NFILES);
	check_entries(f, n, all, NFILES);
	EXPECT_EQ(liveupdate_session_retrieve_all(s, f, NFILES), 0);
	EXPECT_EQ(liveupdate_session_retrieve_fd(s, scattered_token(5), &fd),
		  -EALREADY);
	EXPECT_EQ(liveupdate_session_get_tokens(s, NULL, 0), NFILES);
	n = liveupdate_session_retrieve_all(r, f, NRISING);
	EXPECT_EQ(n, NRISING);
	for (int k = 0; k < n && k < NRISING; k++) {
		EXPECT_EQ(f[k].token, k + 1);
		EXPECT_EQ(f[k].err, 0);
		if (!holds_token(f[k].fd, k + 1))
			FAIL("rising token %d: not its file", k + 1);
	}
}

static void case_args(struct luo_session *s)
{
	static struct liveupdate_session_file f[NFILES];
	static bool rest[NFILES];
	struct luo_session *o;
	int fd = -1, n;

	EXPECT_EQ(liveupdate_session_retrieve_all(NULL, f, NFILES), -EINVAL);
	EXPECT_EQ(liveupdate_session_retrieve_all(s, NULL, NFILES), -EINVAL);
	EXPECT_EQ(liveupdate_session_retrieve_all(s, f, NFILES - 1), -ENOSPC);
	EXPECT_EQ(liveupdate_session_retrieve_all(s, NULL, 0), -ENOSPC);
	/* Nothing was handed out by the refused calls. */
	EXPECT_EQ(liveupdate_session_retrieve_fd(s, scattered_token(0), &fd),
		  0);
	if (!holds_token(fd, scattered_token(0)))
		FAIL("token 0: not its file");
	memset(rest, 1, sizeof(rest));
	rest[0] = false;
	n = liveupdate_session_retrieve_all(s, f, NFILES - 1);
	EXPECT_EQ(n, NFILES - 1);
	check_entries(f, n, rest, NFILES - 1);
	EXPECT_EQ(liveupdate_session_retrieve_all(s, NULL, 0), 0);
	if (liveupdate_create_session("outgoing", &o))
		FAIL("cannot create an outgoing session");
	else
		EXPECT_EQ(liveupdate_session_retrieve_all(o, f, NFILES),
			  -EINVAL);
}

static void case_mixed(struct luo_session *s)
{
	static struct liveupdate_session_file f[NFILES];
	static bool odd[NFILES];
	int fd, n;

	for (int i = 0; i < NFILES; i += 2)
		EXPECT_EQ(liveupdate_session_retrieve_fd(s, scattered_token(i),
							 &fd),
			  0);
	for (int i = 1; i < NFILES; i += 2)
		odd[i] = true;
	n = liveupdate_session_retrieve_all(s, f, NFILES / 2);
	EXPECT_EQ(n, NFILES / 2);
	check_entries(f, n, odd, NFILES / 2);
	EXPECT_EQ(liveupdate_session_retrieve_fd(s, scattered_token(1), &fd),
		  -EALREADY);
}

static void case_stale(struct luo_session *s)
{
	static struct liveupdate_session_file f[NFILES];
	static bool others[NFILES];
	int n, k, want = strcmp(mode, "trusted") ? -ESTALE : 0;

	n = liveupdate_session_retrieve_all(s, f, NFILES);
	EXPECT_EQ(n, NFILES);
	for (k = 0; k < n && f[k].token != scattered_token(11); k++)
		;
	if (k == n) {
		FAIL("token 11 is not listed");
		return;
	}
	EXPECT_EQ(f[k].err, want);
	if (want) {
		EXPECT_EQ(f[k].fd, -1);
		f[k] = f[--n];
	}
	memset(others, 1, sizeof(others));
	others[11] = !want;
	check_entries(f, n, others, want ? NFILES - 1 : NFILES);
	/* Refused again, the only one left. */
	n = liveupdate_session_retrieve_all(s, f, NFILES);
	EXPECT_EQ(n, want ? 1 : 0);
	if (want && n == 1) {
		EXPECT_EQ(f[0].token, scattered_token(11));
		EXPECT_EQ(f[0].err, -ESTALE);
	}
}

static void case_callback(struct luo_session *s)
{
	static struct liveupdate_session_file f[NFILES + NCB];
	static bool all[NFILES];
	int n, k = 0;

	cb_session = s;
	n = liveupdate_session_retrieve_all(s, f, NFILES + NCB);
	EXPECT_EQ(n, NFILES + NCB);
	EXPECT_EQ(cb_calls, NCB);
	EXPECT_EQ(cb_err, -EDEADLK);
	for (int i = 0; i < n; i++) {
		if (f[i].token >= 1000 && f[i].token < 1000 + NCB) {
			if (f[i].err || !holds_token(f[i].fd, f[i].token))
				FAIL("handler's token %llu: err %d",
				     (unsigned long long)f[i].token, f[i].err);
			k++;
		} else {
			f[i - k] = f[i];
		}
	}
	EXPECT_EQ(k, NCB);
	memset(all, 1, sizeof(all));
	check_entries(f, n - k, all, NFILES);
}

static int new_image(void)
{
	struct luo_session *s, *r;
	char tmp[300];
	FILE *f;
	int err;

	err = luo_init(&(struct luo_init_opts){.flags = init_flags()});
	if (refused_case()) {
		/* Spawn mode: the old image says what the refusal was. */
		if (!strcmp(mode, "spawn"))
			return 0;
		EXPECT_EQ(err, -EBADMSG);
		goto out;
	}
	/* Only there: with it registered every file takes the per-file
	 * path, without it the handover's table is handed out directly. */
	if (!err && !strcmp(tcase, "callback"))
		err = liveupdate_register_file_handler(&cb_handler);
	if (err || liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED ||
	    liveupdate_retrieve_session("bulk", &s) ||
	    liveupdate_retrieve_session("rising", &r)) {
		FAIL("the new image did not adopt: %s", strerror(-err));
		goto out;
	}
	if (!strcmp(tcase, "set"))
		case_set(s, r);
	else if (!strcmp(tcase, "args"))
		case_args(s);
	else if (!strcmp(tcase, "mixed"))
		case_mixed(s);
	else if (!strcmp(tcase, "stale"))
		case_stale(s);
	else if (!strcmp(tcase, "callback"))
		case_callback(s);
	EXPECT_EQ(liveupdate_session_finish(s), 0);
	EXPECT_EQ(liveupdate_session_finish(r), 0);
	EXPECT_EQ(liveupdate_finish(), 0);
out:
	/* Whole or not at all: in spawn mode the test reads it while this
	 * image may still be writing (it goes on after the old one ends). */
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	f = fopen(tmp, "w");
	if (!f)
		return 1;
	fprintf(f, "%s\n", *failure ? failure : "ok");
	if (fclose(f) || rename(tmp, out))
		return 1;
	return 0;
}

/* Run the old image; wait (bounded) for the new one's result. */
static int run_test(const char *self)
{
	char dir[] = "/tmp/luo-retrieve-all-XXXXXX", path[256], res[600];
	char *argv[] = {(char *)self,  "--old", (char *)mode,
			(char *)tcase, path,	NULL};
	struct timespec ts = {0, 20 * 1000 * 1000};
	int status;
	pid_t pid;
	FILE *f = NULL;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/result", dir);
	pid = fork();
	if (pid == 0) {
		execv(self, argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "FAIL: %s %s: the image ended with %#x\n", mode,
			tcase, status);
		return 1;
	}
	/* Spawn mode: the new image goes on after the old one ends. */
	for (int i = 0; i < 1500 && !f; i++) {
		f = fopen(path, "r");
		if (!f)
			nanosleep(&ts, NULL);
	}
	if (!f || !fgets(res, sizeof(res), f)) {
		fprintf(stderr, "FAIL: %s %s: the new image wrote no result\n",
			mode, tcase);
		return 1;
	}
	fclose(f);
	unlink(path);
	rmdir(dir);
	if (strcmp(res, "ok\n")) {
		fprintf(stderr, "FAIL: %s %s: %s", mode, tcase, res);
		return 1;
	}
	printf("ok: %s %s\n", mode, tcase);
	return 0;
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		return 1;
	self[n] = 0;
	if (argc == 5 &&
	    (!strcmp(argv[1], "--old") || !strcmp(argv[1], "--new"))) {
		mode = argv[2];
		tcase = argv[3];
		out = argv[4];
		return argv[1][2] == 'o' ? old_image(self) : new_image();
	}
	if (argc != 3) {
		fprintf(stderr,
			"usage: %s carrier|inherit|trusted|spawn CASE\n",
			argv[0]);
		return 2;
	}
	mode = argv[1];
	tcase = argv[2];
	return run_test(self);
}
