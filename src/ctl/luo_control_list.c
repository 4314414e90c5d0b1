// SPDX-License-Identifier: MIT
/*
 * The control socket's listings: subsystems, sessions, files and the FDT
 * blobs of the handover, as rows of the wire format
 * (docs/control-protocol.md), built from the iterators the layers below
 * expose.  Devices are listed by luo_control_cmds.c through the public
 * liveupdate_device_foreach().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>

#include "kho_internal.h"
#include "luo_control_internal.h"
#include "luo_internal.h"

static void subsystem_row(const struct luo_subsystem_row *r, void *arg)
{
	struct ctl_buf *b = arg;

	luo_ctl_row_begin(b);
	luo_ctl_row_str(b, "name", r->name);
	luo_ctl_row_str(b, "prepared", r->prepared ? "yes" : "no");
	luo_ctl_row_str(b, "incoming", r->incoming ? "yes" : "no");
	luo_ctl_row_u64(b, "incoming_data", r->incoming_data);
	luo_ctl_row_u64(b, "outgoing_data", r->outgoing_data);
	luo_ctl_row_end(b);
}

void luo_subsystems_describe(struct ctl_buf *b)
{
	luo_subsystems_foreach(subsystem_row, b);
}

static void session_row(const struct luo_session_row *r, void *arg)
{
	struct ctl_buf *b = arg;

	luo_ctl_row_begin(b);
	luo_ctl_row_str(b, "name", r->name);
	luo_ctl_row_str(b, "direction", r->incoming ? "incoming" : "outgoing");
	luo_ctl_row_u64(b, "files", r->nfiles);
	luo_ctl_row_str(b, "status", r->status);
	luo_ctl_row_end(b);
}

static void file_row(const struct luo_file_row *r, void *arg)
{
	struct ctl_buf *b = arg;
	char token[24];

	snprintf(token, sizeof(token), "%#llx", (unsigned long long)r->token);
	luo_ctl_row_begin(b);
	luo_ctl_row_str(b, "session", r->session);
	luo_ctl_row_str(b, "direction", r->incoming ? "incoming" : "outgoing");
	luo_ctl_row_str(b, "token", token);
	luo_ctl_row_str(b, "handler", r->handler);
	luo_ctl_row_str(b, "kind", r->kind);
	luo_ctl_row_u64(b, "inode", r->ino);
	luo_ctl_row_str(b, "status", r->status);
	luo_ctl_row_end(b);
}

void luo_sessions_describe(struct ctl_buf *b, bool files)
{
	if (files)
		luo_session_files_foreach(file_row, b);
	else
		luo_sessions_foreach(session_row, b);
}

static void blob_row(const char *name, uint64_t off, const void *fdt,
		     uint32_t size, void *arg)
{
	struct ctl_buf *b = arg;

	luo_ctl_row_begin(b);
	luo_ctl_row_str(b, "name", name);
	luo_ctl_row_u64(b, "offset", off);
	luo_ctl_row_u64(b, "size", size);
	luo_ctl_buf_printf(b, " hex=");
	for (uint32_t i = 0; i < size; i++)
		luo_ctl_buf_printf(b, "%02x", ((const uint8_t *)fdt)[i]);
	luo_ctl_row_end(b);
}

int luo_kho_blobs_describe(struct ctl_buf *b, bool incoming)
{
	return luo_kho_blobs_foreach(incoming, blob_row, b) ? 0 : -ENODATA;
}
