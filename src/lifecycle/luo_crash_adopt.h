/* SPDX-License-Identifier: MIT */
/* Adoption of a crashed process's arena (luo_crash_adopt.c). */
#ifndef LUO_SRC_CRASH_ADOPT_H
#define LUO_SRC_CRASH_ADOPT_H

#include <stdint.h>

/**
 * luo_crash_adopt() - adopt the arena the service manager handed back
 * @reserve: address space to reserve for the arena (luo_init_opts).
 *
 * Called by luo_init() (state lock held for writing) when no live update
 * is coming in.  On success the arena is this image's, the subsystems'
 * incoming values are the crash record's and liveupdate_crash_recovered()
 * is true; the caller sets the state to UPDATED.
 *
 * Return: 0; -ENOENT if no arena came back; any other error after one
 * log line, with no arena (the caller creates a fresh one).
 */
int luo_crash_adopt(uint64_t reserve);

#endif
