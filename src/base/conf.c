/*
 * conf: reads jobd.conf into a struct jobd_conf (docs/design.md,
 * "Interfaces"; every key is in config/jobd.conf).
 *
 * Data flow: built-in defaults -> the file, line by line -> checks that
 * need the whole file (lease > heartbeat, exec types have a command,
 * listeners and relations are complete) -> environment (load only).
 *
 * The parser works on one line at a time, copied to the heap, so a line has
 * no length limit. Keys of the fixed sections are described by tables
 * (key, kind, offset, range) so every value is checked by the same code and
 * every error reads the same way: "FILE:LINE: bad duration \"5x\" for
 * [engine] lease: use a number with ms, s, m, h or d". Rejected: libinih
 * (truncates long lines, no line numbers) and a callback API (every caller
 * would repeat the checks).
 *
 * No global state: warnings go through jobd_warn and are counted on the
 * conf, errors go to the caller's errstr.
 */
#include "config.h"

#include "base/conf.h"

#include "base/log.h"
#include "base/util.h"
#include "handlers/builtin.h"

#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DURATION_HINT "use a number with ms, s, m, h or d"
#define SIZE_HINT \
	"use a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB"
enum kind {
	K_STR,	    /* char *, must not be empty */
	K_OPTSTR,   /* char *, empty = NULL */
	K_SECRET,   /* K_OPTSTR that jobd_conf_write hides */
	K_PATH,	    /* K_OPTSTR naming a file, relative to the file's dir */
	K_INSTANCE, /* char *, empty = <hostname>-<pid> */
	K_BOOL,	    /* bool */
	K_INT,	    /* int within min..max */
	K_I64,	    /* int64_t within min..max */
	K_DURATION, /* int64_t ms within min..max */
	K_SIZE,	    /* int64_t bytes within min..max */
	K_SHARE,    /* double in (0, 1] */
	K_ROLES,    /* the four role bools of struct jobd_conf */
	K_FORMAT,   /* stats_msgpack */
	K_HANDLER,  /* char *, one of the known handlers */
	K_COMMAND,  /* char **, split like shell words */
	K_HOSTS,    /* char **, host names separated by commas */
	K_TOPICS,   /* char **, topic names or prefixes*, by commas */
	K_LEVEL,    /* int, a log level name */
	K_LOGFMT,   /* log_json: text or json */
	K_RATE,	    /* struct jobd_rate, N/DURATION */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off;  /* offset of the field in the section's struct */
	int64_t min; /* inclusive, for numbers */
	int64_t max; /* inclusive, for numbers */
};

enum section {
	S_NONE,	   /* before the first [section] */
	S_UNKNOWN, /* warned once at its header; keys ignored */
	S_REDIS,
	S_KAFKA,
	S_TOPICS,
	S_ENGINE,
	S_RETENTION,
	S_STATS,
	S_HTTP,
	S_USERS,
	S_LOG,
	S_TYPE,
	S_LISTENER,
	S_ACTION,
	S_RELATION,
	S_SINK,
	S_SCHEDULE,
};

#define C(f) offsetof(struct jobd_conf, f)
#define DAY_MS INT64_C(86400000)

static const struct key redis_keys[] = {
	{ "address", K_STR, C(redis_address), 0, 0 },
	{ "password", K_SECRET, C(redis_password), 0, 0 },
	{ "user", K_OPTSTR, C(redis_user), 0, 0 },
	{ "tls_ca", K_PATH, C(redis_tls_ca), 0, 0 },
	{ "tls_cert", K_PATH, C(redis_tls_cert), 0, 0 },
	{ "tls_key", K_PATH, C(redis_tls_key), 0, 0 },
	{ "tls_server_name", K_OPTSTR, C(redis_tls_server_name), 0, 0 },
	{ "prefix", K_STR, C(prefix), 0, 0 },
	{ "cluster_seeds", K_OPTSTR, C(redis_cluster_seeds), 0, 0 },
	{ "wait_replicas", K_INT, C(redis_wait_replicas), 0, 16 },
	{ "wait_timeout", K_DURATION, C(redis_wait_timeout), 1, 3600000 },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key kafka_keys[] = {
	{ "brokers", K_STR, C(brokers), 0, 0 },
	{ "group", K_STR, C(group), 0, 0 },
	{ "max_payload", K_SIZE, C(max_payload), 1, 1000000000 },
	/* from JOBD_DEADLETTER_MIN_BYTES (a reference record fits) to
	 * librdkafka's largest message.max.bytes */
	{ "dlq_max_bytes", K_SIZE, C(dlq_max_bytes), 4096, 1000000000 },
	{ "pending_limit", K_I64, C(pending_limit), 1, INT64_C(1000000000000) },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key topics_keys[] = {
	{ "events", K_STR, C(topic_events), 0, 0 },
	{ "records", K_STR, C(topic_records), 0, 0 },
	{ "actions", K_STR, C(topic_actions), 0, 0 },
	{ "stats", K_STR, C(topic_stats), 0, 0 },
	{ "dlq", K_STR, C(topic_dlq), 0, 0 },
	{ "allowed", K_TOPICS, C(topics_allowed), 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key engine_keys[] = {
	{ "roles", K_ROLES, 0, 0, 0 },
	{ "instance", K_INSTANCE, C(instance), 0, 0 },
	{ "workers", K_INT, C(workers), 1, 1024 },
	{ "lease", K_DURATION, C(lease), 1, 365 * DAY_MS },
	{ "heartbeat", K_DURATION, C(heartbeat), 1, 365 * DAY_MS },
	{ "low_priority_share", K_SHARE, C(low_priority_share), 0, 0 },
	{ "data_dir", K_STR, C(data_dir), 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key retention_keys[] = {
	{ "jobs", K_DURATION, C(retention_jobs), 0, INT64_MAX },
	{ "logs_max_entries", K_I64, C(logs_max_entries), 1, 1000000000 },
	/* a minute at least (a window is two bucket sets), a year at most */
	{ "key_window", K_DURATION, C(key_window), 60000, 366 * DAY_MS },
	{ "stats", K_DURATION, C(retention_stats), 0, INT64_MAX },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key stats_keys[] = {
	{ "format", K_FORMAT, 0, 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key http_keys[] = {
	{ "listen", K_STR, C(http_listen), 0, 0 },
	{ "token", K_SECRET, C(http_token), 0, 0 },
	{ "read_requires_token", K_BOOL, C(read_requires_token), 0, 0 },
	{ "tls_cert", K_PATH, C(http_tls_cert), 0, 0 },
	{ "tls_key", K_PATH, C(http_tls_key), 0, 0 },
	{ "allowed_hosts", K_HOSTS, C(http_allowed_hosts), 0, 0 },
	{ "max_connections", K_INT, C(http_max_connections), 0, 1000000 },
	{ "request_timeout", K_DURATION, C(http_request_timeout), 1, 3600000 },
	{ "sort_window", K_INT, C(http_sort_window), 0, 1000000 },
	{ NULL, K_STR, 0, 0, 0 },
};

static const struct key log_keys[] = {
	{ "level", K_LEVEL, C(log_level), 0, 0 },
	{ "format", K_LOGFMT, 0, 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef C
#define T(f) offsetof(struct jobd_type_conf, f)

static const struct key type_keys[] = {
	{ "handler", K_HANDLER, T(handler), 0, 0 },
	{ "command", K_COMMAND, T(command), 0, 0 },
	{ "stoppable", K_BOOL, T(stoppable), 0, 0 },
	{ "restartable", K_BOOL, T(restartable), 0, 0 },
	{ "system", K_BOOL, T(system), 0, 0 },
	{ "timeout", K_DURATION, T(timeout), 0, INT64_MAX },
	{ "retries", K_INT, T(retries), 0, 1000 },
	{ "retry_backoff", K_DURATION, T(retry_backoff), 0, INT64_MAX },
	{ "chunk_size", K_I64, T(chunk_size), 1, 100000000 },
	{ "concurrency", K_INT, T(concurrency), 1, 1000000 },
	{ "rate", K_RATE, T(rate), 1, 1000000 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef T
#define L(f) offsetof(struct jobd_listener_conf, f)

static const struct key listener_keys[] = {
	{ "service", K_STR, L(service), 0, 0 },
	{ "event", K_STR, L(event), 0, 0 },
	{ "command", K_COMMAND, L(command), 0, 0 },
	{ "order", K_INT, L(order), -1000000, 1000000 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef L
#define A(f) offsetof(struct jobd_action_conf, f)

static const struct key action_keys[] = {
	{ "command", K_COMMAND, A(command), 0, 0 },
	{ "batch", K_I64, A(batch), 1, 100000000 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef A
#define R(f) offsetof(struct jobd_relation_conf, f)

static const struct key relation_keys[] = {
	{ "source", K_STR, R(source), 0, 0 },
	{ "label", K_STR, R(label), 0, 0 },
	{ "target", K_STR, R(target), 0, 0 },
	{ "ref_field", K_STR, R(ref_field), 0, 0 },
	{ "copy_field", K_STR, R(copy_field), 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef R
#define K(f) offsetof(struct jobd_sink_conf, f)

static const struct key sink_keys[] = {
	{ "command", K_COMMAND, K(command), 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef K
#define K(f) offsetof(struct jobd_schedule_conf, f)

/* Checked together in finish(), when the types are all known. */
static const struct key schedule_keys[] = {
	{ "cron", K_STR, K(cron), 0, 0 },
	{ "timezone", K_STR, K(timezone), 0, 0 },
	{ "type", K_STR, K(type), 0, 0 },
	{ "payload", K_STR, K(payload), 0, 0 },
	{ "low_priority", K_BOOL, K(low_priority), 0, 0 },
	{ "enabled", K_BOOL, K(enabled), 0, 0 },
	{ "catch_up", K_STR, K(catch_up), 0, 0 },
	{ NULL, K_STR, 0, 0, 0 },
};

#undef K

/* The built-in types, one per handler; [type.NAME] overrides fields. */
static const struct builtin_type {
	const char *name;
	bool stoppable;
	bool restartable;
	bool system;
} builtin_types[] = {
#define TYPE(name, fn, stoppable, restartable, system) \
	{ name, stoppable, restartable, system },
	JOBD_BUILTIN_HANDLERS(TYPE)
#undef TYPE
};

#define BUILTIN_COUNT (sizeof(builtin_types) / sizeof(builtin_types[0]))

struct parser {
	struct jobd_conf *conf;
	const char *name;     /* file name for messages */
	unsigned long lineno; /* current line, 1-based */
	char *errstr;
	size_t errstr_size;

	enum section section;
	char *section_name;	  /* as written between [ and ], for messages */
	size_t index;		  /* element of the current [type.] etc. */
	unsigned long lease_line; /* last line setting lease, 0 = default */
	unsigned long heartbeat_line;	   /* last line setting heartbeat */
	unsigned long topics_allowed_line; /* last line setting allowed */

	struct jobd_conf_errors *all; /* jobd_conf_check: every error and
				       * warning goes here and parsing goes
				       * on; NULL = stop at the first */
	size_t nerrors;		      /* errors met so far */
	bool oom;		      /* out of memory: stop, whatever ALL */
	unsigned long tls_line; /* last line setting tls_cert or tls_key */
	unsigned long redis_tls_line; /* ... of [redis] */
	unsigned long address_line;   /* last line setting [redis] address */
};

static void set_error(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int read_file(const char *path, char **text, size_t *len);
static char *relative_to(const char *name, const char *path);

static void set_error(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	if (!errstr || errstr_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
}

/* Appends a copy of MSG, about LINE, to ALL. Returns 0 or -1 (ENOMEM). */
static int push_error(struct jobd_conf_errors *all, unsigned long line,
		      const char *msg)
{
	struct jobd_conf_error *grown;
	char *copy;

	grown = realloc(all->errors, (all->n + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	all->errors = grown;
	if (!(copy = strdup(msg)))
		return -1;
	grown[all->n].line = line;
	grown[all->n].msg = copy;
	all->n++;
	return 0;
}

static void add_error(struct parser *p, unsigned long line, const char *msg)
{
	if (push_error(p->all, line, msg) < 0)
		p->oom = true;
}

/*
 * "NAME:LINE: <what>: <hint>": into the caller's errstr when it is the
 * first error, and onto the list of jobd_conf_check. Returns -1.
 */
static int fail(struct parser *p, unsigned long line, const char *hint,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, unsigned long line, const char *hint,
		const char *fmt, ...)
{
	char what[1024], msg[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s:%lu: %s: %s", p->name, line, what, hint);
	if (p->nerrors++ == 0)
		set_error(p->errstr, p->errstr_size, "%s", msg);
	if (p->all)
		add_error(p, line, msg);
	return -1;
}

static int fail_oom(struct parser *p)
{
	p->oom = true;
	set_error(p->errstr, p->errstr_size, "%s:%lu: out of memory", p->name,
		  p->lineno);
	return -1;
}

static void warn(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void warn(struct parser *p, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p->conf->warnings++;
	if (p->all) {
		char msg[1400];

		snprintf(msg, sizeof(msg), "%s:%lu: warning: %s", p->name,
			 p->lineno, what);
		add_error(p, p->lineno, msg);
		p->all->warnings++;
		return;
	}
	jobd_warn("%s:%lu: warning: %s", p->name, p->lineno, what);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* Trims S in place; returns the first non-space character. */
static char *trim(char *s)
{
	size_t n;

	while (is_space(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * Cuts S at a ';' or '#' that follows whitespace, or that starts S when
 * AT_START (S is the rest of a line after "]", not a value after "=").
 */
static void cut_comment(char *s, bool at_start)
{
	char *c;

	for (c = s; *c; c++) {
		if ((*c == ';' || *c == '#') &&
		    (c == s ? at_start : is_space(c[-1]))) {
			*c = '\0';
			return;
		}
	}
}

static void free_argv(char **argv)
{
	char **a;

	if (!argv)
		return;
	for (a = argv; *a; a++)
		free(*a);
	free(argv);
}

/* Replaces *DST with a copy of S (NULL allowed). Returns 0 or -1 (ENOMEM). */
static int set_str(char **dst, const char *s)
{
	char *copy = NULL;

	if (s) {
		copy = strdup(s);
		if (!copy)
			return -1;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

int jobd_conf_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "ms", 1 },	  { "s", 1000 },     { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	int64_t n = 0;
	const char *p = s;
	size_t i;

	if (!s || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (*p == '\0') {
		/* Only "0" may omit the unit: "10" could mean s or ms. */
		if (n != 0)
			return -1;
		*ms = 0;
		return 0;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (n > INT64_MAX / units[i].ms)
			return -1;
		*ms = n * units[i].ms;
		return 0;
	}
	return -1;
}

int jobd_conf_parse_size(const char *s, int64_t *bytes)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "KB", INT64_C(1000) },
		{ "kB", INT64_C(1000) },
		{ "MB", INT64_C(1000000) },
		{ "GB", INT64_C(1000000000) },
		{ "TB", INT64_C(1000000000000) },
		{ "KiB", INT64_C(1) << 10 },
		{ "MiB", INT64_C(1) << 20 },
		{ "GiB", INT64_C(1) << 30 },
		{ "TiB", INT64_C(1) << 40 },
	};
	int64_t n = 0;
	const char *p = s;
	size_t i;

	if (!s || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (n > INT64_MAX / units[i].mult)
			return -1;
		*bytes = n * units[i].mult;
		return 0;
	}
	return -1;
}

static int parse_bool(const char *s, bool *v)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v = false;
			return 0;
		}
	}
	return -1;
}

/* "0.5", "1", ".25": digits and one dot only, then in (0, 1]. */
static int parse_share(const char *s, double *v)
{
	const char *c;
	char *end;
	int dots = 0, digits = 0;
	double d;

	for (c = s; *c; c++) {
		if (*c == '.')
			dots++;
		else if (*c >= '0' && *c <= '9')
			digits++;
		else
			return -1;
	}
	if (dots > 1 || digits == 0)
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (errno || *end || !(d > 0.0 && d <= 1.0))
		return -1;
	*v = d;
	return 0;
}

/*
 * Appends a copy of WORD[0..LEN) to the NULL-terminated *ARGV of *COUNT
 * words. Returns 0 or -1 (ENOMEM).
 */
static int push_word(char ***argv, size_t *count, const char *word, size_t len)
{
	char **grown;
	char *copy;

	copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, word, len);
	copy[len] = '\0';
	grown = realloc(*argv, (*count + 2) * sizeof(*grown));
	if (!grown) {
		free(copy);
		return -1;
	}
	grown[(*count)++] = copy;
	grown[*count] = NULL;
	*argv = grown;
	return 0;
}

/*
 * Splits S into *ARGV (NULL when S holds no word). Returns 0, -1 with *WHY
 * set on a syntax error, or -2 when out of memory.
 */
static int split_command(const char *s, char ***argv, const char **why)
{
	char **out = NULL;
	size_t count = 0, len = 0;
	char *word;
	bool in_word = false;
	const char *c = s;

	/* A word is never longer than S, so one buffer serves every word. */
	word = malloc(strlen(s) + 1);
	if (!word)
		return -2;
	for (;;) {
		if (*c == '\0' || is_space(*c)) {
			if (in_word && push_word(&out, &count, word, len) < 0)
				goto err_oom;
			in_word = false;
			len = 0;
			if (*c == '\0')
				break;
			c++;
			continue;
		}
		/* Not in a word and past the start: after whitespace. */
		if (!in_word && c > s && (*c == ';' || *c == '#'))
			break;
		in_word = true;
		if (*c == '\\') {
			if (c[1] == '\0') {
				*why = "trailing backslash";
				goto err_syntax;
			}
			word[len++] = c[1];
			c += 2;
		} else if (*c == '\'') {
			for (c++; *c && *c != '\''; c++)
				word[len++] = *c;
			if (*c == '\0') {
				*why = "unterminated single quote";
				goto err_syntax;
			}
			c++;
		} else if (*c == '"') {
			for (c++; *c && *c != '"'; c++) {
				/* As in sh: only these lose their backslash. */
				if (*c == '\\' && c[1] &&
				    strchr("\"\\$`", c[1]))
					c++;
				word[len++] = *c;
			}
			if (*c == '\0') {
				*why = "unterminated double quote";
				goto err_syntax;
			}
			c++;
		} else {
			word[len++] = *c++;
		}
	}
	free(word);
	*argv = out;
	return 0;

err_syntax:
	free(word);
	free_argv(out);
	return -1;
err_oom:
	free(word);
	free_argv(out);
	return -2;
}

static bool is_handler(const char *s)
{
	for (size_t i = 0; i < BUILTIN_COUNT; i++)
		if (strcmp(s, builtin_types[i].name) == 0)
			return true;
	return false;
}

/* "use noop, exec, ... or cleanup" into BUF. */
static const char *handler_hint(char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "use");

	for (size_t i = 0; i < BUILTIN_COUNT && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s %s",
					i == 0		       ? "" :
					i + 1 == BUILTIN_COUNT ? " or" :
								 ",",
					builtin_types[i].name);
	return buf;
}

/* [engine] roles = consume,work,stats,http */
static int parse_roles(struct parser *p, const char *raw)
{
	struct jobd_conf *conf = p->conf;
	bool consume = false, work = false, stats = false, http = false;
	char *copy, *item, *save = NULL;
	int rc = 0;

	copy = strdup(raw);
	if (!copy)
		return fail_oom(p);
	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		if (strcmp(item, "consume") == 0)
			consume = true;
		else if (strcmp(item, "work") == 0)
			work = true;
		else if (strcmp(item, "stats") == 0)
			stats = true;
		else if (strcmp(item, "http") == 0)
			http = true;
		else if (*item) {
			rc = fail(
				p, p->lineno,
				"use a comma list of consume, work, stats, http",
				"unknown role \"%s\" for [engine] roles", item);
			goto out;
		}
	}
	if (!consume && !work && !stats && !http) {
		rc = fail(p, p->lineno,
			  "use a comma list of consume, work, stats, http",
			  "no role in \"%s\" for [engine] roles", raw);
		goto out;
	}
	conf->role_consume = consume;
	conf->role_work = work;
	conf->role_stats = stats;
	conf->role_http = http;
out:
	free(copy);
	return rc;
}

/* MS as a duration the parser reads back: "365d", "1h", "250ms". */
static const char *duration_text(int64_t ms, char *buf, size_t size)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "d", DAY_MS }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms >= units[i].ms && ms % units[i].ms == 0) {
			snprintf(buf, size, "%lld%s",
				 (long long)(ms / units[i].ms), units[i].unit);
			return buf;
		}
	}
	snprintf(buf, size, "%lldms", (long long)ms);
	return buf;
}

/* What a list key (K_HOSTS, K_TOPICS) accepts. */
struct list_kind {
	const char *chars; /* an item is 1..max of these */
	size_t max;
	bool lower;	  /* kept lowercase */
	bool prefix;	  /* may end in '*' */
	const char *what; /* "host name" */
	const char *hint;
};

static const struct list_kind hosts_list = {
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.",
	253,
	true,
	false,
	"host name",
	"use host names separated by commas, e.g. jobs.example.com, ops-box",
};

/* Kafka's topic names; '*' at the end of one makes it a prefix. */
static const struct list_kind topics_list = {
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
	249,
	false,
	true,
	"topic",
	"use topic names (1-249 of A-Z a-z 0-9 _ . -) or prefixes ending "
	"in *, separated by commas, e.g. crm.contacts, exports.*",
};

/*
 * A list of names separated by commas, as LK says ([http] allowed_hosts =
 * jobs.example.com, ops-box), into *FIELD, NULL-terminated; empty = NULL.
 */
static int parse_list(struct parser *p, const struct list_kind *lk,
		      char ***field, const char *raw, const char *key)
{
	char *copy, *item, *save = NULL, **names, **grown;
	size_t n = 0;
	int rc = 0;

	copy = strdup(raw);
	names = calloc(1, sizeof(*names));
	if (!copy || !names) {
		rc = fail_oom(p);
		goto out;
	}
	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		size_t len = strlen(item = trim(item));
		size_t body = lk->prefix && len && item[len - 1] == '*' ?
				      len - 1 :
				      len;

		if (len == 0)
			continue;
		if (body > lk->max || strspn(item, lk->chars) != body) {
			rc = fail(p, p->lineno, lk->hint,
				  "bad %s \"%s\" for [%s] %s", lk->what, item,
				  p->section_name, key);
			goto out;
		}
		if (lk->lower)
			for (char *c = item; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
		if (!(grown = realloc(names, (n + 2) * sizeof(*names)))) {
			rc = fail_oom(p);
			goto out;
		}
		names = grown;
		names[n + 1] = NULL;
		if (!(names[n] = strdup(item))) {
			rc = fail_oom(p);
			goto out;
		}
		n++;
	}
	free_argv(*field);
	*field = n ? names : NULL;
	if (n)
		names = NULL;
out:
	free_argv(names);
	free(copy);
	return rc;
}

static char *default_instance(void)
{
	char host[256], buf[300];

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, sizeof(buf), "%s-%ld", host, (long)getpid());
	return strdup(buf);
}

/*
 * Sets field K of BASE from the text after '=' (RAW, comments not yet
 * removed). Returns 0 or -1 with errstr set.
 */
static int set_value(struct parser *p, void *base, const struct key *k,
		     char *raw)
{
	char *field = (char *)base + k->off;
	const char *sec = p->section_name;
	char *v, buf[32];
	int64_t n;
	bool b;
	double d;

	if (k->kind == K_COMMAND) {
		char **argv = NULL;
		const char *why = NULL;
		int rc = split_command(raw, &argv, &why);

		if (rc == -2)
			return fail_oom(p);
		if (rc < 0) {
			size_t words = 0;

			fail(p, p->lineno,
			     "close the quote, or escape the character with a backslash",
			     "%s in [%s] %s", why, sec, k->name);
			/* jobd_conf_check goes on and drops the conf: the text
			 * as one word spares "has no command" after this. */
			if (p->all && !*(char ***)(void *)field &&
			    push_word((char ***)(void *)field, &words, raw,
				      strlen(raw)) < 0)
				return fail_oom(p);
			return -1;
		}
		free_argv(*(char ***)(void *)field);
		*(char ***)(void *)field = argv;
		return 0;
	}

	cut_comment(raw, false);
	v = trim(raw);
	switch (k->kind) {
	case K_STR:
		if (!*v)
			return fail(p, p->lineno,
				    "give a value or remove the line",
				    "empty value for [%s] %s", sec, k->name);
		if (p->section == S_REDIS && strcmp(k->name, "address") == 0)
			p->address_line = p->lineno;
		return set_str((char **)(void *)field, v) ? fail_oom(p) : 0;
	case K_OPTSTR:
		return set_str((char **)(void *)field, *v ? v : NULL) ?
			       fail_oom(p) :
			       0;
	case K_PATH: {
		char *path = *v ? relative_to(p->name, v) : NULL;

		if (*v && !path)
			return fail_oom(p);
		if (p->section == S_HTTP)
			p->tls_line = p->lineno;
		else if (p->section == S_REDIS)
			p->redis_tls_line = p->lineno;
		free(*(char **)(void *)field);
		*(char **)(void *)field = path;
		return 0;
	}
	case K_SECRET:
		if (*v && !p->conf->secret_line)
			p->conf->secret_line = p->lineno;
		return set_str((char **)(void *)field, *v ? v : NULL) ?
			       fail_oom(p) :
			       0;
	case K_INSTANCE: {
		char *inst = *v ? strdup(v) : default_instance();

		if (!inst)
			return fail_oom(p);
		free(*(char **)(void *)field);
		*(char **)(void *)field = inst;
		return 0;
	}
	case K_BOOL:
		if (parse_bool(v, &b) < 0)
			return fail(p, p->lineno, "use yes or no",
				    "bad boolean \"%s\" for [%s] %s", v, sec,
				    k->name);
		*(bool *)(void *)field = b;
		return 0;
	case K_INT:
	case K_I64:
		if (jobd_util_parse_i64(v, &n) < 0 || n < k->min ||
		    n > k->max) {
			char hint[96];

			snprintf(hint, sizeof(hint),
				 "use a whole number from %lld to %lld",
				 (long long)k->min, (long long)k->max);
			return fail(p, p->lineno, hint,
				    "bad number \"%s\" for [%s] %s", v, sec,
				    k->name);
		}
		if (k->kind == K_INT)
			*(int *)(void *)field = (int)n;
		else
			*(int64_t *)(void *)field = n;
		return 0;
	case K_DURATION:
		if (jobd_conf_parse_duration(v, &n) < 0)
			return fail(p, p->lineno, DURATION_HINT,
				    "bad duration \"%s\" for [%s] %s", v, sec,
				    k->name);
		if (n < k->min)
			return fail(p, p->lineno,
				    "use a duration above 0, e.g. 10s",
				    "duration \"%s\" too short for [%s] %s", v,
				    sec, k->name);
		if (n > k->max) {
			char hint[64];

			snprintf(hint, sizeof(hint), "use at most %s",
				 duration_text(k->max, buf, sizeof(buf)));
			return fail(p, p->lineno, hint,
				    "duration \"%s\" too long for [%s] %s", v,
				    sec, k->name);
		}
		*(int64_t *)(void *)field = n;
		if (p->section == S_ENGINE && strcmp(k->name, "lease") == 0)
			p->lease_line = p->lineno;
		if (p->section == S_ENGINE && strcmp(k->name, "heartbeat") == 0)
			p->heartbeat_line = p->lineno;
		return 0;
	case K_SIZE:
		if (jobd_conf_parse_size(v, &n) < 0)
			return fail(p, p->lineno, SIZE_HINT,
				    "bad size \"%s\" for [%s] %s", v, sec,
				    k->name);
		if (n < k->min || n > k->max) {
			char hint[96];

			snprintf(hint, sizeof(hint),
				 "use from %lld to %lld bytes",
				 (long long)k->min, (long long)k->max);
			return fail(p, p->lineno, hint,
				    "size \"%s\" out of range for [%s] %s", v,
				    sec, k->name);
		}
		*(int64_t *)(void *)field = n;
		return 0;
	case K_RATE: {
		struct jobd_rate *r = (struct jobd_rate *)(void *)field;
		char *slash = strchr(v, '/');
		int64_t per = 0;

		if (slash)
			*slash = '\0';
		if (!slash || jobd_util_parse_i64(trim(v), &n) < 0 ||
		    n < k->min || n > k->max ||
		    jobd_conf_parse_duration(trim(slash + 1), &per) < 0 ||
		    per < 1 || per > DAY_MS) {
			if (slash)
				*slash = '/';
			return fail(
				p, p->lineno,
				"use N/DURATION with N from 1 to 1000000 "
				"and a duration from 1ms to 1d, e.g. 100/1m",
				"bad rate \"%s\" for [%s] %s", v, sec, k->name);
		}
		r->n = n;
		r->per_ms = per;
		return 0;
	}
	case K_SHARE:
		if (parse_share(v, &d) < 0)
			return fail(
				p, p->lineno,
				"use a fraction above 0 and at most 1, e.g. 0.5",
				"bad share \"%s\" for [%s] %s", v, sec,
				k->name);
		*(double *)(void *)field = d;
		return 0;
	case K_ROLES:
		return parse_roles(p, v);
	case K_FORMAT:
		if (strcmp(v, "json") == 0)
			p->conf->stats_msgpack = false;
		else if (strcmp(v, "msgpack") == 0)
			p->conf->stats_msgpack = true;
		else
			return fail(p, p->lineno, "use json or msgpack",
				    "bad format \"%s\" for [%s] %s", v, sec,
				    k->name);
		return 0;
	case K_HANDLER: {
		char hint[256];

		if (!is_handler(v)) {
			fail(p, p->lineno, handler_hint(hint, sizeof(hint)),
			     "unknown handler \"%s\" for [%s] %s", v, sec,
			     k->name);
			/* As for a bad command: kept, it spares "handler exec
			 * but no command" after; the conf is dropped. */
			if (p->all && set_str((char **)(void *)field, v) < 0)
				return fail_oom(p);
			return -1;
		}
		return set_str((char **)(void *)field, v) ? fail_oom(p) : 0;
	}
	case K_HOSTS:
		return parse_list(p, &hosts_list, (char ***)(void *)field, v,
				  k->name);
	case K_TOPICS:
		p->topics_allowed_line = p->lineno;
		return parse_list(p, &topics_list, (char ***)(void *)field, v,
				  k->name);
	case K_LEVEL:
		if (jobd_log_level_parse(v) < 0)
			return fail(p, p->lineno,
				    "use debug, info, warn or error",
				    "bad level \"%s\" for [%s] %s", v, sec,
				    k->name);
		*(int *)(void *)field = jobd_log_level_parse(v);
		return 0;
	case K_LOGFMT:
		if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
			return fail(p, p->lineno, "use text or json",
				    "bad format \"%s\" for [%s] %s", v, sec,
				    k->name);
		p->conf->log_json = strcmp(v, "json") == 0;
		return 0;
	case K_COMMAND:
		break;
	}
	return 0;
}

/* Sets or replaces KEY in the list *KV of *COUNT pairs. */
static int set_kv(struct jobd_kv **kv, size_t *count, const char *key,
		  const char *value)
{
	struct jobd_kv *grown;
	char *k, *v;
	size_t i;

	for (i = 0; i < *count; i++)
		if (strcmp((*kv)[i].key, key) == 0)
			return set_str(&(*kv)[i].value, value);
	k = strdup(key);
	v = strdup(value);
	grown = k && v ? realloc(*kv, (*count + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(k);
		free(v);
		return -1;
	}
	grown[*count].key = k;
	grown[*count].value = v;
	(*count)++;
	*kv = grown;
	return 0;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/*
 * Finds or appends the element NAME of a [type.]/[listener.]/... array.
 * Returns its index, or -1 (ENOMEM).
 */
static long find_or_add(void **array, size_t *count, size_t size,
			size_t name_off, const char *name)
{
	char *grown, *elem, *copy;
	size_t i;

	for (i = 0; i < *count; i++) {
		elem = (char *)*array + i * size;
		if (strcmp(*(char **)(void *)(elem + name_off), name) == 0)
			return (long)i;
	}
	copy = strdup(name);
	if (!copy)
		return -1;
	grown = realloc(*array, (*count + 1) * size);
	if (!grown) {
		free(copy);
		return -1;
	}
	elem = grown + *count * size;
	memset(elem, 0, size);
	*(char **)(void *)(elem + name_off) = copy;
	*array = grown;
	return (long)(*count)++;
}

static int init_type(struct jobd_type_conf *type, const char *handler)
{
	type->stoppable = true;
	type->restartable = false;
	type->system = false;
	type->timeout = 0;
	type->retries = 0;
	type->retry_backoff = 1000;
	type->chunk_size = 1000;
	return set_str(&type->handler, handler);
}

/* Enters [NAME] (trimmed, without brackets). */
static int enter_section(struct parser *p, const char *name)
{
	static const struct {
		const char *name;
		enum section section;
	} fixed[] = {
		{ "redis", S_REDIS },
		{ "kafka", S_KAFKA },
		{ "topics", S_TOPICS },
		{ "engine", S_ENGINE },
		{ "retention", S_RETENTION },
		{ "stats", S_STATS },
		{ "http", S_HTTP },
		{ "users", S_USERS },
		{ "log", S_LOG },
	};
	static const struct {
		const char *prefix;
		enum section section;
	} named[] = {
		{ "type.", S_TYPE },	 { "listener.", S_LISTENER },
		{ "action.", S_ACTION }, { "relation.", S_RELATION },
		{ "sink.", S_SINK },	 { "schedule.", S_SCHEDULE },
	};
	struct jobd_conf *conf = p->conf;
	const char *sub = NULL, *c;
	long idx = 0;
	size_t i;

	if (set_str(&p->section_name, name) < 0)
		return fail_oom(p);
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(name, fixed[i].name) == 0) {
			p->section = fixed[i].section;
			return 0;
		}
	}
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].prefix);

		if (strncmp(name, named[i].prefix, n) == 0) {
			p->section = named[i].section;
			sub = name + n;
			break;
		}
	}
	if (!sub) {
		p->section = S_UNKNOWN;
		warn(p, "unknown section [%s]; its keys are ignored", name);
		return 0;
	}
	for (c = sub; *c && is_name_char(*c); c++)
		;
	if (!*sub || *c)
		return fail(
			p, p->lineno,
			"use letters, digits, '-', '_' or '.' after the dot",
			"bad name \"%s\" in [%s]", sub, name);

	switch (p->section) {
	case S_TYPE:
		idx = find_or_add((void **)&conf->types, &conf->types_count,
				  sizeof(*conf->types),
				  offsetof(struct jobd_type_conf, name), sub);
		if (idx < 0)
			return fail_oom(p);
		/* A new type runs a command unless it names a handler. */
		if (!conf->types[idx].handler &&
		    init_type(&conf->types[idx], "exec") < 0)
			return fail_oom(p);
		if (!conf->types[idx].line)
			conf->types[idx].line = p->lineno;
		break;
	case S_LISTENER:
		idx = find_or_add((void **)&conf->listeners,
				  &conf->listeners_count,
				  sizeof(*conf->listeners),
				  offsetof(struct jobd_listener_conf, name),
				  sub);
		if (idx < 0)
			return fail_oom(p);
		if (!conf->listeners[idx].line) {
			conf->listeners[idx].line = p->lineno;
			conf->listeners[idx].order = 0;
			if (set_str(&conf->listeners[idx].event, "*") < 0)
				return fail_oom(p);
		}
		break;
	case S_ACTION:
		idx = find_or_add((void **)&conf->actions, &conf->actions_count,
				  sizeof(*conf->actions),
				  offsetof(struct jobd_action_conf, name), sub);
		if (idx < 0)
			return fail_oom(p);
		if (!conf->actions[idx].line) {
			conf->actions[idx].line = p->lineno;
			conf->actions[idx].batch = 500;
		}
		break;
	case S_RELATION:
		idx = find_or_add((void **)&conf->relations,
				  &conf->relations_count,
				  sizeof(*conf->relations),
				  offsetof(struct jobd_relation_conf, name),
				  sub);
		if (idx < 0)
			return fail_oom(p);
		if (!conf->relations[idx].line)
			conf->relations[idx].line = p->lineno;
		break;
	case S_SINK:
		idx = find_or_add((void **)&conf->sinks, &conf->sinks_count,
				  sizeof(*conf->sinks),
				  offsetof(struct jobd_sink_conf, name), sub);
		if (idx < 0)
			return fail_oom(p);
		if (!conf->sinks[idx].line)
			conf->sinks[idx].line = p->lineno;
		break;
	case S_SCHEDULE:
		idx = find_or_add((void **)&conf->schedules,
				  &conf->schedules_count,
				  sizeof(*conf->schedules),
				  offsetof(struct jobd_schedule_conf, name),
				  sub);
		if (idx < 0)
			return fail_oom(p);
		if (!conf->schedules[idx].line) {
			conf->schedules[idx].line = p->lineno;
			conf->schedules[idx].enabled = true;
			if (set_str(&conf->schedules[idx].timezone, "UTC") <
				    0 ||
			    set_str(&conf->schedules[idx].payload, "{}") < 0 ||
			    set_str(&conf->schedules[idx].catch_up, "latest") <
				    0)
				return fail_oom(p);
		}
		break;
	default:
		break;
	}
	p->index = (size_t)idx;
	return 0;
}

/*
 * A kafka.* property holding a secret: passwords, client secrets, private
 * keys inline, and the OAUTHBEARER config that holds them.
 */
static bool secret_property(const char *key)
{
	return strstr(key, "password") || strstr(key, "secret") ||
	       strstr(key, ".pem") || strstr(key, "oauthbearer.config");
}

bool jobd_conf_secret(const char *section, const char *key)
{
	static const struct {
		const char *name;
		const struct key *keys;
	} fixed[] = {
		{ "redis", redis_keys },	 { "kafka", kafka_keys },
		{ "topics", topics_keys },	 { "engine", engine_keys },
		{ "retention", retention_keys }, { "stats", stats_keys },
		{ "http", http_keys },
	};

	if (strcmp(section, "users") == 0)
		return true;
	if (strcmp(section, "kafka") == 0 && strncmp(key, "kafka.", 6) == 0)
		return secret_property(key + 6);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(section, fixed[i].name) != 0)
			continue;
		for (const struct key *k = fixed[i].keys; k->name; k++)
			if (strcmp(k->name, key) == 0)
				return k->kind == K_SECRET;
	}
	return false;
}

/* The largest secret file: a password, a token list, a private key. */
#define SECRET_MAX (64 * 1024)

/* KEY without its "_file" ending, a new string; NULL when it has none. */
static char *file_stem(const char *key)
{
	size_t n = strlen(key);

	if (n <= 5 || strcmp(key + n - 5, "_file") != 0)
		return NULL;
	return strndup(key, n - 5);
}

/* PATH as seen from the directory of the configuration file NAME. */
static char *relative_to(const char *name, const char *path)
{
	const char *slash = strrchr(name, '/');
	char *out;

	if (path[0] == '/' || !slash)
		return strdup(path);
	if (asprintf(&out, "%.*s/%s", (int)(slash - name), name, path) < 0)
		return NULL;
	return out;
}

/*
 * The secret of KEY from the file that KEY_file = RAW names, into *OUT
 * (caller frees): its bytes without the line ends at its end. A file that
 * group or others may read is a warning. Returns 0 or -1 with errstr set.
 */
static int read_secret(struct parser *p, const char *key, char *raw, char **out)
{
	const char *sec = p->section_name;
	char *v, *path, *text = NULL;
	size_t len = 0;
	struct stat sb;
	int rc;

	cut_comment(raw, false);
	v = trim(raw);
	if (!*v)
		return fail(p, p->lineno,
			    "give the path of a file holding the secret",
			    "empty path for [%s] %s_file", sec, key);
	if (!(path = relative_to(p->name, v)))
		return fail_oom(p);
	/* A device (/dev/zero) or a huge file would be read for ever. */
	if (stat(path, &sb) == 0 &&
	    (!S_ISREG(sb.st_mode) || sb.st_size > SECRET_MAX)) {
		rc = fail(p, p->lineno,
			  "give a file of at most 64 KiB holding the secret",
			  "\"%s\" for [%s] %s_file is %s", path, sec, key,
			  S_ISREG(sb.st_mode) ? "larger than 64 KiB" :
						"not a regular file");
		goto out;
	}
	rc = read_file(path, &text, &len);
	if (rc < 0) {
		rc = fail(p, p->lineno, "give a file that jobd's user can read",
			  "cannot read \"%s\" for [%s] %s_file: %s", path, sec,
			  key, strerror(-rc));
		goto out;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	if (len == 0 || memchr(text, '\0', len)) {
		rc = fail(p, p->lineno, "put the secret alone in it, as text",
			  "\"%s\" for [%s] %s_file is %s", path, sec, key,
			  len ? "not text (NUL byte)" : "empty");
		goto out;
	}
	if (stat(path, &sb) == 0 && (sb.st_mode & (S_IRGRP | S_IROTH)))
		warn(p,
		     "\"%s\" for [%s] %s_file is readable by group or others "
		     "(mode %04o): chmod 600 it",
		     path, sec, key, (unsigned int)(sb.st_mode & 07777));
	*out = text;
	text = NULL;
out:
	free(path);
	free(text);
	return rc;
}

/*
 * Adds the "TOKEN = name" pairs of TEXT, separated by newlines or commas
 * ('#' starts a comment line), to [users]. Returns 0, -1 with *WHY set on
 * a bad pair, or -2 when out of memory.
 */
static int add_users(struct jobd_conf *conf, const char *text, const char **why)
{
	char *copy, *item, *save = NULL, *eq, *token, *name;
	int rc = 0;

	if (!(copy = strdup(text)))
		return -2;
	for (item = strtok_r(copy, ",\n", &save); item;
	     item = strtok_r(NULL, ",\n", &save)) {
		item = trim(item);
		if (!*item || *item == '#')
			continue;
		eq = strchr(item, '=');
		if (!eq) {
			*why = "a pair without '='";
			rc = -1;
			break;
		}
		*eq = '\0';
		token = trim(item);
		name = trim(eq + 1);
		if (!*token || !*name) {
			*why = *token ? "a token without a user name" :
					"a user name without a token";
			rc = -1;
			break;
		}
		if (set_kv(&conf->users, &conf->users_count, token, name) < 0) {
			rc = -2;
			break;
		}
	}
	free(copy);
	return rc;
}

/* [users] tokens_file = RAW: the pairs of that file. */
static int read_users(struct parser *p, char *raw)
{
	const char *why = NULL;
	char *text = NULL;
	int rc;

	if (read_secret(p, "tokens", raw, &text) < 0)
		return -1;
	rc = add_users(p->conf, text, &why);
	free(text);
	if (rc == -2)
		return fail_oom(p);
	if (rc < 0)
		return fail(p, p->lineno,
			    "write one TOKEN = name a line, or TOKEN = name "
			    "pairs separated by commas",
			    "%s in the file of [users] tokens_file", why);
	return 0;
}

/*
 * KEY = RAW where KEY is NAME_file for a secret key NAME of KEYS (a fixed
 * section): sets NAME from the file. Returns 1 when KEY is one, 0 when it
 * is not, -1 on an error.
 */
static int secret_file_key(struct parser *p, const struct key *keys, void *base,
			   const char *key, char *raw)
{
	char *stem = file_stem(key), *secret = NULL;
	int rc = 0;

	for (; stem && keys->name; keys++)
		if (keys->kind == K_SECRET && strcmp(keys->name, stem) == 0)
			break;
	if (stem && keys->name) {
		rc = read_secret(p, stem, raw, &secret);
		if (rc == 0) {
			char **field =
				(char **)(void *)((char *)base + keys->off);

			free(*field);
			*field = secret;
			rc = 1;
		}
	}
	free(stem);
	return rc;
}

/* [kafka] kafka.PROPERTY_file = RAW for a secret PROPERTY; as above. */
static int secret_file_property(struct parser *p, const char *key, char *raw)
{
	char *stem = file_stem(key), *secret = NULL;
	int rc = 0;

	if (stem && secret_property(stem + 6)) {
		rc = read_secret(p, stem, raw, &secret);
		if (rc == 0) {
			rc = set_kv(&p->conf->kafka_props,
				    &p->conf->kafka_props_count, stem + 6,
				    secret) < 0 ?
				     fail_oom(p) :
				     1;
			free(secret);
		}
	}
	free(stem);
	return rc;
}

/* KEY = RAW in the current section. */
/* Which line set KEY of S, for the messages of check_schedule(). */
static void schedule_line(struct jobd_schedule_conf *s, const char *key,
			  unsigned long line)
{
	if (strcmp(key, "cron") == 0)
		s->cron_line = line;
	else if (strcmp(key, "timezone") == 0)
		s->timezone_line = line;
	else if (strcmp(key, "type") == 0)
		s->type_line = line;
	else if (strcmp(key, "payload") == 0)
		s->payload_line = line;
	else if (strcmp(key, "catch_up") == 0)
		s->catch_up_line = line;
}

static int handle_key(struct parser *p, const char *key, char *raw)
{
	struct jobd_conf *conf = p->conf;
	const struct key *keys = NULL;
	void *base = conf;
	char *v;

	switch (p->section) {
	case S_NONE:
		warn(p, "key \"%s\" outside any section; ignored", key);
		return 0;
	case S_UNKNOWN:
		return 0;
	case S_REDIS:
		keys = redis_keys;
		break;
	case S_KAFKA:
		if (strncmp(key, "kafka.", 6) == 0 && key[6]) {
			int rc = secret_file_property(p, key, raw);

			if (rc)
				return rc < 0 ? -1 : 0;
			cut_comment(raw, false);
			v = trim(raw);
			if (*v && secret_property(key + 6) &&
			    !conf->secret_line)
				conf->secret_line = p->lineno;
			if (set_kv(&conf->kafka_props, &conf->kafka_props_count,
				   key + 6, v) < 0)
				return fail_oom(p);
			return 0;
		}
		keys = kafka_keys;
		break;
	case S_TOPICS:
		keys = topics_keys;
		break;
	case S_ENGINE:
		keys = engine_keys;
		break;
	case S_RETENTION:
		keys = retention_keys;
		break;
	case S_STATS:
		keys = stats_keys;
		break;
	case S_HTTP:
		keys = http_keys;
		break;
	case S_LOG:
		keys = log_keys;
		break;
	case S_USERS:
		if (strcmp(key, "tokens_file") == 0)
			return read_users(p, raw);
		cut_comment(raw, false);
		v = trim(raw);
		if (!*v)
			return fail(p, p->lineno, "write TOKEN = user name",
				    "empty user name for a token in [users]");
		if (!conf->secret_line)
			conf->secret_line = p->lineno;
		if (set_kv(&conf->users, &conf->users_count, key, v) < 0)
			return fail_oom(p);
		return 0;
	case S_TYPE:
		keys = type_keys;
		base = &conf->types[p->index];
		break;
	case S_LISTENER:
		keys = listener_keys;
		base = &conf->listeners[p->index];
		break;
	case S_ACTION:
		keys = action_keys;
		base = &conf->actions[p->index];
		break;
	case S_RELATION:
		keys = relation_keys;
		base = &conf->relations[p->index];
		break;
	case S_SINK:
		keys = sink_keys;
		base = &conf->sinks[p->index];
		break;
	case S_SCHEDULE:
		keys = schedule_keys;
		base = &conf->schedules[p->index];
		schedule_line(&conf->schedules[p->index], key, p->lineno);
		break;
	}
	switch (secret_file_key(p, keys, base, key, raw)) {
	case 1:
		return 0;
	case 0:
		break;
	default:
		return -1;
	}
	for (; keys->name; keys++)
		if (strcmp(keys->name, key) == 0)
			return set_value(p, base, keys, raw);
	warn(p, "unknown key \"%s\" in [%s]; ignored", key, p->section_name);
	return 0;
}

static int parse_line(struct parser *p, char *line)
{
	char *s, *eq, *end;

	s = line;
	while (is_space(*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		/* Until a good header, keys go nowhere: checked against no
		 * section, they would only add errors that are not. */
		p->section = S_UNKNOWN;
		end = strchr(s, ']');
		if (!end)
			return fail(p, p->lineno, "close it with ]",
				    "unterminated section header");
		*end = '\0';
		cut_comment(end + 1, true);
		if (*trim(end + 1))
			return fail(p, p->lineno,
				    "put nothing but a comment after ]",
				    "text after section header [%s]", s + 1);
		if (enter_section(p, trim(s + 1)) < 0) {
			p->section = S_UNKNOWN;
			return -1;
		}
		return 0;
	}
	eq = strchr(s, '=');
	if (!eq)
		return fail(p, p->lineno, "write key = value",
			    "expected [section] or key = value");
	*eq = '\0';
	s = trim(s);
	if (!*s)
		return fail(p, p->lineno, "write key = value",
			    "missing key before =");
	return handle_key(p, s, eq + 1);
}

static int listener_cmp(const void *a, const void *b)
{
	const struct jobd_listener_conf *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return strcmp(x->name, y->name);
}

const char *jobd_conf_own_topic(const struct jobd_conf *conf, const char *topic)
{
	const struct {
		const char *key, *name;
	} own[] = {
		{ "events", conf->topic_events },
		{ "records", conf->topic_records },
		{ "actions", conf->topic_actions },
		{ "stats", conf->topic_stats },
		{ "dlq", conf->topic_dlq },
	};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (own[i].name && strcmp(own[i].name, topic) == 0)
			return own[i].key;
	return NULL;
}

int jobd_conf_redis_address(const char *text, struct jobd_redis_address *out,
			    char *errstr, size_t errstr_size)
{
	const char *s = text, *colon, *host, *end;
	size_t hl;
	char *num_end;
	long port = 6379;

	memset(out, 0, sizeof(*out));
	out->port = 6379;
	if (strncmp(s, "rediss://", 9) == 0) {
		out->tls = true;
		s += 9;
	} else if (strncmp(s, "redis://", 8) == 0) {
		s += 8;
	} else if (strchr(s, '/')) {
		if (strlen(s) >= sizeof(out->host)) {
			set_error(errstr, errstr_size,
				  "redis socket path \"%s\" is too long", s);
			return -1;
		}
		out->unix_socket = true;
		strcpy(out->host, s);
		return 0;
	}
	if (strchr(s, '@')) {
		set_error(errstr, errstr_size,
			  "redis address \"%s\" holds a user or password: put "
			  "them in [redis] user and password_file",
			  text);
		return -1;
	}
	if (strchr(s, '/')) {
		set_error(errstr, errstr_size,
			  "redis address \"%s\" has a path: write "
			  "%shost:port (jobd uses database 0)",
			  text, out->tls ? "rediss://" : "redis://");
		return -1;
	}
	host = s;
	if (*s == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':'))
			goto bad;
		host = s + 1;
		hl = (size_t)(end - host);
		colon = end[1] ? end + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= sizeof(out->host))
		goto bad;
	memcpy(out->host, host, hl);
	out->host[hl] = '\0';
	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &num_end, 10);
		if (!colon[1] || *num_end || errno || port < 1 || port > 65535)
			goto bad;
	}
	out->port = (int)port;
	return 0;
bad:
	set_error(errstr, errstr_size,
		  "bad redis address \"%s\": write host:port, "
		  "redis://host:port, rediss://host:port (TLS) or a unix "
		  "socket path",
		  text);
	return -1;
}

/*
 * The [redis] address and tls_* keys of CONF agree: the address parses,
 * tls_cert comes with tls_key, and TLS keys only with a rediss://
 * address (a plain address would send in clear what the keys meant to
 * protect). Returns 0, or -1 with WHAT and *HINT set.
 */
static int redis_check(const struct jobd_conf *conf, char *what, size_t size,
		       const char **hint)
{
	struct jobd_redis_address addr;
	const char *tls_key = conf->redis_tls_ca	  ? "tls_ca" :
			      conf->redis_tls_cert	  ? "tls_cert" :
			      conf->redis_tls_key	  ? "tls_key" :
			      conf->redis_tls_server_name ? "tls_server_name" :
							    NULL;

	*hint = "see [redis] address in jobd.conf(5)";
	if (jobd_conf_redis_address(conf->redis_address, &addr, what, size) < 0)
		return -1;
	if (!conf->redis_tls_cert != !conf->redis_tls_key) {
		snprintf(what, size, "[redis] %s without %s",
			 conf->redis_tls_cert ? "tls_cert" : "tls_key",
			 conf->redis_tls_cert ? "tls_key" : "tls_cert");
		*hint = "give both tls_cert and tls_key, or neither";
		return -1;
	}
	for (const char *s = conf->redis_cluster_seeds; s && *s;) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		struct jobd_redis_address seed;
		char one[300];

		snprintf(one, sizeof(one), "%.*s", (int)n, s);
		if (jobd_conf_redis_address(one, &seed, what, size) < 0 ||
		    seed.unix_socket || seed.tls != addr.tls) {
			snprintf(
				what, size,
				"[redis] cluster_seeds \"%s\": bad seed \"%s\"",
				conf->redis_cluster_seeds, one);
			*hint = addr.tls ? "write rediss://host:port,... as "
					   "the address is TLS" :
					   "write host:port,host:port (clear, "
					   "as the address)";
			return -1;
		}
		s = comma ? comma + 1 : s + n;
	}
	if (tls_key && !addr.tls) {
		snprintf(what, size,
			 "[redis] %s is set but address \"%s\" is not TLS",
			 tls_key, conf->redis_address);
		*hint = addr.unix_socket ?
				"Redis speaks TLS on TCP ports only: write "
				"rediss://host:port, or remove the tls_ keys" :
				"write rediss://host:port, or remove the "
				"tls_ keys";
		return -1;
	}
	return 0;
}

/*
 * [schedule.NAME]: its cron expression, time zone, type (any type of the
 * file, wherever defined), payload and catch_up, each error on the line
 * that set the key.
 */
static void check_schedule(struct parser *p, struct jobd_schedule_conf *s)
{
	char why[512];
	json_error_t e;
	json_t *j;

	if (!s->cron)
		fail(p, s->line, "add cron = MIN HOUR DAY MONTH WEEKDAY",
		     "[schedule.%s] has no cron", s->name);
	else if (jobd_cron_parse(s->cron, &s->expr, why, sizeof(why)) < 0)
		fail(p, s->cron_line,
		     "use 5 fields (minute hour day month weekday) or @daily",
		     "[schedule.%s] cron: %s", s->name, why);
	jobd_tz_free(s->tz);
	s->tz = jobd_tz_load(s->timezone, why, sizeof(why));
	if (!s->tz)
		fail(p, s->timezone_line ? s->timezone_line : s->line,
		     "use a name of the tz database, e.g. Europe/Paris, or UTC",
		     "[schedule.%s] timezone: %s", s->name, why);
	if (!s->type)
		fail(p, s->line, "add type = a job type",
		     "[schedule.%s] has no type", s->name);
	else if (!jobd_conf_type(p->conf, s->type))
		fail(p, s->type_line,
		     "use a built-in type or one of a [type.NAME] section",
		     "[schedule.%s] type: unknown job type \"%s\"", s->name,
		     s->type);
	j = json_loads(s->payload, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
		       &e);
	if (!j)
		fail(p, s->payload_line,
		     "write the payload as JSON on one line",
		     "[schedule.%s] payload is not valid JSON: %s at byte %d",
		     s->name, e.text, e.position);
	json_decref(j);
	if (strcmp(s->catch_up, "latest") == 0)
		s->catch_up_mode = JOBD_CATCH_UP_LATEST;
	else if (strcmp(s->catch_up, "none") == 0)
		s->catch_up_mode = JOBD_CATCH_UP_NONE;
	else if (strcmp(s->catch_up, "all") == 0)
		s->catch_up_mode = JOBD_CATCH_UP_ALL;
	else
		fail(p, s->catch_up_line, "use latest, none or all",
		     "[schedule.%s] bad catch_up \"%s\"", s->name, s->catch_up);
}

static int schedule_cmp(const void *a, const void *b)
{
	const struct jobd_schedule_conf *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/*
 * Checks that need the whole file. All of them run, so that
 * jobd_conf_check hears of every error; errstr keeps the first. Returns 0
 * or -1.
 */
static int finish(struct parser *p)
{
	struct jobd_conf *conf = p->conf;
	size_t i, before = p->nerrors;
	const char *hint = NULL;
	char what[600];

	if (conf->lease <= conf->heartbeat) {
		char lease[32], hb[32];

		jobd_util_human_ms(conf->lease, lease, sizeof(lease));
		jobd_util_human_ms(conf->heartbeat, hb, sizeof(hb));
		fail(p,
		     p->lease_line > p->heartbeat_line ? p->lease_line :
							 p->heartbeat_line,
		     "make lease longer than heartbeat, e.g. 10 times",
		     "[engine] lease %s is not longer than heartbeat %s", lease,
		     hb);
	}
	if (redis_check(conf, what, sizeof(what), &hint) < 0)
		fail(p,
		     strstr(what, "tls_") ? p->redis_tls_line : p->address_line,
		     hint, "%s", what);
	if (!conf->http_tls_cert != !conf->http_tls_key)
		return fail(p, p->tls_line,
			    "give both tls_cert and tls_key, or neither",
			    "[http] %s without %s",
			    conf->http_tls_cert ? "tls_cert" : "tls_key",
			    conf->http_tls_cert ? "tls_key" : "tls_cert");
	for (char **t = conf->topics_allowed; t && *t; t++) {
		const char *own = jobd_conf_own_topic(conf, *t);

		if (own)
			fail(p, p->topics_allowed_line,
			     "jobs may not read or write jobd's own "
			     "topics; remove it",
			     "[topics] allowed lists %s, jobd's %s topic", *t,
			     own);
	}
	for (i = 0; i < conf->types_count; i++) {
		struct jobd_type_conf *type = &conf->types[i];

		type->needs_command = strcmp(type->handler, "exec") == 0 &&
				      !type->command;
		if (type->line && type->needs_command)
			fail(p, type->line,
			     "add command = /path/to/program args",
			     "[type.%s] has handler exec but no command",
			     type->name);
		if (type->line && type->command &&
		    strcmp(type->handler, "exec") != 0) {
			p->lineno = type->line;
			warn(p, "[type.%s] command is ignored by handler %s",
			     type->name, type->handler);
		}
	}
	for (i = 0; i < conf->listeners_count; i++) {
		struct jobd_listener_conf *l = &conf->listeners[i];

		if (!l->service)
			fail(p, l->line, "add service = NAME",
			     "[listener.%s] has no service", l->name);
		if (!l->command)
			fail(p, l->line, "add command = /path/to/program args",
			     "[listener.%s] has no command", l->name);
	}
	for (i = 0; i < conf->actions_count; i++) {
		if (!conf->actions[i].command)
			fail(p, conf->actions[i].line,
			     "add command = /path/to/program args",
			     "[action.%s] has no command",
			     conf->actions[i].name);
	}
	for (i = 0; i < conf->sinks_count; i++) {
		if (!conf->sinks[i].command)
			fail(p, conf->sinks[i].line,
			     "add command = /path/to/program args",
			     "[sink.%s] has no command", conf->sinks[i].name);
	}
	for (i = 0; i < conf->relations_count; i++) {
		struct jobd_relation_conf *r = &conf->relations[i];
		const char *missing = !r->source     ? "source" :
				      !r->label	     ? "label" :
				      !r->target     ? "target" :
				      !r->ref_field  ? "ref_field" :
				      !r->copy_field ? "copy_field" :
						       NULL;

		if (missing)
			fail(p, r->line,
			     "a relation needs source, label, target, ref_field and copy_field",
			     "[relation.%s] has no %s", r->name, missing);
	}
	for (i = 0; i < conf->schedules_count; i++)
		check_schedule(p, &conf->schedules[i]);
	if (p->nerrors > before)
		return -1;
	if (conf->schedules_count > 1)
		qsort(conf->schedules, conf->schedules_count,
		      sizeof(*conf->schedules), schedule_cmp);
	if (conf->listeners_count > 1)
		qsort(conf->listeners, conf->listeners_count,
		      sizeof(*conf->listeners), listener_cmp);
	return 0;
}

static struct jobd_conf *conf_defaults(void)
{
	struct jobd_conf *conf;
	size_t i, n = BUILTIN_COUNT;
	int rc = 0;

	conf = calloc(1, sizeof(*conf));
	if (!conf)
		return NULL;
	pthread_rwlock_init(&conf->lock, NULL);
	rc |= set_str(&conf->redis_address, "127.0.0.1:6379");
	rc |= set_str(&conf->prefix, "jobd");
	conf->redis_wait_replicas = 1;
	conf->redis_wait_timeout = 1000;
	rc |= set_str(&conf->brokers, "embedded");
	rc |= set_str(&conf->group, "jobd");
	conf->max_payload = INT64_C(1) << 20;
	conf->dlq_max_bytes = 900 * 1024;
	conf->pending_limit = 100000;
	rc |= set_str(&conf->topic_events, "jobs.events");
	rc |= set_str(&conf->topic_records, "jobs.records");
	rc |= set_str(&conf->topic_actions, "jobs.actions");
	rc |= set_str(&conf->topic_stats, "jobs.stats");
	rc |= set_str(&conf->topic_dlq, "jobs.dlq");
	conf->role_consume = conf->role_work = true;
	conf->role_stats = conf->role_http = true;
	conf->instance = default_instance();
	conf->workers = 8;
	conf->lease = 10000;
	conf->heartbeat = 1000;
	conf->low_priority_share = 0.5;
	rc |= set_str(&conf->data_dir, "/var/lib/jobd");
	conf->retention_jobs = 7 * DAY_MS;
	conf->logs_max_entries = 10000;
	conf->key_window = DAY_MS;
	conf->retention_stats = 30 * DAY_MS;
	rc |= set_str(&conf->http_listen, "127.0.0.1:8080");
	conf->http_request_timeout = 10000;
	conf->log_level = JOBD_LOG_INFO;
	conf->types = calloc(n, sizeof(*conf->types));
	if (rc || !conf->instance || !conf->types)
		goto err_free_conf;
	for (i = 0; i < n; i++) {
		struct jobd_type_conf *type = &conf->types[i];

		conf->types_count++;
		if (set_str(&type->name, builtin_types[i].name) < 0 ||
		    init_type(type, builtin_types[i].name) < 0)
			goto err_free_conf;
		type->stoppable = builtin_types[i].stoppable;
		type->restartable = builtin_types[i].restartable;
		type->system = builtin_types[i].system;
		type->needs_command = strcmp(type->name, "exec") == 0;
	}
	return conf;

err_free_conf:
	jobd_conf_free(conf);
	return NULL;
}

/*
 * The parse of jobd_conf_parse and jobd_conf_check: with ALL, an error
 * goes onto it and the next line is read, so that one run finds them all;
 * without, the first error ends it.
 */
static struct jobd_conf *parse_text(const char *text, size_t len,
				    const char *name, char *errstr,
				    size_t errstr_size,
				    struct jobd_conf_errors *all)
{
	struct parser p;
	const char *pos = text, *stop = text + len, *nl;
	char *line;
	size_t n;
	int rc;

	memset(&p, 0, sizeof(p));
	p.name = name ? name : "(config)";
	p.errstr = errstr;
	p.errstr_size = errstr_size;
	p.all = all;
	p.conf = conf_defaults();
	if (!p.conf || set_str(&p.conf->path, p.name) < 0) {
		set_error(errstr, errstr_size, "%s: out of memory", p.name);
		goto err_free_conf;
	}
	for (; pos < stop && !p.oom; pos += n + (nl ? 1 : 0)) {
		p.lineno++;
		nl = memchr(pos, '\n', (size_t)(stop - pos));
		n = nl ? (size_t)(nl - pos) : (size_t)(stop - pos);
		if (memchr(pos, '\0', n)) {
			fail(&p, p.lineno, "save the file as text",
			     "NUL byte in line");
			if (!all)
				goto err_free_conf;
			continue;
		}
		line = malloc(n + 1);
		if (!line) {
			fail_oom(&p);
			goto err_free_conf;
		}
		memcpy(line, pos, n);
		line[n] = '\0';
		rc = parse_line(&p, line);
		free(line);
		if (rc < 0 && !all)
			goto err_free_conf;
	}
	if (p.oom || finish(&p) < 0 || p.nerrors)
		goto err_free_conf;
	free(p.section_name);
	return p.conf;

err_free_conf:
	if (all && p.oom)
		set_error(errstr, errstr_size, "%s: out of memory", p.name);
	free(p.section_name);
	jobd_conf_free(p.conf);
	return NULL;
}

struct jobd_conf *jobd_conf_parse(const char *text, size_t len,
				  const char *name, char *errstr,
				  size_t errstr_size)
{
	return parse_text(text, len, name, errstr, errstr_size, NULL);
}

/* Reads all of PATH into *TEXT (NUL-terminated) and *LEN. */
static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f;
	char *buf = NULL, *grown;
	size_t size = 0, cap = 0, got;
	int err;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	for (;;) {
		if (cap - size < 4096) {
			cap = cap ? cap * 2 : 8192;
			grown = realloc(buf, cap);
			if (!grown) {
				err = ENOMEM;
				goto err_close;
			}
			buf = grown;
		}
		got = fread(buf + size, 1, cap - size - 1, f);
		size += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		err = errno ? errno : EIO;
		goto err_close;
	}
	fclose(f);
	buf[size] = '\0';
	*text = buf;
	*len = size;
	return 0;

err_close:
	fclose(f);
	free(buf);
	return -err;
}

/*
 * The environment over the file (docs/security.md): addresses, and the
 * secrets a service manager hands over without a file. Returns 0 or -1
 * with errstr set.
 */
static int apply_env(struct jobd_conf *conf, char *errstr, size_t errstr_size)
{
	static const struct {
		const char *var;
		size_t off;
	} fields[] = {
		{ "JOBD_REDIS", offsetof(struct jobd_conf, redis_address) },
		{ "JOBD_BROKERS", offsetof(struct jobd_conf, brokers) },
		{ "JOBD_REDIS_PASSWORD",
		  offsetof(struct jobd_conf, redis_password) },
		{ "JOBD_HTTP_TOKEN", offsetof(struct jobd_conf, http_token) },
	};
	static const struct {
		const char *var, *property;
	} props[] = {
		{ "JOBD_KAFKA_SASL_PASSWORD", "sasl.password" },
		{ "JOBD_KAFKA_SSL_KEY_PASSWORD", "ssl.key.password" },
	};
	const char *v, *why = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		v = getenv(fields[i].var);
		if (v && *v &&
		    set_str((char **)(void *)((char *)conf + fields[i].off),
			    v) < 0)
			goto err_oom;
	}
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		v = getenv(props[i].var);
		if (v && *v &&
		    set_kv(&conf->kafka_props, &conf->kafka_props_count,
			   props[i].property, v) < 0)
			goto err_oom;
	}
	v = getenv("JOBD_USERS");
	if (v && *v) {
		rc = add_users(conf, v, &why);
		if (rc == -2)
			goto err_oom;
		if (rc < 0) {
			set_error(errstr, errstr_size,
				  "%s in $JOBD_USERS: write TOKEN = name "
				  "pairs separated by commas or newlines",
				  why);
			return -1;
		}
	}
	return 0;

err_oom:
	set_error(errstr, errstr_size,
		  "cannot apply environment: out of memory");
	return -1;
}

/*
 * A warning when the file PATH holds a secret (on line LINE) and group or
 * others may read it.
 */
static void check_readable(struct jobd_conf *conf, const char *path)
{
	struct stat sb;

	if (!conf->secret_line || stat(path, &sb) < 0 ||
	    !(sb.st_mode & (S_IRGRP | S_IROTH)))
		return;
	jobd_warn("%s:%lu: warning: a secret in a file that group or others "
		  "may read (mode %04o): chmod 600 \"%s\", or move the "
		  "secret to a KEY_file or the environment "
		  "(docs/security.md)",
		  path, conf->secret_line, (unsigned int)(sb.st_mode & 07777),
		  path);
	conf->warnings++;
}

struct jobd_conf *jobd_conf_load(const char *path, char *errstr,
				 size_t errstr_size)
{
	struct jobd_conf *conf;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!path) {
		path = getenv("JOBD_CONFIG");
		if (path && !*path)
			path = NULL;
	}
	if (path) {
		rc = read_file(path, &text, &len);
		if (rc < 0) {
			set_error(errstr, errstr_size, "cannot read \"%s\": %s",
				  path, strerror(-rc));
			return NULL;
		}
		conf = jobd_conf_parse(text, len, path, errstr, errstr_size);
		free(text);
	} else {
		conf = conf_defaults();
		if (!conf)
			set_error(
				errstr, errstr_size,
				"cannot load built-in defaults: out of memory");
	}
	if (!conf)
		return NULL;
	if (apply_env(conf, errstr, errstr_size) < 0) {
		jobd_conf_free(conf);
		return NULL;
	}
	if (getenv("JOBD_REDIS") && *getenv("JOBD_REDIS")) {
		const char *hint;
		char what[600];

		if (redis_check(conf, what, sizeof(what), &hint) < 0) {
			set_error(errstr, errstr_size,
				  "%s (address from $JOBD_REDIS): %s", what,
				  hint);
			jobd_conf_free(conf);
			return NULL;
		}
	}
	if (path)
		check_readable(conf, path);
	return conf;
}

static void free_kv(struct jobd_kv *kv, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void jobd_conf_free(struct jobd_conf *conf)
{
	size_t i;

	if (!conf)
		return;
	free(conf->path);
	free(conf->redis_address);
	free(conf->redis_password);
	free(conf->redis_user);
	free(conf->redis_tls_ca);
	free(conf->redis_tls_cert);
	free(conf->redis_tls_key);
	free(conf->redis_tls_server_name);
	free(conf->redis_cluster_seeds);
	free(conf->prefix);
	free(conf->brokers);
	free(conf->group);
	free_kv(conf->kafka_props, conf->kafka_props_count);
	free(conf->topic_events);
	free(conf->topic_records);
	free(conf->topic_actions);
	free(conf->topic_stats);
	free(conf->topic_dlq);
	free(conf->instance);
	free(conf->data_dir);
	free(conf->http_listen);
	free(conf->http_token);
	free(conf->http_tls_cert);
	free(conf->http_tls_key);
	free_argv(conf->http_allowed_hosts);
	free_argv(conf->topics_allowed);
	free_kv(conf->users, conf->users_count);
	for (i = 0; i < conf->types_count; i++) {
		free(conf->types[i].name);
		free(conf->types[i].handler);
		free_argv(conf->types[i].command);
	}
	free(conf->types);
	for (i = 0; i < conf->listeners_count; i++) {
		free(conf->listeners[i].name);
		free(conf->listeners[i].service);
		free(conf->listeners[i].event);
		free_argv(conf->listeners[i].command);
	}
	free(conf->listeners);
	for (i = 0; i < conf->actions_count; i++) {
		free(conf->actions[i].name);
		free_argv(conf->actions[i].command);
	}
	free(conf->actions);
	for (i = 0; i < conf->relations_count; i++) {
		free(conf->relations[i].name);
		free(conf->relations[i].source);
		free(conf->relations[i].label);
		free(conf->relations[i].target);
		free(conf->relations[i].ref_field);
		free(conf->relations[i].copy_field);
	}
	free(conf->relations);
	for (i = 0; i < conf->sinks_count; i++) {
		free(conf->sinks[i].name);
		free_argv(conf->sinks[i].command);
	}
	free(conf->sinks);
	for (i = 0; i < conf->schedules_count; i++) {
		struct jobd_schedule_conf *sc = &conf->schedules[i];

		free(sc->name);
		free(sc->cron);
		free(sc->timezone);
		free(sc->type);
		free(sc->payload);
		free(sc->catch_up);
		jobd_tz_free(sc->tz);
	}
	free(conf->schedules);
	jobd_conf_free(conf->retired);
	pthread_rwlock_destroy(&conf->lock);
	free(conf);
}

const struct jobd_type_conf *jobd_conf_type(const struct jobd_conf *conf,
					    const char *type)
{
	const struct jobd_type_conf *found = NULL;

	if (!conf || !type)
		return NULL;
	jobd_conf_rdlock(conf);
	for (size_t i = 0; i < conf->types_count && !found; i++)
		if (strcmp(conf->types[i].name, type) == 0)
			found = &conf->types[i];
	jobd_conf_unlock(conf);
	return found;
}

void jobd_conf_rdlock(const struct jobd_conf *conf)
{
	pthread_rwlock_rdlock((pthread_rwlock_t *)&conf->lock);
}

void jobd_conf_unlock(const struct jobd_conf *conf)
{
	pthread_rwlock_unlock((pthread_rwlock_t *)&conf->lock);
}

/* --- reload ---------------------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_argv(char **a, char **b)
{
	for (; a && b && *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return (!a || !*a) && (!b || !*b);
}

/* Whether key K has the same value in the elements A and B of CA and CB. */
static bool same_value(const struct key *k, const struct jobd_conf *ca,
		       const char *a, const struct jobd_conf *cb, const char *b)
{
	a += k->off;
	b += k->off;
	switch (k->kind) {
	case K_STR:
	case K_OPTSTR:
	case K_SECRET:
	case K_PATH:
	case K_INSTANCE:
	case K_HANDLER:
		return same_str(*(char *const *)(const void *)a,
				*(char *const *)(const void *)b);
	case K_BOOL:
		return *(const bool *)a == *(const bool *)b;
	case K_INT:
	case K_LEVEL:
		return *(const int *)(const void *)a ==
		       *(const int *)(const void *)b;
	case K_I64:
	case K_DURATION:
	case K_SIZE:
		return *(const int64_t *)(const void *)a ==
		       *(const int64_t *)(const void *)b;
	case K_SHARE:
		return *(const double *)(const void *)a ==
		       *(const double *)(const void *)b;
	case K_RATE:
		return memcmp(a, b, sizeof(struct jobd_rate)) == 0;
	case K_COMMAND:
	case K_HOSTS:
	case K_TOPICS:
		return same_argv(*(char **const *)(const void *)a,
				 *(char **const *)(const void *)b);
	case K_ROLES:
		return ca->role_consume == cb->role_consume &&
		       ca->role_work == cb->role_work &&
		       ca->role_stats == cb->role_stats &&
		       ca->role_http == cb->role_http;
	case K_FORMAT:
		return ca->stats_msgpack == cb->stats_msgpack;
	case K_LOGFMT:
		return ca->log_json == cb->log_json;
	}
	return false;
}

static bool same_element(const struct key *keys, const struct jobd_conf *ca,
			 const void *a, const struct jobd_conf *cb,
			 const void *b)
{
	for (; keys->name; keys++)
		if (!same_value(keys, ca, a, cb, b))
			return false;
	return true;
}

static bool same_kv(const struct jobd_kv *a, size_t na, const struct jobd_kv *b,
		    size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!same_str(a[i].key, b[i].key) ||
		    !same_str(a[i].value, b[i].value))
			return false;
	return true;
}

/* The "name" at NAME_OFF in an element of a [type.]/[listener.]/... array. */
static const char *elem_name(const char *elem, size_t name_off)
{
	return *(char *const *)(const void *)(elem + name_off);
}

/*
 * Logs every key of LIVE that FRESH changes and a reload does not take:
 * the fixed sections but [log], [http] token and [users]; kafka.*
 * properties; [listener.], [action.], [relation.], [sink.] and [schedule.]
 * sections.
 */
static void warn_restart(const struct jobd_conf *live,
			 const struct jobd_conf *fresh)
{
	static const struct {
		const char *section;
		const struct key *keys;
	} fixed[] = {
		{ "redis", redis_keys },	 { "kafka", kafka_keys },
		{ "topics", topics_keys },	 { "engine", engine_keys },
		{ "retention", retention_keys }, { "stats", stats_keys },
		{ "http", http_keys },
	};
#define ARRAY(sec, arr, cnt, keys)                             \
	{                                                      \
		sec, keys, (const char *)live->arr, live->cnt, \
			(const char *)fresh->arr, fresh->cnt,  \
			sizeof(*live->arr),                    \
			offsetof(__typeof__(*live->arr), name) \
	}
	const struct {
		const char *section;
		const struct key *keys;
		const char *a;
		size_t na;
		const char *b;
		size_t nb, size, name_off;
	} arrays[] = {
		ARRAY("listener", listeners, listeners_count, listener_keys),
		ARRAY("action", actions, actions_count, action_keys),
		ARRAY("relation", relations, relations_count, relation_keys),
		ARRAY("sink", sinks, sinks_count, sink_keys),
		ARRAY("schedule", schedules, schedules_count, schedule_keys),
	};
#undef ARRAY
	const char *path = live->path;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		for (const struct key *k = fixed[i].keys; k->name; k++)
			if (strcmp(k->name, "token") != 0 &&
			    !same_value(k, live, (const char *)live, fresh,
					(const char *)fresh))
				jobd_warn("%s: [%s] %s changed: needs a "
					  "restart; keeping the running value",
					  path, fixed[i].section, k->name);
	if (!same_kv(live->kafka_props, live->kafka_props_count,
		     fresh->kafka_props, fresh->kafka_props_count))
		jobd_warn("%s: [kafka] kafka.* properties changed: need a "
			  "restart; keeping the running ones",
			  path);
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		bool same = arrays[i].na == arrays[i].nb;

		for (size_t j = 0; same && j < arrays[i].na; j++) {
			const char *a = arrays[i].a + j * arrays[i].size;
			const char *b = arrays[i].b + j * arrays[i].size;

			same = same_str(elem_name(a, arrays[i].name_off),
					elem_name(b, arrays[i].name_off)) &&
			       same_element(arrays[i].keys, live, a, fresh, b);
		}
		if (!same)
			jobd_warn("%s: [%s.NAME] sections changed: need a "
				  "restart; keeping the running ones",
				  path, arrays[i].section);
	}
}

/* " a, b" into BUF: the types of A that B lacks ("" when none). */
static const char *types_missing(const struct jobd_conf *a,
				 const struct jobd_conf *b, char *buf,
				 size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->types_count && len < size; i++)
		if (!jobd_conf_type(b, a->types[i].name))
			len += (size_t)snprintf(buf + len, size - len, "%s %s",
						len ? "," : "",
						a->types[i].name);
	return buf;
}

#define SWAP(a, b)                          \
	do {                                \
		__typeof__(a) swap_tmp = a; \
		a = b;                      \
		b = swap_tmp;               \
	} while (0)

int jobd_conf_reload(struct jobd_conf *live, char *errstr, size_t errstr_size)
{
	struct jobd_conf *fresh;
	char added[512], removed[512];

	if (!live->path) {
		set_error(errstr, errstr_size,
			  "no file to reload: jobd started on the built-in "
			  "defaults (give -c FILE or JOBD_CONFIG)");
		return -1;
	}
	fresh = jobd_conf_load(live->path, errstr, errstr_size);
	if (!fresh)
		return -1;
	warn_restart(live, fresh);
	types_missing(fresh, live, added, sizeof(added));
	types_missing(live, fresh, removed, sizeof(removed));

	pthread_rwlock_wrlock(&live->lock);
	SWAP(live->types, fresh->types);
	SWAP(live->types_count, fresh->types_count);
	SWAP(live->http_token, fresh->http_token);
	SWAP(live->users, fresh->users);
	SWAP(live->users_count, fresh->users_count);
	live->log_level = fresh->log_level;
	live->log_json = fresh->log_json;
	fresh->retired = live->retired;
	live->retired = fresh;
	pthread_rwlock_unlock(&live->lock);

	jobd_info("reloaded %s: %zu job types (added:%s, removed:%s), "
		  "%s admin token, %zu user tokens, log level %s",
		  live->path, live->types_count, added[0] ? added : " none",
		  removed[0] ? removed : " none",
		  live->http_token ? "an" : "no", live->users_count,
		  jobd_log_level_name((enum jobd_log_level)live->log_level));
	return 0;
}

void jobd_conf_errors_release(struct jobd_conf_errors *all)
{
	for (size_t i = 0; i < all->n; i++)
		free(all->errors[i].msg);
	free(all->errors);
	memset(all, 0, sizeof(*all));
}

struct jobd_conf *jobd_conf_check(const char *path,
				  struct jobd_conf_errors *errors)
{
	struct jobd_conf *conf = NULL;
	char *text = NULL, errstr[1400] = "";
	size_t len = 0;
	int rc;

	memset(errors, 0, sizeof(*errors));
	rc = read_file(path, &text, &len);
	if (rc < 0)
		snprintf(errstr, sizeof(errstr), "cannot read \"%s\": %s", path,
			 strerror(-rc));
	else
		conf = parse_text(text, len, path, errstr, sizeof(errstr),
				  errors);
	free(text);
	/* The environment too, as a start: its secret files can fail. */
	if (conf && apply_env(conf, errstr, sizeof(errstr)) == 0 &&
	    errors->n == 0)
		return conf;
	jobd_conf_free(conf);
	/* What stopped the parse itself (unreadable, out of memory). */
	if (errors->n == 0 && push_error(errors, 0, errstr) < 0)
		abort();
	/* In line order, the checks of the whole file among the lines;
	 * insertion keeps the order of one line's messages. */
	for (size_t i = 1; i < errors->n; i++) {
		struct jobd_conf_error e = errors->errors[i];
		size_t j = i;

		for (; j > 0 && errors->errors[j - 1].line > e.line; j--)
			errors->errors[j] = errors->errors[j - 1];
		errors->errors[j] = e;
	}
	return NULL;
}

/* --- the effective configuration, as a file ------------------------------ */

/* A word of a command as split_command() reads it back. */
static void write_word(FILE *f, const char *w)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_./:=@%+,-";

	if (*w && strspn(w, safe) == strlen(w)) {
		fputs(w, f);
		return;
	}
	fputc('\'', f);
	for (; *w; w++) {
		if (*w == '\'')
			fputs("'\\''", f);
		else
			fputc(*w, f);
	}
	fputc('\'', f);
}

/* Items of a NULL-terminated list, separated by SEP. */
static void write_list(FILE *f, char **items, const char *sep, bool words)
{
	for (char **i = items; i && *i; i++) {
		if (i != items)
			fputs(sep, f);
		if (words)
			write_word(f, *i);
		else
			fputs(*i, f);
	}
}

/* The value of key K of BASE, as the file takes it. */
static void write_value(FILE *f, const struct key *k, const void *base,
			const struct jobd_conf *conf)
{
	const char *field = (const char *)base + k->off;
	/* Only the string kinds hold a pointer there. */
	const char *const *str = (const char *const *)(const void *)field;
	char buf[32];

	switch (k->kind) {
	case K_STR:
	case K_OPTSTR:
	case K_PATH:
	case K_HANDLER:
		fputs(*str ? *str : "", f);
		break;
	case K_SECRET:
		fputs(*str ? "(hidden)" : "", f);
		break;
	case K_INSTANCE: {
		char *dflt = default_instance();

		/* The default is the running jobd's own, not ours. */
		if (dflt && strcmp(*str, dflt) == 0)
			fputs("; empty: <hostname>-<pid> of each jobd", f);
		else
			fputs(*str, f);
		free(dflt);
		break;
	}
	case K_BOOL:
		fputs(*(const bool *)(const void *)field ? "yes" : "no", f);
		break;
	case K_INT:
		fprintf(f, "%d", *(const int *)(const void *)field);
		break;
	case K_LEVEL:
		fputs(jobd_log_level_name((enum jobd_log_level) *
					  (const int *)(const void *)field),
		      f);
		break;
	case K_LOGFMT:
		fputs(conf->log_json ? "json" : "text", f);
		break;
	case K_I64:
	case K_SIZE:
		fprintf(f, "%lld",
			(long long)*(const int64_t *)(const void *)field);
		break;
	case K_DURATION: {
		int64_t ms = *(const int64_t *)(const void *)field;

		fputs(ms ? duration_text(ms, buf, sizeof(buf)) : "0", f);
		break;
	}
	case K_RATE: {
		const struct jobd_rate *r =
			(const struct jobd_rate *)(const void *)field;

		fprintf(f, "%lld/%s", (long long)r->n,
			duration_text(r->per_ms, buf, sizeof(buf)));
		break;
	}
	case K_SHARE:
		fprintf(f, "%g", *(const double *)(const void *)field);
		break;
	case K_ROLES: {
		const bool on[] = { conf->role_consume, conf->role_work,
				    conf->role_stats, conf->role_http };
		const char *names[] = { "consume", "work", "stats", "http" };
		bool first = true;

		for (size_t i = 0; i < 4; i++) {
			if (!on[i])
				continue;
			fprintf(f, "%s%s", first ? "" : ",", names[i]);
			first = false;
		}
		break;
	}
	case K_FORMAT:
		fputs(conf->stats_msgpack ? "msgpack" : "json", f);
		break;
	case K_COMMAND:
		write_list(f, *(char **const *)(const void *)field, " ", true);
		break;
	case K_HOSTS:
	case K_TOPICS:
		write_list(f, *(char **const *)(const void *)field, ", ",
			   false);
		break;
	}
}

/* Whether K is a limit of BASE left unset (concurrency, rate): no value
 * the file would take says so. */
static bool unset_limit(const struct key *k, const void *base)
{
	const char *field = (const char *)base + k->off;

	if (k->kind == K_RATE)
		return ((const struct jobd_rate *)(const void *)field)->per_ms ==
		       0;
	return k->kind == K_INT && k->min > 0 &&
	       *(const int *)(const void *)field < k->min;
}

/*
 * "key = value" for every key of KEYS ("key =" for an empty one; no
 * command line without a command, which only exec types need), each line
 * after PREFIX.
 */
static int write_keys(FILE *f, const char *prefix, const struct key *keys,
		      const void *base, const struct jobd_conf *conf)
{
	for (const struct key *k = keys; k->name; k++) {
		char *v = NULL;
		size_t len = 0;
		FILE *m;

		if (k->kind == K_COMMAND &&
		    !*(char **const *)(const void *)((const char *)base +
						     k->off))
			continue;
		if (unset_limit(k, base)) {
			fprintf(f, "%s%s%s: no limit\n", prefix,
				*prefix ? "" : "; ", k->name);
			continue;
		}
		if (!(m = open_memstream(&v, &len)))
			return -ENOMEM;
		write_value(m, k, base, conf);
		if (fclose(m) != 0) {
			free(v);
			return -ENOMEM;
		}
		fprintf(f, "%s%s =%s%s\n", prefix, k->name, len ? " " : "", v);
		free(v);
	}
	return 0;
}

/*
 * A [SECTION.NAME] for each of the COUNT elements of ARRAY (SIZE bytes
 * each, the name at NAME_OFF), as find_or_add() made them.
 */
static int write_named(FILE *f, const char *section, const struct key *keys,
		       const void *array, size_t count, size_t size,
		       size_t name_off, const struct jobd_conf *conf)
{
	int rc = 0;

	for (size_t i = 0; i < count; i++) {
		const char *elem = (const char *)array + i * size;

		fprintf(f, "\n[%s.%s]\n", section,
			*(char *const *)(const void *)(elem + name_off));
		rc |= write_keys(f, "", keys, elem, conf);
	}
	return rc;
}

int jobd_conf_write(const struct jobd_conf *conf, FILE *f)
{
	int rc = 0;
	size_t i;

	fprintf(f,
		"; the effective configuration: the defaults, %s%s%s, "
		"then the environment; secrets hidden\n",
		conf->path ? "\"" : "", conf->path ? conf->path : "no file",
		conf->path ? "\"" : "");
	fputs("\n[redis]\n", f);
	rc |= write_keys(f, "", redis_keys, conf, conf);
	fputs("\n[kafka]\n", f);
	rc |= write_keys(f, "", kafka_keys, conf, conf);
	for (i = 0; i < conf->kafka_props_count; i++)
		fprintf(f, "kafka.%s = %s\n", conf->kafka_props[i].key,
			secret_property(conf->kafka_props[i].key) ?
				"(hidden)" :
				conf->kafka_props[i].value);
	fputs("\n[topics]\n", f);
	rc |= write_keys(f, "", topics_keys, conf, conf);
	fputs("\n[engine]\n", f);
	rc |= write_keys(f, "", engine_keys, conf, conf);
	fputs("\n[retention]\n", f);
	rc |= write_keys(f, "", retention_keys, conf, conf);
	fputs("\n[stats]\n", f);
	rc |= write_keys(f, "", stats_keys, conf, conf);
	fputs("\n[http]\n", f);
	rc |= write_keys(f, "", http_keys, conf, conf);
	if (conf->users_count) {
		/* A token lets its holder act as the user: the names only. */
		fputs("\n[users]\n", f);
		for (i = 0; i < conf->users_count; i++)
			fprintf(f, "; (token hidden) = %s\n",
				conf->users[i].value);
	}
	for (i = 0; i < conf->types_count; i++) {
		/* A built-in type the file leaves alone stays a comment: as a
		 * section, the built-in exec would want a command. */
		const char *pre = conf->types[i].line ? "" : "; ";

		fprintf(f, "\n%s[type.%s]%s\n", pre, conf->types[i].name,
			conf->types[i].line ? "" : " (built in)");
		rc |= write_keys(f, pre, type_keys, &conf->types[i], conf);
	}
	rc |= write_named(f, "listener", listener_keys, conf->listeners,
			  conf->listeners_count, sizeof(*conf->listeners),
			  offsetof(struct jobd_listener_conf, name), conf);
	rc |= write_named(f, "action", action_keys, conf->actions,
			  conf->actions_count, sizeof(*conf->actions),
			  offsetof(struct jobd_action_conf, name), conf);
	rc |= write_named(f, "relation", relation_keys, conf->relations,
			  conf->relations_count, sizeof(*conf->relations),
			  offsetof(struct jobd_relation_conf, name), conf);
	rc |= write_named(f, "sink", sink_keys, conf->sinks, conf->sinks_count,
			  sizeof(*conf->sinks),
			  offsetof(struct jobd_sink_conf, name), conf);
	rc |= write_named(f, "schedule", schedule_keys, conf->schedules,
			  conf->schedules_count, sizeof(*conf->schedules),
			  offsetof(struct jobd_schedule_conf, name), conf);
	if (rc < 0)
		return rc;
	return ferror(f) ? -EIO : 0;
}
