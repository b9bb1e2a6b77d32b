/*
 * deadletter: a dead letter's record (see deadletter.h for its forms).
 */
#include "config.h"

#include "kafka/deadletter.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_REASON "jobd-reason"
#define H_SOURCE "jobd-source"
#define H_SIZE "jobd-original-size"
#define H_SHA256 "jobd-original-sha256"
#define H_TRUNCATED "jobd-truncated"
#define SHA256_HEX 64

/* jobd's headers at most, after the message's own. */
#define OWN_HEADERS 5

static size_t header_size(const char *name, const void *value, size_t len)
{
	return strlen(name) + (value ? len : 0) + JOBD_DEADLETTER_HEADER_BYTES;
}

size_t jobd_deadletter_size(const struct jobd_kafka_out *out)
{
	size_t n = (out->key ? out->key_len : 0) + (out->value ? out->len : 0);

	for (size_t i = 0; i < out->nheaders; i++)
		n += header_size(out->headers[i].name, out->headers[i].value,
				 out->headers[i].len);
	return n;
}

const char *jobd_deadletter_form_name(enum jobd_deadletter_form form)
{
	switch (form) {
	case JOBD_DEADLETTER_WHOLE:
		return "whole";
	case JOBD_DEADLETTER_TRUNCATED:
		return "truncated";
	case JOBD_DEADLETTER_EMPTIED:
		return "emptied";
	case JOBD_DEADLETTER_REFERENCE:
		return "reference";
	}
	return "?";
}

/* The SHA-256 of LEN bytes at BUF into HEX (65 bytes). 0 or -ENOMEM. */
static int sha256_hex(const void *buf, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(buf ? buf : "", len, md, &n, EVP_sha256(), NULL) ||
	    n * 2 != SHA256_HEX)
		return -ENOMEM; /* OpenSSL fails here only for memory */
	for (unsigned int i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[SHA256_HEX] = '\0';
	return 0;
}

static void add(struct jobd_deadletter *dl, const char *name, const void *value,
		size_t len)
{
	dl->headers[dl->out.nheaders++] =
		(struct jobd_kafka_header){ name, value, len };
}

int jobd_deadletter_init(struct jobd_deadletter *dl, const char *topic,
			 const struct jobd_kafka_message *msg,
			 const struct jobd_kafka_header *hdrs, size_t nhdrs,
			 const char *reason, const char *source,
			 size_t max_bytes, enum jobd_deadletter_form least)
{
	size_t value = msg->value ? msg->len : 0;
	size_t kept, cut;
	const char *truncated;

	memset(dl, 0, sizeof(*dl));
	dl->original = value;
	snprintf(dl->size, sizeof(dl->size), "%zu", value);
	dl->headers = calloc(nhdrs + OWN_HEADERS, sizeof(*dl->headers));
	if (!dl->headers)
		return -ENOMEM;
	dl->out = (struct jobd_kafka_out){
		.topic = topic,
		.partition = -1,
		.headers = dl->headers,
	};

	/* What every form but the reference keeps whole. */
	kept = (msg->key ? msg->key_len : 0) +
	       header_size(H_REASON, reason, strlen(reason)) +
	       header_size(H_SOURCE, source, strlen(source));
	for (size_t i = 0; i < nhdrs; i++)
		kept += header_size(hdrs[i].name, hdrs[i].value, hdrs[i].len);
	cut = value;
	if (least <= JOBD_DEADLETTER_WHOLE && kept + value <= max_bytes) {
		dl->form = JOBD_DEADLETTER_WHOLE;
	} else {
		kept += header_size(H_SIZE, dl->size, strlen(dl->size)) +
			header_size(H_SHA256, "", SHA256_HEX) +
			header_size(H_TRUNCATED, "value", strlen("value"));
		if (kept > max_bytes || least == JOBD_DEADLETTER_REFERENCE)
			dl->form = JOBD_DEADLETTER_REFERENCE;
		else if (least == JOBD_DEADLETTER_EMPTIED)
			dl->form = JOBD_DEADLETTER_EMPTIED;
		else
			dl->form = JOBD_DEADLETTER_TRUNCATED;
		if (dl->form == JOBD_DEADLETTER_TRUNCATED &&
		    value > max_bytes - kept)
			cut = max_bytes - kept;
		else if (dl->form == JOBD_DEADLETTER_EMPTIED)
			cut = 0;
		if (sha256_hex(msg->value, value, dl->sha256) < 0) {
			jobd_deadletter_release(dl);
			return -ENOMEM;
		}
	}

	if (dl->form == JOBD_DEADLETTER_REFERENCE) {
		dl->out.value = "";
		truncated = "record";
	} else {
		dl->out.key = msg->key;
		dl->out.key_len = msg->key ? msg->key_len : 0;
		dl->out.value =
			dl->form == JOBD_DEADLETTER_EMPTIED ? "" : msg->value;
		dl->out.len = cut;
		for (size_t i = 0; i < nhdrs; i++)
			add(dl, hdrs[i].name, hdrs[i].value, hdrs[i].len);
		truncated = "value";
	}
	add(dl, H_REASON, reason, strlen(reason));
	add(dl, H_SOURCE, source, strlen(source));
	if (dl->form != JOBD_DEADLETTER_WHOLE) {
		add(dl, H_SIZE, dl->size, strlen(dl->size));
		add(dl, H_SHA256, dl->sha256, SHA256_HEX);
		add(dl, H_TRUNCATED, truncated, strlen(truncated));
	}
	return 0;
}

void jobd_deadletter_release(struct jobd_deadletter *dl)
{
	free(dl->headers);
	dl->headers = NULL;
	dl->out.headers = NULL;
	dl->out.nheaders = 0;
}
