// SPDX-License-Identifier: MIT
/*
 * Library messages: one line each, filtered by level, to stderr or to the
 * service's own handler.  Never allocates, so it is safe on error paths.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = -1; /* -1: not read from the environment yet */
static luo_log_fn log_handler;
static void *log_handler_arg;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

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
	if (log_handler)
		log_handler(level, msg, log_handler_arg);
	else
		fprintf(stderr, "luo: %s: %s\n", level_names[level], msg);
}

int luo_reason(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}
