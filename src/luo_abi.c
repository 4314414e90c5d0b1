// SPDX-License-Identifier: MIT
/*
 * The LUO client of the handover (ABI v2): an FDT with compatible "luo-v2"
 * whose "luo-abi-header" holds the offset of struct luo_ser, a
 * "subsystems" node with one u64 per subsystem, and an "exec" node with
 * the update's timestamps (the "devices" node is luo_device_abi.c's).
 * Built at prepare, sealed at reboot, and read
 * back, fully checked, by the next image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"

static struct {
	void *fdt;
	struct luo_ser *ser;
} out;

/* Incoming subsystem data, copied out of the FDT at adoption. */
struct incoming_subsystem {
	char name[KHO_NAME_MAX + 1];
	uint64_t data;
	bool claimed;
};

static struct {
	struct incoming_subsystem *subsys;
	size_t nsubsys;
	bool active;
} in;

static const char *const exec_props[] = {"prepare-ns", "freeze-ns", "exec-ns"};

int luo_abi_out_create(void)
{
	size_t nsubsys, names = luo_subsystems_names_len(&nsubsys);
	size_t size = 1024 + names + nsubsys * 32 + luo_devices_fdt_size();
	int err, node;

	err = kho_alloc_meta(sizeof(*out.ser), (void **)&out.ser);
	if (err)
		goto fail;
	err = kho_alloc_meta(size, &out.fdt);
	if (err)
		goto fail;
	out.ser->liveupdate_num = luo_global.liveupdate_num + 1;
	out.ser->sessions_pa = 0;
	out.ser->flbs_pa = 0;

	err = fdt_create_empty_tree(out.fdt, (int)size);
	err = err
		      ?: fdt_setprop_string(out.fdt, 0, "compatible",
					    LUO_FDT_COMPATIBLE);
	err = err
		      ?: fdt_setprop_u64(out.fdt, 0, LUO_FDT_ABI_HEADER,
					 kho_ptr_to_offset(out.ser));
	node = err ?: fdt_add_subnode(out.fdt, 0, LUO_SUBSYSTEMS_NODE);
	err = node < 0 ? node
		       : fdt_setprop_string(out.fdt, node, "compatible",
					    LUO_SUBSYSTEMS_COMPATIBLE);
	node = err ?: fdt_add_subnode(out.fdt, 0, LUO_FILES_NODE);
	err = node < 0 ? node
		       : fdt_setprop_string(out.fdt, node, "compatible",
					    LUO_FILES_COMPATIBLE);
	err = err ?: fdt_setprop_u64(out.fdt, node, LUO_FILES_CARRIER_FD, 0);
	err = err ?: fdt_setprop_u64(out.fdt, node, LUO_FILES_CARRIER_INO, 0);
	err = err ?: fdt_setprop_u64(out.fdt, node, LUO_FILES_COUNT, 0);
	node = err ?: fdt_add_subnode(out.fdt, 0, LUO_EXEC_NODE);
	err = node < 0 ? node
		       : fdt_setprop_string(out.fdt, node, "compatible",
					    LUO_EXEC_COMPATIBLE);
	for (size_t i = 0; !err && i < 3; i++)
		err = fdt_setprop_u64(out.fdt, node, exec_props[i], 0);
	if (err) {
		pr_err("cannot build the LUO FDT: %s", fdt_strerror(err));
		err = -ENOSPC;
		goto fail;
	}
	err = kho_publish(LUO_FDT_KHO_ENTRY_NAME, out.fdt);
	if (err)
		goto fail;
	return 0;
fail:
	luo_abi_out_destroy();
	return err;
}

void *luo_abi_out_fdt(void)
{
	return out.fdt;
}

void luo_abi_out_destroy(void)
{
	if (out.fdt) {
		kho_remove_subtree(out.fdt);
		kho_free(out.fdt);
	}
	if (out.ser)
		kho_free(out.ser);
	out.fdt = NULL;
	out.ser = NULL;
}

int luo_abi_out_set_subsystem(const char *name, uint64_t data)
{
	int node = fdt_subnode_offset(out.fdt, 0, LUO_SUBSYSTEMS_NODE);
	int err = node < 0 ? node : fdt_setprop_u64(out.fdt, node, name, data);

	if (err) {
		pr_err("cannot record subsystem '%s' in the LUO FDT: %s", name,
		       fdt_strerror(err));
		return -ENOSPC;
	}
	return 0;
}

int luo_abi_out_set_carrier(int fd, uint64_t ino, uint64_t count)
{
	int node = fdt_subnode_offset(out.fdt, 0, LUO_FILES_NODE);

	if (node < 0 ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_CARRIER_FD,
				    (uint64_t)fd) ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_CARRIER_INO,
				    ino) ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_COUNT, count)) {
		pr_err("cannot record the carrier in the LUO FDT's '%s' node",
		       LUO_FILES_NODE);
		return -ENOSPC;
	}
	return 0;
}

void luo_abi_out_set_sessions(uint64_t sessions_pa, uint64_t flbs_pa)
{
	if (!out.ser)
		return;
	out.ser->sessions_pa = sessions_pa;
	out.ser->flbs_pa = flbs_pa;
}

int luo_abi_out_set_time(const char *prop, uint64_t ns)
{
	int node = fdt_subnode_offset(out.fdt, 0, LUO_EXEC_NODE);

	if (node < 0 || fdt_setprop_inplace_u64(out.fdt, node, prop, ns))
		return -ENOSPC;
	return 0;
}

/* Fetch a u64 property that must be exactly 8 bytes. */
static int get_u64(const void *fdt, int node, const char *prop, uint64_t *val)
{
	int len;
	const fdt64_t *p = fdt_getprop(fdt, node, prop, &len);

	if (!p || len != sizeof(*p))
		return -1;
	*val = fdt64_ld(p);
	return 0;
}

static int check_node(const void *fdt, const char *name, const char *compat,
		      int *node, char *why, size_t whylen)
{
	const char *have;

	*node = fdt_subnode_offset(fdt, 0, name);
	if (*node < 0)
		return luo_reason(why, whylen, -EBADMSG,
				  "LUO FDT has no '%s' node", name);
	if (fdt_node_check_compatible(fdt, *node, compat)) {
		have = fdt_getprop(fdt, *node, "compatible", NULL);
		return luo_reason(
			why, whylen, -EPROTONOSUPPORT,
			"LUO node '%s' is '%.32s', this library reads '%s'",
			name, have ? have : "(none)", compat);
	}
	return 0;
}

static struct incoming_subsystem *in_find(const char *name);

static int parse_subsystems(const void *fdt, int node, char *why, size_t whylen)
{
	int prop;
	size_t n = 0;

	fdt_for_each_property_offset(prop, fdt, node)
		n++;
	in.subsys = calloc(n ? n : 1, sizeof(*in.subsys));
	if (!in.subsys)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	fdt_for_each_property_offset(prop, fdt, node) {
		const char *name;
		const fdt64_t *val;
		int len;

		val = fdt_getprop_by_offset(fdt, prop, &name, &len);
		if (!val || !name)
			return luo_reason(why, whylen, -EBADMSG,
					  "unreadable subsystems property");
		if (!strcmp(name, "compatible"))
			continue;
		if (!kho_name_valid(name) || len != sizeof(*val))
			return luo_reason(
				why, whylen, -EBADMSG,
				"subsystem entry '%.63s' is malformed", name);
		if (in_find(name))
			return luo_reason(why, whylen, -EBADMSG,
					  "subsystem '%s' appears twice", name);
		strcpy(in.subsys[in.nsubsys].name, name);
		in.subsys[in.nsubsys].data = fdt64_ld(val);
		in.nsubsys++;
	}
	return 0;
}

int luo_abi_in_parse(char *why, size_t whylen)
{
	const void *fdt;
	struct luo_ser *ser;
	uint64_t ser_off, t[3];
	const char *have;
	int node, err;

	if (kho_retrieve_subtree(LUO_FDT_KHO_ENTRY_NAME, &fdt))
		return luo_reason(why, whylen, -EBADMSG,
				  "handover has no '%s' subtree",
				  LUO_FDT_KHO_ENTRY_NAME);
	if (fdt_node_check_compatible(fdt, 0, LUO_FDT_COMPATIBLE)) {
		have = fdt_getprop(fdt, 0, "compatible", NULL);
		return luo_reason(why, whylen, -EPROTONOSUPPORT,
				  "LUO ABI is '%.32s', this library reads '%s'",
				  have ? have : "(none)", LUO_FDT_COMPATIBLE);
	}
	if (get_u64(fdt, 0, LUO_FDT_ABI_HEADER, &ser_off))
		return luo_reason(why, whylen, -EBADMSG,
				  "LUO FDT has no valid '%s'",
				  LUO_FDT_ABI_HEADER);
	if (kho_incoming_block(ser_off, sizeof(*ser), true, (void **)&ser))
		return luo_reason(
			why, whylen, -EBADMSG,
			"'%s' offset %#llx is not a preserved struct luo_ser",
			LUO_FDT_ABI_HEADER, (unsigned long long)ser_off);
	if (!ser->liveupdate_num)
		return luo_reason(why, whylen, -EBADMSG,
				  "live update number is 0");
	/* sessions_pa and flbs_pa are checked by their own parsers below. */
	err = check_node(fdt, LUO_EXEC_NODE, LUO_EXEC_COMPATIBLE, &node, why,
			 whylen);
	if (err)
		return err;
	for (int i = 0; i < 3; i++)
		if (get_u64(fdt, node, exec_props[i], &t[i]))
			return luo_reason(why, whylen, -EBADMSG,
					  "exec node lacks '%s'",
					  exec_props[i]);
	err = check_node(fdt, LUO_SUBSYSTEMS_NODE, LUO_SUBSYSTEMS_COMPATIBLE,
			 &node, why, whylen);
	err = err ?: parse_subsystems(fdt, node, why, whylen);
	err = err ?: luo_sessions_in_parse(fdt, ser->sessions_pa, why, whylen);
	err = err ?: luo_flbs_in_parse(ser->flbs_pa, why, whylen);
	err = err ?: luo_devices_in_parse(fdt, why, whylen);
	if (err) {
		luo_sessions_in_refuse();
		luo_flbs_forget();
		luo_abi_in_release();
		return err;
	}
	luo_global.liveupdate_num = ser->liveupdate_num;
	luo_global.timing.prepare_ns = t[0];
	luo_global.timing.freeze_ns = t[1];
	luo_global.timing.exec_ns = t[2];
	in.active = true;
	return 0;
}

void luo_abi_in_release(void)
{
	luo_devices_in_release();
	free(in.subsys);
	in.subsys = NULL;
	in.nsubsys = 0;
	in.active = false;
}

static struct incoming_subsystem *in_find(const char *name)
{
	for (size_t i = 0; name && i < in.nsubsys; i++)
		if (!strcmp(in.subsys[i].name, name))
			return &in.subsys[i];
	return NULL;
}

int luo_abi_in_subsystem(const char *name, uint64_t *data)
{
	struct incoming_subsystem *s;

	if (!in.active)
		return -ENODATA;
	s = in_find(name);
	if (!s)
		return -ENOENT;
	*data = s->data;
	return 0;
}

void luo_abi_in_subsystem_mark(const char *name)
{
	struct incoming_subsystem *s = in_find(name);

	if (s)
		s->claimed = true;
}

void luo_abi_in_warn_unclaimed(void)
{
	for (size_t i = 0; i < in.nsubsys; i++)
		if (!in.subsys[i].claimed)
			pr_warn("subsystem '%s' left data (%#llx) but never registered in this image; it is dropped",
				in.subsys[i].name,
				(unsigned long long)in.subsys[i].data);
}
