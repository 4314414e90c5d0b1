// SPDX-License-Identifier: MIT
/* luoctl's side of the control protocol: connect, send, read replies. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "luo_control_proto.h"
#include "luoctl.h"

/*
 * The next line, without its newline, in a buffer that grows as needed
 * (dump rows are long) and stays valid until the next call; NULL at end of
 * file, on error or timeout (*code says which).
 */
char *client_line(struct client *c, int *code)
{
	static char *line;
	static size_t cap;
	size_t len = 0;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		size_t take = nl ? (size_t)(nl - c->buf) : c->len;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;
		int r;

		if (len + take + 1 > cap) {
			size_t ncap = (len + take + 1) * 2;
			char *nb = realloc(line, ncap);

			if (!nb) {
				*code = EXIT_LOST;
				return NULL;
			}
			line = nb;
			cap = ncap;
		}
		memcpy(line + len, c->buf, take);
		len += take;
		line[len] = '\0';
		if (nl) {
			memmove(c->buf, nl + 1, c->len - take - 1);
			c->len -= take + 1;
			return line;
		}
		c->len = 0;
		r = poll(&p, 1, c->timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			*code = EXIT_TIMEOUT;
			return NULL;
		}
		do
			n = read(c->fd, c->buf, sizeof(c->buf));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			*code = EXIT_LOST;
			return NULL;
		}
		c->len = (size_t)n;
	}
}

int client_connect(struct client *c, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *line, err[32];
	int code = 0, proto = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "luoctl: socket path too long: %s\n", path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		fprintf(stderr,
			"luoctl: cannot reach the service at %s: %s\n"
			"luoctl: is it running and serving its control socket? (-s NAME or -S PATH)\n",
			path, strerror(e));
		return e == EACCES || e == EPERM ? EXIT_DENIED
						 : EXIT_UNREACHABLE;
	}
	line = client_line(c, &code);
	if (!line) {
		fprintf(stderr,
			"luoctl: %s closed the connection before greeting\n",
			path);
		return code;
	}
	if (sscanf(line, "error %31s", err) == 1) {
		fprintf(stderr, "luoctl: refused by the service: %s\n",
			line + 7 + strlen(err));
		return !strcmp(err, "EACCES") ? EXIT_DENIED : EXIT_REFUSED;
	}
	if (sscanf(line, "luo %d %63s %d", &proto, c->name, &c->pid) != 3 ||
	    proto != 1) {
		fprintf(stderr,
			"luoctl: %s speaks an unknown protocol ('%s'); this luoctl speaks version 1\n",
			path, line);
		return EXIT_LOST;
	}
	return 0;
}

int client_send(struct client *c, int argc, char **argv)
{
	struct ctl_buf b = {0};
	const char *p;
	size_t left;
	int err = 0;

	for (int i = 0; i < argc; i++) {
		if (i)
			luo_ctl_buf_printf(&b, " ");
		luo_ctl_buf_encode(&b, argv[i], strlen(argv[i]));
	}
	luo_ctl_buf_printf(&b, "\n");
	if (b.err) {
		luo_ctl_buf_free(&b);
		return EXIT_LOST;
	}
	for (p = b.data, left = b.len; left;) {
		ssize_t n = send(c->fd, p, left, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = EXIT_LOST;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	luo_ctl_buf_free(&b);
	return err;
}

static int parse_row(char *line, struct row *r)
{
	char *words[512];
	int n = luo_ctl_split(line, words, 512);

	if (n < 0)
		return -1;
	r->keys = calloc((size_t)n + 1, sizeof(char *));
	r->vals = calloc((size_t)n + 1, sizeof(char *));
	if (!r->keys || !r->vals)
		return -1;
	r->n = 0;
	for (int i = 0; i < n; i++) {
		char *eq = strchr(words[i], '=');

		if (!eq)
			continue;
		*eq = '\0';
		r->keys[r->n] = strdup(words[i]);
		r->vals[r->n] = strdup(eq + 1);
		r->n++;
	}
	return 0;
}

int client_reply(struct client *c, struct reply *r,
		 void (*on_stage)(const char *name, const char *us, void *arg),
		 void *arg)
{
	int code = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		char *line = client_line(c, &code);

		if (!line)
			return code;
		if (!strncmp(line, "data", 4) && (line[4] == ' ' || !line[4])) {
			struct row *rows = realloc(
				r->rows, (r->nrows + 1) * sizeof(*rows));

			if (!rows)
				return EXIT_LOST;
			r->rows = rows;
			if (parse_row(line + 4, &r->rows[r->nrows]))
				return EXIT_LOST;
			r->nrows++;
		} else if (!strncmp(line, "stage ", 6)) {
			char name[32] = "", us[32] = "";

			if (sscanf(line, "stage %31s us=%31s", name, us) == 2 &&
			    on_stage)
				on_stage(name, us, arg);
		} else if (!strcmp(line, "ok")) {
			r->ok = true;
			return 0;
		} else if (!strncmp(line, "error ", 6)) {
			char *sp = strchr(line + 6, ' ');

			snprintf(r->err_name, sizeof(r->err_name), "%.*s",
				 sp ? (int)(sp - line - 6) : 31, line + 6);
			r->err_msg = strdup(sp ? sp + 1 : "");
			return 0;
		} else {
			return EXIT_LOST;
		}
	}
}

void reply_free(struct reply *r)
{
	for (size_t i = 0; i < r->nrows; i++) {
		for (size_t k = 0; k < r->rows[i].n; k++) {
			free(r->rows[i].keys[k]);
			free(r->rows[i].vals[k]);
		}
		free(r->rows[i].keys);
		free(r->rows[i].vals);
	}
	free(r->rows);
	free(r->err_msg);
	memset(r, 0, sizeof(*r));
}

const char *row_get(const struct row *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->keys[i], key))
			return r->vals[i];
	return NULL;
}
