// SPDX-License-Identifier: MIT
/*
 * The kernel's own byte counts of a client's TCP connection: what the
 * application has taken from it and what it has written into it.  A
 * connection record keeps the same two counts (kv_conn_rec.in_seq and
 * out_seq, modulo 2^32); after a rollback the old image compares them to
 * learn what a new image killed between a recv() or sendmsg() and the
 * record of it left undone (conn.c, sync_with_socket()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "kv.h"

/* tcpi_state values (the kernel's ABI; no UAPI header names them). */
enum { ST_TIME_WAIT = 6, ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11 };

/* States in which the peer's FIN is in tcpi_bytes_received. */
static bool fin_received(unsigned state)
{
	return state == ST_CLOSE_WAIT || state == ST_LAST_ACK ||
	       state == ST_CLOSING || state == ST_TIME_WAIT;
}

static int tcp_info_of(int fd, struct tcp_info *ti)
{
	socklen_t len = sizeof(*ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len))
		return -errno;
	/* tcpi_bytes_received is the last field read here (Linux 4.1). */
	if (len < offsetof(struct tcp_info, tcpi_bytes_received) +
			  sizeof(ti->tcpi_bytes_received))
		return -EOPNOTSUPP;
	return 0;
}

/**
 * sock_counts() - bytes the application read from and wrote to a socket
 * @fd: a connected TCP socket.
 * @in: set to the bytes taken from its receive queue so far
 *      (tcpi_bytes_received less SIOCINQ, less the peer's FIN).
 * @out: set to the bytes written into it so far (tcpi_bytes_acked plus
 *       SIOCOUTQ, the unacknowledged and unsent ones).
 *
 * Only exact while nobody else reads from or writes to @fd; data and ACKs
 * still arriving are handled by reading the kernel's count on each side of
 * the queue length until it did not move.
 *
 * Return: 0, or a negative errno (-ENOPROTOOPT, -EOPNOTSUPP: not TCP).
 */
int sock_counts(int fd, uint64_t *in, uint64_t *out)
{
	struct tcp_info a, b;
	int inq = 0, outq = 0, err;

	for (int tries = 0;; tries++) {
		err = tcp_info_of(fd, &a);
		if (!err &&
		    (ioctl(fd, SIOCINQ, &inq) || ioctl(fd, SIOCOUTQ, &outq)))
			err = -errno;
		if (!err)
			err = tcp_info_of(fd, &b);
		if (err)
			return err;
		if (a.tcpi_bytes_received == b.tcpi_bytes_received &&
		    a.tcpi_bytes_acked == b.tcpi_bytes_acked &&
		    a.tcpi_state == b.tcpi_state)
			break;
		if (tries == 1000)
			return -EAGAIN;
	}
	*in = a.tcpi_bytes_received - (uint64_t)inq -
	      (fin_received(a.tcpi_state) ? 1 : 0);
	*out = a.tcpi_bytes_acked + (uint64_t)outq;
	return 0;
}
