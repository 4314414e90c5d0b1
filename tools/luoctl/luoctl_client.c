// SPDX-License-Identifier: MIT
/*
 * luoctl's side of the control protocol: connect, send, read replies.
 * Every wait is bounded by one deadline for the whole command, so a peer
 * that drips a byte at a time cannot stretch --timeout; a reply is never
 * read past CTL_REPLY_MAX.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "luo_control_proto.h"
#include "luoctl.h"

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Milliseconds left before the deadline, at least 1 while any is left;
 * 0 once it passed; -1 without a deadline. */
static int left_ms(const struct client *c)
{
	uint64_t now = mono_ns();

	if (!c->deadline_ns)
		return -1;
	if (now >= c->deadline_ns)
		return 0;
	return (int)((c->deadline_ns - now + 999999) / 1000000);
}

/* Wait for @events on the socket until the deadline: 0, or EXIT_*. */
static int wait_for(struct client *c, short events)
{
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = events};
		int ms = left_ms(c), r;

		if (ms == 0)
			return EXIT_TIMEOUT;
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r == 0)
			return EXIT_TIMEOUT;
		if (errno != EINTR)
			return EXIT_LOST;
	}
}

/*
 * The next line, without its newline, in a buffer that grows as needed
 * (dump rows are long), up to CTL_REPLY_MAX, and stays valid until the
 * next call; NULL at end of file, on error, at the deadline or for a line
 * past the cap (*code says which).
 */
char *client_line(struct client *c, int *code)
{
	static char *line;
	static size_t cap;
	size_t len = 0;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		size_t take = nl ? (size_t)(nl - c->buf) : c->len;
		ssize_t n;

		if (len + take > CTL_REPLY_MAX) {
			if (!c->quiet)
				fprintf(stderr,
					"luoctl: the service sent a line longer than %u bytes; giving up\n",
					CTL_REPLY_MAX);
			*code = EXIT_LOST;
			return NULL;
		}
		if (len + take + 1 > cap) {
			size_t ncap = (len + take + 1) * 2;
			char *nb;

			if (ncap > CTL_REPLY_MAX + 1)
				ncap = CTL_REPLY_MAX + 1;
			nb = realloc(line, ncap);
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
		*code = wait_for(c, POLLIN);
		if (*code)
			return NULL;
		do
			n = recv(c->fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0) {
			*code = EXIT_LOST;
			return NULL;
		}
		c->len = (size_t)n;
	}
}

/* Why a connect failed, in words that say what to do. */
static int connect_failed(const struct client *c, const char *path, int e)
{
	struct stat st;

	if (c->quiet)
		;
	else if (e == EACCES || e == EPERM)
		fprintf(stderr,
			"luoctl: permission denied on %s: %s; only the service's own user%s and root may control it: run luoctl as that user\n",
			path, strerror(e),
			!stat(path, &st) ? " (the socket's owner)" : "");
	else if (e == EAGAIN || e == ETIMEDOUT)
		fprintf(stderr,
			"luoctl: the service at %s does not accept connections in time (--timeout)\n",
			path);
	else if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr,
			"luoctl: no service listens at %s (%s): is it running and serving its control socket? ('luoctl list' shows those that are)\n",
			path,
			e == ENOENT ? "no such socket" : "nobody listens");
	else
		fprintf(stderr, "luoctl: cannot reach the service at %s: %s\n",
			path, strerror(e));
	if (e == EACCES || e == EPERM)
		return EXIT_DENIED;
	return e == EAGAIN || e == ETIMEDOUT ? EXIT_TIMEOUT : EXIT_UNREACHABLE;
}

int client_connect(struct client *c, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *line, err[32];
	int code = 0, proto = 0, ms = left_ms(c);

	c->path = path;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "luoctl: socket path too long: %s\n", path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return connect_failed(c, path, errno);
	/* A listener with a full backlog makes connect() wait: bound it. */
	if (ms > 0) {
		struct timeval tv = {.tv_sec = ms / 1000,
				     .tv_usec = (ms % 1000) * 1000};

		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(c->fd);
		c->fd = -1;
		return connect_failed(c, path, e == EINPROGRESS ? EAGAIN : e);
	}
	line = client_line(c, &code);
	if (!line) {
		if (!c->quiet)
			fprintf(stderr,
				code == EXIT_TIMEOUT
					? "luoctl: %s sent no greeting in time (--timeout)\n"
					: "luoctl: %s closed the connection before greeting\n",
				path);
		return code;
	}
	if (sscanf(line, "error %31s", err) == 1) {
		if (!c->quiet)
			fprintf(stderr, "luoctl: refused by the service: %s\n",
				line + 7 + strlen(err));
		return !strcmp(err, "EACCES") ? EXIT_DENIED : EXIT_REFUSED;
	}
	if (sscanf(line, "luo %d %63s %d", &proto, c->name, &c->pid) != 3 ||
	    proto != 1) {
		if (!c->quiet)
			fprintf(stderr,
				"luoctl: %s speaks an unknown protocol ('%.80s'); this luoctl speaks version 1\n",
				path, line);
		return EXIT_LOST;
	}
	return 0;
}

void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
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
		ssize_t n = send(c->fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			err = wait_for(c, POLLOUT);
			if (err)
				break;
			continue;
		}
		if (n <= 0) {
			/* The service may have answered before it closed:
			 * the reply is read all the same. */
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
		if (!r->keys[r->n] || !r->vals[r->n])
			return -1;
		r->n++;
	}
	return 0;
}

int client_reply(struct client *c, struct reply *r,
		 void (*on_stage)(const char *name, const char *us, void *arg),
		 void *arg)
{
	size_t total = 0;
	int code = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		char *line = client_line(c, &code);

		if (!line)
			return code;
		total += strlen(line) + 1;
		if (total > CTL_REPLY_MAX) {
			if (!c->quiet)
				fprintf(stderr,
					"luoctl: the service's reply is longer than %u bytes; giving up\n",
					CTL_REPLY_MAX);
			return EXIT_LOST;
		}
		if (!strncmp(line, "data", 4) && (line[4] == ' ' || !line[4])) {
			struct row *rows = realloc(
				r->rows, (r->nrows + 1) * sizeof(*rows));

			if (!rows)
				return EXIT_LOST;
			r->rows = rows;
			memset(&r->rows[r->nrows], 0, sizeof(*rows));
			r->nrows++;
			if (parse_row(line + 4, &r->rows[r->nrows - 1]))
				return EXIT_LOST;
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
	for (size_t i = 0; r && i < r->n; i++)
		if (!strcmp(r->keys[i], key))
			return r->vals[i];
	return NULL;
}

const char *row_show(const struct row *r, const char *key)
{
	const char *v = row_get(r, key);

	return v ? v : "-";
}
