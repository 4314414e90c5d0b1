/* SPDX-License-Identifier: MIT */
/**
 * DOC: the service manager's descriptor store, a backstop for crashes
 *
 * A live update carries everything across an exec, but a crash (SIGKILL,
 * an OOM kill, a new image that dies) ends the process and closes what it
 * held.  Under a unit with ``FileDescriptorStoreMax=`` and the store asked
 * for (``LUO_FDSTORE=1`` in the unit's environment, or systemd 254's
 * ``$FDSTORE``), the library also keeps copies in systemd's store
 * (``FDSTORE=1`` with ``FDNAME=``):
 *
 * - every preserved **listening** socket, named ``luo.s.SESSION.TOKEN``
 *   (characters outside ``[A-Za-z0-9._+,-]`` of the session written
 *   ``%XX``); removed (``FDSTOREREMOVE=1``) when it is unpreserved or its
 *   session closed.  After a crash systemd restarts the unit and hands it
 *   back; clients that connect meanwhile wait in its backlog instead of
 *   being refused.  The control socket's listener is one of them.
 * - the arena memfd, named ``luo.arena``.  Adopting an arena that ended
 *   without a sealed handover is not implemented: after a crash it is
 *   logged, dropped from the store, and the service starts with a fresh
 *   arena.
 *
 * After a restart the library takes the descriptors named ``luo.*`` from
 * ``$LISTEN_FDS``/``$LISTEN_FDNAMES`` in luo_init() (by name: systemd
 * does not keep the order), and clears those variables when it found
 * any.  The service asks for each with liveupdate_fdstore_retrieve();
 * whatever it has not asked for when it calls luo_notify_ready() is
 * closed and removed from the store.  Established connections are not
 * stored.  See docs/systemd.md.
 */
#ifndef LUO_FDSTORE_H
#define LUO_FDSTORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * liveupdate_fdstore_retrieve() - a descriptor kept through a crash
 * @session: the name of the session it was preserved in.
 * @token: its token there.
 * @fd: set to the descriptor (the caller owns it, FD_CLOEXEC set).
 *
 * For a service started again by its manager after a crash: the listener
 * the previous process preserved under @session and @token, the very
 * socket, with the connections that are waiting in its backlog.
 * Preserve it again as usual; that keeps it in the store.
 *
 * Return: 0; -ENOENT if the store handed back nothing under that name
 * (a first start, a live update, no store, or already retrieved);
 * -EINVAL for a NULL or too long @session or a NULL @fd.
 */
int liveupdate_fdstore_retrieve(const char *session, uint64_t token, int *fd);

#ifdef __cplusplus
}
#endif

#endif /* LUO_FDSTORE_H */
