/*
 * check_csv: the RFC 4180 reader and writer (src/handlers/csv.h): records, line
 * numbers and byte ranges, resuming at an offset, refusals that name the
 * problem and resynchronise, reads that return one byte at a time, and a
 * writer whose output reads back to the same fields.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/csv.h"
#include "tests/unit/memread.h"
#include "testutil.h"

static struct mem in;
static struct jobd_csv_reader *r;
static struct jobd_csv_record rec;
static char err[256];

static void open_text(const char *text, size_t step)
{
	jobd_csv_reader_free(r);
	in = (struct mem){ .buf = text, .len = strlen(text), .step = step };
	r = jobd_csv_reader_new(mem_read, &in, 0, 1, -1);
	ck_assert_ptr_nonnull(r);
}

static void teardown(void)
{
	jobd_csv_reader_free(r);
	r = NULL;
}

static int next(void)
{
	err[0] = '\0';
	return jobd_csv_next(r, &rec, err, sizeof(err));
}

static void assert_fields(size_t n, const char *const *want)
{
	ck_assert_uint_eq(rec.n, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(rec.fields[i], want[i]);
		ck_assert_uint_eq(rec.lens[i], strlen(want[i]));
	}
}

#define FIELDS(...)                                             \
	assert_fields(sizeof((const char *[]){ __VA_ARGS__ }) / \
			      sizeof(const char *),             \
		      (const char *[]){ __VA_ARGS__ })

START_TEST(test_csv_reads_quoted_escaped_and_multiline_fields)
{
	static const char text[] = "id,name,note\r\n"
				   "1,\"a, b\",\"say \"\"hi\"\"\"\r\n"
				   "2,\"two\nlines\",\n"
				   "3,,\"\"";

	open_text(text, (size_t)_i);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("id", "name", "note");
	ck_assert_int_eq(rec.line, 1);
	ck_assert_int_eq(rec.offset, 0);
	ck_assert_int_eq(rec.end, 14);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("1", "a, b", "say \"hi\"");
	ck_assert_int_eq(rec.line, 2);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("2", "two\nlines", "");
	ck_assert_int_eq(rec.line, 3);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("3", "", "");
	ck_assert_int_eq(rec.line, 5);
	ck_assert_int_eq(rec.end, (int64_t)strlen(text));
	ck_assert_int_eq(next(), JOBD_CSV_EOF);
	ck_assert_int_eq(next(), JOBD_CSV_EOF);
}
END_TEST

START_TEST(test_csv_skips_bom_and_empty_lines)
{
	open_text("\xef\xbb\xbf"
		  "a,b\n\n\r\nc,d\n\n",
		  0);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("a", "b");
	ck_assert_int_eq(rec.offset, 3);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("c", "d");
	ck_assert_int_eq(rec.line, 4);
	ck_assert_int_eq(next(), JOBD_CSV_EOF);
}
END_TEST

START_TEST(test_csv_bad_records_are_named_and_reading_goes_on)
{
	open_text("a,b\"c,d\n"
		  "\"x\"y,z\n"
		  "ok,1\n"
		  "bad,\xc3\x28\n"
		  "\"open,never\nclosed\n",
		  0);
	ck_assert_int_eq(next(), JOBD_CSV_BAD);
	ck_assert_str_eq(err, "quote inside unquoted field 2");
	ck_assert_int_eq(rec.line, 1);
	ck_assert_int_eq(next(), JOBD_CSV_BAD);
	ck_assert_str_eq(err, "text after the closing quote of field 1");
	ck_assert_int_eq(rec.line, 2);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("ok", "1");
	ck_assert_int_eq(next(), JOBD_CSV_BAD);
	ck_assert_str_eq(err, "invalid UTF-8 in field 2");
	ck_assert_int_eq(rec.line, 4);
	ck_assert_int_eq(next(), JOBD_CSV_BAD);
	ck_assert_str_eq(err, "unterminated quoted field 1 (opened on line 5)");
	ck_assert_int_eq(next(), JOBD_CSV_EOF);
}
END_TEST

START_TEST(test_csv_nul_byte_refused)
{
	static const char text[] = "a,b\0c\nd,e\n";

	jobd_csv_reader_free(r);
	in = (struct mem){ .buf = text, .len = sizeof(text) - 1 };
	r = jobd_csv_reader_new(mem_read, &in, 0, 1, -1);
	ck_assert_int_eq(next(), JOBD_CSV_BAD);
	ck_assert_str_eq(err, "NUL byte in field 2");
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("d", "e");
}
END_TEST

START_TEST(test_csv_oversized_record_is_refused_whole)
{
	size_t big = JOBD_CSV_RECORD_MAX + 10;
	char *text = malloc(big + 16);

	ck_assert_ptr_nonnull(text);
	memset(text, 'x', big);
	strcpy(text + big, "\nnext,1\n");
	open_text(text, 0);
	ck_assert_int_eq(next(), JOBD_CSV_BAD);
	ck_assert_str_eq(err, "record over 1048576 bytes");
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("next", "1");
	ck_assert_int_eq(rec.line, 2);
	teardown();
	free(text);
}
END_TEST

START_TEST(test_csv_resumes_at_an_offset_and_stops_at_end)
{
	static const char text[] = "h\n1\n\"2\n2\"\n3\n4\n";
	struct mem part;

	/* Offsets of records: 2, 4, 10, 12. Read [4, 12) from line 3. */
	part = (struct mem){ .buf = text + 4, .len = strlen(text) - 4 };
	jobd_csv_reader_free(r);
	r = jobd_csv_reader_new(mem_read, &part, 4, 3, 12);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("2\n2");
	ck_assert_int_eq(rec.offset, 4);
	ck_assert_int_eq(rec.line, 3);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("3");
	ck_assert_int_eq(rec.line, 5);
	ck_assert_int_eq(rec.end, 12);
	ck_assert_int_eq(next(), JOBD_CSV_EOF);
	ck_assert_int_eq(jobd_csv_reader_line(r), 6);
}
END_TEST

START_TEST(test_csv_read_error_is_reported)
{
	open_text("a,b\n", 0);
	in.fail = true;
	ck_assert_int_eq(next(), JOBD_CSV_IO);
	ck_assert_ptr_nonnull(strstr(err, "cannot read"));
}
END_TEST

START_TEST(test_lines_for_ndjson)
{
	open_text("{\"a\":1}\r\n\n  \n{\"b\":\"x,\\\"y\"}", (size_t)_i);
	ck_assert_int_eq(jobd_csv_next_line(r, &rec, err, sizeof(err)),
			 JOBD_CSV_RECORD);
	FIELDS("{\"a\":1}");
	ck_assert_int_eq(jobd_csv_next_line(r, &rec, err, sizeof(err)),
			 JOBD_CSV_RECORD);
	FIELDS("{\"b\":\"x,\\\"y\"}");
	ck_assert_int_eq(rec.line, 4);
	ck_assert_int_eq(jobd_csv_next_line(r, &rec, err, sizeof(err)),
			 JOBD_CSV_EOF);
}
END_TEST

START_TEST(test_writer_quotes_only_what_needs_it_and_reads_back)
{
	const char *f[] = { "plain", "a,b", "say \"hi\"", "two\r\nlines", "" };
	size_t l[5];
	struct jobd_csv_buf b = { 0 };

	for (int i = 0; i < 5; i++)
		l[i] = strlen(f[i]);
	ck_assert_int_eq(jobd_csv_write_record(&b, f, l, 5), 0);
	ck_assert_str_eq(b.data, "plain,\"a,b\",\"say \"\"hi\"\"\","
				 "\"two\r\nlines\",\r\n");
	open_text(b.data, 0);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	assert_fields(5, f);
	jobd_csv_buf_release(&b);
	teardown();
}
END_TEST

START_TEST(test_writer_lone_empty_field_is_not_an_empty_line)
{
	const char *f[] = { "" };
	size_t l[] = { 0 };
	struct jobd_csv_buf b = { 0 };

	ck_assert_int_eq(jobd_csv_write_record(&b, f, l, 1), 0);
	ck_assert_str_eq(b.data, "\"\"\r\n");
	open_text(b.data, 0);
	ck_assert_int_eq(next(), JOBD_CSV_RECORD);
	FIELDS("");
	jobd_csv_buf_release(&b);
	teardown();
}
END_TEST

static Suite *csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("reader");

	tcase_add_checked_fixture(tc, NULL, teardown);
	/* 0: whole reads; 1 and 3: records split across reads. */
	tcase_add_loop_test(
		tc, test_csv_reads_quoted_escaped_and_multiline_fields, 0, 4);
	tcase_add_test(tc, test_csv_skips_bom_and_empty_lines);
	tcase_add_test(tc, test_csv_bad_records_are_named_and_reading_goes_on);
	tcase_add_test(tc, test_csv_nul_byte_refused);
	tcase_add_test(tc, test_csv_oversized_record_is_refused_whole);
	tcase_add_test(tc, test_csv_resumes_at_an_offset_and_stops_at_end);
	tcase_add_test(tc, test_csv_read_error_is_reported);
	tcase_add_loop_test(tc, test_lines_for_ndjson, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc,
		       test_writer_quotes_only_what_needs_it_and_reads_back);
	tcase_add_test(tc, test_writer_lone_empty_field_is_not_an_empty_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return jobd_test_run_suite(csv_suite());
}
