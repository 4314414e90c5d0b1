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
 *
 * This file: the stages gen and probe, and main().  The parts:
 * handover_layout.c (where things are in the inherited handover),
 * handover_cases.c (the corruption table), handover_mutators.c (what each
 * kind of case does to the copy), handover_corrupt.c (the corrupt stage),
 * handover_dtc.c (the dtc stage).
 */
#include "handover.h"

char self[PATH_MAX];
char selfdir[PATH_MAX];

void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = mix(seed ^ i);
}

size_t bad_words(const void *p, size_t len, uint64_t seed)
{
	const uint64_t *w = p;
	size_t bad = 0;

	for (size_t i = 0; i < len / 8; i++)
		bad += w[i] != mix(seed ^ i);
	return bad;
}

/* CRC32C (Castagnoli), bit by bit: an independent implementation. */
uint32_t crc32c(uint32_t seed, const void *buf, size_t len)
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
