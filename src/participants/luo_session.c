// SPDX-License-Identifier: MIT
/*
 * Sessions: named sets of preserved files, as in the kernel's LUO uAPI.
 *
 * Outgoing sessions are serialized and their files put in flight on the
 * carrier at prepare (files cannot change while an update is in progress,
 * and this keeps the sending out of the blackout), their handlers' data
 * refreshed at freeze.  Incoming
 * sessions are read back, fully checked, by luo_init().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kho_internal.h"
#include "log.h"
#include "luo_internal.h"
#include "luo_carrier_ahead.h"
#include "luo_inherit.h"
#include "luo_mem.h"
#include "luo_fdstore.h"
#include "luo_session_internal.h"

static struct luo_session *outgoing, *incoming;
/* The same sessions by name: create, retrieve and adoption look names up
 * (16,000 sessions made a list walk quadratic inside the blackout). */
static struct luo_htable outgoing_names, incoming_names;

/* The carrier: the outgoing one while frozen, the incoming one named by
 * the LUO FDT until luo_sessions_in_adopt() takes the files out of it.
 * With @base the files are inherited at [base, base + count) instead and
 * @fd is the sentinel above them (luo_inherit.c). */
static struct {
	int fd;
	uint64_t ino, count;
	int base;
} carrier_out = {.fd = -1}, carrier_in = {.fd = -1};

/* Inherited files unpreserved after the freeze: their numbers stay open
 * in the range (no hole for the new image to see), closed on arrival or
 * at cancel. */
static struct {
	int *v;
	size_t n, cap;
} inherit_kept;
/* Spawn mode: the files go on the carrier even if inheritance is on. */
static bool carrier_forced;

/* What prepare serialized, freed on cancel. */
static struct {
	struct luo_session_header_ser *header;
	struct luo_session_ser *ser;
	void **file_blocks; /* one per outgoing session, may be NULL */
	size_t nsessions;
	/* Where the outgoing files are: serialized and in flight (both from
	 * prepare on), whether sessions froze, and whether a file was
	 * dropped before that (freeze then sends them all again). */
	bool serialized, in_flight, frozen, dropped;
} out_ser;

/*
 * Where the incoming files are once adopted: @fds by carrier index (from
 * the carrier), or @base + carrier index (inherited); @ok if either
 * holds, @must_check if each identity is checked even when trusted (the
 * inherited range had a hole).  Kept until the sessions are finished:
 * entries not yet made struct luo_file look their descriptor up here.
 */
static struct {
	int *fds;
	size_t n;
	int base;
	bool ok, must_check;
} in_files;

static void in_files_free(void)
{
	if (in_files.fds)
		luo_bulk_free(in_files.fds, in_files.n * sizeof(*in_files.fds));
	memset(&in_files, 0, sizeof(in_files));
}

/* Carrier indexes of incoming files closed before the exec. */
static struct {
	uint32_t *v;
	size_t n, cap;
} in_closed;

#define FILE_SER_SIZE                                                          \
	(sizeof(struct luo_file_ser) + sizeof(struct luo_file_fd_ser))

static size_t session_list_len(const struct luo_session *s)
{
	size_t n = 0;

	for (; s; s = s->next)
		n++;
	return n;
}

static int in_materialize(struct luo_session *s);

bool luo_session_has_token(struct luo_session *s, uint64_t token)
{
	bool has;

	pthread_mutex_lock(&luo_sessions_lock);
	has = !in_materialize(s) && luo_file_by_token(s, token);
	pthread_mutex_unlock(&luo_sessions_lock);
	return has;
}

static bool name_valid(const char *name)
{
	return name && memchr(name, 0, LIVEUPDATE_SESSION_NAME_LENGTH) &&
	       name[0];
}

/* FNV-1a over the name; the table mixes it further. */
static uint64_t name_key(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*name)
		h = (h ^ (uint8_t)*name++) * 0x100000001b3ULL;
	return h;
}

static struct luo_session *find(const struct luo_htable *names,
				const char *name)
{
	struct luo_hnode *n = luo_hash_find(names, name_key(name));

	for (; n; n = luo_hash_next(n)) {
		struct luo_session *s =
			luo_hash_entry(n, struct luo_session, name_node);

		if (!strcmp(s->name, name))
			return s;
	}
	return NULL;
}

/* Told of every outgoing change (spawn mode's trial, luo_txn.c). */
static const struct luo_sessions_watch *watch;

void luo_sessions_set_watch(const struct luo_sessions_watch *w)
{
	pthread_mutex_lock(&luo_sessions_lock);
	watch = w;
	pthread_mutex_unlock(&luo_sessions_lock);
}

bool luo_sessions_out_holds(const char *name, uint64_t token, uint64_t dev,
			    uint64_t ino)
{
	struct luo_session *s;
	struct luo_file *f;
	bool holds;

	pthread_mutex_lock(&luo_sessions_lock);
	s = find(&outgoing_names, name);
	f = s ? luo_file_by_token(s, token) : NULL;
	holds = f && f->dev == dev && f->ino == ino;
	pthread_mutex_unlock(&luo_sessions_lock);
	return holds;
}

static void unlink_session(struct luo_session **list, struct luo_session *s)
{
	for (struct luo_session **pp = list; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			return;
		}
	}
}

/* Incoming files live in the session's pool; outgoing ones alone. */
static void file_free(struct luo_session *s, struct luo_file *f)
{
	if (!s->pool)
		free(f);
}

static void session_free(struct luo_session *s)
{
	free(s->in.state);
	luo_hash_free(&s->tokens);
	if (s->pool) {
		luo_bulk_free(s->files, s->cap * sizeof(*s->files));
		luo_bulk_free(s->pool, s->cap * sizeof(*s->pool));
	} else {
		free(s->files);
	}
	free(s);
}

/* The descriptor of incoming table entry @i, -1 if it did not arrive. */
static int in_entry_fd(const struct luo_session *s, size_t i)
{
	uint32_t k = s->in.first + (uint32_t)i;

	if (!in_files.ok)
		return -1;
	if (in_files.base)
		return in_files.base + (int)k;
	return k < in_files.n ? in_files.fds[k] : -1;
}

/*
 * Make the struct luo_file of every listed entry of an incoming session
 * still held as its table (the first call that needs them), carrying over
 * what the table's state bytes say.  The table was checked whole by
 * luo_sessions_in_parse().
 */
static int in_materialize(struct luo_session *s)
{
	size_t n = s->in.live, k = 0;

	if (!s->in.state)
		return 0;
	s->files = luo_bulk_alloc(n * sizeof(*s->files));
	s->pool = luo_bulk_alloc(n * sizeof(*s->pool));
	if (!s->files || !s->pool || luo_hash_reserve(&s->tokens, n)) {
		luo_bulk_free(s->files, n * sizeof(*s->files));
		luo_bulk_free(s->pool, n * sizeof(*s->pool));
		s->files = NULL;
		s->pool = NULL;
		pr_err("session '%s': out of memory for the table of its %zu files; free memory and retry",
		       s->name, n);
		return -ENOMEM;
	}
	s->cap = n;
	for (size_t i = 0; i < s->in.count; i++) {
		const struct luo_file_ser *fs = &s->in.fs[i];
		const struct luo_file_fd_ser *fds = &s->in.fds[i];
		uint8_t st = s->in.state[i];
		struct luo_file *f;

		if (st & LUO_IN_CLOSED)
			continue;
		f = &s->pool[k++];
		f->session = s;
		strcpy(f->compatible, fs->compatible);
		f->token = fs->token;
		f->data = fs->data;
		f->fd = in_entry_fd(s, i);
		f->carrier_index = fds->index;
		f->mode = fds->mode;
		f->dev = fds->dev;
		f->ino = fds->ino;
		f->checked_ahead = st & LUO_IN_CHECKED;
		f->must_check = in_files.must_check;
		f->retrieve_status = (st & LUO_IN_STALE)       ? -ESTALE
				     : (st & LUO_IN_RETRIEVED) ? 1
							       : 0;
		if (f->retrieve_status == 1)
			f->fh = luo_handler_find(f->compatible);
		/* Room reserved above: cannot fail. */
		(void)luo_session_add_file(s, f);
	}
	free(s->in.state);
	s->in.state = NULL;
	return 0;
}

/* Files listed in a session, whether or not made struct luo_file yet. */
static size_t session_nfiles(const struct luo_session *s)
{
	return s->in.state ? s->in.live : s->nfiles;
}

/*
 * Enter for an outgoing change: the state held, a state that allows it,
 * the sessions lock.  Not from a transition's callback (the state is
 * changing under it), nor from a file handler or FLB callback.
 */
static int enter_outgoing_how(const char *op, bool any_time)
{
	enum liveupdate_state st;
	int err;

	if (luo_state_writer() && !any_time) {
		pr_err("%s: not allowed from a live update callback", op);
		return -EDEADLK;
	}
	err = luo_state_hold();
	if (err)
		return err;
	st = liveupdate_get_state();
	if (st == LIVEUPDATE_STATE_NORMAL || st == LIVEUPDATE_STATE_UPDATED ||
	    (any_time && (st == LIVEUPDATE_STATE_PREPARED ||
			  st == LIVEUPDATE_STATE_FROZEN))) {
		err = luo_sessions_lock_enter(op);
		if (err)
			luo_state_unhold();
		return err;
	}
	luo_state_unhold();
	if (st == LIVEUPDATE_STATE_UNDEFINED) {
		pr_err("%s: call luo_init() first", op);
		return -ENODEV;
	}
	pr_err("%s: not allowed in state %s; cancel or finish the update first",
	       op, liveupdate_state_name(st));
	return -EBUSY;
}

static int enter_outgoing(const char *op)
{
	return enter_outgoing_how(op, false);
}

/* Enter for the incoming side and listings: any state. */
static int enter_any(const char *op)
{
	int err = luo_state_hold();

	if (err)
		return err;
	err = luo_sessions_lock_enter(op);
	if (err)
		luo_state_unhold();
	return err;
}

static void leave(void)
{
	luo_sessions_lock_leave();
	luo_state_unhold();
}

/* Answers luo_handler_in_use() (luo_file_set.c): a handler is in use while
 * an outgoing session has a file through it. */
static bool handler_in_use(const struct liveupdate_file_handler *fh)
{
	for (struct luo_session *s = outgoing; s; s = s->next)
		for (size_t i = 0; i < s->nfiles; i++)
			if (s->files[i]->fh == fh)
				return true;
	return false;
}

int liveupdate_create_session(const char *name, struct luo_session **session)
{
	struct luo_session *s;
	int err;

	if (!name_valid(name) || !session) {
		pr_err("liveupdate_create_session: the name must be 1 to 63 bytes, NUL terminated within 64");
		return -EINVAL;
	}
	err = enter_outgoing("liveupdate_create_session");
	if (err)
		return err;
	if (find(&outgoing_names, name)) {
		pr_err("liveupdate_create_session: session '%s' exists", name);
		err = -EEXIST;
	} else if (!(s = calloc(1, sizeof(*s)))) {
		err = -ENOMEM;
	} else if ((err = luo_hash_add(&outgoing_names, &s->name_node,
				       name_key(name)))) {
		free(s);
	} else {
		strcpy(s->name, name);
		s->next = outgoing;
		outgoing = s;
		/* Before the first outgoing session no handler is in use. */
		luo_handler_users_set(handler_in_use);
		*session = s;
	}
	leave();
	return err;
}

int liveupdate_retrieve_session(const char *name, struct luo_session **session)
{
	struct luo_session *s;
	int err;

	if (!session) {
		pr_err("liveupdate_retrieve_session: needs a place for the session");
		return -EINVAL;
	}
	/* As the kernel: a name no session can have is simply not found. */
	if (!name_valid(name)) {
		pr_info("liveupdate_retrieve_session: no incoming session has an empty name or one not NUL terminated within %d bytes",
			LIVEUPDATE_SESSION_NAME_LENGTH);
		return -ENOENT;
	}
	err = enter_any("liveupdate_retrieve_session");
	if (err)
		return err;
	s = find(&incoming_names, name);
	if (!s || s->finished) {
		pr_info("liveupdate_retrieve_session: no incoming session '%s'%s",
			name, s ? " (finished already)" : "");
		err = -ENOENT;
	} else if (s->retrieved) {
		pr_err("liveupdate_retrieve_session: '%s' was already retrieved",
		       name);
		err = -EINVAL;
	} else {
		s->retrieved = true;
		*session = s;
	}
	leave();
	return err;
}

int liveupdate_session_preserve_fd(struct luo_session *s, int fd,
				   uint64_t token)
{
	int err;

	if (!s)
		return -EINVAL;
	err = enter_outgoing("liveupdate_session_preserve_fd");
	if (err)
		return err;
	err = s->incoming ? -EINVAL : luo_file_preserve(s, fd, token);
	if (!err)
		luo_fdstore_preserved(s->name, token, fd);
	if (!err && watch)
		watch->preserved(s->name, token, fd);
	leave();
	return err;
}

/* Every outgoing file's descriptor, in serialization order; NULL if out
 * of memory (logged). */
static int *outgoing_fds(size_t *total)
{
	size_t k = 0;
	int *fds;

	*total = 0;
	for (struct luo_session *s = outgoing; s; s = s->next)
		*total += s->nfiles;
	fds = malloc((*total ? *total : 1) * sizeof(*fds));
	if (!fds) {
		pr_err("liveupdate_prepare: out of memory listing %zu preserved files",
		       *total);
		return NULL;
	}
	for (struct luo_session *s = outgoing; s; s = s->next)
		for (size_t i = 0; i < s->nfiles; i++)
			fds[k++] = s->files[i]->fd;
	return fds;
}

static void inherit_kept_close(void)
{
	for (size_t i = 0; i < inherit_kept.n; i++)
		close(inherit_kept.v[i]);
	free(inherit_kept.v);
	memset(&inherit_kept, 0, sizeof(inherit_kept));
}

static void carrier_out_close(void)
{
	if (carrier_out.fd >= 0 && carrier_out.base) {
		size_t n;
		int *fds = outgoing_fds(&n);

		/* Inherited: the files stay ours, closed on exec again. */
		if (fds)
			luo_inherit_restore(fds, n, carrier_out.fd);
		else /* one by one, without the list */
			for (struct luo_session *s = outgoing; s; s = s->next)
				for (size_t i = 0; i < s->nfiles; i++)
					fcntl(s->files[i]->fd, F_SETFD,
					      FD_CLOEXEC);
		if (!fds)
			close(carrier_out.fd);
		free(fds);
		inherit_kept_close();
	} else if (carrier_out.fd >= 0) {
		close(carrier_out.fd); /* the files in flight are dropped */
	}
	carrier_out.fd = -1;
	carrier_out.base = 0;
	out_ser.in_flight = false;
}

/*
 * An inherited file unpreserved after the freeze keeps its number open
 * (the new image closes it on arrival); the library's reference becomes a
 * duplicate elsewhere, which luo_file_unpreserve() closes.  If no
 * duplicate can be had the number is left free: the new image sees the
 * hole and checks every file's identity.
 */
static void inherit_keep(struct luo_file *f)
{
	int dup;

	if (inherit_kept.n == inherit_kept.cap) {
		size_t cap = inherit_kept.cap ? 2 * inherit_kept.cap : 16;
		int *v = realloc(inherit_kept.v, cap * sizeof(*v));

		if (!v)
			return;
		inherit_kept.v = v;
		inherit_kept.cap = cap;
	}
	dup = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return;
	inherit_kept.v[inherit_kept.n++] = f->fd;
	f->fd = dup;
}

/*
 * Drop a file while an update is in progress.  Before the sessions froze,
 * the carrier is closed, so the file's last reference goes at once (a
 * client that hung up is closed now, not in the new image), and freeze
 * writes the blocks again without it and sends the rest anew.  After
 * freeze: it keeps its place in the stream, its entry is marked closed
 * and the new image closes it on arrival.  Either way the token is free
 * at once and a cancel does not bring the file back.
 */
static int unpreserve_updating(struct luo_file *f)
{
	if (!out_ser.frozen) {
		carrier_out_close();
		out_ser.dropped = true;
	} else if (out_ser.in_flight) {
		struct luo_file_ser *e = &f->session->ser_files[f->ser_pos];

		/* The handover is sealed (checksummed): too late. */
		if (luo_kho_sealed()) {
			pr_err("session '%s' token %#llx: the handover is sealed for the exec; unpreserve before liveupdate_reboot()'s reboot step",
			       f->session->name, (unsigned long long)f->token);
			return -EBUSY;
		}
		luo_kho_meta_touch(f->session->ser_files);
		memset(e->compatible, 0, sizeof(e->compatible));
		strcpy(e->compatible, LUO_FILE_CLOSED_COMPATIBLE);
		e->data = 0;
		luo_file_unfreeze(f);
		if (carrier_out.base)
			inherit_keep(f);
	}
	luo_file_unpreserve(f);
	luo_flbs_reserialize();
	return 0;
}

int liveupdate_session_unpreserve_fd(struct luo_session *s, uint64_t token)
{
	struct luo_file *f;
	int err;

	if (!s)
		return -EINVAL;
	/* Allowed until the exec, from cancel and freeze callbacks too. */
	err = enter_outgoing_how("liveupdate_session_unpreserve_fd", true);
	if (err)
		return err;
	f = s->incoming ? NULL : luo_file_by_token(s, token);
	if (!f) {
		pr_err("liveupdate_session_unpreserve_fd: %s",
		       s->incoming ? "the session is incoming"
				   : "no file with that token");
		err = s->incoming ? -EINVAL : -ENOENT;
	} else if (out_ser.serialized) {
		err = unpreserve_updating(f);
		if (!err)
			luo_fdstore_unpreserved(s->name, token);
	} else {
		luo_fdstore_unpreserved(s->name, token);
		luo_file_unpreserve(f);
	}
	if (!err && f && watch)
		watch->unpreserved(s->name, token);
	leave();
	return err;
}

/* @s was retrieved by this image and not finished yet; else says so. */
static bool in_session_open(const struct luo_session *s, const char *fn)
{
	if (s->incoming && s->retrieved && !s->finished)
		return true;
	pr_err("%s: session '%s' is not a retrieved incoming session", fn,
	       s->name);
	return false;
}

int liveupdate_session_retrieve_fd(struct luo_session *s, uint64_t token,
				   int *fd)
{
	struct luo_file *f;
	int err;

	if (!s || !fd)
		return -EINVAL;
	err = enter_any("liveupdate_session_retrieve_fd");
	if (err)
		return err;
	if (!in_session_open(s, "liveupdate_session_retrieve_fd")) {
		err = -EINVAL;
	} else if ((err = in_materialize(s))) {
		/* said why */
	} else if (!(f = luo_file_by_token(s, token))) {
		pr_err("session '%s' has no file with token %#llx", s->name,
		       (unsigned long long)token);
		err = -ENOENT;
	} else {
		err = luo_file_retrieve(f, fd);
	}
	leave();
	return err;
}

/*
 * One file of a table handed out without a struct luo_file (no registered
 * handler has a retrieve callback): what retrieve_first() does for it.
 * @fh is the handler of entry @i's compatible, or NULL if none is
 * registered.
 */
static int in_retrieve(struct luo_session *s, size_t i, bool check,
		       const struct liveupdate_file_handler *fh, int *fd)
{
	const struct luo_file_fd_ser *id = &s->in.fds[i];
	uint8_t *st = &s->in.state[i];

	if (*st & LUO_IN_STALE)
		return -ESTALE;
	if (!fh)
		return -ENXIO; /* not yet: register it and retry */
	*fd = in_entry_fd(s, i);
	if ((check || in_files.must_check) && !(*st & LUO_IN_CHECKED) &&
	    !luo_fd_is_file(*fd, id->mode, id->dev, id->ino)) {
		*st |= LUO_IN_STALE;
		return -ESTALE;
	}
	*st |= LUO_IN_RETRIEVED;
	s->in.nretrieved++;
	return 0;
}

/* Files of @s not handed out yet. */
static size_t pending_files(const struct luo_session *s)
{
	size_t n = 0;

	if (s->in.state)
		return s->in.live - s->in.nretrieved;
	for (size_t i = 0; i < s->nfiles; i++)
		n += s->files[i]->retrieve_status != 1;
	return n;
}

int liveupdate_session_retrieve_all(struct luo_session *s,
				    struct liveupdate_session_file *files,
				    size_t max)
{
	bool check = !(luo_global.init_flags & LUO_INIT_TRUST_CARRIER);
	struct liveupdate_file_handler *fh = NULL;
	size_t k = 0, failed = 0, pending;
	int err, first_err = 0;
	uint64_t first_token = 0;

	if (!s || (max && !files)) {
		pr_err("liveupdate_session_retrieve_all: needs a session and room for its files");
		return -EINVAL;
	}
	err = enter_any("liveupdate_session_retrieve_all");
	if (err)
		return err;
	if (!in_session_open(s, "liveupdate_session_retrieve_all")) {
		err = -EINVAL;
		goto out;
	}
	pending = pending_files(s);
	if (pending > max) {
		pr_err("liveupdate_session_retrieve_all: session '%s' has %zu files to hand out, room for %zu; nothing retrieved (liveupdate_session_get_tokens() with max 0 counts them)",
		       s->name, pending, max);
		err = -ENOSPC;
		goto out;
	}
	/* A handler's retrieve callback keeps state per file. */
	if (s->in.state && luo_handlers_retrieve_any()) {
		err = in_materialize(s);
		if (err)
			goto out;
	}
	if (s->in.state) {
		/* The entry whose compatible @fh was found for: an entry
		 * marked LUO_IN_SAME right after it needs no lookup. */
		size_t fh_at = SIZE_MAX;

		for (size_t i = 0; i < s->in.count; i++) {
			struct liveupdate_session_file *o = &files[k];
			const char *compat = s->in.fs[i].compatible;
			uint8_t st = s->in.state[i];

			if (i && (st & LUO_IN_SAME) && fh_at == i - 1)
				fh_at = i;
			if (st & (LUO_IN_CLOSED | LUO_IN_RETRIEVED))
				continue;
			if (fh_at != i) {
				if (!fh || strcmp(fh->compatible, compat))
					fh = luo_handler_find(compat);
				fh_at = i;
			}
			o->token = s->in.fs[i].token;
			o->fd = -1;
			o->err = in_retrieve(s, i, check, fh, &o->fd);
			if (o->err) {
				o->fd = -1;
				if (!failed++) {
					first_err = o->err;
					first_token = o->token;
				}
			}
			k++;
		}
	} else {
		for (size_t i = 0; i < s->nfiles; i++) {
			struct luo_file *f = s->files[i];
			struct liveupdate_session_file *o = &files[k];

			if (f->retrieve_status == 1)
				continue;
			o->token = f->token;
			o->fd = -1;
			o->err = luo_file_retrieve(f, &o->fd);
			if (o->err) {
				o->fd = -1;
				if (!failed++) {
					first_err = o->err;
					first_token = o->token;
				}
			}
			k++;
		}
	}
	if (failed)
		pr_err("session '%s': %zu of the %zu files were not retrieved (token %#llx: %s; each entry says why)",
		       s->name, failed, k, (unsigned long long)first_token,
		       strerror(-first_err));
	err = (int)k;
out:
	leave();
	return err;
}

/* Without memory to make its files: close the ones not handed out. */
static void in_table_close(struct luo_session *s)
{
	for (size_t i = 0; i < s->in.count; i++) {
		int fd = in_entry_fd(s, i);

		if (!(s->in.state[i] & (LUO_IN_CLOSED | LUO_IN_RETRIEVED)) &&
		    fd >= 0)
			close(fd);
	}
	free(s->in.state);
	s->in.state = NULL;
}

static void session_finish_files(struct luo_session *s)
{
	if (in_materialize(s)) {
		pr_err("session '%s': its files were closed without their handlers' finish",
		       s->name);
		in_table_close(s);
	}
	for (size_t i = 0; i < s->nfiles; i++) {
		luo_file_finish(s->files[i]);
		file_free(s, s->files[i]);
	}
	s->nfiles = 0;
	s->finished = true;
}

int liveupdate_session_finish(struct luo_session *s)
{
	int err;

	if (!s)
		return -EINVAL;
	err = enter_any("liveupdate_session_finish");
	if (err)
		return err;
	if (!in_session_open(s, "liveupdate_session_finish")) {
		err = -EINVAL;
	} else {
		session_finish_files(s);
	}
	leave();
	return err;
}

int liveupdate_session_close(struct luo_session *s)
{
	int err;

	if (!s)
		return -EINVAL;
	err = enter_outgoing("liveupdate_session_close");
	if (err)
		return err;
	if (s->incoming) {
		err = -EINVAL;
	} else {
		while (s->nfiles) {
			uint64_t token = s->files[s->nfiles - 1]->token;

			luo_fdstore_unpreserved(s->name, token);
			luo_file_unpreserve(s->files[s->nfiles - 1]);
			if (watch)
				watch->unpreserved(s->name, token);
		}
		unlink_session(&outgoing, s);
		luo_hash_del(&outgoing_names, &s->name_node);
		session_free(s);
	}
	leave();
	return err;
}

const char *liveupdate_session_name(const struct luo_session *s)
{
	return s ? s->name : NULL;
}

int liveupdate_session_get_tokens(struct luo_session *s, uint64_t *tokens,
				  size_t max)
{
	bool nested;
	int err;

	if (!s || (max && !tokens)) {
		pr_err("liveupdate_session_get_tokens: needs a session and room for the tokens");
		return -EINVAL;
	}
	/* Read only: allowed inside file handler and FLB callbacks too. */
	nested = luo_sessions_lock_held();
	err = nested ? 0 : enter_any("liveupdate_session_get_tokens");
	if (err)
		return err;
	if (s->incoming && (!s->retrieved || s->finished)) {
		pr_err("liveupdate_session_get_tokens: incoming session '%s' is %s",
		       s->name, s->finished ? "finished" : "not retrieved");
		err = -EINVAL;
	} else if (s->in.state) {
		/* From the table: no struct luo_file needed. */
		for (size_t i = 0, k = 0; i < s->in.count && k < max; i++)
			if (!(s->in.state[i] & LUO_IN_CLOSED))
				tokens[k++] = s->in.fs[i].token;
		err = (int)s->in.live;
	} else {
		for (size_t i = 0; i < s->nfiles && i < max; i++)
			tokens[i] = s->files[i]->token;
		err = (int)s->nfiles;
	}
	if (!nested)
		leave();
	return err;
}

static void serialized_free(void)
{
	for (size_t i = 0; i < out_ser.nsessions; i++)
		if (out_ser.file_blocks[i])
			luo_kho_free(out_ser.file_blocks[i]);
	free(out_ser.file_blocks);
	if (out_ser.header)
		luo_kho_free(out_ser.header);
	memset(&out_ser, 0, sizeof(out_ser));
	carrier_forced = false;
	for (struct luo_session *s = outgoing; s; s = s->next)
		s->ser_files = NULL;
	luo_flbs_unserialize();
	luo_abi_out_set_sessions(0, 0);
}

/* Write a session's files: the kernel's luo_file_ser, then how they
 * travel; @index counts files across sessions. */
static void serialize_files(struct luo_session *s, void *block, uint32_t *index)
{
	struct luo_file_ser *fs = block;
	struct luo_file_fd_ser *fds = (void *)(fs + s->nfiles);

	luo_kho_meta_touch(block);
	for (size_t i = 0; i < s->nfiles; i++) {
		struct luo_file *f = s->files[i];

		f->ser_pos = i;
		memset(&fs[i], 0, sizeof(fs[i]));
		strcpy(fs[i].compatible, f->compatible);
		fs[i].data = f->data;
		fs[i].token = f->token;
		fds[i] = (struct luo_file_fd_ser){.index = (*index)++,
						  .mode = f->mode,
						  .dev = f->dev,
						  .ino = f->ino};
	}
}

/* Whether the files cross the exec inherited rather than in flight. */
static bool inherit_wanted(void)
{
	return (luo_global.init_flags & LUO_INIT_EXEC_INHERIT) &&
	       !carrier_forced;
}

/*
 * Put every outgoing file in flight, in serialization order; or, with
 * inheritance, move the library's references into the inherited range
 * (luo_inherit.c), in the same order.
 */
static int send_files(void)
{
	size_t total, k = 0;
	int *fds, err = 0, base = 0;

	fds = outgoing_fds(&total);
	if (!fds)
		return -ENOMEM;
	if (!total) { /* none (left): the node says so, as it did at first */
		free(fds);
		return luo_abi_out_set_carrier(0, 0, 0, 0);
	}
	if (inherit_wanted()) {
		err = luo_inherit_place(fds, total, &carrier_out.fd,
					&carrier_out.ino, &base);
		/* Moved even on failure (still references, FD_CLOEXEC). */
		for (struct luo_session *s = outgoing; s; s = s->next)
			for (size_t i = 0; i < s->nfiles; i++)
				s->files[i]->fd = fds[k++];
		/* Never fail an update the carrier can do (said why). */
		if (err)
			pr_warn("liveupdate_prepare: the %zu preserved files go on the carrier this time, not inherited",
				total);
	}
	if (!base)
		err = luo_carrier_send(fds, total, &carrier_out.fd,
				       &carrier_out.ino);
	free(fds);
	if (err)
		return err;
	carrier_out.count = total;
	carrier_out.base = base;
	err = luo_abi_out_set_carrier(carrier_out.fd, carrier_out.ino, total,
				      (uint64_t)base);
	if (err)
		carrier_out_close();
	return err;
}

static int sessions_prepare(void)
{
	size_t n = session_list_len(outgoing), i = 0, size;
	uint64_t flbs_pa = 0;
	uint32_t index = 0;
	int err;

	if (!n)
		goto flbs;
	size = sizeof(*out_ser.header) + n * sizeof(*out_ser.ser);
	out_ser.file_blocks = calloc(n, sizeof(void *));
	err = out_ser.file_blocks
		      ? luo_kho_alloc_meta(size, (void **)&out_ser.header)
		      : -ENOMEM;
	if (err)
		goto fail;
	out_ser.nsessions = n;
	out_ser.header->count = n;
	out_ser.header->pgcnt = (size + 4095) / 4096;
	out_ser.ser = (void *)(out_ser.header + 1);
	for (struct luo_session *s = outgoing; s; s = s->next, i++) {
		struct luo_session_ser *ss = &out_ser.ser[i];

		memset(ss, 0, sizeof(*ss));
		strcpy(ss->name, s->name);
		ss->file_set_ser.count = s->nfiles;
		if (!s->nfiles)
			continue;
		s->freeze_ops = false;
		for (size_t k = 0; k < s->nfiles; k++) {
			struct luo_file *f = s->files[k];

			s->freeze_ops = s->freeze_ops || f->fh->ops->freeze ||
					f->fh->ops->unfreeze;
			err = luo_file_check_held(f);
			if (!err &&
			    !strcmp(f->compatible, LUO_EPOLL_COMPATIBLE))
				err = luo_epoll_check_targets(f->fd, s->name,
							      f->token);
			if (err)
				goto fail;
		}
		err = luo_kho_alloc_meta(s->nfiles * FILE_SER_SIZE,
					 &out_ser.file_blocks[i]);
		if (err)
			goto fail;
		serialize_files(s, out_ser.file_blocks[i], &index);
		s->ser_files = out_ser.file_blocks[i];
		ss->file_set_ser.files =
			kho_ptr_to_offset(out_ser.file_blocks[i]);
	}
flbs:
	err = luo_flbs_serialize(&flbs_pa);
	if (err)
		goto fail;
	luo_abi_out_set_sessions(
		out_ser.header ? kho_ptr_to_offset(out_ser.header) : 0,
		flbs_pa);
	out_ser.serialized = true;
	/* In flight from now on, outside the blackout: the descriptors
	 * cannot change until the update ends (cancel drops them). */
	err = send_files();
	if (err) { /* said why already */
		carrier_out_close();
		serialized_free();
		return err;
	}
	out_ser.in_flight = true;
	/* The seal inside the blackout need not read them again. */
	for (i = 0; i < n; i++)
		if (out_ser.file_blocks[i])
			luo_kho_meta_sum_ahead(out_ser.file_blocks[i]);
	return 0;
fail:
	pr_err("cannot serialize the sessions: %s", strerror(-err));
	serialized_free();
	return err;
}

static void unfreeze_all(void)
{
	for (struct luo_session *s = outgoing; s; s = s->next)
		for (size_t i = s->nfiles; i--;)
			luo_file_unfreeze(s->files[i]);
}

/*
 * Files were dropped after prepare: write every session's file block
 * again from what is left (they only shrink), renumbering the stream.
 */
static void reserialize_files(void)
{
	uint32_t index = 0;
	size_t k = 0;

	for (struct luo_session *s = outgoing; s; s = s->next, k++) {
		struct luo_session_ser *ss = &out_ser.ser[k];

		ss->file_set_ser.count = s->nfiles;
		if (s->nfiles) {
			serialize_files(s, out_ser.file_blocks[k], &index);
			continue;
		}
		if (out_ser.file_blocks[k])
			luo_kho_free(out_ser.file_blocks[k]);
		out_ser.file_blocks[k] = NULL;
		s->ser_files = NULL;
		ss->file_set_ser.files = 0;
	}
	luo_flbs_reserialize();
	out_ser.dropped = false;
}

/* Handlers' callbacks run with the sessions lock held, as everywhere. */
static int sessions_freeze(void)
{
	int err = 0;

	luo_sessions_lock_enter("liveupdate_freeze");
	for (struct luo_session *s = outgoing; s && !err; s = s->next) {
		/* Nothing to call and no data to change: 10,000 sockets
		 * walked cost 0.1 ms of the blackout. */
		if (!s->freeze_ops)
			continue;
		for (size_t i = 0; i < s->nfiles && !err; i++) {
			struct luo_file *f = s->files[i];
			struct luo_file_ser *e;

			/* On failure the core cancels: unfreeze.  Files dropped
			 * since prepare left s->files: address by ser_pos. */
			err = luo_file_freeze(f);
			if (err || out_ser.dropped)
				continue;
			e = &s->ser_files[f->ser_pos];
			if (e->data == f->data)
				continue;
			luo_kho_meta_touch(s->ser_files);
			e->data = f->data;
		}
	}
	if (!err && out_ser.dropped) {
		reserialize_files();
		err = send_files();
		out_ser.in_flight = !err;
	}
	out_ser.frozen = !err;
	luo_sessions_lock_leave();
	return err;
}

void luo_sessions_in_reserve(size_t count)
{
	/* Per file: its entry in the pool, in the session's array, in the
	 * received descriptors, and under 2 buckets of its token table;
	 * plus the page rounding of each table. */
	size_t per_file = sizeof(struct luo_file) + sizeof(struct luo_file *) +
			  sizeof(int) + 2 * sizeof(void *);

	if (count && luo_bulk_reserve(count * per_file + (256u << 10)))
		pr_debug("could not populate the tables of %zu files ahead",
			 count);
}

int luo_sessions_send_ahead(int *rx, uint64_t *ino, size_t *count)
{
	/* In flight since prepare; files dropped since go again at freeze. */
	int err = luo_sessions_lock_enter("liveupdate_update");

	if (err)
		return err;
	/* Registrations are keyed by this process's numbers. */
	for (struct luo_session *s = outgoing; s; s = s->next)
		for (size_t i = 0; i < s->nfiles; i++)
			if (!strcmp(s->files[i]->compatible,
				    LUO_EPOLL_COMPATIBLE)) {
				pr_err("session '%s' token %#llx: an epoll instance crosses only an exec-mode update; unpreserve it for a spawn-mode one",
				       s->name,
				       (unsigned long long)s->files[i]->token);
				luo_sessions_lock_leave();
				return -EINVAL;
			}
	/* A spawned image can only take them off a socket. */
	carrier_forced = true;
	if (out_ser.in_flight && carrier_out.base) {
		carrier_out_close();
		err = send_files();
		out_ser.in_flight = !err;
		if (err) {
			luo_sessions_lock_leave();
			return err;
		}
	}
	*rx = out_ser.in_flight ? carrier_out.fd : -1;
	*ino = carrier_out.ino;
	*count = *rx >= 0 ? carrier_out.count : 0;
	luo_sessions_lock_leave();
	return err;
}

/* The carrier is the only descriptor the exec must keep. */
static int sessions_reboot(void)
{
	if (carrier_out.fd >= 0 && fcntl(carrier_out.fd, F_SETFD, 0)) {
		int err = -errno;

		pr_err("liveupdate_reboot: cannot let the carrier of the preserved files cross the exec: %s",
		       strerror(-err));
		return err;
	}
	return 0;
}

static void sessions_cancel(void)
{
	luo_sessions_lock_enter("liveupdate_cancel");
	carrier_out_close();
	unfreeze_all();
	serialized_free();
	luo_sessions_lock_leave();
}

static void sessions_finish(void)
{
	luo_sessions_lock_enter("liveupdate_finish");
	for (struct luo_session *s = incoming; s; s = s->next)
		if (!s->finished)
			session_finish_files(s);
	luo_flbs_finish_all();
	while (incoming) {
		struct luo_session *s = incoming;

		incoming = s->next;
		session_free(s);
	}
	luo_hash_free(&incoming_names);
	in_files_free();
	luo_sessions_lock_leave();
}

/* Sessions, the files in them, the FLBs and handlers those files use. */
static void sessions_forget(void)
{
	luo_sessions_forget();
	luo_flbs_forget();
	luo_handlers_forget();
}

const struct luo_participant luo_sessions_participant = {
	.name = "sessions",
	.prepare = sessions_prepare,
	.freeze = sessions_freeze,
	.cancel = sessions_cancel,
	.finish = sessions_finish,
	.reboot = sessions_reboot,
	.forget = sessions_forget,
};

/* Forget everything without touching the arena (luo_exit, refusal). */
void luo_sessions_forget(void)
{
	struct luo_session *lists[] = {outgoing, incoming};

	for (int k = 0; k < 2; k++) {
		while (lists[k]) {
			struct luo_session *s = lists[k];

			lists[k] = s->next;
			if (s->in.state)
				in_table_close(s);
			for (size_t i = 0; i < s->nfiles; i++) {
				struct luo_file *f = s->files[i];

				/* Outgoing: our duplicate.  Incoming: ours
				 * unless handed out or no longer that file. */
				if (f->fd >= 0 &&
				    (!s->incoming || f->retrieve_status != 1))
					close(f->fd);
				file_free(s, f);
			}
			session_free(s);
		}
	}
	outgoing = incoming = NULL;
	luo_hash_free(&outgoing_names);
	luo_hash_free(&incoming_names);
	free(out_ser.file_blocks);
	memset(&out_ser, 0, sizeof(out_ser));
	free(in_closed.v);
	memset(&in_closed, 0, sizeof(in_closed));
	in_files_free();
}

/*
 * Whether the listed entries of a table have distinct tokens: an
 * open-addressed index of entry numbers, about 2.7 bytes per file, freed
 * at once (the session looks tokens up in its own table later).
 * Return: 0; 1 + the entry whose token was seen before; -ENOMEM.
 */
static ssize_t tokens_repeat(const struct luo_file_ser *fs,
			     const uint8_t *state, size_t count)
{
	size_t nb = 8, mask;
	uint32_t *slot;
	ssize_t dup = 0;

	while (nb < count + count / 2)
		nb *= 2;
	slot = luo_bulk_alloc(nb * sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	mask = nb - 1;
	for (size_t i = 0; i < count && !dup; i++) {
		uint64_t key = fs[i].token;
		size_t h;

		if (state[i] & LUO_IN_CLOSED)
			continue;
		key ^= key >> 33;
		key *= 0xff51afd7ed558ccdULL;
		key ^= key >> 33;
		for (h = key & mask; slot[h]; h = (h + 1) & mask)
			if (fs[slot[h] - 1].token == fs[i].token)
				break;
		if (slot[h])
			dup = (ssize_t)i + 1;
		else
			slot[h] = (uint32_t)i + 1;
	}
	luo_bulk_free(slot, nb * sizeof(*slot));
	return dup;
}

/*
 * Check a session's file table whole, in place in the arena: each entry,
 * the stream numbering and the tokens.  Its struct luo_file are made
 * only when a call needs them (in_materialize()).
 */
static int parse_files(struct luo_session *s,
		       const struct luo_file_set_ser *set, uint32_t *index,
		       char *why, size_t whylen)
{
	const struct luo_file_ser *fs;
	const struct luo_file_fd_ser *fds;
	void *block;
	ssize_t dup = 0;
	/* Tokens rising through the listed entries are distinct already. */
	bool rising = true, any = false;
	uint64_t last = 0;

	if (!set->count)
		return set->files
			       ? luo_reason(
					 why, whylen, -EBADMSG,
					 "session '%s' has no files but a file set offset",
					 s->name)
			       : 0;
	if (set->count > (1ULL << 24) ||
	    luo_kho_incoming_block(set->files, set->count * FILE_SER_SIZE, true,
				   &block))
		return luo_reason(
			why, whylen, -EBADMSG,
			"session '%s': file set (%llu files at %#llx) is not a preserved block of that size",
			s->name, (unsigned long long)set->count,
			(unsigned long long)set->files);
	fs = block;
	fds = (const void *)(fs + set->count);
	s->in.state = calloc(set->count, 1);
	if (!s->in.state)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	s->in.fs = fs;
	s->in.fds = fds;
	s->in.count = set->count;
	s->in.first = *index;
	for (size_t i = 0; i < set->count; i++) {
		/* Runs of one handler are the rule: its compatible is checked
		 * once, and retrieval need not look it up again. */
		bool same = i && !memcmp(fs[i].compatible, fs[i - 1].compatible,
					 LIVEUPDATE_HNDL_COMPAT_LENGTH);

		if ((!same &&
		     !luo_compatible_valid(fs[i].compatible,
					   LIVEUPDATE_HNDL_COMPAT_LENGTH)) ||
		    fds[i].index != *index || (fds[i].mode & ~S_IFMT))
			return luo_reason(why, whylen, -EBADMSG,
					  "session '%s': file %zu is malformed",
					  s->name, i);
		(*index)++;
		/* Unpreserved after freeze: closed on arrival, not listed. */
		if (same ? !(s->in.state[i - 1] & LUO_IN_CLOSED)
			 : strcmp(fs[i].compatible,
				  LUO_FILE_CLOSED_COMPATIBLE)) {
			s->in.state[i] = same ? LUO_IN_SAME : 0;
			rising = rising && (!any || fs[i].token > last);
			last = fs[i].token;
			any = true;
			s->in.live++;
			continue;
		}
		s->in.state[i] = LUO_IN_CLOSED | (same ? LUO_IN_SAME : 0);
		if (in_closed.n == in_closed.cap) {
			size_t cap = in_closed.cap ? 2 * in_closed.cap : 16;
			uint32_t *v = realloc(in_closed.v, cap * sizeof(*v));

			if (!v)
				return luo_reason(why, whylen, -ENOMEM,
						  "out of memory");
			in_closed.v = v;
			in_closed.cap = cap;
		}
		in_closed.v[in_closed.n++] = fds[i].index;
	}
	if (!rising)
		dup = tokens_repeat(fs, s->in.state, set->count);
	if (dup < 0)
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	if (dup)
		return luo_reason(why, whylen, -EBADMSG,
				  "session '%s': token %#llx appears twice",
				  s->name,
				  (unsigned long long)fs[dup - 1].token);
	return 0;
}

/* The carrier as the LUO FDT names it; its file count must match. */
static int parse_carrier(const void *luo_fdt, int node, uint32_t files,
			 char *why, size_t whylen)
{
	const char *props[] = {LUO_FILES_CARRIER_FD, LUO_FILES_CARRIER_INO,
			       LUO_FILES_COUNT};
	uint64_t v[3], base = 0;
	const fdt64_t *b;
	int blen;

	for (int i = 0; i < 3; i++) {
		int len;
		const fdt64_t *p = fdt_getprop(luo_fdt, node, props[i], &len);

		if (!p || len != sizeof(*p))
			return luo_reason(why, whylen, -EBADMSG,
					  "'%s' node lacks '%s'",
					  LUO_FILES_NODE, props[i]);
		v[i] = fdt64_ld(p);
	}
	if (v[2] != files || (files && v[0] > INT32_MAX))
		return luo_reason(
			why, whylen, -EBADMSG,
			"the carrier holds %llu files, the sessions %u",
			(unsigned long long)v[2], files);
	/* Absent from an image without inheritance: in flight. */
	b = fdt_getprop(luo_fdt, node, LUO_FILES_INHERIT_BASE, &blen);
	if (b && blen == sizeof(*b))
		base = fdt64_ld(b);
	if (base != (uint64_t)luo_global.inherit_base ||
	    (base && (!files || base + files != v[0] || base <= 2)))
		return luo_reason(
			why, whylen, -EBADMSG,
			"inherited files: the LUO FDT names %u files at %llu under sentinel %llu, the environment base %d",
			files, (unsigned long long)base,
			(unsigned long long)v[0], luo_global.inherit_base);
	carrier_in.base = (int)base;
	if (base) {
		/* Checked by its inode at adoption. */
		carrier_in.fd = (int)v[0];
		carrier_in.ino = v[1];
		carrier_in.count = files;
		return 0;
	}
	/* Both must name it; if they disagree the files are lost (and say
	 * so when asked for), but memory and subsystems still come across. */
	carrier_in.fd = files && ((int)v[0] == luo_global.carrier_fd ||
				  luo_carrier_ahead_ready(v[1], files))
				? (int)v[0]
				: -1;
	carrier_in.ino = v[1];
	carrier_in.count = files;
	return 0;
}

int luo_sessions_in_parse(const void *luo_fdt, uint64_t sessions_pa, char *why,
			  size_t whylen)
{
	const struct luo_session_header_ser *h;
	const struct luo_session_ser *ss;
	uint32_t index = 0;
	int node, err = 0;
	void *block;

	if (!sessions_pa)
		return 0;
	node = fdt_subnode_offset(luo_fdt, 0, LUO_FILES_NODE);
	if (node < 0 ||
	    fdt_node_check_compatible(luo_fdt, node, LUO_FILES_COMPATIBLE))
		return luo_reason(
			why, whylen, -EPROTONOSUPPORT,
			"sessions present but no '%s' node compatible with '%s'",
			LUO_FILES_NODE, LUO_FILES_COMPATIBLE);
	if (luo_kho_incoming_block(sessions_pa, sizeof(*h), true, &block))
		return luo_reason(
			why, whylen, -EBADMSG,
			"session header at %#llx is not a preserved block",
			(unsigned long long)sessions_pa);
	h = block;
	if (h->count > (1ULL << 20) ||
	    luo_kho_incoming_block(sessions_pa,
				   sizeof(*h) + h->count * sizeof(*ss), true,
				   &block) ||
	    h->pgcnt != (sizeof(*h) + h->count * sizeof(*ss) + 4095) / 4096)
		return luo_reason(
			why, whylen, -EBADMSG,
			"session block: %llu sessions in %llu pages do not fit its block",
			(unsigned long long)h->count,
			(unsigned long long)h->pgcnt);
	ss = (const void *)(h + 1);
	for (size_t i = 0; i < h->count && !err; i++) {
		struct luo_session *s;

		if (!name_valid(ss[i].name) ||
		    find(&incoming_names, ss[i].name)) {
			err = luo_reason(
				why, whylen, -EBADMSG,
				"session %zu has a bad or duplicate name", i);
			break;
		}
		s = calloc(1, sizeof(*s));
		if (!s || luo_hash_add(&incoming_names, &s->name_node,
				       name_key(ss[i].name))) {
			free(s);
			err = luo_reason(why, whylen, -ENOMEM, "out of memory");
			break;
		}
		strcpy(s->name, ss[i].name);
		s->incoming = true;
		s->next = incoming;
		incoming = s;
		err = parse_files(s, &ss[i].file_set_ser, &index, why, whylen);
	}
	err = err ?: parse_carrier(luo_fdt, node, index, why, whylen);
	if (err)
		luo_sessions_in_refuse();
	return err;
}

/*
 * The handover is refused: forget the incoming sessions and drop the files
 * in flight by closing the carrier, if it still is the carrier.
 */
void luo_sessions_in_refuse(void)
{
	/* luo_init() closes the carrier the environment names. */
	carrier_in.fd = -1;
	luo_sessions_forget();
}

int luo_sessions_carrier_fd(void)
{
	return carrier_out.fd;
}

int luo_sessions_inherit_base(void)
{
	return carrier_out.fd >= 0 ? carrier_out.base : 0;
}

/* Every listed incoming file is refused (they did not arrive). */
static void in_mark_stale(void)
{
	for (struct luo_session *s = incoming; s; s = s->next)
		for (size_t i = 0; s->in.state && i < s->in.count; i++)
			if (!(s->in.state[i] & LUO_IN_CLOSED))
				s->in.state[i] |= LUO_IN_STALE;
}

/*
 * A file received ahead was looked at when it arrived, before the freeze;
 * the sealed table is the authority on what it must be.  A match spares
 * the retrieval its fstat() (inside the blackout); a mismatch is refused
 * there as if it had been seen then.  Only carrier-received-ahead files
 * have @ids filled (luo_carrier_ahead_take() leaves them zero otherwise).
 */
static void in_mark_checked_ahead(const struct luo_carrier_ahead_id *ids)
{
	for (struct luo_session *s = incoming; s; s = s->next) {
		for (size_t i = 0; s->in.state && i < s->in.count; i++) {
			const struct luo_file_fd_ser *f = &s->in.fds[i];
			const struct luo_carrier_ahead_id *id = &ids[f->index];

			if (s->in.state[i] & LUO_IN_CLOSED)
				continue;
			if (id->mode && id->mode == f->mode &&
			    id->dev == f->dev && id->ino == f->ino)
				s->in.state[i] |= LUO_IN_CHECKED;
			else
				s->in.state[i] |= LUO_IN_STALE;
		}
	}
}

/*
 * Inherited files: check the sentinel and the range once; each file's
 * number is its base plus its place in the stream.  If the sentinel is
 * gone no number is trusted (every file is refused with -ESTALE, none
 * closed); if the range has a hole each file's identity is checked at
 * retrieval even with LUO_INIT_TRUST_CARRIER.
 */
static void adopt_inherited(void)
{
	char why[256];
	size_t n = carrier_in.count;
	int base = carrier_in.base;
	bool holes = false;
	int err;

	err = luo_inherit_adopt(carrier_in.fd, carrier_in.ino, base, n, &holes,
				why, sizeof(why));
	carrier_in.fd = -1;
	if (err)
		pr_err("the %zu inherited files cannot be trusted: %s; retrieving them fails with -ESTALE",
		       n, why);
	else if (holes)
		pr_warn("a descriptor of the %zu inherited files (%d to %zu) was closed before luo_init(): every file's identity is checked at retrieval",
			n, base, (size_t)base + n - 1);
	in_files.base = base;
	in_files.ok = !err;
	in_files.must_check = holes;
	if (err)
		in_mark_stale();
	for (size_t i = 0; !err && i < in_closed.n; i++)
		close(base + (int)in_closed.v[i]);
	free(in_closed.v);
	memset(&in_closed, 0, sizeof(in_closed));
}

/*
 * Once the whole handover is accepted, take the files off the carrier:
 * they arrive with FD_CLOEXEC.  If the carrier is gone (the new image
 * closed or reused its descriptor before luo_init()) or broken, every
 * file is refused, and says so when asked for.
 */
void luo_sessions_in_adopt(void)
{
	char why[256];
	size_t n = carrier_in.count;
	struct luo_carrier_ahead_id *ids = NULL;
	bool trust = luo_global.init_flags & LUO_INIT_TRUST_CARRIER;
	int *fds, err;

	if (n && carrier_in.base) {
		adopt_inherited();
		return;
	}
	if (!n || carrier_in.fd < 0)
		/* Not the carrier we will read: not one to keep open. */
		luo_carrier_discard_unverified(luo_global.carrier_fd);
	if (!n)
		return;
	fds = luo_bulk_alloc(n * sizeof(*fds));
	/* A spawned image took them ahead, before the freeze, and read
	 * their identities then (unless trusted, compared below). */
	err = fds ? luo_carrier_ahead_take(carrier_in.ino, fds,
					   trust ? NULL : &ids, n)
		  : -ENOMEM;
	if (err == -ESTALE)
		luo_reason(why, sizeof(why), err,
			   "the files received ahead do not match the carrier");
	else if (err == -ENOENT)
		err = luo_carrier_receive(carrier_in.fd, carrier_in.ino, fds, n,
					  why, sizeof(why));
	else if (err == -ENOMEM)
		luo_reason(why, sizeof(why), -ENOMEM, "out of memory");
	if (err == -ENOMEM)
		luo_carrier_discard(carrier_in.fd, carrier_in.ino);
	carrier_in.fd = -1;
	if (err)
		pr_err("the %zu preserved files did not arrive: %s; retrieving them fails with -ESTALE",
		       n, why);
	if (err)
		in_mark_stale();
	else if (ids)
		in_mark_checked_ahead(ids);
	for (size_t i = 0; !err && i < in_closed.n; i++)
		close(fds[in_closed.v[i]]);
	if (in_closed.n)
		pr_debug(
			"%zu files unpreserved after the freeze were closed on arrival",
			in_closed.n);
	free(in_closed.v);
	memset(&in_closed, 0, sizeof(in_closed));
	/* Looked up by carrier index until the sessions are finished. */
	in_files.fds = fds;
	in_files.n = n;
	in_files.ok = !err;
	if (ids)
		luo_bulk_free(ids, n * sizeof(*ids));
}

static const char *file_kind(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFSOCK:
		return "socket";
	case S_IFIFO:
		return "fifo";
	case S_IFCHR:
		return "chardev";
	case S_IFDIR:
		return "dir";
	default:
		return "anon";
	}
}

static const char *file_status(const struct luo_file *f)
{
	if (!f->session->incoming)
		return f->frozen || (out_ser.frozen && !f->session->freeze_ops)
			       ? "frozen"
			       : "preserved";
	if (f->retrieve_status > 0)
		return "retrieved";
	if (f->retrieve_status < 0)
		return "refused";
	return f->fd >= 0 ? "waiting" : "in-flight";
}

static void list_sessions(struct luo_session *list,
			  void (*fn)(const struct luo_session_row *row,
				     void *arg),
			  void *arg)
{
	for (struct luo_session *s = list; s; s = s->next) {
		struct luo_session_row row = {
			.name = s->name,
			.incoming = s->incoming,
			.nfiles = session_nfiles(s),
			.status = !s->incoming	 ? "open"
				  : s->finished	 ? "finished"
				  : s->retrieved ? "retrieved"
						 : "waiting",
		};

		fn(&row, arg);
	}
}

static void list_files(struct luo_session *list,
		       void (*fn)(const struct luo_file_row *row, void *arg),
		       void *arg)
{
	for (struct luo_session *s = list; s; s = s->next) {
		if (in_materialize(s))
			continue; /* said why */
		for (size_t i = 0; i < s->nfiles; i++) {
			const struct luo_file *f = s->files[i];
			struct luo_file_row row = {
				.session = s->name,
				.incoming = s->incoming,
				.token = f->token,
				.handler = f->compatible,
				.kind = file_kind(f->mode),
				.ino = f->ino,
				.status = file_status(f),
			};

			fn(&row, arg);
		}
	}
}

void luo_sessions_foreach(void (*fn)(const struct luo_session_row *row,
				     void *arg),
			  void *arg)
{
	pthread_mutex_lock(&luo_sessions_lock);
	list_sessions(outgoing, fn, arg);
	list_sessions(incoming, fn, arg);
	pthread_mutex_unlock(&luo_sessions_lock);
}

void luo_session_files_foreach(void (*fn)(const struct luo_file_row *row,
					  void *arg),
			       void *arg)
{
	pthread_mutex_lock(&luo_sessions_lock);
	list_files(outgoing, fn, arg);
	list_files(incoming, fn, arg);
	pthread_mutex_unlock(&luo_sessions_lock);
}
