// SPDX-License-Identifier: MIT
/*
 * Devices across a real exec.  The first image registers a small VMM-like
 * tree, requests four devices, prepares and re-executes this binary; its
 * callbacks write a journal into a memfd the exec keeps, so the second
 * image can check what ran just before the exec (reboot callbacks, and
 * shutdown of exactly the devices not preserved).  The second image then
 * re-registers and reclaims devices, and checks finish: warnings for the
 * preserved devices not reclaimed, finish callbacks with the old image's
 * data, children before parents.
 *
 *   0 vmm              platform / vmm          ancestor
 *   1 vmm/pci0         pci / bridge            ancestor
 *   2 vmm/pci0/net0    pci / virtio-net        requested, reclaimed
 *   3 vmm/pci0/blk0    pci / virtio-blk        requested, not reclaimed
 *   4 vmm/pci0/gone0   pci / virtio-rng        requested, never registered
 *   5 vmm/pci0/moved0  pci / virtio-net        requested, comes back as e1000
 *   6 vmm/pci0/disk1   pci / virtio-blk        shut down by its bus
 *   7 vmm/serial0      platform / uart         shut down by its driver
 *   8 other            (none)                  nothing to shut down
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "recorder.h"
#include "stage.h"

static int jfd = -1;	   /* the first image's journal, across the exec */
static char journal[8192]; /* this image's */
static char old_journal[8192];

struct tdev {
	struct liveupdate_device dev;
	int id;
};

static struct tdev D[10];

static int id_of(struct liveupdate_device *dev)
{
	return ((struct tdev *)((char *)dev - offsetof(struct tdev, dev)))->id;
}

static void note(char op, char who, struct liveupdate_device *dev)
{
	char tok[16];
	int n = snprintf(tok, sizeof(tok), "%c%c%d ", op, who, id_of(dev));

	strncat(journal, tok, sizeof(journal) - strlen(journal) - 1);
	if (jfd >= 0 && write(jfd, tok, (size_t)n) != n)
		abort();
}

static uint64_t data_of(char who, int id)
{
	return (who == 'D' ? 0xd0d0000000000000ULL : 0xb0b0000000000000ULL) |
	       (uint64_t)id << 8 | 0x5a;
}

static uint64_t finish_data[10][2]; /* [id][driver, bus] */

static int drv_prepare(struct liveupdate_device *dev, uint64_t *data)
{
	note('P', 'D', dev);
	*data = data_of('D', id_of(dev));
	return 0;
}

static int bus_prepare(struct liveupdate_device *dev, uint64_t *data)
{
	note('P', 'B', dev);
	*data = data_of('B', id_of(dev));
	return 0;
}

static int drv_reboot(struct liveupdate_device *dev, uint64_t data)
{
	note('R', 'D', dev);
	return data == data_of('D', id_of(dev)) ? 0 : -EINVAL;
}

static int bus_reboot(struct liveupdate_device *dev, uint64_t data)
{
	note('R', 'B', dev);
	return data == data_of('B', id_of(dev)) ? 0 : -EINVAL;
}

static void drv_finish(struct liveupdate_device *dev, uint64_t data)
{
	note('F', 'D', dev);
	finish_data[id_of(dev)][0] = data;
}

static void bus_finish(struct liveupdate_device *dev, uint64_t data)
{
	note('F', 'B', dev);
	finish_data[id_of(dev)][1] = data;
}

static void drv_cancel(struct liveupdate_device *dev, uint64_t data)
{
	(void)data;
	note('C', 'D', dev);
}

static void bus_cancel(struct liveupdate_device *dev, uint64_t data)
{
	(void)data;
	note('C', 'B', dev);
}

static void drv_shutdown(struct liveupdate_device *dev)
{
	note('S', 'D', dev);
}

static void bus_shutdown(struct liveupdate_device *dev)
{
	note('S', 'B', dev);
}

static const struct liveupdate_device_cbs drv_cbs = {drv_prepare, drv_reboot,
						     drv_finish, drv_cancel};
static const struct liveupdate_device_cbs bus_cbs = {bus_prepare, bus_reboot,
						     bus_finish, bus_cancel};

static const struct liveupdate_bus platform = {"platform", &bus_cbs, NULL,
					       NULL};
static const struct liveupdate_bus pci = {"pci", &bus_cbs, bus_shutdown, NULL};
static const struct liveupdate_driver vmm = {"vmm", &drv_cbs, drv_shutdown,
					     NULL};
static const struct liveupdate_driver bridge = {"bridge", &drv_cbs,
						drv_shutdown, NULL};
static const struct liveupdate_driver vnet = {"virtio-net", &drv_cbs,
					      drv_shutdown, NULL};
static const struct liveupdate_driver vblk = {"virtio-blk", &drv_cbs,
					      drv_shutdown, NULL};
static const struct liveupdate_driver vrng = {"virtio-rng", &drv_cbs,
					      drv_shutdown, NULL};
static const struct liveupdate_driver uart = {"uart", &drv_cbs, drv_shutdown,
					      NULL};
static const struct liveupdate_driver e1000 = {"e1000", &drv_cbs, drv_shutdown,
					       NULL};

static void init(int id, const char *name, int parent,
		 const struct liveupdate_bus *b,
		 const struct liveupdate_driver *d)
{
	memset(&D[id], 0, sizeof(D[id]));
	D[id].id = id;
	D[id].dev.name = name;
	D[id].dev.parent = parent < 0 ? NULL : &D[parent].dev;
	D[id].dev.bus = b;
	D[id].dev.driver = d;
}

static void init_tree(void)
{
	init(0, "vmm", -1, &platform, &vmm);
	init(1, "pci0", 0, &pci, &bridge);
	init(2, "net0", 1, &pci, &vnet);
	init(3, "blk0", 1, &pci, &vblk);
	init(4, "gone0", 1, &pci, &vrng);
	init(5, "moved0", 1, &pci, &vnet);
	init(6, "disk1", 1, &pci, &vblk);
	init(7, "serial0", 0, &platform, &uart);
	init(8, "other", -1, NULL, NULL);
}

/* First image: build the tree, prepare, exec ourselves. */
static int stage_one(void)
{
	char fdstr[16];
	char *handed[] = {fdstr, NULL};

	jfd = memfd_create("device-journal", 0); /* kept across the exec */
	REQUIRE(jfd >= 0, "memfd_create: %s", strerror(errno));
	REQUIRE(!luo_init(NULL), "luo_init");
	snprintf(fdstr, sizeof(fdstr), "%d", jfd);
	init_tree();
	for (int i = 0; i <= 8; i++)
		REQUIRE(!liveupdate_device_register(&D[i].dev), "register %d",
			i);
	for (int i = 2; i <= 5; i++)
		REQUIRE(!liveupdate_device_request(&D[i].dev, true),
			"request %d", i);
	stage_reboot(handed); /* prepares, then returns only on failure */
	return 1;
}

static void test_old_image_journal(void)
{
	/* Prepare: children before parents, registration order at a depth;
	 * reboot in the same order; then shutdown of exactly those not
	 * preserved, children before parents, bus first if it has one. */
	CHECK_STREQ(old_journal,
		    "PD2 PB2 PD3 PB3 PD4 PB4 PD5 PB5 PD1 PB1 PD0 PB0 "
		    "RD2 RB2 RD3 RB3 RD4 RB4 RD5 RB5 RD1 RB1 RD0 RB0 "
		    "SD7 SB6 ");
}

struct listing {
	char text[1024];
	int n;
};

static int list_cb(const struct liveupdate_device_info *info, void *arg)
{
	struct listing *l = arg;

	snprintf(l->text + strlen(l->text), sizeof(l->text) - strlen(l->text),
		 "%s(%s,%s,%u)%d%d%d%d;", info->path, info->bus, info->driver,
		 info->depth, info->registered, info->requested,
		 info->preserved, info->reclaimed);
	l->n++;
	return 0;
}

static void test_incoming_listed(void)
{
	struct listing l = {"", 0};
	struct liveupdate_device_info info;

	CHECK_EQ(liveupdate_get_state(), LIVEUPDATE_STATE_UPDATED);
	CHECK_EQ(liveupdate_device_foreach(list_cb, &l), 0);
	CHECK_STREQ(l.text, "vmm/pci0/net0(pci,virtio-net,3)0010;"
			    "vmm/pci0/blk0(pci,virtio-blk,3)0010;"
			    "vmm/pci0/gone0(pci,virtio-rng,3)0010;"
			    "vmm/pci0/moved0(pci,virtio-net,3)0010;"
			    "vmm/pci0(pci,bridge,2)0010;"
			    "vmm(platform,vmm,1)0010;");
	CHECK_EQ(liveupdate_device_lookup("vmm/pci0/disk1", &info), -ENOENT);
	CHECK_EQ(liveupdate_device_lookup("vmm/pci0", &info), 0);
	CHECK(!info.registered, "set");
	CHECK(info.preserved, "not set");
}

static void test_register_and_reclaim(void)
{
	struct liveupdate_device_info info;
	uint64_t dd = 0, bd = 0;

	init_tree();
	D[5].dev.driver = &e1000; /* moved0 comes back under another driver */
	init(9, "new0", 1, &pci, &vnet);
	rec.log_warnings = 0;
	rec.log_errors = 0;
	for (int i = 0; i <= 9; i++)
		if (i != 4 && i != 6 && i != 7 && i != 8)
			CHECK_EQ(liveupdate_device_register(&D[i].dev), 0);
	CHECK_EQ(rec.log_warnings, 1); /* moved0 */
	for (int i = 0; i <= 3; i++)
		CHECK(liveupdate_device_preserved(&D[i].dev), "is not");
	CHECK(!liveupdate_device_preserved(&D[5].dev), "is");
	CHECK(!liveupdate_device_preserved(&D[9].dev), "is");
	CHECK(!liveupdate_device_reclaimed(&D[2].dev), "is");

	CHECK_EQ(liveupdate_device_reclaim(&D[2].dev, &dd, &bd), 0);
	CHECK_EQ(dd, data_of('D', 2));
	CHECK_EQ(bd, data_of('B', 2));
	CHECK(liveupdate_device_reclaimed(&D[2].dev), "is not");
	CHECK_EQ(liveupdate_device_reclaim(&D[2].dev, &dd, &bd), -EALREADY);
	CHECK_EQ(liveupdate_device_reclaim(&D[5].dev, &dd, &bd), -ESTALE);
	CHECK_EQ(liveupdate_device_reclaim(&D[9].dev, &dd, &bd), -ENOENT);
	CHECK_EQ(liveupdate_device_reclaim(&D[4].dev, &dd, &bd), -EINVAL);
	CHECK_EQ(liveupdate_device_reclaim(&D[0].dev, NULL, &bd), 0);
	CHECK_EQ(bd, data_of('B', 0));
	CHECK_EQ(liveupdate_device_reclaim(&D[1].dev, &dd, NULL), 0);
	CHECK_EQ(dd, data_of('D', 1));
	/* Requests change only in NORMAL. */
	CHECK_EQ(liveupdate_device_request(&D[2].dev, true), -EBUSY);
	CHECK_EQ(rec.log_errors, 5);

	/* A reclaimed device unregistered and registered again stays so. */
	CHECK_EQ(liveupdate_device_unregister(&D[9].dev), 0);
	CHECK_EQ(liveupdate_device_unregister(&D[2].dev), 0);
	CHECK_EQ(liveupdate_device_lookup("vmm/pci0/net0", &info), 0);
	CHECK(!info.registered, "set");
	CHECK(info.reclaimed, "not set");
	CHECK_EQ(liveupdate_device_register(&D[2].dev), 0);
	CHECK(liveupdate_device_reclaimed(&D[2].dev), "is not");
	CHECK_EQ(liveupdate_device_lookup("vmm/pci0/gone0", &info), 0);
	CHECK(!(info.registered || info.reclaimed), "registered or reclaimed");
}

static void test_finish(void)
{
	journal[0] = 0;
	rec.log_warnings = 0;
	CHECK_EQ(liveupdate_finish(), 0);
	/* blk0 not reclaimed; gone0 never registered; moved0 not under the
	 * same driver: one warning each.  Finish for every preserved device
	 * that is registered, children before parents, driver then bus. */
	CHECK_EQ(rec.log_warnings, 3);
	CHECK_STREQ(journal, "FD2 FB2 FD3 FB3 FD1 FB1 FD0 FB0 ");
	for (int i = 0; i <= 3; i++) {
		CHECK_EQ(finish_data[i][0], data_of('D', i));
		CHECK_EQ(finish_data[i][1], data_of('B', i));
	}
	for (int i = 0; i <= 9; i++) {
		CHECK(!liveupdate_device_preserved(&D[i].dev), "is");
		CHECK(!liveupdate_device_reclaimed(&D[i].dev), "is");
	}
	CHECK_EQ(liveupdate_device_reclaim(&D[3].dev, NULL, NULL), -ENODATA);
}

static void test_next_cycle(void)
{
	struct listing l = {"", 0};

	CHECK_EQ(liveupdate_device_foreach(list_cb, &l), 0);
	CHECK_EQ(l.n, 5); /* vmm pci0 blk0 moved0 net0 */
	CHECK_EQ(liveupdate_device_request(&D[3].dev, true), 0);
	journal[0] = 0;
	CHECK_EQ(liveupdate_prepare(), 0);
	CHECK(liveupdate_device_preserved(&D[3].dev), "is not");
	CHECK_EQ(liveupdate_cancel(), 0);
	CHECK_STREQ(journal,
		    "PD3 PB3 PD1 PB1 PD0 PB0 CB0 CD0 CB1 CD1 CB3 CD3 ");
}

/* Image 2 gets the number of image 1's journal memfd. */
static int run(const struct stage *st)
{
	ssize_t n;

	if (st->n == 1)
		return stage_one();
	REQUIRE(st->nhanded == 1, "%d arguments from image 1, expected 1",
		st->nhanded);
	jfd = atoi(st->handed[0]);
	n = pread(jfd, old_journal, sizeof(old_journal) - 1, 0);
	REQUIRE(n >= 0, "the journal of image 1: %s", strerror(errno));
	old_journal[n] = 0;
	close(jfd);
	jfd = -1;
	rec_reset();
	luo_set_log_handler(rec_log_handler, NULL);
	REQUIRE(!luo_init(NULL), "the handover was refused");
	test_old_image_journal();
	test_incoming_listed();
	test_register_and_reclaim();
	test_finish();
	test_next_cycle();
	return stage_done("devices came across the update");
}

static const struct stage_test test = {"device-updated", 0, run};

int main(int argc, char **argv)
{
	return stage_main(argc, argv, &test);
}
