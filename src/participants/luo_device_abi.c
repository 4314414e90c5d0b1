// SPDX-License-Identifier: MIT
/*
 * The "devices" node of the LUO FDT (compatible "luo-devices-v1"): the
 * devices the old image preserved, in preserve order (children before
 * parents), as parallel lists:
 *
 *   devices {
 *           compatible = "luo-devices-v1";
 *           count = <u64 N>;
 *           paths = "vmm/pci0/net0", "vmm/pci0", "vmm";   N strings
 *           buses = "pci", "pci", "";                      N strings
 *           drivers = "virtio-net", "pci-bridge", "vmm";   N strings
 *           driver-data = <u64 x N>;
 *           bus-data = <u64 x N>;
 *   };
 *
 * One property per field keeps the node O(N) to write and to read (a
 * subnode per device would make libfdt's name checks quadratic).  The
 * incoming side copies everything out of the arena and checks every field
 * before the handover is accepted.
 *
 * Below the registry (luo_device.c), above the names (luo_device_name.c):
 * nothing here calls the registry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "luo_device_internal.h"
#include "luo_internal.h"

static struct {
	struct luo_device_in *v;
	size_t n;
	char *strings; /* the three string lists, copied */
	struct luo_htable by_path;
} in;

int luo_devices_out_record(const struct luo_device_lu *const *v, size_t n)
{
	void *fdt = luo_abi_out_fdt();
	size_t plen = 0, blen = 0, dlen = 0;
	char *paths, *buses, *drivers, *p, *b, *d;
	fdt64_t *dd, *bd;
	int node, err = -FDT_ERR_NOSPACE;

	for (size_t i = 0; i < n; i++) {
		plen += strlen(v[i]->path) + 1;
		blen += strlen(luo_device_bus_name(v[i]->dev)) + 1;
		dlen += strlen(luo_device_driver_name(v[i]->dev)) + 1;
	}
	p = paths = malloc(plen + 1);
	b = buses = malloc(blen + 1);
	d = drivers = malloc(dlen + 1);
	dd = malloc(n * sizeof(*dd) + 1);
	bd = malloc(n * sizeof(*bd) + 1);
	if (!fdt || !paths || !buses || !drivers || !dd || !bd)
		goto out;
	for (size_t i = 0; i < n; i++) {
		p = stpcpy(p, v[i]->path) + 1;
		b = stpcpy(b, luo_device_bus_name(v[i]->dev)) + 1;
		d = stpcpy(d, luo_device_driver_name(v[i]->dev)) + 1;
		dd[i] = cpu_to_fdt64(v[i]->driver_data);
		bd[i] = cpu_to_fdt64(v[i]->bus_data);
	}
	node = fdt_add_subnode(fdt, 0, LUO_DEVICES_NODE);
	err = node < 0 ? node
		       : fdt_setprop_string(fdt, node, "compatible",
					    LUO_DEVICES_COMPATIBLE);
	err = err ?: fdt_setprop_u64(fdt, node, LUO_DEVICES_COUNT, n);
	err = err
		      ?: fdt_setprop(fdt, node, LUO_DEVICES_PATHS, paths,
				     (int)plen);
	err = err
		      ?: fdt_setprop(fdt, node, LUO_DEVICES_BUSES, buses,
				     (int)blen);
	err = err
		      ?: fdt_setprop(fdt, node, LUO_DEVICES_DRIVERS, drivers,
				     (int)dlen);
	err = err
		      ?: fdt_setprop(fdt, node, LUO_DEVICES_DRIVER_DATA, dd,
				     (int)(n * sizeof(*dd)));
	err = err
		      ?: fdt_setprop(fdt, node, LUO_DEVICES_BUS_DATA, bd,
				     (int)(n * sizeof(*bd)));
out:
	if (err)
		pr_err("cannot record %zu preserved device(s) in the LUO FDT: %s",
		       n,
		       paths && dd && bd ? fdt_strerror(err) : "out of memory");
	free(paths);
	free(buses);
	free(drivers);
	free(dd);
	free(bd);
	if (!err)
		return 0;
	return paths && buses && drivers && dd && bd ? -ENOSPC : -ENOMEM;
}

static struct luo_device_in *find_n(const char *path, size_t len)
{
	struct luo_hnode *n;

	for (n = luo_hash_find(&in.by_path, luo_device_path_hash(path, len)); n;
	     n = luo_hash_next(n)) {
		struct luo_device_in *e =
			luo_hash_entry(n, struct luo_device_in, hnode);

		if (!strncmp(e->path, path, len) && !e->path[len])
			return e;
	}
	return NULL;
}

struct luo_device_in *luo_devices_in_find(const char *path)
{
	return in.n ? find_n(path, strlen(path)) : NULL;
}

struct luo_device_in *luo_devices_in_get(size_t i)
{
	return i < in.n ? &in.v[i] : NULL;
}

void luo_devices_in_info_of(const struct luo_device_in *e,
			    struct liveupdate_device_info *info)
{
	memset(info, 0, sizeof(*info));
	strcpy(info->path, e->path);
	strcpy(info->bus, e->bus);
	strcpy(info->driver, e->driver);
	info->depth = e->depth;
	info->registered = e->lu != NULL;
	info->preserved = true;
	info->reclaimed = e->reclaimed;
}

/* The incoming entries are going away: untie the registered devices. */
static void untie(struct luo_device_lu *lu)
{
	lu->in = NULL;
	FLAG_SET(lu->preserved, false);
	FLAG_SET(lu->reclaimed, false);
}

/**
 * luo_devices_in_release() - drop the devices the old image preserved
 *
 * The participant's release_incoming (a refused handover, finish), and
 * called again by finish and by luo_devices_forget(): a second call finds
 * nothing.  Registered devices tied to an incoming entry are untied: no
 * longer preserved nor reclaimed.
 */
void luo_devices_in_release(void)
{
	for (size_t i = 0; i < in.n; i++)
		if (in.v[i].lu)
			untie(in.v[i].lu);
	free(in.v);
	free(in.strings);
	luo_hash_free(&in.by_path);
	in.v = NULL;
	in.strings = NULL;
	in.n = 0;
}

/* The next NUL-terminated string of at most @max characters, or NULL. */
static const char *next_string(const char **cur, const char *end, size_t max)
{
	const char *s = *cur;
	size_t len;

	if (s >= end)
		return NULL;
	len = strnlen(s, (size_t)(end - s));
	if (len == (size_t)(end - s) || len > max)
		return NULL;
	*cur = s + len + 1;
	return s;
}

/* Components of a path, or 0 if it is not a valid one. */
static unsigned int path_depth(const char *path)
{
	unsigned int depth = 0;
	const char *s = path, *slash;

	for (;;) {
		slash = strchr(s, '/');
		if (!luo_device_name_valid(s, slash ? (size_t)(slash - s)
						    : strlen(s)))
			return 0;
		depth++;
		if (!slash)
			return depth;
		s = slash + 1;
	}
}

static bool owner_name_ok(const char *name)
{
	return !*name || luo_device_name_valid(name, strlen(name));
}

struct string_list {
	const char *name;
	const char *cur, *end;
	size_t max;
};

/**
 * luo_devices_in_parse() - copy out and check the incoming "devices" node
 * @fdt: the incoming LUO FDT (in the arena).
 * @why: filled in with the reason of a refusal.
 * @whylen: its size.
 *
 * Called by the lifecycle at adoption.  Nothing is read from the arena
 * afterwards; every path, name, the order (children before parents) and
 * every ancestor are checked.  On an error, what was copied stays until
 * luo_devices_in_release().
 *
 * Return: 0 (also when the old image preserved no devices), -EBADMSG,
 * -EPROTONOSUPPORT for another compatible string, -ENOMEM.
 */
int luo_devices_in_parse(const void *fdt, char *why, size_t whylen)
{
	struct string_list lists[3] = {
		{LUO_DEVICES_PATHS, NULL, NULL, LIVEUPDATE_DEVICE_PATH_MAX - 1},
		{LUO_DEVICES_BUSES, NULL, NULL, LIVEUPDATE_DEVICE_NAME_MAX},
		{LUO_DEVICES_DRIVERS, NULL, NULL, LIVEUPDATE_DEVICE_NAME_MAX},
	};
	const fdt64_t *cnt, *dd, *bd;
	const char *have;
	size_t total = 0;
	uint64_t count;
	int node, len, err;
	char *copy;

	node = fdt_subnode_offset(fdt, 0, LUO_DEVICES_NODE);
	if (node == -FDT_ERR_NOTFOUND)
		return 0; /* the old image preserved no devices */
	if (node < 0)
		return luo_reason(why, whylen, -EBADMSG,
				  "LUO FDT '%s' node is unreadable",
				  LUO_DEVICES_NODE);
	if (fdt_node_check_compatible(fdt, node, LUO_DEVICES_COMPATIBLE)) {
		have = fdt_getprop(fdt, node, "compatible", NULL);
		return luo_reason(
			why, whylen, -EPROTONOSUPPORT,
			"LUO node '%s' is '%.32s', this library reads '%s'",
			LUO_DEVICES_NODE, have ? have : "(none)",
			LUO_DEVICES_COMPATIBLE);
	}
	cnt = fdt_getprop(fdt, node, LUO_DEVICES_COUNT, &len);
	if (!cnt || len != sizeof(*cnt))
		return luo_reason(why, whylen, -EBADMSG,
				  "devices node has no valid '%s'",
				  LUO_DEVICES_COUNT);
	count = fdt64_ld(cnt);
	if (count > LIVEUPDATE_DEVICES_MAX)
		return luo_reason(
			why, whylen, -EBADMSG,
			"devices node counts %llu devices, at most %u are allowed",
			(unsigned long long)count, LIVEUPDATE_DEVICES_MAX);
	dd = fdt_getprop(fdt, node, LUO_DEVICES_DRIVER_DATA, &len);
	if (!dd || (uint64_t)len != count * sizeof(*dd))
		return luo_reason(why, whylen, -EBADMSG,
				  "devices node '%s' is not %llu u64 values",
				  LUO_DEVICES_DRIVER_DATA,
				  (unsigned long long)count);
	bd = fdt_getprop(fdt, node, LUO_DEVICES_BUS_DATA, &len);
	if (!bd || (uint64_t)len != count * sizeof(*bd))
		return luo_reason(why, whylen, -EBADMSG,
				  "devices node '%s' is not %llu u64 values",
				  LUO_DEVICES_BUS_DATA,
				  (unsigned long long)count);
	for (int k = 0; k < 3; k++) {
		lists[k].cur = fdt_getprop(fdt, node, lists[k].name, &len);
		if (!lists[k].cur || len < 0)
			return luo_reason(why, whylen, -EBADMSG,
					  "devices node has no '%s'",
					  lists[k].name);
		lists[k].end = lists[k].cur + len;
		total += (size_t)len;
	}
	/* Work on a copy: nothing is read from the arena twice. */
	in.strings = malloc(total + 1);
	in.v = calloc(count ? count : 1, sizeof(*in.v));
	if (!in.strings || !in.v)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	copy = in.strings;
	for (int k = 0; k < 3; k++) {
		size_t n = (size_t)(lists[k].end - lists[k].cur);

		memcpy(copy, lists[k].cur, n);
		lists[k].cur = copy;
		lists[k].end = copy + n;
		copy += n;
	}
	err = luo_hash_reserve(&in.by_path, count);
	if (err)
		return luo_reason(why, whylen, err, "out of memory");
	for (size_t i = 0; i < count; i++) {
		struct luo_device_in *e = &in.v[i];
		const char *s[3];

		for (int k = 0; k < 3; k++) {
			s[k] = next_string(&lists[k].cur, lists[k].end,
					   lists[k].max);
			if (!s[k])
				return luo_reason(
					why, whylen, -EBADMSG,
					"devices node '%s' entry %zu is missing, unterminated or too long",
					lists[k].name, i);
		}
		e->path = s[0];
		e->bus = s[1];
		e->driver = s[2];
		e->depth = path_depth(e->path);
		if (!e->depth)
			return luo_reason(why, whylen, -EBADMSG,
					  "device path '%.64s' is malformed",
					  e->path);
		if (!owner_name_ok(e->bus) || !owner_name_ok(e->driver))
			return luo_reason(
				why, whylen, -EBADMSG,
				"device '%s' has a malformed bus or driver name",
				e->path);
		if (i && e->depth > in.v[i - 1].depth)
			return luo_reason(
				why, whylen, -EBADMSG,
				"devices are not listed children before parents ('%s' after '%s')",
				e->path, in.v[i - 1].path);
		if (find_n(e->path, strlen(e->path)))
			return luo_reason(why, whylen, -EBADMSG,
					  "device '%s' appears twice", e->path);
		e->driver_data = fdt64_ld(&dd[i]);
		e->bus_data = fdt64_ld(&bd[i]);
		err = luo_hash_add(
			&in.by_path, &e->hnode,
			luo_device_path_hash(e->path, strlen(e->path)));
		if (err)
			return luo_reason(why, whylen, err, "out of memory");
		in.n = i + 1;
	}
	for (int k = 0; k < 3; k++)
		if (lists[k].cur != lists[k].end)
			return luo_reason(
				why, whylen, -EBADMSG,
				"devices node '%s' has more than %llu entries",
				lists[k].name, (unsigned long long)count);
	/* Every ancestor of a preserved device is preserved too. */
	for (size_t i = 0; i < in.n; i++) {
		const char *slash = strrchr(in.v[i].path, '/');

		if (slash &&
		    !find_n(in.v[i].path, (size_t)(slash - in.v[i].path)))
			return luo_reason(
				why, whylen, -EBADMSG,
				"device '%s' is preserved but its parent is not",
				in.v[i].path);
	}
	return 0;
}
