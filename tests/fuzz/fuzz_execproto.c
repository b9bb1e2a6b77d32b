/*
 * fuzz_execproto: libFuzzer target for the exec handler's stdout line
 * parser. The input is one line. A command must hold what execproto.h
 * promises (progress within 0-100, valid UTF-8 text, compact JSON that
 * parses, child words without blanks, one child run time in range); an
 * INVALID line must carry a printable reason. Run with tests/fuzz/run.sh.
 */
#include "config.h"

#include "handlers/execproto.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"
#include "kafka/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, bool may_be_empty)
{
	if (!s || (!may_be_empty && !s[0]) ||
	    !jobd_codec_valid_utf8(s, strlen(s)))
		abort();
}

static void check_json(const char *s, bool object)
{
	json_error_t jerr;
	json_t *json;

	check_text(s, false);
	json = json_loads(s, JSON_DECODE_ANY, &jerr);
	if (!json || (object && !json_is_object(json)))
		abort();
	json_decref(json);
}

static void check_word(const char *s)
{
	check_text(s, false);
	if (strchr(s, ' ') || strchr(s, '\t'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jobd_exec_line line;
	const char *p;
	int rc;

	rc = jobd_execproto_parse((const char *)data, size, &line);
	if (rc == -EINVAL) {
		if (line.cmd != JOBD_EXEC_INVALID || line.json ||
		    line.child_type)
			abort();
		check_text(line.text, false);
		for (p = line.text; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		jobd_execproto_line_release(&line);
		return 0;
	}
	if (rc != 0)
		abort();
	if (line.cmd != JOBD_EXEC_CHILD &&
	    (line.child_run_at || line.child_delay))
		abort();
	switch (line.cmd) {
	case JOBD_EXEC_PROGRESS:
		if (!(line.progress >= 0.0 && line.progress <= 100.0) ||
		    line.text)
			abort();
		break;
	case JOBD_EXEC_LOG:
		if (line.level < JOBD_LOG_DEBUG || line.level > JOBD_LOG_ERROR)
			abort();
		check_text(line.text, false);
		break;
	case JOBD_EXEC_ERROR:
		if (line.level != JOBD_LOG_ERROR)
			abort();
		check_text(line.text, false);
		break;
	case JOBD_EXEC_CHECKPOINT:
		check_json(line.json, false);
		break;
	case JOBD_EXEC_CHILD:
		check_json(line.json, true);
		check_word(line.child_type);
		check_word(line.child_key);
		/* one run time at most, each within its range */
		if (line.child_run_at < 0 || line.child_delay < 0 ||
		    line.child_run_at > JOBD_EXEC_RUN_TIME_MAX ||
		    line.child_delay > JOBD_EXEC_RUN_TIME_MAX ||
		    (line.child_run_at && line.child_delay))
			abort();
		break;
	default:
		abort();
	}
	jobd_execproto_line_release(&line);
	return 0;
}
