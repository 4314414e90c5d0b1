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
#include "fuzz_handover.h"

void fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
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

/* Whether the last input was accepted as a handover, and what luo_init()
 * returned (for fuzz_main.c). */
int fuzz_handover_accepted;
int fuzz_handover_err;

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
	fuzz_handover_err = 0;
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
	fuzz_handover_err = err;
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
