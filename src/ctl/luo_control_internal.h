/* SPDX-License-Identifier: MIT */
/*
 * The control socket server: what its files share.  Calls go one way:
 * luo_control.c (the server) -> luo_control_cmds.c (the command table)
 * -> luo_control_txn.c (spawn mode) -> luo_control_list.c (listings)
 * -> luo_control_conn.c (the peers' I/O) -> luo_control_reply.c (the
 * last line of an answer); checked by tests/layers/check-layers.sh.
 */
#ifndef LUO_SRC_CONTROL_INTERNAL_H
#define LUO_SRC_CONTROL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include <luo/control.h>
#include <luo/session.h>
#include <luo/update.h>

#include "luo_control_proto.h"

/* The session that carries the control socket over an update. */
#define CTL_SESSION "luo.control"
#define CTL_TOKEN_LISTENER 1
#define CTL_TOKEN_REQUESTER 2

/*
 * One peer.  Requests are read one line at a time and only while no reply
 * is waiting to be sent: a peer that stops reading stops being served,
 * and holds at most one reply.  Input past the current line stays in the
 * socket, so an update that execs leaves the next requests there for the
 * new image.
 */
struct ctl_conn {
	int fd;
	int pid; /* SO_PEERCRED, for log lines */
	char *in;
	size_t inlen;
	bool skipping; /* discarding the rest of an over-long line */
	bool eof;      /* the peer sent its last request */
	bool dead;     /* shut down: close at the next event */
	struct ctl_buf out;
	size_t out_off;	    /* bytes of @out already sent */
	uint64_t waited_ns; /* since when @out waits for the peer to read */
	uint32_t ep_events; /* registered with epoll */
	struct ctl_conn *next;
};

struct luo_control {
	char name[LUO_CONTROL_NAME_MAX + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned int flags;
	bool default_path; /* its directory must be ours alone */
	/* The socket file at @path when it was bound: stop removes only it. */
	bool have_file;
	dev_t file_dev;
	ino_t file_ino;
	int listen_fd;
	int epfd;
	int stop_fd;  /* eventfd waking the thread to stop */
	int timer_fd; /* fires when a peer has left its reply unread too long */
	uint64_t peer_timeout_ns;
	uint64_t timer_at_ns; /* when @timer_fd fires, 0 disarmed */
	pthread_t thread;
	bool have_thread;
	pthread_mutex_t lock; /* one command at a time */
	struct ctl_conn *conns;
	struct luo_session *session; /* outgoing CTL_SESSION */
	/* The update this image came from, if it did. */
	bool updated;
	uint64_t update_realtime_ns, blackout_ns;
};

/* How long a peer may leave a reply unread before it is dropped. */
#define CTL_PEER_TIMEOUT_MS_DEFAULT 10000

/* luo_control_conn.c: the peers' buffered, non-blocking I/O. */
struct ctl_conn *luo_ctl_conn_add(struct luo_control *ctl, int fd, int pid);
void luo_ctl_conn_close(struct luo_control *ctl, struct ctl_conn *c);
/*
 * Take the next line of @c into c->in, never more than the line.
 * Return: 1 a line (its newline included), 2 a line longer than
 * CTL_LINE_MAX began (c->in holds its head), 0 nothing more for now,
 * -1 end of file or an error.
 */
int luo_ctl_conn_read_line(struct ctl_conn *c);
/* Whether @c has a reply not all sent yet. */
bool luo_ctl_conn_pending(const struct ctl_conn *c);
/* Send what @c's reply has pending, without blocking; -errno if gone. */
int luo_ctl_conn_flush(struct ctl_conn *c);
/* Register with epoll what @c waits for: input, or room for its reply. */
void luo_ctl_conn_watch(struct luo_control *ctl, struct ctl_conn *c);
/* Before an exec: answer and shut down every peer but @keep. */
void luo_ctl_conns_quiesce(struct luo_control *ctl, struct ctl_conn *keep);
/* Drop the peers that left a reply unread for the peer timeout; arm the
 * timer for the next one. */
void luo_ctl_conns_sweep(struct luo_control *ctl);
/* The last words of a process about to end (a spawn-mode commit, a
 * rollback): send @c's reply, waiting at most @timeout_ms for room. */
void luo_ctl_conn_send_last(struct ctl_conn *c, int timeout_ms);
/* Close a socket so that its peer reads what was sent, then end of file
 * (not a reset): shut both ways, drain what it sent, close. */
void luo_ctl_close_socket(int fd);
/* One "stage NAME us=N" line to @conn, sent at once if it can be. */
void luo_ctl_stage(struct ctl_conn *conn, const char *name, uint64_t ns);

/* luo_control_reply.c: the last line of an answer. */
void luo_ctl_error(struct ctl_buf *out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void luo_ctl_ok(struct ctl_buf *out);

/* luo_control_cmds.c: run one request; writes rows and the final line. */
void luo_ctl_run(struct luo_control *ctl, struct ctl_conn *conn, char **words,
		 int nwords, struct ctl_buf *out);
/* The new image's report to the connection that asked for the update. */
void luo_ctl_report_update(struct ctl_buf *out);
/* luo_control_list.c: the listings, formatted from the lower layers'
 * iterators. */
void luo_sessions_describe(struct ctl_buf *b, bool files);
void luo_subsystems_describe(struct ctl_buf *b);
int luo_kho_blobs_describe(struct ctl_buf *b, bool incoming);

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
void luo_ctl_update_spawn(struct luo_control *ctl, struct ctl_conn *conn,
			  const char *path, char **argv,
			  const struct luo_ctl_update_opts *o,
			  struct ctl_buf *out);
void luo_ctl_txn_command(struct luo_control *ctl, struct ctl_conn *conn,
			 char **w, int n, struct ctl_buf *out);
void luo_ctl_txn_status_rows(struct ctl_buf *out);

#endif
