// SPDX-License-Identifier: MIT
/*
 * kvcache's live update glue.
 *
 * One subsystem, "kvcache", whose u64 is the kho offset of struct kv_root.
 * Its prepare stops accepting (a descriptor can only be preserved in
 * NORMAL or UPDATED), its cancel resumes.  Every descriptor that must
 * survive is already in the "kvcache" session: the listening socket under
 * KV_LISTEN_TOKEN, each client under its slot's token, preserved when it
 * was accepted.  Nothing is copied at freeze: the data set, the connection
 * records and their buffers are handover memory the next image adopts in
 * place.
 *
 * For a crash, the root's offset is also kept in the library's crash
 * record (liveupdate_crash_data_set()); a process restarted by the
 * service manager with the arena it kept re-validates the store
 * (crash_start()).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <luo/luo.h>
#ifdef KV_HAVE_CONTROL
#include <luo/control.h>
#endif

#include "kv.h"
#include "kvlu.h"

#define SESSION_NAME "kvcache"

struct kv_root *root;

static struct luo_session *session;
static uint64_t t_retrieved, t_preserved; /* for -v: where the blackout goes */
static uint32_t conns_kept;
static uint64_t incoming;
static bool have_incoming;
static char **exec_argv;
static bool rolled_back; /* conns to resume once the dispatch returns */
#ifdef KV_HAVE_CONTROL
static struct luo_control *ctl;
#endif

/*
 * Tests only (tests/kvcache/corrupt.sh): damage what the next image gets,
 * to show that it refuses or cuts what does not check out, never crashes.
 */
static void test_corrupt(void)
{
	const char *what = getenv("KVCACHE_TEST_CORRUPT");
	uint64_t *b = (uint64_t *)(store_base + store->hash_off);

	if (!what)
		return;
	fprintf(stderr, "kvcache: test: corrupting the handover (%s)\n", what);
	if (!strcmp(what, "store-magic")) {
		store->magic = 0;
	} else if (!strcmp(what, "store-size")) {
		store->npages = store->npages * 4 + 1;
	} else if (!strcmp(what, "root")) {
		root->store_off += 4096;
	} else if (!strcmp(what, "buckets")) {
		/* Odd, mid-chunk, past the end. */
		for (uint64_t i = 0; i < store->hash_buckets; i++) {
			if (!b[i])
				continue;
			if (i % 3 == 0)
				b[i] = store->slab_off + 13;
			else if (i % 3 == 1)
				b[i] = store->slab_off + 8;
			else
				b[i] = store->region_size + 4096;
		}
	} else {
		bool lengths = !strcmp(what, "conn-lengths");

		for (uint32_t i = 0; i < root->maxconns; i++) {
			struct kv_conn_rec *r = &conn_recs[i];

			if (r->state != CONN_OPEN || !r->rcap)
				continue;
			if (lengths)
				r->rlen = r->rcap + 1;
			else
				r->rbuf_off += 64;
			break;
		}
	}
}

static int kv_prepare(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	test_corrupt();
	conns_pause_accept(true);
	root->version = KV_VERSION;
	*data = kho_ptr_to_offset(root);
	return 0;
}

/* Nothing runs between here and the new image: see conns_clear_io(). */
static int kv_freeze(struct liveupdate_subsystem *h, uint64_t *data)
{
	(void)h;
	(void)data;
	conns_clear_io();
	return 0;
}

static void kv_cancel(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)h;
	(void)data;
	conns_pause_accept(false);
	want_sweep = true; /* connections closed meanwhile */
}

static void kv_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	(void)h;
	incoming = data;
	have_incoming = true;
}

/*
 * The health probe of a spawn-mode trial (new image, library thread):
 * the store and the root still check out.  Read only.
 */
static int kv_health(void *arg)
{
	(void)arg;
	if (kv_fault(KV_FAULT_POINT_HEALTH))
		return -EIO;
	if (!root || root->magic != KV_ROOT_MAGIC || !store ||
	    store->magic != KV_STORE_MAGIC || store->layout != KV_STORE_LAYOUT)
		return -EBADMSG;
	return 0;
}

/*
 * Old image, after a rollback (state NORMAL, state lock held, on the event
 * loop's thread: kvcache runs spawn-mode updates from its control
 * socket).  Take back what the new image left in handover memory: the
 * store, re-checked, and the connections with their buffered requests,
 * those the new image accepted in its trial included.
 */
static void kv_rolled_back(const struct liveupdate_update_report *rep,
			   void *arg)
{
	uint64_t cut;
	uint32_t lost, returned;

	(void)arg;
	cut = store_recheck();
	lost = conns_take_back(&returned);
	store->stats.conn_errors += lost;
	rolled_back = true;
	printf("kvcache v%d: pid %d, update rolled back (%s): %llu items, %u connections (%u accepted by the new image), %llu hash chains cut, %u connections lost buffered requests\n",
	       KV_VERSION, (int)getpid(),
	       liveupdate_txn_reason_name(rep->reason),
	       (unsigned long long)store->stats.curr_items, conn_count(),
	       returned, (unsigned long long)cut, lost);
}

static const struct liveupdate_txn_hooks kv_txn_hooks = {
	.health = kv_health,
	.rollback = kv_rolled_back,
};

static const struct liveupdate_subsystem_ops kv_ops = {
	.prepare = kv_prepare,
	.freeze = kv_freeze,
	.cancel = kv_cancel,
	.boot = kv_boot,
};

static struct liveupdate_subsystem kv_subsys = {
	.ops = &kv_ops,
	.name = "kvcache",
};

/**
 * kvlu_preserve() - carry a descriptor over every later update
 * @fd: the descriptor.
 * @token: its token in the "kvcache" session.
 *
 * Return: 0 or the library's negative errno.
 */
int kvlu_preserve(int fd, uint64_t token)
{
	return liveupdate_session_preserve_fd(session, fd, token);
}

/**
 * kvlu_unpreserve() - stop carrying a descriptor
 * @token: its token.
 *
 * Return: 0 or the library's negative errno.
 */
int kvlu_unpreserve(uint64_t token)
{
	return liveupdate_session_unpreserve_fd(session, token);
}

/**
 * kvlu_forget() - a connection closed before this image preserved it
 * @token: its token.
 *
 * Adopted in an update (or after a crash) and not yet preserved again:
 * the service manager's copy, if the store keeps connections, must go,
 * or the client would never see the end.
 */
void kvlu_forget(uint64_t token)
{
	liveupdate_fdstore_forget(SESSION_NAME, token);
}

/**
 * kvlu_take_returned() - a client the rolled-back new image accepted
 * @token: its slot's token.
 * @fd: set to its descriptor.
 *
 * Only from the rollback hook (conns_take_back()).
 *
 * Return: 0, or -ENOENT if the new image left none under @token.
 */
int kvlu_take_returned(uint64_t token, int *fd)
{
	return liveupdate_txn_returned_take(SESSION_NAME, token, fd);
}

/*
 * The outgoing session of this image, with the listener in it.  Adopted
 * connections join it from the event loop (conns_represerve()), so that
 * the new image serves again without waiting for thousands of preserves.
 */
static int new_session(void)
{
	int err = liveupdate_create_session(SESSION_NAME, &session);

	if (err) {
		fprintf(stderr, "kvcache: cannot create the session: %s\n",
			strerror(-err));
		return err;
	}
	err = kvlu_preserve(listen_fd, KV_LISTEN_TOKEN);
	if (err) {
		fprintf(stderr,
			"kvcache: cannot preserve the listening socket: %s\n",
			strerror(-err));
		return err;
	}
	if (conns_epoll_fd() >= 0) {
		err = kvlu_preserve(conns_epoll_fd(), KV_EPOLL_TOKEN);
		if (err)
			fprintf(stderr,
				"kvcache: cannot preserve the clients' epoll instance: %s\n",
				strerror(-err));
	}
	return err;
}

/*
 * The listener the service manager kept through a crash, if it is for the
 * port asked for (the unit may have changed since); -1 if none.
 */
static int stored_listener(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd;

	if (liveupdate_fdstore_retrieve(SESSION_NAME, KV_LISTEN_TOKEN, &fd))
		return -1;
	if (getsockname(fd, (struct sockaddr *)&a, &len) ||
	    a.sin_family != AF_INET ||
	    (settings.port && ntohs(a.sin_port) != settings.port)) {
		close(fd);
		return -1;
	}
	settings.port = ntohs(a.sin_port);
	kv_log(1, "kvcache: serving the listener the service manager kept\n");
	return fd;
}

static int fresh_start(void)
{
	void *region, *p;
	size_t size;
	int err;

	err = kho_alloc_preserve(sizeof(*root), &p);
	if (err)
		goto nomem;
	root = p;
	err = slabs_create(settings.mem_limit, settings.item_size_max,
			   settings.factor, &region, &size);
	if (err)
		goto nomem;
	err = kho_alloc_preserve((size_t)settings.maxconns * sizeof(*conn_recs),
				 &p);
	if (err)
		goto nomem;
	conn_recs = p;
	root->magic = KV_ROOT_MAGIC;
	root->layout = KV_ROOT_LAYOUT;
	root->version = KV_VERSION;
	root->store_off = kho_ptr_to_offset(region);
	root->store_size = size;
	root->conns_off = kho_ptr_to_offset(conn_recs);
	root->maxconns = settings.maxconns;
	err = conns_setup(root->maxconns, -1);
	if (err)
		return err;
	/* Restarted after a crash: the listener systemd kept, backlog and all. */
	if (listen_fd < 0)
		listen_fd = stored_listener();
	if (listen_fd < 0) { /* or the one a refused handover still brought */
		listen_fd = listener_open();
	} else {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);

		if (!getsockname(listen_fd, (struct sockaddr *)&a, &len))
			settings.port = ntohs(a.sin_port);
	}
	if (listen_fd < 0)
		return listen_fd;
	root->has_listener = 1;
	return new_session();
nomem:
	fprintf(stderr,
		"kvcache: cannot allocate %llu MiB of handover memory: %s\n",
		(unsigned long long)(settings.mem_limit >> 20), strerror(-err));
	return err;
}

/* Check the root and the store; on success the data set is ours. */
static int adopt_memory(void)
{
	void *p;
	int err;

	if (kv_fault(KV_FAULT_POINT_REFUSE)) {
		fprintf(stderr, "kvcache: test fault: refusing the handover\n");
		return -EPROTONOSUPPORT;
	}
	err = kho_restore(incoming, sizeof(*root), &p);
	if (err) {
		fprintf(stderr, "kvcache: no root at %#llx: %s\n",
			(unsigned long long)incoming, strerror(-err));
		return -EBADMSG;
	}
	root = p;
	if (root->magic != KV_ROOT_MAGIC || root->layout != KV_ROOT_LAYOUT ||
	    !root->maxconns || root->maxconns > (1u << 24)) {
		fprintf(stderr,
			"kvcache: the handed-over root is not one this version knows (layout %u)\n",
			root->layout);
		return -EPROTONOSUPPORT;
	}
	err = kho_restore(root->store_off, root->store_size, &p);
	if (err) {
		fprintf(stderr,
			"kvcache: the store region does not check out: %s\n",
			strerror(-err));
		return -EBADMSG;
	}
	err = slabs_adopt(p, root->store_size);
	if (err)
		return err;
	err = kho_restore(root->conns_off,
			  (size_t)root->maxconns * sizeof(*conn_recs), &p);
	if (err) {
		fprintf(stderr,
			"kvcache: the connection table does not check out: %s\n",
			strerror(-err));
		return -EBADMSG;
	}
	conn_recs = p;
	return 0;
}

/*
 * --inherit: put a client back on the number its registration in the
 * inherited epoll instance is keyed by (EPOLL_CTL_MOD and EPOLL_CTL_DEL
 * find it by file and number), so that it is served without an
 * epoll_ctl().  The number was a client's in the previous image, at or
 * above -c + 128 (conn.c), and is free unless this image's start-up took
 * it.  The inherited duplicate is closed by the event loop.
 */
static int to_registered_number(int *fd, int want)
{
	/* bench/kvcache/run-inherit.py only: what the renumbering costs
	 * (idle clients never need their registration modified). */
	static int skip = -1;
	int got;

	if (skip < 0)
		skip = getenv("KVCACHE_BENCH_NO_RENUMBER") != NULL;
	if (*fd == want || skip)
		return 0;
	got = want > 2 ? fcntl(*fd, F_DUPFD_CLOEXEC, want) : -1;
	if (got != want) {
		if (got >= 0)
			close(got);
		return -EADDRINUSE;
	}
	conns_defer_close(*fd); /* the loop closes it, after the blackout */
	*fd = got;
	return 0;
}

/*
 * --inherit: an inherited descriptor kvcache keeps (the listener, the
 * clients' epoll instance) goes to the lowest free number, out of the
 * inherited range, so that the next update can place its range as low
 * again instead of above this one.
 */
static int out_of_range(int fd)
{
	int low;

	if (fd < 0 || !settings.inherit)
		return fd;
	low = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (low < 0 || low > fd) {
		if (low >= 0)
			close(low);
		return fd;
	}
	close(fd);
	return low;
}

/*
 * The session's descriptors, all taken with one
 * liveupdate_session_retrieve_all() (10,000 clients: one call, not one
 * lookup each), then handed to the code below by token.  @by_slot maps a
 * client's slot (token slot + 1) to its entry.  Without the array (no
 * memory) each one is retrieved by token as before.
 */
static struct {
	struct liveupdate_session_file *v;
	int n, *by_slot;
	uint32_t nslots;
} handed;

static void handed_take_all(struct luo_session *in, uint32_t nslots)
{
	int n = liveupdate_session_get_tokens(in, NULL, 0);

	if (n < 0)
		return;
	handed.v = calloc((size_t)n + 1, sizeof(*handed.v));
	handed.by_slot = malloc(((size_t)nslots + 1) * sizeof(int));
	if (!handed.v || !handed.by_slot ||
	    (handed.n = liveupdate_session_retrieve_all(in, handed.v,
							(size_t)n)) < 0) {
		free(handed.v);
		free(handed.by_slot);
		memset(&handed, 0, sizeof(handed));
		return;
	}
	handed.nslots = nslots;
	for (uint32_t i = 0; i < nslots; i++)
		handed.by_slot[i] = -1;
	for (int k = 0; k < handed.n; k++) {
		uint64_t t = handed.v[k].token;

		if (t >= 1 && t <= nslots)
			handed.by_slot[t - 1] = k;
	}
}

/* The descriptor under @token: what a retrieval by token would give. */
static int handed_fd(struct luo_session *in, uint64_t token, int *fd)
{
	int k = -1;

	if (!handed.v)
		return liveupdate_session_retrieve_fd(in, token, fd);
	if (token >= 1 && token <= handed.nslots)
		k = handed.by_slot[token - 1];
	else
		for (int i = 0; i < handed.n && k < 0; i++)
			if (handed.v[i].token == token)
				k = i;
	if (k < 0 || handed.v[k].token != token)
		return -ENOENT;
	if (handed.v[k].err)
		return handed.v[k].err;
	if (handed.v[k].fd < 0)
		return -EALREADY;
	*fd = handed.v[k].fd;
	handed.v[k].fd = -1;
	return 0;
}

/* Descriptors nobody took are closed, as finish would have. */
static void handed_release(void)
{
	for (int k = 0; k < handed.n; k++)
		if (handed.v[k].fd >= 0)
			close(handed.v[k].fd);
	free(handed.v);
	free(handed.by_slot);
	memset(&handed, 0, sizeof(handed));
}

/* Take every descriptor back. Return: connections kept. */
static uint32_t adopt_fds(struct luo_session *in, bool registered)
{
	uint32_t kept = 0, lost = 0, stray = 0;
	bool renumbered;
	int err, fd;

	for (uint32_t i = 0; i < root->maxconns; i++) {
		struct kv_conn_rec *r = &conn_recs[i];

		if (r->state == CONN_ZOMBIE) /* closed during the update */
			r->state = CONN_FREE;
		if (r->state != CONN_OPEN)
			continue;
		fd = -1;
		err = r->token == (uint64_t)i + 1 ? handed_fd(in, r->token, &fd)
						  : -EBADMSG;
		renumbered = !err && registered && r->ep_events &&
			     !to_registered_number(&fd, r->ep_fd);
		if (!err && registered && r->ep_events && !renumbered)
			stray++;
		if (!err)
			err = conn_attach(i, fd, true);
		if (!err && renumbered)
			conn_set_registered(i, r->ep_events);
		else if (!err)
			r->ep_events = 0;
		if (err) {
			fprintf(stderr,
				"kvcache: connection %u lost in the update: %s\n",
				i, strerror(-err));
			if (fd >= 0)
				close(fd);
			memset(r, 0, sizeof(*r));
			lost++;
			continue;
		}
		kept++;
	}
	if (lost) {
		store->stats.conn_errors += lost;
		conns_recount_refs(); /* the lost ones held references */
	}
	if (stray) {
		fprintf(stderr,
			"kvcache: %u clients could not go back on their registrations' numbers (the files came on the carrier, or the start-up took the numbers): registering every client again\n",
			stray);
		if (conns_forget_registrations())
			fprintf(stderr,
				"kvcache: cannot replace the clients' epoll instance\n");
	}
	return kept;
}

/* The blackout: from the old image's freeze to serving again, now. */
static void report_update(void)
{
	struct liveupdate_timing t;
	uint64_t now = kv_mono_ns();

	if (liveupdate_get_timing(&t))
		return;
	store->stats.live_updates = liveupdate_get_num();
	store->stats.last_blackout_ns = now - t.freeze_ns;
	printf("kvcache v%d: pid %d, live update #%llu from v%u: %llu items, %u connections kept, blackout %.3f ms (adopted after %.3f ms)\n",
	       KV_VERSION, (int)getpid(),
	       (unsigned long long)liveupdate_get_num(), root->version,
	       (unsigned long long)store->stats.curr_items, conns_kept,
	       (now - t.freeze_ns) / 1e6, (t.adopted_ns - t.freeze_ns) / 1e6);
	kv_log(1,
	       "kvcache: blackout: freeze to exec %.3f ms, exec to adopted %.3f ms, descriptors retrieved and finish +%.3f ms, session made +%.3f ms, pending work resumed +%.3f ms\n",
	       (t.exec_ns - t.freeze_ns) / 1e6,
	       (t.adopted_ns - t.exec_ns) / 1e6,
	       (t_retrieved - t.adopted_ns) / 1e6,
	       (t_preserved - t_retrieved) / 1e6, (now - t_preserved) / 1e6);
}

static void start_control(void);

static int updated_start(void)
{
	struct luo_session *in = NULL;
	uint32_t kept = 0;
	int err, cep = -1;

	err = adopt_memory();
	if (err &&
	    !liveupdate_txn_get_status(&(struct liveupdate_txn_status){0})) {
		/*
		 * Spawn mode: the old image still has everything; an empty
		 * cache here would replace it.  Hand back instead.
		 */
		fprintf(stderr,
			"kvcache: refusing the handover; the old image serves on\n");
		liveupdate_txn_rollback("kvcache refused the handover");
		for (;;)
			pause(); /* the old image kills this process */
	}
	if (err) {
		fprintf(stderr,
			"kvcache: refusing the handover; starting with an empty cache\n");
		/*
		 * The listening socket does not depend on the refused memory:
		 * keep it, so the port is never closed (and never raced for).
		 */
		if (!liveupdate_retrieve_session(SESSION_NAME, &in)) {
			if (liveupdate_session_retrieve_fd(in, KV_LISTEN_TOKEN,
							   &listen_fd))
				listen_fd = -1;
			liveupdate_session_finish(in);
		}
		start_control();
		liveupdate_finish();
		err = fresh_start();
		if (!err)
			printf("kvcache v%d: pid %d, fresh start after a refused handover, %llu MiB, port %u\n",
			       KV_VERSION, (int)getpid(),
			       (unsigned long long)(store->mem_limit >> 20),
			       settings.port);
		return err;
	}
	err = liveupdate_retrieve_session(SESSION_NAME, &in);
	if (err)
		fprintf(stderr, "kvcache: no \"%s\" session came over: %s\n",
			SESSION_NAME, strerror(-err));
	if (in)
		handed_take_all(in, root->maxconns);
	/* --inherit: the clients' registrations came with their instance. */
	if (in && settings.inherit && handed_fd(in, KV_EPOLL_TOKEN, &cep))
		cep = -1;
	cep = out_of_range(cep);
	err = conns_setup(root->maxconns, cep);
	if (err) {
		handed_release();
		return err;
	}
	if (in && root->has_listener) {
		err = handed_fd(in, KV_LISTEN_TOKEN, &listen_fd);
		if (err)
			fprintf(stderr,
				"kvcache: the listening socket did not come over: %s; opening a new one\n",
				strerror(-err));
		else
			listen_fd = out_of_range(listen_fd);
	}
	if (in)
		kept = adopt_fds(in, cep >= 0);
	else
		memset(conn_recs, 0, root->maxconns * sizeof(*conn_recs));
	conns_kept = kept;
	handed_release();
	if (in)
		liveupdate_session_finish(in);
	kv_fault(KV_FAULT_POINT_ADOPTED);
	/* Before finish: the control socket's own session must be retrieved. */
	start_control();
	err = liveupdate_finish();
	if (err)
		fprintf(stderr, "kvcache: liveupdate_finish: %s\n",
			strerror(-err));
	if (listen_fd < 0) {
		listen_fd = listener_open();
		if (listen_fd < 0)
			return listen_fd;
		root->has_listener = 1;
	}
	t_retrieved = kv_mono_ns();
	if (root->maxconns != settings.maxconns ||
	    store->mem_limit / 1048576 != settings.mem_limit / 1048576)
		kv_log(1,
		       "kvcache: keeping the handed-over sizes (-m %llu, -c %u)\n",
		       (unsigned long long)(store->mem_limit >> 20),
		       root->maxconns);
	settings.maxconns = root->maxconns;
	err = new_session();
	t_preserved = kv_mono_ns();
	return err;
}

/*
 * A half-written item: the one an incr or decr was changing in place when
 * the process died, if it is still in its chain.  Return: 1 if dropped.
 */
static unsigned drop_in_progress(void)
{
	struct kv_item *it = item_at(store->wip_item);
	unsigned dropped = 0;

	if (store->wip_item && it && item_valid(it) &&
	    hash_find(item_key(it), it->nkey,
		      hash_key(item_key(it), it->nkey)) == it) {
		item_unlink(it);
		dropped = 1;
	}
	store->wip_item = 0;
	return dropped;
}

/*
 * The connections the service manager kept through the crash
 * (LUO_FDSTORE=connections): for each slot the crashed table says was
 * open and between requests (conn_rec_between_requests()), its socket by
 * the slot's token, if it is a connected stream socket.  The others are
 * left to luo_notify_ready(), which closes them.  @fds gets one
 * descriptor per slot (-1 for none), @flags the protocol each spoke.
 * Return: how many came back.
 */
static uint32_t stored_connections(int **fds, uint32_t **flags)
{
	uint32_t n = 0, cut = 0;

	*fds = malloc((size_t)root->maxconns * sizeof(**fds));
	*flags = malloc((size_t)root->maxconns * sizeof(**flags));
	if (!*fds || !*flags) {
		free(*fds);
		free(*flags);
		*fds = NULL;
		*flags = NULL;
		return 0;
	}
	for (uint32_t i = 0; i < root->maxconns; i++) {
		struct sockaddr_storage a;
		socklen_t len = sizeof(a), tlen = sizeof(int);
		int fd, type = 0;

		(*fds)[i] = -1;
		if (conn_recs[i].state != CONN_OPEN)
			continue;
		/* Left to luo_notify_ready(): the client sees the end. */
		if (!conn_rec_between_requests(&conn_recs[i])) {
			cut++;
			continue;
		}
		if (liveupdate_fdstore_retrieve(SESSION_NAME, (uint64_t)i + 1,
						&fd))
			continue;
		if (getpeername(fd, (struct sockaddr *)&a, &len) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) ||
		    type != SOCK_STREAM ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
			fprintf(stderr,
				"kvcache: the stored socket of connection %u is not a connected stream socket: closing it\n",
				i);
			close(fd);
			continue;
		}
		(*fds)[i] = fd;
		(*flags)[i] = conn_recs[i].flags &
			      (CONN_PROTO_BINARY | CONN_PROTO_TEXT);
		n++;
	}
	if (n || cut)
		kv_log(1,
		       "kvcache: %u connection%s kept through the crash, %u to close because a request or an answer was in progress\n",
		       n, n == 1 ? "" : "s", cut);
	return n;
}

/*
 * Serve them again, in fresh records (their buffers are not adopted:
 * they held nothing still due).  Frees @fds and @flags.
 */
static void resume_connections(int *fds, uint32_t *flags)
{
	for (uint32_t i = 0; fds && i < root->maxconns; i++) {
		struct kv_conn_rec *r = &conn_recs[i];

		if (fds[i] < 0)
			continue;
		r->token = (uint64_t)i + 1;
		r->state = CONN_OPEN;
		r->flags = flags[i];
		if (conn_attach(i, fds[i], false)) {
			close(fds[i]);
			memset(r, 0, sizeof(*r));
			continue;
		}
		conns_align_counts(i); /* what it carried before the crash */
	}
	free(fds);
	free(flags);
}

/*
 * Restarted after a crash with the arena the service manager kept: the
 * data set was not frozen, the process died anywhere.  The root and the
 * store are checked as for a handover, then every item as after a
 * rollback (store_recheck(): chains cut at what does not check out, LRU
 * lists rebuilt, free lists cut), and the item being changed in place is
 * dropped.  Items are only linked once whole, so what is left is what
 * clients were told was STORED.  The connections died with the process,
 * unless the service manager kept them too (LUO_FDSTORE=connections):
 * those that were between requests are served again.  The listener comes from
 * the service manager's store.
 */
static int crash_start(void)
{
	uint64_t cut, t0 = kv_mono_ns(), t1;
	unsigned dropped;
	uint32_t resumed = 0, *flags = NULL;
	int *fds = NULL, err = adopt_memory();

	if (err) {
		fprintf(stderr,
			"kvcache: the data kept through the crash does not check out; starting with an empty cache\n");
		start_control();
		liveupdate_finish();
		err = fresh_start();
		if (!err)
			printf("kvcache v%d: pid %d, fresh start after a crash, %llu MiB, port %u\n",
			       KV_VERSION, (int)getpid(),
			       (unsigned long long)(store->mem_limit >> 20),
			       settings.port);
		return err;
	}
	err = conns_setup(root->maxconns, -1);
	if (err)
		return err;
	resumed = stored_connections(&fds, &flags);
	/* Their buffers are released by the finish: nobody claims them. */
	memset(conn_recs, 0, root->maxconns * sizeof(*conn_recs));
	conns_recount_refs();
	resume_connections(fds, flags);
	t1 = kv_mono_ns();
	cut = store_recheck();
	dropped = drop_in_progress();
	kv_log(1,
	       "kvcache: crash recovery: store checked and references recounted in %.1f ms, items re-validated in %.1f ms\n",
	       (t1 - t0) / 1e6, (kv_mono_ns() - t1) / 1e6);
	listen_fd = stored_listener();
	if (listen_fd < 0)
		listen_fd = listener_open();
	if (listen_fd < 0)
		return listen_fd;
	root->has_listener = 1;
	start_control();
	err = liveupdate_finish();
	if (err)
		fprintf(stderr, "kvcache: liveupdate_finish: %s\n",
			strerror(-err));
	settings.maxconns = root->maxconns;
	err = new_session();
	/* Into the new session, and so into the store again. */
	if (!err && resumed)
		conns_represerve(0);
	if (!err)
		printf("kvcache v%d: pid %d, recovered after a crash: %llu items, %llu hash chains cut, %u half-written item%s dropped, %u connection%s resumed, port %u\n",
		       KV_VERSION, (int)getpid(),
		       (unsigned long long)store->stats.curr_items,
		       (unsigned long long)cut, dropped,
		       dropped == 1 ? "" : "s", resumed,
		       resumed == 1 ? "" : "s", settings.port);
	return err;
}

static void start_control(void)
{
#ifdef KV_HAVE_CONTROL
	struct luo_control_opts o = {.name = settings.name};
	int err = luo_control_start(&o, &ctl);

	if (err) {
		fprintf(stderr,
			"kvcache: no control socket \"%s\": %s (SIGUSR1 still updates)\n",
			settings.name, strerror(-err));
		ctl = NULL;
	} else {
		kv_log(1, "kvcache: control socket %s\n",
		       luo_control_path(ctl));
	}
#endif
}

/**
 * kvlu_stop() - stop serving the control socket (at exit)
 */
void kvlu_stop(void)
{
	luo_notify_stopping();
#ifdef KV_HAVE_CONTROL
	luo_control_stop(ctl);
	ctl = NULL;
#endif
}

/**
 * kvlu_control_fd() - the control socket's descriptor for the event loop
 *
 * Return: the descriptor, or -1 without a control socket.
 */
int kvlu_control_fd(void)
{
#ifdef KV_HAVE_CONTROL
	return ctl ? luo_control_fd(ctl) : -1;
#else
	return -1;
#endif
}

/**
 * kvlu_control_dispatch() - serve the control socket once it is readable
 *
 * Every adopted connection is preserved first: the command may be an
 * update, which does not return here when it succeeds.
 */
void kvlu_control_dispatch(void)
{
#ifdef KV_HAVE_CONTROL
	if (ctl) {
		conns_represerve(0);
		luo_control_dispatch(ctl);
	}
	if (rolled_back) {
		rolled_back = false;
		conns_resume_all();
	}
#endif
}

static int start_one(uint32_t slot, int fd, uint64_t token)
{
	(void)fd;
	(void)token;
	conn_start(slot);
	return 0;
}

/**
 * kvlu_start() - start the library and the service's state
 *
 * Adopts the previous image's data set, connections and listening socket
 * after a live update; otherwise allocates them fresh.  Then resumes the
 * connections' half-done work and starts the control socket.
 *
 * Return: 0 or a negative errno (after a message).
 */
int kvlu_start(void)
{
	struct luo_init_opts opts = {0};
	size_t argc = 0;
	int err;

	while (settings.argv[argc])
		argc++;
	exec_argv = calloc(argc + 1, sizeof(*exec_argv));
	if (!exec_argv)
		return -ENOMEM;
	memcpy(exec_argv, settings.argv, argc * sizeof(*exec_argv));

	/*
	 * --trust-carrier: nothing here closes a descriptor between luo_init()
	 * and the retrieval, which is what the per-file identity check guards
	 * against; skipping it saves about a microsecond per client of
	 * blackout.
	 */
	if (settings.trust_carrier)
		opts.flags |= LUO_INIT_TRUST_CARRIER;
	/*
	 * --inherit (or LUO_EXEC_INHERIT=1, which the library reads too):
	 * exec-mode updates inherit the clients, and their epoll instance with
	 * its registrations, so nothing is registered again per client.
	 */
	if (getenv("LUO_EXEC_INHERIT") &&
	    !strcmp(getenv("LUO_EXEC_INHERIT"), "1"))
		settings.inherit = true;
	if (settings.inherit)
		opts.flags |= LUO_INIT_EXEC_INHERIT;
	/* Before luo_init(): a spawned image tells the old one it has a probe. */
	liveupdate_set_txn_hooks(&kv_txn_hooks);
	err = luo_init(&opts);
	if (err) {
		fprintf(stderr,
			"kvcache: refusing the handover (%s); starting fresh\n",
			strerror(-err));
		err = luo_init(&opts);
		if (err) {
			fprintf(stderr, "kvcache: luo_init: %s\n",
				strerror(-err));
			return err;
		}
	}
	err = liveupdate_register_subsystem(&kv_subsys);
	if (err) {
		fprintf(stderr, "kvcache: cannot register: %s\n",
			strerror(-err));
		return err;
	}
	if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED &&
	    have_incoming && liveupdate_crash_recovered())
		err = crash_start();
	else if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED &&
		 have_incoming)
		err = updated_start();
	else {
		start_control();
		if (liveupdate_get_state() == LIVEUPDATE_STATE_UPDATED)
			liveupdate_finish();
		err = fresh_start();
		if (!err)
			printf("kvcache v%d: pid %d, fresh start, %llu MiB, up to %u connections, port %u\n",
			       KV_VERSION, (int)getpid(),
			       (unsigned long long)(store->mem_limit >> 20),
			       root->maxconns, settings.port);
	}
	if (err)
		return err;
	/* What a restart after a crash adopts: the root, kept current. */
	err = liveupdate_crash_data_set(&kv_subsys, kho_ptr_to_offset(root));
	if (err)
		fprintf(stderr,
			"kvcache: the data would not survive a crash: %s\n",
			strerror(-err));
	conns_go();
	conns_for_each_open(start_one);
	if (t_preserved) {
		conns_represerve(1); /* start the walk; the loop goes on */
		report_update();
	}
	/* Serving: under systemd this ends the start or the reload. */
	luo_notify_ready();
	return 0;
}

/**
 * kvlu_update() - replace this image with the update target
 * @why: for the message.
 *
 * Return: only on failure, the negative errno; the service keeps serving.
 */
int kvlu_update(const char *why)
{
	const char *path =
		settings.update_to ? settings.update_to : settings.self;
	int err;

	kv_log(1, "kvcache v%d: live update into %s (%s)\n", KV_VERSION, path,
	       why);
	conns_represerve(0);
	/* Prepared already (luoctl prepare): go on from there. */
	err = liveupdate_get_state() == LIVEUPDATE_STATE_PREPARED
		      ? 0
		      : liveupdate_prepare();
	if (err) {
		fprintf(stderr, "kvcache: prepare refused: %s; still serving\n",
			strerror(-err));
		return err;
	}
	exec_argv[0] = (char *)path;
	err = liveupdate_reboot(path, exec_argv, NULL);
	fprintf(stderr,
		"kvcache v%d: update into %s failed: %s; still serving\n",
		KV_VERSION, path, strerror(-err));
	return err;
}
