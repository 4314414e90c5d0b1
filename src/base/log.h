/* SPDX-License-Identifier: MIT */
/* One small logging module for the whole library. */
#ifndef LUO_SRC_LOG_H
#define LUO_SRC_LOG_H

#include <stddef.h>

#include <luo/luo.h>

void luo_log(enum luo_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Read LUO_LOG_LEVEL now (luo_init()), so a bad value is said at once. */
void luo_log_read_env(void);

#define pr_err(...) luo_log(LUO_LOG_ERR, __VA_ARGS__)
#define pr_warn(...) luo_log(LUO_LOG_WARN, __VA_ARGS__)
#define pr_info(...) luo_log(LUO_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) luo_log(LUO_LOG_DEBUG, __VA_ARGS__)

/*
 * Record why an incoming handover was refused, for the one error line that
 * luo_init() prints; returns @err so callers can "return luo_reason(...)".
 */
int luo_reason(char *why, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
