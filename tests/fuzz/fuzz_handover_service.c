// SPDX-License-Identifier: MIT
/* fuzz_handover: the service of the new image (subsystems, a file handler
 * with FLBs) and what it does with an accepted handover. */
#define _GNU_SOURCE
#include "fuzz_handover.h"

/* ------------------------------------------------------------------ */
/* The service's side in the new image: subsystems, handler, FLBs. */

static const char *const sub_names[] = {"fuzz-a", "fuzz-b", "fuzz-c"};
#define NSUBS (sizeof(sub_names) / sizeof(sub_names[0]))
static struct liveupdate_subsystem subs[NSUBS];
static uint64_t boot_data[NSUBS];
static bool booted[NSUBS];

static void sub_boot(struct liveupdate_subsystem *h, uint64_t data)
{
	booted[h - subs] = true;
	boot_data[h - subs] = data;
}

static void sub_finish(struct liveupdate_subsystem *h, uint64_t data)
{
	CHECK(booted[h - subs] && boot_data[h - subs] == data,
	      "subsystem '%s' finished with %#llx, booted with %#llx", h->name,
	      (unsigned long long)data,
	      (unsigned long long)boot_data[h - subs]);
}

static const struct liveupdate_subsystem_ops sub_ops = {
	.boot = sub_boot,
	.finish = sub_finish,
};

/* Touch @len bytes of restored memory: ASan checks they are mapped. */
static void touch(volatile const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum ^= p[i];
	(void)sum;
}

static bool user_can(struct liveupdate_file_handler *h, int fd)
{
	(void)h;
	(void)fd;
	return false; /* never outgoing: the built-ins take the harness's */
}

static int user_preserve(struct liveupdate_file_op_args *args)
{
	(void)args;
	return -EINVAL;
}

/*
 * The seeds' user files carry the offset of a small preserved block; if it
 * cannot be restored the file is not the one preserved: -ESTALE, as a
 * handler may say.
 */
static int user_retrieve(struct liveupdate_file_op_args *args)
{
	void *p;

	if (!args->serialized_data)
		return 0;
	if (kho_restore(args->serialized_data, 8, &p))
		return -ESTALE;
	touch(p, 8);
	return 0;
}

static const struct liveupdate_file_ops user_ops = {
	.can_preserve = user_can,
	.preserve = user_preserve,
	.retrieve = user_retrieve,
};

static int flb_preserve(struct liveupdate_flb_op_args *args)
{
	(void)args;
	return -EINVAL;
}

static int flb_retrieve(struct liveupdate_flb_op_args *args)
{
	void *p;
	int err = kho_restore(args->data, 16, &p);

	if (err)
		return err;
	touch(p, 16);
	args->obj = p;
	return 0;
}

/* Free the restored block again: the allocator merges on an adopted index. */
static void flb_finish(struct liveupdate_flb_op_args *args)
{
	if (!args->obj)
		return;
	touch(args->obj, 16);
	kho_unpreserve_free(args->obj);
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
};

static struct liveupdate_file_handler user_handler;
static struct liveupdate_flb flbs[2];

static void register_service(void)
{
	for (size_t i = 0; i < NSUBS; i++) {
		subs[i] = (struct liveupdate_subsystem){.ops = &sub_ops,
							.name = sub_names[i]};
		booted[i] = false;
		CHECK(!liveupdate_register_subsystem(&subs[i]),
		      "cannot register subsystem %s", sub_names[i]);
	}
	user_handler = (struct liveupdate_file_handler){
		.ops = &user_ops, .compatible = "fuzz-file-v1"};
	flbs[0] = (struct liveupdate_flb){.ops = &flb_ops,
					  .compatible = "fuzz-flb-v1"};
	flbs[1] = (struct liveupdate_flb){.ops = &flb_ops,
					  .compatible = "fuzz-flb2-v1"};
	CHECK(!liveupdate_register_file_handler(&user_handler),
	      "cannot register the user file handler");
	for (int i = 0; i < 2; i++)
		CHECK(!liveupdate_register_flb(&user_handler, &flbs[i]),
		      "cannot register FLB %d", i);
}

/* ------------------------------------------------------------------ */
/* What an accepted arena holds, read back through the public API. */

static uint64_t arena_size;

/* Arena memory at @off, @len bytes of it, or NULL. */
static const void *arena_at(uint64_t off, uint64_t len)
{
	if (off < KHO_ARENA_DATA_START || off > arena_size ||
	    len > arena_size - off)
		return NULL;
	return kho_offset_to_ptr(off);
}

void read_view(struct in_view *v)
{
	const struct luo_session_header_ser *h;
	const struct luo_session_ser *ss;
	struct kho_arena_stats st;
	const struct luo_ser *ser;
	const fdt64_t *prop;
	const void *fdt;
	int len;

	memset(v, 0, sizeof(*v));
	CHECK(!kho_get_stats(&st), "no stats");
	arena_size = st.arena_size;
	CHECK(!kho_retrieve_subtree(LUO_FDT_KHO_ENTRY_NAME, &fdt),
	      "accepted handover without a LUO subtree");
	prop = fdt_getprop(fdt, 0, LUO_FDT_ABI_HEADER, &len);
	CHECK(prop && len == 8, "accepted LUO FDT without %s",
	      LUO_FDT_ABI_HEADER);
	ser = arena_at(fdt64_ld(prop), sizeof(*ser));
	CHECK(ser, "accepted struct luo_ser outside the arena");
	if (!ser->sessions_pa)
		return;
	h = arena_at(ser->sessions_pa, sizeof(*h));
	CHECK(h && h->count <= (1u << 20), "accepted session header is bad");
	ss = arena_at(ser->sessions_pa + sizeof(*h), h->count * sizeof(*ss));
	CHECK(ss, "accepted session block runs out of the arena");
	for (uint64_t i = 0; i < h->count; i++) {
		const struct luo_file_set_ser *set = &ss[i].file_set_ser;
		const struct luo_file_ser *fs = NULL;
		const struct luo_file_fd_ser *fds = NULL;
		struct in_session *s = &v->s[v->n];

		CHECK(memchr(ss[i].name, 0, sizeof(ss[i].name)),
		      "accepted session name is not terminated");
		if (set->count) {
			fs = arena_at(set->files,
				      set->count * FZ_FILE_SER_SIZE);
			CHECK(fs, "accepted file set runs out of the arena");
			fds = (const void *)(fs + set->count);
		}
		if (v->n == MAX_SESSIONS)
			continue;
		strcpy(s->name, ss[i].name);
		s->total = set->count;
		for (uint64_t k = 0; k < set->count && k < MAX_FILES; k++) {
			s->token[k] = fs[k].token;
			s->where[k] = fds[k];
			s->nfiles++;
		}
		v->n++;
	}
}

/* A token that is none of @s's. */
static uint64_t unknown_token(const struct in_session *s)
{
	uint64_t t = 0x5eed0000f00dULL;

	for (size_t i = 0; i < s->nfiles; i++) {
		if (s->token[i] == t) {
			t++;
			i = (size_t)-1; /* start over */
		}
	}
	return t;
}

static void retrieve_files(struct luo_session *ls, const struct in_session *s)
{
	int fd, again, err;

	for (size_t k = 0; k < s->nfiles; k++) {
		struct fd_id got, want = {.mode = s->where[k].mode,
					  .dev = s->where[k].dev,
					  .ino = s->where[k].ino};

		err = liveupdate_session_retrieve_fd(ls, s->token[k], &fd);
		if (verbose)
			fprintf(stderr, "fuzz: session '%s' token %#llx: %s\n",
				s->name, (unsigned long long)s->token[k],
				err ? strerror(-err) : "retrieved");
		if (err)
			continue;
		CHECK(fd_identity(fd, &got) && same_id(&got, &want),
		      "session '%s' token %#llx: retrieved fd %d is not the preserved file",
		      s->name, (unsigned long long)s->token[k], fd);
		CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC,
		      "retrieved fd %d lacks FD_CLOEXEC", fd);
		/* Again while the first is open: the same file, if anything. */
		if (!liveupdate_session_retrieve_fd(ls, s->token[k], &again)) {
			CHECK(again != fd && fd_identity(again, &got) &&
				      same_id(&got, &want),
			      "token %#llx retrieved again as fd %d",
			      (unsigned long long)s->token[k], again);
			close(again);
		}
		close(fd);
	}
	err = liveupdate_session_retrieve_fd(ls, unknown_token(s), &fd);
	CHECK(err == -ENOENT || s->total > s->nfiles, "unknown token: %d", err);
	if (!err)
		close(fd);
}

/*
 * Every file of @s at once (liveupdate_session_retrieve_all()): each
 * entry one of the session's tokens, once, and the preserved file.
 */
static void retrieve_all(struct luo_session *ls, const struct in_session *s)
{
	static struct liveupdate_session_file files[MAX_FILES];
	int n = liveupdate_session_retrieve_all(ls, files, MAX_FILES);

	CHECK(n >= 0 || n == -ENOSPC || n == -ENOMEM,
	      "session '%s': retrieve_all: %d", s->name, n);
	CHECK(n < 0 || (size_t)n <= s->total,
	      "session '%s': %d files handed out of %zu", s->name, n,
	      (size_t)s->total);
	for (int k = 0; k < n; k++) {
		size_t j = 0;
		struct fd_id got;

		while (j < s->nfiles && s->token[j] != files[k].token)
			j++;
		if (files[k].err) {
			CHECK(files[k].fd == -1, "a failed entry has fd %d",
			      files[k].fd);
			continue;
		}
		CHECK(j == s->nfiles ||
			      (fd_identity(files[k].fd, &got) &&
			       same_id(&got,
				       &(struct fd_id){
					       .mode = s->where[j].mode,
					       .dev = s->where[j].dev,
					       .ino = s->where[j].ino})),
		      "session '%s' token %#llx: handed-out fd %d is not the preserved file",
		      s->name, (unsigned long long)files[k].token, files[k].fd);
		close(files[k].fd);
	}
}

static void exercise_sessions(const struct in_view *v, uint8_t ctl)
{
	struct luo_session *ls;
	int err;

	for (size_t i = 0; i < v->n; i++) {
		const struct in_session *s = &v->s[i];
		struct luo_session *again;

		err = liveupdate_retrieve_session(s->name, &ls);
		CHECK(!err, "accepted session '%s' cannot be retrieved: %d",
		      s->name, err);
		CHECK(!strcmp(liveupdate_session_name(ls), s->name),
		      "session '%s' is named '%s'", s->name,
		      liveupdate_session_name(ls));
		err = liveupdate_retrieve_session(s->name, &again);
		CHECK(err == -EINVAL, "session '%s' retrieved twice: %d",
		      s->name, err);
		if (!(ctl & CTL_NO_RETRIEVE) && (i & 2))
			retrieve_all(ls, s);
		if (!(ctl & CTL_NO_RETRIEVE))
			retrieve_files(ls, s);
		CHECK(liveupdate_session_close(ls) == -EINVAL,
		      "an incoming session was closed");
		if ((ctl & CTL_NO_SESSION_FINISH) || (i & 1))
			continue;
		err = liveupdate_session_finish(ls);
		CHECK(!err, "session '%s' cannot be finished: %d", s->name,
		      err);
	}
	err = liveupdate_retrieve_session("fuzz-no-such-session", &ls);
	CHECK(err == -ENOENT, "unknown session: %d", err);
}

/* Allocate and free on the adopted arena: its index came from the walk. */
void exercise_alloc(void)
{
	void *a, *b, *c;

	if (kho_alloc_preserve(100, &a))
		return;
	memset(a, 0xa5, 100);
	if (!kho_alloc_preserve(70000, &b)) {
		memset(b, 0x5a, 70000);
		CHECK(!kho_unpreserve_free(b), "cannot free a fresh block");
	}
	if (!kho_alloc_preserve(3000, &c)) {
		memset(c, 0x3c, 3000);
		CHECK(!kho_unpreserve_free(c), "cannot free a fresh block");
	}
	/* Past a small arena_max: the arena is full (only its ends touched). */
	if (!kho_alloc_preserve(BIG_ALLOC, &c)) {
		((volatile uint8_t *)c)[0] = 1;
		((volatile uint8_t *)c)[BIG_ALLOC - 1] = 1;
		CHECK(!kho_unpreserve_free(c), "cannot free a fresh block");
	}
	CHECK(!kho_unpreserve_free(a), "cannot free a fresh block");
}

static void exercise_user_subtree(void)
{
	const fdt64_t *prop;
	const void *fdt;
	void *p;
	int len;

	if (kho_retrieve_subtree("fuzz-user", &fdt))
		return;
	CHECK(!fdt_check_header(fdt), "accepted user subtree is no FDT");
	prop = fdt_getprop(fdt, 0, "blob", &len);
	if (prop && len == 8 && !kho_restore(fdt64_ld(prop), 16, &p))
		memset(p, 0x11, 16);
	/* Claim the subtree itself: it outlives liveupdate_finish(). */
	if (!kho_restore(kho_ptr_to_offset(fdt), 8, &p))
		CHECK(p == fdt, "restored subtree moved");
}

/* After finish: a whole outgoing update whose exec fails. */
static void exercise_outgoing(void)
{
	char *argv[] = {"luo-fuzz-no-such-image", NULL};
	struct luo_session *s;
	int p[2], m, err;

	if (liveupdate_create_session("fuzz-out", &s))
		return;
	CHECK(!pipe2(p, O_CLOEXEC), "pipe: %s", strerror(errno));
	m = memfd_create("fuzz-out", MFD_CLOEXEC);
	CHECK(m >= 0, "memfd_create: %s", strerror(errno));
	liveupdate_session_preserve_fd(s, p[0], 1);
	liveupdate_session_preserve_fd(s, m, 2);
	close(p[0]);
	close(p[1]);
	close(m);
	err = liveupdate_prepare();
	if (!err) {
		err = liveupdate_reboot("/nonexistent/luo-fuzz-no-such-image",
					argv, NULL);
		CHECK(err == -ENOENT, "reboot into nothing: %d", err);
	}
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
	      "state %s after a failed update",
	      liveupdate_state_name(liveupdate_get_state()));
}

void exercise_accepted(uint8_t ctl, struct in_view *v)
{
	struct liveupdate_timing t;

	CHECK(liveupdate_get_num() >= 1, "accepted update number 0");
	CHECK(!liveupdate_get_timing(&t), "accepted without timing");
	register_service();
	for (size_t i = 0; i < NSUBS; i++) {
		uint64_t data;
		int err = liveupdate_get_subsystem_data(&subs[i], &data);

		CHECK(err ? !booted[i] && err == -ENOENT
			  : booted[i] && data == boot_data[i],
		      "subsystem %s: data %d, booted %d", sub_names[i], err,
		      booted[i]);
	}
	exercise_user_subtree();
	exercise_sessions(v, ctl);
	for (int i = 0; i < 2; i++) {
		void *obj;

		liveupdate_flb_get_incoming(&flbs[i], &obj);
	}
	exercise_alloc();
	if (ctl & CTL_NO_FINISH)
		return;
	CHECK(!liveupdate_finish(), "finish refused");
	CHECK(liveupdate_get_state() == LIVEUPDATE_STATE_NORMAL,
	      "state after finish");
	exercise_alloc();
	if (!(ctl & CTL_NO_OUTGOING))
		exercise_outgoing();
}
