// SPDX-License-Identifier: MIT
/*
 * Preserved files and the handlers that know them.
 *
 * A process keeps a file across execve() simply by inheriting the open
 * descriptor, so the library's part is bookkeeping: take its own reference
 * (a duplicate with FD_CLOEXEC), refuse a file preserved twice, let the
 * handler record what it needs, clear FD_CLOEXEC for the exec only, and in
 * the new image check that each inherited descriptor is still the very
 * file (type, device, inode) before handing it out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "luo_internal.h"
#include "luo_session_internal.h"

static struct liveupdate_file_handler *handlers;
/*
 * Outgoing files ordered by device, inode and then kcmp(2)'s order of open
 * files, to refuse preserving one file twice in O(log n): every eventfd or
 * timerfd shares one inode, so the inode alone does not tell files apart.
 */
static struct {
	struct luo_file **v;
	size_t n, cap;
	pid_t self;
} by_id;

struct liveupdate_file_handler *luo_handler_find(const char *compatible)
{
	for (struct liveupdate_file_handler *h = handlers; h; h = h->next)
		if (!strcmp(h->compatible, compatible))
			return h;
	return NULL;
}

bool luo_handlers_retrieve_any(void)
{
	for (struct liveupdate_file_handler *h = handlers; h; h = h->next)
		if (h->ops->retrieve)
			return true;
	return false;
}

static int handler_check_state(const char *op)
{
	enum liveupdate_state s = liveupdate_get_state();

	if (s == LIVEUPDATE_STATE_UNDEFINED) {
		pr_err("%s: call luo_init() first", op);
		return -ENODEV;
	}
	if (s != LIVEUPDATE_STATE_NORMAL && s != LIVEUPDATE_STATE_UPDATED) {
		pr_err("%s: not allowed in state %s", op,
		       liveupdate_state_name(s));
		return -EBUSY;
	}
	return 0;
}

/* Built-ins are added at the tail, the service's handlers at the head, so
 * a service can take over a kind of file from a built-in. */
static int handler_add(struct liveupdate_file_handler *fh, bool builtin)
{
	struct liveupdate_file_handler **pp;

	if (!fh || !fh->ops || !fh->ops->can_preserve || !fh->ops->preserve ||
	    !luo_compatible_valid(fh->compatible,
				  LIVEUPDATE_HNDL_COMPAT_LENGTH)) {
		pr_err("liveupdate_register_file_handler: needs can_preserve, preserve and a compatible of 1 to 47 printable bytes");
		return -EINVAL;
	}
	if (!strcmp(fh->compatible, LUO_FILE_CLOSED_COMPATIBLE)) {
		pr_err("liveupdate_register_file_handler: '%s' is reserved: it marks a file unpreserved after freeze",
		       fh->compatible);
		return -EINVAL;
	}
	for (struct liveupdate_file_handler *h = handlers; h; h = h->next) {
		if (h == fh || !strcmp(h->compatible, fh->compatible)) {
			pr_err("liveupdate_register_file_handler: '%s' is already registered",
			       fh->compatible);
			return -EEXIST;
		}
	}
	fh->builtin = builtin;
	fh->flbs = NULL;
	if (!builtin) {
		fh->next = handlers;
		handlers = fh;
		return 0;
	}
	for (pp = &handlers; *pp; pp = &(*pp)->next)
		;
	fh->next = NULL;
	*pp = fh;
	return 0;
}

int luo_builtin_handler_add(struct liveupdate_file_handler *fh)
{
	return handler_add(fh, true);
}

int luo_fd_handlers_register(void)
{
	size_t n;
	struct liveupdate_file_handler *builtins = luo_fd_handlers(&n);

	for (size_t i = 0; i < n; i++) {
		int err;

		builtins[i].next = NULL;
		err = luo_builtin_handler_add(&builtins[i]);
		if (err)
			return err;
	}
	return 0;
}

void luo_handlers_forget(void)
{
	while (handlers) {
		struct liveupdate_file_handler *h = handlers;

		handlers = h->next;
		h->next = NULL;
		luo_flb_links_free(h);
	}
	free(by_id.v);
	memset(&by_id, 0, sizeof(by_id));
}

int liveupdate_register_file_handler(struct liveupdate_file_handler *fh)
{
	int err = liveupdate_state_read_enter();

	if (err)
		return err;
	err = handler_check_state("liveupdate_register_file_handler");
	err = err
		      ?: luo_sessions_lock_enter(
				 "liveupdate_register_file_handler");
	if (!err) {
		err = handler_add(fh, false);
		luo_sessions_lock_leave();
	}
	liveupdate_state_read_exit();
	return err;
}

int liveupdate_unregister_file_handler(struct liveupdate_file_handler *fh)
{
	struct liveupdate_file_handler **pp;
	int err = liveupdate_state_read_enter();

	if (err)
		return err;
	err = handler_check_state("liveupdate_unregister_file_handler");
	err = err
		      ?: luo_sessions_lock_enter(
				 "liveupdate_unregister_file_handler");
	if (err)
		goto out;
	err = -ENOENT;
	for (pp = &handlers; *pp; pp = &(*pp)->next) {
		if (*pp != fh)
			continue;
		if (luo_handler_in_use(fh) || luo_flb_handler_has(fh)) {
			pr_err("liveupdate_unregister_file_handler: '%s' still has preserved files or FLBs",
			       fh->compatible);
			err = -EBUSY;
		} else {
			*pp = fh->next;
			fh->next = NULL;
			err = 0;
		}
		break;
	}
	luo_sessions_lock_leave();
out:
	liveupdate_state_read_exit();
	return err;
}

/* <0, 0, >0 as (dev, ino, fd) orders before, as, after file @f. */
static int id_cmp(uint64_t dev, uint64_t ino, int fd, const struct luo_file *f)
{
	long r;

	if (dev != f->dev)
		return dev < f->dev ? -1 : 1;
	if (ino != f->ino)
		return ino < f->ino ? -1 : 1;
	r = syscall(SYS_kcmp, by_id.self, by_id.self, KCMP_FILE, fd, f->fd);
	/* Without kcmp, the same inode has to count as the same file. */
	if (r <= 0)
		return 0;
	return r == 1 ? -1 : 1;
}

/* First index whose file does not order before (dev, ino, fd). */
static size_t id_lower_bound(uint64_t dev, uint64_t ino, int fd)
{
	size_t lo = 0, hi = by_id.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (id_cmp(dev, ino, fd, by_id.v[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct luo_file *find_preserved(int fd, const struct stat *st)
{
	size_t i;

	by_id.self = getpid();
	i = id_lower_bound(st->st_dev, st->st_ino, fd);
	if (i < by_id.n && !id_cmp(st->st_dev, st->st_ino, fd, by_id.v[i]))
		return by_id.v[i];
	return NULL;
}

bool luo_file_epoll_target_preserved(int epfd, int tfd, uint64_t dev,
				     uint64_t ino)
{
	struct kcmp_epoll_slot slot = {.efd = (uint32_t)epfd,
				       .tfd = (uint32_t)tfd};
	size_t lo = 0, hi = by_id.n;
	pid_t self = getpid();

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct luo_file *f = by_id.v[mid];

		if (f->dev < dev || (f->dev == dev && f->ino < ino))
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Every eventfd shares one inode: the very file decides. */
	for (;
	     lo < by_id.n && by_id.v[lo]->dev == dev && by_id.v[lo]->ino == ino;
	     lo++) {
		long r = syscall(SYS_kcmp, self, self, KCMP_EPOLL_TFD,
				 by_id.v[lo]->fd, (unsigned long)&slot);

		if (r == 0 || (r < 0 && errno != EBADF && errno != ENOENT))
			return true; /* without kcmp the inode must do */
	}
	return false;
}

static int id_insert(struct luo_file *f)
{
	size_t i;

	if (by_id.n == by_id.cap) {
		size_t cap = by_id.cap ? by_id.cap * 2 : 64;
		struct luo_file **v = realloc(by_id.v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		by_id.v = v;
		by_id.cap = cap;
	}
	by_id.self = getpid();
	i = id_lower_bound(f->dev, f->ino, f->fd);
	memmove(&by_id.v[i + 1], &by_id.v[i], (by_id.n - i) * sizeof(f));
	by_id.v[i] = f;
	by_id.n++;
	return 0;
}

static void id_remove(struct luo_file *f)
{
	size_t i;

	by_id.self = getpid();
	for (i = id_lower_bound(f->dev, f->ino, f->fd); i < by_id.n; i++) {
		if (by_id.v[i] == f) {
			memmove(&by_id.v[i], &by_id.v[i + 1],
				(by_id.n - i - 1) * sizeof(f));
			by_id.n--;
			return;
		}
	}
}

static struct liveupdate_file_handler *pick_handler(int fd)
{
	for (struct liveupdate_file_handler *h = handlers; h; h = h->next)
		if (h->ops->can_preserve(h, fd))
			return h;
	return NULL;
}

static void args_of(const struct luo_file *f, struct liveupdate_file_op_args *a)
{
	memset(a, 0, sizeof(*a));
	a->handler = f->fh;
	a->fd = f->fd;
	a->serialized_data = f->data;
	a->private_data = f->private_data;
}

/* Called with the state read lock and luo_sessions_lock held. */
int luo_file_preserve(struct luo_session *s, int fd, uint64_t token)
{
	struct liveupdate_file_op_args args;
	struct luo_file *f;
	struct stat st;
	int err, fl;

	if (fd < 0 || fstat(fd, &st) || (fl = fcntl(fd, F_GETFL)) < 0) {
		pr_err("liveupdate_session_preserve_fd: fd %d is not open", fd);
		return -EBADF;
	}
	/* As the kernel: an O_PATH descriptor opens no file to preserve. */
	if (fl & O_PATH) {
		pr_err("liveupdate_session_preserve_fd: fd %d is an O_PATH descriptor, which opens no file; open the file itself",
		       fd);
		return -EBADF;
	}
	if (s->nfiles >= luo_global.session_max_files) {
		pr_err("session '%s' is full (%u files)", s->name,
		       luo_global.session_max_files);
		return -ENOSPC;
	}
	if (luo_file_by_token(s, token)) {
		pr_err("session '%s' already has a file with token %#llx",
		       s->name, (unsigned long long)token);
		return -EEXIST;
	}
	if (find_preserved(fd, &st)) {
		pr_err("fd %d is already preserved in a session", fd);
		return -EBUSY;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->session = s;
	f->token = token;
	f->mode = st.st_mode & S_IFMT;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->fh = pick_handler(fd);
	if (!f->fh) {
		char kind[192];

		pr_err("no file handler can preserve fd %d: it is %s; the built-in handlers take %s; register a file handler for other kinds",
		       fd, luo_fd_kind(fd, &st, kind, sizeof(kind)),
		       luo_fd_handlers_supported);
		err = -ENOENT;
		goto free;
	}
	strcpy(f->compatible, f->fh->compatible);
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (f->fd < 0) {
		err = -errno;
		luo_log_fd_shortage("liveupdate_session_preserve_fd",
				    "the library's reference to the file", err);
		goto free;
	}
	err = luo_flb_file_preserve(f->fh);
	if (err)
		goto close;
	args_of(f, &args);
	err = f->fh->ops->preserve(&args);
	if (err) {
		pr_err("handler '%s' refused to preserve fd %d: %s",
		       f->fh->compatible, fd, strerror(-err));
		goto flb;
	}
	f->data = args.serialized_data;
	f->private_data = args.private_data;
	err = luo_session_add_file(s, f);
	if (err)
		goto unpreserve;
	err = id_insert(f);
	if (err) {
		luo_session_remove_file(s, f);
		goto unpreserve;
	}
	return 0;
unpreserve:
	args_of(f, &args);
	if (f->fh->ops->unpreserve)
		f->fh->ops->unpreserve(&args);
flb:
	luo_flb_file_unpreserve(f->fh);
close:
	close(f->fd);
free:
	free(f);
	return err;
}

void luo_file_unpreserve(struct luo_file *f)
{
	struct liveupdate_file_op_args args;

	args_of(f, &args);
	if (f->fh->ops->unpreserve)
		f->fh->ops->unpreserve(&args);
	luo_flb_file_unpreserve(f->fh);
	id_remove(f);
	luo_session_remove_file(f->session, f);
	close(f->fd);
	free(f);
}

int luo_file_freeze(struct luo_file *f)
{
	struct liveupdate_file_op_args args;
	int err;

	if (f->fh->ops->freeze) {
		args_of(f, &args);
		err = f->fh->ops->freeze(&args);
		if (err) {
			pr_err("handler '%s' refused to freeze token %#llx of session '%s': %s",
			       f->fh->compatible, (unsigned long long)f->token,
			       f->session->name, strerror(-err));
			return err;
		}
		f->data = args.serialized_data;
		f->private_data = args.private_data;
	}
	f->frozen = true;
	return 0;
}

void luo_file_unfreeze(struct luo_file *f)
{
	struct liveupdate_file_op_args args;

	if (!f->frozen)
		return;
	f->frozen = false;
	if (f->fh->ops->unfreeze) {
		args_of(f, &args);
		f->fh->ops->unfreeze(&args);
		f->data = args.serialized_data;
	}
}

bool luo_fd_is_file(int fd, uint32_t mode, uint64_t dev, uint64_t ino)
{
	struct stat st;

	return !fstat(fd, &st) && (st.st_mode & S_IFMT) == mode &&
	       (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

static bool luo_file_is_same(const struct luo_file *f, int fd)
{
	return luo_fd_is_file(fd, f->mode, f->dev, f->ino);
}

/*
 * The library's own reference can only change if the service closed a
 * descriptor it does not own (and maybe opened another on the number).
 * Checked at every prepare, outside the blackout, so that the old image
 * refuses the update and keeps serving instead of sending a wrong file.
 */
int luo_file_check_held(const struct luo_file *f)
{
	if (luo_file_is_same(f, f->fd))
		return 0;
	pr_err("session '%s' token %#llx: the library's descriptor %d for this file was closed or replaced by the service; unpreserve the token and preserve the file again",
	       f->session->name, (unsigned long long)f->token, f->fd);
	return -ESTALE;
}

static int retrieve_first(struct luo_file *f)
{
	struct liveupdate_file_op_args args;
	int err;

	f->fh = luo_handler_find(f->compatible);
	if (!f->fh) {
		pr_err("session '%s' token %#llx: no handler '%s' is registered; register it and retry",
		       f->session->name, (unsigned long long)f->token,
		       f->compatible);
		return -ENXIO;
	}
	/* Received off the carrier or inherited, ours to close at finish.
	 * Received ahead (spawn mode): checked already, before the freeze. */
	if ((!(luo_global.init_flags & LUO_INIT_TRUST_CARRIER) ||
	     f->must_check) &&
	    !f->checked_ahead && !luo_file_is_same(f, f->fd))
		return f->retrieve_status = -ESTALE;
	if (f->fh->ops->retrieve) {
		args_of(f, &args);
		err = f->fh->ops->retrieve(&args);
		if (err)
			return f->retrieve_status = err;
		f->fd = args.fd;
		f->data = args.serialized_data;
		f->private_data = args.private_data;
	}
	f->retrieve_status = 1;
	return 0;
}

/*
 * The retrieval hands over the received descriptor itself (it has
 * FD_CLOEXEC); the caller owns it from then on.  The library keeps no
 * reference, so it cannot tell later whether a descriptor is still that
 * file: a second retrieval is refused rather than risk another file.
 */
int luo_file_retrieve(struct luo_file *f, int *fd)
{
	int err = 0;

	if (f->retrieve_status == 0) {
		err = retrieve_first(f);
		if (!err) {
			*fd = f->fd;
			return 0;
		}
	} else if (f->retrieve_status > 0) {
		pr_err("session '%s' token %#llx: already retrieved; keep the descriptor the first retrieval gave",
		       f->session->name, (unsigned long long)f->token);
		return -EALREADY;
	}
	err = err ?: f->retrieve_status;
	if (err == -ESTALE)
		pr_err("session '%s' token %#llx: the inherited descriptor is no longer the preserved file (closed or replaced); refusing it",
		       f->session->name, (unsigned long long)f->token);
	else if (err != -ENXIO)
		pr_err("handler '%s' could not retrieve token %#llx of session '%s': %s",
		       f->compatible, (unsigned long long)f->token,
		       f->session->name, strerror(-err));
	return err;
}

void luo_file_finish(struct luo_file *f)
{
	struct liveupdate_file_op_args args;
	bool retrieved = f->retrieve_status == 1;
	/* Received off the carrier and not handed out: ours to close. */
	bool ours = !retrieved && f->fd >= 0;

	if (!f->fh)
		f->fh = luo_handler_find(f->compatible);
	if (f->fh) {
		args_of(f, &args);
		args.retrieved = retrieved;
		args.fd = ours ? f->fd : -1;
		if (f->fh->ops->finish)
			f->fh->ops->finish(&args);
		luo_flb_file_finish(f->fh);
	} else if (!retrieved) {
		pr_warn("session '%s' token %#llx: no handler '%s' was registered; closing the file",
			f->session->name, (unsigned long long)f->token,
			f->compatible);
	}
	if (ours)
		close(f->fd);
	f->fd = -1;
}
