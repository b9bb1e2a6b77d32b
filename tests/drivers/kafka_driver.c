/*
 * kafka_driver: runs the consume role alone, for tests/integration/kafka.sh, until
 * SIGTERM or SIGINT; then prints the consumer's counters on stdout:
 *
 *	kafka_driver -c CONF                consume (and run or join the
 *	                                    embedded broker)
 *	kafka_driver -c CONF --broker-only  only run or join the embedded
 *	                                    broker, refreshing its key
 *	    [--slow MS]                     ... and answer every request for
 *	                                    offsets (ListOffsets, OffsetFetch)
 *	                                    MS late: a slow broker
 *
 * Stand-in until src/jobd.c starts jobd_consumer_start for role consume.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/conf.h"
#include "base/log.h"
#include "kafka/consumer.h"
#include "kafka/kafka.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: kafka_driver -c CONF [--broker-only [--slow MS]]\n");
	return 2;
}

static int wait_signal(const sigset_t *set, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return sigtimedwait(set, NULL, &ts);
}

/* Kafka protocol API keys of the requests for offsets. */
#define API_LIST_OFFSETS 2
#define API_OFFSET_FETCH 9
#define SLOW_DEPTH 1000 /* delayed answers kept queued */

static int broker_only(const struct jobd_conf *conf, const sigset_t *set,
		       int slow_ms)
{
	struct jobd_kafka_broker *b;
	char errstr[512];

	b = jobd_kafka_broker_new(conf, errstr, sizeof(errstr));
	if (!b) {
		fprintf(stderr, "kafka_driver: %s\n", errstr);
		return 1;
	}
	do {
		if (slow_ms > 0 &&
		    (jobd_kafka_broker_delay(b, API_LIST_OFFSETS, slow_ms,
					     SLOW_DEPTH) < 0 ||
		     jobd_kafka_broker_delay(b, API_OFFSET_FETCH, slow_ms,
					     SLOW_DEPTH) < 0)) {
			fprintf(stderr, "kafka_driver: --slow: this process "
					"runs no embedded broker\n");
			jobd_kafka_broker_free(b);
			return 1;
		}
		if (jobd_kafka_broker_tick(b, errstr, sizeof(errstr)) < 0)
			jobd_warn("broker: %s", errstr);
	} while (wait_signal(set, 1000) < 0);
	jobd_kafka_broker_free(b);
	return 0;
}

int main(int argc, char **argv)
{
	struct jobd_consumer_stats s;
	struct jobd_consumer *c;
	struct jobd_conf *conf;
	const char *path = NULL;
	bool only_broker = false;
	int slow_ms = 0;
	char errstr[512];
	sigset_t set;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--broker-only") == 0)
			only_broker = true;
		else if (strcmp(argv[i], "--slow") == 0 && i + 1 < argc)
			slow_ms = atoi(argv[++i]);
		else
			return usage();
	}
	jobd_log_set_ident("kafka_driver");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts */
	conf = jobd_conf_load(path, errstr, sizeof(errstr));
	if (!conf) {
		fprintf(stderr, "kafka_driver: %s\n", errstr);
		return 1;
	}
	if (only_broker) {
		rc = broker_only(conf, &set, slow_ms);
		jobd_conf_free(conf);
		return rc;
	}
	c = jobd_consumer_start(conf, errstr, sizeof(errstr));
	if (!c) {
		fprintf(stderr, "kafka_driver: %s\n", errstr);
		jobd_conf_free(conf);
		return 1;
	}
	while (wait_signal(&set, 1000) < 0)
		;
	jobd_consumer_stats(c, &s);
	jobd_consumer_stop(c);
	printf("messages=%llu created=%llu existed=%llu dead_lettered=%llu "
	       "retries=%llu\n",
	       (unsigned long long)s.messages, (unsigned long long)s.created,
	       (unsigned long long)s.existed,
	       (unsigned long long)s.dead_lettered,
	       (unsigned long long)s.retries);
	jobd_conf_free(conf);
	return rc;
}
