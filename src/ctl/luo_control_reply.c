// SPDX-License-Identifier: MIT
/*
 * The last line of every answer on the control socket: "ok", or "error"
 * with the errno's name and what to do (docs/control-protocol.md).  The
 * bottom of the control layer: it calls nothing of it.
 */
#define _GNU_SOURCE
#include <stdarg.h>

#include "luo_control_internal.h"

void luo_ctl_error(struct ctl_buf *out, int err, const char *fmt, ...)
{
	va_list ap;

	luo_ctl_buf_printf(out, "error %s ", luo_ctl_errno_name(err));
	va_start(ap, fmt);
	luo_ctl_buf_vprintf(out, fmt, ap);
	va_end(ap);
	luo_ctl_buf_printf(out, "\n");
}

void luo_ctl_ok(struct ctl_buf *out)
{
	luo_ctl_buf_printf(out, "ok\n");
}
