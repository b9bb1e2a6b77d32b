/*
 * check_util: the helpers of src/base/util.h that other files lean on
 * for memory and retries: growing arrays (jobd_util_grow, one array;
 * jobd_util_resize, parallel ones) and the backoff of every retry
 * (jobd_util_backoff).
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "testutil.h"

/* Appending one element at a time: the capacity doubles from FIRST, the
 * array keeps what it held, and it is only reallocated at a doubling. */
START_TEST(test_grow_doubles_from_first_and_keeps_the_elements)
{
	int *v = NULL;
	size_t cap = 0, grown = 0;

	for (size_t n = 0; n < 1000; n++) {
		size_t before = cap;

		ck_assert_int_eq(jobd_util_grow(&v, &cap, n, sizeof(*v), 16),
				 0);
		ck_assert_uint_gt(cap, n);
		if (cap != before) {
			ck_assert_uint_eq(cap, before ? before * 2 : 16);
			grown++;
		}
		v[n] = (int)n * 7;
	}
	ck_assert_uint_eq(cap, 1024);
	ck_assert_uint_eq(grown, 7); /* 16, 32, ..., 1024 */
	for (size_t n = 0; n < 1000; n++)
		ck_assert_int_eq(v[n], (int)n * 7);
	free(v);
}
END_TEST

/* Room for an element far past the end (a byte buffer taking a long
 * string) doubles as often as needed, not once. */
START_TEST(test_grow_makes_room_far_past_the_end)
{
	char *b = NULL;
	size_t cap = 0;

	ck_assert_int_eq(jobd_util_grow(&b, &cap, 0, 1, 256), 0);
	ck_assert_uint_eq(cap, 256);
	ck_assert_int_eq(jobd_util_grow(&b, &cap, 5000, 1, 256), 0);
	ck_assert_uint_eq(cap, 8192);
	memset(b, 'x', 5001);
	/* Room already there: nothing changes. */
	ck_assert_int_eq(jobd_util_grow(&b, &cap, 8191, 1, 256), 0);
	ck_assert_uint_eq(cap, 8192);
	free(b);
}
END_TEST

/* Sizes that overflow are refused and leave the array as it was. */
START_TEST(test_grow_and_resize_refuse_overflow_unchanged)
{
	long *v = NULL;
	size_t cap = 0;

	ck_assert_int_eq(jobd_util_grow(&v, &cap, 3, sizeof(*v), 4), 0);
	v[3] = 42;
	ck_assert_int_eq(jobd_util_resize(&v, SIZE_MAX / 2, sizeof(*v)), -1);
	ck_assert_int_eq(jobd_util_grow(&v, &cap, SIZE_MAX - 1, sizeof(*v), 4),
			 -1);
	ck_assert_uint_eq(cap, 4);
	ck_assert_int_eq(v[3], 42);
	ck_assert_int_eq(jobd_util_resize(&v, 100, sizeof(*v)), 0);
	ck_assert_int_eq(v[3], 42);
	free(v);
}
END_TEST

/* MIN at first, then doubling, never past MAX, even near overflow. */
START_TEST(test_backoff_starts_at_min_doubles_and_stops_at_max)
{
	int64_t ms = 0;
	static const int64_t want[] = { 100,  200,  400,  800,
					1600, 3200, 5000, 5000 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ms = jobd_util_backoff(ms, 100, 5000);
		ck_assert_int_eq(ms, want[i]);
	}
	ck_assert_int_eq(jobd_util_backoff(-5, 100, 5000), 100);
	ck_assert_int_eq(jobd_util_backoff(INT64_MAX / 2 + 1, 1, INT64_MAX),
			 INT64_MAX);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, test_grow_doubles_from_first_and_keeps_the_elements);
	tcase_add_test(tc, test_grow_makes_room_far_past_the_end);
	tcase_add_test(tc, test_grow_and_resize_refuse_overflow_unchanged);
	tcase_add_test(tc, test_backoff_starts_at_min_doubles_and_stops_at_max);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(util_suite());
}
