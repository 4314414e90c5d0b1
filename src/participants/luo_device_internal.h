/* SPDX-License-Identifier: MIT */
/*
 * Devices: shared by luo_device.c (registry, participant),
 * luo_device_abi.c (the "devices" node of the LUO FDT) and
 * luo_device_name.c (names and path hash).  Calls between them go one way
 * (docs/architecture.md, "Inside a layer"): luo_device.c ->
 * luo_device_abi.c -> luo_device_name.c.
 */
#ifndef LUO_SRC_LUO_DEVICE_INTERNAL_H
#define LUO_SRC_LUO_DEVICE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <luo/luo.h>

#include "luo_hash.h"

struct luo_device_in;

/*
 * The flags of struct luo_device_lu that liveupdate_device_preserved() and
 * the like read without a lock: relaxed atomic loads and stores.
 */
#define FLAG_GET(f) __atomic_load_n(&(f), __ATOMIC_RELAXED)
#define FLAG_SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)

/* The library's side of a registered device (struct liveupdate_device.lu). */
struct luo_device_lu {
	struct liveupdate_device *dev;
	struct luo_device_lu *next, *prev; /* registration order */
	struct luo_hnode hnode;		   /* keyed by the hash of path */
	struct luo_device_in *in; /* UPDATED: what the old image preserved */
	uint64_t driver_data, bus_data; /* stored by prepare */
	uint64_t seq;			/* registration order */
	unsigned int depth;		/* 1 for a root */
	unsigned int nchildren;		/* registered children */
	unsigned int mark;		/* walk generation */
	int prepared;			/* PREP_* in luo_device.c */
	bool listed;			/* on the preserve list */
	bool requested, preserved, reclaimed;
	char path[];
};

/* One device the old image preserved, copied out of the LUO FDT. */
struct luo_device_in {
	struct luo_hnode hnode;
	const char *path, *bus, *driver; /* "" for no bus or driver */
	uint64_t driver_data, bus_data;
	unsigned int depth;
	struct luo_device_lu *lu; /* registered under this path, if any */
	bool reclaimed;
};

/* luo_device_name.c: the bottom, calls nothing of the other two. */
/**
 * luo_device_path_hash() - the hash of a device path (64-bit FNV-1a)
 * @s: the path (need not be NUL-terminated).
 * @len: its length.
 *
 * Keys the registry and the incoming devices alike, so that a path found
 * in one is looked up in the other with the same value.
 *
 * Return: the hash.
 */
uint64_t luo_device_path_hash(const char *s, size_t len);

/**
 * luo_device_name_valid() - a device, bus or driver name, or a component
 * of a device path, of 1 to LIVEUPDATE_DEVICE_NAME_MAX characters
 * @name: the name (need not be NUL-terminated).
 * @len: its length.
 *
 * Return: true if @name follows luo_name_valid() with ",._+:@-".
 */
bool luo_device_name_valid(const char *name, size_t len);

/**
 * luo_device_bus_name() - the name of a device's bus, as recorded
 * @dev: a device.
 *
 * Return: the bus's name, or "" if the device has no bus.
 */
const char *luo_device_bus_name(const struct liveupdate_device *dev);

/**
 * luo_device_driver_name() - the name of a device's driver, as recorded
 * @dev: a device.
 *
 * Return: the driver's name, or "" if the device has no driver.
 */
const char *luo_device_driver_name(const struct liveupdate_device *dev);

/* luo_device_abi.c: calls only luo_device_name.c. */
/**
 * luo_devices_out_record() - write the outgoing "devices" node
 * @v: the preserve list, deepest first.
 * @n: its length.
 *
 * Called by prepare under the state lock held for writing.
 *
 * Return: 0, -ENOSPC if the LUO FDT is full, -ENOMEM.
 */
int luo_devices_out_record(const struct luo_device_lu *const *v, size_t n);

/**
 * luo_devices_in_find() - the device the old image preserved under a path
 * @path: the full path.
 *
 * Return: the incoming entry, or NULL if none.
 */
struct luo_device_in *luo_devices_in_find(const char *path);

/**
 * luo_devices_in_get() - the @i-th incoming device
 * @i: its index, in the order preserved (children before parents).
 *
 * Return: the incoming entry, or NULL past the end.
 */
struct luo_device_in *luo_devices_in_get(size_t i);

/**
 * luo_devices_in_info_of() - describe an incoming device for a listing
 * @e: the incoming entry.
 * @info: filled in (registered if a device of this image is tied to @e).
 */
void luo_devices_in_info_of(const struct luo_device_in *e,
			    struct liveupdate_device_info *info);

#endif
