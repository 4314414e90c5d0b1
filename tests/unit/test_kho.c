// SPDX-License-Identifier: MIT
/*
 * Handover memory: allocation, alignment, zeroing, offsets, growth,
 * limits, subtrees, and every error code of the kho_* API.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <luo/luo.h>

#include "kho_internal.h"

/*
 * The handover memory layer alone: this test links only it and the base
 * layer, so the arena is created without luo_init().
 */
static int log_errors;

static void count_log(enum luo_log_level level, const char *msg, void *arg)
{
	(void)msg;
	(void)arg;
	if (level == LUO_LOG_ERR)
		log_errors++;
}

static int arena_start(unsigned int flags, uint64_t reserve)
{
	log_errors = 0;
	luo_set_log_handler(count_log, NULL);
	return luo_kho_arena_create(flags, reserve);
}

static void arena_stop(void)
{
	luo_kho_unfreeze();
	luo_kho_forget_incoming();
	luo_kho_arena_destroy();
}

static int setup(void **state)
{
	(void)state;
	return arena_start(0, KHO_DEFAULT_RESERVE) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_stop();
	luo_set_log_handler(NULL, NULL);
	return 0;
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

static void test_alloc_basic(void **state)
{
	struct kho_arena_stats st;
	void *a, *b;

	(void)state;
	assert_int_equal(kho_alloc_preserve(100, &a), 0);
	assert_int_equal(kho_alloc_preserve(100, &b), 0);
	assert_ptr_not_equal(a, b);
	assert_int_equal((uintptr_t)a % 64, 0);
	assert_true(all_zero(a, 100));
	memset(a, 0xff, 100);
	assert_true(all_zero(b, 100)); /* no overlap */
	assert_int_equal(kho_get_stats(&st), 0);
	assert_int_equal(st.allocations, 2);
	assert_int_equal(st.allocated, 200);
	assert_int_equal(st.page_size, 4096);
	assert_int_equal(st.incoming_unclaimed, 0);
}

static void test_alloc_errors(void **state)
{
	void *p = NULL;

	(void)state;
	assert_int_equal(kho_alloc_preserve(0, &p), -EINVAL);
	assert_int_equal(kho_alloc_preserve(16, NULL), -EINVAL);
	assert_int_equal(kho_alloc_preserve(SIZE_MAX - 8, &p), -ENOMEM);
	assert_int_equal(kho_get_stats(NULL), -EINVAL);
}

static void test_large_alignment(void **state)
{
	void *small, *big, *huge;

	(void)state;
	assert_int_equal(kho_alloc_preserve(40, &small), 0);
	assert_int_equal(kho_alloc_preserve(64 << 10, &big), 0);
	assert_int_equal((uintptr_t)big % 4096, 0);
	assert_int_equal(kho_alloc_preserve(3 << 20, &huge), 0);
	assert_int_equal((uintptr_t)huge % 4096, 0);
	assert_true(all_zero(huge, 3 << 20));
}

static void test_offsets(void **state)
{
	void *a;
	uint64_t off;
	int local;

	(void)state;
	assert_int_equal(kho_alloc_preserve(256, &a), 0);
	off = kho_ptr_to_offset(a);
	assert_true(off != 0);
	assert_ptr_equal(kho_offset_to_ptr(off), a);
	assert_ptr_equal(kho_offset_to_ptr(off + 10), (char *)a + 10);
	assert_int_equal(kho_ptr_to_offset((char *)a + 10), off + 10);
	assert_int_equal(kho_ptr_to_offset(&local), 0);
	assert_int_equal(kho_ptr_to_offset(NULL), 0);
	assert_null(kho_offset_to_ptr(0));
	assert_null(kho_offset_to_ptr(1ULL << 50));
}

static void test_free_and_reuse_is_zeroed(void **state)
{
	struct kho_arena_stats st;
	void *a, *b, *c, *again;

	(void)state;
	assert_int_equal(kho_alloc_preserve(1000, &a), 0);
	assert_int_equal(kho_alloc_preserve(200 << 10, &b), 0);
	assert_int_equal(kho_alloc_preserve(1000, &c), 0);
	memset(a, 1, 1000);
	memset(b, 2, 200 << 10);
	memset(c, 3, 1000);
	assert_int_equal(kho_unpreserve_free(b), 0);
	assert_int_equal(kho_alloc_preserve(150 << 10, &again), 0);
	assert_true(all_zero(again, 150 << 10));
	assert_int_equal(kho_unpreserve_free(a), 0);
	assert_int_equal(kho_unpreserve_free(again), 0);
	assert_int_equal(kho_unpreserve_free(c), 0);
	assert_int_equal(kho_get_stats(&st), 0);
	assert_int_equal(st.allocations, 0);
	assert_int_equal(st.allocated, 0);
	/* Everything merged back: one allocation of it all fits again. */
	assert_int_equal(kho_alloc_preserve(1000, &a), 0);
	assert_true(all_zero(a, 1000));
}

static void test_free_errors(void **state)
{
	void *a;
	int local;

	(void)state;
	assert_int_equal(kho_alloc_preserve(128, &a), 0);
	assert_int_equal(kho_unpreserve_free((char *)a + 64), -EINVAL);
	assert_int_equal(kho_unpreserve_free(&local), -EINVAL);
	assert_int_equal(kho_unpreserve_free(NULL), -EINVAL);
	assert_int_equal(kho_unpreserve_free(a), 0);
	assert_int_equal(kho_unpreserve_free(a), -EINVAL);
}

static void test_growth(void **state)
{
	struct kho_arena_stats st;
	void *p[8];

	(void)state;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(kho_alloc_preserve(16 << 20, &p[i]), 0);
		memset(p[i], i + 1, 4096); /* usable: no SIGBUS */
	}
	assert_int_equal(kho_get_stats(&st), 0);
	assert_true(st.arena_size >= 128ULL << 20);
	for (int i = 0; i < 8; i++)
		assert_int_equal(((unsigned char *)p[i])[100], i + 1);
}

static void test_arena_limit(void **state)
{
	void *p;

	(void)state;
	arena_stop();
	assert_int_equal(arena_start(0, 8 << 20), 0);
	assert_int_equal(kho_alloc_preserve(16 << 20, &p), -ENOMEM);
	assert_int_equal(log_errors, 1);
	assert_int_equal(kho_alloc_preserve(4 << 20, &p), 0);
}

static void test_many_small_allocations(void **state)
{
	enum { N = 2000 };
	static void *p[N];
	struct kho_arena_stats st;

	(void)state;
	for (int i = 0; i < N; i++) {
		assert_int_equal(kho_alloc_preserve(1 + i % 300, &p[i]), 0);
		memset(p[i], 0xab, 1 + i % 300);
	}
	/* Free every other one, then the rest: merging must hold up. */
	for (int i = 0; i < N; i += 2)
		assert_int_equal(kho_unpreserve_free(p[i]), 0);
	for (int i = 1; i < N; i += 2)
		assert_int_equal(kho_unpreserve_free(p[i]), 0);
	assert_int_equal(kho_get_stats(&st), 0);
	assert_int_equal(st.allocations, 0);
}

/* Random allocations and frees: no overlap, always zeroed, all merged. */
static void test_random_alloc_free(void **state)
{
	enum { SLOTS = 300, ROUNDS = 6000 };
	static unsigned char *p[SLOTS];
	static size_t len[SLOTS];
	struct kho_arena_stats st;
	unsigned int seed = 12345;

	(void)state;
	memset(p, 0, sizeof(p));
	for (int r = 0; r < ROUNDS; r++) {
		int k = rand_r(&seed) % SLOTS;

		if (p[k]) {
			for (size_t i = 0; i < len[k]; i++)
				if (p[k][i] != (unsigned char)k)
					fail_msg("slot %d byte %zu overwritten",
						 k, i);
			assert_int_equal(kho_unpreserve_free(p[k]), 0);
			p[k] = NULL;
			continue;
		}
		len[k] = 1 + (size_t)rand_r(&seed) %
				     ((rand_r(&seed) & 7) ? 2000 : 300000);
		assert_int_equal(kho_alloc_preserve(len[k], (void **)&p[k]), 0);
		assert_true(all_zero(p[k], len[k]));
		memset(p[k], k, len[k]);
	}
	for (int k = 0; k < SLOTS; k++)
		if (p[k])
			assert_int_equal(kho_unpreserve_free(p[k]), 0);
	assert_int_equal(kho_get_stats(&st), 0);
	assert_int_equal(st.allocations, 0);
}

static void *make_fdt(size_t size)
{
	void *fdt;

	assert_int_equal(kho_alloc_preserve(size, &fdt), 0);
	assert_int_equal(fdt_create_empty_tree(fdt, (int)size), 0);
	assert_int_equal(fdt_setprop_string(fdt, 0, "compatible", "test-v1"),
			 0);
	return fdt;
}

static void test_subtree_rules(void **state)
{
	void *fdt = make_fdt(512), *other = make_fdt(512), *junk;
	char heap_fdt[512];
	const void *got;

	(void)state;
	assert_int_equal(kho_add_subtree("app", fdt), 0);
	assert_int_equal(kho_add_subtree("app", other), -EEXIST);
	assert_int_equal(kho_add_subtree("LUO", other), -EINVAL);
	assert_int_equal(kho_add_subtree("bad name", other), -EINVAL);
	assert_int_equal(kho_add_subtree("", other), -EINVAL);
	assert_int_equal(kho_add_subtree(NULL, other), -EINVAL);
	/* Not handover memory, or not at an allocation's start. */
	assert_int_equal(fdt_create_empty_tree(heap_fdt, sizeof(heap_fdt)), 0);
	assert_int_equal(kho_add_subtree("heap", heap_fdt), -EINVAL);
	assert_int_equal(kho_add_subtree("mid", (char *)other + 64), -EINVAL);
	/* Not an FDT. */
	assert_int_equal(kho_alloc_preserve(256, &junk), 0);
	memset(junk, 0x77, 256);
	assert_int_equal(kho_add_subtree("junk", junk), -EINVAL);
	/* Published memory cannot be freed until withdrawn. */
	assert_int_equal(kho_unpreserve_free(fdt), -EBUSY);
	assert_int_equal(kho_remove_subtree(other), -ENOENT);
	assert_int_equal(kho_remove_subtree(fdt), 0);
	assert_int_equal(kho_remove_subtree(fdt), -ENOENT);
	assert_int_equal(kho_unpreserve_free(fdt), 0);
	/* Nothing incoming in a fresh start. */
	assert_int_equal(kho_retrieve_subtree("app", &got), -ENODATA);
	assert_int_equal(kho_retrieve_subtree(NULL, &got), -EINVAL);
}

static void test_subtree_frozen(void **state)
{
	void *fdt = make_fdt(512), *late = make_fdt(512);

	(void)state;
	assert_int_equal(kho_add_subtree("app", fdt), 0);
	/* Still allowed while prepared: prepare callbacks publish state. */
	assert_int_equal(kho_add_subtree("late", late), 0);
	assert_int_equal(kho_remove_subtree(late), 0);
	luo_kho_freeze(); /* what liveupdate_freeze() does to this layer */
	assert_int_equal(kho_add_subtree("late", late), -EBUSY);
	assert_int_equal(kho_remove_subtree(fdt), -EBUSY);
	assert_int_equal(kho_unpreserve_free(late), -EBUSY);
	luo_kho_unfreeze(); /* what liveupdate_cancel() does to it */
	assert_int_equal(kho_remove_subtree(fdt), 0);
}

static void test_restore_rules(void **state)
{
	void *a, *got;

	(void)state;
	assert_int_equal(kho_alloc_preserve(128, &a), 0);
	/* Restoring our own allocation is harmless and returns it. */
	assert_int_equal(kho_restore(kho_ptr_to_offset(a), 128, &got), 0);
	assert_ptr_equal(got, a);
	assert_int_equal(kho_restore(kho_ptr_to_offset(a), 129, &got), -EINVAL);
	assert_int_equal(kho_restore(kho_ptr_to_offset(a) + 64, 1, &got),
			 -ENOENT);
	assert_int_equal(kho_restore(0, 1, &got), -ENOENT);
	assert_int_equal(kho_restore(1ULL << 40, 1, &got), -ENOENT);
	assert_int_equal(kho_restore(kho_ptr_to_offset(a), 1, NULL), -EINVAL);
}

static void test_arena_fd_is_cloexec(void **state)
{
	char path[64], target[256];
	int found = 0;

	(void)state;
	/* No descriptor of ours may leak into children in normal running. */
	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		if (strstr(target, "memfd:luo-arena")) {
			found++;
			assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		}
	}
	assert_int_equal(found, 1);
}

/* Huge page arenas need pages reserved; skip when there are none. */
static void test_hugetlb_arena(void **state)
{
	struct kho_arena_stats st;
	void *p;
	int err;

	(void)state;
	arena_stop();
	err = arena_start(KHO_ARENA_HUGETLB, KHO_DEFAULT_RESERVE);
	if (err) {
		assert_int_equal(arena_start(0, KHO_DEFAULT_RESERVE), 0);
		skip();
	}
	assert_int_equal(kho_get_stats(&st), 0);
	assert_int_equal(st.page_size, 2 << 20);
	assert_true(st.hugetlb);
	err = kho_alloc_preserve(4 << 20, &p);
	if (err == -ENOMEM)
		skip(); /* no huge pages reserved on this machine */
	assert_int_equal(err, 0);
	assert_int_equal((uintptr_t)p % (2 << 20), 0);
	memset(p, 1, 4 << 20);
	assert_int_equal(kho_unpreserve_free(p), 0);
}

static void test_thp_arena(void **state)
{
	struct kho_arena_stats st;
	void *p;

	(void)state;
	arena_stop();
	assert_int_equal(arena_start(KHO_ARENA_THP, KHO_DEFAULT_RESERVE), 0);
	assert_int_equal(kho_get_stats(&st), 0);
	assert_true(st.thp);
	assert_int_equal(kho_alloc_preserve(4 << 20, &p), 0);
	assert_int_equal((uintptr_t)p % (2 << 20), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_alloc_basic),
		T(test_alloc_errors),
		T(test_large_alignment),
		T(test_offsets),
		T(test_free_and_reuse_is_zeroed),
		T(test_free_errors),
		T(test_growth),
		T(test_arena_limit),
		T(test_many_small_allocations),
		T(test_random_alloc_free),
		T(test_subtree_rules),
		T(test_subtree_frozen),
		T(test_restore_rules),
		T(test_arena_fd_is_cloexec),
		T(test_hugetlb_arena),
		T(test_thp_arena),
	};

	return cmocka_run_group_tests_name("kho", tests, NULL, NULL);
}
