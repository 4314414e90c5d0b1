/* SPDX-License-Identifier: MIT */
/* Devices: shared by luo_device.c (registry, participant) and
 * luo_device_abi.c (the "devices" node of the LUO FDT). */
#ifndef LUO_SRC_LUO_DEVICE_INTERNAL_H
#define LUO_SRC_LUO_DEVICE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <luo/luo.h>

#include "luo_hash.h"

struct luo_device_in;

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

/* luo_device.c */
uint64_t luo_device_path_hash(const char *s, size_t len);
bool luo_device_name_valid(const char *name, size_t len);
const char *luo_device_bus_name(const struct liveupdate_device *dev);
const char *luo_device_driver_name(const struct liveupdate_device *dev);
void luo_devices_untie(struct luo_device_lu *lu);

/* luo_device_abi.c */
int luo_devices_out_record(const struct luo_device_lu *const *v, size_t n);
struct luo_device_in *luo_devices_in_find(const char *path);
/* The @i-th incoming device (children before parents), NULL past the end. */
struct luo_device_in *luo_devices_in_get(size_t i);
void luo_devices_in_info_of(const struct luo_device_in *e,
			    struct liveupdate_device_info *info);

#endif
