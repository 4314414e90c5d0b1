// SPDX-License-Identifier: MIT
/*
 * Library messages: one line each, filtered by level, to stderr or to the
 * service's own handler.  Never allocates, so it is safe on error paths.
 *
 * When stderr is the journal's stream (systemd sets JOURNAL_STREAM to its
 * device and inode), each line starts with its syslog priority, "<3>" for
 * an error, which journald takes as the line's priority and strips.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = -1; /* -1: not read from the environment yet */
static luo_log_fn log_handler;
static void *log_handler_arg;

static const char *const level_names[] = {"error", "warning", "info", "debug"};
/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const char *const journal_prefix[] = {"<3>", "<4>", "<6>", "<7>"};
static int to_journal = -1; /* -1: not looked at yet */

/* Is stderr the stream JOURNAL_STREAM ("DEV:INO") names? */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st))
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

static void emit(enum luo_log_level level, const char *msg);

/* The level LUO_LOG_LEVEL names; an unknown one is said, not ignored. */
static int level_from_env(void)
{
	const char *v = getenv("LUO_LOG_LEVEL");
	char msg[200];

	if (!v || !*v)
		return LUO_LOG_WARN;
	if (!strcmp(v, "err") || !strcmp(v, "error") || !strcmp(v, "0"))
		return LUO_LOG_ERR;
	if (!strcmp(v, "warn") || !strcmp(v, "warning") || !strcmp(v, "1"))
		return LUO_LOG_WARN;
	if (!strcmp(v, "info") || !strcmp(v, "2"))
		return LUO_LOG_INFO;
	if (!strcmp(v, "debug") || !strcmp(v, "3"))
		return LUO_LOG_DEBUG;
	snprintf(
		msg, sizeof(msg),
		"LUO_LOG_LEVEL='%.40s' is not a level: use error (0), warning (1), info (2) or debug (3); using warning",
		v);
	emit(LUO_LOG_WARN, msg);
	return LUO_LOG_WARN;
}

void luo_log_read_env(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_level < 0)
		log_level = level_from_env();
	pthread_mutex_unlock(&log_lock);
}

void luo_set_log_level(enum luo_log_level level)
{
	pthread_mutex_lock(&log_lock);
	log_level = level;
	pthread_mutex_unlock(&log_lock);
}

void luo_set_log_handler(luo_log_fn fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_handler = fn;
	log_handler_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void luo_log(enum luo_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	pthread_mutex_lock(&log_lock);
	if (log_level < 0)
		log_level = level_from_env();
	if ((int)level > log_level) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, msg);
	pthread_mutex_unlock(&log_lock);
}

/* Called with log_lock held. */
static void emit(enum luo_log_level level, const char *msg)
{
	if (to_journal < 0)
		to_journal = stderr_is_journal();
	if (log_handler)
		log_handler(level, msg, log_handler_arg);
	else
		fprintf(stderr, "%sluo: %s: %s\n",
			to_journal > 0 ? journal_prefix[level] : "",
			level_names[level], msg);
}

int luo_reason(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}
