/* SPDX-License-Identifier: MIT */
/**
 * DOC: libluo
 *
 * Live updates for Linux services: replace the running binary with a new
 * one (execve, same PID) while memory, descriptors and clients carry over.
 * Include this header; it pulls in the rest.
 */
#ifndef LUO_LUO_H
#define LUO_LUO_H

#include <luo/abi.h>
#include <luo/control.h>
#include <luo/device.h>
#include <luo/fdstore.h>
#include <luo/kho.h>
#include <luo/liveupdate.h>
#include <luo/notify.h>
#include <luo/session.h>
#include <luo/update.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * enum luo_log_level - severity of a library message
 * @LUO_LOG_ERR: an operation failed.
 * @LUO_LOG_WARN: something is off but the operation went on.
 * @LUO_LOG_INFO: a milestone (update done, handover adopted).
 * @LUO_LOG_DEBUG: details for developers.
 */
enum luo_log_level {
	LUO_LOG_ERR = 0,
	LUO_LOG_WARN = 1,
	LUO_LOG_INFO = 2,
	LUO_LOG_DEBUG = 3,
};

/**
 * typedef luo_log_fn - receiver of library messages
 * @level: severity.
 * @msg: one line, without a trailing newline.
 * @arg: the pointer given to luo_set_log_handler().
 */
typedef void (*luo_log_fn)(enum luo_log_level level, const char *msg,
			   void *arg);

/**
 * luo_set_log_level() - drop messages less severe than @level
 * @level: the least severe level still emitted (default %LUO_LOG_WARN, or
 *         the LUO_LOG_LEVEL environment variable: err, warn, info, debug).
 */
void luo_set_log_level(enum luo_log_level level);

/**
 * luo_set_log_handler() - send messages somewhere other than stderr
 * @fn: the receiver, or NULL to go back to stderr.
 * @arg: passed to @fn.
 */
void luo_set_log_handler(luo_log_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* LUO_LUO_H */
