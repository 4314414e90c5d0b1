// SPDX-License-Identifier: MIT
/* test_device: the big tree (order, cancel, prepare failures), reboot and
 * shutdown when the exec fails, the order across participants, and the
 * registry changing under threads while updates come and go. */
#define _GNU_SOURCE

#include "test_device.h"

/* ---- the big tree: order, cancel, shutdown ---- */

static bool req[MAX_DEV];
static int list[MAX_DEV];

/* Request a spread of devices at every depth. */
static int request_spread(void)
{
	memset(req, 0, sizeof(req));
	for (int i = 0; i < NT; i++)
		if ((T[i].depth == 6 && i % 7 == 0) ||
		    (T[i].depth == 4 && i % 5 == 0) || i == 3) {
			req[i] = true;
			assert_int_equal(
				liveupdate_device_request(&T[i].dev, true), 0);
		}
	return expected_list(req, list);
}

void test_big_tree_prepare_cancel(void **state)
{
	int n, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	assert_true(n > 200 && n < NT);
	assert_int_equal(liveupdate_prepare(), 0);
	/* Driver then bus, deepest first, each once, nothing else. */
	expect_pairs(&at, 'P', list, n, false, "DB");
	assert_int_equal(at, nev);
	for (int i = 0; i < NT; i++) {
		bool in = false;

		for (int j = 0; j < n; j++)
			in |= list[j] == i;
		if (liveupdate_device_preserved(&T[i].dev) != in)
			fail_msg("device %d preserved %d, expected %d", i, !in,
				 in);
		if (liveupdate_device_requested(&T[i].dev) != req[i])
			fail_msg("device %d requested flag wrong", i);
	}
	nev = 0;
	assert_int_equal(liveupdate_cancel(), 0);
	/* Reverse order, bus then driver, with the data prepare stored. */
	at = 0;
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_no_flags();
	assert_int_equal(count_ev('S'), 0);
	/* Requests survive a cancel; the next cycle is the same. */
	nev = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	at = 0;
	expect_pairs(&at, 'P', list, n, false, "DB");
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(rec.log_errors, 0);
}

void test_big_tree_cancel_after_freeze(void **state)
{
	int n, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), 0);
	assert_int_equal(nev, 2 * n); /* freeze calls no device callback */
	nev = 0;
	assert_int_equal(liveupdate_cancel(), 0);
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_no_flags();
	/* Cancel happens once: a second one is refused and calls nothing. */
	nev = 0;
	assert_int_equal(liveupdate_cancel(), -EINVAL);
	assert_int_equal(nev, 0);
}

/* A failing driver (who 'D') or bus ('B') prepare at position @pos. */
static void prepare_failure_at(char who, int pos)
{
	int n, at = 0;

	nev = 0;
	n = expected_list(req, list);
	assert_true(pos < n);
	fail = (typeof(fail)){'P', who, list[pos], -EIO};
	assert_int_equal(liveupdate_prepare(), -EIO);
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	expect_pairs(&at, 'P', list, pos, false, "DB");
	expect_pairs(&at, 'P', list + pos, 1, false, who == 'D' ? "D" : "DB");
	/* The failing device's driver is cancelled if its bus failed. */
	if (who == 'B') {
		assert_true(at < nev);
		assert_int_equal(evs[at].op, 'C');
		assert_int_equal(evs[at].who, 'D');
		assert_int_equal(evs[at].id, list[pos]);
		assert_int_equal(evs[at].data, data_of('D', list[pos]));
		at++;
	}
	expect_pairs(&at, 'C', list, pos, true, "BD");
	assert_int_equal(at, nev);
	assert_no_flags();
	assert_non_null(strstr(rec.last_error,
			       who == 'D' ? "driver 'drv' refused prepare"
					  : "refused prepare"));
	memset(&fail, 0, sizeof(fail));
}

void test_big_tree_prepare_failures(void **state)
{
	int n;

	(void)state;
	build_big_tree();
	n = request_spread();
	int positions[] = {0, 1, n / 2, n - 2, n - 1};

	for (size_t k = 0; k < sizeof(positions) / sizeof(positions[0]); k++) {
		prepare_failure_at('D', positions[k]);
		prepare_failure_at('B', positions[k]);
	}
	assert_int_equal(rec.log_errors, 10);
	/* Nothing is left over: the next prepare works. */
	nev = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(nev, 2 * n);
	assert_int_equal(liveupdate_cancel(), 0);
}

/* ---- reboot and shutdown (exec made to fail) ---- */

static char garbage_path[4096];
static int garbage_fd = -1;

/*
 * A program the pre-check passes but execve() refuses, next to this
 * binary (where programs can run): a script still open for writing
 * (-ETXTBSY), the kind of failure no check before the shutdown can
 * foresee (the pre-check catches a bad format itself).
 */
static const char *make_garbage(void)
{
	ssize_t n = readlink("/proc/self/exe", garbage_path, 4000);
	static const char script[] = "#!/bin/sh\nexit 0\n";

	assert_true(n > 0);
	garbage_path[n] = 0;
	strcat(garbage_path, "-busy-XXXXXX");
	if (garbage_fd >= 0)
		close(garbage_fd);
	garbage_fd = mkstemp(garbage_path);
	assert_true(garbage_fd >= 0);
	assert_int_equal(write(garbage_fd, script, sizeof(script) - 1),
			 (ssize_t)sizeof(script) - 1);
	assert_int_equal(fchmod(garbage_fd, 0755), 0);
	return garbage_path; /* garbage_fd stays open for writing */
}

/* Every registered device not in the list, children before parents. */
static int expected_shutdown(const int *plist, int n, int *out)
{
	static bool in[MAX_DEV];
	int k = 0;

	memset(in, 0, sizeof(in));
	for (int j = 0; j < n; j++)
		in[plist[j]] = true;
	for (int i = NT - 1; i >= 0; i--)
		if (!in[i] && T[i].dev.lu)
			out[k++] = i;
	return k;
}

void test_big_tree_shutdown_when_exec_fails(void **state)
{
	static int down[MAX_DEV];
	char *const argv[] = {"x", NULL};
	const char *garbage = make_garbage();
	int n, ndown, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	ndown = expected_shutdown(list, n, down);
	assert_int_equal(n + ndown, NT);

	/* A missing program fails before anything is shut down. */
	assert_int_equal(liveupdate_prepare(), 0);
	nev = 0;
	assert_int_equal(liveupdate_reboot("/nonexistent/luo-x", argv, NULL),
			 -ENOENT);
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_int_equal(count_ev('R') + count_ev('S'), 0);

	/* An exec only execve() refuses: reboot, shutdown, then the exec. */
	rec.log_warnings = 0;
	assert_int_equal(liveupdate_prepare(), 0);
	nev = 0;
	assert_int_equal(liveupdate_reboot(garbage, argv, NULL), -ETXTBSY);
	at = 0;
	expect_pairs(&at, 'R', list, n, false, "DB");
	for (int k = 0; k < ndown; k++, at++) {
		int id = down[k];
		/* The bus's shutdown wins; pbus has none: the driver's. */
		char who = T[id].dev.bus == &sbus ? 'B' : 'D';

		if (evs[at].op != 'S' || evs[at].who != who || evs[at].id != id)
			fail_msg("event %d is %c%c of %d, wanted S%c of %d", at,
				 evs[at].op, evs[at].who, evs[at].id, who, id);
	}
	expect_pairs(&at, 'C', list, n, true, "BD");
	assert_int_equal(at, nev);
	assert_int_equal(rec.log_warnings, 1); /* "they stay shut down" */
	assert_no_flags();
	assert_int_equal(liveupdate_get_state(), LIVEUPDATE_STATE_NORMAL);
	unlink(garbage);
}

/* A refused reboot cancels every prepared device once, in reverse. */
void test_reboot_failure(void **state)
{
	char *const argv[] = {"x", NULL};
	const char *garbage = make_garbage();
	int n, at = 0;

	(void)state;
	build_big_tree();
	n = request_spread();
	for (int k = 0; k < 2; k++) {
		int pos = k ? n - 1 : n / 3;

		assert_int_equal(liveupdate_prepare(), 0);
		nev = 0;
		at = 0;
		fail = (typeof(fail)){'R', k ? 'B' : 'D', list[pos], -EPIPE};
		assert_int_equal(liveupdate_reboot(garbage, argv, NULL),
				 -EPIPE);
		expect_pairs(&at, 'R', list, pos, false, "DB");
		expect_pairs(&at, 'R', list + pos, 1, false, k ? "DB" : "D");
		expect_pairs(&at, 'C', list, n, true, "BD");
		assert_int_equal(at, nev);
		assert_int_equal(count_ev('S'), 0);
		assert_no_flags();
	}
	unlink(garbage);
}

/* ---- order across participants ---- */

void test_cross_participant_order(void **state)
{
	int a, b, at;

	(void)state;
	a = add(-1, "a", &sbus, &drv);
	b = add(a, "b", &pbus, &drv);
	assert_int_equal(reg(a), 0);
	assert_int_equal(reg(b), 0);
	assert_int_equal(liveupdate_register_subsystem(&sub), 0);
	assert_int_equal(liveupdate_device_request(&T[b].dev, true), 0);
	list[0] = b;
	list[1] = a;

	/* Subsystems prepare first; devices are cancelled first. */
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_cancel(), 0);
	assert_int_equal(nev, 10);
	assert_true(evs[0].op == 'P' && evs[0].who == 'S');
	at = 1;
	expect_pairs(&at, 'P', list, 2, false, "DB");
	expect_pairs(&at, 'C', list, 2, true, "BD");
	assert_true(evs[9].op == 'C' && evs[9].who == 'S');

	/* A device refusing prepare cancels the subsystem after itself. */
	nev = 0;
	fail = (typeof(fail)){'P', 'B', a, -EAGAIN};
	assert_int_equal(liveupdate_prepare(), -EAGAIN);
	/* S-P, b D-P B-P, a D-P B-P, a D-C, b B-C D-C, S-C */
	assert_int_equal(nev, 9);
	assert_true(evs[0].op == 'P' && evs[0].who == 'S');
	assert_true(evs[5].op == 'C' && evs[5].who == 'D' && evs[5].id == a);
	assert_true(evs[6].op == 'C' && evs[6].who == 'B' && evs[6].id == b);
	assert_true(evs[7].op == 'C' && evs[7].who == 'D' && evs[7].id == b);
	assert_true(evs[8].op == 'C' && evs[8].who == 'S');

	/* The subsystem refusing freeze cancels the devices first. */
	nev = 0;
	fail = (typeof(fail)){'Z', 'S', -1, -EIO};
	assert_int_equal(liveupdate_prepare(), 0);
	assert_int_equal(liveupdate_freeze(), -EIO);
	assert_int_equal(nev, 11);
	assert_true(evs[5].op == 'Z');
	at = 6;
	expect_pairs(&at, 'C', list, 2, true, "BD");
	assert_true(evs[10].op == 'C' && evs[10].who == 'S');
	memset(&fail, 0, sizeof(fail));
	assert_int_equal(liveupdate_unregister_subsystem(&sub), 0);
}

/* ---- threads: the registry changes while updates come and go ---- */

#define CHURN 32

static struct {
	int bad, done, cycles, busy;
} churn_st;

static int count_cb(const struct liveupdate_device_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 0;
}

static void *churn(void *arg)
{
	bool on[CHURN] = {false};
	int r;

	(void)arg;
	for (int round = 0;
	     round < 400 ||
	     __atomic_load_n(&churn_st.cycles, __ATOMIC_SEQ_CST) < 200;
	     round++) {
		for (int i = 1; i <= CHURN; i++) {
			if (!on[i - 1]) {
				r = reg(i);
				churn_st.bad += r != 0;
				on[i - 1] = !r;
			}
			r = liveupdate_device_request(&T[i].dev, round % 3);
			churn_st.bad += r && r != -EBUSY;
			churn_st.busy += r == -EBUSY;
		}
		for (int i = CHURN; i >= 1; i--) {
			if (i % 2 && round % 5)
				continue;
			r = liveupdate_device_unregister(&T[i].dev);
			churn_st.bad += r && r != -EBUSY;
			on[i - 1] = r != 0;
		}
	}
	__atomic_store_n(&churn_st.done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

void test_threads(void **state)
{
	pthread_t th;
	char name[16];
	int cycles = 0;

	(void)state;
	add(-1, "pool", &sbus, &drv);
	for (int i = 0; i < CHURN; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		add(0, name, i % 2 ? &pbus : &sbus, &drv);
	}
	assert_int_equal(reg(0), 0);
	memset(&churn_st, 0, sizeof(churn_st));
	assert_int_equal(pthread_create(&th, NULL, churn, NULL), 0);
	while (!__atomic_load_n(&churn_st.done, __ATOMIC_SEQ_CST) ||
	       cycles < 20) {
		int n = 0;

		assert_int_equal(liveupdate_prepare(), 0);
		assert_int_equal(liveupdate_device_foreach(count_cb, &n), 0);
		assert_true(n >= 1 && n <= CHURN + 1);
		if (cycles % 2)
			assert_int_equal(liveupdate_freeze(), 0);
		assert_int_equal(liveupdate_cancel(), 0);
		/* Per cycle: the journal holds MAX_EV events, fewer than a
		 * long run makes. */
		assert_int_equal(count_ev('P'), count_ev('C'));
		nev = 0;
		cycles++;
		__atomic_store_n(&churn_st.cycles, cycles, __ATOMIC_SEQ_CST);
	}
	print_message("%d updates cancelled while %d requests met -EBUSY\n",
		      cycles, churn_st.busy);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(churn_st.bad, 0);
	/* Every callback came in pairs: as many cancels as prepares. */
	assert_int_equal(count_ev('P'), count_ev('C'));
	assert_no_flags();
}
