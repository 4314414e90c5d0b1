// SPDX-License-Identifier: MIT
/*
 * crash-points SCENARIO: a process SIGKILLed between any two stores of a
 * change of the arena's metadata (an allocation that splits, fits exactly,
 * leaves an alignment gap or grows the arena; a free alone or merging
 * with the next, the previous or both blocks; the release of unclaimed
 * memory after a crash) keeps every block it did not touch.
 *
 * Linked with the library's fault build (LUO_KHO_FAULT): a kill point
 * after each 8-byte store of the intent record and of every header image,
 * and in the middle of every zeroing.  For kill point k = 1, 2, ... until
 * the operation completes (and once after it), this test plays the
 * service manager's descriptor store as tests/systemd/notify_fdstore.c
 * does, with real processes:
 *
 *   op:     a fresh service lays out blocks with known contents, keeps
 *           their directory in handover memory (its offset in the crash
 *           record), arms kill point k and runs the operation: SIGKILL.
 *   verify: started again with the stored arena (LISTEN_FDS, name
 *           luo.arena): the arena must be adopted, not started fresh;
 *           every block untouched by the operation is restored with its
 *           contents; a block being freed is either intact or gone; then
 *           finish, allocations and frees of every kind, and a live
 *           update (exec) into
 *   final:  which adopts the arena through the strict sealed walk and
 *           checks every block again.
 *
 * CRASH_POINTS_NO_INTENT=1 makes every change without its intent record
 * (the library as it was): the test then fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "check.h"
#include "kho_internal.h"
#include "notify.h"

int failures;
const char *test_name = "crash-points";
const char *where = "manager";

#define DIR_MAGIC 0x5249445054504352ULL
#define DIR_MAX 64

enum { UNTOUCHED, FREEING, GONE };

struct dir_entry {
	uint64_t off, size, seed;
	uint32_t state, pad;
};

struct dir {
	uint64_t magic;
	uint32_t n, pad;
	struct dir_entry e[DIR_MAX];
};

static struct dir *dir;

static uint64_t dir_data(void)
{
	return kho_ptr_to_offset(dir);
}

static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	*data = dir_data();
	return 0;
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.prepare = sub_prepare,
};

static struct liveupdate_subsystem sub = {.ops = &sub_ops, .name = "cp"};

static void fill(uint8_t *p, uint64_t size, uint64_t seed)
{
	for (uint64_t i = 0; i < size; i++)
		p[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 9)) & 0xff);
}

static bool intact(const uint8_t *p, uint64_t size, uint64_t seed)
{
	for (uint64_t i = 0; i < size; i++)
		if (p[i] != (uint8_t)((seed * 131 + i * 7 + (i >> 9)) & 0xff))
			return false;
	return true;
}

/* Allocate and fill a block, kept in the directory. */
static struct dir_entry *block(uint64_t size)
{
	struct dir_entry *e;
	void *p;

	REQUIRE(dir->n < DIR_MAX, "directory full");
	REQUIRE(kho_alloc_preserve(size, &p) == 0, "alloc %llu",
		(unsigned long long)size);
	e = &dir->e[dir->n++];
	*e = (struct dir_entry){.off = kho_ptr_to_offset(p),
				.size = size,
				.seed = dir->n * 1000 + size};
	fill(p, size, e->seed);
	return e;
}

static void unblock(struct dir_entry *e)
{
	REQUIRE(kho_unpreserve_free(kho_offset_to_ptr(e->off)) == 0, "free");
	e->state = GONE;
}

/* Room left in the arena's last block, if it is free (else 0). */
static uint64_t last_free(void)
{
	const struct kho_block *b = &luo_kho.blocks[luo_kho.nblocks - 1];

	return (b->flags & KHO_BLOCK_USED) ? 0 : b->size - KHO_HDR_SIZE;
}

/*
 * Lay the blocks out for @scen and return the operation to run under the
 * kill point: 'a' allocate @op_size, 'f' free @victim.
 */
static char setup(const char *scen, uint64_t *op_size,
		  struct dir_entry **victim)
{
	struct dir_entry *a, *b, *c, *d;

	a = block(1000);
	b = block(300);
	c = block(5000);
	d = block(200);
	block(100);
	*victim = NULL;
	if (!strcmp(scen, "split")) {
		*op_size = 700;
		return 'a';
	}
	if (!strcmp(scen, "exact")) {
		/* b's hole is 64 + 320 bytes: 320 asked fits it exactly. */
		unblock(b);
		*op_size = 320;
		return 'a';
	}
	if (!strcmp(scen, "gap")) {
		/* 64 KiB and more start on a 4 KiB boundary: a gap stays. */
		*op_size = 70000;
		return 'a';
	}
	if (!strcmp(scen, "grow-extend")) {
		/* A free tail under 64 KiB, and more than it asked for. */
		REQUIRE(last_free() > (64 << 10), "no free tail");
		block((last_free() - (32 << 10)) / 64 * 64);
		REQUIRE(last_free() < 60000, "the tail is not small");
		*op_size = 60000;
		return 'a';
	}
	if (!strcmp(scen, "grow-new")) {
		/* The last block used to the arena's end: grow adds one. */
		REQUIRE(last_free() > (64 << 10), "no free tail");
		/* Under 64 KiB left, then that exactly (64-byte aligned). */
		block((last_free() - (32 << 10)) / 64 * 64);
		REQUIRE(last_free() > 64 && last_free() < (64 << 10),
			"the tail is not small");
		block(last_free());
		REQUIRE(!last_free(), "the tail is not full");
		*op_size = 8000; /* more than any alignment gap */
		return 'a';
	}
	if (!strcmp(scen, "free-lone")) {
		*victim = b;
		return 'f';
	}
	if (!strcmp(scen, "free-next")) {
		unblock(d);
		*victim = c;
		return 'f';
	}
	if (!strcmp(scen, "free-prev")) {
		unblock(a);
		*victim = b;
		return 'f';
	}
	if (!strcmp(scen, "free-both")) {
		unblock(b);
		unblock(d);
		*victim = c;
		return 'f';
	}
	if (!strcmp(scen, "release")) {
		/* Crash without an operation; verify releases under the kill. */
		unblock(b);
		return 'n';
	}
	REQUIRE(0, "unknown scenario %s", scen);
	return 0;
}

/* The operation was the one the scenario names: blocks it added, growth. */
static void check_shape(const char *scen, size_t added, bool grew)
{
	static const struct {
		const char *scen;
		long added;
		bool grew;
	} want[] = {
		{"split", 1, false},	  {"exact", 0, false},
		{"gap", 2, false},	  {"grow-extend", 1, true},
		{"grow-new", 2, true},	  {"free-lone", 0, false},
		{"free-next", -1, false}, {"free-prev", -1, false},
		{"free-both", -2, false},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strcmp(want[i].scen, scen))
			REQUIRE((long)added == want[i].added &&
					grew == want[i].grew,
				"%s: %ld blocks added, grew %d: not that case",
				scen, (long)added, grew);
}

/* op SCEN K: lay out, arm kill point K (0: none), operate, SIGKILL. */
static int service_op(const char *scen, unsigned long k)
{
	uint64_t op_size = 0;
	struct dir_entry *victim;
	char op, line[32];
	void *p;
	int n;

	where = "op";
	REQUIRE(luo_init(NULL) == 0, "luo_init");
	REQUIRE(!liveupdate_crash_recovered(), "started from a crash");
	REQUIRE(kho_alloc_preserve(sizeof(*dir), &p) == 0, "directory");
	dir = p;
	dir->magic = DIR_MAGIC;
	REQUIRE(liveupdate_crash_data_set(&sub, dir_data()) == 0, "crash data");
	op = setup(scen, &op_size, &victim);
	if (victim)
		victim->state = FREEING;
	if (op != 'n') {
		size_t nblocks = luo_kho.nblocks;
		uint64_t size = luo_kho.size;

		luo_kho_fault_arm(k);
		if (op == 'a') {
			REQUIRE(kho_alloc_preserve(op_size, &p) == 0,
				"the alloc");
		} else {
			REQUIRE(kho_unpreserve_free(
					kho_offset_to_ptr(victim->off)) == 0,
				"the free");
		}
		n = snprintf(line, sizeof(line), "%lu\n",
			     luo_kho_fault_points());
		luo_kho_fault_arm(0);
		check_shape(scen, luo_kho.nblocks - nblocks,
			    luo_kho.size > size);
		if (op == 'a') {
			/* Done: from now on an untouched block like the others. */
			dir->e[dir->n++] =
				(struct dir_entry){.off = kho_ptr_to_offset(p),
						   .size = op_size,
						   .seed = 77};
			fill(p, op_size, 77);
		} else {
			victim->state = GONE;
		}
		REQUIRE(write(1, line, (size_t)n) == n, "points");
	} else {
		REQUIRE(write(1, "0\n", 2) == 2, "points");
	}
	kill(getpid(), SIGKILL);
	return 1;
}

/* Check every block of the directory; claim it if @restore. */
static void check_blocks(bool restore)
{
	for (uint32_t i = 0; i < dir->n; i++) {
		struct dir_entry *e = &dir->e[i];
		void *p = NULL;
		int r;

		if (e->state != UNTOUCHED && e->state != FREEING)
			continue;
		r = restore ? kho_restore(e->off, e->size, &p)
			    : ((p = kho_offset_to_ptr(e->off)) ? 0 : -ENOENT);
		if (e->state == FREEING) {
			/* Freed (gone) or not yet (intact), nothing else. */
			CHECK(r == 0 || r == -ENOENT,
			      "block being freed: restore %d", r);
			if (r == 0)
				CHECK(intact(p, e->size, e->seed),
				      "block being freed at %#llx is neither free nor intact",
				      (unsigned long long)e->off);
			e->state = r ? GONE : UNTOUCHED;
			continue;
		}
		CHECK(r == 0, "block %u at %#llx (%llu bytes): restore %d", i,
		      (unsigned long long)e->off, (unsigned long long)e->size,
		      r);
		if (!r)
			CHECK(intact(p, e->size, e->seed),
			      "block %u at %#llx lost its contents", i,
			      (unsigned long long)e->off);
	}
}

/* verify SCEN K: adopted after the kill; every untouched block back. */
static int service_verify(const char *self, const char *scen, unsigned long k)
{
	uint64_t off;
	void *p;
	struct dir_entry *e[4];
	char kbuf[24];

	where = "verify";
	REQUIRE(luo_init(NULL) == 0, "luo_init");
	REQUIRE(liveupdate_crash_recovered() == 1,
		"the crashed arena was not adopted: the service started fresh");
	REQUIRE(liveupdate_register_subsystem(&sub) == 0, "register");
	REQUIRE(liveupdate_get_subsystem_data(&sub, &off) == 0, "crash data");
	REQUIRE(kho_restore(off, sizeof(*dir), &p) == 0, "directory");
	dir = p;
	REQUIRE(dir->magic == DIR_MAGIC && dir->n <= DIR_MAX, "directory");
	if (!strcmp(scen, "release")) {
		/*
		 * Left unclaimed, released at finish: the first three blocks
		 * after the directory, with the free one among them, and the
		 * fourth: one run (a, b free, c, d) to merge and zero.
		 */
		for (uint32_t i = 0; i < dir->n && i < 4; i++)
			if (dir->e[i].state == UNTOUCHED)
				dir->e[i].state = FREEING;
		for (uint32_t i = 0; i < dir->n; i++)
			if (dir->e[i].state == FREEING)
				dir->e[i].state = FREEING + 10; /* not now */
	}
	check_blocks(true);
	for (uint32_t i = 0; i < dir->n; i++)
		if (dir->e[i].state == FREEING + 10)
			dir->e[i].state = FREEING;
	/* The release of unclaimed memory is the operation of "release". */
	if (!strcmp(scen, "release")) {
		luo_kho_fault_arm(k);
		REQUIRE(liveupdate_finish() == 0, "finish");
		snprintf(kbuf, sizeof(kbuf), "%lu\n", luo_kho_fault_points());
		luo_kho_fault_arm(0);
		REQUIRE(write(1, kbuf, strlen(kbuf)) == (ssize_t)strlen(kbuf),
			"points");
		/* The new crash record names the directory again: crash. */
		REQUIRE(liveupdate_crash_data_set(&sub, dir_data()) == 0,
			"crash data");
		kill(getpid(), SIGKILL);
	}
	REQUIRE(liveupdate_finish() == 0, "finish");
	/* The allocator works: every kind of allocation and free. */
	e[0] = block(100);
	e[1] = block(70000);
	e[2] = block(3 << 20);
	e[3] = block(4000);
	unblock(e[1]);
	for (uint32_t i = 0; i < dir->n; i++)
		if (dir->e[i].state == UNTOUCHED && dir->e[i].size == 300) {
			unblock(&dir->e[i]);
			break;
		}
	block(250);
	check_blocks(false);
	snprintf(kbuf, sizeof(kbuf), "%lu", k);
	REQUIRE(liveupdate_prepare() == 0, "prepare");
	REQUIRE(liveupdate_reboot(self,
				  (char *[]){(char *)self, "final",
					     (char *)scen, kbuf, NULL},
				  NULL) == 0,
		"reboot");
	return 1;
}

/* final SCEN K: the strict walk of a sealed handover; every block again. */
static int service_final(void)
{
	uint64_t off;
	void *p;

	where = "final";
	REQUIRE(luo_init(NULL) == 0, "luo_init after the live update");
	REQUIRE(liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED, "updated");
	REQUIRE(liveupdate_register_subsystem(&sub) == 0, "register");
	REQUIRE(liveupdate_get_subsystem_data(&sub, &off) == 0, "data");
	REQUIRE(kho_restore(off, sizeof(*dir), &p) == 0, "directory");
	dir = p;
	check_blocks(true);
	REQUIRE(liveupdate_finish() == 0, "finish");
	return failures ? 1 : 0;
}

/* Start "self MODE SCEN K"; the arena @arena as fd 3 if >= 0. */
static pid_t start(const char *self, const char *mode, const char *scen,
		   unsigned long k, int arena, const char *notify, int out)
{
	char kbuf[24];
	pid_t pid;

	snprintf(kbuf, sizeof(kbuf), "%lu", k);
	pid = fork();
	if (pid)
		return pid;
	dup2(out, 1);
	setenv("NOTIFY_SOCKET", notify, 1);
	setenv("LUO_FDSTORE", "1", 1);
	if (arena >= 0) {
		char pidbuf[16];

		dup2(arena, 3);
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_FDNAMES", "luo.arena", 1);
	}
	execv(self,
	      (char *[]){(char *)self, (char *)mode, (char *)scen, kbuf, NULL});
	_exit(127);
}

/*
 * The store's side, after the child ended: what it sent about luo.arena
 * applied to *@arena (stored again: replaced; removed: -1), every other
 * descriptor received closed.
 */
static void store(int sock, int *arena)
{
	for (;;) {
		char text[1024], cbuf[CMSG_SPACE(sizeof(struct ucred)) +
				      CMSG_SPACE(8 * sizeof(int))];
		struct iovec iov = {text, sizeof(text) - 1};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		ssize_t len =
			recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		bool ours;

		if (len < 0)
			return;
		text[len] = '\0';
		ours = strstr(text, "FDNAME=luo.arena") != NULL;
		if (ours && strstr(text, "FDSTOREREMOVE=1") && *arena >= 0) {
			close(*arena);
			*arena = -1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c)) {
			int n, fds[8];

			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(c), (size_t)n * sizeof(int));
			for (int i = 0; i < n; i++) {
				if (i == 0 && ours &&
				    strstr(text, "FDSTORE=1")) {
					if (*arena >= 0)
						close(*arena);
					*arena = fds[i];
				} else {
					close(fds[i]);
				}
			}
		}
	}
}

/* Run a child to its end; its first stdout line as a number in @points. */
static int run(const char *self, const char *mode, const char *scen,
	       unsigned long k, int arena, const char *notify, long *points)
{
	char buf[64] = "";
	int pfd[2], status = 0;
	ssize_t n;
	pid_t pid;

	REQUIRE(!pipe2(pfd, O_CLOEXEC), "pipe");
	pid = start(self, mode, scen, k, arena, notify, pfd[1]);
	close(pfd[1]);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid");
	*points = n > 0 ? strtol(buf, NULL, 10) : -1;
	return status;
}

static void manager(const char *self, const char *scen)
{
	char notify[108];
	int sock = receiver(true, notify, sizeof(notify));
	unsigned long total = 0, adopted = 0;
	bool done = false;

	/*
	 * k = 0: no kill point, the whole operation and a kill after it;
	 * then every kill point until one past the last (the operation
	 * completes again).
	 */
	for (unsigned long k = 0; !done && k < 2000; k++) {
		int arena = -1, st, before = failures;
		long points = -1, vpoints = -1;
		bool rel = !strcmp(scen, "release");

		st = run(self, "op", scen, rel ? 0 : k, -1, notify, &points);
		store(sock, &arena);
		REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
			"k %lu: the op child was not killed (status %#x)", k,
			st);
		REQUIRE(arena >= 0, "k %lu: no arena in the store", k);
		if (rel) {
			/* The kill point is in the release at verify. */
			st = run(self, "verify", scen, k, arena, notify,
				 &vpoints);
			store(sock, &arena);
			REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
				"k %lu: the releasing child was not killed (status %#x)",
				k, st);
			REQUIRE(arena >= 0, "k %lu: the arena left the store",
				k);
			points = vpoints;
		}
		/* points: the kill points the operation passed (-1: killed) */
		if (k == 0)
			total = (unsigned long)points;
		if (k > 0 && points >= 0)
			done = true; /* one past the last point */
		CHECK(k == 0 || points < 0 || (unsigned long)points == total,
		      "k %lu: %ld kill points, %lu the first time", k, points,
		      total);
		st = run(self, "verify", rel ? "release-after" : scen, k, arena,
			 notify, &vpoints);
		store(sock, &arena);
		if (arena >= 0)
			close(arena);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "k %lu of %lu (scenario %s): the restarted service failed (status %#x)",
		      k, total, scen, st);
		if (failures == before)
			adopted++;
		if (failures > 20)
			break;
	}
	CHECK(total > 0, "no kill point was reached");
	printf("crash-points %s: %lu kill points, %lu restarts adopted every untouched block\n",
	       scen, total, adopted);
	close(sock);
}

int main(int argc, char **argv)
{
	unsigned long k = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;

	if (getenv("CRASH_POINTS_NO_INTENT"))
		luo_kho_fault_no_intent = true;

	if (argc > 3 && !strcmp(argv[1], "op"))
		return service_op(argv[2], k);
	if (argc > 3 && !strcmp(argv[1], "verify"))
		return service_verify(argv[0], argv[2], k);
	if (argc > 3 && !strcmp(argv[1], "final"))
		return service_final();
	if (argc == 2) {
		manager("/proc/self/exe", argv[1]);
		return failures ? 1 : 0;
	}
	fprintf(stderr, "usage: crash-points SCENARIO\n");
	return 2;
}
