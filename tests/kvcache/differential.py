#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Differential test: kvcache against Debian's memcached, byte for byte.

Starts memcached and kvcache on free loopback ports with the same options,
sends both the same request streams (text and binary protocol, one fresh
connection per case) and compares the replies byte for byte.  Only the
version string and the values of statistics (their names and order are
compared) are normalised; every other deliberate difference is named in
ALLOWED with its reason (docs/kvcache.md explains them).

Modes:
  plain     every case once, no update
  cut       every case once per request, with a live update of kvcache
            (SIGUSR1) while that request is half sent
  updates4  all cases in one run with 4 live updates fired at spread-out
            points while the stream is being sent
  load      as updates4, while background clients set and get their own
            keys on kvcache (values checked, no connection may drop); cas
            values are not compared then (the load uses cas ids too), nor
            the slab and item statistics (which hold the load's items)

Exit status: 0 if every reply matched, 1 on any difference, 77 if
memcached is not installed.
"""
import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# Deliberate differences, by case name: the reason is printed with the case.
ALLOWED = {
    'multiget-600000-hits-one-write':
        'memcached 1.6.18 stops sending values after about 60,000 hits in '
        'one get (and still ends with END); kvcache sends every one',
    'multiget-600000-hits-two-segments':
        'the same, the line arriving in two segments',
    'stats-conns':
        'stats conns is not implemented (kvcache answers ERROR); its names '
        'are descriptor numbers anyway',
}

# Statistics only kvcache has, after memcached's: dropped before comparing.
KVCACHE_ONLY_STATS = {
    b'live_updates': 'live updates of this process (kvcache only)',
    b'live_update_last_blackout_us': 'the last update\'s blackout',
}

SENT_OPAQUE = 0x5E47114E


# ---------------------------------------------------------------- requests

def breq(op, key=b'', ext=b'', val=b'', cas=0, opaque=0, keylen=None,
         extlen=None, bodylen=None, magic=0x80):
    """One binary protocol request; lengths may be forced to be wrong."""
    kl = len(key) if keylen is None else keylen
    el = len(ext) if extlen is None else extlen
    bl = len(ext) + len(key) + len(val) if bodylen is None else bodylen
    return struct.pack('>BBHBBHIIQ', magic, op, kl, el, 0, 0, bl, opaque,
                       cas) + ext + key + val


def bset(op, key, val, flags=0, exp=0, cas=0, opaque=0):
    return breq(op, key, struct.pack('>II', flags, exp), val, cas, opaque)


def bdelta(op, key, delta, initial=0, exp=0, opaque=0):
    return breq(op, key, struct.pack('>QQI', delta, initial, exp),
                opaque=opaque)


B_NOOP_SENTINEL = breq(0x0a, opaque=SENT_OPAQUE)
T_SENTINEL = b'mn\r\n'  # the meta no-op: its answer, MN, is unique

(GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP,
 VERSION, GETK, GETKQ, APPEND, PREPEND, STAT, SETQ, ADDQ, REPLACEQ, DELETEQ,
 INCRQ, DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ, VERBOSITY, TOUCH, GAT,
 GATQ) = range(0x1f)
GATK, GATKQ = 0x23, 0x24


class Case:
    """A request stream: requests are sent in order on one connection.

    end: 'sentinel' (a version / noop request is appended and the reply
    read up to its answer) or 'close' (the server must close).  PAUSE in
    the list makes the requests before it arrive as a separate segment.
    """

    def __init__(self, name, reqs, end='sentinel', binary=False, cut=True):
        self.name, self.reqs, self.end, self.binary = name, reqs, end, binary
        self.cut = cut


PAUSE = object()


def text_cases(big):
    c = []

    def t(name, *reqs, **kw):
        c.append(Case(name, [r if r is PAUSE else
                             (r.encode() if isinstance(r, str) else r)
                             for r in reqs], **kw))

    v1m = b'x' * big  # the largest value memcached stores with -I 1m
    # statistics first: the slab pages used by later cases stay in use
    t('stats', 'stats\r\n')
    t('stats-settings', 'stats settings\r\n')
    t('stats-slabs', 'set a 0 0 1\r\n1\r\nset b 0 0 300\r\n' + 'b' * 300 +
      '\r\n', 'stats slabs\r\n')
    t('stats-items', 'set a 0 0 1\r\n1\r\n', 'stats items\r\n')
    t('stats-sizes', 'stats sizes\r\n')
    t('stats-bogus', 'stats bogus\r\n', 'stats reset\r\n', 'stats detail\r\n',
      'stats detail on\r\n', 'stats detail dump\r\n', 'stats detail off\r\n',
      'stats detail x\r\n', 'stats cachedump 30 1\r\n',
      'stats cachedump 1\r\n', 'stats cachedump x 1\r\n',
      'stats cachedump 200 1\r\n')

    t('stats-conns', 'stats conns\r\n', cut=False)
    # storage commands
    t('set-get', 'set a 5 0 3\r\nabc\r\n', 'get a\r\n', 'gets a\r\n')
    t('set-noreply', 'set a 5 0 3 noreply\r\nabc\r\n', 'get a\r\n')
    t('set-extra-token', 'set a 5 0 3 x\r\nabc\r\n', 'get a\r\n')
    t('set-too-many-tokens', 'set a 5 0 3 noreply x\r\nabc\r\n', 'get a\r\n')
    t('set-too-few-tokens', 'set a 5 0\r\n', 'get a\r\n')
    t('set-bad-flags', 'set a x 0 3\r\nabc\r\n', 'get a\r\n')
    t('set-negative-flags', 'set a -1 0 3\r\nabc\r\n', 'get a\r\n')
    t('set-flags-2^32', 'set a 4294967296 0 3\r\nabc\r\n', 'get a\r\n')
    t('set-flags-max', 'set a 4294967295 0 3\r\nabc\r\n', 'get a\r\n')
    t('set-flags-huge', 'set a 18446744073709551615 0 3\r\nabc\r\n',
      'get a\r\n')
    t('set-flags-overflow', 'set a 18446744073709551616 0 3\r\nabc\r\n',
      'get a\r\n')
    t('set-exptime-negative', 'set a 0 -1 3\r\nabc\r\n', 'get a\r\n')
    t('set-exptime-large', 'set a 0 4294967296 3\r\nabc\r\n', 'get a\r\n')
    t('set-exptime-large2', 'set a 0 4294967295 3\r\nabc\r\n', 'get a\r\n')
    t('set-exptime-minint', 'set a 0 -2147483649 3\r\nabc\r\n', 'get a\r\n')
    t('set-exptime-past-abs', 'set a 0 2592001 3\r\nabc\r\n', 'get a\r\n')
    t('set-exptime-future', 'set a 0 1000 3\r\nabc\r\n', 'get a\r\n')
    t('set-exptime-bad', 'set a 0 x 3\r\nabc\r\n', 'get a\r\n')
    t('set-len-bad', 'set a 0 0 x\r\nabc\r\n', 'get a\r\n')
    t('set-len-negative', 'set a 0 0 -1\r\n', 'get a\r\n')
    t('set-len-huge', 'set a 0 0 4294967299\r\nabc\r\n', 'get a\r\n')
    t('set-bad-chunk', 'set a 0 0 3\r\nabcd\r\n', 'get a\r\n')
    t('set-bad-chunk-noreply', 'set a 0 0 3 noreply\r\nabcde\r\n',
      'get a\r\n')
    t('set-empty', 'set a 0 0 0\r\n\r\n', 'get a\r\n')
    t('set-key-250', 'set ' + 'k' * 250 + ' 0 0 1\r\nx\r\n',
      'get ' + 'k' * 250 + '\r\n')
    t('set-key-251', 'set ' + 'k' * 251 + ' 0 0 1\r\nx\r\n', 'get a\r\n')
    t('set-key-251-noreply', 'set ' + 'k' * 251 + ' 0 0 1 noreply\r\nx\r\n',
      'get a\r\n')
    t('set-largest', b'set a 0 0 %d\r\n' % big + v1m + b'\r\n',
      'get a\r\n')
    t('set-largest-flags', b'set a 1 0 %d\r\n' % (big - 4) + v1m[4:] +
      b'\r\n', 'get a\r\n')
    t('set-too-large-by-1', b'set a 0 0 %d\r\n' % (big + 1) + v1m + b'x\r\n',
      'get a\r\n')
    t('set-too-large-flags', b'set a 1 0 %d\r\n' % (big - 3) + v1m[3:] +
      b'\r\n', 'get a\r\n')
    t('set-too-large-unlinks', 'set a 0 0 3\r\nold\r\n',
      b'set a 0 0 %d\r\n' % (2 * big) + b'y' * (2 * big) + b'\r\n',
      'get a\r\n')
    t('set-too-large-noreply', 'set a 0 0 3\r\nold\r\n',
      b'set a 0 0 %d noreply\r\n' % (2 * big) + b'y' * (2 * big) + b'\r\n',
      'get a\r\n')
    t('add-too-large-keeps', 'set a 0 0 3\r\nold\r\n',
      b'add a 0 0 %d\r\n' % (2 * big) + b'y' * (2 * big) + b'\r\n',
      'get a\r\n')
    t('set-cr-only', 'set a 0 0 3\nabc\r\n', 'get a\r\n')
    t('add', 'add a 0 0 1\r\n1\r\n', 'add a 0 0 1\r\n2\r\n', 'get a\r\n')
    t('add-noreply', 'add a 0 0 1 noreply\r\n1\r\n',
      'add a 0 0 1 noreply\r\n2\r\n', 'get a\r\n')
    t('replace', 'replace a 0 0 1\r\n1\r\n', 'set a 0 0 1\r\n1\r\n',
      'replace a 3 0 1\r\n2\r\n', 'get a\r\n')
    t('append-prepend', 'append a 0 0 1\r\n1\r\n', 'prepend a 0 0 1\r\n1\r\n',
      'set a 7 0 2\r\nmm\r\n', 'append a 0 0 2\r\nzz\r\n',
      'prepend a 9 0 2\r\naa\r\n', 'get a\r\n')
    t('append-noreply', 'set a 0 0 1\r\n1\r\n', 'append a 0 0 1 noreply\r\n2\r\n',
      'get a\r\n')
    t('append-too-large', b'set a 0 0 %d\r\n' % big + v1m + b'\r\n',
      'append a 0 0 10\r\n0123456789\r\n', 'get a\r\n')
    t('cas', 'set a 0 0 1\r\n1\r\n', 'gets a\r\n', 'cas a 0 0 1 1\r\n2\r\n',
      'cas a 0 0 1 999999\r\n3\r\n', 'cas b 0 0 1 1\r\n3\r\n', 'gets a\r\n')
    t('cas-noreply', 'set a 0 0 1\r\n1\r\n', 'cas a 0 0 1 999 noreply\r\n2\r\n',
      'get a\r\n')
    t('cas-bad', 'cas a 0 0 1 x\r\n2\r\n', 'cas a 0 0 1\r\n2\r\n',
      'cas a 0 0 1 -1\r\n2\r\n')
    # retrieval
    t('get-miss', 'get nothere\r\n', 'gets nothere\r\n')
    t('get-multi', 'set a 1 0 1\r\n1\r\nset b 2 0 2\r\n22\r\n',
      'get a b c a\r\n', 'gets b a\r\n')
    t('get-no-key', 'get\r\n', 'gets\r\n', 'get \r\n', 'gat\r\n',
      'gat 10\r\n', 'gats 10\r\n')
    # (memcached drops answers not yet sent with this error: a pause)
    t('get-key-251', 'set a 0 0 1\r\n1\r\n', PAUSE,
      'get a ' + 'k' * 251 + ' a\r\n')
    t('get-many-spaces', 'set a 0 0 1\r\n1\r\n', 'get   a    a  \r\n')
    t('get-lf-only', 'set a 0 0 1\r\n1\r\n', 'get a\n', 'get a\r\r\n')
    t('get-30-keys', 'set a 0 0 1\r\n1\r\n',
      'get ' + ' '.join(['a', 'b'] * 15) + '\r\n')
    t('gat', 'set a 0 0 1\r\n1\r\n', 'gat 100 a b\r\n', 'gats 0 a\r\n',
      'gat x a\r\n', 'gat -1 a\r\n', 'get a\r\n')
    t('touch', 'touch a 10\r\n', 'set a 0 0 1\r\n1\r\n', 'touch a 10\r\n',
      'touch a x\r\n', 'touch a -1\r\n', 'get a\r\n')
    t('touch-noreply', 'set a 0 0 1\r\n1\r\n', 'touch a 10 noreply\r\n',
      'touch a x noreply\r\n', 'touch b 1 noreply\r\n', 'get a\r\n')
    t('touch-bad-tokens', 'touch a\r\n', 'touch a 1 2 3\r\n')
    # delete
    t('delete', 'delete a\r\n', 'set a 0 0 1\r\n1\r\n', 'delete a\r\n',
      'get a\r\n')
    t('delete-0', 'set a 0 0 1\r\n1\r\n', 'delete a 0\r\n',
      'delete a 0 noreply\r\n', 'delete a noreply\r\n')
    t('delete-time', 'set a 0 0 1\r\n1\r\n', 'delete a 5\r\n',
      'delete a 5 noreply\r\n', 'delete a 0 x\r\n', 'get a\r\n')
    t('delete-bad-tokens', 'delete\r\n', 'delete a b c d\r\n')
    t('delete-key-251', 'delete ' + 'k' * 251 + '\r\n',
      'delete ' + 'k' * 251 + ' noreply\r\n')
    # incr / decr
    t('incr-decr', 'set a 0 0 2\r\n10\r\n', 'incr a 5\r\n', 'decr a 100\r\n',
      'incr a 18446744073709551615\r\n', 'get a\r\n')
    t('decr-keeps-length', 'set a 0 0 2\r\n10\r\n', 'decr a 1\r\n', 'get a\r\n',
      'incr a 100\r\n', 'get a\r\n', 'decr a 105\r\n', 'get a\r\n')
    t('decr-long-value', 'set a 0 0 6\r\n100000\r\n', 'decr a 99999\r\n',
      'get a\r\n', 'incr a 9\r\n', 'get a\r\n')
    t('incr-wrap', 'set a 0 0 20\r\n18446744073709551615\r\n', 'incr a 2\r\n',
      'get a\r\n')
    t('incr-grows', 'set a 0 0 1\r\n9\r\n', 'incr a 1\r\n', 'get a\r\n',
      'gets a\r\n')
    t('incr-spaces', 'set a 0 0 4\r\n12  \r\n', 'incr a 1\r\n', 'get a\r\n')
    t('incr-nonnumeric', 'set a 0 0 3\r\nabc\r\n', 'incr a 1\r\n',
      'set b 0 0 3\r\n1 2\r\n', 'incr b 1\r\n', 'set c 0 0 0\r\n\r\n',
      'incr c 1\r\n', 'set d 0 0 21\r\n184467440737095516150\r\n',
      'incr d 1\r\n')
    t('incr-miss', 'incr nothere 1\r\n', 'decr nothere 1\r\n')
    t('incr-bad-delta', 'set a 0 0 1\r\n1\r\n', 'incr a x\r\n',
      'incr a -1\r\n', 'decr a 18446744073709551616\r\n')
    t('incr-noreply', 'set a 0 0 1\r\n1\r\n', 'incr a 1 noreply\r\n',
      'incr a x noreply\r\n', 'set b 0 0 1\r\nx\r\n', 'incr b 1 noreply\r\n',
      'decr zz 1 noreply\r\n', 'get a\r\n')
    t('incr-bad-tokens', 'incr a\r\n', 'incr a 1 2 3\r\n', 'decr\r\n')
    t('incr-key-251', 'incr ' + 'k' * 251 + ' 1\r\n',
      'incr ' + 'k' * 251 + ' 1 noreply\r\n')
    # flush_all
    t('flush-all', 'set a 0 0 1\r\n1\r\n', 'flush_all\r\n', 'get a\r\n',
      'set a 0 0 1\r\n2\r\n', 'get a\r\n')
    t('flush-all-noreply', 'set a 0 0 1\r\n1\r\n', 'flush_all noreply\r\n',
      'get a\r\n')
    t('flush-all-delay', 'set a 0 0 1\r\n1\r\n', 'flush_all 100\r\n',
      'get a\r\n', 'flush_all 0\r\n', 'get a\r\n')
    t('flush-all-bad', 'flush_all x\r\n', 'flush_all x noreply\r\n',
      'flush_all -1\r\n', 'flush_all 1 2 3\r\n', 'flush_all noreply x\r\n')
    # misc
    t('version-extra', 'version x y\r\n')
    t('verbosity', 'verbosity 1\r\n', 'verbosity 0 noreply\r\n',
      'verbosity\r\n', 'verbosity invalid\r\n', 'verbosity -1\r\n',
      'verbosity 1 2\r\n', 'verbosity 1 2 3\r\n', 'verbosity x noreply\r\n',
      'verbosity 0\r\n')
    t('unknown', 'bogus\r\n', 'x\r\n', '\r\n', ' \r\n', 'GETS a\r\n',
      'sets a 0 0 1\r\n')
    t('quit', 'set a 0 0 1\r\n1\r\n', 'quit\r\n', 'get a\r\n', end='close')
    t('quit-extra', 'quit now\r\n', end='close')
    t('http-get', 'GET / HTTP/1.0\r\n', '\r\n', end='close')
    t('http-post-later', 'set a 0 0 1\r\n1\r\n', PAUSE,
      'POST / HTTP/1.1\r\n', end='close')
    t('line-2048-no-newline', b'x' * 2049, end='close')
    t('line-2048-set-no-newline', b'set ' + b'k' * 2100, end='close')
    t('line-long-nonget', b'set ' + b'k' * 3000 + b' 0 0 1\r\n1\r\n',
      'get a\r\n')
    t('line-long-get', 'set a 0 0 1\r\n1\r\n', b'get ' + b'a ' * 3000 +
      b'\r\n')
    mg = b'a ' + b'z' * 100 + b' '  # a hit and a miss
    t('multiget-1mib-one-write', 'set a 0 0 1\r\n1\r\n',
      b'get ' + mg * 10500 + b'\r\n')
    t('multiget-1mib-two-segments', 'set a 0 0 1\r\n1\r\n',
      b'get ' + mg * 5000, PAUSE, mg * 5500 + b'\r\n')
    t('multiget-2mib-three-segments', 'set a 0 0 1\r\n1\r\n',
      b'get ' + mg * 7000, PAUSE, mg * 7000, PAUSE, mg * 7000 + b'\r\n')
    t('multiget-600000-hits-one-write', 'set a 0 0 1\r\n1\r\n',
      b'get ' + b'a ' * 600000 + b'\r\n', cut=False)
    t('multiget-600000-hits-two-segments', 'set a 0 0 1\r\n1\r\n',
      b'get ' + b'a ' * 300000, PAUSE, b'a ' * 300000 + b'\r\n', cut=False)
    t('gat-long-line-no-newline', b'gat 0 ' + b'a ' * 2000, end='close')
    t('multiget-gets-leading-space', 'set a 0 0 1\r\n1\r\n',
      b'  gets ' + b'a ' * 2000 + b'\r\n')
    t('pipelined', 'set a 0 0 1\r\n1\r\nget a\r\nincr a 1\r\ndelete a\r\n'
      'get a\r\nversion\r\n')
    return c


def binary_cases(big):
    c = []

    def b(name, *reqs, **kw):
        c.append(Case(name, list(reqs), binary=True, **kw))

    b('b-stat', breq(STAT))
    b('b-stat-settings', breq(STAT, b'settings'))
    b('b-stat-items', bset(SET, b'a', b'1'), breq(STAT, b'items'))
    b('b-stat-slabs', bset(SET, b'a', b'1'), breq(STAT, b'slabs'))
    b('b-stat-reset', breq(STAT, b'reset'), breq(STAT, b'bogus'),
      breq(STAT, b'detail on'), breq(STAT, b'detail x'), breq(STAT, b'sizes'))
    b('b-set-get', bset(SET, b'a', b'abc', flags=5), breq(GET, b'a'),
      breq(GETK, b'a'), breq(GETQ, b'a'), breq(GETKQ, b'a'), breq(GET, b'z'),
      breq(GETK, b'z'), breq(GETQ, b'z'), breq(GETKQ, b'z'))
    b('b-set-quiet', bset(SETQ, b'a', b'abc'), bset(ADDQ, b'a', b'x'),
      bset(REPLACEQ, b'z', b'x'), breq(GET, b'a'))
    b('b-add-replace', bset(ADD, b'a', b'1'), bset(ADD, b'a', b'2'),
      bset(REPLACE, b'a', b'3'), bset(REPLACE, b'z', b'3'), breq(GET, b'a'))
    b('b-add-cas-missing', bset(ADD, b'a', b'1', cas=5), breq(GET, b'a'))
    b('b-set-cas', bset(SET, b'a', b'1'), bset(SET, b'a', b'2', cas=1),
      bset(SET, b'a', b'2', cas=12345), bset(REPLACE, b'a', b'2', cas=12345),
      bset(SET, b'z', b'2', cas=77), breq(GET, b'a'))
    b('b-append-prepend', bset(SET, b'a', b'mm'), breq(APPEND, b'a',
                                                       val=b'zz'),
      breq(PREPEND, b'a', val=b'aa'), breq(APPEND, b'z', val=b'1'),
      breq(APPENDQ, b'a', val=b'q'), breq(PREPENDQ, b'z', val=b'1'),
      breq(GET, b'a'))
    b('b-delete', bset(SET, b'a', b'1'), breq(DELETE, b'a'),
      breq(DELETE, b'a'), bset(SET, b'a', b'1'), breq(DELETEQ, b'a'),
      breq(DELETEQ, b'a'), bset(SET, b'a', b'1'), breq(DELETE, b'a', cas=999))
    b('b-incr', bdelta(INCR, b'n', 1, 10), bdelta(INCR, b'n', 5),
      bdelta(DECR, b'n', 100), bdelta(INCRQ, b'n', 2), bdelta(DECRQ, b'n', 1),
      breq(GET, b'n'), bdelta(INCR, b'm', 1, 0, 0xffffffff),
      bset(SET, b'x', b'abc'), bdelta(INCR, b'x', 1))
    b('b-incr-keeps-length', bset(SET, b'n', b'10'), bdelta(DECR, b'n', 1),
      breq(GET, b'n'))
    b('b-touch', bset(SET, b'a', b'1', flags=7), breq(TOUCH, b'a',
                                                      struct.pack('>I', 10)),
      breq(TOUCH, b'z', struct.pack('>I', 10)), breq(GAT, b'a',
                                                     struct.pack('>I', 0)),
      breq(GATK, b'a', struct.pack('>I', 0)), breq(GATQ, b'z',
                                                   struct.pack('>I', 0)),
      breq(GATKQ, b'a', struct.pack('>I', 0)))
    b('b-exptime-ffffffff', bset(SET, b'a', b'1', exp=0xffffffff),
      breq(GET, b'a'))
    b('b-flush', bset(SET, b'a', b'1'), breq(FLUSH), breq(GET, b'a'),
      breq(FLUSHQ), breq(FLUSH, ext=struct.pack('>I', 0)))
    b('b-noop-version', breq(NOOP), breq(VERSION))
    # memcached does not know verbosity in binary: unknown, and the body
    # length is swallowed past the extras (so 4 bytes of filler)
    b('b-verbosity', breq(VERBOSITY, ext=struct.pack('>I', 1)), b'\0' * 4,
      breq(VERBOSITY))
    b('b-unknown-op', breq(0x50), breq(0xff))
    b('b-quit', breq(QUIT), breq(NOOP), end='close')
    b('b-quitq', breq(QUITQ), end='close')
    b('b-get-with-extras', breq(GET, b'a', b'1234'), end='close')
    b('b-set-without-extras', breq(SET, b'a', val=b'x'), end='close')
    b('b-incr-without-extras', breq(INCR, b'a'), end='close')
    b('b-flush-2-extras', breq(FLUSH, ext=b'12'), end='close')
    b('b-get-empty-key', breq(GET), end='close')
    b('b-keylen-over-body', breq(GET, b'abc', keylen=10, bodylen=3))
    b('b-bodylen-huge', breq(GET, b'a', bodylen=0x7fffffff), end='close')
    b('b-set-too-large', bset(SET, b'a', b'old'),
      bset(SET, b'a', b'y' * (2 * big)), breq(GET, b'a'))
    b('b-set-largest', bset(SET, b'a', b'y' * big), breq(GET, b'a'),
      bset(SET, b'a', b'y' * (big + 1)), breq(GET, b'a'))
    b('b-key-251', bset(SET, b'k' * 251, b'1'), breq(GET, b'k' * 251),
      end='close')
    # (memcached drops unsent answers when it closes: a pause)
    b('b-mixed-with-text', bset(SET, b'a', b'1'), PAUSE, b'get a\r\n',
      breq(GET, b'a'), end='close')
    return c


# ---------------------------------------------------------------- servers

def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, name, argv, log, ready):
        self.name, self.log = name, log
        for _ in range(20):
            self.port = free_port()
            a = [x.replace('PORT', str(self.port)) for x in argv]
            self.proc = subprocess.Popen(a, stdout=open(log, 'w'),
                                         stderr=subprocess.STDOUT)
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(('127.0.0.1', self.port),
                                             0.2).close()
                    if ready():
                        return
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop()
        raise SystemExit('%s did not start: %s' % (name, open(log).read()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class KvServer(Server):
    def __init__(self, argv, log):
        super().__init__('kvcache', argv, log,
                         lambda: 'fresh start' in open(log).read())
        self.updates = 0

    def update_start(self):
        self.updates += 1
        os.kill(self.proc.pid, signal.SIGUSR1)

    def update_wait(self):
        want = 'live update #%d ' % self.updates
        for _ in range(400):
            if want in open(self.log).read():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.025)
        raise SystemExit('kvcache: update #%d not reported:\n%s' %
                         (self.updates, open(self.log).read()))


# ---------------------------------------------------------------- exchange

def recv_until(s, done, timeout=8):
    """Read until done(buffer) or EOF; returns (bytes, closed)."""
    buf = b''
    end = time.monotonic() + timeout
    while not done(buf):
        left = end - time.monotonic()
        if left <= 0:
            return buf, False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            d = s.recv(1 << 20)
        except ConnectionResetError:
            return buf, True
        if not d:
            return buf, True
        buf += d
    return buf, False


def text_done(buf):
    return buf.endswith(b'MN\r\n')


def bin_done(buf):
    return len(buf) >= 24 and buf[-24] == 0x81 and buf[-23] == NOOP and \
        struct.unpack('>I', buf[-12:-8])[0] == SENT_OPAQUE


def stream_bytes(case):
    data = [r for r in case.reqs if r is not PAUSE]
    if case.end == 'sentinel':
        data.append(B_NOOP_SENTINEL if case.binary else T_SENTINEL)
    return data


def exchange(port, case, cut=None, on_cut=None, after_cut=None):
    """Send a case; cut=(request index, byte) splits the stream there."""
    s = socket.create_connection(('127.0.0.1', port), 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(True)
    got = b''
    reqs = list(case.reqs)
    if case.end == 'sentinel':
        reqs.append(B_NOOP_SENTINEL if case.binary else T_SENTINEL)
    sender_err = []

    def send_all():
        try:
            idx = 0
            for r in reqs:
                if r is PAUSE:
                    time.sleep(0.1)
                    continue
                if cut is not None and idx == cut[0]:
                    s.sendall(r[:cut[1]])
                    time.sleep(0.02)
                    on_cut()
                    after_cut()
                    s.sendall(r[cut[1]:])
                else:
                    s.sendall(r)
                idx += 1
        except OSError as e:
            sender_err.append(e)

    th = threading.Thread(target=send_all)
    th.start()
    done = (lambda b: False) if case.end == 'close' else \
        (bin_done if case.binary else text_done)
    got, closed = recv_until(s, done)
    th.join()
    s.close()
    return got + (b'<closed>' if closed else b'')


def normalise(data, binary):
    """Version strings and statistics values differ by nature."""
    data = re.sub(rb'VERSION [^\r\n]*\r\n', b'VERSION *\r\n', data)
    data = re.sub(rb'STAT ([^ \r\n]+) [^\r\n]*\r\n', rb'STAT \1 *\r\n', data)
    if not binary:
        return data
    out, i = b'', 0
    while i + 24 <= len(data) and data[i] == 0x81:
        op, kl, el = data[i + 1], struct.unpack('>H', data[i + 2:i + 4])[0], \
            data[i + 4]
        bl = struct.unpack('>I', data[i + 8:i + 12])[0]
        body = data[i + 24:i + 24 + bl]
        hdr = bytearray(data[i:i + 24])
        if (op == VERSION or op == STAT) and bl > kl + el:
            body = body[:el + kl] + b'*'
            hdr[8:12] = struct.pack('>I', len(body))
        out += bytes(hdr) + body
        i += 24 + bl
    return out + data[i:]


def flush(port):
    s = socket.create_connection(('127.0.0.1', port), 5)
    s.sendall(b'flush_all\r\n')
    recv_until(s, lambda b: b.endswith(b'\r\n'), 5)
    s.close()


def show(b):
    r = repr(b)
    return r if len(r) < 600 else r[:300] + ' ... ' + r[-300:]


def drop_own_stats(data, binary):
    for name in KVCACHE_ONLY_STATS:
        data = re.sub(rb'STAT ' + name + rb' [^\r\n]*\r\n', b'', data)
        if binary:
            hdr = struct.pack('>BBH', 0x81, STAT, len(name))
            i = data.find(hdr)
            while i >= 0:
                bl = struct.unpack('>I', data[i + 8:i + 12])[0]
                if data[i + 24:i + 24 + len(name)] == name:
                    data = data[:i] + data[i + 24 + bl:]
                    i = data.find(hdr, i)
                else:
                    i = data.find(hdr, i + 1)
    return data


def drop_cas(data, binary):
    """Under load other clients use cas ids too: compare without them."""
    if not binary:
        return re.sub(rb'(VALUE [^ \r\n]+ \d+ \d+) \d+\r\n', rb'\1 *\r\n',
                      data)
    out, i = bytearray(data), 0
    while i + 24 <= len(out) and out[i] == 0x81:
        out[i + 16:i + 24] = bytes(8)
        i += 24 + struct.unpack('>I', bytes(out[i + 8:i + 12]))[0]
    return bytes(out)


UNDER_LOAD = False


def compare(name, want, got, binary, failures):
    w = normalise(want, binary)
    g = normalise(drop_own_stats(got, binary), binary)
    if UNDER_LOAD:
        w, g = drop_cas(w, binary), drop_cas(g, binary)
    if w == g:
        return True
    if name in ALLOWED:
        print('  %s: differs as allowed (%s)' % (name, ALLOWED[name]))
        return True
    failures.append(name)
    print('FAIL %s:\n  memcached: %s\n  kvcache:   %s' % (name, show(w),
                                                            show(g)))
    return False


# ---------------------------------------------------------------- special

def check_conn_limit(args, tmp, failures):
    """-c: the connection over the limit gets memcached's message."""
    mc = Server('memcached', mc_argv(args, ['-c', '32']), tmp + '/mc-c.log',
                lambda: True)
    kv = KvServer(kv_argv(args, ['-c', '32'], 'c'), tmp + '/kv-c.log')
    replies = []
    try:
        for srv in (mc, kv):
            socks, msg = [], b'<none>'
            for _ in range(80):
                s = socket.create_connection(('127.0.0.1', srv.port), 5)
                socks.append(s)
                r, _, _ = select.select([s], [], [], 0.3)
                if r:
                    msg, _ = recv_until(s, lambda b: False, 2)
                    break
            replies.append(msg)
            for s in socks:
                s.close()
    finally:
        mc.stop()
        kv.stop()
    compare('conn-limit', replies[0], replies[1], False, failures)


def check_large_items(args, tmp, failures):
    """-m 64 holds 100 values of 573,440 bytes (chained chunks), as in
    memcached, also across a live update; a 10-byte value after filling
    -m 4 with 100,000-byte ones is stored (pages move between classes)."""
    for mem, n, size, extra in (('64', 100, 573440, None),
                                ('4', 100, 100000, b'small10')):
        mc = Server('memcached', mc_argv(args, ['-m', mem]),
                    tmp + '/mc-big.log', lambda: True)
        kv = KvServer(kv_argv(args, ['-m', mem], 'big'), tmp + '/kv-big.log')
        out = []
        try:
            for srv in (mc, kv):
                s = socket.create_connection(('127.0.0.1', srv.port), 5)
                got = b''
                for i in range(n):
                    v = (b'%05d' % i) * (size // 5)
                    s.sendall(b'set big%d 0 0 %d\r\n%s\r\n' % (i, len(v), v))
                    r, _ = recv_until(s, lambda b: b.endswith(b'\r\n'))
                    got += r
                if srv is kv:
                    kv.update_start()
                    kv.update_wait()
                if extra:
                    s.sendall(b'set %s 0 0 10\r\n0123456789\r\nget %s\r\n'
                              % (extra, extra))
                    r, _ = recv_until(s, lambda b: b.endswith(b'END\r\n'))
                    got += r
                else:
                    for i in range(n):
                        s.sendall(b'get big%d\r\n' % i)
                        r, _ = recv_until(s, lambda b: b.endswith(b'END\r\n'))
                        got += r
                s.close()
                out.append(got)
        finally:
            mc.stop()
            kv.stop()
        compare('large-items-m%s' % mem, out[0], out[1], False, failures)


def check_bad_listen(args, tmp, failures):
    """A bad -l leaves no control socket file behind."""
    log = tmp + '/kv-bad-l.log'
    p = subprocess.run([args.kvcache, '-v', '-l', '999.0.0.1', '-p', '0',
                        '--name', 'kvdiff-badl-%d' % os.getpid()],
                       stdout=open(log, 'w'), stderr=subprocess.STDOUT,
                       timeout=20)
    text = open(log).read()
    m = re.search(r'control socket (\S+)', text)
    if p.returncode == 0 or (m and os.path.exists(m.group(1))):
        failures.append('bad-listen')
        print('FAIL bad-listen: exit %d, log:\n%s' % (p.returncode, text))


# ---------------------------------------------------------------- load

class Load:
    """Clients setting and reading back their own keys on kvcache."""

    def __init__(self, port, n=8):
        self.port, self.stop, self.errors, self.ops = port, False, [], 0
        self.threads = [threading.Thread(target=self.run, args=(i,))
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def run(self, i):
        try:
            s = socket.create_connection(('127.0.0.1', self.port), 5)
            rnd = random.Random(i)
            k = 0
            while not self.stop:
                k += 1
                key = b'load:%d:%d' % (i, k % 50)
                val = b'%d-%d-' % (i, k) + b'v' * rnd.randrange(1, 3000)
                s.sendall(b'set %s 0 0 %d\r\n%s\r\nget %s\r\n' %
                          (key, len(val), val, key))
                want_hit = b'STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n' % (
                    key, len(val), val)
                want_miss = b'STORED\r\nEND\r\n'  # flushed meanwhile
                buf, closed = recv_until(
                    s, lambda b: b.endswith(b'END\r\n'), 30)
                if closed or buf not in (want_hit, want_miss):
                    self.errors.append('client %d: %s' % (i, show(buf)))
                    return
                self.ops += 1
            s.close()
        except OSError as e:
            self.errors.append('client %d: %s' % (i, e))

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


# ---------------------------------------------------------------- main

def mc_argv(args, extra):
    a = [args.memcached, '-U', '0', '-l', '127.0.0.1', '-p', 'PORT', '-t',
         '1', '-I', '1m', '-c', '1024'] + \
        ([] if '-m' in extra else ['-m', '64'])
    if os.geteuid() == 0:
        a += ['-u', 'root']
    return a + extra


def kv_argv(args, extra, tag):
    return [args.kvcache, '-U', '0', '-l', '127.0.0.1', '-p', 'PORT', '-t',
            '1', '-I', '1m', '-c', '1024', '--update-to',
            args.kvcache_v2, '--name', 'kvdiff-%d-%s' % (os.getpid(), tag)
            ] + ([] if '-m' in extra else ['-m', '64']) + extra


def largest_value():
    # memcached's item header with cas (56 bytes), the key "a" and its NUL,
    # the value's "\r\n": what fits in -I 1m.
    return (1 << 20) - 56 - 2 - 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--memcached', default=shutil.which('memcached'))
    ap.add_argument('--kvcache', required=True)
    ap.add_argument('--kvcache-v2', required=True)
    ap.add_argument('--mode', default='plain',
                    choices=['plain', 'cut', 'updates4', 'load'])
    ap.add_argument('--only', help='regular expression of case names')
    args = ap.parse_args()
    if not args.memcached or not os.access(args.memcached, os.X_OK):
        print('memcached is not installed: skipping')
        return 77
    args.kvcache_v2 = os.path.abspath(args.kvcache_v2)
    tmp = tempfile.mkdtemp(prefix='kvdiff-')
    big = largest_value()
    tc, bc = text_cases(big), binary_cases(big)
    # the statistics cases first (see text_cases)
    # (items first: memcached's crawler reclaims flushed items at its own
    # pace, so "stats items" must not follow a case that left one)
    cases = [c for c in tc + bc if 'stat' in c.name and 'items' in c.name] + \
        [c for c in tc + bc if 'stat' in c.name and 'items' not in c.name] + \
        [c for c in tc + bc if 'stat' not in c.name]
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.name)]
    if args.mode == 'load':
        # the load's own items are in kvcache's slab and item statistics
        global UNDER_LOAD
        UNDER_LOAD = True
        cases = [c for c in cases if not re.search('stat.*(items|slabs)',
                                                   c.name)]
    failures = []
    mc = Server('memcached', mc_argv(args, []), tmp + '/mc.log',
                lambda: True)
    kv = KvServer(kv_argv(args, [], 'main'), tmp + '/kv.log')
    load = Load(kv.port) if args.mode == 'load' else None
    runs = 0
    try:
        # (case, cut) pairs: each run is one connection per server
        plan = []
        for c in cases:
            if args.mode == 'cut':
                if not c.cut:
                    continue
                data = [r for r in c.reqs if r is not PAUSE]
                for i, r in enumerate(data):
                    plan.append((c, (i, max(1, len(r) // 2))))
            else:
                plan.append((c, None))
        fire = set()
        if args.mode in ('updates4', 'load'):
            fire = {len(plan) * k // 5 for k in range(1, 5)}
        for n, (c, cut) in enumerate(plan):
            name = c.name if cut is None else '%s@%d' % (c.name, cut[0])
            flush(mc.port)
            flush(kv.port)
            if n in fire:
                # an update fired while this case's stream is sent
                data = [r for r in c.reqs if r is not PAUSE]
                cut = (len(data) // 2, max(1, len(data[len(data) // 2]) // 2))
                name += '+update'
            want = exchange(mc.port, c, cut, lambda: None, lambda: None)
            got = exchange(kv.port, c, cut, kv.update_start,
                           kv.update_wait if cut else None)
            runs += 1
            compare(name, want, got, c.binary, failures)
        if args.mode == 'plain':
            check_conn_limit(args, tmp, failures)
            check_large_items(args, tmp, failures)
            check_bad_listen(args, tmp, failures)
    finally:
        if load:
            load.finish()
        mc.stop()
        kv.stop()
    if load:
        print('load: %d set+get pairs, %d errors' % (load.ops,
                                                     len(load.errors)))
        for e in load.errors[:5]:
            print('  ' + e)
        if load.errors or not load.ops:
            failures.append('load')
    print('%s: %d runs, %d updates, %d differences%s' %
          (args.mode, runs, kv.updates, len(failures),
           ': ' + ' '.join(failures) if failures else ''))
    if kv.proc.returncode not in (0, -signal.SIGTERM):
        print('kvcache exited with %s' % kv.proc.returncode)
        failures.append('exit')
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
