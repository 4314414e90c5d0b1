// SPDX-License-Identifier: MIT
/*
 * Devices: the service's long-lived objects as a tree, each with a bus and
 * a driver that may carry live update callbacks (see include/luo/device.h
 * for the rules and docs/devices.md for the semantics).
 *
 * The registry is a list in registration order (parents always come before
 * their children) plus a hash table by path.  It changes only under the
 * state lock held for reading plus dev_lock; the participant hooks run
 * under the state lock held for writing, so they walk it without dev_lock.
 *
 * The preserve list of an update in progress is an array of the requested
 * devices and their ancestors, deepest first.  The incoming side is the
 * "devices" node of the LUO FDT, copied out and checked in luo_init(); see
 * luo_device_abi.c.  This file is the top of the device files: it calls
 * luo_device_abi.c and luo_device_name.c, neither calls it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "luo_device_internal.h"
#include "luo_internal.h"

static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct luo_device_lu *head, *tail;
static struct luo_htable by_path;
static uint64_t next_seq;
static unsigned int mark_gen;

/* The update in progress (PREPARED, FROZEN, the exec). */
static struct {
	struct luo_device_lu **v;
	size_t n;
	size_t nshut; /* devices shut down for the exec */
} plist;

/* Set while a liveupdate_device_foreach() callback runs on this thread. */
static __thread bool in_foreach;

enum { PREP_NONE, PREP_DRIVER, PREP_BOTH };

static bool name_ok(const char *name)
{
	return name &&
	       luo_device_name_valid(
		       name, strnlen(name, LIVEUPDATE_DEVICE_NAME_MAX + 1));
}

static const struct liveupdate_device_cbs *
driver_cbs(const struct liveupdate_device *dev)
{
	return dev->driver ? dev->driver->liveupdate : NULL;
}

static const struct liveupdate_device_cbs *
bus_cbs(const struct liveupdate_device *dev)
{
	return dev->bus ? dev->bus->liveupdate : NULL;
}

static bool registered(const struct liveupdate_device *dev)
{
	return dev && dev->lu && dev->lu->dev == dev;
}

static struct luo_device_lu *find_registered(const char *path)
{
	size_t len = strlen(path);
	struct luo_hnode *n;

	for (n = luo_hash_find(&by_path, luo_device_path_hash(path, len)); n;
	     n = luo_hash_next(n)) {
		struct luo_device_lu *lu =
			luo_hash_entry(n, struct luo_device_lu, hnode);

		if (!strcmp(lu->path, path))
			return lu;
	}
	return NULL;
}

/* Read lock, then dev_lock; -EDEADLK from callbacks, -ENODEV before init. */
static int enter(const char *op)
{
	int err;

	if (in_foreach) {
		pr_err("%s: not allowed from a liveupdate_device_foreach() callback",
		       op);
		return -EDEADLK;
	}
	err = liveupdate_state_read_enter();
	if (err)
		return err;
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UNDEFINED) {
		liveupdate_state_read_exit();
		pr_err("%s: call luo_init() first", op);
		return -ENODEV;
	}
	pthread_mutex_lock(&dev_lock);
	return 0;
}

static void leave(void)
{
	pthread_mutex_unlock(&dev_lock);
	liveupdate_state_read_exit();
}

/* In UPDATED: tie a newly registered device to what the old image left. */
static void match_incoming(struct luo_device_lu *lu)
{
	struct liveupdate_device *dev = lu->dev;
	struct luo_device_in *e = luo_devices_in_find(lu->path);

	if (!e || e->lu)
		return;
	if (strcmp(e->bus, luo_device_bus_name(dev)) ||
	    strcmp(e->driver, luo_device_driver_name(dev))) {
		pr_warn("device '%s' was preserved under bus '%s' and driver '%s' but is now registered under bus '%s' and driver '%s': it cannot be reclaimed",
			lu->path, e->bus, e->driver, luo_device_bus_name(dev),
			luo_device_driver_name(dev));
		return;
	}
	e->lu = lu;
	lu->in = e;
	FLAG_SET(lu->preserved, true);
	FLAG_SET(lu->reclaimed, e->reclaimed);
}

int liveupdate_device_register(struct liveupdate_device *dev)
{
	struct luo_device_lu *lu, *parent;
	size_t plen, len;
	int err;

	if (!dev || !name_ok(dev->name) ||
	    (dev->bus && !name_ok(dev->bus->name)) ||
	    (dev->driver && !name_ok(dev->driver->name))) {
		pr_err("liveupdate_device_register: the device, its bus and its driver need names of 1 to %d characters of [A-Za-z0-9,._+:@-]",
		       LIVEUPDATE_DEVICE_NAME_MAX);
		return -EINVAL;
	}
	if (dev->lu) {
		pr_err("liveupdate_device_register(%s): already registered, or its lu field is not NULL",
		       dev->name);
		return -EINVAL;
	}
	err = enter("liveupdate_device_register");
	if (err)
		return err;
	if (dev->parent && !registered(dev->parent)) {
		pr_err("liveupdate_device_register(%s): its parent '%s' is not registered; register parents first",
		       dev->name,
		       name_ok(dev->parent->name) ? dev->parent->name : "?");
		err = -EINVAL;
		goto out;
	}
	parent = dev->parent ? dev->parent->lu : NULL;
	plen = parent ? strlen(parent->path) + 1 : 0;
	len = plen + strlen(dev->name);
	if (len >= LIVEUPDATE_DEVICE_PATH_MAX) {
		pr_err("liveupdate_device_register(%s): its path would be %zu characters, at most %d are allowed",
		       dev->name, len, LIVEUPDATE_DEVICE_PATH_MAX - 1);
		err = -ENAMETOOLONG;
		goto out;
	}
	lu = calloc(1, sizeof(*lu) + len + 1);
	if (!lu) {
		pr_err("liveupdate_device_register(%s): out of memory",
		       dev->name);
		err = -ENOMEM;
		goto out;
	}
	if (parent) {
		memcpy(lu->path, parent->path, plen - 1);
		lu->path[plen - 1] = '/';
	}
	strcpy(lu->path + plen, dev->name);
	if (find_registered(lu->path)) {
		pr_err("liveupdate_device_register: a device '%s' is already registered",
		       lu->path);
		free(lu);
		err = -EEXIST;
		goto out;
	}
	err = luo_hash_add(&by_path, &lu->hnode,
			   luo_device_path_hash(lu->path, len));
	if (err) {
		pr_err("liveupdate_device_register(%s): out of memory",
		       lu->path);
		free(lu);
		goto out;
	}
	lu->dev = dev;
	lu->seq = next_seq++;
	lu->depth = parent ? parent->depth + 1 : 1;
	lu->prev = tail;
	if (tail)
		tail->next = lu;
	else
		head = lu;
	tail = lu;
	if (parent)
		parent->nchildren++;
	dev->lu = lu;
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED)
		match_incoming(lu);
out:
	leave();
	return err;
}

int liveupdate_device_unregister(struct liveupdate_device *dev)
{
	struct luo_device_lu *lu;
	int err;

	if (!dev) {
		pr_err("liveupdate_device_unregister: NULL device");
		return -EINVAL;
	}
	err = enter("liveupdate_device_unregister");
	if (err)
		return err;
	if (!registered(dev)) {
		pr_err("liveupdate_device_unregister(%s): not registered",
		       name_ok(dev->name) ? dev->name : "?");
		err = -EINVAL;
		goto out;
	}
	lu = dev->lu;
	if (lu->nchildren) {
		pr_err("liveupdate_device_unregister(%s): it still has %u registered child device(s); unregister them first",
		       lu->path, lu->nchildren);
		err = -EBUSY;
		goto out;
	}
	if (lu->listed) {
		pr_err("liveupdate_device_unregister(%s): it is being preserved by the update in progress (state %s); cancel the update first",
		       lu->path, liveupdate_state_name(liveupdate_get_state()));
		err = -EBUSY;
		goto out;
	}
	luo_hash_del(&by_path, &lu->hnode);
	if (lu->prev)
		lu->prev->next = lu->next;
	else
		head = lu->next;
	if (lu->next)
		lu->next->prev = lu->prev;
	else
		tail = lu->prev;
	if (dev->parent)
		dev->parent->lu->nchildren--;
	if (lu->in)
		lu->in->lu = NULL;
	dev->lu = NULL;
	free(lu);
out:
	leave();
	return err;
}

/* Can @lu and all its ancestors be preserved?  The log names the culprit. */
static int check_chain(struct luo_device_lu *lu)
{
	for (struct liveupdate_device *d = lu->dev; d; d = d->parent) {
		const char *what = NULL, *name = NULL;

		if (d->driver && !d->driver->liveupdate) {
			what = "driver";
			name = d->driver->name;
		} else if (d->bus && !d->bus->liveupdate) {
			what = "bus";
			name = d->bus->name;
		}
		if (!what)
			continue;
		if (d == lu->dev)
			pr_err("device '%s' cannot be preserved: its %s '%s' has no live update callbacks; give the %s a struct liveupdate_device_cbs",
			       lu->path, what, name, what);
		else
			pr_err("device '%s' cannot be preserved: its ancestor '%s' has %s '%s' without live update callbacks; give the %s a struct liveupdate_device_cbs",
			       lu->path, d->lu->path, what, name, what);
		return -EINVAL;
	}
	return 0;
}

static int request_locked(struct luo_device_lu *lu, bool requested)
{
	int err;

	if (!luo_state_is(LIVEUPDATE_STATE_NORMAL)) {
		pr_err("device '%s': requests change only in state normal, the service is in state %s; cancel or finish the update first",
		       lu->path, liveupdate_state_name(liveupdate_get_state()));
		return -EBUSY;
	}
	if (requested) {
		err = check_chain(lu);
		if (err)
			return err;
	}
	FLAG_SET(lu->requested, requested);
	return 0;
}

int liveupdate_device_request(struct liveupdate_device *dev, bool requested)
{
	int err;

	if (!dev) {
		pr_err("liveupdate_device_request: NULL device");
		return -EINVAL;
	}
	err = enter("liveupdate_device_request");
	if (err)
		return err;
	if (!registered(dev)) {
		pr_err("liveupdate_device_request(%s): not registered; register it first",
		       name_ok(dev->name) ? dev->name : "?");
		err = -EINVAL;
	} else {
		err = request_locked(dev->lu, requested);
	}
	leave();
	return err;
}

int liveupdate_device_request_path(const char *path, bool requested)
{
	struct luo_device_lu *lu;
	int err;

	if (!path) {
		pr_err("liveupdate_device_request_path: NULL path");
		return -EINVAL;
	}
	err = enter("liveupdate_device_request_path");
	if (err)
		return err;
	lu = find_registered(path);
	if (!lu) {
		pr_err("liveupdate_device_request_path: no device '%.255s' is registered",
		       path);
		err = -ENOENT;
	} else {
		err = request_locked(lu, requested);
	}
	leave();
	return err;
}

int liveupdate_device_reclaim(struct liveupdate_device *dev,
			      uint64_t *driver_data, uint64_t *bus_data)
{
	struct luo_device_lu *lu;
	struct luo_device_in *e;
	int err;

	if (!dev) {
		pr_err("liveupdate_device_reclaim: NULL device");
		return -EINVAL;
	}
	err = enter("liveupdate_device_reclaim");
	if (err)
		return err;
	if (liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED) {
		pr_err("liveupdate_device_reclaim(%s): nothing to reclaim in state %s: this image did not start from a live update, or it finished",
		       name_ok(dev->name) ? dev->name : "?",
		       liveupdate_state_name(liveupdate_get_state()));
		err = -ENODATA;
		goto out;
	}
	if (!registered(dev)) {
		pr_err("liveupdate_device_reclaim(%s): not registered; register it first",
		       name_ok(dev->name) ? dev->name : "?");
		err = -EINVAL;
		goto out;
	}
	lu = dev->lu;
	e = lu->in;
	if (!e) {
		e = luo_devices_in_find(lu->path);
		if (e)
			pr_err("liveupdate_device_reclaim(%s): it was preserved under bus '%s' and driver '%s', not '%s' and '%s'",
			       lu->path, e->bus, e->driver,
			       luo_device_bus_name(dev),
			       luo_device_driver_name(dev));
		else
			pr_err("liveupdate_device_reclaim(%s): the old image did not preserve this device",
			       lu->path);
		err = e ? -ESTALE : -ENOENT;
		goto out;
	}
	if (e->reclaimed) {
		pr_err("liveupdate_device_reclaim(%s): already reclaimed",
		       lu->path);
		err = -EALREADY;
		goto out;
	}
	e->reclaimed = true;
	FLAG_SET(lu->reclaimed, true);
	if (driver_data)
		*driver_data = e->driver_data;
	if (bus_data)
		*bus_data = e->bus_data;
out:
	leave();
	return err;
}

bool liveupdate_device_requested(const struct liveupdate_device *dev)
{
	return registered(dev) && FLAG_GET(dev->lu->requested);
}

bool liveupdate_device_preserved(const struct liveupdate_device *dev)
{
	return registered(dev) && FLAG_GET(dev->lu->preserved);
}

bool liveupdate_device_reclaimed(const struct liveupdate_device *dev)
{
	return registered(dev) && FLAG_GET(dev->lu->reclaimed);
}

const char *liveupdate_device_path(const struct liveupdate_device *dev)
{
	return registered(dev) ? dev->lu->path : NULL;
}

static void info_of(const struct luo_device_lu *lu,
		    struct liveupdate_device_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->path, sizeof(info->path), "%s", lu->path);
	snprintf(info->bus, sizeof(info->bus), "%s",
		 luo_device_bus_name(lu->dev));
	snprintf(info->driver, sizeof(info->driver), "%s",
		 luo_device_driver_name(lu->dev));
	info->depth = lu->depth;
	info->registered = true;
	info->requested = FLAG_GET(lu->requested);
	info->preserved = FLAG_GET(lu->preserved);
	info->reclaimed = FLAG_GET(lu->reclaimed);
}

int liveupdate_device_foreach(
	int (*fn)(const struct liveupdate_device_info *info, void *arg),
	void *arg)
{
	struct liveupdate_device_info info;
	struct luo_device_in *e;
	int err, ret = 0;

	if (!fn) {
		pr_err("liveupdate_device_foreach: NULL callback");
		return -EINVAL;
	}
	err = enter("liveupdate_device_foreach");
	if (err)
		return err;
	in_foreach = true;
	for (struct luo_device_lu *lu = head; lu && !ret; lu = lu->next) {
		info_of(lu, &info);
		ret = fn(&info, arg);
	}
	for (size_t i = 0; !ret && (e = luo_devices_in_get(i)); i++) {
		if (e->lu)
			continue;
		luo_devices_in_info_of(e, &info);
		ret = fn(&info, arg);
	}
	in_foreach = false;
	leave();
	return ret;
}

int liveupdate_device_lookup(const char *path,
			     struct liveupdate_device_info *info)
{
	struct luo_device_lu *lu;
	struct luo_device_in *e;
	int err;

	if (!path || !info) {
		pr_err("liveupdate_device_lookup: needs a path and an info");
		return -EINVAL;
	}
	err = enter("liveupdate_device_lookup");
	if (err)
		return err;
	lu = find_registered(path);
	e = lu ? NULL : luo_devices_in_find(path);
	if (lu)
		info_of(lu, info);
	else if (e)
		luo_devices_in_info_of(e, info);
	else
		err = -ENOENT;
	leave();
	if (err)
		pr_err("liveupdate_device_lookup: no device '%.255s'", path);
	return err;
}

/* ---- the participant ---- */

/* Walk @lu and its ancestors not seen in this pass yet; count them. */
static size_t mark_chain(struct luo_device_lu *lu, struct luo_device_lu **out)
{
	size_t n = 0;

	for (; lu && lu->mark != mark_gen;
	     lu = lu->dev->parent ? lu->dev->parent->lu : NULL) {
		lu->mark = mark_gen;
		if (out)
			out[n] = lu;
		n++;
	}
	return n;
}

/**
 * luo_devices_fdt_size() - room the "devices" node will take
 *
 * Called by the lifecycle, under the state lock held for writing, before it
 * sizes the outgoing LUO FDT.
 *
 * Return: an upper bound in bytes for the requested devices and their
 * ancestors.
 */
size_t luo_devices_fdt_size(void)
{
	size_t bytes = 256;

	mark_gen++;
	for (struct luo_device_lu *lu = head; lu; lu = lu->next) {
		if (!FLAG_GET(lu->requested))
			continue;
		for (struct luo_device_lu *d = lu; d && d->mark != mark_gen;
		     d = d->dev->parent ? d->dev->parent->lu : NULL) {
			d->mark = mark_gen;
			bytes += strlen(d->path) +
				 strlen(luo_device_bus_name(d->dev)) +
				 strlen(luo_device_driver_name(d->dev)) + 3 +
				 16;
		}
	}
	return bytes;
}

static int depth_cmp(const void *a, const void *b)
{
	const struct luo_device_lu *x = *(struct luo_device_lu *const *)a;
	const struct luo_device_lu *y = *(struct luo_device_lu *const *)b;

	if (x->depth != y->depth)
		return x->depth > y->depth ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void plist_destroy(void)
{
	for (size_t i = 0; i < plist.n; i++)
		plist.v[i]->listed = false;
	free(plist.v);
	plist.v = NULL;
	plist.n = 0;
	plist.nshut = 0;
}

/* Requested devices and all their ancestors, each once, deepest first. */
static int plist_build(void)
{
	size_t n = 0;

	mark_gen++;
	for (struct luo_device_lu *lu = head; lu; lu = lu->next)
		if (FLAG_GET(lu->requested))
			n += mark_chain(lu, NULL);
	plist.v = calloc(n ? n : 1, sizeof(*plist.v));
	if (!plist.v) {
		pr_err("cannot build the list of devices to preserve: out of memory");
		return -ENOMEM;
	}
	mark_gen++;
	for (struct luo_device_lu *lu = head; lu; lu = lu->next)
		if (FLAG_GET(lu->requested))
			plist.n += mark_chain(lu, plist.v + plist.n);
	qsort(plist.v, plist.n, sizeof(*plist.v), depth_cmp);
	for (size_t i = 0; i < plist.n; i++)
		plist.v[i]->listed = true;
	return 0;
}

/* Cancel, in reverse, the first @n devices of the preserve list. */
static void cancel_first(size_t n)
{
	while (n--) {
		struct luo_device_lu *lu = plist.v[n];
		struct liveupdate_device *dev = lu->dev;
		const struct liveupdate_device_cbs *cbs;

		if (lu->prepared != PREP_BOTH)
			continue;
		cbs = bus_cbs(dev);
		if (cbs && cbs->cancel)
			cbs->cancel(dev, lu->bus_data);
		cbs = driver_cbs(dev);
		if (cbs && cbs->cancel)
			cbs->cancel(dev, lu->driver_data);
		lu->prepared = PREP_NONE;
		FLAG_SET(lu->preserved, false);
	}
}

static int devices_prepare(void)
{
	const struct liveupdate_device_cbs *cbs;
	size_t i;
	int err;

	err = plist_build();
	if (err)
		return err;
	for (i = 0; i < plist.n; i++) {
		struct luo_device_lu *lu = plist.v[i];
		struct liveupdate_device *dev = lu->dev;

		lu->driver_data = 0;
		lu->bus_data = 0;
		cbs = driver_cbs(dev);
		if (cbs && cbs->prepare &&
		    (err = cbs->prepare(dev, &lu->driver_data))) {
			pr_err("device '%s': driver '%s' refused prepare: %s; the update is cancelled",
			       lu->path, dev->driver->name, strerror(-err));
			goto fail;
		}
		lu->prepared = PREP_DRIVER;
		cbs = bus_cbs(dev);
		if (cbs && cbs->prepare &&
		    (err = cbs->prepare(dev, &lu->bus_data))) {
			pr_err("device '%s': bus '%s' refused prepare: %s; the update is cancelled",
			       lu->path, dev->bus->name, strerror(-err));
			cbs = driver_cbs(dev);
			if (cbs && cbs->cancel)
				cbs->cancel(dev, lu->driver_data);
			lu->prepared = PREP_NONE;
			goto fail;
		}
		lu->prepared = PREP_BOTH;
		FLAG_SET(lu->preserved, true);
	}
	err = luo_devices_out_record(
		(const struct luo_device_lu *const *)plist.v, plist.n);
	if (!err)
		return 0;
fail:
	cancel_first(i);
	plist_destroy();
	return err;
}

/* Devices take no part in freeze: their state was saved at prepare. */
static int devices_freeze(void)
{
	return 0;
}

static void devices_cancel(void)
{
	if (plist.nshut)
		pr_warn("the exec failed after %zu device(s) that were not preserved had been shut down; they stay shut down: the service must set them up again",
			plist.nshut);
	cancel_first(plist.n);
	plist_destroy();
}

/* Shut down every device that does not survive the exec, children first. */
static void shutdown_unpreserved(void)
{
	for (struct luo_device_lu *lu = tail; lu; lu = lu->prev) {
		struct liveupdate_device *dev = lu->dev;

		if (FLAG_GET(lu->preserved))
			continue;
		if (dev->bus && dev->bus->shutdown)
			dev->bus->shutdown(dev);
		else if (dev->driver && dev->driver->shutdown)
			dev->driver->shutdown(dev);
		plist.nshut++;
	}
}

/*
 * The last step before execve().  A refused reboot cancels the whole update
 * (the core cancels every participant, this one included, so every
 * prepared device is told cancel once).
 */
static int devices_reboot(void)
{
	const struct liveupdate_device_cbs *cbs;
	int err;

	for (size_t i = 0; i < plist.n; i++) {
		struct luo_device_lu *lu = plist.v[i];
		struct liveupdate_device *dev = lu->dev;

		cbs = driver_cbs(dev);
		if (cbs && cbs->reboot &&
		    (err = cbs->reboot(dev, lu->driver_data))) {
			pr_err("device '%s': driver '%s' refused reboot: %s; the update is cancelled",
			       lu->path, dev->driver->name, strerror(-err));
			return err;
		}
		cbs = bus_cbs(dev);
		if (cbs && cbs->reboot &&
		    (err = cbs->reboot(dev, lu->bus_data))) {
			pr_err("device '%s': bus '%s' refused reboot: %s; the update is cancelled",
			       lu->path, dev->bus->name, strerror(-err));
			return err;
		}
	}
	shutdown_unpreserved();
	return 0;
}

/* New image: finish every preserved device, children before parents. */
static void devices_finish(void)
{
	struct luo_device_in *e;

	for (size_t i = 0; (e = luo_devices_in_get(i)); i++) {
		struct luo_device_lu *lu = e->lu;
		const struct liveupdate_device_cbs *cbs;

		if (!lu) {
			pr_warn("device '%s' was preserved by the old image but never registered in this one (bus '%s', driver '%s'); its state is dropped",
				e->path, e->bus, e->driver);
			continue;
		}
		if (!e->reclaimed)
			pr_warn("device '%s' was preserved but its driver never reclaimed it; finishing it anyway",
				e->path);
		cbs = driver_cbs(lu->dev);
		if (cbs && cbs->finish)
			cbs->finish(lu->dev, e->driver_data);
		cbs = bus_cbs(lu->dev);
		if (cbs && cbs->finish)
			cbs->finish(lu->dev, e->bus_data);
	}
	luo_devices_in_release();
}

/**
 * luo_devices_forget() - luo_exit(): drop the registry, the preserve list
 * and the incoming devices
 *
 * The devices stay the service's; their lu fields are cleared so they can
 * be registered again after a new luo_init().
 */
void luo_devices_forget(void)
{
	struct luo_device_lu *lu, *next;

	pthread_mutex_lock(&dev_lock);
	luo_devices_in_release();
	plist_destroy();
	for (lu = head; lu; lu = next) {
		next = lu->next;
		lu->dev->lu = NULL;
		free(lu);
	}
	head = tail = NULL;
	luo_hash_free(&by_path);
	pthread_mutex_unlock(&dev_lock);
}

/* The devices' entry in the lifecycle's participants[]. */
const struct luo_participant luo_devices_participant = {
	.name = "devices",
	.prepare = devices_prepare,
	.freeze = devices_freeze,
	.cancel = devices_cancel,
	.finish = devices_finish,
	.reboot = devices_reboot,
	.release_incoming = luo_devices_in_release,
	.forget = luo_devices_forget,
};
