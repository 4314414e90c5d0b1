// SPDX-License-Identifier: MIT
/* fuzz_handover: descriptors (identities, snapshots), the once-per-process
 * setup and the carrier, the preserved files in flight. */
#define _GNU_SOURCE
#include "fuzz_handover.h"

/* The files to send, by carrier index. */
struct carrier {
	int fd[CARRIER_MAX];
	size_t n;
};

/* ------------------------------------------------------------------ */
/* Descriptors: who is open, and as which file. */

bool fd_identity(int fd, struct fd_id *id)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st))
		return false;
	*id = (struct fd_id){.fd = fd,
			     .mode = st.st_mode & S_IFMT,
			     .dev = st.st_dev,
			     .ino = st.st_ino};
	return true;
}

bool same_id(const struct fd_id *a, const struct fd_id *b)
{
	return a->mode == b->mode && a->dev == b->dev && a->ino == b->ino;
}

/* Whether @id->fd is still open as the file @id describes. */
bool still_open(const struct fd_id *id)
{
	struct fd_id now;

	return fd_identity(id->fd, &now) && same_id(&now, id);
}

void snap_take(struct fd_snap *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	s->n = 0;
	CHECK(d, "cannot list /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		CHECK(s->n < MAX_FDS, "more than %d descriptors open", MAX_FDS);
		if (fd_identity(fd, &s->v[s->n]))
			s->n++;
	}
	closedir(d);
}

const struct fd_id *snap_find(const struct fd_snap *s, int fd)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].fd == fd)
			return &s->v[i];
	return NULL;
}

const char *fd_target(int fd)
{
	static char target[256];
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	target[n < 0 ? 0 : n] = 0;
	return target;
}

/* Close @id->fd if it is still that file. */
void close_if_ours(struct fd_id *id)
{
	if (id->fd >= 0 && still_open(id))
		close(id->fd);
	id->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Once per process. */

bool verbose;

/* The files sent on the carrier, to tell them in a leak report. */
struct fd_id sent[CARRIER_MAX + 1];
size_t nsent;

static void log_sink(enum luo_log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (verbose)
		fprintf(stderr, "luo: %d: %s\n", (int)level, msg);
}

void setup_once(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	verbose = getenv("LUO_FUZZ_VERBOSE") &&
		  !strcmp(getenv("LUO_FUZZ_VERBOSE"), "1");
	/* Format every message (the formatting is code under test too). */
	luo_set_log_level(LUO_LOG_DEBUG);
	luo_set_log_handler(log_sink, NULL);
}

/* ------------------------------------------------------------------ */
/* The carrier: the preserved files in flight. */

static int reopen(int fd, int flags)
{
	char path[64];
	int nfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, flags | O_CLOEXEC);
	close(fd);
	return nfd;
}

/* A new file of the kind @compatible preserves, described by @data. */
static int make_file(const char *compatible, uint64_t data)
{
	int fd = -1, p[2];

	if (!strcmp(compatible, "pipe-v1")) {
		if (pipe2(p, O_CLOEXEC))
			return -1;
		fd = data == O_WRONLY ? p[1] : p[0];
		close(data == O_WRONLY ? p[0] : p[1]);
	} else if (!strcmp(compatible, "socket-v1")) {
		int domain = (int)(data >> 32),
		    type = (int)(data >> 16 & 0xffff);

		if ((domain == AF_UNIX || domain == AF_INET ||
		     domain == AF_INET6) &&
		    (type == SOCK_STREAM || type == SOCK_DGRAM ||
		     type == SOCK_SEQPACKET))
			fd = socket(domain, type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	} else if (!strcmp(compatible, "eventfd-v1")) {
		fd = eventfd(0, EFD_CLOEXEC);
	} else if (!strcmp(compatible, "timerfd-v1")) {
		fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	} else if (!strcmp(compatible, "file-v1")) {
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0 && data == O_RDONLY)
			fd = reopen(fd, O_RDONLY);
		else if (fd >= 0 && data == O_WRONLY)
			fd = reopen(fd, O_WRONLY);
	}
	if (fd < 0) /* memfd-v1, the user handler's files, and fallbacks */
		fd = memfd_create("fuzz-preserved", MFD_CLOEXEC);
	return fd;
}

static void carrier_file(struct luo_file_ser *file,
			 struct luo_file_fd_ser *where, void *arg)
{
	struct carrier *c = arg;
	struct fd_id id;
	int fd;

	if (where->index >= c->n || c->fd[where->index] >= 0)
		return;
	if (where->dev || where->ino) {
		fd = memfd_create("fuzz-not-the-file", MFD_CLOEXEC);
	} else {
		fd = make_file(file->compatible, file->data);
		CHECK(fd >= 0 && fd_identity(fd, &id),
		      "cannot make a file for '%s': %s", file->compatible,
		      strerror(errno));
		where->mode = id.mode;
		where->dev = id.dev;
		where->ino = id.ino;
	}
	CHECK(fd >= 0, "cannot make a file: %s", strerror(errno));
	c->fd[where->index] = fd;
}

static bool send_batch(int tx, const int *fds, size_t k,
		       struct luo_carrier_msg m, size_t datalen)
{
	union {
		char buf[CMSG_SPACE(LUO_CARRIER_BATCH * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = &m, .iov_len = datalen};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (k) {
		memset(ctl.buf, 0, sizeof(ctl.buf));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(k * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(c), fds, k * sizeof(int));
	}
	return sendmsg(tx, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	       (ssize_t)datalen;
}

/*
 * Send the files for the arena image @buf on a new carrier and name its
 * receiving end in the "files" node.  Returns the receiving end's
 * identity (fd -1 if there is none).
 */
struct fd_id make_carrier(uint8_t *buf, size_t len, uint8_t how)
{
	static struct carrier c;
	struct fd_id rx = {.fd = -1};
	enum carrier_defect defect = how & 0x0f;
	size_t batch = how >> 4 ? how >> 4 : LUO_CARRIER_BATCH, n;
	const fdt64_t *count;
	int node, sp[2], len_count, sndbuf = 1 << 20;
	void *fdt;

	node = fz_arena_files_node(buf, len, &fdt);
	count = node < 0 ? NULL
			 : fdt_getprop(fdt, node, LUO_FILES_COUNT, &len_count);
	if (!count || len_count != sizeof(*count) || !fdt64_ld(count) ||
	    fdt64_ld(count) > CARRIER_MAX)
		return rx;
	c.n = fdt64_ld(count);
	for (size_t i = 0; i < c.n; i++)
		c.fd[i] = -1;
	fz_arena_for_each_file(buf, len, carrier_file, &c);
	for (size_t i = 0; i < c.n; i++)
		if (c.fd[i] < 0)
			c.fd[i] = memfd_create("fuzz-unlisted", MFD_CLOEXEC);

	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp),
	      "socketpair: %s", strerror(errno));
	/* As in a real handover: the receiving end came through the exec. */
	CHECK(!fcntl(sp[1], F_SETFD, 0), "fcntl: %s", strerror(errno));
	if (setsockopt(sp[0], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
		       sizeof(sndbuf)))
		setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
			   sizeof(sndbuf));
	n = defect == DEFECT_MISSING && c.n ? c.n - 1 : c.n;
	for (size_t first = 0; first < n; first += batch) {
		size_t k = n - first < batch ? n - first : batch;
		bool last = first + k == n;
		struct luo_carrier_msg m = {.magic = LUO_CARRIER_MAGIC,
					    .first = (uint32_t)first,
					    .count = (uint32_t)k};
		size_t datalen = sizeof(m);

		if (last && defect == DEFECT_MAGIC)
			m.magic ^= 1;
		if (last && defect == DEFECT_FIRST)
			m.first++;
		if (last && defect == DEFECT_COUNT)
			m.count++;
		if (last && defect == DEFECT_SHORT)
			datalen = 8;
		if (!send_batch(sp[0], c.fd + first,
				last && defect == DEFECT_NO_FILES ? 0 : k, m,
				datalen))
			break;
	}
	if (defect == DEFECT_EXTRA) {
		int extra = memfd_create("fuzz-extra", MFD_CLOEXEC);
		struct luo_carrier_msg m = {.magic = LUO_CARRIER_MAGIC,
					    .first = (uint32_t)n,
					    .count = 1};

		send_batch(sp[0], &extra, 1, m, sizeof(m));
		fd_identity(extra, &sent[nsent++]);
		close(extra);
	}
	close(sp[0]);
	for (size_t i = 0; i < c.n; i++) {
		fd_identity(c.fd[i], &sent[nsent++]);
		close(c.fd[i]); /* they live on in flight */
	}
	fd_identity(sp[1], &rx);
	if (defect != DEFECT_UNNAMED && defect != DEFECT_ENV_ONLY) {
		fdt_setprop_inplace_u64(fdt, node, LUO_FILES_CARRIER_FD,
					(uint64_t)sp[1]);
		fdt_setprop_inplace_u64(fdt, node, LUO_FILES_CARRIER_INO,
					rx.ino);
	}
	return rx;
}
