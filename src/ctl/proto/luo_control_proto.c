// SPDX-License-Identifier: MIT
/* The control protocol's encoding, shared by the server and luoctl. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "luo_control_proto.h"

void luo_ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	*b = (struct ctl_buf){0};
}

void luo_ctl_buf_reset(struct ctl_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int reserve(struct ctl_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->err)
		return b->err;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void luo_ctl_buf_vprintf(struct ctl_buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0 || reserve(b, (size_t)n))
		return;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void luo_ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	luo_ctl_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

static int must_escape(unsigned char c)
{
	return c <= ' ' || c >= 0x7f || c == '%' || c == '=';
}

void luo_ctl_buf_encode(struct ctl_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	if (reserve(b, len * 3))
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (must_escape(c)) {
			b->data[b->len++] = '%';
			b->data[b->len++] = hex[c >> 4];
			b->data[b->len++] = hex[c & 15];
		} else {
			b->data[b->len++] = (char)c;
		}
	}
	b->data[b->len] = '\0';
}

void luo_ctl_row_begin(struct ctl_buf *b)
{
	luo_ctl_buf_printf(b, "data");
}

void luo_ctl_row_str(struct ctl_buf *b, const char *key, const char *val)
{
	luo_ctl_buf_printf(b, " %s=", key);
	luo_ctl_buf_encode(b, val ? val : "", val ? strlen(val) : 0);
}

void luo_ctl_row_u64(struct ctl_buf *b, const char *key, uint64_t val)
{
	luo_ctl_buf_printf(b, " %s=%" PRIu64, key, val);
}

void luo_ctl_row_i64(struct ctl_buf *b, const char *key, int64_t val)
{
	luo_ctl_buf_printf(b, " %s=%" PRId64, key, val);
}

void luo_ctl_row_end(struct ctl_buf *b)
{
	luo_ctl_buf_printf(b, "\n");
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int luo_ctl_decode(char *s)
{
	char *out = s;

	for (; *s; s++) {
		int hi, lo;

		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		hi = hexval(s[1]);
		lo = hi < 0 ? -1 : hexval(s[2]);
		if (lo < 0)
			return -EINVAL;
		*out++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*out = '\0';
	return 0;
}

int luo_ctl_split(char *line, char **words, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		if (n == max)
			return -E2BIG;
		if (luo_ctl_decode(w))
			return -EINVAL;
		words[n++] = w;
	}
	return n;
}

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{EPERM, "EPERM"},
	{ENOENT, "ENOENT"},
	{EIO, "EIO"},
	{E2BIG, "E2BIG"},
	{ENOEXEC, "ENOEXEC"},
	{EBADF, "EBADF"},
	{EAGAIN, "EAGAIN"},
	{ENOMEM, "ENOMEM"},
	{EACCES, "EACCES"},
	{EBUSY, "EBUSY"},
	{EEXIST, "EEXIST"},
	{ENODEV, "ENODEV"},
	{ENOTDIR, "ENOTDIR"},
	{EISDIR, "EISDIR"},
	{EINVAL, "EINVAL"},
	{ENOSPC, "ENOSPC"},
	{ERANGE, "ERANGE"},
	{EDEADLK, "EDEADLK"},
	{ENAMETOOLONG, "ENAMETOOLONG"},
	{ENOSYS, "ENOSYS"},
	{ENODATA, "ENODATA"},
	{ETIMEDOUT, "ETIMEDOUT"},
	{EBADMSG, "EBADMSG"},
	{EOPNOTSUPP, "EOPNOTSUPP"},
	{EADDRINUSE, "EADDRINUSE"},
	{ECONNREFUSED, "ECONNREFUSED"},
	{EALREADY, "EALREADY"},
	{ESTALE, "ESTALE"},
	{ENXIO, "ENXIO"},
	{EPROTONOSUPPORT, "EPROTONOSUPPORT"},
	{ECANCELED, "ECANCELED"},
	{EPROTO, "EPROTO"},
};

const char *luo_ctl_errno_name(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return "EUNKNOWN";
}

int luo_ctl_errno_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (!strcmp(errnames[i].name, name))
			return errnames[i].err;
	return 0;
}

int luo_ctl_default_path(const char *name, char *path, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		n = snprintf(path, len, "/run/luo/%s.sock", name);
	else if (xdg && *xdg == '/')
		n = snprintf(path, len, "%s/luo/%s.sock", xdg, name);
	else
		n = snprintf(path, len, "/tmp/luo-%u/%s.sock",
			     (unsigned)geteuid(), name);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}
