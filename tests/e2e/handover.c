// SPDX-License-Identifier: MIT
/*
 * e2e-handover: what the next image is given, seen from outside the library.
 *
 *   e2e-handover gen corrupt     build a real handover, update into "corrupt"
 *   e2e-handover gen dtc [DTC]   build a real handover, update into "dtc"
 *
 * "gen" uses the library as a service would (subsystems, preserved blocks,
 * one of several MiB, a user subtree) and really execs this binary again.
 *
 * "corrupt" does not call luo_init(): it takes the inherited arena, and for
 * each case copies it into a new memfd, damages the copy in one precise way
 * and runs "probe" (this binary again) on it with LUO_HANDOVER_FD naming
 * the copy.  The probe calls luo_init() and tells by its exit code whether
 * the handover was accepted or refused; a refusal must come with one
 * "luo: error:" line and a working fresh start.  A crash, a hang or an
 * accepted corruption fails the test.  Checksums are recomputed where the
 * case is about a semantic check, so that the check itself is exercised.
 *
 * "dtc" writes the root and LUO FDTs to files and decodes them with dtc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <luo/luo.h>

#define BIG_SIZE (8u << 20)
#define SMALL_SIZE 1000
#define TWIN_SIZE 256
#define GAP_SIZE (16u << 10)
#define USER_FDT_SIZE 4096
#define CONST_DATA 0x2aULL
#define BIG_SEED 0xb16b16ULL
#define SMALL_SEED 0x5a11ULL
#define USER_COMPATIBLE "e2e-user-v1"
#define PROBE_FD 100
#define PROBE_REFUSED 3
#define PROBE_TIMEOUT_MS 30000
#define MIN_CORRUPTIONS 50
#define BLK_HDR ((uint64_t)sizeof(struct kho_block_header))

static char self[PATH_MAX];
static char selfdir[PATH_MAX];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = mix(seed ^ i);
}

static size_t bad_words(const void *p, size_t len, uint64_t seed)
{
	const uint64_t *w = p;
	size_t bad = 0;

	for (size_t i = 0; i < len / 8; i++)
		bad += w[i] != mix(seed ^ i);
	return bad;
}

/* CRC32C (Castagnoli), bit by bit: an independent implementation. */
static uint32_t crc32c(uint32_t seed, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~seed;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78U & (0U - (c & 1)));
	}
	return ~c;
}

/* ------------------------------------------------------------------ */
/* The subsystems of the service, in the first image and in the probe. */

static const char *const sub_names[3] = {"e2e-big", "e2e-small", "e2e-const"};
static struct liveupdate_subsystem subs[3];
static int boot_calls[3];
static uint64_t boot_data[3];

static int sub_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	*data = (uint64_t)(uintptr_t)h->arg;
	return 0;
}

static void sub_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	boot_calls[h - subs]++;
	boot_data[h - subs] = data;
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.prepare = sub_prepare,
	.boot = sub_boot,
};

static int register_subs(const uint64_t vals[3])
{
	for (int i = 0; i < 3; i++) {
		int err;

		subs[i] = (struct liveupdate_subsystem){
			.ops = &sub_ops,
			.name = sub_names[i],
			.arg = (void *)(uintptr_t)(vals ? vals[i] : 0),
		};
		err = liveupdate_register_subsystem(&subs[i]);
		if (err) {
			fprintf(stderr, "register %s: %s\n", sub_names[i],
				strerror(-err));
			return err;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Two devices: "e2e-bus0" and its child "e2e-bus0/e2e-dev0", requested. */

#define DEV_DRIVER_DATA 0xd0d0d0d0d0d0d0d1ULL
#define DEV_BUS_DATA 0xb0b0b0b0b0b0b0b2ULL

static int dev_drv_prepare(struct liveupdate_device *dev, uint64_t *data)
{
	(void)dev;
	*data = DEV_DRIVER_DATA;
	return 0;
}

static int dev_bus_prepare(struct liveupdate_device *dev, uint64_t *data)
{
	(void)dev;
	*data = DEV_BUS_DATA;
	return 0;
}

static const struct liveupdate_device_cbs dev_drv_cbs = {
	.prepare = dev_drv_prepare};
static const struct liveupdate_device_cbs dev_bus_cbs = {
	.prepare = dev_bus_prepare};
static const struct liveupdate_bus dev_bus = {.name = "e2e-bus",
					      .liveupdate = &dev_bus_cbs};
static const struct liveupdate_driver dev_drv = {.name = "e2e-drv",
						 .liveupdate = &dev_drv_cbs};
static struct liveupdate_device devs[2] = {
	{.name = "e2e-bus0", .bus = &dev_bus, .driver = &dev_drv},
	{.name = "e2e-dev0",
	 .parent = &devs[0],
	 .bus = &dev_bus,
	 .driver = &dev_drv},
};

static int register_devs(bool request)
{
	int err = liveupdate_device_register(&devs[0]);

	err = err ?: liveupdate_device_register(&devs[1]);
	if (!err && request)
		err = liveupdate_device_request(&devs[1], true);
	if (err)
		fprintf(stderr, "devices: %s\n", strerror(-err));
	return err;
}

/* ------------------------------------------------------------------ */
/* gen: the first image builds a real handover and updates into @mode. */

static int stage_gen(int argc, char **argv)
{
	const char *mode = argv[2];
	char *nargv[] = {self, (char *)mode, argc > 3 ? argv[3] : NULL, NULL};
	void *big, *small, *gap, *twin1, *twin2, *fdt;
	uint64_t vals[3];
	int err, node;

	if (!strcmp(mode, "corrupt") && argc > 3 &&
	    !strcmp(argv[3], "fuzzing-build")) {
		printf("corrupt-handover: SKIP: a -Dfuzzing=true build does not enforce checksums\n");
		return 77;
	}
	if (!strcmp(mode, "dtc") && (argc < 4 || !argv[3][0])) {
		printf("handover-dtc: SKIP: dtc is not installed\n");
		return 77;
	}
	err = luo_init(NULL);
	if (err) {
		fprintf(stderr, "gen: luo_init: %s\n", strerror(-err));
		return 1;
	}
	err = kho_alloc_preserve(SMALL_SIZE, &small);
	err = err ?: kho_alloc_preserve(GAP_SIZE, &gap);
	err = err ?: kho_alloc_preserve(TWIN_SIZE, &twin1);
	err = err ?: kho_alloc_preserve(TWIN_SIZE, &twin2);
	err = err ?: kho_alloc_preserve(BIG_SIZE, &big);
	err = err ?: kho_alloc_preserve(USER_FDT_SIZE, &fdt);
	if (err) {
		fprintf(stderr, "gen: kho_alloc_preserve: %s\n",
			strerror(-err));
		return 1;
	}
	fill(small, SMALL_SIZE, SMALL_SEED);
	fill(big, BIG_SIZE, BIG_SEED);
	memset(twin1, 0x77, TWIN_SIZE);
	memset(twin2, 0x77, TWIN_SIZE);
	/* a hole between used blocks */
	err = kho_unpreserve_free(gap);
	if (err) {
		fprintf(stderr, "gen: kho_unpreserve_free: %s\n",
			strerror(-err));
		return 1;
	}

	err = fdt_create_empty_tree(fdt, USER_FDT_SIZE);
	err = err ?: fdt_setprop_string(fdt, 0, "compatible", USER_COMPATIBLE);
	err = err ?: fdt_setprop_u64(fdt, 0, "big", kho_ptr_to_offset(big));
	err = err ?: fdt_setprop_u64(fdt, 0, "small", kho_ptr_to_offset(small));
	err = err ?: fdt_setprop_u64(fdt, 0, "twin1", kho_ptr_to_offset(twin1));
	err = err ?: fdt_setprop_u64(fdt, 0, "twin2", kho_ptr_to_offset(twin2));
	node = err ?: fdt_add_subnode(fdt, 0, "child");
	err = node < 0 ? node : fdt_setprop_string(fdt, node, "value", "hello");
	if (err) {
		fprintf(stderr, "gen: user FDT: %s\n", fdt_strerror(err));
		return 1;
	}
	err = kho_add_subtree("e2e-user", fdt);
	if (err) {
		fprintf(stderr, "gen: kho_add_subtree: %s\n", strerror(-err));
		return 1;
	}

	vals[0] = kho_ptr_to_offset(big);
	vals[1] = kho_ptr_to_offset(small);
	vals[2] = CONST_DATA;
	if (register_subs(vals) || register_devs(true))
		return 1;
	err = liveupdate_prepare();
	if (err) {
		fprintf(stderr, "gen: liveupdate_prepare: %s\n",
			strerror(-err));
		return 1;
	}
	err = liveupdate_reboot(self, nargv, NULL);
	fprintf(stderr, "gen: liveupdate_reboot: %s\n", strerror(-err));
	return 1;
}

/* ------------------------------------------------------------------ */
/* probe: luo_init() on whatever LUO_HANDOVER_FD names. */

/* The full check of an accepted handover: only the controls get here. */
static int probe_verify(void)
{
	const void *fdt;
	void *big, *small;
	const fdt64_t *p;
	int err, len, bad = 0;

	if (liveupdate_get_num() != 1) {
		printf("probe: update number %llu, want 1\n",
		       (unsigned long long)liveupdate_get_num());
		bad++;
	}
	if (register_subs(NULL))
		return 1;
	for (int i = 0; i < 3; i++)
		if (boot_calls[i] != 1) {
			printf("probe: %s booted %d times\n", sub_names[i],
			       boot_calls[i]);
			bad++;
		}
	if (boot_data[2] != CONST_DATA) {
		printf("probe: e2e-const carried %#llx\n",
		       (unsigned long long)boot_data[2]);
		bad++;
	}
	err = kho_restore(boot_data[0], BIG_SIZE, &big);
	if (err || bad_words(big, BIG_SIZE, BIG_SEED)) {
		printf("probe: big block at %#llx: %s\n",
		       (unsigned long long)boot_data[0],
		       err ? strerror(-err) : "contents damaged");
		bad++;
	}
	err = kho_restore(boot_data[1], SMALL_SIZE, &small);
	if (err || bad_words(small, SMALL_SIZE, SMALL_SEED)) {
		printf("probe: small block: %s\n",
		       err ? strerror(-err) : "contents damaged");
		bad++;
	}
	err = kho_retrieve_subtree("e2e-user", &fdt);
	if (err || fdt_node_check_compatible(fdt, 0, USER_COMPATIBLE) ||
	    !(p = fdt_getprop(fdt, 0, "big", &len)) || len != 8 ||
	    fdt64_ld(p) != boot_data[0]) {
		printf("probe: user subtree missing or wrong (%d)\n", err);
		bad++;
	}
	{
		uint64_t dd = 0, bd = 0;

		err = register_devs(false);
		err = err ?: liveupdate_device_reclaim(&devs[1], &dd, &bd);
		err = err ?: liveupdate_device_reclaim(&devs[0], NULL, NULL);
		if (err || dd != DEV_DRIVER_DATA || bd != DEV_BUS_DATA) {
			printf("probe: devices not reclaimed with their data (%d)\n",
			       err);
			bad++;
		}
	}
	err = liveupdate_finish();
	if (err || liveupdate_get_state() != LIVEUPDATE_STATE_NORMAL) {
		printf("probe: liveupdate_finish: %d\n", err);
		bad++;
	}
	return bad;
}

/* After a refusal: a second luo_init() must give a clean, working start. */
static int probe_fresh_start(void)
{
	struct liveupdate_timing t;
	struct liveupdate_subsystem s = {.name = "e2e-big"};
	const void *fdt;
	uint64_t data;
	void *p;
	int err, bad = 0;

	err = luo_init(NULL);
	if (err) {
		printf("probe: second luo_init: %d (%s)\n", err,
		       strerror(-err));
		return 1;
	}
#define PROBE_EXPECT(cond)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("probe: after the fresh start: %s\n", #cond);   \
			bad++;                                                 \
		}                                                              \
	} while (0)
	PROBE_EXPECT(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL);
	PROBE_EXPECT(liveupdate_get_num() == 0);
	PROBE_EXPECT(liveupdate_get_timing(&t) == -ENODATA);
	PROBE_EXPECT(liveupdate_get_subsystem_data(&s, &data) == -ENODATA);
	PROBE_EXPECT(kho_retrieve_subtree("LUO", &fdt) == -ENODATA);
	PROBE_EXPECT(kho_retrieve_subtree("e2e-user", &fdt) == -ENODATA);
	err = kho_alloc_preserve(1 << 20, &p);
	PROBE_EXPECT(err == 0);
	if (!err) {
		memset(p, 0xa5, 1 << 20);
		PROBE_EXPECT(kho_unpreserve_free(p) == 0);
	}
	PROBE_EXPECT(register_subs(NULL) == 0);
	PROBE_EXPECT(boot_calls[0] + boot_calls[1] + boot_calls[2] == 0);
	PROBE_EXPECT(liveupdate_prepare() == 0);
	PROBE_EXPECT(liveupdate_cancel() == 0);
	PROBE_EXPECT(luo_exit() == 0);
	return bad;
}

static int stage_probe(void)
{
	int err = luo_init(NULL);
	enum liveupdate_state st = liveupdate_get_state();
	int fd_open = fcntl(PROBE_FD, F_GETFD) >= 0;
	int env_left = getenv(LUO_HANDOVER_ENV) != NULL;

	printf("probe: luo_init=%d state=%s fd%d=%s env=%s\n", err,
	       liveupdate_state_name(st), PROBE_FD, fd_open ? "open" : "closed",
	       env_left ? "left" : "gone");
	fflush(stdout);
	if (env_left)
		return 7;
	if (err == 0) {
		if (st != LIVEUPDATE_STATE_UPDATED)
			return 5;
		return probe_verify() ? 6 : 0;
	}
	if (err > 0)
		return 9;
	if (st != LIVEUPDATE_STATE_UNDEFINED)
		return 8;
	return probe_fresh_start() ? 4 : PROBE_REFUSED;
}

/* ------------------------------------------------------------------ */
/* The inherited (pristine) handover and where things are in it. */

struct blk {
	uint64_t off; /* header offset */
	uint64_t size, payload_size, checked_size;
	uint32_t flags;
};

struct layout {
	int fd;
	const uint8_t *p; /* read-only view of the original */
	uint64_t file_size, arena_size;
	struct blk blocks[512];
	size_t nblocks;
	/* payload offsets */
	uint64_t root, luo, ser, user, big, small, twin1, twin2;
	/* header offsets */
	uint64_t free_mid, tail;
};

static struct layout L;

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "e2e-handover: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Adopt the arena fd the library handed over, without the library. */
static void take_handover(void)
{
	const char *v = getenv(LUO_HANDOVER_ENV);
	int afd = -1, tfd = -1, pid = -1, n;
	char junk;
	struct stat st;

	if (!v)
		die("%s is not set: run me as 'gen corrupt'", LUO_HANDOVER_ENV);
	n = sscanf(v, "%d,%d,%d%c", &afd, &tfd, &pid, &junk);
	if (n != 1 && n != 3)
		die("cannot parse %s=%s", LUO_HANDOVER_ENV, v);
	printf("e2e-handover: inherited %s=%s\n", LUO_HANDOVER_ENV, v);
	if (n == 3) {
		int status;

		/* let the old address space go: the holder is our child */
		close(tfd);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("teardown helper %d did not exit cleanly", pid);
	}
	unsetenv(LUO_HANDOVER_ENV);
	if (fcntl(afd, F_SETFD, FD_CLOEXEC) || fstat(afd, &st))
		die("arena fd %d: %s", afd, strerror(errno));
	L.fd = afd;
	L.file_size = (uint64_t)st.st_size;
	L.p = mmap(NULL, L.file_size, PROT_READ, MAP_SHARED, afd, 0);
	if (L.p == MAP_FAILED)
		die("mmap of the arena: %s", strerror(errno));
}

static const struct blk *blk_at(uint64_t hdr_off)
{
	for (size_t i = 0; i < L.nblocks; i++)
		if (L.blocks[i].off == hdr_off)
			return &L.blocks[i];
	return NULL;
}

static uint64_t u64_prop(const void *fdt, const char *path, const char *prop)
{
	int node = fdt_path_offset(fdt, path), len;
	const fdt64_t *p = node < 0 ? NULL : fdt_getprop(fdt, node, prop, &len);

	if (!p || len != 8)
		die("no u64 %s:%s in the FDT", path, prop);
	return fdt64_ld(p);
}

static const void *payload_fdt(uint64_t payload, const char *what)
{
	const struct blk *b = blk_at(payload - BLK_HDR);

	if (!b || !(b->flags & KHO_BLOCK_USED) ||
	    fdt_check_full(L.p + payload, b->payload_size))
		die("%s at %#llx is not a valid FDT in a block", what,
		    (unsigned long long)payload);
	return L.p + payload;
}

static void parse_layout(void)
{
	const struct kho_arena_header *h = (const void *)L.p;
	uint64_t off;
	const void *root, *luo, *user;

	if (L.file_size < sizeof(*h) || h->magic != KHO_ARENA_MAGIC ||
	    h->arena_size > L.file_size)
		die("the inherited arena does not look like one");
	L.arena_size = h->arena_size;
	L.root = h->root_fdt;
	for (off = h->data_start; off < L.arena_size;) {
		const struct kho_block_header *b = (const void *)(L.p + off);

		if (b->magic != KHO_BLOCK_MAGIC || b->size < BLK_HDR ||
		    b->size % KHO_BLOCK_ALIGN || b->size > L.arena_size - off ||
		    L.nblocks == sizeof(L.blocks) / sizeof(L.blocks[0]))
			die("bad block at %#llx in the pristine arena",
			    (unsigned long long)off);
		L.blocks[L.nblocks++] = (struct blk){
			.off = off,
			.size = b->size,
			.payload_size = b->payload_size,
			.checked_size = b->checked_size,
			.flags = b->flags,
		};
		off += b->size;
	}
	root = payload_fdt(L.root, "root FDT");
	L.luo = u64_prop(root, "/" LUO_FDT_KHO_ENTRY_NAME, KHO_SUBTREE_PROP);
	L.user = u64_prop(root, "/e2e-user", KHO_SUBTREE_PROP);
	luo = payload_fdt(L.luo, "LUO FDT");
	user = payload_fdt(L.user, "user FDT");
	L.ser = u64_prop(luo, "/", LUO_FDT_ABI_HEADER);
	L.big = u64_prop(user, "/", "big");
	L.small = u64_prop(user, "/", "small");
	L.twin1 = u64_prop(user, "/", "twin1");
	L.twin2 = u64_prop(user, "/", "twin2");
	if (u64_prop(luo, "/subsystems", "e2e-big") != L.big ||
	    u64_prop(luo, "/subsystems", "e2e-small") != L.small ||
	    u64_prop(luo, "/subsystems", "e2e-const") != CONST_DATA)
		die("subsystem data in the LUO FDT is not what gen recorded");
	L.tail = L.blocks[L.nblocks - 1].off;
	L.free_mid = 0;
	for (size_t i = 1; i + 1 < L.nblocks; i++)
		if (!(L.blocks[i].flags & KHO_BLOCK_USED) &&
		    (L.blocks[i - 1].flags & KHO_BLOCK_USED) &&
		    (L.blocks[i + 1].flags & KHO_BLOCK_USED)) {
			L.free_mid = L.blocks[i].off;
			break;
		}
	if (!L.free_mid)
		die("no free block between used blocks in the arena");
	/* else "hdr-arena-size-minus-page" would only cut off whole blocks */
	for (size_t i = 0; i < L.nblocks; i++)
		if (L.blocks[i].off == L.arena_size - 4096)
			die("a block starts one page before the arena end");
	{
		const uint64_t checked[] = {L.root, L.luo, L.ser, L.user};
		const uint64_t plain[] = {L.big, L.small, L.twin1, L.twin2};

		for (size_t i = 0; i < 4; i++) {
			const struct blk *b = blk_at(checked[i] - BLK_HDR);

			if (!b || !(b->flags & KHO_BLOCK_CHECKED) ||
			    b->checked_size != b->payload_size)
				die("metadata block %#llx is not as expected",
				    (unsigned long long)checked[i]);
			b = blk_at(plain[i] - BLK_HDR);
			if (!b || b->flags != KHO_BLOCK_USED)
				die("data block %#llx is not as expected",
				    (unsigned long long)plain[i]);
		}
		if (blk_at(L.twin1 - BLK_HDR)->size !=
		    blk_at(L.twin2 - BLK_HDR)->size)
			die("the twins differ in size");
	}
	printf("e2e-handover: arena %llu bytes (memfd %llu), %zu blocks; root FDT %#llx, LUO FDT %#llx, luo_ser %#llx, user FDT %#llx, big %#llx, free block %#llx, tail %#llx\n",
	       (unsigned long long)L.arena_size,
	       (unsigned long long)L.file_size, L.nblocks,
	       (unsigned long long)L.root, (unsigned long long)L.luo,
	       (unsigned long long)L.ser, (unsigned long long)L.user,
	       (unsigned long long)L.big, (unsigned long long)L.free_mid,
	       (unsigned long long)L.tail);
}

/* ------------------------------------------------------------------ */
/* Corruption cases. */

enum target {
	T_NONE,
	T_HDR,
	T_B_FIRST, /* block headers */
	T_B_ROOT,
	T_B_LUO,
	T_B_SER,
	T_B_USER,
	T_B_BIG,
	T_B_SMALL,
	T_B_TWIN1,
	T_B_TWIN2,
	T_B_FREE,
	T_B_TAIL,
	T_P_ROOT, /* payloads */
	T_P_LUO,
	T_P_SER,
	T_P_USER,
	T_P_BIG,
	T_P_FREE,
	T_END, /* arena_size */
	T_HALF,
};

static uint64_t tgt(int t)
{
	switch (t) {
	case T_HDR:
		return 0;
	case T_B_FIRST:
		return L.blocks[0].off;
	case T_B_ROOT:
		return L.root - BLK_HDR;
	case T_B_LUO:
		return L.luo - BLK_HDR;
	case T_B_SER:
		return L.ser - BLK_HDR;
	case T_B_USER:
		return L.user - BLK_HDR;
	case T_B_BIG:
		return L.big - BLK_HDR;
	case T_B_SMALL:
		return L.small - BLK_HDR;
	case T_B_TWIN1:
		return L.twin1 - BLK_HDR;
	case T_B_TWIN2:
		return L.twin2 - BLK_HDR;
	case T_B_FREE:
		return L.free_mid;
	case T_B_TAIL:
		return L.tail;
	case T_P_ROOT:
		return L.root;
	case T_P_LUO:
		return L.luo;
	case T_P_SER:
		return L.ser;
	case T_P_USER:
		return L.user;
	case T_P_BIG:
		return L.big;
	case T_P_FREE:
		return L.free_mid + BLK_HDR;
	case T_END:
		return L.arena_size;
	case T_HALF:
		return L.arena_size / 2;
	default:
		return 0;
	}
}

/* Expected outcome. */
#define ACCEPT 0
#define REFUSE_ANY 1 /* any refusal; the errno is not pinned down */

/* Case flags. */
#define RESIGNED                                                               \
	0x1 /* checksums recomputed: a checksum must not be the reason */
#define CONTROL 0x2 /* a positive control, not a corruption */

/* How a value is computed from the case. */
enum vk { V_ABS, V_ADD, V_REF };

/* FDT operations. */
enum op {
	OP_NOP,
	OP_SETU64,
	OP_SETU32,
	OP_SETSTR,
	OP_DELPROP,
	OP_DELNODE,
	OP_RENAME,
	OP_ADDNODE,  /* subnode @str of @path with "fdt" = value */
	OP_DUPNODE,  /* a second subnode named @str with "fdt" = value */
	OP_DUPPROP,  /* a second property named @prop with value */
	OP_SETBYTES, /* @prop = the @len bytes at @str */
};

/* Regions of an FDT, for raw flips. */
enum region { R_START, R_STRUCT, R_STRINGS };

/* Where probe fd PROBE_FD comes from. */
enum fdkind {
	FDK_COPY, /* the (damaged) copy */
	FDK_NONE,
	FDK_DEVNULL,
	FDK_PIPE,
	FDK_DISKFILE, /* a regular file on disk holding the pristine bytes */
	FDK_DIR,
	FDK_RANDOM_MEMFD,
	FDK_EMPTY_MEMFD,
	FDK_SEALED_MEMFD,  /* the pristine copy, F_SEAL_WRITE */
	FDK_RDONLY,	   /* the pristine copy, opened again read-only */
	FDK_SHM_FILE,	   /* a /dev/shm file named as the arena, pristine */
	FDK_FOREIGN_MEMFD, /* the pristine bytes in a memfd named otherwise */
};

struct ctx;

struct kase {
	const char *name;
	int expect;
	unsigned int flags;
	int (*fn)(struct ctx *c, const struct kase *k);
	int target;
	uint64_t off, len;
	int vk;
	uint64_t val;
	int ref;
	int op;
	const char *path, *prop, *str;
};

struct ctx {
	uint8_t *p; /* writable view of the copy */
	int fd;
	uint64_t size;
	char env[64];
	int fdkind;
};

static uint64_t value(const struct kase *k, uint64_t cur)
{
	switch (k->vk) {
	case V_ADD:
		return cur + k->val;
	case V_REF:
		return tgt(k->ref) + k->val;
	default:
		return k->val;
	}
}

/* Fields wider than 8 bytes (reserved arrays) are set by their first 8. */
static uint64_t get_le(const uint8_t *p, uint64_t len)
{
	uint64_t v = 0;

	memcpy(&v, p, len < 8 ? len : 8);
	return v;
}

static void set_le(uint8_t *p, uint64_t len, uint64_t v)
{
	memcpy(p, &v, len < 8 ? len : 8);
}

static void resign_arena_header(struct ctx *c)
{
	struct kho_arena_header h;

	memcpy(&h, c->p, sizeof(h));
	h.header_crc = 0;
	h.header_crc = crc32c(0, &h, sizeof(h));
	memcpy(c->p, &h, sizeof(h));
}

static void resign_block_header(struct ctx *c, uint64_t off)
{
	struct kho_block_header h;

	memcpy(&h, c->p + off, sizeof(h));
	h.header_crc = 0;
	h.header_crc =
		crc32c((uint32_t)off ^ (uint32_t)(off >> 32), &h, sizeof(h));
	memcpy(c->p + off, &h, sizeof(h));
}

/* Recompute a checked block's payload CRC, then its header CRC. */
static void resign_block(struct ctx *c, uint64_t off)
{
	struct kho_block_header h;

	memcpy(&h, c->p + off, sizeof(h));
	if (h.flags & KHO_BLOCK_CHECKED) {
		h.payload_crc = crc32c(0, c->p + off + BLK_HDR, h.checked_size);
		memcpy(c->p + off, &h, sizeof(h));
	}
	resign_block_header(c, off);
}

static int mut_none(struct ctx *c, const struct kase *k)
{
	(void)c;
	(void)k;
	return 0;
}

static int mut_resign_all(struct ctx *c, const struct kase *k)
{
	(void)k;
	for (size_t i = 0; i < L.nblocks; i++)
		resign_block(c, L.blocks[i].off);
	resign_arena_header(c);
	return 0;
}

static uint64_t region_base(const struct kase *k)
{
	uint64_t base = tgt(k->target);
	const void *fdt = L.p + base;

	if (k->op == R_STRUCT)
		return base + fdt_off_dt_struct(fdt);
	if (k->op == R_STRINGS)
		return base + fdt_off_dt_strings(fdt);
	return base;
}

/* Flip bits of one byte; checksums are left alone. */
static int mut_flip(struct ctx *c, const struct kase *k)
{
	c->p[region_base(k) + k->off] ^= (uint8_t)k->val;
	return 0;
}

/* Flip bits of one byte of a property's value in an FDT payload. */
static int mut_flip_prop(struct ctx *c, const struct kase *k)
{
	uint64_t base = tgt(k->target);
	int node = fdt_path_offset(L.p + base, k->path), len;
	const uint8_t *v =
		node < 0 ? NULL : fdt_getprop(L.p + base, node, k->prop, &len);

	if (!v || (uint64_t)len <= k->off)
		return -1;
	c->p[(uint64_t)(v - L.p) + k->off] ^= (uint8_t)k->val;
	return 0;
}

/* Overwrite a byte range with one value. */
static int mut_fill(struct ctx *c, const struct kase *k)
{
	memset(c->p + tgt(k->target) + k->off, (int)k->val, k->len);
	return 0;
}

/* A field of the arena header, header CRC recomputed. */
static int mut_hdr(struct ctx *c, const struct kase *k)
{
	uint8_t *f = c->p + k->off;

	set_le(f, k->len, value(k, get_le(f, k->len)));
	resign_arena_header(c);
	return 0;
}

/* A field of a block header, header CRC recomputed. */
static int mut_blk(struct ctx *c, const struct kase *k)
{
	uint8_t *f = c->p + tgt(k->target) + k->off;

	set_le(f, k->len, value(k, get_le(f, k->len)));
	resign_block_header(c, tgt(k->target));
	return 0;
}

/* A field in a checked payload (struct luo_ser), both CRCs recomputed. */
static int mut_pay(struct ctx *c, const struct kase *k)
{
	uint8_t *f = c->p + tgt(k->target) + k->off;

	set_le(f, k->len, value(k, get_le(f, k->len)));
	resign_block(c, tgt(k->target) - BLK_HDR);
	return 0;
}

/* A big-endian u32 in an FDT payload (header or region), CRCs recomputed. */
static int mut_be32(struct ctx *c, const struct kase *k)
{
	uint64_t at = region_base(k) + k->off;
	fdt32_t v = cpu_to_fdt32((uint32_t)k->val);

	memcpy(c->p + at, &v, 4);
	resign_block(c, tgt(k->target) - BLK_HDR);
	return 0;
}

/* Turn a used block into a well-formed free block. */
static int mut_make_free(struct ctx *c, const struct kase *k)
{
	struct kho_block_header h;
	uint64_t off = tgt(k->target);

	memcpy(&h, c->p + off, sizeof(h));
	h.flags = 0;
	h.payload_size = 0;
	h.checked_size = 0;
	h.payload_crc = 0;
	memcpy(c->p + off, &h, sizeof(h));
	resign_block_header(c, off);
	return 0;
}

/* Shrink a checked block's payload_size (and checked_size) to @val. */
static int mut_shrink_payload(struct ctx *c, const struct kase *k)
{
	struct kho_block_header h;
	uint64_t off = tgt(k->target);

	memcpy(&h, c->p + off, sizeof(h));
	h.payload_size = k->val;
	h.checked_size = k->val;
	memcpy(c->p + off, &h, sizeof(h));
	resign_block(c, off);
	return 0;
}

/*
 * Leave payload_size alone but checksum only the first @val bytes: what
 * the parsers read beyond them would not be covered by any CRC.
 */
static int mut_shrink_checked(struct ctx *c, const struct kase *k)
{
	struct kho_block_header h;
	uint64_t off = tgt(k->target);

	memcpy(&h, c->p + off, sizeof(h));
	h.checked_size = k->val;
	memcpy(c->p + off, &h, sizeof(h));
	resign_block(c, off);
	return 0;
}

/* Copy the header of block @target over the header of block @ref. */
static int mut_copy_header(struct ctx *c, const struct kase *k)
{
	uint8_t a[BLK_HDR], b[BLK_HDR];

	memcpy(a, c->p + tgt(k->target), BLK_HDR);
	memcpy(b, c->p + tgt(k->ref), BLK_HDR);
	memcpy(c->p + tgt(k->ref), a, BLK_HDR);
	if (k->val) /* swap */
		memcpy(c->p + tgt(k->target), b, BLK_HDR);
	return 0;
}

static int mut_trunc(struct ctx *c, const struct kase *k)
{
	return ftruncate(c->fd, (off_t)value(k, c->size));
}

/* The memfd and arena_size both grow by a page; the header is re-signed. */
static int mut_grow(struct ctx *c, const struct kase *k)
{
	struct kho_arena_header h;

	if (ftruncate(c->fd, (off_t)(c->size + k->val)))
		return -1;
	memcpy(&h, c->p, sizeof(h));
	h.arena_size += k->val;
	memcpy(c->p, &h, sizeof(h));
	resign_arena_header(c);
	return 0;
}

/* Edit an FDT payload with libfdt, write it back the same size, re-sign. */
static int mut_fdt(struct ctx *c, const struct kase *k)
{
	uint64_t payload = tgt(k->target);
	void *orig = c->p + payload;
	int size = (int)fdt_totalsize(orig);
	int bufsize = size + 4096, node = 0, err = 0;
	char *tmp = malloc((size_t)bufsize);
	uint64_t v = value(k, 0);

	if (!tmp)
		return -1;
	err = fdt_open_into(orig, tmp, bufsize);
	if (!err && k->path) {
		node = fdt_path_offset(tmp, k->path);
		err = node < 0 ? node : 0;
	}
	switch (err ? OP_NOP : k->op) {
	case OP_SETU64:
		err = fdt_setprop_u64(tmp, node, k->prop, v);
		break;
	case OP_SETU32:
		err = fdt_setprop_u32(tmp, node, k->prop, (uint32_t)v);
		break;
	case OP_SETSTR:
		err = fdt_setprop_string(tmp, node, k->prop, k->str);
		break;
	case OP_DELPROP:
		err = fdt_delprop(tmp, node, k->prop);
		break;
	case OP_SETBYTES:
		err = fdt_setprop(tmp, node, k->prop, k->str, (int)k->len);
		break;
	case OP_DELNODE:
		err = fdt_del_node(tmp, node);
		break;
	case OP_RENAME:
		err = fdt_set_name(tmp, node, k->str);
		break;
	case OP_ADDNODE:
	case OP_DUPNODE: {
		int sub = fdt_add_subnode(
			tmp, node, k->op == OP_ADDNODE ? k->str : "e2e-dup");

		err = sub < 0 ? sub
			      : fdt_setprop_u64(tmp, sub, KHO_SUBTREE_PROP, v);
		/* libfdt refuses a duplicate name when adding, not renaming */
		if (!err && k->op == OP_DUPNODE)
			err = fdt_set_name(tmp, sub, k->str);
		break;
	}
	case OP_DUPPROP: {
		/* add "<prop minus last char>~", then rename its string */
		char alias[128];
		size_t n = strlen(k->prop);
		char *strings;
		int slen;

		snprintf(alias, sizeof(alias), "%.*s~", (int)n - 1, k->prop);
		err = fdt_setprop_u64(tmp, node, alias, v);
		if (err)
			break;
		strings = tmp + fdt_off_dt_strings(tmp);
		slen = (int)fdt_size_dt_strings(tmp);
		err = -FDT_ERR_NOTFOUND;
		for (int i = 0; i + (int)n < slen; i++)
			if (!memcmp(strings + i, alias, n + 1)) {
				memcpy(strings + i, k->prop, n);
				err = 0;
				break;
			}
		break;
	}
	default:
		break;
	}
	/* packed first, or fdt_open_into() wants room for the slack too */
	if (!err)
		err = fdt_pack(tmp);
	if (!err)
		err = fdt_open_into(tmp, orig, size);
	free(tmp);
	if (err) {
		fprintf(stderr, "e2e-handover: %s: libfdt: %s\n", k->name,
			fdt_strerror(err));
		return -1;
	}
	resign_block(c, payload - BLK_HDR);
	return 0;
}

static int mut_env(struct ctx *c, const struct kase *k)
{
	snprintf(c->env, sizeof(c->env), "%s", k->str);
	c->fdkind = k->op;
	return 0;
}

#define HF(f)                                                                  \
	.off = offsetof(struct kho_arena_header, f),                           \
	.len = sizeof(((struct kho_arena_header *)0)->f)
#define BF(f)                                                                  \
	.off = offsetof(struct kho_block_header, f),                           \
	.len = sizeof(((struct kho_block_header *)0)->f)
#define SF(f) .off = offsetof(struct luo_ser, f), .len = 8

/* One bit flipped somewhere; only a checksum can catch it. */
#define FLIP(n, t, o, m)                                                       \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_flip, .target = t,    \
		.off = o, .val = m                                             \
	}
#define FLIPR(n, t, r, o, m)                                                   \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_flip, .target = t,    \
		.op = r, .off = o, .val = m                                    \
	}
#define FLIPP(n, t, pa, pr, o, m)                                              \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_flip_prop,            \
		.target = t, .path = pa, .prop = pr, .off = o, .val = m        \
	}
#define HDR(n, e, field, k, v, r)                                              \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_hdr,      \
		HF(field), .vk = k, .val = v, .ref = r                         \
	}
#define BLK(n, e, t, field, k, v, r)                                           \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_blk,      \
		.target = t, BF(field), .vk = k, .val = v, .ref = r            \
	}
/* A block size change with its CRC recomputed: the walk then finds no
 * header where it looks next, so "corrupt" is the right diagnosis. */
#define BLKW(n, t, k, v, r)                                                    \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_blk, .target = t,     \
		BF(size), .vk = k, .val = v, .ref = r                          \
	}
#define SER(n, e, field, k, v, r)                                              \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_pay,      \
		.target = T_P_SER, SF(field), .vk = k, .val = v, .ref = r      \
	}
#define FDT(n, e, t, o, pa, pr, s)                                             \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_fdt,      \
		.target = t, .op = o, .path = pa, .prop = pr, .str = s         \
	}
#define FDTV(n, e, t, o, pa, pr, k, v, r)                                      \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_fdt,      \
		.target = t, .op = o, .path = pa, .prop = pr, .vk = k,         \
		.val = v, .ref = r                                             \
	}
/* The devices node's @pr set to the bytes of string literal @s. */
#define DEVB(n, e, pr, s)                                                      \
	{                                                                      \
		.name = n, .expect = e, .flags = RESIGNED, .fn = mut_fdt,      \
		.target = T_P_LUO, .op = OP_SETBYTES, .path = "/devices",      \
		.prop = pr, .str = s, .len = sizeof(s) - 1                     \
	}
#define BE32(n, t, r, o, v)                                                    \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .flags = RESIGNED,              \
		.fn = mut_be32, .target = t, .op = r, .off = o, .val = v       \
	}
#define TRUNC(n, k, v, r)                                                      \
	{                                                                      \
		.name = n, .expect = -EBADMSG, .fn = mut_trunc, .vk = k,       \
		.val = v, .ref = r                                             \
	}
#define ENV(n, e, s, kind)                                                     \
	{                                                                      \
		.name = n, .expect = e, .fn = mut_env, .str = s, .op = kind    \
	}

#define NEG(x) ((uint64_t)(int64_t)(x))
#define LONGNAME                                                               \
	"x123456789012345678901234567890123456789012345678901234567890123"

static const struct kase cases[] = {
	/* Positive controls: the harness can see an acceptance. */
	{.name = "control-pristine",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_none},
	{.name = "control-all-crcs-recomputed",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_resign_all},
	{.name = "control-luo-fdt-rewritten",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_fdt,
	 .target = T_P_LUO,
	 .op = OP_NOP},
	{.name = "control-root-fdt-rewritten",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_NOP},
	/* user data is never checksummed: changing it is not detectable */
	{.name = "control-user-data-changed",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_fill,
	 .target = T_B_TWIN1,
	 .off = 64,
	 .len = TWIN_SIZE,
	 .val = 0x55},

	/* The memfd truncated. */
	TRUNC("truncate-to-0", V_ABS, 0, 0),
	TRUNC("truncate-to-63", V_ABS, 63, 0),
	TRUNC("truncate-to-header", V_ABS, 64, 0),
	TRUNC("truncate-to-4k", V_ABS, 4096, 0),
	TRUNC("truncate-to-half", V_REF, 0, T_HALF),
	TRUNC("truncate-minus-page", V_REF, NEG(-4096), T_END),
	TRUNC("truncate-minus-byte", V_REF, NEG(-1), T_END),

	/* Arena header: one flipped bit in every field. */
	FLIP("hdr-flip-magic", T_HDR, 0, 0x01),
	FLIP("hdr-flip-magic-high", T_HDR, 7, 0x80),
	FLIP("hdr-flip-version", T_HDR, 8, 0x02),
	FLIP("hdr-flip-header-size", T_HDR, 12, 0x01),
	FLIP("hdr-flip-flags", T_HDR, 16, 0x02),
	FLIP("hdr-flip-page-size", T_HDR, 21, 0x10),
	FLIP("hdr-flip-data-start", T_HDR, 24, 0x40),
	FLIP("hdr-flip-arena-size", T_HDR, 34, 0x01),
	FLIP("hdr-flip-arena-size-high", T_HDR, 39, 0x01),
	FLIP("hdr-flip-root-fdt", T_HDR, 40, 0x40),
	FLIP("hdr-flip-reserved", T_HDR, 48, 0x01),
	FLIP("hdr-flip-reserved-last", T_HDR, 56, 0x01),
	FLIP("hdr-flip-header-crc", T_HDR, 60, 0x01),
	{.name = "hdr-zeroed",
	 .expect = -EBADMSG,
	 .fn = mut_fill,
	 .target = T_HDR,
	 .len = 64,
	 .val = 0},
	{.name = "hdr-all-ones",
	 .expect = -EBADMSG,
	 .fn = mut_fill,
	 .target = T_HDR,
	 .len = 64,
	 .val = 0xff},

	/* Arena header, CRC recomputed: each field check on its own. */
	HDR("hdr-magic-resigned", -EBADMSG, magic, V_ADD, 1, 0),
	HDR("hdr-version-2", -EPROTONOSUPPORT, version, V_ABS, 2, 0),
	HDR("hdr-version-0", -EPROTONOSUPPORT, version, V_ABS, 0, 0),
	HDR("hdr-header-size-63", -EBADMSG, header_size, V_ABS, 63, 0),
	HDR("hdr-header-size-128", -EBADMSG, header_size, V_ABS, 128, 0),
	HDR("hdr-data-start-0", -EBADMSG, data_start, V_ABS, 0, 0),
	HDR("hdr-data-start-128", -EBADMSG, data_start, V_ABS, 128, 0),
	HDR("hdr-reserved-set", -EBADMSG, reserved, V_ABS, 1, 0),
	HDR("hdr-flags-unknown", -EPROTONOSUPPORT, flags, V_ABS, 0x4, 0),
	HDR("hdr-flags-hugetlb-on-4k-pages", -EBADMSG, flags, V_ABS,
	    KHO_ARENA_HUGETLB, 0),
	HDR("hdr-page-size-8k", -EBADMSG, page_size, V_ABS, 8192, 0),
	HDR("hdr-page-size-0", -EBADMSG, page_size, V_ABS, 0, 0),
	HDR("hdr-arena-size-0", -EBADMSG, arena_size, V_ABS, 0, 0),
	HDR("hdr-arena-size-unaligned", -EBADMSG, arena_size, V_ADD, 64, 0),
	HDR("hdr-arena-size-2^50", -EBADMSG, arena_size, V_ABS, 1ULL << 50, 0),
	HDR("hdr-arena-size-past-memfd", -EBADMSG, arena_size, V_ADD, 4096, 0),
	HDR("hdr-arena-size-minus-page", -EBADMSG, arena_size, V_ADD,
	    NEG(-4096), 0),
	{.name = "hdr-arena-and-memfd-plus-page",
	 .expect = -EBADMSG,
	 .fn = mut_grow,
	 .val = 4096},
	HDR("hdr-root-0", -EBADMSG, root_fdt, V_ABS, 0, 0),
	HDR("hdr-root-in-arena-header", -EBADMSG, root_fdt, V_ABS, 16, 0),
	HDR("hdr-root-at-block-header", -EBADMSG, root_fdt, V_REF, NEG(-64),
	    T_P_ROOT),
	HDR("hdr-root-unaligned", -EBADMSG, root_fdt, V_ADD, 1, 0),
	HDR("hdr-root-mid-block", -EBADMSG, root_fdt, V_ADD, 64, 0),
	HDR("hdr-root-past-end", -EBADMSG, root_fdt, V_REF, 4096, T_END),
	HDR("hdr-root-max", -EBADMSG, root_fdt, V_ABS, UINT64_MAX, 0),
	/* Far past the mapping: checked before any pointer is formed. */
	HDR("hdr-root-far", -EBADMSG, root_fdt, V_ABS, 0xffffffff00000f00ULL,
	    0),
	HDR("hdr-root-to-free-block", -EBADMSG, root_fdt, V_REF, 0, T_P_FREE),
	HDR("hdr-root-to-user-data", -EBADMSG, root_fdt, V_REF, 0, T_P_BIG),
	HDR("hdr-root-to-luo-ser", -EBADMSG, root_fdt, V_REF, 0, T_P_SER),
	HDR("hdr-root-to-luo-fdt", -EPROTONOSUPPORT, root_fdt, V_REF, 0,
	    T_P_LUO),
	HDR("hdr-root-to-user-fdt", -EPROTONOSUPPORT, root_fdt, V_REF, 0,
	    T_P_USER),

	/* Block headers: one flipped bit per field, CRC left alone. */
	FLIP("blk-root-flip-magic", T_B_ROOT, 0, 0x01),
	FLIP("blk-root-flip-flags", T_B_ROOT, 4, 0x02),
	FLIP("blk-root-flip-size", T_B_ROOT, 9, 0x01),
	FLIP("blk-root-flip-payload-size", T_B_ROOT, 16, 0x01),
	FLIP("blk-root-flip-checked-size", T_B_ROOT, 24, 0x01),
	FLIP("blk-root-flip-payload-crc", T_B_ROOT, 32, 0x01),
	FLIP("blk-root-flip-header-crc", T_B_ROOT, 36, 0x01),
	FLIP("blk-root-flip-reserved", T_B_ROOT, 40, 0x01),
	FLIP("blk-big-flip-magic", T_B_BIG, 3, 0x40),
	FLIP("blk-big-flip-flags", T_B_BIG, 4, 0x02),
	FLIP("blk-big-flip-size", T_B_BIG, 10, 0x01),
	FLIP("blk-big-flip-payload-size", T_B_BIG, 17, 0x01),
	FLIP("blk-big-flip-reserved", T_B_BIG, 63, 0x80),
	FLIP("blk-free-flip-flags", T_B_FREE, 4, 0x01),
	FLIP("blk-free-flip-size", T_B_FREE, 8, 0x40),
	FLIP("blk-first-flip-size", T_B_FIRST, 8, 0x40),
	FLIP("blk-tail-flip-magic", T_B_TAIL, 1, 0x01),
	FLIP("blk-luo-flip-checked-size", T_B_LUO, 24, 0x01),
	FLIP("blk-ser-flip-flags", T_B_SER, 4, 0x02),
	{.name = "blk-free-header-zeroed",
	 .expect = -EBADMSG,
	 .fn = mut_fill,
	 .target = T_B_FREE,
	 .len = 64,
	 .val = 0},

	/* Block headers, CRC recomputed. */
	BLK("blk-big-size-0", -EBADMSG, T_B_BIG, size, V_ABS, 0, 0),
	BLK("blk-big-size-unaligned", -EBADMSG, T_B_BIG, size, V_ADD, 8, 0),
	BLKW("blk-big-size-minus-64", T_B_BIG, V_ADD, NEG(-64), 0),
	BLKW("blk-big-size-plus-4k", T_B_BIG, V_ADD, 4096, 0),
	BLK("blk-first-size-past-end", -EBADMSG, T_B_FIRST, size, V_REF, 0,
	    T_END),
	BLKW("blk-tail-size-short", T_B_TAIL, V_ADD, NEG(-64), 0),
	BLK("blk-tail-size-long", -EBADMSG, T_B_TAIL, size, V_ADD, 64, 0),
	BLK("blk-flags-unknown", -EBADMSG, T_B_BIG, flags, V_ABS, 0x5, 0),
	BLK("blk-free-claims-payload", -EBADMSG, T_B_FREE, payload_size, V_ABS,
	    64, 0),
	BLK("blk-free-flagged-checked", -EBADMSG, T_B_FREE, flags, V_ABS,
	    KHO_BLOCK_CHECKED, 0),
	BLK("blk-payload-exceeds-size", -EBADMSG, T_B_SMALL, payload_size,
	    V_ADD, 4096, 0),
	BLK("blk-checked-exceeds-payload", -EBADMSG, T_B_LUO, checked_size,
	    V_ADD, 8, 0),
	{.name = "blk-payload-crc-wrong",
	 .expect = -EBADMSG,
	 .fn = mut_blk,
	 .target = T_B_LUO,
	 BF(payload_crc),
	 .vk = V_ADD,
	 .val = 1},
	BLK("blk-ser-not-checked", -EBADMSG, T_B_SER, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	BLK("blk-luo-fdt-not-checked", -EBADMSG, T_B_LUO, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	BLK("blk-root-fdt-not-checked", -EBADMSG, T_B_ROOT, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	BLK("blk-user-fdt-not-checked", -EBADMSG, T_B_USER, flags, V_ABS,
	    KHO_BLOCK_USED, 0),
	{.name = "blk-reserved-set",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_blk,
	 .target = T_B_SMALL,
	 .off = offsetof(struct kho_block_header, reserved),
	 .len = 8,
	 .vk = V_ABS,
	 .val = 1},
	BLK("blk-free-payload-crc-set", -EBADMSG, T_B_FREE, payload_crc, V_ABS,
	    0x1234, 0),
	{.name = "blk-ser-freed",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_make_free,
	 .target = T_B_SER},
	{.name = "blk-luo-fdt-freed",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_make_free,
	 .target = T_B_LUO},
	{.name = "blk-user-fdt-freed",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_make_free,
	 .target = T_B_USER},
	{.name = "blk-ser-payload-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_payload,
	 .target = T_B_SER,
	 .val = 16},
	{.name = "blk-luo-fdt-payload-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_payload,
	 .target = T_B_LUO,
	 .val = 64},
	{.name = "blk-ser-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_SER,
	 .val = 8},
	{.name = "blk-luo-fdt-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_LUO,
	 .val = 64},
	{.name = "blk-root-fdt-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_ROOT,
	 .val = 64},
	{.name = "blk-user-fdt-checked-shrunk",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_shrink_checked,
	 .target = T_B_USER,
	 .val = 64},
	/* identical headers but for the offset seed of their CRC */
	{.name = "blk-header-copied-to-twin",
	 .expect = -EBADMSG,
	 .fn = mut_copy_header,
	 .target = T_B_TWIN1,
	 .ref = T_B_TWIN2},
	{.name = "blk-twin-headers-swapped",
	 .expect = -EBADMSG,
	 .fn = mut_copy_header,
	 .target = T_B_TWIN1,
	 .ref = T_B_TWIN2,
	 .val = 1},

	/* Root FDT: flipped bits, CRC left alone. */
	FLIPR("root-flip-fdt-magic", T_P_ROOT, R_START, 0, 0x01),
	FLIPR("root-flip-totalsize", T_P_ROOT, R_START, 7, 0x01),
	FLIPR("root-flip-off-dt-struct", T_P_ROOT, R_START, 11, 0x04),
	FLIPR("root-flip-version", T_P_ROOT, R_START, 23, 0x01),
	FLIPR("root-flip-struct", T_P_ROOT, R_STRUCT, 3, 0x04),
	FLIPR("root-flip-strings", T_P_ROOT, R_STRINGS, 0, 0x01),
	FLIPP("root-flip-compatible", T_P_ROOT, "/", "compatible", 9, 0x01),
	FLIPP("root-flip-luo-fdt", T_P_ROOT, "/LUO", "fdt", 7, 0x40),
	FLIPP("root-flip-user-fdt", T_P_ROOT, "/e2e-user", "fdt", 6, 0x01),

	/* Root FDT, CRCs recomputed. */
	FDT("root-compat-luo-kho-v0", -EPROTONOSUPPORT, T_P_ROOT, OP_SETSTR,
	    "/", "compatible", "luo-kho-v0"),
	FDT("root-compat-luo-kho-v2", -EPROTONOSUPPORT, T_P_ROOT, OP_SETSTR,
	    "/", "compatible", "luo-kho-v2"),
	FDT("root-compat-missing", -EPROTONOSUPPORT, T_P_ROOT, OP_DELPROP, "/",
	    "compatible", NULL),
	FDT("root-luo-node-missing", -EBADMSG, T_P_ROOT, OP_DELNODE, "/LUO",
	    NULL, NULL),
	FDT("root-luo-node-renamed", -EBADMSG, T_P_ROOT, OP_RENAME, "/LUO",
	    NULL, "LUX"),
	FDT("root-luo-fdt-missing", -EBADMSG, T_P_ROOT, OP_DELPROP, "/LUO",
	    "fdt", NULL),
	FDTV("root-luo-fdt-u32", -EBADMSG, T_P_ROOT, OP_SETU32, "/LUO", "fdt",
	     V_REF, 0, T_P_LUO),
	FDTV("root-luo-fdt-0", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO", "fdt",
	     V_ABS, 0, 0),
	FDTV("root-luo-fdt-to-luo-ser", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 0, T_P_SER),
	FDTV("root-luo-fdt-to-user-data", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 0, T_P_BIG),
	FDTV("root-luo-fdt-to-free-block", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, 0, T_P_FREE),
	FDTV("root-luo-fdt-unaligned", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 4, T_P_LUO),
	FDTV("root-luo-fdt-mid-block", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 64, T_P_LUO),
	FDTV("root-luo-fdt-at-block-header", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, NEG(-64), T_P_LUO),
	FDTV("root-luo-fdt-past-end", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO",
	     "fdt", V_REF, 64, T_END),
	FDTV("root-luo-fdt-max", -EBADMSG, T_P_ROOT, OP_SETU64, "/LUO", "fdt",
	     V_ABS, UINT64_MAX, 0),
	FDTV("root-luo-fdt-to-root-fdt", -EPROTONOSUPPORT, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, 0, T_P_ROOT),
	FDTV("root-luo-fdt-to-user-fdt", -EPROTONOSUPPORT, T_P_ROOT, OP_SETU64,
	     "/LUO", "fdt", V_REF, 0, T_P_USER),
	FDTV("root-user-fdt-to-luo-ser", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/e2e-user", "fdt", V_REF, 0, T_P_SER),
	FDTV("root-user-fdt-to-user-data", -EBADMSG, T_P_ROOT, OP_SETU64,
	     "/e2e-user", "fdt", V_REF, 0, T_P_BIG),
	{.name = "root-subtree-name-with-@",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_ADDNODE,
	 .path = "/",
	 .str = "e2e@1",
	 .vk = V_REF,
	 .ref = T_P_USER},
	{.name = "root-subtree-name-too-long",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_ADDNODE,
	 .path = "/",
	 .str = LONGNAME,
	 .vk = V_REF,
	 .ref = T_P_USER},
	{.name = "root-luo-node-twice",
	 .expect = -EBADMSG,
	 .flags = RESIGNED,
	 .fn = mut_fdt,
	 .target = T_P_ROOT,
	 .op = OP_DUPNODE,
	 .path = "/",
	 .str = "LUO",
	 .vk = V_REF,
	 .ref = T_P_LUO},
	BE32("root-fdt-magic-resigned", T_P_ROOT, R_START, 0, 0xd00dfeef),
	BE32("root-fdt-totalsize-resigned", T_P_ROOT, R_START, 4, 1 << 20),
	BE32("root-fdt-off-struct-resigned", T_P_ROOT, R_START, 8, 0xfff0),
	BE32("root-fdt-bad-token-resigned", T_P_ROOT, R_STRUCT, 0, 0x77),
	/* libfdt 1.6.1's fdt_check_full() loops forever on this length:
	 * the library must bound the structure block before calling it. */
	BE32("root-fdt-prop-len-fffffff4-resigned", T_P_ROOT, R_STRUCT, 12,
	     0xfffffff4),
	BE32("luo-fdt-prop-len-fffffff4-resigned", T_P_LUO, R_STRUCT, 12,
	     0xfffffff4),

	/* LUO FDT: flipped bits, CRC left alone. */
	FLIPR("luo-flip-fdt-magic", T_P_LUO, R_START, 3, 0x01),
	FLIPR("luo-flip-struct", T_P_LUO, R_STRUCT, 3, 0x02),
	FLIPR("luo-flip-strings", T_P_LUO, R_STRINGS, 2, 0x01),
	FLIPP("luo-flip-compatible", T_P_LUO, "/", "compatible", 5, 0x01),
	FLIPP("luo-flip-abi-header", T_P_LUO, "/", LUO_FDT_ABI_HEADER, 7, 0x08),
	FLIPP("luo-flip-subsystems-compatible", T_P_LUO, "/subsystems",
	      "compatible", 12, 0x01),
	FLIPP("luo-flip-subsystem-value", T_P_LUO, "/subsystems", "e2e-const",
	      7, 0x01),
	FLIPP("luo-flip-exec-compatible", T_P_LUO, "/exec", "compatible", 10,
	      0x01),
	FLIPP("luo-flip-exec-ns", T_P_LUO, "/exec", "exec-ns", 0, 0x80),

	/* LUO FDT, CRCs recomputed. */
	FDT("luo-compat-luo-v1", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR, "/",
	    "compatible", "luo-v1"),
	FDT("luo-compat-luo-v3", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR, "/",
	    "compatible", "luo-v3"),
	FDT("luo-compat-empty", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR, "/",
	    "compatible", ""),
	FDT("luo-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP, "/",
	    "compatible", NULL),
	FDT("luo-abi-header-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/",
	    LUO_FDT_ABI_HEADER, NULL),
	FDTV("luo-abi-header-u32", -EBADMSG, T_P_LUO, OP_SETU32, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_SER),
	FDTV("luo-abi-header-0", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_ABS, 0, 0),
	FDTV("luo-abi-header-in-arena-header", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/", LUO_FDT_ABI_HEADER, V_ABS, 8, 0),
	FDTV("luo-abi-header-at-block-header", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/", LUO_FDT_ABI_HEADER, V_REF, NEG(-64), T_P_SER),
	FDTV("luo-abi-header-unaligned", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 8, T_P_SER),
	FDTV("luo-abi-header-mid-block", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 4096, T_P_BIG),
	FDTV("luo-abi-header-to-user-data", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_BIG),
	FDTV("luo-abi-header-to-free-block", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_FREE),
	FDTV("luo-abi-header-past-end", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 128, T_END),
	FDTV("luo-abi-header-max", -EBADMSG, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_ABS, UINT64_MAX, 0),
	FDTV("luo-abi-header-to-root-fdt", REFUSE_ANY, T_P_LUO, OP_SETU64, "/",
	     LUO_FDT_ABI_HEADER, V_REF, 0, T_P_ROOT),
	FDT("subsystems-compat-v2", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR,
	    "/subsystems", "compatible", "subsystems-v2"),
	FDT("subsystems-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP,
	    "/subsystems", "compatible", NULL),
	FDT("subsystems-node-missing", -EBADMSG, T_P_LUO, OP_DELNODE,
	    "/subsystems", NULL, NULL),
	FDT("subsystems-node-renamed", -EBADMSG, T_P_LUO, OP_RENAME,
	    "/subsystems", NULL, "subsystem"),
	FDTV("subsystems-entry-u32", -EBADMSG, T_P_LUO, OP_SETU32,
	     "/subsystems", "e2e-const", V_ABS, 42, 0),
	FDTV("subsystems-entry-name-with-@", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/subsystems", "e2e@const", V_ABS, 42, 0),
	FDTV("subsystems-entry-name-too-long", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/subsystems", LONGNAME, V_ABS, 42, 0),
	FDTV("subsystems-entry-twice", -EBADMSG, T_P_LUO, OP_DUPPROP,
	     "/subsystems", "e2e-const", V_ABS, 43, 0),
	FDT("exec-compat-luo-exec-v9", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR,
	    "/exec", "compatible", "luo-exec-v9"),
	FDT("exec-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP,
	    "/exec", "compatible", NULL),
	FDT("exec-node-missing", -EBADMSG, T_P_LUO, OP_DELNODE, "/exec", NULL,
	    NULL),
	FDT("exec-freeze-ns-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/exec",
	    "freeze-ns", NULL),
	FDTV("exec-exec-ns-u32", -EBADMSG, T_P_LUO, OP_SETU32, "/exec",
	     "exec-ns", V_ABS, 1, 0),
	/* The devices node (luo-devices-v1). */
	FLIPP("devices-flip-paths", T_P_LUO, "/devices", "paths", 3, 0x01),
	FLIPP("devices-flip-driver-data", T_P_LUO, "/devices", "driver-data", 2,
	      0x10),
	FDT("devices-compat-v2", -EPROTONOSUPPORT, T_P_LUO, OP_SETSTR,
	    "/devices", "compatible", "luo-devices-v2"),
	FDT("devices-compat-missing", -EPROTONOSUPPORT, T_P_LUO, OP_DELPROP,
	    "/devices", "compatible", NULL),
	FDT("devices-count-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/devices",
	    "count", NULL),
	FDTV("devices-count-u32", -EBADMSG, T_P_LUO, OP_SETU32, "/devices",
	     "count", V_ABS, 2, 0),
	FDTV("devices-count-3", -EBADMSG, T_P_LUO, OP_SETU64, "/devices",
	     "count", V_ABS, 3, 0),
	FDTV("devices-count-1", -EBADMSG, T_P_LUO, OP_SETU64, "/devices",
	     "count", V_ABS, 1, 0),
	FDTV("devices-count-huge", -EBADMSG, T_P_LUO, OP_SETU64, "/devices",
	     "count", V_ABS, 1ULL << 40, 0),
	FDT("devices-paths-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/devices",
	    "paths", NULL),
	FDT("devices-buses-missing", -EBADMSG, T_P_LUO, OP_DELPROP, "/devices",
	    "buses", NULL),
	FDT("devices-drivers-missing", -EBADMSG, T_P_LUO, OP_DELPROP,
	    "/devices", "drivers", NULL),
	FDT("devices-bus-data-missing", -EBADMSG, T_P_LUO, OP_DELPROP,
	    "/devices", "bus-data", NULL),
	FDTV("devices-driver-data-one-value", -EBADMSG, T_P_LUO, OP_SETU64,
	     "/devices", "driver-data", V_ABS, 1, 0),
	DEVB("devices-paths-one", -EBADMSG, "paths", "e2e-bus0\0"),
	DEVB("devices-paths-three", -EBADMSG, "paths",
	     "e2e-bus0/e2e-dev0\0e2e-bus0\0e2e-bus1\0"),
	DEVB("devices-paths-unterminated", -EBADMSG, "paths",
	     "e2e-bus0/e2e-dev0\0e2e-bus0"),
	DEVB("devices-paths-parent-first", -EBADMSG, "paths",
	     "e2e-bus0\0e2e-bus0/e2e-dev0\0"),
	DEVB("devices-paths-parent-missing", -EBADMSG, "paths",
	     "e2e-bus1/e2e-dev0\0e2e-bus0\0"),
	DEVB("devices-paths-twice", -EBADMSG, "paths", "e2e-bus0\0e2e-bus0\0"),
	DEVB("devices-path-empty", -EBADMSG, "paths", "e2e-bus0/e2e-dev0\0\0"),
	DEVB("devices-path-leading-slash", -EBADMSG, "paths",
	     "/e2e-bus0/e2e-dev0\0e2e-bus0\0"),
	DEVB("devices-path-double-slash", -EBADMSG, "paths",
	     "e2e-bus0//e2e-dev0\0e2e-bus0\0"),
	DEVB("devices-path-trailing-slash", -EBADMSG, "paths",
	     "e2e-bus0/e2e-dev0/\0e2e-bus0\0"),
	DEVB("devices-path-space", -EBADMSG, "paths",
	     "e2e-bus0/e2e dev0\0e2e-bus0\0"),
	DEVB("devices-path-too-long", -EBADMSG, "paths",
	     "e2e-bus0/" LONGNAME LONGNAME LONGNAME LONGNAME "\0e2e-bus0\0"),
	DEVB("devices-path-name-too-long", -EBADMSG, "paths",
	     "e2e-bus0/" LONGNAME "\0e2e-bus0\0"),
	DEVB("devices-buses-one", -EBADMSG, "buses", "e2e-bus\0"),
	DEVB("devices-bus-bad-name", -EBADMSG, "buses", "e2e bus\0e2e-bus\0"),
	DEVB("devices-driver-with-slash", -EBADMSG, "drivers",
	     "e2e/drv\0e2e-drv\0"),
	DEVB("devices-driver-too-long", -EBADMSG, "drivers",
	     LONGNAME "\0e2e-drv\0"),
	BE32("luo-fdt-magic-resigned", T_P_LUO, R_START, 0, 0xfeedd00d),
	BE32("luo-fdt-size-strings-resigned", T_P_LUO, R_START, 32, 0x7fffffff),

	/* struct luo_ser: flipped bits, then CRCs recomputed. */
	FLIP("ser-flip-liveupdate-num", T_P_SER, 0, 0x01),
	FLIP("ser-flip-sessions-pa", T_P_SER, 8, 0x40),
	FLIP("ser-flip-flbs-pa", T_P_SER, 23, 0x80),
	SER("ser-liveupdate-num-0", -EBADMSG, liveupdate_num, V_ABS, 0, 0),
	SER("ser-sessions-garbage", -EBADMSG, sessions_pa, V_ABS, 0x1234567, 0),
	SER("ser-sessions-to-user-data", -EBADMSG, sessions_pa, V_REF, 0,
	    T_P_BIG),
	SER("ser-sessions-to-free-block", -EBADMSG, sessions_pa, V_REF, 0,
	    T_P_FREE),
	SER("ser-sessions-unaligned", -EBADMSG, sessions_pa, V_REF, 1, T_P_LUO),
	SER("ser-flbs-max", -EBADMSG, flbs_pa, V_ABS, UINT64_MAX, 0),
	SER("ser-flbs-at-block-header", -EBADMSG, flbs_pa, V_REF, NEG(-64),
	    T_P_ROOT),
	SER("ser-flbs-past-end", -EBADMSG, flbs_pa, V_REF, 64, T_END),

	/* The user subtree FDT. */
	FLIPR("user-flip-fdt-magic", T_P_USER, R_START, 1, 0x01),
	FLIPR("user-flip-totalsize", T_P_USER, R_START, 5, 0x01),
	FLIPR("user-flip-struct", T_P_USER, R_STRUCT, 40, 0x01),
	FLIPR("user-flip-strings", T_P_USER, R_STRINGS, 1, 0x20),
	FLIPP("user-flip-compatible", T_P_USER, "/", "compatible", 0, 0x01),
	FLIPP("user-flip-child-value", T_P_USER, "/child", "value", 4, 0x01),
	BE32("user-fdt-magic-resigned", T_P_USER, R_START, 0, 0),
	BE32("user-fdt-totalsize-resigned", T_P_USER, R_START, 4,
	     USER_FDT_SIZE * 2),
	BE32("user-fdt-bad-token-resigned", T_P_USER, R_STRUCT, 0, 0x1234),

	/* LUO_HANDOVER_FD garbage; fd 100 holds the pristine copy. */
	ENV("env-empty", -EBADF, "", FDK_COPY),
	ENV("env-abc", -EBADF, "abc", FDK_COPY),
	ENV("env-minus-1", -EBADF, "-1", FDK_COPY),
	ENV("env-99999999999", -EBADF, "99999999999", FDK_COPY),
	ENV("env-3x", -EBADF, "3x", FDK_COPY),
	ENV("env-7-comma", -EBADF, "7,", FDK_COPY),
	ENV("env-7-8", -EBADF, "7,8", FDK_COPY),
	ENV("env-100x", -EBADF, "100x", FDK_COPY),
	ENV("env-space-100", -EBADF, " 100", FDK_COPY),
	ENV("env-plus-100", -EBADF, "+100", FDK_COPY),
	ENV("env-hex-0x64", -EBADF, "0x64", FDK_COPY),
	ENV("env-100-newline", -EBADF, "100\n", FDK_COPY),
	ENV("env-100-comma", -EBADF, "100,", FDK_COPY),
	ENV("env-two-fields", -EBADF, "100,101", FDK_COPY),
	ENV("env-teardown-pid-0", -EBADF, "100,101,0", FDK_COPY),
	ENV("env-empty-field", -EBADF, "100,,1", FDK_COPY),
	ENV("env-five-fields", -EBADF, "100,101,1,2,3", FDK_COPY),
	ENV("env-carrier-minus-two", -EBADF, "100,-1,0,-2", FDK_COPY),
	ENV("env-helper-without-pid", -EBADF, "100,101,0,-1", FDK_COPY),
	ENV("env-stderr", -EBADF, "2", FDK_COPY),
	ENV("env-closed-fd", -EBADF, "100", FDK_NONE),
	ENV("env-dev-null", -EBADF, "100", FDK_DEVNULL),
	ENV("env-pipe", -EBADF, "100", FDK_PIPE),
	ENV("env-regular-file-with-arena", -EBADF, "100", FDK_DISKFILE),
	ENV("env-directory", -EBADF, "100", FDK_DIR),
	ENV("env-random-memfd", -EBADMSG, "100", FDK_RANDOM_MEMFD),
	ENV("env-empty-memfd", -EBADMSG, "100", FDK_EMPTY_MEMFD),
	ENV("env-write-sealed-memfd", REFUSE_ANY, "100", FDK_SEALED_MEMFD),
	ENV("env-read-only-fd", REFUSE_ANY, "100", FDK_RDONLY),
	/* Not the library's arena, whatever it holds: never closed. */
	ENV("env-shm-file-named-arena", -EBADF, "100", FDK_SHM_FILE),
	ENV("env-foreign-memfd-with-arena", -EBADF, "100", FDK_FOREIGN_MEMFD),

	/* The original must still be intact after all of that. */
	{.name = "control-pristine-again",
	 .expect = ACCEPT,
	 .flags = CONTROL,
	 .fn = mut_none},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ------------------------------------------------------------------ */
/* Running one case. */

static int copy_arena(int dst)
{
	loff_t in = 0, out = 0;
	uint64_t left = L.file_size;

	if (ftruncate(dst, (off_t)L.file_size))
		return -1;
	while (left) {
		ssize_t n = copy_file_range(L.fd, &in, dst, &out, left, 0);

		if (n <= 0)
			break;
		left -= (uint64_t)n;
	}
	if (left) /* no copy_file_range here: plain writes */
		return pwrite(dst, L.p + in, left, in) == (ssize_t)left ? 0
									: -1;
	return 0;
}

/* A memfd of random-looking bytes that is no arena. */
static int random_memfd(void)
{
	int fd = memfd_create("luo-arena", MFD_CLOEXEC);
	size_t len = 1 << 20;
	uint64_t *buf = malloc(len);

	if (fd < 0 || !buf)
		die("random memfd: %s", strerror(errno));
	fill(buf, len, 0xdeadbeef);
	if (write(fd, buf, len) != (ssize_t)len)
		die("random memfd: short write");
	free(buf);
	return fd;
}

/* The pristine arena in a file that is not the library's arena memfd. */
static int foreign_copy(bool shm)
{
	char path[PATH_MAX];
	int fd;

	if (shm) {
		snprintf(path, sizeof(path), "/dev/shm/luo-arena.e2e.%d",
			 (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	} else {
		fd = memfd_create("not-luo-arena", MFD_CLOEXEC);
	}
	if (fd < 0)
		die("%s: %s", shm ? path : "memfd", strerror(errno));
	if (pwrite(fd, L.p, L.file_size, 0) != (ssize_t)L.file_size)
		die("foreign copy: short write");
	return fd;
}

static int disk_file(void)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/e2e-handover-file.%d", selfdir,
		 (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	unlink(path);
	if (pwrite(fd, L.p, L.file_size, 0) != (ssize_t)L.file_size)
		die("%s: short write", path);
	return fd;
}

/* The fd that becomes PROBE_FD in the probe, or -1 for none. */
static int probe_source(struct ctx *c, int *extra)
{
	char path[64];
	int fds[2], fd;

	*extra = -1;
	switch (c->fdkind) {
	case FDK_COPY:
		return c->fd;
	case FDK_DEVNULL:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case FDK_PIPE:
		if (pipe2(fds, O_CLOEXEC))
			return -1;
		*extra = fds[1];
		return fds[0];
	case FDK_DISKFILE:
		return disk_file();
	case FDK_DIR:
		return open(selfdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	case FDK_RANDOM_MEMFD:
		return random_memfd();
	case FDK_EMPTY_MEMFD:
		return memfd_create("luo-arena", MFD_CLOEXEC);
	case FDK_SEALED_MEMFD:
		if (fcntl(c->fd, F_ADD_SEALS, F_SEAL_WRITE))
			die("F_SEAL_WRITE: %s", strerror(errno));
		return c->fd;
	case FDK_RDONLY:
		snprintf(path, sizeof(path), "/proc/self/fd/%d", c->fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		return fd;
	case FDK_SHM_FILE:
		return foreign_copy(true);
	case FDK_FOREIGN_MEMFD:
		return foreign_copy(false);
	default:
		return -1;
	}
}

struct outcome {
	int status;
	bool timed_out;
	char out[8192], err[16384];
	size_t nout, nerr;
};

static void run_probe(const char *env, int src, struct outcome *o)
{
	int po[2], pe[2];
	struct timespec t0, now;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (src == PROBE_FD)
			fcntl(src, F_SETFD, 0);
		else if (src >= 0)
			dup2(src, PROBE_FD);
		else
			close(PROBE_FD);
		setenv(LUO_HANDOVER_ENV, env, 1);
		unsetenv("LUO_LOG_LEVEL");
		execl(self, self, "probe", (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int open_pipes = 2; open_pipes;) {
		struct pollfd p[2] = {{.fd = po[0], .events = POLLIN},
				      {.fd = pe[0], .events = POLLIN}};
		long waited;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - t0.tv_sec) * 1000 +
			 (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited > PROBE_TIMEOUT_MS) {
			o->timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		n = poll(p, 2, 200);
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (int i = 0; n > 0 && i < 2; i++) {
			char *buf = i ? o->err : o->out;
			size_t cap = (i ? sizeof(o->err) : sizeof(o->out)) - 1;
			size_t *len = i ? &o->nerr : &o->nout;
			char scratch[4096];
			ssize_t r;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(p[i].fd, scratch, sizeof(scratch));
			if (r <= 0) {
				close(i ? pe[0] : po[0]);
				if (i)
					pe[0] = -1;
				else
					po[0] = -1;
				open_pipes--;
				continue;
			}
			if (*len + (size_t)r > cap)
				r = (ssize_t)(cap - *len);
			memcpy(buf + *len, scratch, (size_t)r);
			*len += (size_t)r;
			buf[*len] = 0;
		}
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR)
		;
}

static int count_lines(const char *text, const char *prefix, char *first,
		       size_t firstlen)
{
	int n = 0;

	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');

		if (!strncmp(l, prefix, strlen(prefix))) {
			if (!n && first)
				snprintf(first, firstlen, "%.*s",
					 (int)(nl ? nl - l : (long)strlen(l)),
					 l);
			n++;
		}
		l = nl ? nl + 1 : NULL;
	}
	return n;
}

static const char *errname(int e)
{
	static char buf[32];

	switch (-e) {
	case 0:
		return "accepted";
	case EBADMSG:
		return "EBADMSG";
	case EPROTONOSUPPORT:
		return "EPROTONOSUPPORT";
	case EBADF:
		return "EBADF";
	case ENOMEM:
		return "ENOMEM";
	case EINVAL:
		return "EINVAL";
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case ENOENT:
		return "ENOENT";
	default:
		snprintf(buf, sizeof(buf), "errno %d", -e);
		return buf;
	}
}

static const char *expect_name(int e)
{
	return e == REFUSE_ANY ? "refused" : errname(e);
}

/* Run case @k; returns 0 if it behaved as expected. */
static int run_case(const struct kase *k)
{
	struct ctx c = {.fdkind = FDK_COPY};
	struct outcome *o = calloc(1, sizeof(*o));
	char verdict[256] = "", errline[512] = "";
	int src, extra, got = 1, nerr, code = -1;
	bool ok = false;
	const char *fd_state;

	if (!o)
		die("out of memory");
	snprintf(c.env, sizeof(c.env), "%d", PROBE_FD);
	c.size = L.file_size;
	/* Named as the library names its arenas, which it checks. */
	c.fd = memfd_create("luo-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c.fd < 0 || copy_arena(c.fd))
		die("copying the arena: %s", strerror(errno));
	c.p = mmap(NULL, c.size, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0);
	if (c.p == MAP_FAILED)
		die("mmap of the copy: %s", strerror(errno));
	if (memcmp(c.p, L.p, 4096))
		die("the copy differs from the original");
	if (k->fn(&c, k)) {
		printf("[FAIL] %-40s could not apply the corruption\n",
		       k->name);
		munmap(c.p, c.size);
		close(c.fd);
		free(o);
		return 1;
	}
	munmap(c.p, c.size);
	src = probe_source(&c, &extra);
	if (src < 0 && c.fdkind != FDK_NONE)
		die("%s: cannot set up the probe's fd: %s", k->name,
		    strerror(errno));

	run_probe(c.env, src, o);

	if (extra >= 0)
		close(extra);
	if (src >= 0 && src != c.fd)
		close(src);
	close(c.fd);

	fd_state = strstr(o->out, "fd100=closed") ? "closed" : "open";
	{
		const char *s = strstr(o->out, "probe: luo_init=");

		if (s)
			got = atoi(s + strlen("probe: luo_init="));
	}
	nerr = count_lines(o->err, "luo: error:", errline, sizeof(errline));
	if (WIFEXITED(o->status))
		code = WEXITSTATUS(o->status);

	if (o->timed_out) {
		snprintf(verdict, sizeof(verdict), "HANG: killed after %d ms",
			 PROBE_TIMEOUT_MS);
	} else if (WIFSIGNALED(o->status)) {
		snprintf(verdict, sizeof(verdict),
			 "CRASH: killed by signal %d (%s)", WTERMSIG(o->status),
			 strsignal(WTERMSIG(o->status)));
	} else if (strstr(o->err, "runtime error") ||
		   strstr(o->err, "Sanitizer")) {
		snprintf(verdict, sizeof(verdict), "SANITIZER report");
	} else if (code == 0 || code == 5 || code == 6) {
		if (k->expect != ACCEPT)
			snprintf(
				verdict, sizeof(verdict),
				"ACCEPTED a corrupt handover%s",
				code == 6
					? ", and handed wrong data to the service"
					: "");
		else if (code)
			snprintf(
				verdict, sizeof(verdict),
				"accepted, but the data did not check out (probe exit %d)",
				code);
		else if (o->nerr)
			snprintf(verdict, sizeof(verdict),
				 "accepted, but wrote to stderr");
		else
			ok = true;
	} else if (code == PROBE_REFUSED) {
		if (k->expect == ACCEPT)
			snprintf(verdict, sizeof(verdict),
				 "REFUSED a valid handover");
		else if (k->expect != REFUSE_ANY && got != k->expect)
			snprintf(verdict, sizeof(verdict),
				 "wrong errno: got %s, want %s", errname(got),
				 errname(k->expect));
		else if (nerr != 1 || count_lines(o->err, "", NULL, 0) != 1)
			snprintf(
				verdict, sizeof(verdict),
				"stderr has %d line(s), %d of them 'luo: error:'; want exactly one error line",
				count_lines(o->err, "", NULL, 0), nerr);
		else if ((k->flags & RESIGNED) &&
			 (strstr(errline, "checksum") ||
			  strstr(errline, "corrupt")))
			snprintf(
				verdict, sizeof(verdict),
				"refused for a checksum although the CRCs were recomputed");
		else if (got != -EBADF && !strcmp(fd_state, "open"))
			snprintf(verdict, sizeof(verdict),
				 "refused, but the arena fd %d was left open",
				 PROBE_FD);
		else if (got == -EBADF && c.fdkind != FDK_NONE &&
			 /* the arena itself, valid but unusable: ours */
			 c.fdkind != FDK_SEALED_MEMFD &&
			 c.fdkind != FDK_RDONLY && !strcmp(fd_state, "closed"))
			snprintf(verdict, sizeof(verdict),
				 "closed fd %d, which is not its arena",
				 PROBE_FD);
		else
			ok = true;
	} else {
		snprintf(
			verdict, sizeof(verdict),
			"probe exit code %d (4: no clean fresh start, 7: %s left in the environment, 8: state after a refusal, 9: positive return)",
			code, LUO_HANDOVER_ENV);
	}

	printf("[%s] %-40s expect=%-15s got=%-15s%s%s\n", ok ? "ok" : "FAIL",
	       k->name, expect_name(k->expect), errname(got), ok ? "" : "  ",
	       verdict);
	if (ok && errline[0])
		printf("       %s\n", errline);
	if (!ok)
		printf("  --- probe stdout ---\n%s  --- probe stderr ---\n%s  ---\n",
		       o->out, o->err);
	free(o);
	return ok ? 0 : 1;
}

static int stage_corrupt(void)
{
	size_t failed = 0, corruptions = 0, controls = 0;

	take_handover();
	parse_layout();
	for (size_t i = 0; i < NCASES; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cases[i].name, cases[j].name))
				die("case name %s used twice", cases[i].name);
	for (size_t i = 0; i < NCASES; i++) {
		failed += run_case(&cases[i]);
		if (cases[i].flags & CONTROL)
			controls++;
		else
			corruptions++;
	}
	printf("corrupt-handover: %zu cases (%zu positive controls, %zu corruptions), %zu failed\n",
	       NCASES, controls, corruptions, failed);
	if (corruptions < MIN_CORRUPTIONS) {
		printf("corrupt-handover: FAIL: only %zu corruption cases, want at least %d\n",
		       corruptions, MIN_CORRUPTIONS);
		return 1;
	}
	if (failed) {
		printf("corrupt-handover: FAIL\n");
		return 1;
	}
	printf("corrupt-handover: PASS\n");
	return 0;
}

/* ------------------------------------------------------------------ */
/* dtc: decode the real blobs with the stock device tree compiler. */

/* Run dtc on @in, output to @out; returns its exit status or -1. */
static int run_dtc(const char *dtc, const char *in, const char *out)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 2); /* dtc's warnings are not our business */
		execl(dtc, dtc, "-I", "dtb", "-O", "dts", "-o", out, in,
		      (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void write_blob(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f))
		die("writing %s", path);
}

/* Decode @blob; check every string of @want appears in the output. */
static int decode(const char *dtc, const char *dir, const char *name,
		  const void *blob, size_t len, const char *const *want,
		  size_t nwant)
{
	char in[PATH_MAX], out[PATH_MAX];
	char *text;
	int rc, bad = 0;

	snprintf(in, sizeof(in), "%s/%s.dtb", dir, name);
	snprintf(out, sizeof(out), "%s/%s.dts", dir, name);
	write_blob(in, blob, len);
	rc = run_dtc(dtc, in, out);
	if (rc) {
		printf("handover-dtc: FAIL: dtc exit %d on the %s blob\n", rc,
		       name);
		return 1;
	}
	text = slurp(out);
	if (!text)
		die("reading %s", out);
	printf("--- %s (%zu bytes) decoded by dtc ---\n%s", name, len, text);
	for (size_t i = 0; i < nwant; i++)
		if (!strstr(text, want[i])) {
			printf("handover-dtc: FAIL: %s: no \"%s\" in the dtc output\n",
			       name, want[i]);
			bad++;
		}
	free(text);
	unlink(in);
	unlink(out);
	return bad;
}

static int stage_dtc(const char *dtc)
{
	char dir[] = "/tmp/luo-e2e-dtc.XXXXXX";
	char luo_fdt[64], ser[64], user_fdt[64], big[64];
	const void *root, *luo, *user;
	int bad = 0;

	take_handover();
	parse_layout();
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	root = L.p + L.root;
	luo = L.p + L.luo;
	user = L.p + L.user;
	/* dtc prints a u64 as two cells, "<0x00 0x1c40>" */
	snprintf(luo_fdt, sizeof(luo_fdt), "fdt = <0x%02x 0x%02x>;",
		 (unsigned)(L.luo >> 32), (unsigned)L.luo);
	snprintf(user_fdt, sizeof(user_fdt), "fdt = <0x%02x 0x%02x>;",
		 (unsigned)(L.user >> 32), (unsigned)L.user);
	snprintf(ser, sizeof(ser), "luo-abi-header = <0x%02x 0x%02x>;",
		 (unsigned)(L.ser >> 32), (unsigned)L.ser);
	snprintf(big, sizeof(big), "e2e-big = <0x%02x 0x%02x>;",
		 (unsigned)(L.big >> 32), (unsigned)L.big);
	{
		const char *const want[] = {
			"compatible = \"" KHO_ROOT_COMPATIBLE "\";",
			LUO_FDT_KHO_ENTRY_NAME " {",
			"e2e-user {",
			luo_fdt,
			user_fdt,
		};

		bad += decode(dtc, dir, "root", root, fdt_totalsize(root), want,
			      sizeof(want) / sizeof(want[0]));
	}
	{
		const char *const want[] = {
			"compatible = \"" LUO_FDT_COMPATIBLE "\";",
			LUO_FDT_ABI_HEADER,
			ser,
			LUO_SUBSYSTEMS_NODE " {",
			"compatible = \"" LUO_SUBSYSTEMS_COMPATIBLE "\";",
			big,
			"e2e-const = <0x00 0x2a>;",
			LUO_EXEC_NODE " {",
			"compatible = \"" LUO_EXEC_COMPATIBLE "\";",
			"prepare-ns = <",
			"freeze-ns = <",
			"exec-ns = <",
			LUO_DEVICES_NODE " {",
			"compatible = \"" LUO_DEVICES_COMPATIBLE "\";",
			"count = <0x00 0x02>;",
			/* dtc 1.6 shows a string list as "a\0b", newer ones
			 * as "a", "b": only the common start is checked */
			"paths = \"e2e-bus0/e2e-dev0",
			"buses = \"e2e-bus",
			"drivers = \"e2e-drv",
			"driver-data = <0xd0d0d0d0 0xd0d0d0d1 0xd0d0d0d0 0xd0d0d0d1>;",
		};

		bad += decode(dtc, dir, "luo", luo, fdt_totalsize(luo), want,
			      sizeof(want) / sizeof(want[0]));
	}
	{
		const char *const want[] = {
			"compatible = \"" USER_COMPATIBLE "\";",
			"value = \"hello\";",
		};

		bad += decode(dtc, dir, "user", user, fdt_totalsize(user), want,
			      sizeof(want) / sizeof(want[0]));
	}
	/* Negative control: dtc must reject what is not an FDT. */
	{
		char in[PATH_MAX], out[PATH_MAX];
		int rc;

		snprintf(in, sizeof(in), "%s/garbage.dtb", dir);
		snprintf(out, sizeof(out), "%s/garbage.dts", dir);
		write_blob(in, L.p + L.ser, sizeof(struct luo_ser));
		rc = run_dtc(dtc, in, out);
		if (rc == 0) {
			printf("handover-dtc: FAIL: dtc accepted a struct luo_ser as an FDT\n");
			bad++;
		} else {
			printf("handover-dtc: control ok: dtc refuses a non-FDT blob (exit %d)\n",
			       rc);
		}
		unlink(in);
		unlink(out);
	}
	rmdir(dir);
	printf("handover-dtc: %s\n", bad ? "FAIL" : "PASS");
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return 1;
	self[n] = 0;
	snprintf(selfdir, sizeof(selfdir), "%.*s",
		 (int)(strrchr(self, '/') - self), self);

	if (argc > 1 && !strcmp(argv[1], "probe"))
		return stage_probe();
	if (argc > 2 && !strcmp(argv[1], "gen"))
		return stage_gen(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "corrupt"))
		return stage_corrupt();
	if (argc > 2 && !strcmp(argv[1], "dtc"))
		return stage_dtc(argv[2]);
	fprintf(stderr, "usage: %s gen corrupt | gen dtc DTC_PATH\n", argv[0]);
	return 2;
}
