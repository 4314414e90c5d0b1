// SPDX-License-Identifier: MIT
/*
 * What names a device: the rule for a device, bus or driver name, the bus
 * and driver names as recorded ("" for none) and the hash of a path that
 * keys both the registry and the incoming devices.  The bottom of the
 * device files: it calls nothing of theirs (luo_device.c ->
 * luo_device_abi.c -> luo_device_name.c).
 */
#include "luo_device_internal.h"
#include "luo_name.h"

uint64_t luo_device_path_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

bool luo_device_name_valid(const char *name, size_t len)
{
	return luo_name_valid(name, len, LIVEUPDATE_DEVICE_NAME_MAX, ",._+:@-");
}

const char *luo_device_bus_name(const struct liveupdate_device *dev)
{
	return dev->bus ? dev->bus->name : "";
}

const char *luo_device_driver_name(const struct liveupdate_device *dev)
{
	return dev->driver ? dev->driver->name : "";
}
