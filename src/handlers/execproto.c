/*
 * execproto: one stdout line of an exec handler -> one command.
 *
 * A hand-written scanner over (pointer, length): lines come from a child
 * process we do not trust, so every line is checked whole (length, NUL,
 * UTF-8) before it is split, numbers are matched against a strict pattern
 * before strtod() sees them (no "inf", "0x10" or leading spaces), and JSON
 * goes through jansson and is stored compact, so what reaches Redis is
 * always valid. sscanf() was rejected: it accepts too much and cannot say
 * what was wrong.
 *
 * Reasons quote at most QUOTE_MAX bytes of what the handler wrote, with
 * control characters replaced, since they end up in the job's log.
 */
#include "config.h"

#include "handlers/execproto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "kafka/codec.h"

/* Bytes of a handler's word quoted in a reason. */
#define QUOTE_MAX 32

static int invalid(struct jobd_exec_line *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int invalid(struct jobd_exec_line *out, const char *fmt, ...)
{
	char reason[256];
	unsigned char *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	for (p = (unsigned char *)reason; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	/* jansson's "near '...'" or the cut at sizeof(reason) may split a
	 * character: then keep ASCII only. */
	if (!jobd_codec_valid_utf8(reason, strlen(reason)))
		for (p = (unsigned char *)reason; *p; p++)
			if (*p >= 0x80)
				*p = '?';
	jobd_execproto_line_release(out);
	out->cmd = JOBD_EXEC_INVALID;
	out->text = strdup(reason);
	return out->text ? -EINVAL : -ENOMEM;
}

static int nomem(struct jobd_exec_line *out)
{
	jobd_execproto_line_release(out);
	out->cmd = JOBD_EXEC_INVALID;
	return -ENOMEM;
}

/* S[0..N) cut to at most QUOTE_MAX bytes on a character boundary. */
static int quote_len(const char *s, size_t n)
{
	size_t max = QUOTE_MAX;

	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

static const char *quote_more(size_t n)
{
	return n > QUOTE_MAX ? "..." : "";
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A cursor over the rest of the line. */
struct scan {
	const char *p;	 /* next byte */
	const char *end; /* one past the last byte */
};

static void skip_blanks(struct scan *sc)
{
	while (sc->p < sc->end && is_blank(*sc->p))
		sc->p++;
}

/* The next word (after blanks) in *WORD, *N bytes; *N is 0 at the end. */
static void next_word(struct scan *sc, const char **word, size_t *n)
{
	skip_blanks(sc);
	*word = sc->p;
	while (sc->p < sc->end && !is_blank(*sc->p))
		sc->p++;
	*n = (size_t)(sc->p - *word);
}

/* The rest of the line after blanks, in *REST, *N bytes. */
static void rest_of_line(struct scan *sc, const char **rest, size_t *n)
{
	skip_blanks(sc);
	*rest = sc->p;
	*n = (size_t)(sc->end - sc->p);
	sc->p = sc->end;
}

static bool word_is(const char *word, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(word, name, n) == 0;
}

static char *copy_n(const char *s, size_t n)
{
	char *copy = malloc(n + 1);

	if (!copy)
		return NULL;
	memcpy(copy, s, n);
	copy[n] = '\0';
	return copy;
}

static size_t count_digits(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* [+-]digits[.digits][(e|E)[+-]digits], or [+-].digits[...], whole word. */
static bool is_decimal(const char *s, size_t n)
{
	size_t i = 0, whole, frac = 0, exp;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	whole = count_digits(s + i, n - i);
	i += whole;
	if (i < n && s[i] == '.') {
		i++;
		frac = count_digits(s + i, n - i);
		i += frac;
	}
	if (whole == 0 && frac == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		exp = count_digits(s + i, n - i);
		if (exp == 0)
			return false;
		i += exp;
	}
	return i == n;
}

/* Whole-word unsigned decimal integer. */
static bool parse_count(const char *s, size_t n, uint64_t *v)
{
	char buf[24];
	char *end;

	if (n == 0 || n >= sizeof(buf) || count_digits(s, n) != n)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno == 0 && *end == '\0';
}

static int parse_fraction(const char *word, size_t n, const char *slash,
			  struct jobd_exec_line *out)
{
	size_t done_len = (size_t)(slash - word);
	uint64_t done, total;

	if (!parse_count(word, done_len, &done) ||
	    !parse_count(slash + 1, n - done_len - 1, &total))
		return invalid(
			out,
			"progress \"%.*s\"%s is not DONE/TOTAL in integers",
			quote_len(word, n), word, quote_more(n));
	if (total == 0)
		return invalid(out,
			       "progress %" PRIu64 "/0: total must be over 0",
			       done);
	if (done > total)
		return invalid(out,
			       "progress %" PRIu64 "/%" PRIu64
			       ": done is over total",
			       done, total);
	out->progress = (double)done / (double)total * 100.0;
	if (out->progress > 100.0)
		out->progress = 100.0;
	return 0;
}

static int parse_progress(struct scan *sc, struct jobd_exec_line *out)
{
	const char *word, *extra, *slash;
	size_t n, extra_n;
	char *number;
	double v;

	next_word(sc, &word, &n);
	next_word(sc, &extra, &extra_n);
	if (n == 0 || extra_n > 0)
		return invalid(out,
			       "progress needs one argument: P or DONE/TOTAL");
	out->cmd = JOBD_EXEC_PROGRESS;
	slash = memchr(word, '/', n);
	if (slash)
		return parse_fraction(word, n, slash, out);
	if (!is_decimal(word, n))
		return invalid(out, "progress \"%.*s\"%s is not a number",
			       quote_len(word, n), word, quote_more(n));
	number = copy_n(word, n);
	if (!number)
		return nomem(out);
	v = strtod(number, NULL);
	free(number);
	if (!(v >= 0.0 && v <= 100.0))
		return invalid(out, "progress %.*s%s is out of range 0-100",
			       quote_len(word, n), word, quote_more(n));
	out->progress = v;
	return 0;
}

static int parse_log(struct scan *sc, struct jobd_exec_line *out)
{
	static const char *const levels[] = { "debug", "info", "warn",
					      "error" };
	const char *word, *text;
	size_t n, text_n, i;

	next_word(sc, &word, &n);
	rest_of_line(sc, &text, &text_n);
	if (n == 0 || text_n == 0)
		return invalid(out, "log needs LEVEL TEXT");
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (word_is(word, n, levels[i]))
			break;
	if (i == sizeof(levels) / sizeof(levels[0]))
		return invalid(
			out,
			"unknown log level \"%.*s\"%s (debug, info, warn, error)",
			quote_len(word, n), word, quote_more(n));
	out->cmd = JOBD_EXEC_LOG;
	out->level = JOBD_LOG_DEBUG + (int)i;
	out->text = copy_n(text, text_n);
	return out->text ? 0 : nomem(out);
}

static int parse_error(struct scan *sc, struct jobd_exec_line *out)
{
	const char *text;
	size_t n;

	rest_of_line(sc, &text, &n);
	if (n == 0)
		return invalid(out, "error needs TEXT");
	out->cmd = JOBD_EXEC_ERROR;
	out->level = JOBD_LOG_ERROR;
	out->text = copy_n(text, n);
	return out->text ? 0 : nomem(out);
}

/* Parses S[0..N) as JSON (an object if MUST_BE_OBJECT) into compact text. */
static int take_json(const char *s, size_t n, bool must_be_object,
		     const char *what, struct jobd_exec_line *out)
{
	json_error_t jerr;
	json_t *json;

	json = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
	if (!json) {
		/* No text: jansson could not allocate its lexer. */
		if (jerr.text[0] == '\0' ||
		    json_error_code(&jerr) == json_error_out_of_memory)
			return nomem(out);
		return invalid(out, "invalid %s JSON at byte %d: %s", what,
			       jerr.position, jerr.text);
	}
	if (must_be_object && !json_is_object(json)) {
		json_decref(json);
		return invalid(out, "%s JSON must be an object", what);
	}
	out->json = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(json);
	return out->json ? 0 : nomem(out);
}

static int parse_checkpoint(struct scan *sc, struct jobd_exec_line *out)
{
	const char *json;
	size_t n;

	rest_of_line(sc, &json, &n);
	if (n == 0)
		return invalid(out, "checkpoint needs JSON");
	out->cmd = JOBD_EXEC_CHECKPOINT;
	return take_json(json, n, false, "checkpoint", out);
}

/* WORD of N bytes when it starts with NAME ("at="): its value in *V. */
static bool run_time_word(const char *word, size_t n, const char *name,
			  const char **v, size_t *vn)
{
	size_t len = strlen(name);

	if (n < len || memcmp(word, name, len) != 0)
		return false;
	*v = word + len;
	*vn = n - len;
	return true;
}

/*
 * The optional run time of a child line at SC, "at=MS" or "delay=MS",
 * into OUT; SC is left before the JSON either way (which starts with '{',
 * never with a name of ours).
 */
static int parse_run_time(struct scan *sc, struct jobd_exec_line *out)
{
	struct scan before = *sc;
	const char *word, *v;
	size_t n, vn;
	uint64_t ms;
	long long *to;

	next_word(sc, &word, &n);
	if (run_time_word(word, n, "at=", &v, &vn))
		to = &out->child_run_at;
	else if (run_time_word(word, n, "delay=", &v, &vn))
		to = &out->child_delay;
	else {
		*sc = before;
		return 0;
	}
	if (!parse_count(v, vn, &ms))
		return invalid(out,
			       "child run time \"%.*s\"%s is not a whole "
			       "number of ms",
			       quote_len(word, n), word, quote_more(n));
	if (ms > JOBD_EXEC_RUN_TIME_MAX)
		return invalid(out, "child run time \"%.*s\"%s is over %lld ms",
			       quote_len(word, n), word, quote_more(n),
			       (long long)JOBD_EXEC_RUN_TIME_MAX);
	*to = (long long)ms;
	return 0;
}

static int parse_child(struct scan *sc, struct jobd_exec_line *out)
{
	const char *type, *key, *json;
	size_t type_n, key_n, json_n;
	int rc;

	next_word(sc, &type, &type_n);
	next_word(sc, &key, &key_n);
	rc = parse_run_time(sc, out);
	if (rc < 0)
		return rc;
	rest_of_line(sc, &json, &json_n);
	if (type_n == 0 || key_n == 0 || json_n == 0)
		return invalid(out, "child needs TYPE KEY JSON");
	out->cmd = JOBD_EXEC_CHILD;
	rc = take_json(json, json_n, true, "child", out);
	if (rc < 0)
		return rc;
	out->child_type = copy_n(type, type_n);
	out->child_key = copy_n(key, key_n);
	if (!out->child_type || !out->child_key)
		return nomem(out);
	return 0;
}

int jobd_execproto_parse(const char *line, size_t len,
			 struct jobd_exec_line *out)
{
	struct scan sc;
	const char *cmd;
	size_t n;

	memset(out, 0, sizeof(*out));
	out->cmd = JOBD_EXEC_INVALID;
	if (!line)
		len = 0;
	if (len == 0)
		return invalid(out, "empty line");
	if (line[len - 1] == '\r')
		len--;
	if (len > JOBD_EXEC_LINE_MAX)
		return invalid(out, "line over %d bytes", JOBD_EXEC_LINE_MAX);
	if (memchr(line, '\0', len))
		return invalid(out, "NUL byte in line");
	if (!jobd_codec_valid_utf8(line, len))
		return invalid(out, "invalid UTF-8 in line");

	sc.p = line;
	sc.end = line + len;
	next_word(&sc, &cmd, &n);
	if (n == 0)
		return invalid(out, "empty line");
	if (word_is(cmd, n, "progress"))
		return parse_progress(&sc, out);
	if (word_is(cmd, n, "log"))
		return parse_log(&sc, out);
	if (word_is(cmd, n, "error"))
		return parse_error(&sc, out);
	if (word_is(cmd, n, "checkpoint"))
		return parse_checkpoint(&sc, out);
	if (word_is(cmd, n, "child"))
		return parse_child(&sc, out);
	return invalid(out, "unknown command \"%.*s\"%s", quote_len(cmd, n),
		       cmd, quote_more(n));
}

void jobd_execproto_line_release(struct jobd_exec_line *l)
{
	if (!l)
		return;
	free(l->text);
	free(l->json);
	free(l->child_type);
	free(l->child_key);
	memset(l, 0, sizeof(*l));
}
