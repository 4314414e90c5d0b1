// SPDX-License-Identifier: MIT
/*
 * fuzz_handover: a libFuzzer harness for the incoming handover.
 *
 * One input is the byte image of a handover arena (see include/luo/abi.h;
 * the seeds in corpus/ are real arenas dumped by make_seeds).  The harness
 * writes it into a fresh memfd, names that memfd in LUO_HANDOVER_FD and
 * calls luo_init(), which must check everything before using anything:
 * arena and block headers, checksums, the root and LUO FDTs, struct
 * luo_ser, the session block, every session's file set and the FLB block.
 *
 * Preserved files cross the exec in flight on a Unix socket, the carrier,
 * named by the LUO FDT's "files" node.  Unless the control byte says "raw",
 * the harness makes one before the write:
 *
 *  - a file for every index the "files" node counts: records whose identity
 *    is the placeholder dev 0, ino 0 get a real file of the kind their
 *    compatible names (memfd, pipe end, socket, eventfd, timerfd, regular
 *    file) and the record is rewritten to its identity, so that retrieval
 *    and finish reach their success paths; any other record gets a memfd,
 *    which is not the file it describes;
 *  - sends them, in batches of a size the carrier byte chooses, maybe with
 *    one defect it also chooses, and names the receiving end, inheritable
 *    like a real one, in the FDT and in LUO_HANDOVER_FD ("FD,-1,0,CARRIER"
 *    or "FD,PIPE,PID,CARRIER");
 *  - recomputes every checksum (fuzz_arena.c), so that an input means the
 *    same in a normal build as in a -Dfuzzing=true build, where the library
 *    ignores incoming checksums anyway.
 *
 * The last input byte is the control byte, the one before it the carrier
 * byte.  In a real arena they lie in the trailing free block, which the
 * library never reads, so the seeds keep them 0, the defaults.  Control:
 *
 *   0-1  how LUO_HANDOVER_FD names the arena: 0 "FD", 1 "FD,PIPE,PID" (a
 *        real pipe as the teardown descriptor, its read end held by a
 *        child shaped like the library's helper), 2 malformed (variant in bits
 *        4-5), 3 "FD" with LUO_INIT_IGNORE_HANDOVER
 *   2    raw: no carrier, no checksum repair
 *   3    the memfd is extended (sparse) to 4 MiB, so that arenas of 2 MiB
 *        pages fit, and arena_max is 1 MiB instead of 64 GiB
 *   4    accepted: do not retrieve files
 *   5    accepted: do not finish sessions one by one
 *   6    accepted: luo_exit() straight from UPDATED, no liveupdate_finish()
 *   7    accepted: no outgoing cycle after liveupdate_finish()
 *
 * Carrier: bits 4-7 the batch size (0: LUO_CARRIER_BATCH), bits 0-3 a
 * defect in the last batch: 1 bad magic, 2 wrong first, 3 wrong count,
 * 4 one file too many, 5 one file too few, 6 no files attached, 7 short
 * data; or in its naming: 8 named neither in the environment nor in the
 * FDT (whose props stay as they are), 9 in the environment only, 10 in the
 * FDT only.
 *
 * On refusal the library must be uninitialised, must have closed the arena,
 * the teardown pipe and the carrier the environment names and nothing else,
 * and a fresh luo_init() must work.  On acceptance that carrier must be
 * gone too, and the
 * harness drives the incoming API: subsystems, user subtrees, kho_restore(),
 * every session and file it finds in the (now validated) arena, FLBs,
 * liveupdate_finish(), allocation on the adopted arena, then prepare and a
 * failing reboot.  After every input no descriptor may be left open (a
 * received file included) and none closed but those three.  A broken rule
 * aborts, which libFuzzer reports as a crash.
 *
 * LUO_FUZZ_VERBOSE=1 sends the library's messages to stderr.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#include <luo/luo.h>

#include "fuzz_arena.h"

#define CTL_ENV_MASK 0x03
#define CTL_ENV_PLAIN 0
#define CTL_ENV_TEARDOWN 1
#define CTL_ENV_MALFORMED 2
#define CTL_ENV_IGNORE 3
#define CTL_RAW 0x04
#define CTL_BIG_SMALL 0x08
#define CTL_NO_RETRIEVE 0x10
#define CTL_NO_SESSION_FINISH 0x20
#define CTL_NO_FINISH 0x40
#define CTL_NO_OUTGOING 0x80

#define PAGE 4096
#define BIG_MEMFD (4 << 20)
#define BIG_ALLOC (3 << 20)
#define MAX_FDS 512
#define MAX_SESSIONS 16
#define MAX_FILES 16

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail(__LINE__, #cond, __VA_ARGS__);                    \
	} while (0)

__attribute__((noreturn, format(printf, 3, 4))) static void
fail(int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_handover.c:%d: invariant broken: %s: ", line,
		cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ------------------------------------------------------------------ */
/* Descriptors: who is open, and as which file. */

struct fd_id {
	int fd;
	uint32_t mode;
	uint64_t dev, ino;
};

struct fd_snap {
	struct fd_id v[MAX_FDS];
	size_t n;
};

static bool fd_identity(int fd, struct fd_id *id)
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

static bool same_id(const struct fd_id *a, const struct fd_id *b)
{
	return a->mode == b->mode && a->dev == b->dev && a->ino == b->ino;
}

/* Whether @id->fd is still open as the file @id describes. */
static bool still_open(const struct fd_id *id)
{
	struct fd_id now;

	return fd_identity(id->fd, &now) && same_id(&now, id);
}

static void snap_take(struct fd_snap *s)
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

static const struct fd_id *snap_find(const struct fd_snap *s, int fd)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].fd == fd)
			return &s->v[i];
	return NULL;
}

static const char *fd_target(int fd)
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
static void close_if_ours(struct fd_id *id)
{
	if (id->fd >= 0 && still_open(id))
		close(id->fd);
	id->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Once per process. */

static bool verbose;

#define CARRIER_MAX 512 /* files the harness sends at most */

/* The files sent on the carrier, to tell them in a leak report. */
static struct fd_id sent[CARRIER_MAX + 1];
static size_t nsent;

static void log_sink(enum luo_log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (verbose)
		fprintf(stderr, "luo: %d: %s\n", (int)level, msg);
}

static void setup_once(void)
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

enum carrier_defect {
	DEFECT_NONE,
	DEFECT_MAGIC,
	DEFECT_FIRST,
	DEFECT_COUNT,
	DEFECT_EXTRA,
	DEFECT_MISSING,
	DEFECT_NO_FILES,
	DEFECT_SHORT,
	DEFECT_UNNAMED,	 /* named neither in the environment nor the FDT */
	DEFECT_ENV_ONLY, /* named in the environment only */
	DEFECT_FDT_ONLY, /* named in the FDT only */
};

/* The files to send, by carrier index. */
struct carrier {
	int fd[CARRIER_MAX];
	size_t n;
};

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
static struct fd_id make_carrier(uint8_t *buf, size_t len, uint8_t how)
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

/* ------------------------------------------------------------------ */
/* The service's side in the new image: subsystems, handler, FLBs. */

static const char *const sub_names[] = {"fuzz-a", "fuzz-b", "fuzz-c"};
#define NSUBS (sizeof(sub_names) / sizeof(sub_names[0]))
static struct liveupdate_subsystem subs[NSUBS];
static uint64_t boot_data[NSUBS];
static bool booted[NSUBS];

static void sub_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	booted[h - subs] = true;
	boot_data[h - subs] = data;
}

static void sub_finish(struct liveupdate_subsystem *h, uint64_t data)
{
	CHECK(booted[h - subs] && boot_data[h - subs] == data,
	      "subsystem '%s' finished with %#llx, booted with %#llx", h->name,
	      (unsigned long long)data,
	      (unsigned long long)boot_data[h - subs]);
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.boot = sub_boot,
	.finish = sub_finish,
};

/* Touch @len bytes of restored memory: ASan checks they are mapped. */
static void touch(volatile const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum ^= p[i];
	(void)sum;
}

static bool user_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	(void)fd;
	return false; /* never outgoing: the built-ins take the harness's */
}

static int user_preserve(struct liveupdate_file_op_args *args)
{
	(void)args;
	return -EINVAL;
}

/*
 * The seeds' user files carry the offset of a small preserved block; if it
 * cannot be restored the file is not the one preserved: -ESTALE, as a
 * handler may say.
 */
static int user_retrieve(struct liveupdate_file_op_args *args)
{
	void *p;

	if (!args->serialized_data)
		return 0;
	if (kho_restore(args->serialized_data, 8, &p))
		return -ESTALE;
	touch(p, 8);
	return 0;
}

static const struct liveupdate_file_ops user_ops = {
	.can_preserve = user_can,
	.preserve = user_preserve,
	.retrieve = user_retrieve,
};

static int flb_preserve(struct liveupdate_flb_op_args *args)
{
	(void)args;
	return -EINVAL;
}

static int flb_retrieve(struct liveupdate_flb_op_args *args)
{
	void *p;
	int err = kho_restore(args->data, 16, &p);

	if (err)
		return err;
	touch(p, 16);
	args->obj = p;
	return 0;
}

/* Free the restored block again: the allocator merges on an adopted index. */
static void flb_finish(struct liveupdate_flb_op_args *args)
{
	if (!args->obj)
		return;
	touch(args->obj, 16);
	kho_unpreserve_free(args->obj);
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

static struct liveupdate_file_handler user_handler;
static struct liveupdate_flb flbs[2];

static void register_service(void)
{
	for (size_t i = 0; i < NSUBS; i++) {
		subs[i] = (struct liveupdate_subsystem){.ops = &sub_ops,
							.name = sub_names[i]};
		booted[i] = false;
		CHECK(!liveupdate_register_subsystem(&subs[i]),
		      "cannot register subsystem %s", sub_names[i]);
	}
	user_handler = (struct liveupdate_file_handler){
		.ops = &user_ops, .compatible = "fuzz-file-v1"};
	flbs[0] = (struct liveupdate_flb){.ops = &flb_ops,
					  .compatible = "fuzz-flb-v1"};
	flbs[1] = (struct liveupdate_flb){.ops = &flb_ops,
					  .compatible = "fuzz-flb2-v1"};
	CHECK(!liveupdate_register_file_handler(&user_handler),
	      "cannot register the user file handler");
	for (int i = 0; i < 2; i++)
		CHECK(!liveupdate_register_flb(&user_handler, &flbs[i]),
		      "cannot register FLB %d", i);
}

/* ------------------------------------------------------------------ */
/* What an accepted arena holds, read back through the public API. */

struct in_session {
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	size_t nfiles;	/* files read, at most MAX_FILES */
	uint64_t total; /* files in the session */
	uint64_t token[MAX_FILES];
	struct luo_file_fd_ser where[MAX_FILES];
};

struct in_view {
	struct in_session s[MAX_SESSIONS];
	size_t n;
};

static uint64_t arena_size;

/* Arena memory at @off, @len bytes of it, or NULL. */
static const void *arena_at(uint64_t off, uint64_t len)
{
	if (off < KHO_BLOCK_ALIGN || off > arena_size || len > arena_size - off)
		return NULL;
	return kho_offset_to_ptr(off);
}

static void read_view(struct in_view *v)
{
	const struct luo_session_header_ser *h;
	const struct luo_session_ser *ss;
	struct kho_arena_stats st;
	const struct luo_ser *ser;
	const fdt64_t *prop;
	const void *fdt;
	int len;

	memset(v, 0, sizeof(*v));
	CHECK(!kho_get_stats(&st), "no stats");
	arena_size = st.arena_size;
	CHECK(!kho_retrieve_subtree(LUO_FDT_KHO_ENTRY_NAME, &fdt),
	      "accepted handover without a LUO subtree");
	prop = fdt_getprop(fdt, 0, LUO_FDT_ABI_HEADER, &len);
	CHECK(prop && len == 8, "accepted LUO FDT without %s",
	      LUO_FDT_ABI_HEADER);
	ser = arena_at(fdt64_ld(prop), sizeof(*ser));
	CHECK(ser, "accepted struct luo_ser outside the arena");
	if (!ser->sessions_pa)
		return;
	h = arena_at(ser->sessions_pa, sizeof(*h));
	CHECK(h && h->count <= (1u << 20), "accepted session header is bad");
	ss = arena_at(ser->sessions_pa + sizeof(*h), h->count * sizeof(*ss));
	CHECK(ss, "accepted session block runs out of the arena");
	for (uint64_t i = 0; i < h->count; i++) {
		const struct luo_file_set_ser *set = &ss[i].file_set_ser;
		const struct luo_file_ser *fs = NULL;
		const struct luo_file_fd_ser *fds = NULL;
		struct in_session *s = &v->s[v->n];

		CHECK(memchr(ss[i].name, 0, sizeof(ss[i].name)),
		      "accepted session name is not terminated");
		if (set->count) {
			fs = arena_at(set->files,
				      set->count * FZ_FILE_SER_SIZE);
			CHECK(fs, "accepted file set runs out of the arena");
			fds = (const void *)(fs + set->count);
		}
		if (v->n == MAX_SESSIONS)
			continue;
		strcpy(s->name, ss[i].name);
		s->total = set->count;
		for (uint64_t k = 0; k < set->count && k < MAX_FILES; k++) {
			s->token[k] = fs[k].token;
			s->where[k] = fds[k];
			s->nfiles++;
		}
		v->n++;
	}
}

/* A token that is none of @s's. */
static uint64_t unknown_token(const struct in_session *s)
{
	uint64_t t = 0x5eed0000f00dULL;

	for (size_t i = 0; i < s->nfiles; i++) {
		if (s->token[i] == t) {
			t++;
			i = (size_t)-1; /* start over */
		}
	}
	return t;
}

static void retrieve_files(struct luo_session *ls, const struct in_session *s)
{
	int fd, again, err;

	for (size_t k = 0; k < s->nfiles; k++) {
		struct fd_id got, want = {.mode = s->where[k].mode,
					  .dev = s->where[k].dev,
					  .ino = s->where[k].ino};

		err = liveupdate_session_retrieve_fd(ls, s->token[k], &fd);
		if (verbose)
			fprintf(stderr, "fuzz: session '%s' token %#llx: %s\n",
				s->name, (unsigned long long)s->token[k],
				err ? strerror(-err) : "retrieved");
		if (err)
			continue;
		CHECK(fd_identity(fd, &got) && same_id(&got, &want),
		      "session '%s' token %#llx: retrieved fd %d is not the preserved file",
		      s->name, (unsigned long long)s->token[k], fd);
		CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC,
		      "retrieved fd %d lacks FD_CLOEXEC", fd);
		/* Again while the first is open: the same file, if anything. */
		if (!liveupdate_session_retrieve_fd(ls, s->token[k], &again)) {
			CHECK(again != fd && fd_identity(again, &got) &&
				      same_id(&got, &want),
			      "token %#llx retrieved again as fd %d",
			      (unsigned long long)s->token[k], again);
			close(again);
		}
		close(fd);
	}
	err = liveupdate_session_retrieve_fd(ls, unknown_token(s), &fd);
	CHECK(err == -ENOENT || s->total > s->nfiles, "unknown token: %d", err);
	if (!err)
		close(fd);
}

static void exercise_sessions(const struct in_view *v, uint8_t ctl)
{
	struct luo_session *ls;
	int err;

	for (size_t i = 0; i < v->n; i++) {
		const struct in_session *s = &v->s[i];
		struct luo_session *again;

		err = liveupdate_retrieve_session(s->name, &ls);
		CHECK(!err, "accepted session '%s' cannot be retrieved: %d",
		      s->name, err);
		CHECK(!strcmp(liveupdate_session_name(ls), s->name),
		      "session '%s' is named '%s'", s->name,
		      liveupdate_session_name(ls));
		err = liveupdate_retrieve_session(s->name, &again);
		CHECK(err == -EINVAL, "session '%s' retrieved twice: %d",
		      s->name, err);
		if (!(ctl & CTL_NO_RETRIEVE))
			retrieve_files(ls, s);
		CHECK(liveupdate_session_close(ls) == -EINVAL,
		      "an incoming session was closed");
		if ((ctl & CTL_NO_SESSION_FINISH) || (i & 1))
			continue;
		err = liveupdate_session_finish(ls);
		CHECK(!err, "session '%s' cannot be finished: %d", s->name,
		      err);
	}
	err = liveupdate_retrieve_session("fuzz-no-such-session", &ls);
	CHECK(err == -ENOENT, "unknown session: %d", err);
}

/* Allocate and free on the adopted arena: its index came from the walk. */
static void exercise_alloc(void)
{
	void *a, *b, *c;

	if (kho_alloc_preserve(100, &a))
		return;
	memset(a, 0xa5, 100);
	if (!kho_alloc_preserve(70000, &b)) {
		memset(b, 0x5a, 70000);
		CHECK(!kho_unpreserve_free(b), "cannot free a fresh block");
	}
	if (!kho_alloc_preserve(3000, &c)) {
		memset(c, 0x3c, 3000);
		CHECK(!kho_unpreserve_free(c), "cannot free a fresh block");
	}
	/* Past a small arena_max: the arena is full (only its ends touched). */
	if (!kho_alloc_preserve(BIG_ALLOC, &c)) {
		((volatile uint8_t *)c)[0] = 1;
		((volatile uint8_t *)c)[BIG_ALLOC - 1] = 1;
		CHECK(!kho_unpreserve_free(c), "cannot free a fresh block");
	}
	CHECK(!kho_unpreserve_free(a), "cannot free a fresh block");
}

static void exercise_user_subtree(void)
{
	const fdt64_t *prop;
	const void *fdt;
	void *p;
	int len;

	if (kho_retrieve_subtree("fuzz-user", &fdt))
		return;
	CHECK(!fdt_check_header(fdt), "accepted user subtree is no FDT");
	prop = fdt_getprop(fdt, 0, "blob", &len);
	if (prop && len == 8 && !kho_restore(fdt64_ld(prop), 16, &p))
		memset(p, 0x11, 16);
	/* Claim the subtree itself: it outlives liveupdate_finish(). */
	if (!kho_restore(kho_ptr_to_offset(fdt), 8, &p))
		CHECK(p == fdt, "restored subtree moved");
}

/* After finish: a whole outgoing update whose exec fails. */
static void exercise_outgoing(void)
{
	char *argv[] = {"luo-fuzz-no-such-image", NULL};
	struct luo_session *s;
	int p[2], m, err;

	if (liveupdate_create_session("fuzz-out", &s))
		return;
	CHECK(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
	m = memfd_create("fuzz-out", MFD_CLOEXEC);
	CHECK(m >= 0, "memfd_create: %s", strerror(errno));
	liveupdate_session_preserve_fd(s, p[0], 1);
	liveupdate_session_preserve_fd(s, m, 2);
	close(p[0]);
	close(p[1]);
	close(m);
	err = liveupdate_prepare();
	if (!err) {
		err = liveupdate_reboot("/nonexistent/luo-fuzz-no-such-image",
					argv, NULL);
		CHECK(err == -ENOENT, "reboot into nothing: %d", err);
	}
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
	      "state %s after a failed update",
	      liveupdate_state_name(liveupdate_get_state()));
}

static void exercise_accepted(uint8_t ctl, struct in_view *v)
{
	struct liveupdate_timing t;

	CHECK(liveupdate_get_num() >= 1, "accepted update number 0");
	CHECK(!liveupdate_get_timing(&t), "accepted without timing");
	register_service();
	for (size_t i = 0; i < NSUBS; i++) {
		uint64_t data;
		int err = liveupdate_get_subsystem_data(&subs[i], &data);

		CHECK(err ? !booted[i] && err == -ENOENT
			  : booted[i] && data == boot_data[i],
		      "subsystem %s: data %d, booted %d", sub_names[i], err,
		      booted[i]);
	}
	exercise_user_subtree();
	exercise_sessions(v, ctl);
	for (int i = 0; i < 2; i++) {
		void *obj;

		liveupdate_flb_get_incoming(&flbs[i], &obj);
	}
	exercise_alloc();
	if (ctl & CTL_NO_FINISH)
		return;
	CHECK(!liveupdate_finish(), "finish refused");
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
	      "state after finish");
	exercise_alloc();
	if (!(ctl & CTL_NO_OUTGOING))
		exercise_outgoing();
}

/* ------------------------------------------------------------------ */

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		CHECK(n > 0, "cannot write the arena: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* The library may close @allowed[0..2] and nothing else. */
static void check_closed(const struct fd_snap *pre, const struct fd_id *allowed,
			 const char *when)
{
	for (size_t i = 0; i < pre->n; i++) {
		const struct fd_id *id = &pre->v[i];

		CHECK(id->fd == allowed[0].fd || id->fd == allowed[1].fd ||
			      id->fd == allowed[2].fd || still_open(id),
		      "%s: the library closed fd %d (%s), which is not its own",
		      when, id->fd, fd_target(id->fd));
	}
}

/* Whatever happened, the library must have let go of the handover. */
static void check_released(const struct fd_id *arena,
			   const struct fd_id *teardown, const char *when)
{
	CHECK(!still_open(arena), "%s: the arena memfd %d is still open", when,
	      arena->fd);
	CHECK(teardown->fd < 0 || !still_open(teardown),
	      "%s: the teardown pipe %d is still open", when, teardown->fd);
}

/* The carrier the environment names must be gone: received or dropped. */
static void check_carrier(const struct fd_id *carrier, const char *when)
{
	CHECK(carrier->fd < 0 || !still_open(carrier),
	      "%s: the carrier (fd %d), and every file in flight on it, is still open",
	      when, carrier->fd);
}

/* Whether the last input was accepted as a handover (for fuzz_main.c). */
int fuzz_handover_accepted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ctl = size ? data[size - 1] : 0;
	uint8_t how = size > 1 ? data[size - 2] : 0;
	size_t len = (size + PAGE - 1) / PAGE * PAGE;
	static struct fd_snap base, pre, post;
	static struct in_view view;
	struct fd_id gone[3]; /* what the library may close: */
	struct fd_id *arena = &gone[0], *teardown = &gone[1],
		     *carrier = &gone[2], reader = {.fd = -1}, rx = {.fd = -1};
	struct luo_init_opts opts = {.flags = LUO_INIT_SYNC_TEARDOWN};
	bool malformed = (ctl & CTL_ENV_MASK) == CTL_ENV_MALFORMED;
	char env[64];
	uint8_t *buf;
	int fd, err;

	setup_once();
	snap_take(&base);
	nsent = 0;
	fuzz_handover_accepted = 0;
	*teardown = *carrier = (struct fd_id){.fd = -1};

	buf = calloc(len ? len : 1, 1);
	CHECK(buf, "out of memory");
	memcpy(buf, data, size);
	if (!(ctl & CTL_RAW)) {
		rx = make_carrier(buf, len, how);
		fz_arena_fix_checksums(buf, len);
	}
	/* The name the library's arenas have, which it checks. */
	fd = memfd_create("luo-arena", MFD_CLOEXEC);
	CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	write_all(fd, buf, len);
	free(buf);
	fd_identity(fd, arena);

	switch (ctl & CTL_ENV_MASK) {
	case CTL_ENV_TEARDOWN: {
		int p[2];

		pid_t helper;

		CHECK(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
		/* Shaped like the library's helper, which is all the library
		 * accepts: a child holding only the read end until EOF. */
		helper = fork();
		CHECK(helper >= 0, "fork: %s", strerror(errno));
		if (!helper) {
			char c;

			if (p[0] > 0)
				syscall(SYS_close_range, 0, p[0] - 1, 0);
			syscall(SYS_close_range, p[0] + 1, ~0U, 0);
			while (read(p[0], &c, 1) > 0)
				;
			_exit(0);
		}
		fd_identity(p[0], &reader);
		fd_identity(p[1], teardown);
		snprintf(env, sizeof(env), "%d,%d,%d", fd, p[1], (int)helper);
		/* The helper holds the read end; ours only tells that the
		 * library closed the write end.  Wait until the helper has
		 * closed every other descriptor, as the real one does. */
		{
			char path[64];

			snprintf(path, sizeof(path), "/proc/%d/fd/%d",
				 (int)helper, fd);
			while (!access(path, F_OK))
				usleep(100);
		}
		break;
	}
	case CTL_ENV_MALFORMED: {
		static const char *const shapes[] = {"%d,", "%d,1", "x%d",
						     "%d,1,0"};

		snprintf(env, sizeof(env), shapes[(ctl >> 4) & 3], fd);
		break;
	}
	case CTL_ENV_IGNORE:
		opts.flags |= LUO_INIT_IGNORE_HANDOVER;
		/* fall through */
	default:
		snprintf(env, sizeof(env), "%d", fd);
	}
	if (ctl & CTL_BIG_SMALL) {
		opts.arena_max = 1 << 20;
		if (len < BIG_MEMFD)
			CHECK(!ftruncate(fd, BIG_MEMFD), "ftruncate: %s",
			      strerror(errno));
	}
	/* The environment names the carrier too (unless the defect is that
	 * it does not): then it is the library's, to receive or to drop.
	 * Named only in the FDT, it is not, and must stay open. */
	if (rx.fd >= 0 && !malformed && (how & 0x0f) != DEFECT_UNNAMED &&
	    (how & 0x0f) != DEFECT_FDT_ONLY) {
		size_t n = strlen(env);

		if (!strchr(env, ','))
			snprintf(env + n, sizeof(env) - n, ",-1,0,%d", rx.fd);
		else
			snprintf(env + n, sizeof(env) - n, ",%d", rx.fd);
		*carrier = rx;
	}
	setenv(LUO_HANDOVER_ENV, env, 1);

	snap_take(&pre);
	err = luo_init(&opts);
	CHECK(!getenv(LUO_HANDOVER_ENV), "%s is still set", LUO_HANDOVER_ENV);
	if (malformed) {
		CHECK(err == -EBADF, "malformed '%s' gave %d", env, err);
		/* Not parsed, so nothing there is the library's to close. */
		CHECK(still_open(arena), "malformed '%s' closed the arena",
		      env);
		check_closed(
			&pre,
			(struct fd_id[3]){{.fd = -1}, *teardown, {.fd = -1}},
			"malformed env");
	} else if (err) {
		CHECK(err == -EBADMSG || err == -EPROTONOSUPPORT ||
			      err == -ENOMEM,
		      "luo_init() refused with undocumented %d", err);
		check_released(arena, teardown, "refusal");
		check_carrier(carrier, "refusal");
		check_closed(&pre, gone, "refusal");
	} else if (opts.flags & LUO_INIT_IGNORE_HANDOVER) {
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
		      "state after an ignored handover");
		check_released(arena, teardown, "ignored handover");
		check_carrier(carrier, "ignored handover");
		check_closed(&pre, gone, "ignored handover");
		exercise_alloc();
		CHECK(!luo_exit(), "luo_exit");
	} else {
		CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED,
		      "accepted, but state %s",
		      liveupdate_state_name(liveupdate_get_state()));
		fuzz_handover_accepted = 1;
		read_view(&view);
		check_carrier(carrier, "acceptance");
		exercise_accepted(ctl, &view);
		CHECK(!luo_exit(), "luo_exit");
		check_released(arena, teardown, "after luo_exit");
		check_closed(&pre, gone, "after luo_exit");
	}
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_UNDEFINED,
	      "state %s after the input",
	      liveupdate_state_name(liveupdate_get_state()));
	if (err) {
		/* A refusal leaves the library ready for a fresh start. */
		err = luo_init(NULL);
		CHECK(!err, "fresh luo_init() after a refusal: %d", err);
		exercise_alloc();
		CHECK(!luo_exit(), "luo_exit");
	}

	for (int k = 0; k < 3; k++)
		close_if_ours(&gone[k]);
	close_if_ours(&rx);
	close_if_ours(&reader);
	snap_take(&post);
	for (size_t i = 0; i < post.n; i++) {
		const struct fd_id *was = snap_find(&base, post.v[i].fd);

		bool received = false;

		for (size_t k = 0; k < nsent; k++)
			received |= same_id(&sent[k], &post.v[i]);
		CHECK(was && same_id(was, &post.v[i]),
		      "fd %d (%s%s) leaked by this input", post.v[i].fd,
		      fd_target(post.v[i].fd),
		      received ? ", received from the carrier" : "");
	}
	return 0;
}
