/*
 * http/reply: how the monitor answers. Every answer goes through
 * http_send_buf(), which adds the security headers (a strict CSP unless
 * the page set its own, nosniff, no framing, no referrer, no caching
 * unless the caller chose) and counts the status code for
 * jobd_http_requests_total. The API answers JSON, errors included:
 * {"error": "what was wrong"}.
 */
#include "config.h"

#include "http/http_int.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

static const char api_csp[] = "default-src 'none'; frame-ancestors 'none'";

/* Status codes counted for jobd_http_requests_total; the last is "other". */
const int http_counted_codes[HTTP_NCODES] = { HTTP_COUNTED_CODES };

const char *http_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 421:
		return "Misdirected Request";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

void http_count(struct jobd_http *h, int code)
{
	size_t i;

	for (i = 0; i + 1 < HTTP_NCODES; i++)
		if (http_counted_codes[i] == code)
			break;
	h->requests[i]++;
}

void http_send_buf(struct req *q, int code, const char *ctype,
		   struct evbuffer *buf)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(q->r);

	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
	if (!evhttp_find_header(out, "Content-Security-Policy"))
		evhttp_add_header(out, "Content-Security-Policy", api_csp);
	if (!evhttp_find_header(out, "Cache-Control"))
		evhttp_add_header(out, "Cache-Control", "no-store");
	if (!q->counted)
		http_count(q->h, code);
	evhttp_send_reply(q->r, code, http_reason(code), buf);
	evbuffer_free(buf);
}

void http_send_json(struct req *q, int code, json_t *j)
{
	struct evbuffer *buf = evbuffer_new();
	/* "<\/script>": JSON embedded anywhere never closes a script. */
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
					    JSON_ESCAPE_SLASH) :
		      NULL;

	json_decref(j);
	if (!buf) {
		free(s);
		evhttp_send_error(q->r, 500, NULL);
		return;
	}
	if (s) {
		evbuffer_add(buf, s, strlen(s));
		evbuffer_add(buf, "\n", 1);
	} else {
		code = 500;
		evbuffer_add_printf(buf, "{\"error\":\"out of memory\"}\n");
	}
	free(s);
	http_send_buf(q, code, "application/json; charset=utf-8", buf);
}

void http_send_error(struct req *q, int code, const char *fmt, ...)
{
	char msg[512];
	json_t *j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_object();
	/* User input reaches messages through jobd_httpparse_quote() only:
	 * printable ASCII, always valid UTF-8. */
	json_object_set_new(j, "error", json_string(msg));
	http_send_json(q, code, j);
}

void http_refuse(struct req *q, int rc, const char *err, int too_big)
{
	int code = rc == JOBD_HTTPPARSE_TOO_BIG ? too_big :
		   rc == JOBD_HTTPPARSE_NOMEM	? 503 :
						  400;

	http_send_error(q, code, "%s", err);
}

bool http_no_params(struct req *q)
{
	static const char *const none[] = { NULL };
	char err[512];
	int rc = jobd_httpparse_allowed(&q->qs, none, err, sizeof(err));

	if (rc)
		http_refuse(q, rc, err, 400);
	return rc == 0;
}
