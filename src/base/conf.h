/*
 * conf: jobd's configuration (docs/design.md, "Interfaces").
 *
 * An INI file of "key = value" lines in [sections]; repeated sections merge;
 * ';' or '#' start a comment (at line start, or after whitespace). Our own
 * parser rather than libinih: Debian's inih truncates long lines and gives no
 * line numbers, and every bad value must be reported as FILE:LINE with a hint.
 * Built-in defaults apply without any file; the environment (JOBD_REDIS,
 * JOBD_BROKERS) overrides the file. JOBD_USER is jobctl's, not read here.
 *
 * Secrets (docs/security.md): every key that holds one (jobd_conf_secret)
 * can instead name a file, KEY_file = PATH ([redis] password_file, [http]
 * token_file, [kafka] kafka.sasl.password_file, [users] tokens_file), whose
 * content is the value without its trailing newline; a relative PATH is
 * relative to the configuration file's directory. The environment
 * overrides both: JOBD_REDIS_PASSWORD, JOBD_HTTP_TOKEN,
 * JOBD_KAFKA_SASL_PASSWORD, JOBD_KAFKA_SSL_KEY_PASSWORD, and JOBD_USERS
 * ("TOKEN = name" pairs separated by newlines or commas, added to
 * [users]). A secret file, or a configuration file holding a secret,
 * that group or others may read is a warning.
 *
 * "command" values are split into argv like a shell splits words, without a
 * shell: whitespace separates words, '...' and "..." group, a backslash
 * escapes the next character outside quotes (and ", \, $, ` inside double
 * quotes); nothing is expanded. An unquoted ';' or '#' starting a word
 * begins a comment.
 */
#ifndef JOBD_SRC_BASE_CONF_H
#define JOBD_SRC_BASE_CONF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/cron.h"
#include "base/tz.h"

/* Policy of one job type, [type.NAME]; copied into each job at creation. */
struct jobd_type_conf {
	char *name;    /* type name, e.g. "noop" */
	char *handler; /* noop | exec | import | export | event | action | ... */
	char **command;	  /* argv for exec, NULL-terminated; NULL if none */
	bool stoppable;	  /* default yes */
	bool restartable; /* default no */
	bool system;	  /* default no */
	int64_t timeout;  /* ms, 0 = none */
	int retries;	  /* extra attempts after a failure, default 0 */
	int64_t retry_backoff; /* ms, base of the exponential backoff, default 1s */
	int64_t chunk_size; /* rows per child for import/action, default 1000 */
	int concurrency;    /* at most this many running across all instances,
			     * 0 = no limit (docs/job-types.md, "Limits") */
	struct jobd_rate {
		int64_t n;	/* at most N starts ... */
		int64_t per_ms; /* ... in any window of this many ms; 0 = none */
	} rate;
	bool needs_command; /* handler exec without a command (the built-in
				* "exec"): jobs of this type cannot run */
	unsigned long line; /* line of its first [type.NAME] in conf->path,
				* 0 = built in and not configured */
};

/* [listener.NAME]: runs for events of one service. */
struct jobd_listener_conf {
	char *name;
	char *service;	    /* matches the event's "service" */
	char *event;	    /* matches the event's "event"; "*" matches any */
	char **command;	    /* argv, NULL-terminated */
	int order;	    /* listeners run in ascending order, then by name */
	unsigned long line; /* line of its first [listener.NAME] */
};

/* [action.NAME]: a background action over records. */
struct jobd_action_conf {
	char *name;
	char **command;	    /* argv, NULL-terminated */
	int64_t batch;	    /* records per child job, default 500 */
	unsigned long line; /* line of its first [action.NAME] */
};

/* [relation.NAME]: a label copied from one collection into another. */
struct jobd_relation_conf {
	char *name;
	char *source;	    /* collection whose records are referenced */
	char *label;	    /* field of the source record that is copied */
	char *target;	    /* collection holding references */
	char *ref_field;    /* field of the target holding the source id */
	char *copy_field;   /* field of the target holding the label copy */
	unsigned long line; /* line of its first [relation.NAME] */
};

/* [sink.NAME]: a command an import sends its records to (NDJSON batches). */
struct jobd_sink_conf {
	char *name;
	char **command;	    /* argv, NULL-terminated */
	unsigned long line; /* line of its first [sink.NAME] */
};

/* What a [schedule.NAME] does with ticks missed while no jobd ran it. */
enum jobd_catch_up {
	JOBD_CATCH_UP_LATEST, /* the latest missed tick fires once (default) */
	JOBD_CATCH_UP_NONE,   /* missed ticks are skipped */
	JOBD_CATCH_UP_ALL,    /* every missed tick fires, oldest first */
};

/* [schedule.NAME]: a job submitted at each tick of a cron expression
 * (docs/schedules.md). */
struct jobd_schedule_conf {
	char *name;
	char *cron;	   /* the expression as written, "0 9 * * MON-FRI" */
	char *timezone;	   /* IANA name, default "UTC" */
	char *type;	   /* job type submitted; a type of the conf */
	char *payload;	   /* JSON text, default "{}" */
	bool low_priority; /* default no */
	bool enabled;	   /* default yes */
	char *catch_up;	   /* "latest" (default), "none" or "all" */
	enum jobd_catch_up catch_up_mode; /* parsed catch_up */
	struct jobd_cron expr;		  /* parsed cron */
	struct jobd_tz *tz;		  /* loaded timezone, owned */
	unsigned long line; /* line of its first [schedule.NAME] */
	unsigned long cron_line, timezone_line, type_line, payload_line,
		catch_up_line; /* last line setting each key, 0 = none */
};

/* A [kafka] "kafka.<property> = value" passed through to librdkafka. */
struct jobd_kv {
	char *key;
	char *value;
};

/* [redis] address (or JOBD_REDIS), taken apart. */
struct jobd_redis_address {
	bool tls;	  /* rediss:// */
	bool unix_socket; /* HOST is a unix socket path */
	char host[256];	  /* name, IP address (IPv6 without brackets), path */
	int port;	  /* TCP port; 6379 when not given */
};

struct jobd_conf {
	char *path; /* file read, NULL for built-in defaults */

	/* [redis] */
	char *redis_address;  /* [redis[s]://]host:port or a unix socket path;
			      * "127.0.0.1:6379" */
	char *redis_password; /* NULL = no AUTH */
	char *redis_user;     /* NULL = default user */
	char *redis_tls_ca;   /* PEM CA file; NULL = the system's CAs */
	char *redis_tls_cert; /* PEM client certificate (chain); NULL = none */
	char *redis_tls_key;  /* PEM private key of redis_tls_cert */
	char *redis_tls_server_name; /* name verified and sent (SNI); NULL =
				      * the address's host */
	char *prefix;		     /* key prefix, "jobd" */
	char *redis_cluster_seeds;   /* more nodes of a cluster, "host:port,..."
				      * (as address: clear or rediss://);
				      * NULL = the address only */
	int redis_wait_replicas;     /* replicas a consumer's create waits
				      * for (at most those connected), 1 */
	int64_t redis_wait_timeout;  /* ms the consumer's WAIT waits, 1000 */

	/* [kafka] */
	char *brokers;	       /* "embedded" or host:port,... */
	char *group;	       /* consumer group, "jobd" */
	int64_t max_payload;   /* bytes, 1 MiB */
	int64_t dlq_max_bytes; /* bytes of a dead letter, 900 KiB */
	int64_t pending_limit; /* pause consumption above this, 100000 */
	struct jobd_kv *kafka_props;
	size_t kafka_props_count;

	/* [topics] */
	char *topic_events;    /* "jobs.events" */
	char *topic_records;   /* "jobs.records" */
	char *topic_actions;   /* "jobs.actions" */
	char *topic_stats;     /* "jobs.stats" */
	char *topic_dlq;       /* "jobs.dlq" */
	char **topics_allowed; /* topics jobs may read or write (import
				* sinks, export sources): names, or
				* prefixes ending in '*'; NULL-terminated,
				* NULL = none */

	/* [engine] */
	bool role_consume, role_work, role_stats, role_http; /* all on */
	char *instance;		   /* "<hostname>-<pid>" */
	int workers;		   /* 8 */
	int64_t lease;		   /* ms, 10s */
	int64_t heartbeat;	   /* ms, 1s */
	double low_priority_share; /* 0.5, in (0, 1] */
	char *data_dir;		   /* "/var/lib/jobd" */

	/* [retention] */
	int64_t retention_jobs;	  /* ms, 7d */
	int64_t logs_max_entries; /* 10000 */
	int64_t key_window;	  /* ms, 24h: idempotency keys last as long */
	int64_t retention_stats;  /* ms, 30d */

	/* [stats] */
	bool stats_msgpack; /* format = msgpack; default json */

	/* [http] */
	char *http_listen;   /* "127.0.0.1:8080" */
	char *http_token;    /* NULL = no token */
	char *http_tls_cert; /* PEM certificate chain file; NULL = plain HTTP */
	char *http_tls_key;  /* PEM private key file; set with http_tls_cert */
	bool read_requires_token;     /* no */
	char **http_allowed_hosts;    /* more host names than the listen address
				    * and loopback, lowercase, NULL-terminated;
				    * NULL = none */
	int http_max_connections;     /* connections at once; 0 = 256 or what
				    * RLIMIT_NOFILE leaves, if less */
	int64_t http_request_timeout; /* ms a connection has to send a whole
				       * request, 10s */
	int http_sort_window; /* jobs a sort by started, waiting, duration or
			       * status reads at most; 0 = JOBD_SORT_WINDOW */

	/* [log] */
	int log_level; /* enum jobd_log_level, JOBD_LOG_INFO */
	bool log_json; /* format = json; default text */

	/* [users] TOKEN = name */
	struct jobd_kv *users;
	size_t users_count;

	struct jobd_type_conf *types; /* built-ins (noop, exec, import, export,
				       * event, action, refactor,
				       * relationship-update, cleanup)
				       * merged with [type.NAME] */
	size_t types_count;
	struct jobd_listener_conf *listeners; /* sorted by order, then name */
	size_t listeners_count;
	struct jobd_action_conf *actions;
	size_t actions_count;
	struct jobd_relation_conf *relations;
	size_t relations_count;
	struct jobd_sink_conf *sinks;
	size_t sinks_count;
	struct jobd_schedule_conf *schedules; /* sorted by name */
	size_t schedules_count;

	unsigned int warnings; /* warnings printed while parsing (unknown keys
				* and sections, files others may read); 0
				* for a clean file */

	pthread_rwlock_t lock; /* held to read or swap what reload changes */
	struct jobd_conf *retired; /* what reloads replaced, freed with this
				    * conf so borrowed pointers stay valid */
	unsigned long secret_line; /* first line of conf->path with a secret
				    * written in it, 0 = none */
};

/*
 * Reads PATH (NULL: $JOBD_CONFIG, else built-in defaults only), then applies
 * the environment. Returns a new conf, caller frees with jobd_conf_free(), or
 * NULL with the reason in errstr ("FILE:LINE: bad duration \"5x\" for
 * [engine] lease: use a number with ms, s, m, h or d"). Unknown keys are
 * warnings printed to stderr as "FILE:LINE: warning: unknown key ...".
 */
struct jobd_conf *jobd_conf_load(const char *path, char *errstr,
				 size_t errstr_size);

/*
 * Parses TEXT of LEN bytes (any bytes; NAME is used in messages and kept as
 * conf->path) on top of the defaults; no env. Same result and errors as
 * jobd_conf_load.
 */
struct jobd_conf *jobd_conf_parse(const char *text, size_t len,
				  const char *name, char *errstr,
				  size_t errstr_size);

void jobd_conf_free(struct jobd_conf *conf);

/* One message of jobd_conf_check. */
struct jobd_conf_error {
	unsigned long line; /* of the file; 0 = the file as a whole */
	char *msg;	    /* "FILE:LINE: what: hint", owned */
};

struct jobd_conf_errors {
	struct jobd_conf_error *errors; /* owned, in line order */
	size_t n;
	size_t warnings; /* of them, what a start only warns about */
};

/*
 * jobd --check-config: reads PATH as jobd_conf_load does, environment
 * included, but goes on after an error, so that one run names every error
 * of the file, and takes a warning (an unknown key or section, a command
 * its handler ignores) for an error: at a start, a misspelt key silently
 * leaves its default in place. Returns the conf (caller frees with
 * jobd_conf_free()) when there was none; else NULL, with every message in
 * ERRORS (also an unreadable file, as line 0), which the caller releases
 * with jobd_conf_errors_release() either way.
 */
struct jobd_conf *jobd_conf_check(const char *path,
				  struct jobd_conf_errors *errors);
void jobd_conf_errors_release(struct jobd_conf_errors *errors);

/*
 * Writes CONF to F as a configuration file: every key of every section
 * and type, defaults included, in the units the file takes. Secrets
 * ([redis] password, [http] token, the tokens of [users], kafka.*
 * passwords, secrets and keys) are written as "(hidden)" or left in a
 * comment. Returns 0, or -EIO when F failed.
 */
int jobd_conf_write(const struct jobd_conf *conf, FILE *f);

/*
 * SIGHUP: re-reads LIVE's file (LIVE->path, then the environment, as
 * jobd_conf_load) and takes from it what may change while jobd runs: the
 * job types ([type.NAME]), [http] token, [users] and [log]. Every other
 * key that differs is logged as needing a restart and keeps its running
 * value. Returns 0 (the outcome logged), or -1 with the reason in errstr
 * ("FILE:LINE: ...") and LIVE unchanged.
 *
 * Other threads read the reloadable fields of LIVE (types, http_token,
 * users) under jobd_conf_rdlock(), or through jobd_conf_type(). What a
 * reload replaces stays allocated until jobd_conf_free(LIVE), so pointers
 * borrowed before it (a jobd_type_conf, a user name) remain valid.
 */
int jobd_conf_reload(struct jobd_conf *live, char *errstr, size_t errstr_size);

void jobd_conf_rdlock(const struct jobd_conf *conf);
void jobd_conf_unlock(const struct jobd_conf *conf);

/*
 * The policy of TYPE, or NULL when the type is unknown. Borrowed from conf,
 * until jobd_conf_free() (a reload does not free it).
 */
/*
 * Whether KEY of [SECTION] (without brackets) holds a secret, to be never
 * printed: [redis] password, [http] token, a [kafka] property holding a
 * password, client secret or private key ("kafka.sasl.password"), and
 * every key of [users] (a token).
 */
bool jobd_conf_secret(const char *section, const char *key);

/* The policy of TYPE, or NULL when the type is unknown. Borrowed from conf. */
const struct jobd_type_conf *jobd_conf_type(const struct jobd_conf *conf,
					    const char *type);

/*
 * "250ms", "10s", "5m", "2h", "7d", "0" -> ms. A unit is required except for
 * 0; no sign, no fraction, no space. Returns 0 on success, -1 on a bad value
 * (also on overflow).
 */
int jobd_conf_parse_duration(const char *s, int64_t *ms);

/*
 * Takes TEXT ([redis] address or JOBD_REDIS) apart into *OUT (TEXT
 * borrowed): "host:port", "redis://host:port", "rediss://host:port"
 * (TLS), "[IPv6]:port" or a unix socket path (any other text with a
 * '/'); port 6379 when not given. Returns 0, or -1 with errstr saying
 * what is wrong.
 */
int jobd_conf_redis_address(const char *text, struct jobd_redis_address *out,
			    char *errstr, size_t errstr_size);

/*
 * "1MiB", "512KiB", "100", "5MB" -> bytes. Units B, KB, MB, GB, TB (powers
 * of 1000) and KiB, MiB, GiB, TiB (powers of 1024). Returns 0 or -1 (also on
 * overflow).
 */
int jobd_conf_parse_size(const char *s, int64_t *bytes);

/*
 * Which of jobd's own topics ([topics] events, records, actions, stats,
 * dlq) TOPIC is: that key's name, or NULL when it is none of them.
 */
const char *jobd_conf_own_topic(const struct jobd_conf *conf,
				const char *topic);

#endif
