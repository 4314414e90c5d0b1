/* SPDX-License-Identifier: MIT */
/*
 * The control socket's line protocol (docs/control-protocol.md): words
 * separated by one space, each percent-encoded; replies are "data" rows of
 * key=value pairs ended by one "ok" or "error" line.  Shared by the
 * library's server and by luoctl.
 */
#ifndef LUO_SRC_CONTROL_PROTO_H
#define LUO_SRC_CONTROL_PROTO_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Longest request line the server reads, newline included. */
#define CTL_LINE_MAX 65536

/* A growable output buffer; @err is set (-ENOMEM) once a write failed. */
struct ctl_buf {
	char *data;
	size_t len, cap;
	int err;
};

void luo_ctl_buf_free(struct ctl_buf *b);
void luo_ctl_buf_reset(struct ctl_buf *b);
void luo_ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void luo_ctl_buf_vprintf(struct ctl_buf *b, const char *fmt, va_list ap);
/* Append @s percent-encoded: nothing in it can split a word or a pair. */
void luo_ctl_buf_encode(struct ctl_buf *b, const char *s, size_t len);

/* Rows of a reply: "data k=v k=v\n". */
void luo_ctl_row_begin(struct ctl_buf *b);
void luo_ctl_row_str(struct ctl_buf *b, const char *key, const char *val);
void luo_ctl_row_u64(struct ctl_buf *b, const char *key, uint64_t val);
void luo_ctl_row_i64(struct ctl_buf *b, const char *key, int64_t val);
void luo_ctl_row_end(struct ctl_buf *b);

/* Decode @s in place; -EINVAL for a bad escape. */
int luo_ctl_decode(char *s);
/* Split @line in place into at most @max decoded words; -E2BIG, -EINVAL. */
int luo_ctl_split(char *line, char **words, int max);

/*
 * The default socket of service @name: /run/luo/NAME.sock for root,
 * $XDG_RUNTIME_DIR/luo/NAME.sock otherwise, /tmp/luo-UID/NAME.sock without
 * XDG_RUNTIME_DIR.  -ENAMETOOLONG if it does not fit @len.
 */
int luo_ctl_default_path(const char *name, char *path, size_t len);

/* errno <-> its name ("ENOENT"), for error lines. */
const char *luo_ctl_errno_name(int err);
int luo_ctl_errno_from_name(const char *name);

#endif
