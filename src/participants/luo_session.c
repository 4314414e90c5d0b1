// SPDX-License-Identifier: MIT
/*
 * Sessions: named sets of preserved files, as in the kernel's LUO uAPI.
 *
 * Outgoing sessions are serialized at prepare (files cannot change while
 * an update is in progress), their handlers' data refreshed at freeze, and
 * FD_CLOEXEC lifted from their files only for the exec itself.  Incoming
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
#include "luo_mem.h"
#include "luo_session_internal.h"

/* The sessions and their files: guards the lists below and every file in
 * them (luo_file.c takes it too). */
pthread_mutex_t luo_sessions_lock = PTHREAD_MUTEX_INITIALIZER;

static struct luo_session *outgoing, *incoming;

/* The carrier: the outgoing one while frozen, the incoming one named by
 * the LUO FDT until luo_sessions_in_adopt() takes the files out of it. */
static struct {
	int fd;
	uint64_t ino, count;
} carrier_out = {.fd = -1}, carrier_in = {.fd = -1};

/* What prepare serialized, freed on cancel. */
static struct {
	struct luo_session_header_ser *header;
	struct luo_session_ser *ser;
	void **file_blocks; /* one per outgoing session, may be NULL */
	size_t nsessions;
} out_ser;

#define FILE_SER_SIZE                                                          \
	(sizeof(struct luo_file_ser) + sizeof(struct luo_file_fd_ser))

static size_t session_list_len(const struct luo_session *s)
{
	size_t n = 0;

	for (; s; s = s->next)
		n++;
	return n;
}

struct luo_file *luo_file_by_token(const struct luo_session *s, uint64_t token)
{
	struct luo_hnode *n = luo_hash_find(&s->tokens, token);

	return n ? luo_hash_entry(n, struct luo_file, token_node) : NULL;
}

bool luo_session_has_token(struct luo_session *s, uint64_t token)
{
	bool has;

	pthread_mutex_lock(&luo_sessions_lock);
	has = luo_file_by_token(s, token);
	pthread_mutex_unlock(&luo_sessions_lock);
	return has;
}

int luo_session_add_file(struct luo_session *s, struct luo_file *f)
{
	int err;

	if (s->nfiles == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct luo_file **n = realloc(s->files, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->files = n;
		s->cap = cap;
	}
	err = luo_hash_add(&s->tokens, &f->token_node, f->token);
	if (err)
		return err;
	f->index = s->nfiles;
	s->files[s->nfiles++] = f;
	return 0;
}

void luo_session_remove_file(struct luo_session *s, struct luo_file *f)
{
	luo_hash_del(&s->tokens, &f->token_node);
	s->files[f->index] = s->files[--s->nfiles];
	s->files[f->index]->index = f->index;
}

bool luo_handler_in_use(const struct liveupdate_file_handler *fh)
{
	for (struct luo_session *s = outgoing; s; s = s->next)
		for (size_t i = 0; i < s->nfiles; i++)
			if (s->files[i]->fh == fh)
				return true;
	return false;
}

static bool name_valid(const char *name)
{
	return name && memchr(name, 0, LIVEUPDATE_SESSION_NAME_LENGTH) &&
	       name[0];
}

static struct luo_session *find(struct luo_session *list, const char *name)
{
	for (; list; list = list->next)
		if (!strcmp(list->name, name))
			return list;
	return NULL;
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
	luo_hash_free(&s->tokens);
	if (s->pool) {
		luo_bulk_free(s->files, s->cap * sizeof(*s->files));
		luo_bulk_free(s->pool, s->cap * sizeof(*s->pool));
	} else {
		free(s->files);
	}
	free(s);
}

/* Enter for an outgoing change: read lock, a state that allows it. */
static int enter_outgoing(const char *op)
{
	enum liveupdate_state st;
	int err = liveupdate_state_read_enter();

	if (err)
		return err;
	st = liveupdate_get_state();
	if (st == LIVEUPDATE_STATE_NORMAL || st == LIVEUPDATE_STATE_UPDATED) {
		pthread_mutex_lock(&luo_sessions_lock);
		return 0;
	}
	liveupdate_state_read_exit();
	if (st == LIVEUPDATE_STATE_UNDEFINED) {
		pr_err("%s: call luo_init() first", op);
		return -ENODEV;
	}
	pr_err("%s: not allowed in state %s; cancel or finish the update first",
	       op, liveupdate_state_name(st));
	return -EBUSY;
}

static int enter_any(void)
{
	int err = liveupdate_state_read_enter();

	if (!err)
		pthread_mutex_lock(&luo_sessions_lock);
	return err;
}

static void leave(void)
{
	pthread_mutex_unlock(&luo_sessions_lock);
	liveupdate_state_read_exit();
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
	if (find(outgoing, name)) {
		pr_err("liveupdate_create_session: session '%s' exists", name);
		err = -EEXIST;
	} else if (!(s = calloc(1, sizeof(*s)))) {
		err = -ENOMEM;
	} else {
		strcpy(s->name, name);
		s->next = outgoing;
		outgoing = s;
		*session = s;
	}
	leave();
	return err;
}

int liveupdate_retrieve_session(const char *name, struct luo_session **session)
{
	struct luo_session *s;
	int err;

	if (!name_valid(name) || !session)
		return -EINVAL;
	err = enter_any();
	if (err)
		return err;
	s = find(incoming, name);
	if (!s || s->finished) {
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
	leave();
	return err;
}

int liveupdate_session_unpreserve_fd(struct luo_session *s, uint64_t token)
{
	struct luo_file *f;
	int err;

	if (!s)
		return -EINVAL;
	err = enter_outgoing("liveupdate_session_unpreserve_fd");
	if (err)
		return err;
	f = s->incoming ? NULL : luo_file_by_token(s, token);
	if (f)
		luo_file_unpreserve(f);
	else
		err = s->incoming ? -EINVAL : -ENOENT;
	leave();
	return err;
}

int liveupdate_session_retrieve_fd(struct luo_session *s, uint64_t token,
				   int *fd)
{
	struct luo_file *f;
	int err;

	if (!s || !fd)
		return -EINVAL;
	err = enter_any();
	if (err)
		return err;
	if (!s->incoming || !s->retrieved || s->finished) {
		pr_err("liveupdate_session_retrieve_fd: session '%s' is not a retrieved incoming session",
		       s->name);
		err = -EINVAL;
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

static void session_finish_files(struct luo_session *s)
{
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
	err = enter_any();
	if (err)
		return err;
	if (!s->incoming || !s->retrieved || s->finished) {
		pr_err("liveupdate_session_finish: session '%s' is not a retrieved incoming session",
		       s->name);
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
		while (s->nfiles)
			luo_file_unpreserve(s->files[s->nfiles - 1]);
		unlink_session(&outgoing, s);
		session_free(s);
	}
	leave();
	return err;
}

const char *liveupdate_session_name(const struct luo_session *s)
{
	return s ? s->name : NULL;
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
	luo_flbs_unserialize();
	luo_abi_out_set_sessions(0, 0);
}

/* Write a session's files: the kernel's luo_file_ser, then how they
 * travel; @index counts files across sessions. */
static void serialize_files(const struct luo_session *s, void *block,
			    uint32_t *index)
{
	struct luo_file_ser *fs = block;
	struct luo_file_fd_ser *fds = (void *)(fs + s->nfiles);

	for (size_t i = 0; i < s->nfiles; i++) {
		const struct luo_file *f = s->files[i];

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
		for (size_t k = 0; k < s->nfiles; k++) {
			err = luo_file_check_held(s->files[k]);
			if (err)
				goto fail;
		}
		err = luo_kho_alloc_meta(s->nfiles * FILE_SER_SIZE,
					 &out_ser.file_blocks[i]);
		if (err)
			goto fail;
		serialize_files(s, out_ser.file_blocks[i], &index);
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

/* Put every outgoing file in flight, in serialization order. */
static int send_files(void)
{
	size_t total = 0, k = 0;
	int *fds, err;

	for (struct luo_session *s = outgoing; s; s = s->next)
		total += s->nfiles;
	if (!total)
		return 0;
	fds = malloc(total * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (struct luo_session *s = outgoing; s; s = s->next)
		for (size_t i = 0; i < s->nfiles; i++)
			fds[k++] = s->files[i]->fd;
	err = luo_carrier_send(fds, total, &carrier_out.fd, &carrier_out.ino);
	free(fds);
	if (err)
		return err;
	carrier_out.count = total;
	err = luo_abi_out_set_carrier(carrier_out.fd, carrier_out.ino, total);
	if (err) {
		close(carrier_out.fd);
		carrier_out.fd = -1;
	}
	return err;
}

static int sessions_freeze(void)
{
	size_t k = 0;
	int err;

	for (struct luo_session *s = outgoing; s; s = s->next, k++) {
		struct luo_file_ser *fs = out_ser.file_blocks[k];

		for (size_t i = 0; i < s->nfiles; i++) {
			err = luo_file_freeze(s->files[i]);
			if (err)
				return err; /* the core cancels: unfreeze */
			fs[i].data = s->files[i]->data;
		}
	}
	/* Sent ahead at prepare (spawn mode): the same open files. */
	return carrier_out.fd >= 0 ? 0 : send_files();
}

int luo_sessions_send_ahead(int *rx, uint64_t *ino, size_t *count)
{
	int err = carrier_out.fd >= 0 ? 0 : send_files();

	*rx = carrier_out.fd;
	*ino = carrier_out.ino;
	*count = carrier_out.fd >= 0 ? carrier_out.count : 0;
	return err;
}

/* The carrier is the only descriptor the exec must keep. */
static int sessions_reboot(void)
{
	if (carrier_out.fd >= 0 && fcntl(carrier_out.fd, F_SETFD, 0))
		return -errno;
	return 0;
}

static void sessions_cancel(void)
{
	if (carrier_out.fd >= 0)
		close(carrier_out.fd); /* the files in flight are dropped */
	carrier_out.fd = -1;
	unfreeze_all();
	serialized_free();
}

static void sessions_finish(void)
{
	for (struct luo_session *s = incoming; s; s = s->next)
		if (!s->finished)
			session_finish_files(s);
	luo_flbs_finish_all();
	while (incoming) {
		struct luo_session *s = incoming;

		incoming = s->next;
		session_free(s);
	}
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
	free(out_ser.file_blocks);
	memset(&out_ser, 0, sizeof(out_ser));
}

static int parse_files(struct luo_session *s,
		       const struct luo_file_set_ser *set, uint32_t *index,
		       char *why, size_t whylen)
{
	const struct luo_file_ser *fs;
	const struct luo_file_fd_ser *fds;
	void *block;

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
	s->cap = set->count;
	s->files = luo_bulk_alloc(set->count * sizeof(*s->files));
	s->pool = luo_bulk_alloc(set->count * sizeof(*s->pool));
	if (!s->files || !s->pool || luo_hash_reserve(&s->tokens, set->count))
		return luo_reason(why, whylen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < set->count; i++) {
		struct luo_file *f;

		if (!luo_compatible_valid(fs[i].compatible,
					  LIVEUPDATE_HNDL_COMPAT_LENGTH) ||
		    fds[i].index != *index || (fds[i].mode & ~S_IFMT))
			return luo_reason(why, whylen, -EBADMSG,
					  "session '%s': file %zu is malformed",
					  s->name, i);
		if (luo_file_by_token(s, fs[i].token))
			return luo_reason(
				why, whylen, -EBADMSG,
				"session '%s': token %#llx appears twice",
				s->name, (unsigned long long)fs[i].token);
		f = &s->pool[i];
		f->session = s;
		strcpy(f->compatible, fs[i].compatible);
		f->token = fs[i].token;
		f->data = fs[i].data;
		f->fd = -1; /* until it comes off the carrier */
		f->carrier_index = (*index)++;
		f->mode = fds[i].mode;
		f->dev = fds[i].dev;
		f->ino = fds[i].ino;
		if (luo_session_add_file(s, f))
			return luo_reason(why, whylen, -ENOMEM,
					  "out of memory");
	}
	return 0;
}

/* The carrier as the LUO FDT names it; its file count must match. */
static int parse_carrier(const void *luo_fdt, int node, uint32_t files,
			 char *why, size_t whylen)
{
	const char *props[] = {LUO_FILES_CARRIER_FD, LUO_FILES_CARRIER_INO,
			       LUO_FILES_COUNT};
	uint64_t v[3];

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

		if (!name_valid(ss[i].name) || find(incoming, ss[i].name)) {
			err = luo_reason(
				why, whylen, -EBADMSG,
				"session %zu has a bad or duplicate name", i);
			break;
		}
		s = calloc(1, sizeof(*s));
		if (!s) {
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
	int *fds, err;

	if (!n || carrier_in.fd < 0)
		/* Not the carrier we will read: not one to keep open. */
		luo_carrier_discard_unverified(luo_global.carrier_fd);
	if (!n)
		return;
	fds = luo_bulk_alloc(n * sizeof(*fds));
	/* A spawned image took them ahead, before the freeze. */
	err = fds ? luo_carrier_ahead_take(carrier_in.ino, fds, n) : -ENOMEM;
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
	for (struct luo_session *s = incoming; s; s = s->next) {
		for (size_t i = 0; i < s->nfiles; i++) {
			struct luo_file *f = s->files[i];

			if (err)
				f->retrieve_status = -ESTALE;
			else
				f->fd = fds[f->carrier_index];
		}
	}
	luo_bulk_free(fds, n * sizeof(*fds));
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
		return f->frozen ? "frozen" : "preserved";
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
			.nfiles = s->nfiles,
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
