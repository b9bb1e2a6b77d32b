/*
 * fuzz_conf: libFuzzer target for the configuration parser. Any bytes go to
 * jobd_conf_parse; the result, whatever it is, must be freed cleanly and an
 * error must come with a NUL-terminated reason. Run with tests/fuzz/run.sh.
 */
#include "config.h"

#include "base/conf.h"

#include "base/log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	struct jobd_conf *conf;
	char errstr[256];

	/* Unknown keys are common in random input; their warnings are noise. */
	if (!quiet) {
		jobd_log_set_level(JOBD_LOG_ERROR);
		quiet = 1;
	}
	errstr[0] = '\0';
	conf = jobd_conf_parse((const char *)data, size, "fuzz.conf", errstr,
			       sizeof(errstr));
	if (!conf) {
		if (!memchr(errstr, '\0', sizeof(errstr)) || !errstr[0])
			abort();
		return 0;
	}
	/* What finish() promises: built-in types exist, lease > heartbeat. */
	if (!jobd_conf_type(conf, "noop") || conf->lease <= conf->heartbeat)
		abort();
	jobd_conf_free(conf);
	return 0;
}
