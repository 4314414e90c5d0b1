// SPDX-License-Identifier: MIT
/* e2e-handover "corrupt": run every case on a copy and probe it. */
#include "handover.h"

/* ------------------------------------------------------------------ */
/* Running one case. */

static int copy_arena(int dst)
{
	loff_t in = 0, out = 0;
	uint64_t left = L.file_size;

	if (ftruncate(dst, (off_t)L.file_size))
		return -1;
	while (left) {
		ssize_t n = copy_file_range(L.fd, &in, dst, &out, left, 0);

		if (n <= 0)
			break;
		left -= (uint64_t)n;
	}
	if (left) /* no copy_file_range here: plain writes */
		return pwrite(dst, L.p + in, left, in) == (ssize_t)left ? 0
									: -1;
	return 0;
}

/* A memfd of random-looking bytes that is no arena. */
static int random_memfd(void)
{
	int fd = memfd_create("luo-arena", MFD_CLOEXEC);
	size_t len = 1 << 20;
	uint64_t *buf = malloc(len);

	if (fd < 0 || !buf)
		die("random memfd: %s", strerror(errno));
	fill(buf, len, 0xdeadbeef);
	if (write(fd, buf, len) != (ssize_t)len)
		die("random memfd: short write");
	free(buf);
	return fd;
}

/* The pristine arena in a file that is not the library's arena memfd. */
static int foreign_copy(bool shm)
{
	char path[PATH_MAX];
	int fd;

	if (shm) {
		snprintf(path, sizeof(path), "/dev/shm/luo-arena.e2e.%d",
			 (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	} else {
		fd = memfd_create("not-luo-arena", MFD_CLOEXEC);
	}
	if (fd < 0)
		die("%s: %s", shm ? path : "memfd", strerror(errno));
	if (pwrite(fd, L.p, L.file_size, 0) != (ssize_t)L.file_size)
		die("foreign copy: short write");
	return fd;
}

static int disk_file(void)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/e2e-handover-file.%d", selfdir,
		 (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	unlink(path);
	if (pwrite(fd, L.p, L.file_size, 0) != (ssize_t)L.file_size)
		die("%s: short write", path);
	return fd;
}

/* The fd that becomes PROBE_FD in the probe, or -1 for none. */
static int probe_source(struct ctx *c, int *extra)
{
	char path[64];
	int fds[2], fd;

	*extra = -1;
	switch (c->fdkind) {
	case FDK_COPY:
		return c->fd;
	case FDK_DEVNULL:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case FDK_PIPE:
		if (pipe2(fds, O_CLOEXEC))
			return -1;
		*extra = fds[1];
		return fds[0];
	case FDK_DISKFILE:
		return disk_file();
	case FDK_DIR:
		return open(selfdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	case FDK_RANDOM_MEMFD:
		return random_memfd();
	case FDK_EMPTY_MEMFD:
		return memfd_create("luo-arena", MFD_CLOEXEC);
	case FDK_SEALED_MEMFD:
		if (fcntl(c->fd, F_ADD_SEALS, F_SEAL_WRITE))
			die("F_SEAL_WRITE: %s", strerror(errno));
		return c->fd;
	case FDK_RDONLY:
		snprintf(path, sizeof(path), "/proc/self/fd/%d", c->fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		return fd;
	case FDK_SHM_FILE:
		return foreign_copy(true);
	case FDK_FOREIGN_MEMFD:
		return foreign_copy(false);
	default:
		return -1;
	}
}

struct outcome {
	int status;
	bool timed_out;
	char out[8192], err[16384];
	size_t nout, nerr;
};

static void run_probe(const char *env, int src, struct outcome *o)
{
	int po[2], pe[2];
	struct timespec t0, now;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (src == PROBE_FD)
			fcntl(src, F_SETFD, 0);
		else if (src >= 0)
			dup2(src, PROBE_FD);
		else
			close(PROBE_FD);
		setenv(LUO_HANDOVER_ENV, env, 1);
		unsetenv("LUO_LOG_LEVEL");
		execl(self, self, "probe", (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int open_pipes = 2; open_pipes;) {
		struct pollfd p[2] = {{.fd = po[0], .events = POLLIN},
				      {.fd = pe[0], .events = POLLIN}};
		long waited;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - t0.tv_sec) * 1000 +
			 (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited > PROBE_TIMEOUT_MS) {
			o->timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		n = poll(p, 2, 200);
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (int i = 0; n > 0 && i < 2; i++) {
			char *buf = i ? o->err : o->out;
			size_t cap = (i ? sizeof(o->err) : sizeof(o->out)) - 1;
			size_t *len = i ? &o->nerr : &o->nout;
			char scratch[4096];
			ssize_t r;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(p[i].fd, scratch, sizeof(scratch));
			if (r <= 0) {
				close(i ? pe[0] : po[0]);
				if (i)
					pe[0] = -1;
				else
					po[0] = -1;
				open_pipes--;
				continue;
			}
			if (*len + (size_t)r > cap)
				r = (ssize_t)(cap - *len);
			memcpy(buf + *len, scratch, (size_t)r);
			*len += (size_t)r;
			buf[*len] = 0;
		}
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR)
		;
}

static int count_lines(const char *text, const char *prefix, char *first,
		       size_t firstlen)
{
	int n = 0;

	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');

		if (!strncmp(l, prefix, strlen(prefix))) {
			if (!n && first)
				snprintf(first, firstlen, "%.*s",
					 (int)(nl ? nl - l : (long)strlen(l)),
					 l);
			n++;
		}
		l = nl ? nl + 1 : NULL;
	}
	return n;
}

static const char *errname(int e)
{
	static char buf[32];

	switch (-e) {
	case 0:
		return "accepted";
	case EBADMSG:
		return "EBADMSG";
	case EPROTONOSUPPORT:
		return "EPROTONOSUPPORT";
	case EBADF:
		return "EBADF";
	case ENOMEM:
		return "ENOMEM";
	case EINVAL:
		return "EINVAL";
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	case ENOENT:
		return "ENOENT";
	default:
		snprintf(buf, sizeof(buf), "errno %d", -e);
		return buf;
	}
}

static const char *expect_name(int e)
{
	return e == REFUSE_ANY ? "refused" : errname(e);
}

/* Run case @k; returns 0 if it behaved as expected. */
static int run_case(const struct kase *k)
{
	struct ctx c = {.fdkind = FDK_COPY};
	struct outcome *o = calloc(1, sizeof(*o));
	char verdict[256] = "", errline[512] = "";
	int src, extra, got = 1, nerr, code = -1;
	bool ok = false;
	const char *fd_state;

	if (!o)
		die("out of memory");
	snprintf(c.env, sizeof(c.env), "%d", PROBE_FD);
	c.size = L.file_size;
	/* Named as the library names its arenas, which it checks. */
	c.fd = memfd_create("luo-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c.fd < 0 || copy_arena(c.fd))
		die("copying the arena: %s", strerror(errno));
	c.p = mmap(NULL, c.size, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0);
	if (c.p == MAP_FAILED)
		die("mmap of the copy: %s", strerror(errno));
	if (memcmp(c.p, L.p, 4096))
		die("the copy differs from the original");
	if (k->fn(&c, k)) {
		printf("[FAIL] %-40s could not apply the corruption\n",
		       k->name);
		munmap(c.p, c.size);
		close(c.fd);
		free(o);
		return 1;
	}
	munmap(c.p, c.size);
	src = probe_source(&c, &extra);
	if (src < 0 && c.fdkind != FDK_NONE)
		die("%s: cannot set up the probe's fd: %s", k->name,
		    strerror(errno));

	run_probe(c.env, src, o);

	if (extra >= 0)
		close(extra);
	if (src >= 0 && src != c.fd)
		close(src);
	close(c.fd);

	fd_state = strstr(o->out, "fd100=closed") ? "closed" : "open";
	{
		const char *s = strstr(o->out, "probe: luo_init=");

		if (s)
			got = atoi(s + strlen("probe: luo_init="));
	}
	nerr = count_lines(o->err, "luo: error:", errline, sizeof(errline));
	if (WIFEXITED(o->status))
		code = WEXITSTATUS(o->status);

	if (o->timed_out) {
		snprintf(verdict, sizeof(verdict), "HANG: killed after %d ms",
			 PROBE_TIMEOUT_MS);
	} else if (WIFSIGNALED(o->status)) {
		snprintf(verdict, sizeof(verdict),
			 "CRASH: killed by signal %d (%s)", WTERMSIG(o->status),
			 strsignal(WTERMSIG(o->status)));
	} else if (strstr(o->err, "runtime error") ||
		   strstr(o->err, "Sanitizer")) {
		snprintf(verdict, sizeof(verdict), "SANITIZER report");
	} else if (code == 0 || code == 5 || code == 6) {
		if (k->expect != ACCEPT)
			snprintf(
				verdict, sizeof(verdict),
				"ACCEPTED a corrupt handover%s",
				code == 6
					? ", and handed wrong data to the service"
					: "");
		else if (code)
			snprintf(
				verdict, sizeof(verdict),
				"accepted, but the data did not check out (probe exit %d)",
				code);
		else if (o->nerr)
			snprintf(verdict, sizeof(verdict),
				 "accepted, but wrote to stderr");
		else
			ok = true;
	} else if (code == PROBE_REFUSED) {
		if (k->expect == ACCEPT)
			snprintf(verdict, sizeof(verdict),
				 "REFUSED a valid handover");
		else if (k->expect != REFUSE_ANY && got != k->expect)
			snprintf(verdict, sizeof(verdict),
				 "wrong errno: got %s, want %s", errname(got),
				 errname(k->expect));
		else if (nerr != 1 || count_lines(o->err, "", NULL, 0) != 1)
			snprintf(
				verdict, sizeof(verdict),
				"stderr has %d line(s), %d of them 'luo: error:'; want exactly one error line",
				count_lines(o->err, "", NULL, 0), nerr);
		else if ((k->flags & RESIGNED) &&
			 (strstr(errline, "checksum") ||
			  strstr(errline, "corrupt")))
			snprintf(
				verdict, sizeof(verdict),
				"refused for a checksum although the CRCs were recomputed");
		else if (got != -EBADF && !strcmp(fd_state, "open"))
			snprintf(verdict, sizeof(verdict),
				 "refused, but the arena fd %d was left open",
				 PROBE_FD);
		else if (got == -EBADF && c.fdkind != FDK_NONE &&
			 /* the arena itself, valid but unusable: ours */
			 c.fdkind != FDK_SEALED_MEMFD &&
			 c.fdkind != FDK_RDONLY && !strcmp(fd_state, "closed"))
			snprintf(verdict, sizeof(verdict),
				 "closed fd %d, which is not its arena",
				 PROBE_FD);
		else
			ok = true;
	} else {
		snprintf(
			verdict, sizeof(verdict),
			"probe exit code %d (4: no clean fresh start, 7: %s left in the environment, 8: state after a refusal, 9: positive return)",
			code, LUO_HANDOVER_ENV);
	}

	printf("[%s] %-40s expect=%-15s got=%-15s%s%s\n", ok ? "ok" : "FAIL",
	       k->name, expect_name(k->expect), errname(got), ok ? "" : "  ",
	       verdict);
	if (ok && errline[0])
		printf("       %s\n", errline);
	if (!ok)
		printf("  --- probe stdout ---\n%s  --- probe stderr ---\n%s  ---\n",
		       o->out, o->err);
	free(o);
	return ok ? 0 : 1;
}

int stage_corrupt(void)
{
	size_t failed = 0, corruptions = 0, controls = 0;

	take_handover();
	parse_layout();
	for (size_t i = 0; i < ncases; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cases[i].name, cases[j].name))
				die("case name %s used twice", cases[i].name);
	for (size_t i = 0; i < ncases; i++) {
		failed += run_case(&cases[i]);
		if (cases[i].flags & CONTROL)
			controls++;
		else
			corruptions++;
	}
	printf("corrupt-handover: %zu cases (%zu positive controls, %zu corruptions), %zu failed\n",
	       ncases, controls, corruptions, failed);
	if (corruptions < MIN_CORRUPTIONS) {
		printf("corrupt-handover: FAIL: only %zu corruption cases, want at least %d\n",
		       corruptions, MIN_CORRUPTIONS);
		return 1;
	}
	if (failed) {
		printf("corrupt-handover: FAIL\n");
		return 1;
	}
	printf("corrupt-handover: PASS\n");
	return 0;
}
