/* SPDX-License-Identifier: MIT */
/**
 * DOC: devices: long-lived service objects kept alive across the update
 *
 * The device model follows the kernel's device live update: a service
 * describes its long-lived objects (client connections under a listener,
 * the virtual devices of a VMM under their bus, worker pools) as a tree of
 * devices.  Each device has a name, a parent, a bus and a driver; buses and
 * drivers carry live update callbacks (prepare, reboot, finish, cancel) and
 * a shutdown callback.
 *
 * Identity.  A device is known by its path: the names of its ancestors and
 * its own, root first, joined by '/' ("vmm/pci0/net0").  Paths are unique
 * among registered devices and are how the new image finds the devices the
 * old one preserved: it registers a device with the same path (and the same
 * bus and driver names) and its driver claims it with
 * liveupdate_device_reclaim().  Names are 1 to 63 characters of
 * [A-Za-z0-9,._+:@-]; a path is at most %LIVEUPDATE_DEVICE_PATH_MAX - 1
 * characters.
 *
 * Per device: ``requested`` (the service asked for it to be preserved),
 * ``preserved`` (old image: its prepare succeeded; new image: the old image
 * preserved it) and ``reclaimed`` (new image: its driver took it back).
 *
 * The lifecycle:
 *
 * - liveupdate_device_request() in NORMAL only.  Requesting needs the
 *   device and every ancestor to have live update callbacks on their bus
 *   and driver (a device without a bus or a driver needs none there).
 * - prepare: the preserve list is the requested devices plus all their
 *   ancestors, each once, children before parents (deepest first; equal
 *   depths in registration order).  For each: driver prepare, then bus
 *   prepare; each may store a u64 for its successor.  If one fails, every
 *   device already prepared is cancelled in reverse (bus cancel, then
 *   driver cancel), and so is the failing device's driver if it was its bus
 *   that failed; prepare returns the error.
 * - reboot, the last step before execve(): reboot callbacks in the same
 *   order (driver, then bus), then every registered device that is not
 *   preserved is shut down (its bus's shutdown if the bus has one, else its
 *   driver's), children before parents.  Preserved devices are not shut
 *   down: they stay alive across the exec.  If a reboot callback fails, the
 *   whole update is cancelled.
 * - cancel (PREPARED, FROZEN, a refused freeze, a failed exec): every
 *   prepared device gets bus cancel then driver cancel, in reverse order,
 *   exactly once; preserved flags are cleared.  If the exec itself failed,
 *   devices already shut down stay shut down (one warning says so); the
 *   library checks that the program is an executable file before shutting
 *   anything down, so the usual failures (missing file, no permission)
 *   happen before.
 * - new image: registering a device whose path the old image preserved
 *   marks it preserved; liveupdate_device_reclaim() marks it reclaimed and
 *   gives back the u64 its driver and bus stored.  liveupdate_finish() warns
 *   once for each preserved device that was not reclaimed (or never
 *   registered) and calls finish (driver, then bus) on every preserved
 *   device that is registered, children before parents.
 *
 * Participant order.  Devices are the third and last participant:
 * subsystems, then sessions and files, then devices.  Prepare and freeze run
 * in that order, cancel in reverse (devices first, while the subsystems they
 * may depend on are still prepared), and the devices' reboot step runs last
 * so that shutting down the devices that are not preserved, which cannot be
 * undone, is the very last thing before execve(), after every other
 * participant's reboot step succeeded.
 *
 * Threads.  Register, unregister, request and the listing calls take the
 * state lock for reading, so they never race with a transition; called from
 * a live update callback (or from a liveupdate_device_foreach() callback)
 * they return -EDEADLK.  The flag getters take no lock.  Callbacks run with
 * the state lock held for writing: what they may call is what a
 * subsystem's prepare, cancel or finish may (see struct
 * liveupdate_subsystem_ops in liveupdate.h: the kho_* calls, the getters,
 * liveupdate_session_unpreserve_fd() and the incoming session calls);
 * every other call returns -EDEADLK at once and logs why.
 */
#ifndef LUO_DEVICE_H
#define LUO_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include <luo/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The "devices" node of the handover (LUO_DEVICES_*) is in luo/abi.h. */
/** LIVEUPDATE_DEVICE_NAME_MAX - longest device, bus or driver name. */
#define LIVEUPDATE_DEVICE_NAME_MAX 63
/** LIVEUPDATE_DEVICE_PATH_MAX - bytes of a device path, NUL included. */
#define LIVEUPDATE_DEVICE_PATH_MAX 256
/** LIVEUPDATE_DEVICES_MAX - most devices one handover may preserve. */
#define LIVEUPDATE_DEVICES_MAX (1U << 20)

struct liveupdate_device;
struct luo_device_lu;

/**
 * struct liveupdate_device_cbs - live update callbacks of a bus or driver
 * @prepare: optional; save the device's state while the service still
 *           serves.  May store a u64 (typically a kho offset) in *@data,
 *           which starts at 0; it reaches the new image.  Return 0 or
 *           -errno: an error cancels the update.
 * @reboot: optional; last notification before execve(), in the blackout,
 *          with the u64 prepare stored (the handover is sealed by then, so
 *          it can no longer change).  Return 0 or -errno.
 * @finish: optional; new image, at liveupdate_finish(), with the u64 the
 *          old image stored: drop what is no longer needed, reset the
 *          device if it was not reclaimed.
 * @cancel: optional; the update was cancelled after this device's prepare
 *          succeeded: undo it.  Gets the u64 prepare stored.
 */
struct liveupdate_device_cbs {
	int (*prepare)(struct liveupdate_device *dev, uint64_t *data);
	int (*reboot)(struct liveupdate_device *dev, uint64_t data);
	void (*finish)(struct liveupdate_device *dev, uint64_t data);
	void (*cancel)(struct liveupdate_device *dev, uint64_t data);
};

/**
 * struct liveupdate_bus - a kind of connection devices hang on
 * @name: 1 to 63 characters of [A-Za-z0-9,._+:@-]; recorded in the
 *        handover and checked when the new image reclaims the device.
 * @liveupdate: live update callbacks; NULL if devices on this bus cannot
 *              be preserved (nor can their descendants).
 * @shutdown: optional; called at the exec for each device on this bus that
 *            is not preserved.  Takes precedence over the driver's.
 * @arg: for the owner's use.
 */
struct liveupdate_bus {
	const char *name;
	const struct liveupdate_device_cbs *liveupdate;
	void (*shutdown)(struct liveupdate_device *dev);
	void *arg;
};

/**
 * struct liveupdate_driver - the code that runs a device
 * @name: as for struct liveupdate_bus.
 * @liveupdate: live update callbacks; NULL if its devices cannot be
 *              preserved.
 * @shutdown: optional; called at the exec for each of its devices that is
 *            not preserved, unless the device's bus has a shutdown.
 * @arg: for the owner's use.
 */
struct liveupdate_driver {
	const char *name;
	const struct liveupdate_device_cbs *liveupdate;
	void (*shutdown)(struct liveupdate_device *dev);
	void *arg;
};

/**
 * struct liveupdate_device - one long-lived object of the service
 * @name: 1 to 63 characters of [A-Za-z0-9,._+:@-], unique among the
 *        children of @parent.
 * @parent: a registered device, or NULL for a root.
 * @bus: its bus, or NULL.
 * @driver: its driver, or NULL.
 * @arg: for the owner's use.
 * @lu: the library's state; set it to NULL before registering and leave it
 *      alone while registered.
 *
 * @name, @parent, @bus and @driver (and the structures they point to) must
 * not change while the device is registered.
 */
struct liveupdate_device {
	const char *name;
	struct liveupdate_device *parent;
	const struct liveupdate_bus *bus;
	const struct liveupdate_driver *driver;
	void *arg;
	struct luo_device_lu *lu;
};

/**
 * struct liveupdate_device_info - a device as the listing calls show it
 * @path: its path.
 * @bus: its bus's name, "" if none.
 * @driver: its driver's name, "" if none.
 * @depth: 1 for a root, 2 for its children, and so on.
 * @registered: false for a device the old image preserved that this image
 *              has not registered (yet).
 * @requested: the service asked for it to be preserved.
 * @preserved: old image: prepared for the update; new image: preserved by
 *             the old image.
 * @reclaimed: new image: its driver took it back.
 */
struct liveupdate_device_info {
	char path[LIVEUPDATE_DEVICE_PATH_MAX];
	char bus[LIVEUPDATE_DEVICE_NAME_MAX + 1];
	char driver[LIVEUPDATE_DEVICE_NAME_MAX + 1];
	unsigned int depth;
	bool registered;
	bool requested;
	bool preserved;
	bool reclaimed;
};

/**
 * liveupdate_device_register() - add a device to the tree
 * @dev: the device, @dev->lu NULL; must stay valid until unregistered.
 *
 * Allowed in every state after luo_init(); a device registered during an
 * update in progress is not preserved by it.  In UPDATED, a device whose
 * path, bus and driver match a device the old image preserved is marked
 * preserved; its driver then claims it with liveupdate_device_reclaim().
 *
 * Return: 0; -EINVAL for NULL, a bad name, a bad bus or driver name, a
 * non-NULL @dev->lu or a parent that is not registered; -ENAMETOOLONG if
 * the path is too long; -EEXIST if a registered device has the same path;
 * -ENODEV before luo_init(); -EDEADLK from a callback; -ENOMEM.
 */
int liveupdate_device_register(struct liveupdate_device *dev);

/**
 * liveupdate_device_unregister() - remove a device from the tree
 * @dev: a registered device without registered children.
 *
 * In UPDATED, a preserved device unregistered before liveupdate_finish()
 * gets no finish callback; if it was not reclaimed, finish warns about it.
 *
 * Return: 0; -EINVAL for NULL or a device that is not registered; -EBUSY if
 * it has registered children or is being preserved by an update in
 * progress (cancel first); -ENODEV before luo_init(); -EDEADLK from a
 * callback.
 */
int liveupdate_device_unregister(struct liveupdate_device *dev);

/**
 * liveupdate_device_request() - ask for a device to be preserved, or not
 * @dev: a registered device.
 * @requested: true to preserve it (and its ancestors) at the next update.
 *
 * Return: 0 (also when nothing changes); -EINVAL for NULL, a device that is
 * not registered, or if @dev or an ancestor has a bus or driver without
 * live update callbacks (the log names it); -EBUSY outside NORMAL;
 * -ENODEV before luo_init(); -EDEADLK from a callback.
 */
int liveupdate_device_request(struct liveupdate_device *dev, bool requested);

/**
 * liveupdate_device_request_path() - liveupdate_device_request() by path
 * @path: a registered device's path.
 * @requested: as for liveupdate_device_request().
 *
 * For control tools: the lookup and the change are one step.
 *
 * Return: as liveupdate_device_request(); -ENOENT if no registered device
 * has that path.
 */
int liveupdate_device_request_path(const char *path, bool requested);

/**
 * liveupdate_device_reclaim() - new image: a driver takes its device back
 * @dev: a registered device the old image preserved.
 * @driver_data: if not NULL, set to the u64 its driver stored at prepare.
 * @bus_data: if not NULL, set to the u64 its bus stored at prepare.
 *
 * Return: 0; -ENODATA if this image did not start from a live update or
 * after liveupdate_finish(); -EINVAL for NULL or a device that is not
 * registered; -ENOENT if the old image did not preserve this path;
 * -ESTALE if it did, under another bus or driver; -EALREADY if it was
 * reclaimed already; -EDEADLK from a callback.
 */
int liveupdate_device_reclaim(struct liveupdate_device *dev,
			      uint64_t *driver_data, uint64_t *bus_data);

/**
 * liveupdate_device_requested() - whether @dev is requested
 * @dev: a device.
 *
 * Return: the flag; false for NULL or an unregistered device.
 */
bool liveupdate_device_requested(const struct liveupdate_device *dev);

/**
 * liveupdate_device_preserved() - whether @dev is preserved
 * @dev: a device.
 *
 * Return: the flag; false for NULL or an unregistered device.
 */
bool liveupdate_device_preserved(const struct liveupdate_device *dev);

/**
 * liveupdate_device_reclaimed() - whether @dev was reclaimed
 * @dev: a device.
 *
 * Return: the flag; false for NULL or an unregistered device.
 */
bool liveupdate_device_reclaimed(const struct liveupdate_device *dev);

/**
 * liveupdate_device_path() - the path of a registered device
 * @dev: a device.
 *
 * Return: its path, valid while it is registered; NULL for NULL or an
 * unregistered device.
 */
const char *liveupdate_device_path(const struct liveupdate_device *dev);

/**
 * liveupdate_device_foreach() - list every device
 * @fn: called once per device with its description; a non-zero return
 *      stops the walk and is returned.  @fn must not call the device API
 *      (it gets -EDEADLK) nor change the live update state.
 * @arg: passed to @fn.
 *
 * Registered devices come first, in registration order (parents before
 * children); in UPDATED, devices the old image preserved that are not
 * registered follow, children before parents.
 *
 * Return: 0; what @fn returned; -EINVAL for NULL @fn; -ENODEV before
 * luo_init(); -EDEADLK from a callback.
 */
int liveupdate_device_foreach(
	int (*fn)(const struct liveupdate_device_info *info, void *arg),
	void *arg);

/**
 * liveupdate_device_lookup() - describe the device at @path
 * @path: a device path.
 * @info: filled on success.
 *
 * Finds registered devices and, in UPDATED, devices the old image
 * preserved that are not registered yet.
 *
 * Return: 0; -ENOENT if there is none; -EINVAL for NULL; -ENODEV before
 * luo_init(); -EDEADLK from a callback.
 */
int liveupdate_device_lookup(const char *path,
			     struct liveupdate_device_info *info);

#ifdef __cplusplus
}
#endif

#endif /* LUO_DEVICE_H */
