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

	ctl_row_begin(b);
	ctl_row_str(b, "name", r->name);
	ctl_row_str(b, "prepared", r->prepared ? "yes" : "no");
	ctl_row_str(b, "incoming", r->incoming ? "yes" : "no");
	ctl_row_u64(b, "incoming_data", r->incoming_data);
	ctl_row_u64(b, "outgoing_data", r->outgoing_data);
	ctl_row_end(b);
}

void luo_subsystems_describe(struct ctl_buf *b)
{
	luo_subsystems_foreach(subsystem_row, b);
}

static void session_row(const struct luo_session_row *r, void *arg)
{
	struct ctl_buf *b = arg;

	ctl_row_begin(b);
	ctl_row_str(b, "name", r->name);
	ctl_row_str(b, "direction", r->incoming ? "incoming" : "outgoing");
	ctl_row_u64(b, "files", r->nfiles);
	ctl_row_str(b, "status", r->status);
	ctl_row_end(b);
}

static void file_row(const struct luo_file_row *r, void *arg)
{
	struct ctl_buf *b = arg;
	char token[24];

	snprintf(token, sizeof(token), "%#llx", (unsigned long long)r->token);
	ctl_row_begin(b);
	ctl_row_str(b, "session", r->session);
	ctl_row_str(b, "direction", r->incoming ? "incoming" : "outgoing");
	ctl_row_str(b, "token", token);
	ctl_row_str(b, "handler", r->handler);
	ctl_row_str(b, "kind", r->kind);
	ctl_row_u64(b, "inode", r->ino);
	ctl_row_str(b, "status", r->status);
	ctl_row_end(b);
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

	ctl_row_begin(b);
	ctl_row_str(b, "name", name);
	ctl_row_u64(b, "offset", off);
	ctl_row_u64(b, "size", size);
	ctl_buf_printf(b, " hex=");
	for (uint32_t i = 0; i < size; i++)
		ctl_buf_printf(b, "%02x", ((const uint8_t *)fdt)[i]);
	ctl_row_end(b);
}

int kho_blobs_describe(struct ctl_buf *b, bool incoming)
{
	return kho_blobs_foreach(incoming, blob_row, b) ? 0 : -ENODATA;
}
