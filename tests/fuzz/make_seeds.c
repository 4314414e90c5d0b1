// SPDX-License-Identifier: MIT
/*
 * make_seeds: real handover arenas, as seeds for fuzz_handover.
 *
 *   make_seeds OUTDIR
 *
 * For each variant a child uses the library as a service would (subsystems,
 * preserved blocks, a user subtree, sessions of memfds, pipes, eventfds,
 * timerfds, sockets and a regular file, a user file handler with two FLBs,
 * a small device tree),
 * prepares and really updates into this binary again ("dump").  The new
 * image does not call luo_init() on the handover: it reads the inherited
 * arena up to its arena_size, shrinks the trailing free block to the next
 * page boundary (the arenas grow in 2 MiB steps), writes OUTDIR/seed-VARIANT
 * and, for variants with preserved files, OUTDIR/seed-VARIANT-fds, the same
 * arena with every file's identity replaced by the placeholder dev 0,
 * ino 0 that the harness turns into real files; subsystems-huge is the
 * subsystems arena rewritten as if on 2 MiB pages.  Each written seed must be
 * accepted by luo_init() before make_seeds reports success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <luo/luo.h>

#include "fuzz_arena.h"

#define die(...)                                                               \
	do {                                                                   \
		fprintf(stderr, "make_seeds: " __VA_ARGS__);                   \
		fputc('\n', stderr);                                           \
		exit(1);                                                       \
	} while (0)

#define try(call)                                                              \
	do {                                                                   \
		int err_ = (call);                                             \
		if (err_ < 0)                                                  \
			die("%s: %s", #call, strerror(-err_));                 \
	} while (0)

enum variant {
	V_MINIMAL,
	V_SUBSYSTEMS,
	V_SESSIONS,
	V_FLB,
	V_DEVICES,
	NVARIANTS
};

static const char *const variant_names[NVARIANTS] = {
	"minimal", "subsystems", "sessions", "flb", "devices",
};

static char self[PATH_MAX];

/* ------------------------------------------------------------------ */
/* The service in the first image. */

static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	*data = (uint64_t)(uintptr_t)h->arg;
	return 0;
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.prepare = sub_prepare,
};

static struct liveupdate_subsystem subs[3] = {
	{.ops = &sub_ops, .name = "fuzz-a"},
	{.ops = &sub_ops, .name = "fuzz-b"},
	{.ops = &sub_ops, .name = "fuzz-c"},
};

/* The user handler takes exactly the files listed here. */
static int user_fds[4];
static size_t nuser_fds;

static bool user_can(struct liveupdate_file_handler *h, int fd)
{
	struct stat a, b;

	(void)h;
	if (fstat(fd, &a))
		return false;
	for (size_t i = 0; i < nuser_fds; i++)
		if (!fstat(user_fds[i], &b) && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return true;
	return false;
}

/* Each user file carries the offset of a small block of its own. */
static int user_preserve(struct liveupdate_file_op_args *args)
{
	void *p;
	int err = kho_alloc_preserve(64, &p);

	if (err)
		return err;
	memset(p, 0x42, 64);
	args->serialized_data = kho_ptr_to_offset(p);
	return 0;
}

static const struct liveupdate_file_ops user_ops = {
	.can_preserve = user_can,
	.preserve = user_preserve,
};

static struct liveupdate_file_handler user_handler = {
	.ops = &user_ops,
	.compatible = "fuzz-file-v1",
};

static int flb_preserve(struct liveupdate_flb_op_args *args)
{
	void *p;
	int err = kho_alloc_preserve(128, &p);

	if (err)
		return err;
	memset(p, 0x17, 128);
	args->data = kho_ptr_to_offset(p);
	args->obj = p;
	return 0;
}

static int flb_retrieve(struct liveupdate_flb_op_args *args)
{
	(void)args;
	return 0;
}

static void flb_finish(struct liveupdate_flb_op_args *args)
{
	(void)args;
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

static struct liveupdate_flb flbs[2] = {
	{.ops = &flb_ops, .compatible = "fuzz-flb-v1"},
	{.ops = &flb_ops, .compatible = "fuzz-flb2-v1"},
};

static void *preserve(size_t size, int byte)
{
	void *p;

	try(kho_alloc_preserve(size, &p));
	memset(p, byte, size);
	return p;
}

static void add_subsystems_and_blocks(void)
{
	void *blob, *hole, *fdt;
	int node;

	blob = preserve(100, 0x61);
	hole = preserve(1000, 0x62);
	preserve(256, 0x63);
	try(kho_unpreserve_free(hole)); /* a free block between used ones */
	subs[0].arg = (void *)(uintptr_t)kho_ptr_to_offset(blob);
	subs[1].arg = (void *)(uintptr_t)42;
	for (int i = 0; i < 3; i++)
		try(liveupdate_register_subsystem(&subs[i]));

	fdt = preserve(512, 0);
	try(fdt_create_empty_tree(fdt, 512) ? -EINVAL : 0);
	try(fdt_setprop_string(fdt, 0, "compatible", "fuzz-user-v1") ? -EINVAL
								     : 0);
	try(fdt_setprop_u64(fdt, 0, "blob", kho_ptr_to_offset(blob)) ? -EINVAL
								     : 0);
	node = fdt_add_subnode(fdt, 0, "child");
	try(node < 0 ? -EINVAL : 0);
	try(fdt_setprop_string(fdt, node, "value", "hello") ? -EINVAL : 0);
	try(kho_add_subtree("fuzz-user", fdt));
}

static struct luo_session *session(const char *name)
{
	struct luo_session *s;

	try(liveupdate_create_session(name, &s));
	return s;
}

static void keep(struct luo_session *s, int fd, uint64_t token)
{
	if (fd < 0)
		die("cannot open a file for token %#llx: %s",
		    (unsigned long long)token, strerror(errno));
	try(liveupdate_session_preserve_fd(s, fd, token));
	close(fd); /* the library holds its own reference */
}

static void add_sessions(void)
{
	struct luo_session *s0 = session("fuzz-s0"), *s1 = session("fuzz-s1");
	int p[2], sp[2];

	session("fuzz-empty");
	keep(s0, memfd_create("fuzz-seed", MFD_CLOEXEC), 1);
	if (pipe2(p, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	keep(s0, p[0], 2);
	keep(s0, p[1], 3);
	keep(s1, eventfd(7, EFD_CLOEXEC), 10);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		die("socketpair: %s", strerror(errno));
	keep(s1, sp[0], 11);
	keep(s1, timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), 12);
	keep(s1, open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), 13);
	keep(s1, socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
	     0xfeedfacecafebeefULL);
	close(sp[1]);
}

static void add_flbs(void)
{
	struct luo_session *s = session("fuzz-flb");

	try(liveupdate_register_file_handler(&user_handler));
	try(liveupdate_register_flb(&user_handler, &flbs[0]));
	try(liveupdate_register_flb(&user_handler, &flbs[1]));
	for (int i = 0; i < 2; i++) {
		int fd = memfd_create("fuzz-user-file", MFD_CLOEXEC);

		if (fd < 0)
			die("memfd_create: %s", strerror(errno));
		user_fds[nuser_fds++] = fd;
		try(liveupdate_session_preserve_fd(s, fd, 100 + i));
	}
	/* One more of a built-in kind in the same session. */
	keep(s, eventfd(0, EFD_CLOEXEC), 102);
}

/* A small device tree (luo-devices-v1 node): four devices preserved. */
static int fz_dev_prepare(struct liveupdate_device *dev, uint64_t *data)
{
	*data = 0x1000 + strlen(dev->name);
	return 0;
}

static const struct liveupdate_device_cbs fz_dev_cbs = {.prepare =
								fz_dev_prepare};
static const struct liveupdate_bus fz_bus = {.name = "fz-bus",
					     .liveupdate = &fz_dev_cbs};
static const struct liveupdate_driver fz_drv = {.name = "fz-drv",
						.liveupdate = &fz_dev_cbs};
static struct liveupdate_device fz_devs[5] = {
	{.name = "vm", .bus = &fz_bus, .driver = &fz_drv},
	{.name = "pci0", .parent = &fz_devs[0], .bus = &fz_bus},
	{.name = "net0", .parent = &fz_devs[1], .driver = &fz_drv},
	{.name = "serial0", .parent = &fz_devs[0]},
	{.name = "not-preserved", .parent = &fz_devs[0], .bus = &fz_bus},
};

static void add_devices(void)
{
	for (int i = 0; i < 5; i++)
		try(liveupdate_device_register(&fz_devs[i]));
	try(liveupdate_device_request(&fz_devs[2], true));
	try(liveupdate_device_request(&fz_devs[3], true));
}

static int gen(enum variant v, const char *outdir)
{
	struct luo_init_opts opts = {.flags = LUO_INIT_SYNC_TEARDOWN};
	char *argv[] = {self, "--dump", (char *)variant_names[v],
			(char *)outdir, NULL};

	try(luo_init(&opts));
	if (v >= V_SUBSYSTEMS)
		add_subsystems_and_blocks();
	if (v >= V_SESSIONS)
		add_sessions();
	if (v >= V_FLB)
		add_flbs();
	if (v >= V_DEVICES)
		add_devices();
	try(liveupdate_prepare());
	try(liveupdate_reboot(self, argv, NULL));
	die("liveupdate_reboot returned");
}

/* ------------------------------------------------------------------ */
/* The new image: dump the arena, do not adopt it. */

static void placeholder(struct luo_file_ser *file,
			struct luo_file_fd_ser *where, void *arg)
{
	(void)file;
	(void)arg;
	where->dev = 0;
	where->ino = 0;
}

/* The seed must be accepted as it is: adopt a copy, then let it go. */
static void check_accepted(const char *path, const uint8_t *buf, size_t len)
{
	/* Named as the library names its arenas, which it checks. */
	int fd = memfd_create("luo-arena", 0);
	struct kho_arena_header h;
	char env[32];
	int err;

	memcpy(&h, buf, sizeof(h));
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len ||
	    (h.arena_size > len && ftruncate(fd, (off_t)h.arena_size)))
		die("cannot copy %s: %s", path, strerror(errno));
	snprintf(env, sizeof(env), "%d", fd);
	setenv(LUO_HANDOVER_ENV, env, 1);
	err = luo_init(NULL);
	if (err)
		die("%s is refused: %s", path, strerror(-err));
	if (liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED)
		die("%s: state %s", path,
		    liveupdate_state_name(liveupdate_get_state()));
	try(luo_exit());
}

/* @ctl: the harness's control byte, the last one, which nobody reads. */
static void write_seed(const char *outdir, const char *name, uint8_t *buf,
		       size_t len, uint8_t ctl)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", outdir, name);
	if (buf[len - 1])
		die("%s: the last byte (the harness's control byte) is %#x",
		    path, buf[len - 1]);
	check_accepted(path, buf, len);
	buf[len - 1] = ctl;
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		die("cannot write %s: %s", path, strerror(errno));
	buf[len - 1] = 0;
	printf("make_seeds: %s: %zu bytes\n", path, len);
}

/*
 * The same arena as if on 2 MiB huge pages: flags, page size, and the last
 * free block running to 2 MiB.  The image stays @len bytes; its control
 * byte 0x08 has the harness extend the memfd.
 */
static void write_huge_seed(const char *outdir, const char *name,
			    const uint8_t *buf, size_t len)
{
	uint8_t *copy = calloc(1, len + 4096);
	struct kho_arena_header h;
	struct kho_block_header b;
	uint64_t last;

	if (!copy)
		die("out of memory");
	memcpy(copy, buf, len);
	last = fz_arena_last_block(copy, len);
	memcpy(&h, copy, sizeof(h));
	memcpy(&b, copy + last, sizeof(b));
	if (last && b.flags && last + b.size == len) {
		/* Full to its end: one more page, a free block in it. */
		memset(&b, 0, sizeof(b));
		b.magic = KHO_BLOCK_MAGIC;
		last = len;
		len += 4096;
	}
	if (!last || b.flags || last + b.size > len)
		die("%s: the arena does not end with a free block", name);
	h.flags = KHO_ARENA_HUGETLB;
	h.page_size = 2u << 20;
	h.arena_size = 2u << 20;
	b.size = h.arena_size - last;
	memcpy(copy, &h, sizeof(h));
	memcpy(copy + last, &b, sizeof(b));
	fz_arena_fix_checksums(copy, len);
	write_seed(outdir, name, copy, len, 0x08);
	free(copy);
}

static int dump(const char *variant, const char *outdir)
{
	const char *value = getenv(LUO_HANDOVER_ENV);
	struct kho_arena_header h;
	char name[64];
	uint8_t *buf;
	size_t len, done = 0;
	int fd;

	if (!value)
		die("dump: no %s", LUO_HANDOVER_ENV);
	fd = atoi(value);
	unsetenv(LUO_HANDOVER_ENV);
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		die("dump: cannot read the arena header: %s", strerror(errno));
	len = h.arena_size;
	buf = malloc(len);
	if (!buf)
		die("dump: out of memory");
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);

		if (n <= 0)
			die("dump: cannot read the arena: %s", strerror(errno));
		done += (size_t)n;
	}
	close(fd);
	len = fz_arena_trim(buf, len);
	write_seed(outdir, variant, buf, len, 0);
	if (!strcmp(variant, "subsystems")) {
		snprintf(name, sizeof(name), "%s-huge", variant);
		write_huge_seed(outdir, name, buf, len);
	}
	if (fz_arena_for_each_file(buf, len, placeholder, NULL)) {
		fz_arena_fix_checksums(buf, len);
		snprintf(name, sizeof(name), "%s-fds", variant);
		write_seed(outdir, name, buf, len, 0);
	}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		die("cannot find myself");
	self[n] = 0;
	luo_set_log_level(LUO_LOG_WARN);
	if (argc == 4 && !strcmp(argv[1], "--dump"))
		return dump(argv[2], argv[3]);
	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds OUTDIR\n");
		return 2;
	}
	for (int v = 0; v < NVARIANTS; v++) {
		pid_t pid = fork();
		int status;

		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (!pid)
			exit(gen((enum variant)v, argv[1]));
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("variant %s failed", variant_names[v]);
	}
	return 0;
}
