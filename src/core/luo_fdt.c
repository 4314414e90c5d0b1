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

static const char *const exec_props[] = {LUO_EXEC_PREPARE_NS,
					 LUO_EXEC_FREEZE_NS, LUO_EXEC_EXEC_NS};

int luo_abi_out_create(size_t extra)
{
	size_t size = 1024 + extra;
	int err, node;

	err = luo_kho_alloc_meta(sizeof(*out.ser), (void **)&out.ser);
	if (err)
		goto fail;
	err = luo_kho_alloc_meta(size, &out.fdt);
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
	err = err ?: fdt_setprop_u64(out.fdt, node, LUO_FILES_INHERIT_BASE, 0);
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
	err = luo_kho_publish(LUO_FDT_KHO_ENTRY_NAME, out.fdt);
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
		luo_kho_free(out.fdt);
	}
	if (out.ser)
		luo_kho_free(out.ser);
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

int luo_abi_out_set_carrier(int fd, uint64_t ino, uint64_t count,
			    uint64_t inherit_base)
{
	int node = fdt_subnode_offset(out.fdt, 0, LUO_FILES_NODE);

	if (node < 0 ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_CARRIER_FD,
				    (uint64_t)fd) ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_CARRIER_INO,
				    ino) ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_COUNT, count) ||
	    fdt_setprop_inplace_u64(out.fdt, node, LUO_FILES_INHERIT_BASE,
				    inherit_base)) {
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

/**
 * luo_fdt_get_u64() - fetch a u64 property that must be exactly 8 bytes.
 * @fdt: the blob.
 * @node: node offset.
 * @prop: property name.
 * @val: the value, big-endian in the blob.
 *
 * Return: 0, or -1 if absent or of another size.
 */
int luo_fdt_get_u64(const void *fdt, int node, const char *prop, uint64_t *val)
{
	int len;
	const fdt64_t *p = fdt_getprop(fdt, node, prop, &len);

	if (!p || len != sizeof(*p))
		return -1;
	*val = fdt64_ld(p);
	return 0;
}

/**
 * luo_fdt_check_node() - find a subnode of the root and check its compatible.
 * @fdt: the LUO FDT.
 * @name: node name.
 * @compat: the compatible string this library reads.
 * @node: the node offset found.
 * @why: buffer for the reason of a refusal.
 * @whylen: its size.
 *
 * Return: 0, -EBADMSG (missing) or -EPROTONOSUPPORT (other version).
 */
int luo_fdt_check_node(const void *fdt, const char *name, const char *compat,
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

/**
 * luo_abi_in_parse() - check the incoming LUO FDT's header and exec node.
 * @fdtp: the incoming LUO FDT.
 * @serp: its struct luo_ser, in a checked block.
 * @t: the prepare, freeze and exec times of the exec node.
 * @why: buffer for the reason of a refusal.
 * @whylen: its size.
 *
 * The participants' nodes and blocks are theirs to check; the lifecycle
 * hands them @fdtp and @serp.
 *
 * Return: 0, -EBADMSG or -EPROTONOSUPPORT with @why set.
 */
int luo_abi_in_parse(const void **fdtp, struct luo_ser **serp, uint64_t t[3],
		     char *why, size_t whylen)
{
	const void *fdt;
	struct luo_ser *ser;
	uint64_t ser_off;
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
	if (luo_fdt_get_u64(fdt, 0, LUO_FDT_ABI_HEADER, &ser_off))
		return luo_reason(why, whylen, -EBADMSG,
				  "LUO FDT has no valid '%s'",
				  LUO_FDT_ABI_HEADER);
	if (luo_kho_incoming_block(ser_off, sizeof(*ser), true, (void **)&ser))
		return luo_reason(
			why, whylen, -EBADMSG,
			"'%s' offset %#llx is not a preserved struct luo_ser",
			LUO_FDT_ABI_HEADER, (unsigned long long)ser_off);
	if (!ser->liveupdate_num)
		return luo_reason(why, whylen, -EBADMSG,
				  "live update number is 0");
	/* sessions_pa and flbs_pa are checked by their own participants. */
	err = luo_fdt_check_node(fdt, LUO_EXEC_NODE, LUO_EXEC_COMPATIBLE, &node,
				 why, whylen);
	if (err)
		return err;
	for (int i = 0; i < 3; i++)
		if (luo_fdt_get_u64(fdt, node, exec_props[i], &t[i]))
			return luo_reason(why, whylen, -EBADMSG,
					  "exec node lacks '%s'",
					  exec_props[i]);
	*fdtp = fdt;
	*serp = ser;
	return 0;
}
