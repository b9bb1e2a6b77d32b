/*
 * store/link: see link.h. Data flow: a command is formatted by hiredis
 * (redisFormatCommandArgv, redisvFormatCommand) into the link's output
 * buffer; a flush writes the buffer to the socket, or through OpenSSL
 * (SSL_write); replies are read (read() or SSL_read()) into hiredis's
 * reader (redisReaderFeed), which hands out whole replies. hiredis does
 * the protocol, the link does the transport.
 *
 * Why not hiredis's own context: Debian 12's hiredis 0.14 has no TLS and
 * no hook for another transport (its context reads and writes the file
 * descriptor itself); hiredis 1.x with hiredis_ssl would have to be built
 * and shipped beside Debian's, and a TLS proxy (stunnel) per host is one
 * more daemon and a plain-text hop. With no redisContext anywhere in
 * jobd, no call can write to a TLS link in clear. docs/design.md, "Redis
 * over TLS", has the measurements.
 *
 * Sockets are blocking with SO_RCVTIMEO and SO_SNDTIMEO, as in hiredis:
 * a request and its reply cost one write and one read, in clear or in
 * TLS. OpenSSL reports a timeout (EAGAIN) and an interrupted call (EINTR)
 * both as "want read/write", told apart by errno; an interrupted call is
 * repeated. The server's certificate is always verified: the CA of
 * [redis] tls_ca or the system's, and the name (tls_server_name, else the
 * address's host) as a DNS name, or as an IP address when it is one.
 */
#include "config.h"

#include "store/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_SIZE 16384 /* bytes a read asks for, as hiredis */

#if OPENSSL_VERSION_NUMBER < 0x30000000L /* 1.1.1, the floor */
#define SSL_R_UNEXPECTED_EOF_WHILE_READING SSL_R_WRONG_VERSION_NUMBER
#endif

struct store_tls {
	SSL_CTX *ctx;		      /* verification, client certificate */
	const struct jobd_conf *conf; /* borrowed: the keys, for messages */
};

struct store_link {
	int fd;			     /* the socket */
	SSL *ssl;		     /* NULL in clear */
	const struct store_tls *tls; /* borrowed; NULL in clear */
	const char *name;	     /* name verified (borrowed), or NULL */
	redisReader *reader;	     /* replies read, not yet handed out */
	char *out;		     /* formatted commands not yet sent */
	size_t out_len, out_cap;     /* bytes */
	int timeout_ms;		     /* per read or write */
	bool failed;		     /* unusable: drop it */
	bool answered;		     /* a reply came */
	char peer[256];		     /* names of a certificate refused */
	char err[512];		     /* why it failed */
};

static void cert_names(X509 *cert, char *buf, size_t size);

/* Keeps the names of the server's certificate when it is refused, for
 * the message (OpenSSL keeps no peer certificate after a failure). */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct store_link *l = ssl ? SSL_get_app_data(ssl) : NULL;

	if (!ok && l && X509_STORE_CTX_get_error_depth(x) == 0)
		cert_names(X509_STORE_CTX_get_current_cert(x), l->peer,
			   sizeof(l->peer));
	return ok;
}

/* --- TLS settings ------------------------------------------------------- */

void store_tls_load_error(const char *section, const char *key,
			  const char *path, const char *want, char *errstr,
			  size_t errstr_size)
{
	char why[256];
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(errstr, errstr_size, "cannot read [%s] %s \"%s\": %s",
			 section, key, path, strerror(errno));
		ERR_clear_error();
		return;
	}
	fclose(f);
	ERR_error_string_n(ERR_get_error(), why, sizeof(why));
	ERR_clear_error();
	snprintf(errstr, errstr_size,
		 "cannot load [%s] %s \"%s\": %s: give a PEM %s", section, key,
		 path, why, want);
}

struct store_tls *store_tls_new(const struct jobd_conf *conf, char *errstr,
				size_t errstr_size)
{
	struct store_tls *tls = calloc(1, sizeof(*tls));

	if (!tls || !(tls->ctx = SSL_CTX_new(TLS_client_method()))) {
		snprintf(errstr, errstr_size,
			 "cannot set up TLS to redis: out of memory");
		free(tls);
		return NULL;
	}
	tls->conf = conf;
	SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, verify_cb);
	/* One read takes what arrived, not one record header at a time. */
	SSL_CTX_set_read_ahead(tls->ctx, 1);
	ERR_clear_error();
	if (conf->redis_tls_ca) {
		if (SSL_CTX_load_verify_locations(tls->ctx, conf->redis_tls_ca,
						  NULL) != 1) {
			store_tls_load_error("redis", "tls_ca",
					     conf->redis_tls_ca,
					     "CA certificate", errstr,
					     errstr_size);
			goto err_free;
		}
	} else if (SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
		snprintf(errstr, errstr_size,
			 "cannot load the system's CA certificates for TLS to "
			 "redis: set [redis] tls_ca");
		goto err_free;
	}
	if (!conf->redis_tls_cert)
		return tls;
	if (SSL_CTX_use_certificate_chain_file(tls->ctx,
					       conf->redis_tls_cert) != 1) {
		store_tls_load_error("redis", "tls_cert", conf->redis_tls_cert,
				     "certificate (chain)", errstr,
				     errstr_size);
		goto err_free;
	}
	if (SSL_CTX_use_PrivateKey_file(tls->ctx, conf->redis_tls_key,
					SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH) {
		store_tls_load_error("redis", "tls_key", conf->redis_tls_key,
				     "private key", errstr, errstr_size);
		goto err_free;
	}
	if (ERR_peek_error() || SSL_CTX_check_private_key(tls->ctx) != 1) {
		ERR_clear_error();
		snprintf(errstr, errstr_size,
			 "[redis] tls_key \"%s\" is not the key of tls_cert "
			 "\"%s\": give the key the certificate was made for",
			 conf->redis_tls_key, conf->redis_tls_cert);
		goto err_free;
	}
	return tls;

err_free:
	store_tls_free(tls);
	return NULL;
}

void store_tls_free(struct store_tls *tls)
{
	if (!tls)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls);
}

/* --- errors ------------------------------------------------------------- */

static void fail(struct store_link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct store_link *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
	l->failed = true;
}

/* The names CERT is for ("DNS:a, IP:127.0.0.1"; else its CN) into BUF. */
static void cert_names(X509 *cert, char *buf, size_t size)
{
	GENERAL_NAMES *names;
	size_t len = 0;

	buf[0] = '\0';
	if (!cert)
		return;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		char ip[INET6_ADDRSTRLEN] = "";
		const unsigned char *d;
		int n;

		if (len >= size)
			break;
		if (gn->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(gn->d.dNSName);
			n = ASN1_STRING_length(gn->d.dNSName);
			len += (size_t)snprintf(buf + len, size - len,
						"%sDNS:%.*s", len ? ", " : "",
						n, (const char *)d);
		} else if (gn->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(gn->d.iPAddress);
			n = ASN1_STRING_length(gn->d.iPAddress);
			if (n == 4 || n == 16)
				inet_ntop(n == 4 ? AF_INET : AF_INET6, d, ip,
					  sizeof(ip));
			len += (size_t)snprintf(buf + len, size - len,
						"%sIP:%s", len ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(names);
	if (!buf[0])
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					  NID_commonName, buf, (int)size);
}

/*
 * The TLS call (handshake, read, write) failed with RET and ERR (errno
 * at the failure): the reason, in words, with what to do when known.
 */
static void tls_fail(struct store_link *l, int ret, int err, const char *what)
{
	const struct jobd_conf *conf = l->tls->conf;
	int e = SSL_get_error(l->ssl, ret);
	unsigned long code = ERR_peek_last_error();
	int reason = ERR_GET_REASON(code);
	long vr = SSL_get_verify_result(l->ssl);
	char why[256];

	ERR_clear_error();
	if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK) {
		if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
		    vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
			fail(l,
			     "TLS: the server's certificate is not for \"%s\" "
			     "(it is for %s): set [redis] tls_server_name to "
			     "a name it holds, or give the server a "
			     "certificate for \"%s\"",
			     l->name, l->peer[0] ? l->peer : "no name",
			     l->name);
		} else if (conf->redis_tls_ca) {
			fail(l,
			     "TLS: cannot verify the server's certificate: %s "
			     "(with [redis] tls_ca \"%s\": is it the CA that "
			     "signed the server's certificate?)",
			     X509_verify_cert_error_string(vr),
			     conf->redis_tls_ca);
		} else {
			fail(l,
			     "TLS: cannot verify the server's certificate: %s "
			     "(with the system's CAs: set [redis] tls_ca to "
			     "the CA that signed it)",
			     X509_verify_cert_error_string(vr));
		}
		return;
	}
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		fail(l, "TLS %s timed out after %d ms", what, l->timeout_ms);
		return;
	}
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (e == SSL_ERROR_SYSCALL && (err == 0 || err == ECONNRESET))) {
		fail(l, "the server closed the connection during TLS %s%s",
		     what,
		     !l->answered && !conf->redis_tls_cert ?
			     " (does it want a client certificate? set "
			     "[redis] tls_cert and tls_key)" :
			     "");
		return;
	}
	if (e == SSL_ERROR_SYSCALL) {
		fail(l, "TLS %s: %s", what, strerror(err));
		return;
	}
	ERR_error_string_n(code, why, sizeof(why));
	if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
	    (!conf->redis_tls_cert &&
	     reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE))
		fail(l,
		     "TLS: the server requires a client certificate (%s, "
		     "during %s): set [redis] tls_cert and tls_key",
		     why, what);
	else if (conf->redis_tls_cert &&
		 (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
		  reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
		  reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
		  reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR))
		fail(l,
		     "TLS: the server refused our client certificate "
		     "[redis] tls_cert \"%s\" (%s, during %s): is it signed "
		     "by a CA the server trusts (tls-ca-cert-file)?",
		     conf->redis_tls_cert, why, what);
	else if (!l->answered && (reason == SSL_R_WRONG_VERSION_NUMBER ||
				  reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
				  reason == SSL_R_UNEXPECTED_EOF_WHILE_READING))
		fail(l,
		     "TLS: %s, during %s (is it a plain port? then write "
		     "redis://, or use the server's tls-port)",
		     why, what);
	else
		fail(l, "TLS %s: %s", what, why);
}

/* A read or write of the clear socket failed with N and ERR (errno). */
static void io_fail(struct store_link *l, ssize_t n, int err)
{
	if (n == 0)
		fail(l, "the server closed the connection");
	else if (err == EAGAIN || err == EWOULDBLOCK)
		fail(l, "no answer within %d ms", l->timeout_ms);
	else
		fail(l, "%s", strerror(err));
}

/* --- connecting ----------------------------------------------------------- */

/* Waits up to MS for a non-blocking connect of FD: 0 or an errno. */
static int connect_wait(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int err = 0, n;
	socklen_t len = sizeof(err);

	do
		n = poll(&pfd, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return ETIMEDOUT;
	if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* A connected TCP socket to ADDR (blocking, no Nagle), or -1 with L's
 * error set. */
static int tcp_open(struct store_link *l, const struct jobd_redis_address *addr)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	char port[16];
	int fd = -1, err = 0, one = 1, rc;

	snprintf(port, sizeof(port), "%d", addr->port);
	rc = getaddrinfo(addr->host, port, &hints, &res);
	if (rc != 0) {
		fail(l, "cannot resolve \"%s\": %s", addr->host,
		     gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno == EINPROGRESS ? connect_wait(fd, l->timeout_ms) :
					     errno;
		if (err == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fail(l, "%s",
		     err == ETIMEDOUT ? "connect timed out" : strerror(err));
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int unix_open(struct store_link *l, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fail(l, "socket path too long");
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fail(l, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

/* The TLS handshake on L's socket, verifying the server as NAME. */
static int tls_start(struct store_link *l, const char *name)
{
	int rc, err;

	l->ssl = SSL_new(l->tls->ctx);
	if (!l->ssl || SSL_set_fd(l->ssl, l->fd) != 1) {
		fail(l, "cannot set up TLS: out of memory");
		return -1;
	}
	SSL_set_app_data(l->ssl, l);
	l->name = name;
	if (is_ip(name)) {
		/* No SNI for an address (RFC 6066); its SAN IP is checked. */
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl), name);
	} else {
		SSL_set_tlsext_host_name(l->ssl, name);
		SSL_set_hostflags(l->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(l->ssl, name);
	}
	do {
		ERR_clear_error();
		errno = 0;
		rc = SSL_connect(l->ssl);
		err = errno;
	} while (rc != 1 && err == EINTR);
	if (rc != 1) {
		tls_fail(l, rc, err, "handshake");
		return -1;
	}
	return 0;
}

struct store_link *store_link_open(const struct jobd_redis_address *addr,
				   struct store_tls *tls, int timeout_ms,
				   char *errstr, size_t errstr_size)
{
	struct store_link *l = calloc(1, sizeof(*l));

	if (!l || !(l->reader = redisReaderCreate())) {
		snprintf(errstr, errstr_size, "out of memory");
		free(l);
		return NULL;
	}
	l->fd = -1;
	l->timeout_ms = timeout_ms;
	if (addr->tls && !tls) {
		fail(l, "no TLS settings for a rediss:// address");
		goto err_free;
	}
	l->fd = addr->unix_socket ? unix_open(l, addr->host) :
				    tcp_open(l, addr);
	if (l->fd < 0)
		goto err_free;
	l->timeout_ms = -1;
	store_link_set_timeout(l, timeout_ms);
	if (addr->tls) {
		l->tls = tls;
		if (tls_start(l, tls->conf->redis_tls_server_name ?
					 tls->conf->redis_tls_server_name :
					 addr->host) < 0)
			goto err_free;
	}
	return l;

err_free:
	snprintf(errstr, errstr_size, "%s", l->err);
	store_link_free(l);
	return NULL;
}

void store_link_free(struct store_link *l)
{
	if (!l)
		return;
	if (l->ssl) {
		/* close_notify, not waiting for the server's. */
		if (!l->failed && SSL_is_init_finished(l->ssl))
			SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	if (l->fd >= 0)
		close(l->fd);
	if (l->reader)
		redisReaderFree(l->reader);
	free(l->out);
	free(l);
}

void store_link_set_timeout(struct store_link *l, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms == l->timeout_ms)
		return;
	l->timeout_ms = ms;
	setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(l->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

const char *store_link_errstr(const struct store_link *l)
{
	return l->err[0] ? l->err : "connection lost";
}

bool store_link_never_answered(const struct store_link *l)
{
	return l->failed && !l->answered;
}

bool store_link_looks_tls(const struct store_link *l)
{
	/* A TLS port resets a client that speaks in clear, or answers it
	 * with bytes that are no reply (take() hints at rediss:// then). */
	return !l->ssl && store_link_never_answered(l) &&
	       (strstr(l->err, "reset by peer") ||
		(strstr(l->err, "protocol error") &&
		 !strstr(l->err, "rediss")));
}

bool store_link_alive(struct store_link *l)
{
	struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
	char b;
	ssize_t n;
	int fl, e, err;

	if (l->failed)
		return false;
	if (!l->ssl) {
		n = recv(l->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n == 0)
			fail(l, "the server closed the connection");
		else if (n > 0)
			fail(l, "the server sent what no command asked for");
		else
			fail(l, "%s", strerror(errno));
		return false;
	}
	if (!SSL_has_pending(l->ssl) && poll(&pfd, 1, 0) == 0)
		return true;
	/*
	 * Records came: session tickets, which OpenSSL takes and then wants
	 * more, or a close_notify, an end of file, a reply nobody asked for.
	 * The socket does not block for that one read: a ticket alone must
	 * not cost a timeout.
	 */
	fl = fcntl(l->fd, F_GETFL);
	if (fl < 0 || fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		fail(l, "%s", strerror(errno));
		return false;
	}
	ERR_clear_error();
	errno = 0;
	n = SSL_read(l->ssl, &b, 1);
	err = errno;
	e = SSL_get_error(l->ssl, (int)n);
	fcntl(l->fd, F_SETFL, fl);
	if (n <= 0 && e == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return true;
	}
	if (n > 0) {
		ERR_clear_error();
		fail(l, "the server sent what no command asked for");
	} else {
		tls_fail(l, (int)n, err, "read");
	}
	return false;
}

/* --- output --------------------------------------------------------------- */

/* Takes the formatted command CMD (LEN bytes, malloc'd) into the output. */
static void out_take(struct store_link *l, char *cmd, int len)
{
	if (len < 0) {
		fail(l, "cannot format a command (bad format or out of "
			"memory)");
		return;
	}
	if (l->out_len == 0) {
		/* The usual case, one command at a time: no copy. */
		free(l->out);
		l->out = cmd;
		l->out_len = l->out_cap = (size_t)len;
		return;
	}
	if (l->out_len + (size_t)len > l->out_cap) {
		size_t cap = (l->out_len + (size_t)len) * 2;
		char *grown = realloc(l->out, cap);

		if (!grown)
			abort(); /* out of memory */
		l->out = grown;
		l->out_cap = cap;
	}
	memcpy(l->out + l->out_len, cmd, (size_t)len);
	l->out_len += (size_t)len;
	free(cmd);
}

void store_link_append_argv(struct store_link *l, int argc, const char **argv,
			    const size_t *lens)
{
	char *cmd = NULL;
	int len = redisFormatCommandArgv(&cmd, argc, argv, lens);

	out_take(l, cmd, len);
}

void store_link_vappend(struct store_link *l, const char *fmt, va_list ap)
{
	char *cmd = NULL;
	int len = redisvFormatCommand(&cmd, fmt, ap);

	out_take(l, cmd, len);
}

void store_link_append(struct store_link *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_link_vappend(l, fmt, ap);
	va_end(ap);
}

int store_link_flush(struct store_link *l)
{
	size_t off = 0;

	if (l->failed)
		return -1;
	while (off < l->out_len) {
		size_t left = l->out_len - off;
		ssize_t n;
		int err;

		if (l->ssl) {
			ERR_clear_error();
			errno = 0;
			n = SSL_write(l->ssl, l->out + off,
				      left > INT32_MAX ? INT32_MAX : (int)left);
			err = errno;
			if (n <= 0) {
				if (err == EINTR)
					continue;
				tls_fail(l, (int)n, err, "write");
				return -1;
			}
		} else {
			n = send(l->fd, l->out + off, left, MSG_NOSIGNAL);
			err = errno;
			if (n < 0 && err == EINTR)
				continue;
			if (n <= 0) {
				io_fail(l, n < 0 ? -1 : 1, err);
				return -1;
			}
		}
		off += (size_t)n;
	}
	l->out_len = 0;
	return 0;
}

/* --- input ---------------------------------------------------------------- */

/* One read into the reader: 0, or -1 with the link failed. */
static int fill(struct store_link *l)
{
	char buf[READ_SIZE];
	ssize_t n;
	int err;

	for (;;) {
		if (l->ssl) {
			ERR_clear_error();
			errno = 0;
			n = SSL_read(l->ssl, buf, sizeof(buf));
			err = errno;
			if (n > 0)
				break;
			if (err == EINTR)
				continue;
			tls_fail(l, (int)n, err, "read");
			return -1;
		}
		n = read(l->fd, buf, sizeof(buf));
		err = errno;
		if (n > 0)
			break;
		if (n < 0 && err == EINTR)
			continue;
		io_fail(l, n, err);
		return -1;
	}
	if (redisReaderFeed(l->reader, buf, (size_t)n) != REDIS_OK) {
		fail(l, "out of memory");
		return -1;
	}
	return 0;
}

/* A whole reply already read into *R (or NULL): 0, or -1 on a protocol
 * error. */
static int take(struct store_link *l, redisReply **r)
{
	void *reply = NULL;

	if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
		fail(l, "protocol error: %s%s", l->reader->errstr,
		     !l->answered && !l->ssl ?
			     " (is it a TLS port? then write rediss://)" :
			     "");
		return -1;
	}
	*r = reply;
	if (reply)
		l->answered = true;
	return 0;
}

int store_link_reply(struct store_link *l, redisReply **r)
{
	*r = NULL;
	if (l->failed)
		return -1;
	/* What was appended goes out first, even when a reply read before
	 * (a message on a subscribed link) answers this call: the caller
	 * may wait for nothing else to send it. */
	if (store_link_flush(l) < 0)
		return -1;
	if (take(l, r) < 0)
		return -1;
	if (*r)
		return 0;
	while (!*r)
		if (fill(l) < 0 || take(l, r) < 0)
			return -1;
	return 0;
}

redisReply *store_link_vcommand(struct store_link *l, const char *fmt,
				va_list ap)
{
	redisReply *r;

	store_link_vappend(l, fmt, ap);
	return store_link_reply(l, &r) < 0 ? NULL : r;
}

redisReply *store_link_command(struct store_link *l, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = store_link_vcommand(l, fmt, ap);
	va_end(ap);
	return r;
}

redisReply *store_link_command_argv(struct store_link *l, int argc,
				    const char **argv, const size_t *lens)
{
	redisReply *r;

	store_link_append_argv(l, argc, argv, lens);
	return store_link_reply(l, &r) < 0 ? NULL : r;
}

int store_link_wait(struct store_link *l, int timeout_ms, redisReply **r)
{
	struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
	int n;

	*r = NULL;
	if (l->failed || take(l, r) < 0)
		return -1;
	if (*r)
		return 1;
	/* OpenSSL may hold decrypted bytes the socket no longer shows. */
	if (!l->ssl || !SSL_has_pending(l->ssl)) {
		n = poll(&pfd, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			return 0;
		if (n < 0) {
			fail(l, "%s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
	}
	if (fill(l) < 0 || take(l, r) < 0)
		return -1;
	return *r ? 1 : 0;
}
