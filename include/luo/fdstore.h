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
 * - with ``LUO_FDSTORE=connections`` (which implies ``1``), every other
 *   preserved **socket** as well: established connections, datagram and
 *   unix sockets, under the same names, removed in the same way.  One
 *   ``FDSTORE=1`` message per preserve and one ``FDSTOREREMOVE=1`` per
 *   unpreserve (per accept and per close for a server).  Other files are
 *   not stored: a memfd's or a pipe's contents are the process's own
 *   state, which a crash leaves unchecked, whereas a socket's peer is
 *   outside and is lost for good when the socket is closed.  Size
 *   ``FileDescriptorStoreMax=`` for every connection (docs/systemd.md);
 *   past it systemd closes the extra descriptor with a log line and the
 *   service runs on (that one connection just does not survive a crash).
 * - the arena memfd, named ``luo.arena``.  After a crash luo_init()
 *   adopts it if its crash record checks out (see below); the state is
 *   then %LIVEUPDATE_STATE_UPDATED and liveupdate_crash_recovered() says
 *   the data was not frozen.
 *
 * After a restart the library takes the descriptors named ``luo.*`` from
 * ``$LISTEN_FDS``/``$LISTEN_FDNAMES`` in luo_init() (by name: systemd
 * does not keep the order), and clears those variables when it found
 * any.  The service asks for each with liveupdate_fdstore_retrieve();
 * whatever it has not asked for when it calls luo_notify_ready() is
 * closed and removed from the store, and so is what it took and did not
 * preserve again.  What is handed back is untrusted:
 * a ``luo.*`` name the library does not write, a session's file that is
 * not a socket, or a name that comes twice is closed, removed from the
 * store and logged, never handed out.  See docs/systemd.md.
 *
 * The data: a subsystem keeps its u64 current with
 * liveupdate_crash_data_set() (once, when it changes; never per request).
 * The library writes it, with the live update count, into a small record
 * in the arena (two checksummed copies, written alternately; the arena
 * header names it).  After a crash, luo_init() checks the arena as for
 * any incoming handover (header, every block header, the record's
 * checksum, bounds and names; untrusted input) and adopts it: the
 * subsystems get their u64 in their boot callback, every allocation is
 * there to kho_restore(), unclaimed ones are released by
 * liveupdate_finish().  Nothing else comes back: no session (their files
 * other than the sockets in the store are gone), no FDT subtree, no
 * device, no timing (liveupdate_get_timing() says -ENODATA).  Anything that does not check out: one log line, and a fresh
 * arena, never half of one.  The service must check its data before it
 * serves it, since a write may have been cut by the crash.
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
 * socket, with the connections that are waiting in its backlog; with
 * ``LUO_FDSTORE=connections``, also a connected socket, with the bytes
 * its peer sent meanwhile still to read (what the previous process had
 * read but not answered is gone with it).  Preserve it again as usual;
 * that keeps it in the store: luo_notify_ready() removes from the store
 * what was taken and not preserved again by then, and closes (and
 * removes) what was not taken.
 *
 * Return: 0; -ENOENT if the store handed back nothing under that name
 * (a first start, a live update, no store, or already retrieved);
 * -EINVAL for a NULL or too long @session or a NULL @fd.
 */
int liveupdate_fdstore_retrieve(const char *session, uint64_t token, int *fd);

/**
 * liveupdate_fdstore_forget() - a stored socket closed without a preserve
 * @session: the name of the session an earlier image preserved it in.
 * @token: its token there.
 *
 * For a socket this image holds from an earlier one (adopted in a live
 * update, or taken back after a crash) and closes before preserving it
 * again: the earlier image's copy in the service manager's store would
 * otherwise keep the connection open (its peer would never see the end)
 * and take a place in ``FileDescriptorStoreMax=``.  Sends
 * ``FDSTOREREMOVE=1`` for its name when the store is in use, nothing
 * otherwise.  A file that is unpreserved needs no call: that removes it.
 *
 * Return: 0; -EINVAL for a NULL or too long @session.
 */
int liveupdate_fdstore_forget(const char *session, uint64_t token);

struct liveupdate_subsystem;

/**
 * liveupdate_crash_data_set() - keep a subsystem's u64 for a crash
 * @h: the subsystem (registered or not); its name is the key.
 * @data: the value its boot callback gets after a crash (typically the
 *        kho offset of its root); 0 removes it.
 *
 * Cheap (a 5 KiB record written in the arena) but not for every request:
 * call it when the value changes.  Allowed from any thread and from
 * callbacks; it only takes the arena's lock.  Independent of the value
 * prepare hands over in a live update, which is unchanged.
 *
 * Return: 0; -EINVAL for a NULL @h or a bad name; -ENOSPC past
 * %KHO_CRASH_MAX_ENTRIES names; -ENODEV before luo_init(); -EBUSY when
 * the first value is set while the handover is frozen; -ENOMEM.
 */
int liveupdate_crash_data_set(struct liveupdate_subsystem *h, uint64_t data);

/**
 * liveupdate_crash_recovered() - whether this image adopted a crashed arena
 *
 * True from luo_init() on when the arena came back from the service
 * manager's store after a crash and its record checked out (the state is
 * then %LIVEUPDATE_STATE_UPDATED, as after a live update).  The data was
 * not frozen: what was being written at the crash may be half written,
 * and must be checked.  No session came back.
 *
 * Return: 1 or 0.
 */
int liveupdate_crash_recovered(void);

#ifdef __cplusplus
}
#endif

#endif /* LUO_FDSTORE_H */
