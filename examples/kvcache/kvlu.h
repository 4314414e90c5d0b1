/* SPDX-License-Identifier: MIT */
/* kvcache's live update glue (liveupdate.c). */
#ifndef KVLU_H
#define KVLU_H

#include <stdbool.h>
#include <stdint.h>

int kvlu_start(void);
void kvlu_stop(void);
int kvlu_preserve(int fd, uint64_t token);
int kvlu_unpreserve(uint64_t token);
void kvlu_forget(uint64_t token);
int kvlu_take_returned(uint64_t token, int *fd);
int kvlu_update(const char *why);
int kvlu_control_fd(void);
void kvlu_control_dispatch(void);

/* main.c */
int listener_open(void);

#endif /* KVLU_H */
