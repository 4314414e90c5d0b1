# SPDX-License-Identifier: MIT
"""The request streams of the differential test (differential.py): every
case sent to memcached and to kvcache alike, text and binary protocol, with
the binary protocol's request builders and opcodes."""
import struct

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
