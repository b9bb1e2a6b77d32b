/*
 * jobctl: the operator's command line (docs/design.md, "Interfaces"). It talks
 * to Redis directly through the store, with the same Lua scripts as the daemon,
 * so an operation judged here is judged exactly as jobd would.
 *
 * Exit codes: 0 all done; 1 something refused, not found or unknown (one
 * line per id on stderr); 2 usage; 3 Redis or Kafka unreachable.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/conf.h"
#include "base/job.h"
#include "base/log.h"
#include "base/schedule.h"
#include "base/util.h"
#include "engine/scheduler.h"
#include "kafka/kafka.h"
#include "revision.h"
#include "store/statsjson.h"
#include "store/store.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

struct ctl {
	struct jobd_conf *conf;
	struct jobd_store *st;
	const char *actor;
};

static int usage(FILE *f, int rc)
{
	fprintf(f,
		"usage: jobctl [-c FILE] [--as USER] COMMAND [ARGS]\n"
		"       jobctl --version | --help\n"
		"\n"
		"  submit TYPE [--payload JSON] [--key K] [--run-by U]\n"
		"         [--low-priority] [--parent ID] [--count N]\n"
		"         [--run-at TIME | --delay D]\n"
		"  list [--status S] [--type T] [--run-by U] [--system] [--all]\n"
		"       [--limit N] [--cursor C] [--json]\n"
		"  show ID [--json]\n"
		"  why ID [--json]\n"
		"  children ID [--limit N] [--cursor C] [--json]\n"
		"  stop | resume | force-stop | cancel | restart ID...\n"
		"  low-priority ID... [--off]\n"
		"  logs ID [--level L] [--grep TEXT] [--regex RE] [--since T]\n"
		"       [--until T] [--tree] [--follow] [--json]\n"
		"  logs --all [--grep TEXT] [--regex RE] [--level L] [--since T]\n"
		"       [--until T] [--limit N] [--cursor C] [--json]\n"
		"  stats [--since D] [--type T] [--json]\n"
		"  send TOPIC JSON\n"
		"  fsck [--repair]\n"
		"  key KEY... [--parent ID]\n"
		"  key --scan PATTERN [--parent ID]\n"
		"  schedules [--json]\n"
		"  cluster move --to HOST:PORT [--dry-run]\n"
		"\n"
		"Without -c, $JOBD_CONFIG names the config file; without it,\n"
		"built-in defaults. JOBD_REDIS overrides the Redis address.\n");
	return rc;
}

/* One line for a usage error: what was wrong, and the command's form. */
static int bad_usage(char **argv, bool option)
{
	static const struct {
		const char *cmd, *form;
	} forms[] = {
		{ "submit",
		  "submit TYPE [--payload JSON] [--key K] [--run-by U] [--low-priority] [--parent ID] [--count N] [--run-at TIME | --delay D]" },
		{ "list",
		  "list [--status S] [--type T] [--run-by U] [--system] [--all] [--limit N] [--cursor C] [--json]" },
		{ "show", "show ID [--json]" },
		{ "why", "why ID [--json]" },
		{ "children", "children ID [--limit N] [--cursor C] [--json]" },
		{ "logs",
		  "logs ID [--level L] [--grep TEXT] [--regex RE] [--since T] [--until T] [--tree] [--follow] [--json], or logs --all [...] [--limit N] [--cursor C]" },
		{ "stats", "stats [--since D] [--type T] [--json]" },
		{ "low-priority", "low-priority ID... [--off]" },
		{ "send", "send TOPIC JSON" },
		{ "fsck", "fsck [--repair]" },
		{ "key",
		  "key KEY... [--parent ID], or key --scan PATTERN [--parent ID]" },
		{ "schedules", "schedules [--json]" },
		{ "cluster", "cluster move --to HOST:PORT [--dry-run]" },
	};
	const char *form = "COMMAND ID...";

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (strcmp(argv[0], forms[i].cmd) == 0)
			form = forms[i].form;
	if (option)
		fprintf(stderr,
			"jobctl: %s: bad option \"%s\": usage: jobctl %s\n",
			argv[0], argv[optind - 1], form);
	else
		fprintf(stderr,
			"jobctl: %s: wrong arguments: usage: jobctl %s\n",
			argv[0], form);
	return EXIT_USAGE;
}

/* Connects on first use, so usage errors never wait for Redis. */
static int connect_store(struct ctl *ctl)
{
	char err[512];

	if (ctl->st)
		return 0;
	ctl->st = jobd_store_new(ctl->conf, err, sizeof(err));
	if (!ctl->st) {
		fprintf(stderr, "jobctl: %s\n", err);
		return EXIT_UNREACHABLE;
	}
	return 0;
}

static int store_failed(struct ctl *ctl)
{
	fprintf(stderr, "jobctl: %s\n", jobd_store_errstr(ctl->st));
	return EXIT_UNREACHABLE;
}

static int parse_id(const char *s, int64_t *id)
{
	if (jobd_util_parse_i64(s, id) < 0 || *id <= 0) {
		fprintf(stderr,
			"jobctl: bad job id \"%s\": use a positive integer\n",
			s);
		return -1;
	}
	return 0;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s)
		puts(s);
	free(s);
	json_decref(j);
}

/* --- submit ------------------------------------------------------------ */

static int cmd_submit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "payload", required_argument, NULL, 'p' },
		{ "key", required_argument, NULL, 'k' },
		{ "run-by", required_argument, NULL, 'r' },
		{ "low-priority", no_argument, NULL, 'l' },
		{ "parent", required_argument, NULL, 'P' },
		{ "count", required_argument, NULL, 'n' },
		{ "run-at", required_argument, NULL, 'a' },
		{ "delay", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct jobd_spec spec = { 0 };
	struct jobd_spec *specs = NULL;
	struct jobd_created *out = NULL;
	char **keys = NULL;
	int64_t count = 1;
	int opt, rc = 0;
	json_error_t e;
	json_t *j;

	spec.run_by = ctl->actor;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			spec.payload = optarg;
			break;
		case 'k':
			spec.key = optarg;
			break;
		case 'r':
			spec.run_by = optarg;
			break;
		case 'l':
			spec.low_priority = true;
			break;
		case 'P':
			if (parse_id(optarg, &spec.parent) < 0)
				return EXIT_USAGE;
			break;
		case 'n':
			if (jobd_util_parse_i64(optarg, &count) < 0 ||
			    count < 1 || count > 10000000) {
				fprintf(stderr,
					"jobctl: bad --count \"%s\": use 1 to 10000000\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a':
			if (jobd_schedule_parse_run_at(optarg, &spec.run_at) <
			    0) {
				fprintf(stderr,
					"jobctl: bad --run-at \"%s\": %s\n",
					optarg, JOBD_SCHEDULE_RUN_AT_HINT);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			if (jobd_schedule_parse_delay(optarg, &spec.delay) <
			    0) {
				fprintf(stderr,
					"jobctl: bad --delay \"%s\": %s\n",
					optarg, JOBD_SCHEDULE_DELAY_HINT);
				return EXIT_USAGE;
			}
			break;
		default:
			return bad_usage(argv, true);
		}
	}
	if (optind != argc - 1)
		return bad_usage(argv, false);
	if (spec.run_at && spec.delay) {
		fprintf(stderr,
			"jobctl: --run-at and --delay exclude each other: "
			"give one\n");
		return EXIT_USAGE;
	}
	spec.type = argv[optind];
	if (spec.payload) {
		j = json_loads(spec.payload, 0, &e);
		if (!j || !json_is_object(j)) {
			fprintf(stderr,
				"jobctl: bad --payload: %s (line %d, column %d)\n",
				j ? "not a JSON object" : e.text, e.line,
				e.column);
			json_decref(j);
			return EXIT_USAGE;
		}
		json_decref(j);
	}
	if (!jobd_conf_type(ctl->conf, spec.type)) {
		fprintf(stderr,
			"jobctl: unknown type \"%s\": add [type.%s] to the config\n",
			spec.type, spec.type);
		return EXIT_REFUSED;
	}
	if ((rc = connect_store(ctl)))
		return rc;
	specs = calloc((size_t)count, sizeof(*specs));
	out = calloc((size_t)count, sizeof(*out));
	if (spec.key && count > 1)
		keys = calloc((size_t)count, sizeof(*keys));
	if (!specs || !out || (spec.key && count > 1 && !keys)) {
		fprintf(stderr, "jobctl: out of memory for %lld jobs\n",
			(long long)count);
		rc = EXIT_REFUSED;
		goto out;
	}
	for (int64_t i = 0; i < count; i++) {
		specs[i] = spec;
		/* With --count, --key K names the jobs K-1, K-2, ... */
		if (keys && asprintf(&keys[i], "%s-%lld", spec.key,
				     (long long)i + 1) > 0)
			specs[i].key = keys[i];
	}
	if (jobd_store_create(ctl->st, ctl->actor, specs, (size_t)count, out) <
	    0) {
		rc = store_failed(ctl);
		goto out;
	}
	for (int64_t i = 0; i < count; i++) {
		if (out[i].error[0]) {
			fprintf(stderr, "jobctl: cannot submit %s: %s\n",
				spec.type, out[i].error);
			rc = EXIT_REFUSED;
		} else {
			printf("%lld\n", (long long)out[i].id);
		}
	}
out:
	if (keys)
		for (int64_t i = 0; i < count; i++)
			free(keys[i]);
	free(keys);
	free(specs);
	free(out);
	return rc;
}

/* --- list, show, children ------------------------------------------------- */

static void fmt_time(int64_t ms, char *buf, size_t size)
{
	char iso[JOBD_ISO_SIZE];

	if (!ms) {
		snprintf(buf, size, "-");
		return;
	}
	jobd_util_iso(ms, iso);
	/* "2026-11-28 14:39:38": the table has no room for ms and Z. */
	snprintf(buf, size, "%.10s %.8s", iso, iso + 11);
}

static void print_table(const struct jobd_job_list *list)
{
	printf("%-8s %-14s %-12s %-19s %-8s %-19s %-8s %-8s %-14s %-6s %-3s %s\n",
	       "ID", "TYPE", "STATUS", "CREATED", "WAITING", "STARTED",
	       "DURATION", "PROGRESS", "CHILDREN", "ERRORS", "LOW", "RUN BY");
	for (size_t i = 0; i < list->n; i++) {
		const struct jobd_job *job = list->jobs[i];
		const struct jobd_children *c = &job->children;
		char created[32], started[32], waiting[24], duration[16];
		char progress[16], children[32], errors[8];

		fmt_time(job->created_at, created, sizeof(created));
		fmt_time(job->started_at, started, sizeof(started));
		/* A scheduled job waits for its run time, not yet to run. */
		if (jobd_job_scheduled(job, list->now)) {
			char in[16];

			jobd_util_human_ms(job->run_at - list->now, in,
					   sizeof(in));
			snprintf(waiting, sizeof(waiting), "in %s", in);
		} else {
			jobd_util_human_ms(jobd_job_waiting_ms(job, list->now),
					   waiting, sizeof(waiting));
		}
		if (job->started_at || job->run_ms)
			jobd_util_human_ms(jobd_job_duration_ms(job, list->now),
					   duration, sizeof(duration));
		else
			snprintf(duration, sizeof(duration), "-");
		snprintf(progress, sizeof(progress), "%.0f%%", job->progress);
		if (c->total)
			snprintf(children, sizeof(children), "%lld/%lld %.0f%%",
				 (long long)(c->finished + c->canceled),
				 (long long)c->total,
				 jobd_job_overall_progress(job));
		else
			snprintf(children, sizeof(children), "-");
		if (job->errors || c->errors || job->with_errors)
			snprintf(errors, sizeof(errors), "yes");
		else
			snprintf(errors, sizeof(errors), "-");
		printf("%-8lld %-14.14s %-12s %-19s %-8s %-19s %-8s %-8s %-14s %-6s %-3s %s\n",
		       (long long)job->id, job->type,
		       jobd_job_label(job, list->now), created, waiting,
		       started, duration, progress, children, errors,
		       job->low_priority ? "yes" : "-",
		       job->run_by && !job->system ? job->run_by : "");
	}
	if (list->next)
		printf("(more: --cursor %lld)\n", (long long)list->next);
}

static int page_opts(int opt, size_t *limit, int64_t *cursor)
{
	int64_t v;

	if (jobd_util_parse_i64(optarg, &v) < 0 || v < 0 ||
	    (opt == 'L' && (v < 1 || v > 1000))) {
		fprintf(stderr, "jobctl: bad --%s \"%s\": %s\n",
			opt == 'L' ? "limit" : "cursor", optarg,
			opt == 'L' ? "use 1 to 1000" :
				     "use a value printed by a previous page");
		return -1;
	}
	if (opt == 'L')
		*limit = (size_t)v;
	else
		*cursor = v;
	return 0;
}

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "status", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "run-by", required_argument, NULL, 'r' },
		{ "system", no_argument, NULL, 'S' },
		{ "all", no_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'L' },
		{ "cursor", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct jobd_filter f = { .limit = 50 };
	struct jobd_job_list list;
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (jobd_status_parse(optarg) < 0) {
				fprintf(stderr,
					"jobctl: bad --status \"%s\": use pending, in_progress, stopping, stopped, finished or canceled\n",
					optarg);
				return EXIT_USAGE;
			}
			f.status = optarg;
			break;
		case 't':
			f.type = optarg;
			break;
		case 'r':
			f.run_by = optarg;
			break;
		case 'S':
			f.system = true;
			break;
		case 'a':
			f.all = true;
			break;
		case 'L':
		case 'C':
			if (page_opts(opt, &f.limit, &f.cursor) < 0)
				return EXIT_USAGE;
			break;
		case 'j':
			json = true;
			break;
		default:
			return bad_usage(argv, true);
		}
	}
	if (optind != argc)
		return bad_usage(argv, false);
	if ((opt = connect_store(ctl)))
		return opt;
	if (jobd_store_list(ctl->st, &f, &list) < 0)
		return store_failed(ctl);
	if (json)
		print_json(jobd_job_list_to_json(&list));
	else
		print_table(&list);
	jobd_job_list_release(&list);
	return 0;
}

static void print_job(const struct jobd_job *job, int64_t now)
{
	json_t *j = jobd_job_to_json(job, now);
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v)
	{
		char *s = json_is_string(v) ?
				  strdup(json_string_value(v)) :
				  json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
							JSON_PRESERVE_ORDER);

		printf("%-22s %s", k, s ? s : "");
		/* Scheduled is shown, not a status of the state machine. */
		if (strcmp(k, "status") == 0 && jobd_job_scheduled(job, now)) {
			char iso[JOBD_ISO_SIZE];

			printf(" (Scheduled for %s)",
			       jobd_util_iso(job->run_at, iso));
		}
		printf("\n");
		free(s);
	}
	json_decref(j);
}

/* The arguments of a command on one job: ID [--json]. Returns 0, or the
 * exit code of a usage error (said). */
static int one_job_args(int argc, char **argv, int64_t *id, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*json = false;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return bad_usage(argv, true);
		*json = true;
	}
	if (optind != argc - 1)
		return bad_usage(argv, false);
	if (parse_id(argv[optind], id) < 0)
		return EXIT_USAGE;
	return 0;
}

static int job_not_found(int64_t id)
{
	fprintf(stderr, "jobctl: job %lld not found\n", (long long)id);
	return EXIT_REFUSED;
}

static int cmd_show(struct ctl *ctl, int argc, char **argv)
{
	struct jobd_job *job;
	int64_t id, now;
	bool json;
	int rc;

	if ((rc = one_job_args(argc, argv, &id, &json)))
		return rc;
	if ((rc = connect_store(ctl)))
		return rc;
	rc = jobd_store_get(ctl->st, id, &job, &now);
	if (rc == JOBD_STORE_ERR_NOTFOUND)
		return job_not_found(id);
	if (rc < 0)
		return store_failed(ctl);
	if (json)
		print_json(jobd_job_to_json(job, now));
	else
		print_job(job, now);
	jobd_job_free(job);
	return 0;
}

/* Why a job has not started (store/why.c): one line per reason. */
static int cmd_why(struct ctl *ctl, int argc, char **argv)
{
	struct jobd_why w;
	char waited[32];
	bool json;
	int64_t id;
	int rc;

	if ((rc = one_job_args(argc, argv, &id, &json)))
		return rc;
	if ((rc = connect_store(ctl)))
		return rc;
	rc = jobd_store_why(ctl->st, id, &w);
	if (rc == JOBD_STORE_ERR_NOTFOUND)
		return job_not_found(id);
	if (rc < 0)
		return store_failed(ctl);
	if (json) {
		print_json(jobd_why_to_json(&w));
		return 0;
	}
	if (w.status == JOBD_PENDING)
		printf("job %lld (%s) is Pending, waiting for %s:\n",
		       (long long)id, w.type,
		       jobd_util_human_ms(w.now - w.since, waited,
					  sizeof(waited)));
	else
		printf("job %lld (%s):\n", (long long)id, w.type);
	for (size_t i = 0; i < w.n; i++)
		printf("  - %s\n", w.reasons[i].text);
	return 0;
}

static int cmd_children(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'L' },
		{ "cursor", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct jobd_job_list list;
	size_t limit = 50;
	int64_t cursor = 0, id;
	bool json = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 'L' || opt == 'C') {
			if (page_opts(opt, &limit, &cursor) < 0)
				return EXIT_USAGE;
		} else
			return bad_usage(argv, true);
	}
	if (optind != argc - 1)
		return bad_usage(argv, false);
	if (parse_id(argv[optind], &id) < 0)
		return EXIT_USAGE;
	if ((rc = connect_store(ctl)))
		return rc;
	rc = jobd_store_children(ctl->st, id, cursor, limit, &list);
	if (rc == JOBD_STORE_ERR_NOTFOUND)
		return job_not_found(id);
	if (rc < 0)
		return store_failed(ctl);
	if (json)
		print_json(jobd_job_list_to_json(&list));
	else
		print_table(&list);
	jobd_job_list_release(&list);
	return 0;
}

/* --- logs -------------------------------------------------------------- */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* "10m" (that long ago) or an ISO time -> ms since the epoch. */
static int parse_when(const char *s, int64_t *ms)
{
	int64_t d;

	if (jobd_util_parse_iso(s, ms) == 0)
		return 0;
	if (jobd_conf_parse_duration(s, &d) == 0 && d > 0) {
		*ms = jobd_util_now_ms() - d;
		return 0;
	}
	fprintf(stderr,
		"jobctl: bad time \"%s\": use an ISO time (2026-11-28T14:00:00Z) or a duration ago (10m, 2h, 7d)\n",
		s);
	return -1;
}

static bool regex_match(const struct jobd_log_entry *e, void *arg)
{
	return regexec((regex_t *)arg, e->msg, 0, NULL, 0) == 0;
}

static void print_entry(const struct jobd_log_entry *e, bool tagged, bool json)
{
	char iso[JOBD_ISO_SIZE];

	jobd_util_iso(e->ms, iso);
	if (json) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_string(e->sid));
		json_object_set_new(o, "job", json_integer(e->job));
		json_object_set_new(o, "time", json_string(iso));
		json_object_set_new(o, "level",
				    json_string(level_names[e->level]));
		json_object_set_new(o, "attempt", json_integer(e->attempt));
		json_object_set_new(o, "message", json_string(e->msg));
		print_json(o);
	} else if (tagged) {
		printf("%s %-5s [%lld] %s\n", iso, level_names[e->level],
		       (long long)e->job, e->msg);
	} else {
		printf("%s %-5s %s\n", iso, level_names[e->level], e->msg);
	}
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/*
 * logs --all: the search across jobs, page after page (each a bounded
 * cost in Redis, store.h) until the window is done or Q->limit entries
 * are printed; then the cursor that continues.
 */
static int logs_all(struct ctl *ctl, struct jobd_log_query *q, bool json)
{
	struct jobd_log_result res;
	char next[JOBD_LOG_CURSOR_SIZE] = "";
	size_t left = q->limit;

	while (left > 0 && !interrupted) {
		q->limit = left < 1000 ? left : 1000;
		if (jobd_store_logs_all(ctl->st, q, &res) < 0)
			return store_failed(ctl);
		for (size_t i = 0; i < res.n; i++)
			print_entry(&res.entries[i], true, json);
		left -= res.n;
		snprintf(next, sizeof(next), "%s", res.next);
		jobd_log_result_release(&res);
		fflush(stdout);
		if (!next[0])
			return 0;
		q->cursor = next;
	}
	if (json)
		fprintf(stderr,
			"jobctl: more entries: continue with --cursor %s\n",
			next);
	else
		printf("(more entries: continue with --cursor %s)\n", next);
	return 0;
}

static int cmd_logs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "level", required_argument, NULL, 'l' },
		{ "grep", required_argument, NULL, 'g' },
		{ "regex", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "tree", no_argument, NULL, 't' },
		{ "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'L' },
		{ "cursor", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct jobd_log_query q = { .limit = 100000 };
	struct jobd_log_result res;
	bool json = false, follow = false, all = false, have_re = false;
	char last[32] = "";
	regex_t re;
	int64_t id = 0, v;
	int opt, rc = 0, lv;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			for (lv = 0; lv < 4 && strcmp(optarg, level_names[lv]);
			     lv++)
				;
			if (lv == 4) {
				fprintf(stderr,
					"jobctl: bad --level \"%s\": use debug, info, warn or error\n",
					optarg);
				rc = EXIT_USAGE;
				goto out;
			}
			q.min_level = lv;
			break;
		case 'g':
			q.grep = optarg;
			break;
		case 'r':
			if (have_re)
				regfree(&re);
			if ((lv = regcomp(&re, optarg,
					  REG_EXTENDED | REG_ICASE |
						  REG_NOSUB))) {
				char why[128];

				regerror(lv, &re, why, sizeof(why));
				fprintf(stderr,
					"jobctl: bad --regex \"%s\": %s\n",
					optarg, why);
				rc = EXIT_USAGE;
				goto out;
			}
			have_re = true;
			q.match = regex_match;
			q.match_arg = &re;
			break;
		case 's':
		case 'u':
			if (parse_when(optarg,
				       opt == 's' ? &q.since : &q.until) < 0) {
				rc = EXIT_USAGE;
				goto out;
			}
			break;
		case 't':
			q.tree = true;
			break;
		case 'f':
			follow = true;
			break;
		case 'j':
			json = true;
			break;
		case 'a':
			all = true;
			break;
		case 'c':
			if (!jobd_store_log_cursor_valid(optarg)) {
				fprintf(stderr,
					"jobctl: bad --cursor \"%s\": use the one a search printed\n",
					optarg);
				rc = EXIT_USAGE;
				goto out;
			}
			q.cursor = optarg;
			break;
		case 'L':
			if (jobd_util_parse_i64(optarg, &v) < 0 || v < 1) {
				fprintf(stderr, "jobctl: bad --limit \"%s\"\n",
					optarg);
				rc = EXIT_USAGE;
				goto out;
			}
			q.limit = (size_t)v;
			break;
		default:
			rc = bad_usage(argv, true);
			goto out;
		}
	}
	if (all ? optind != argc : optind != argc - 1 || q.cursor) {
		rc = bad_usage(argv, false);
		goto out;
	}
	if (!all && parse_id(argv[optind], &id) < 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = connect_store(ctl)))
		goto out;
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	if (all) {
		rc = logs_all(ctl, &q, json);
		goto out;
	}
	for (;;) {
		if (last[0])
			q.after = last;
		rc = jobd_store_logs(ctl->st, id, &q, &res);
		if (rc == JOBD_STORE_ERR_NOTFOUND) {
			rc = job_not_found(id);
			goto out;
		}
		if (rc < 0) {
			rc = store_failed(ctl);
			goto out;
		}
		if (!last[0] && res.dropped > 0 && !json)
			printf("(%lld earlier entries dropped)\n",
			       (long long)res.dropped);
		for (size_t i = 0; i < res.n; i++) {
			print_entry(&res.entries[i], q.tree, json);
			if (res.entries[i].job == id || q.tree)
				snprintf(last, sizeof(last), "%s",
					 res.entries[i].sid);
		}
		if (res.truncated && !json)
			printf("(more entries: narrow the search or raise --limit)\n");
		jobd_log_result_release(&res);
		fflush(stdout);
		if (!follow || interrupted)
			break;
		{
			struct jobd_job *job;
			int64_t now;

			/* Follow until the job ends, then print what is left. */
			if (jobd_store_get(ctl->st, id, &job, &now) == 0) {
				bool ended = job->status == JOBD_FINISHED ||
					     job->status == JOBD_CANCELED ||
					     job->status == JOBD_STOPPED;

				jobd_job_free(job);
				if (ended) {
					follow = false;
					continue;
				}
			}
		}
		usleep(250000);
		if (interrupted)
			break;
	}
	rc = 0;
out:
	if (have_re)
		regfree(&re);
	return rc;
}

/* --- stats ------------------------------------------------------------- */

static const struct jobd_stats_counts no_counts = {
	.wait_min = -1,
	.wait_max = -1,
};

/* The counts of minute M: of its one type when TYPE is given (the store
 * kept only that one), else of all types. */
static const struct jobd_stats_counts *
minute_counts(const struct jobd_stats_minute *m, const char *type)
{
	if (!type)
		return &m->all;
	return m->ntypes ? &m->types[0].c : &no_counts;
}

static bool has_jobs(const struct jobd_stats_counts *c)
{
	return c->created || c->started || c->finished || c->errors;
}

static void fmt_wait(int64_t ms, char *buf, size_t size)
{
	if (ms < 0)
		snprintf(buf, size, "-");
	else
		jobd_util_human_ms(ms, buf, size);
}

/* The four waiting times of C: avg, min, max and p95. */
static void fmt_waits(const struct jobd_stats_counts *c, char w[4][16])
{
	fmt_wait(c->started > 0 ? c->wait_sum / c->started : -1, w[0],
		 sizeof(w[0]));
	fmt_wait(c->wait_min, w[1], sizeof(w[1]));
	fmt_wait(c->wait_max, w[2], sizeof(w[2]));
	fmt_wait(jobd_stats_percentile(c, 95), w[3], sizeof(w[3]));
}

/* A terminal chart of the waiting times: one bar per minute. */
static void print_wait_chart(const struct jobd_stats *s, const char *type)
{
	int64_t top = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct jobd_stats_counts *c =
			minute_counts(&s->minutes[i], type);

		if (c->wait_max > top)
			top = c->wait_max;
	}
	if (top <= 0)
		return;
	printf("\nwaiting time per minute (= avg, + max; full width %lldms)\n",
	       (long long)top);
	for (size_t i = 0; i < s->n; i++) {
		const struct jobd_stats_counts *c =
			minute_counts(&s->minutes[i], type);
		char iso[JOBD_ISO_SIZE], bar[61];
		int avg, max;

		if (c->started <= 0)
			continue;
		avg = (int)(60 * (c->wait_sum / c->started) / top);
		max = (int)(60 * c->wait_max / top);
		memset(bar, ' ', 60);
		memset(bar, '+', (size_t)max);
		memset(bar, '=', (size_t)avg);
		bar[max > 0 ? max : 1] = '\0';
		jobd_util_iso(s->minutes[i].minute, iso);
		printf("%.5s |%s\n", iso + 11, bar);
	}
}

/*
 * The table of jobctl stats: a summary of the whole window first, then
 * only the minutes (hours, for windows over six hours) that saw a job,
 * the open one marked, and how many quiet ones were left out. Rows of
 * zeros told an operator nothing and pushed the busy minutes off screen.
 */
static void print_stats(const struct jobd_stats *s, const char *type)
{
	struct jobd_stats_counts sum = no_counts;
	int64_t span = s->n > 1 ? s->minutes[1].minute - s->minutes[0].minute :
				  60000;
	const char *unit = span == 60000 ? "minute" : "hour";
	char from[JOBD_ISO_SIZE], to[JOBD_ISO_SIZE], w[4][16];
	size_t quiet = 0;

	for (size_t i = 0; i < s->n; i++)
		jobd_stats_counts_add(&sum,
				      minute_counts(&s->minutes[i], type));
	jobd_util_iso(s->n ? s->minutes[0].minute : s->now, from);
	jobd_util_iso(s->now, to);
	fmt_waits(&sum, w);
	printf("%s%s from %.10s %.5s to %.10s %.5s UTC: %lld created, "
	       "%lld started, %lld finished, %lld with errors",
	       type ? "type " : "all types", type ? type : "", from, from + 11,
	       to, to + 11, (long long)sum.created, (long long)sum.started,
	       (long long)sum.finished, (long long)sum.errors);
	if (sum.started > 0)
		printf("; waiting avg %s, min %s, max %s, p95 %s\n", w[0], w[1],
		       w[2], w[3]);
	else
		printf("\n");
	if (!has_jobs(&sum))
		return;
	printf("\n%-17s %-6s %8s %8s %8s %7s %9s %9s %9s %9s\n",
	       span == 60000 ? "MINUTE" : "HOUR", "", "CREATED", "STARTED",
	       "FINISHED", "ERRORS", "WAIT AVG", "WAIT MIN", "WAIT MAX",
	       "WAIT P95");
	for (size_t i = 0; i < s->n; i++) {
		const struct jobd_stats_minute *m = &s->minutes[i];
		const struct jobd_stats_counts *c = minute_counts(m, type);
		char iso[JOBD_ISO_SIZE];

		if (!has_jobs(c)) {
			quiet++;
			continue;
		}
		jobd_util_iso(m->minute, iso);
		fmt_waits(c, w);
		printf("%.10s %.5s %-6s %8lld %8lld %8lld %7lld %9s %9s %9s %9s\n",
		       iso, iso + 11, m->closed ? "" : "(open)",
		       (long long)c->created, (long long)c->started,
		       (long long)c->finished, (long long)c->errors, w[0], w[1],
		       w[2], w[3]);
	}
	if (quiet)
		printf("(%zu %s%s without jobs not shown)\n", quiet, unit,
		       quiet == 1 ? "" : "s");
	print_wait_chart(s, type);
}

static int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL;
	struct jobd_stats s;
	int64_t since = 0;
	bool json = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_when(optarg, &since) < 0)
				return EXIT_USAGE;
			break;
		case 't':
			type = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return bad_usage(argv, true);
		}
	}
	if (optind != argc)
		return bad_usage(argv, false);
	if ((rc = connect_store(ctl)))
		return rc;
	if (jobd_store_stats(ctl->st, since, type, &s) < 0)
		return store_failed(ctl);
	if (json)
		print_json(jobd_stats_to_json(&s));
	else
		print_stats(&s, type);
	jobd_stats_release(&s);
	return 0;
}

/* --- send -------------------------------------------------------------- */

/* Produces one message: a way to try jobd without kcat. */
static int cmd_send(struct ctl *ctl, int argc, char **argv)
{
	char err[512];
	json_error_t e;
	json_t *j;

	if (argc != 3)
		return bad_usage(argv, false);
	j = json_loads(argv[2], 0, &e);
	if (!j) {
		fprintf(stderr,
			"jobctl: send: invalid JSON: %s (line %d, column %d)\n",
			e.text, e.line, e.column);
		return EXIT_USAGE;
	}
	json_decref(j);
	if (jobd_kafka_send(ctl->conf, argv[1], argv[2], strlen(argv[2]), err,
			    sizeof(err)) < 0) {
		fprintf(stderr, "jobctl: cannot send to %s: %s\n", argv[1],
			err);
		return EXIT_UNREACHABLE;
	}
	printf("sent to %s\n", argv[1]);
	return 0;
}

/* --- fsck -------------------------------------------------------------- */

static int cmd_fsck(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct jobd_fsck f;
	bool repair = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'r')
			return bad_usage(argv, true);
		repair = true;
	}
	if (optind != argc)
		return bad_usage(argv, false);
	if ((rc = connect_store(ctl)))
		return rc;
	if (jobd_store_fsck(ctl->st, repair, &f) < 0)
		return store_failed(ctl);
	for (size_t i = 0; i < f.nviolations; i++)
		printf("%s\n", f.violations[i]);
	if (f.more_violations)
		printf("(%zu more violations not listed)\n", f.more_violations);
	if (f.stale)
		printf("%zu stale entries in the lists of roots without "
		       "children: not a violation, claims drop them\n",
		       f.stale);
	if (f.counters_moved)
		printf("status counters not compared: jobs changed status "
		       "during the check (run it again, or on a quiet store)\n");
	printf("%zu jobs checked, %zu violations%s", f.jobs,
	       f.nviolations + f.more_violations, repair ? "" : "\n");
	if (repair)
		printf(", %zu repairs\n", f.fixed);
	rc = f.nviolations && !repair ? EXIT_REFUSED : 0;
	jobd_fsck_release(&f);
	return rc;
}

/* --- cluster ------------------------------------------------------------- */

static void print_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
	fflush(stdout);
}

/* Moves the deployment's slot to another primary while jobd runs. */
static int cmd_cluster(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *to = NULL;
	bool dry_run = false;
	int opt, rc;

	if (argc < 2 || strcmp(argv[1], "move") != 0)
		return bad_usage(argv, false);
	argc--;
	argv++;
	argv[0] = "cluster";
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 't')
			to = optarg;
		else if (opt == 'n')
			dry_run = true;
		else
			return bad_usage(argv, true);
	}
	if (optind != argc || !to)
		return bad_usage(argv, false);
	if ((rc = connect_store(ctl)))
		return rc;
	if (jobd_store_move(ctl->st, to, ctl->actor, dry_run, print_line,
			    NULL) < 0)
		return store_failed(ctl);
	return 0;
}

/* --- key ----------------------------------------------------------------- */

static void print_key(const char *key, int64_t id, void *arg)
{
	(void)arg;
	printf("%s %lld\n", key, (long long)id);
}

/* The job of each idempotency key, as a create with it would find it. */
static int cmd_key(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "parent", required_argument, NULL, 'P' },
		{ "scan", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *scan = NULL;
	int64_t parent = 0, *ids;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'P') {
			if (parse_id(optarg, &parent) < 0)
				return EXIT_USAGE;
		} else if (opt == 's') {
			scan = optarg;
		} else {
			return bad_usage(argv, true);
		}
	}
	if (scan ? optind != argc : optind == argc)
		return bad_usage(argv, false);
	if ((rc = connect_store(ctl)))
		return rc;
	if (scan)
		return jobd_store_key_scan(ctl->st, parent, scan, print_key,
					   NULL) < 0 ?
			       store_failed(ctl) :
			       0;
	ids = calloc((size_t)(argc - optind), sizeof(*ids));
	if (!ids) {
		fprintf(stderr, "jobctl: key: out of memory\n");
		return EXIT_UNREACHABLE;
	}
	if (jobd_store_key_ids(ctl->st, parent,
			       (const char *const *)argv + optind,
			       (size_t)(argc - optind), ids) < 0) {
		free(ids);
		return store_failed(ctl);
	}
	/* One line per key, in order: its job's id, or "-". */
	for (int i = 0; i < argc - optind; i++) {
		if (ids[i])
			printf("%lld\n", (long long)ids[i]);
		else {
			printf("-\n");
			rc = EXIT_REFUSED;
		}
	}
	free(ids);
	return rc;
}

/* --- schedules ----------------------------------------------------------- */

/* "2026-11-28T14:39:00.000Z" -> "2026-11-28 14:39:00", "-" for null. */
static void fmt_iso(const json_t *v, char *buf, size_t size)
{
	const char *s = json_string_value(v);

	if (!s)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.10s %.8s", s, s + 11);
}

static int cmd_schedules(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	json_t *list, *s;
	size_t i;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return bad_usage(argv, true);
		json = true;
	}
	if (optind != argc)
		return bad_usage(argv, false);
	if ((rc = connect_store(ctl)))
		return rc;
	list = jobd_schedules_json(ctl->conf, ctl->st);
	if (!list)
		return store_failed(ctl);
	if (json) {
		print_json(list); /* frees it */
		return 0;
	}
	printf("%-20s %-16s %-18s %-19s %-8s %-19s %s\n", "NAME", "CRON",
	       "TIMEZONE", "NEXT RUN (UTC)", "LAST JOB", "LAST TICK (UTC)",
	       "STATUS");
	json_array_foreach(list, i, s)
	{
		const json_t *last = json_object_get(s, "last");
		char next[32], tick[32], job[24] = "-";
		const char *status = "-";

		fmt_iso(json_object_get(s, "next_run"), next, sizeof(next));
		fmt_iso(json_object_get(last, "tick"), tick, sizeof(tick));
		if (json_is_object(last)) {
			snprintf(job, sizeof(job), "%lld",
				 (long long)json_integer_value(
					 json_object_get(last, "id")));
			status = json_string_value(
				json_object_get(last, "status"));
			if (!status)
				status = "(deleted)";
		}
		if (!json_is_true(json_object_get(s, "enabled")))
			snprintf(next, sizeof(next), "(disabled)");
		printf("%-20s %-16s %-18s %-19s %-8s %-19s %s\n",
		       json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "cron")),
		       json_string_value(json_object_get(s, "timezone")), next,
		       job, tick, status);
	}
	if (!json_array_size(list))
		printf("(no [schedule.NAME] in %s)\n",
		       ctl->conf->path ? ctl->conf->path :
					 "the built-in configuration");
	json_decref(list);
	return 0;
}

/* --- operations -------------------------------------------------------- */

/*
 * What OP did to a job, by the status it left the job in (the monitor's
 * words, page/app.js DONE): a stop of a running job is only a request,
 * and saying "stopped" then would send an operator to cancel too soon.
 */
static const char *op_done(int op, int status)
{
	switch (op) {
	case JOBD_OP_STOP:
		return status == JOBD_STOPPING ? "stop requested" : "stopped";
	case JOBD_OP_RESUME:
		return "resumed";
	case JOBD_OP_FORCE_STOP:
		return "force-stopped";
	case JOBD_OP_CANCEL:
		return "canceled";
	case JOBD_OP_RESTART:
		return "restarted";
	case JOBD_OP_LOW_PRIORITY:
		return "set to low priority";
	default:
		return "low priority removed";
	}
}

/* "stop requested: job 42 is Stopping", "job 42 stopped". */
static void print_done(int op, int64_t id, int status)
{
	const char *done = op_done(op, status);

	if (op == JOBD_OP_STOP && status == JOBD_STOPPING)
		printf("%s: job %lld is %s\n", done, (long long)id,
		       jobd_status_label(JOBD_STOPPING));
	else if (op == JOBD_OP_LOW_PRIORITY_OFF)
		printf("job %lld: %s\n", (long long)id, done);
	else
		printf("job %lld %s\n", (long long)id, done);
}

/* For several ids, one line more: "3 stopped, 2 stop requested, 1 refused". */
static void print_op_summary(int op, const struct jobd_op_result *out, size_t n)
{
	const char *seen[4];
	size_t count[4], nseen = 0, refused = 0;
	const char *sep = "";

	for (size_t i = 0; i < n; i++) {
		const char *done;
		size_t k;

		if (!out[i].ok) {
			refused++;
			continue;
		}
		done = op_done(op, out[i].status);
		for (k = 0; k < nseen && strcmp(seen[k], done) != 0; k++)
			;
		if (k == nseen) {
			seen[nseen] = done;
			count[nseen++] = 0;
		}
		count[k]++;
	}
	for (size_t k = 0; k < nseen; k++, sep = ", ")
		printf("%s%zu %s", sep, count[k], seen[k]);
	if (refused)
		printf("%s%zu refused", sep, refused);
	printf("\n");
}

static int cmd_op(struct ctl *ctl, const char *name, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "off", no_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	bool low = strcmp(name, "low-priority") == 0, off = false;
	struct jobd_op_result *out;
	int64_t *ids;
	size_t n;
	int opt, op, rc = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'o' || !low)
			return bad_usage(argv, true);
		off = true;
	}
	if (optind >= argc) {
		fprintf(stderr, "jobctl: %s needs at least one job id\n", name);
		return EXIT_USAGE;
	}
	op = jobd_op_parse(off ? "low-priority-off" : name);
	n = (size_t)(argc - optind);
	ids = calloc(n, sizeof(*ids));
	out = calloc(n, sizeof(*out));
	if (!ids || !out) {
		free(ids);
		free(out);
		return EXIT_REFUSED;
	}
	for (size_t i = 0; i < n; i++)
		if (parse_id(argv[optind + (int)i], &ids[i]) < 0) {
			rc = EXIT_USAGE;
			goto out;
		}
	if ((rc = connect_store(ctl)))
		goto out;
	if (jobd_store_op(ctl->st, (enum jobd_op)op, ctl->actor, ids, n, out) <
	    0) {
		rc = store_failed(ctl);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (out[i].ok) {
			print_done(op, ids[i], out[i].status);
		} else {
			fprintf(stderr, "jobctl: %s\n", out[i].error);
			rc = EXIT_REFUSED;
		}
	}
	if (n > 1)
		print_op_summary(op, out, n);
out:
	free(ids);
	free(out);
	return rc;
}

/*
 * Who operates, for the job's log: --as (an option typed on this command
 * line wins over the environment), $JOBD_USER, $USER, then the user
 * name of the uid, then the uid itself ("uid 1001"): cron and systemd
 * units run without $USER, and "unknown" would tell an auditor nothing.
 * The last two are copied into BUF (getpwuid's answer is static storage).
 */
static const char *default_actor(const char *as, char *buf, size_t size)
{
	const struct passwd *pw;
	const char *u;

	if (as)
		return as;
	if ((u = getenv("JOBD_USER")) && *u)
		return u;
	if ((u = getenv("USER")) && *u)
		return u;
	if ((pw = getpwuid(getuid())) && pw->pw_name && *pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "uid %lu", (unsigned long)getuid());
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "as", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const ops[] = { "stop",   "resume",	"force-stop",
					   "cancel", "restart", "low-priority" };
	struct ctl ctl = { 0 };
	const char *path = NULL, *as = NULL, *cmd;
	char err[512], uid_actor[256];
	int opt, rc = EXIT_USAGE;

	jobd_log_set_ident("jobctl");
	/* A dropped connection is an error to report, not a way to die. */
	signal(SIGPIPE, SIG_IGN);
	/* Options before the command only; the command parses its own. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'a':
			as = optarg;
			break;
		case 'h':
			return usage(stdout, 0);
		case 'V':
			printf("jobctl %s (revision %s, librdkafka %s)\n",
			       PACKAGE_VERSION, JOBD_REVISION,
			       jobd_kafka_version());
			return 0;
		default:
			fprintf(stderr,
				"jobctl: bad option \"%s\" (see jobctl --help)\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr,
			"jobctl: no command given (see jobctl --help)\n");
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	ctl.conf = jobd_conf_load(path, err, sizeof(err));
	if (!ctl.conf) {
		fprintf(stderr, "jobctl: %s\n", err);
		return EXIT_USAGE;
	}
	ctl.actor = default_actor(as, uid_actor, sizeof(uid_actor));
	/* Each command sees its name as argv[0]. */
	argc -= optind;
	argv += optind;
	optind = 0; /* glibc: reinitialise getopt for the command */
	opterr = 0; /* bad_usage() says what was wrong, in one line */
	if (strcmp(cmd, "submit") == 0)
		rc = cmd_submit(&ctl, argc, argv);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(&ctl, argc, argv);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(&ctl, argc, argv);
	else if (strcmp(cmd, "why") == 0)
		rc = cmd_why(&ctl, argc, argv);
	else if (strcmp(cmd, "children") == 0)
		rc = cmd_children(&ctl, argc, argv);
	else if (strcmp(cmd, "logs") == 0)
		rc = cmd_logs(&ctl, argc, argv);
	else if (strcmp(cmd, "stats") == 0)
		rc = cmd_stats(&ctl, argc, argv);
	else if (strcmp(cmd, "send") == 0)
		rc = cmd_send(&ctl, argc, argv);
	else if (strcmp(cmd, "fsck") == 0)
		rc = cmd_fsck(&ctl, argc, argv);
	else if (strcmp(cmd, "key") == 0)
		rc = cmd_key(&ctl, argc, argv);
	else if (strcmp(cmd, "schedules") == 0)
		rc = cmd_schedules(&ctl, argc, argv);
	else if (strcmp(cmd, "cluster") == 0)
		rc = cmd_cluster(&ctl, argc, argv);
	else {
		rc = -1;
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (strcmp(cmd, ops[i]) == 0)
				rc = cmd_op(&ctl, cmd, argc, argv);
		if (rc == -1) {
			fprintf(stderr,
				"jobctl: unknown command \"%s\" (see jobctl --help)\n",
				cmd);
			rc = EXIT_USAGE;
		}
	}
	jobd_store_free(ctl.st);
	jobd_conf_free(ctl.conf);
	return rc;
}
