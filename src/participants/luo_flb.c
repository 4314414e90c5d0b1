// SPDX-License-Identifier: MIT
/*
 * File-Lifecycle-Bound objects: global state that several preserved files
 * of one or more handlers depend on.  Preserved with the first such file,
 * unpreserved with the last; in the new image retrieved once, on demand,
 * and finished with the last dependent file.  Counted per FLB, so each
 * callback runs exactly once however many files share it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_session_internal.h"

/* Links a handler to one FLB it depends on. */
struct luo_flb_link {
	struct liveupdate_flb *flb;
	struct luo_flb_link *next;
};

static struct liveupdate_flb *flbs; /* every registered FLB, once */

/* The incoming table, copied out of the FLB block at adoption. */
static struct {
	struct luo_flb_ser *entries;
	size_t count;
	bool active;
} in;

static struct luo_flb_header_ser *out_block;

static bool flb_valid(const struct liveupdate_flb *flb)
{
	return flb && flb->ops && flb->ops->preserve && flb->ops->retrieve &&
	       flb->ops->finish &&
	       luo_compatible_valid(flb->compatible,
				    LIVEUPDATE_FLB_COMPAT_LENGTH);
}

static struct liveupdate_flb *flb_by_name(const char *compatible)
{
	for (struct liveupdate_flb *f = flbs; f; f = f->next)
		if (!strcmp(f->compatible, compatible))
			return f;
	return NULL;
}

bool luo_flb_handler_has(struct liveupdate_file_handler *fh)
{
	return fh->flbs != NULL;
}

int liveupdate_register_flb(struct liveupdate_file_handler *fh,
			    struct liveupdate_flb *flb)
{
	struct luo_flb_link *l;
	struct liveupdate_flb *other;
	int err;

	if (!fh || !flb_valid(flb)) {
		pr_err("liveupdate_register_flb: needs a handler and an FLB with preserve, retrieve, finish and a compatible of 1 to 47 printable bytes");
		return -EINVAL;
	}
	err = liveupdate_state_read_enter();
	if (err)
		return err;
	if (liveupdate_get_state() != LIVEUPDATE_STATE_NORMAL &&
	    liveupdate_get_state() != LIVEUPDATE_STATE_UPDATED) {
		liveupdate_state_read_exit();
		pr_err("liveupdate_register_flb: not allowed in state %s",
		       liveupdate_state_name(liveupdate_get_state()));
		return -EBUSY;
	}
	err = luo_sessions_lock_enter("liveupdate_register_flb");
	if (err) {
		liveupdate_state_read_exit();
		return err;
	}
	other = flb_by_name(flb->compatible);
	err = 0;
	if (other && other != flb)
		err = -EEXIST;
	for (l = fh->flbs; l && !err; l = l->next)
		if (l->flb == flb)
			err = -EEXIST;
	if (!err && luo_handler_in_use(fh))
		err = -EBUSY;
	if (!err && !(l = malloc(sizeof(*l))))
		err = -ENOMEM;
	if (!err) {
		l->flb = flb;
		l->next = fh->flbs;
		fh->flbs = l;
		if (!other) {
			memset(&flb->outgoing, 0, sizeof(flb->outgoing));
			memset(&flb->incoming, 0, sizeof(flb->incoming));
			flb->users = 0;
			flb->next = flbs;
			flbs = flb;
		}
		flb->users++;
	} else if (err == -EEXIST) {
		pr_err("liveupdate_register_flb: '%s' is already registered for '%s' or by another FLB",
		       flb->compatible, fh->compatible);
	}
	luo_sessions_lock_leave();
	liveupdate_state_read_exit();
	return err;
}

int liveupdate_unregister_flb(struct liveupdate_file_handler *fh,
			      struct liveupdate_flb *flb)
{
	struct luo_flb_link **pp;
	int err = liveupdate_state_read_enter();

	if (err)
		return err;
	err = luo_sessions_lock_enter("liveupdate_unregister_flb");
	if (err) {
		liveupdate_state_read_exit();
		return err;
	}
	err = -ENOENT;
	for (pp = fh ? &fh->flbs : NULL; pp && *pp; pp = &(*pp)->next) {
		struct luo_flb_link *l = *pp;

		if (l->flb != flb)
			continue;
		if (luo_handler_in_use(fh)) {
			err = -EBUSY;
			break;
		}
		*pp = l->next;
		free(l);
		if (--flb->users == 0) {
			for (struct liveupdate_flb **fp = &flbs; *fp;
			     fp = &(*fp)->next) {
				if (*fp == flb) {
					*fp = flb->next;
					break;
				}
			}
		}
		err = 0;
		break;
	}
	luo_sessions_lock_leave();
	liveupdate_state_read_exit();
	return err;
}

static size_t active_outgoing(void)
{
	size_t n = 0;

	for (struct liveupdate_flb *f = flbs; f; f = f->next)
		n += f->outgoing.count > 0;
	return n;
}

static int preserve_one(struct liveupdate_flb *flb)
{
	struct liveupdate_flb_op_args args = {.flb = flb};
	int err;

	if (!flb->outgoing.count) {
		if (active_outgoing() >= LUO_FLB_MAX) {
			pr_err("no room for FLB '%s': %zu FLBs are preserved already",
			       flb->compatible, (size_t)LUO_FLB_MAX);
			return -ENOSPC;
		}
		err = flb->ops->preserve(&args);
		if (err) {
			pr_err("FLB '%s' refused preserve: %s", flb->compatible,
			       strerror(-err));
			return err;
		}
		flb->outgoing.data = args.data;
		flb->outgoing.obj = args.obj;
	}
	flb->outgoing.count++;
	return 0;
}

static void unpreserve_one(struct liveupdate_flb *flb)
{
	struct liveupdate_flb_op_args args = {.flb = flb};

	if (--flb->outgoing.count)
		return;
	args.data = flb->outgoing.data;
	args.obj = flb->outgoing.obj;
	if (flb->ops->unpreserve)
		flb->ops->unpreserve(&args);
	flb->outgoing.data = 0;
	flb->outgoing.obj = NULL;
}

int luo_flb_file_preserve(struct liveupdate_file_handler *fh)
{
	struct luo_flb_link *l;
	int err;

	for (l = fh->flbs; l; l = l->next) {
		err = preserve_one(l->flb);
		if (err)
			goto undo;
	}
	return 0;
undo:
	for (struct luo_flb_link *u = fh->flbs; u != l; u = u->next)
		unpreserve_one(u->flb);
	return err;
}

void luo_flb_file_unpreserve(struct liveupdate_file_handler *fh)
{
	for (struct luo_flb_link *l = fh->flbs; l; l = l->next)
		unpreserve_one(l->flb);
}

/* Find the FLB's incoming entry, once. */
static void incoming_lookup(struct liveupdate_flb *flb)
{
	if (flb->incoming.found || !in.active)
		return;
	for (size_t i = 0; i < in.count; i++) {
		if (!strcmp(in.entries[i].name, flb->compatible)) {
			flb->incoming.found = true;
			flb->incoming.data = in.entries[i].data;
			flb->incoming.count = in.entries[i].count;
			return;
		}
	}
}

static int retrieve_one(struct liveupdate_flb *flb)
{
	struct liveupdate_flb_op_args args = {.flb = flb};
	int err;

	if (flb->incoming.finished || !in.active)
		return -ENODATA;
	if (flb->incoming.retrieved)
		return 0;
	incoming_lookup(flb);
	if (!flb->incoming.found)
		return -ENOENT;
	args.data = flb->incoming.data;
	err = flb->ops->retrieve(&args);
	if (err) {
		pr_err("FLB '%s' could not be retrieved: %s", flb->compatible,
		       strerror(-err));
		return err;
	}
	flb->incoming.obj = args.obj;
	flb->incoming.retrieved = true;
	return 0;
}

static void finish_one(struct liveupdate_flb *flb)
{
	struct liveupdate_flb_op_args args = {.flb = flb};

	if (!flb->incoming.retrieved && retrieve_one(flb)) {
		pr_warn("FLB '%s' is finished without being retrieved",
			flb->compatible);
		flb->incoming.finished = true;
		return;
	}
	args.data = flb->incoming.data;
	args.obj = flb->incoming.obj;
	flb->ops->finish(&args);
	flb->incoming.finished = true;
	flb->incoming.obj = NULL;
}

void luo_flb_file_finish(struct liveupdate_file_handler *fh)
{
	for (struct luo_flb_link *l = fh->flbs; l; l = l->next) {
		struct liveupdate_flb *flb = l->flb;

		incoming_lookup(flb);
		if (!flb->incoming.found || flb->incoming.finished ||
		    !flb->incoming.count)
			continue;
		if (--flb->incoming.count == 0)
			finish_one(flb);
	}
}

/* At liveupdate_finish(): whatever was not finished by its files. */
void luo_flbs_finish_all(void)
{
	for (struct liveupdate_flb *f = flbs; f; f = f->next) {
		incoming_lookup(f);
		if (f->incoming.found && !f->incoming.finished)
			finish_one(f);
	}
	for (size_t i = 0; i < in.count; i++)
		if (!flb_by_name(in.entries[i].name))
			pr_warn("FLB '%s' was preserved but never registered in this image; it is dropped",
				in.entries[i].name);
	free(in.entries);
	memset(&in, 0, sizeof(in));
}

/*
 * Both getters are allowed inside file handler and FLB callbacks (the
 * kernel's use: a handler needs its shared object in preserve or
 * retrieve), which run with the sessions lock held by this thread and
 * the state held: nothing is taken again then.
 */
int liveupdate_flb_get_incoming(struct liveupdate_flb *flb, void **objp)
{
	bool nested = luo_sessions_lock_held();
	int err;

	if (!flb || !objp) {
		pr_err("liveupdate_flb_get_incoming: needs an FLB and a place for its object");
		return -EINVAL;
	}
	if (!nested) {
		err = luo_state_hold();
		if (err)
			return err;
		luo_sessions_lock_enter("liveupdate_flb_get_incoming");
	}
	err = retrieve_one(flb);
	if (!err)
		*objp = flb->incoming.obj;
	if (!nested) {
		luo_sessions_lock_leave();
		luo_state_unhold();
	}
	return err;
}

int liveupdate_flb_get_outgoing(struct liveupdate_flb *flb, void **objp)
{
	bool nested = luo_sessions_lock_held();
	int err = 0;

	if (!flb || !objp) {
		pr_err("liveupdate_flb_get_outgoing: needs an FLB and a place for its object");
		return -EINVAL;
	}
	if (!nested)
		luo_sessions_lock_enter("liveupdate_flb_get_outgoing");
	if (!flb->outgoing.count)
		err = -ENOENT;
	else
		*objp = flb->outgoing.obj;
	if (!nested)
		luo_sessions_lock_leave();
	return err;
}

/* The active FLBs into the (one page) block. */
static void flbs_write(void)
{
	struct luo_flb_ser *e = (void *)(out_block + 1);

	out_block->pgcnt = LUO_FLB_PGCNT;
	out_block->count = active_outgoing();
	for (struct liveupdate_flb *f = flbs; f; f = f->next) {
		if (!f->outgoing.count)
			continue;
		memset(e, 0, sizeof(*e));
		strcpy(e->name, f->compatible);
		e->data = f->outgoing.data;
		e->count = f->outgoing.count;
		e++;
	}
}

int luo_flbs_serialize(uint64_t *flbs_pa)
{
	int err;

	*flbs_pa = 0;
	if (!active_outgoing())
		return 0;
	err = luo_kho_alloc_meta(LUO_FLB_PGCNT * 4096, (void **)&out_block);
	if (err)
		return err;
	flbs_write();
	*flbs_pa = kho_ptr_to_offset(out_block);
	return 0;
}

/*
 * A file was unpreserved during the update: the counts changed, and an
 * FLB may have gone.  Rewritten in place (before the handover is sealed,
 * which checksums it); an FLB that had no file at prepare stays out.
 */
void luo_flbs_reserialize(void)
{
	if (out_block)
		flbs_write();
}

void luo_flbs_unserialize(void)
{
	if (out_block)
		luo_kho_free(out_block);
	out_block = NULL;
}

int luo_flbs_in_parse(uint64_t flbs_pa, char *why, size_t whylen)
{
	const struct luo_flb_header_ser *h;
	const struct luo_flb_ser *e;
	void *block;

	if (!flbs_pa)
		return 0;
	if (luo_kho_incoming_block(flbs_pa, LUO_FLB_PGCNT * 4096, true, &block))
		return luo_reason(
			why, whylen, -EBADMSG,
			"FLB block at %#llx is not a preserved %d-page block",
			(unsigned long long)flbs_pa, LUO_FLB_PGCNT);
	h = block;
	if (h->pgcnt != LUO_FLB_PGCNT || h->count > LUO_FLB_MAX)
		return luo_reason(why, whylen, -EBADMSG,
				  "FLB block claims %llu entries in %llu pages",
				  (unsigned long long)h->count,
				  (unsigned long long)h->pgcnt);
	e = (const void *)(h + 1);
	in.entries = calloc(h->count ? h->count : 1, sizeof(*e));
	if (!in.entries)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < h->count; i++) {
		if (!luo_compatible_valid(e[i].name,
					  LIVEUPDATE_FLB_COMPAT_LENGTH) ||
		    !e[i].count)
			goto bad;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(e[k].name, e[i].name))
				goto bad;
		in.entries[i] = e[i];
	}
	in.count = h->count;
	in.active = true;
	return 0;
bad:
	luo_flbs_forget();
	return luo_reason(why, whylen, -EBADMSG,
			  "FLB block has a malformed or duplicate entry");
}

void luo_flb_links_free(struct liveupdate_file_handler *fh)
{
	while (fh->flbs) {
		struct luo_flb_link *l = fh->flbs;

		fh->flbs = l->next;
		free(l);
	}
}

void luo_flbs_forget(void)
{
	free(in.entries);
	memset(&in, 0, sizeof(in));
	out_block = NULL;
	flbs = NULL;
}
