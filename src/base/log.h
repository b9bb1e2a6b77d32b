/*
 * log: jobd's own diagnostic lines on stderr ("jobd: warn: ..."), not the
 * per-job logs (those live in Redis, see jobd_store_logs() in store/store.h).
 * Thread-safe: one fprintf per line. Text, or one JSON object per line.
 */
#ifndef JOBD_SRC_BASE_LOG_H
#define JOBD_SRC_BASE_LOG_H

enum jobd_log_level {
	JOBD_LOG_DEBUG,
	JOBD_LOG_INFO,
	JOBD_LOG_WARN,
	JOBD_LOG_ERROR,
};

enum jobd_log_format {
	JOBD_LOG_TEXT, /* "STAMP IDENT: LEVEL: message" */
	JOBD_LOG_JSON, /* {"ts","level","ident","subsystem","msg"} */
};

/* Lines below LEVEL are dropped; default JOBD_LOG_INFO. Any thread. */
void jobd_log_set_level(enum jobd_log_level level);

/* Default JOBD_LOG_TEXT. Any thread. */
void jobd_log_set_format(enum jobd_log_format format);

/* "debug", "info", "warn" or "error" -> its level, else -1. */
int jobd_log_level_parse(const char *s);

/* The name jobd_log_level_parse() reads; static. */
const char *jobd_log_level_name(enum jobd_log_level level);

/* Program name printed before each line; borrowed, must outlive logging. */
void jobd_log_set_ident(const char *ident);

/*
 * From jobd_log_hold() to jobd_log_release(), lines are kept instead of
 * written (64 at most; more are counted); release writes them, with the
 * time they were logged, in the format set by then (the level is the one
 * they were logged at, as for any line). For the reading of the
 * configuration that sets the format. Any thread.
 */
void jobd_log_hold(void);
void jobd_log_release(void);

void jobd_log(enum jobd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define jobd_debug(...) jobd_log(JOBD_LOG_DEBUG, __VA_ARGS__)
#define jobd_info(...) jobd_log(JOBD_LOG_INFO, __VA_ARGS__)
#define jobd_warn(...) jobd_log(JOBD_LOG_WARN, __VA_ARGS__)
#define jobd_error(...) jobd_log(JOBD_LOG_ERROR, __VA_ARGS__)

#endif
