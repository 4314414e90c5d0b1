/* SPDX-License-Identifier: MIT */
/* The control socket server: what luo_control.c and luo_control_cmds.c
 * share. */
#ifndef LUO_SRC_CONTROL_INTERNAL_H
#define LUO_SRC_CONTROL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include <luo/control.h>
#include <luo/session.h>
#include <luo/update.h>

#include "luo_control_proto.h"

/* The session that carries the control socket over an update. */
#define CTL_SESSION "luo.control"
#define CTL_TOKEN_LISTENER 1
#define CTL_TOKEN_REQUESTER 2

struct ctl_conn {
	int fd;
	char *in;
	size_t inlen;
	struct ctl_conn *next;
};

struct luo_control {
	char name[LUO_CONTROL_NAME_MAX + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned int flags;
	bool default_path; /* its directory must be ours alone */
	int listen_fd;
	int epfd;
	int stop_fd; /* eventfd waking the thread to stop */
	pthread_t thread;
	bool have_thread;
	pthread_mutex_t lock; /* one command at a time */
	struct ctl_conn *conns;
	struct luo_session *session; /* outgoing CTL_SESSION */
	/* The update this image came from, if it did. */
	bool updated;
	uint64_t update_realtime_ns, blackout_ns;
};

/* luo_control.c */
int luo_ctl_send_all(int fd, const char *buf, size_t len);
int luo_ctl_preserve_requester(struct luo_control *ctl, int fd);
void luo_ctl_unpreserve_requester(struct luo_control *ctl);

/* luo_control_cmds.c: run one request; writes rows and the final line. */
void luo_ctl_run(struct luo_control *ctl, struct ctl_conn *conn, char **words,
		 int nwords, struct ctl_buf *out);
void luo_ctl_error(struct ctl_buf *out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* luo_control_list.c: the listings, formatted from the lower layers'
 * iterators. */
void luo_sessions_describe(struct ctl_buf *b, bool files);
void luo_subsystems_describe(struct ctl_buf *b);
int luo_kho_blobs_describe(struct ctl_buf *b, bool incoming);
/* The new image's report to the connection that asked for the update. */
void luo_ctl_report_update(int fd);
/* One "stage NAME us=N" line. */
void luo_ctl_stage(int fd, const char *name, uint64_t ns);

/* luo_control_txn.c: spawn mode, trials, rollback and commit. */
struct luo_ctl_update_opts {
	enum liveupdate_mode mode;
	uint64_t trial_ms, deadline_ms;
	bool external_probe;
};

/* Parse "update keep|args [KEY=VALUE...] PATH ...": the index of PATH,
 * or -1 with an error written to @out. */
int luo_ctl_update_parse(char **w, int n, struct luo_ctl_update_opts *o,
			 struct ctl_buf *out);
/* A trial runs in this (new) image: refuse an update, say so. */
bool luo_ctl_txn_busy(struct luo_control *ctl, struct ctl_buf *out);
void luo_ctl_update_spawn(struct luo_control *ctl, int fd, const char *path,
			  char **argv, const struct luo_ctl_update_opts *o,
			  struct ctl_buf *out);
void luo_ctl_txn_command(struct luo_control *ctl, int fd, char **w, int n,
			 struct ctl_buf *out);
void luo_ctl_txn_status_rows(struct ctl_buf *out);

#endif
