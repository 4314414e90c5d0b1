/* SPDX-License-Identifier: MIT */
/* luoctl: what its files share. */
#ifndef LUOCTL_H
#define LUOCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest socket path (sun_path). */
#define PATH_MAX_LUO 108

/* Exit codes (luoctl(1), EXIT STATUS). */
enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,     /* the service answered with an error */
	EXIT_USAGE = 2,	      /* bad command line */
	EXIT_UNREACHABLE = 3, /* no service at that socket */
	EXIT_DENIED = 4,      /* the service does not serve this user */
	EXIT_LOST = 5,	      /* connection lost or garbled mid-command */
	EXIT_TIMEOUT = 6,     /* no answer in time */
	EXIT_ROLLED_BACK = 7, /* spawn mode: the update rolled back */
};

/* One "data" row: decoded key/value pairs. */
struct row {
	size_t n;
	char **keys, **vals;
};

/* A whole reply: rows, then "ok" or "error NAME message". */
struct reply {
	struct row *rows;
	size_t nrows;
	bool ok;
	char err_name[32];
	char *err_msg;
};

struct client {
	int fd;
	const char *path;
	char name[64]; /* the service's, from its greeting */
	int pid;
	char buf[1 << 16];
	size_t len;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC: the whole command's */
	bool quiet;	      /* no messages (luoctl list probes) */
};

/* luoctl_client.c */
uint64_t mono_ns(void);
int client_connect(struct client *c, const char *path);
void client_close(struct client *c);
int client_send(struct client *c, int argc, char **argv);
/* Next line, without its newline, valid until the next call; NULL at
 * EOF/error/timeout or past CTL_REPLY_MAX (*code says which). */
char *client_line(struct client *c, int *code);
int client_reply(struct client *c, struct reply *r,
		 void (*on_stage)(const char *name, const char *us, void *arg),
		 void *arg);
void reply_free(struct reply *r);
const char *row_get(const struct row *r, const char *key);
/* A value to print: the row's, or "-" when the service did not send it. */
const char *row_show(const struct row *r, const char *key);

/* luoctl_find.c: where services listen (the library's path rule). */
/* The socket of service @name; EXIT_* on failure (printed). */
int find_service(const char *name, char *path, size_t len);
/* Call @fn for every socket file in the directories services use. */
void for_each_service_socket(void (*fn)(const char *path, unsigned uid,
					void *arg),
			     void *arg);

/* luoctl_print.c: tables for people. */
void print_table(const struct reply *r, const char *const *cols);

/* luoctl_json.c: typed JSON (docs/luoctl-json.md). */
enum jtype { J_STR, J_INT, J_SINT, J_BOOL }; /* J_INT: unsigned */
struct jfield {
	const char *key;
	enum jtype type;
};
struct json_object;
/* An object with every field of @fields, null where @row lacks it. */
struct json_object *json_row(const struct row *row,
			     const struct jfield *fields);
/* An array of json_row() for every row. */
struct json_object *json_rows(const struct reply *r,
			      const struct jfield *fields);
/* Print @o on one line and free it. */
void json_print(struct json_object *o);

/* luoctl_txn.c: spawn mode, trials, rollback and commit. */
#include <sys/types.h>
struct txn_opts {
	bool spawn, mode_given;
	unsigned long long trial_ms, deadline_ms;
	const char *health;
};
long long parse_duration(const char *s);
/* Options at argv[*i]: 0 (maybe none), or EXIT_USAGE after a message. */
int txn_parse_opts(int argc, char **argv, int *i, struct txn_opts *o);
/* The request's option words (at most 4); bufs holds their text. */
int txn_request_words(const struct txn_opts *o, char **req, char bufs[][48]);
pid_t txn_start_prober(const struct txn_opts *o, const char *sock, int *go);
void txn_stop_prober(pid_t pid, int go);
int cmd_txn(struct client *c, const char *sock, int argc, char **argv,
	    bool json);

/* luoctl_stop.c: SIGTERM to the service, return once it has ended. */
int cmd_stop(struct client *c, bool json);
int service_pidfd(pid_t pid);
int wait_old_image_exit(int pidfd, pid_t pid, uint64_t deadline_ns);
bool pidfd_wait_exit(int pidfd, uint64_t deadline_ns);

/* luoctl_dts.c */
int print_dts(const void *fdt, size_t size, const char *label);

#endif
