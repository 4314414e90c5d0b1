/* SPDX-License-Identifier: MIT */
/*
 * kvcache: a memcached-compatible cache whose whole data set, every client
 * connection and every half-received request survive a live update.
 *
 * Everything that must outlive an image lives in handover memory and is
 * addressed by offsets:
 *
 *   struct kv_root    (one kho allocation; the subsystem's u64 points here)
 *     -> store region (one kho allocation: struct kv_store header, hash
 *        buckets, slab pages holding the items)
 *     -> connection table (one kho allocation: struct kv_conn_rec[])
 *          -> per-connection input and output buffers (kho allocations)
 *
 * Offsets inside the store region are relative to its start; everything
 * else is a kho offset checked with kho_restore().  See docs/kvcache.md.
 */
#ifndef KV_H
#define KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef KV_VERSION
#define KV_VERSION 1
#endif

#define KV_STR_(x) #x
#define KV_STR(x) KV_STR_(x)
/* Numeric first: libmemcached parses "VERSION major.minor.micro". */
#define KV_VERSION_STRING "1.6.0-kvcache-v" KV_STR(KV_VERSION)

#define KEY_MAX_LENGTH 250
#define KV_MAX_CLASSES 64
#define KV_CLASS_MIN 96		     /* smallest chunk, bytes */
#define KV_REALTIME_MAXDELTA 2592000 /* 30 days: larger exptimes are absolute */

/* ---- settings (main.c) ---- */

struct kv_settings {
	uint16_t port;
	const char *addr;
	uint64_t mem_limit;	/* -m, bytes */
	uint32_t maxconns;	/* -c */
	uint32_t item_size_max; /* -I, bytes */
	int verbose;		/* -v */
	double factor;		/* -f */
	const char *name;	/* control socket name */
	const char *update_to;	/* --update-to */
	bool trust_carrier;	/* --trust-carrier: LUO_INIT_TRUST_CARRIER */
	bool inherit; /* --inherit or LUO_EXEC_INHERIT=1: LUO_INIT_EXEC_INHERIT,
			 the clients' epoll instance preserved */
	char self[4096]; /* our binary, for updates */
	char **argv;	 /* for the exec of an update */
};

extern struct kv_settings settings;

/* ---- time ---- */

/** kv_now() - wall-clock seconds, stable across updates (unlike uptime). */
int64_t kv_now(void);
uint64_t kv_mono_ns(void);

/* ---- the store (store region) ---- */

/*
 * An item in a slab chunk.  Key, then value followed by "\r\n".  The
 * header is 56 bytes, memcached's own (with cas), so that whatever
 * memcached stores in -I also fits here (see item_mc_total()).
 */
struct kv_item {
	uint64_t h_next; /* hash chain, region offset or 0 */
	uint64_t prev;	 /* LRU, towards the head (most recent) */
	uint64_t next;	 /* LRU, towards the tail */
	uint64_t cas;
	uint32_t exptime; /* absolute wall-clock seconds, 0 = never */
	uint32_t time;	  /* last stored (for delayed flush_all) */
	uint32_t flags;	  /* client flags */
	uint32_t nbytes;  /* value length including the trailing "\r\n" */
	uint8_t nkey;
	uint8_t clsid;
	uint16_t iflags;
	uint32_t refcount; /* output queue entries sending its value */
	char data[];	   /* key, then value */
};

#define KV_MC_ITEM_HDR 56 /* memcached's item header with cas */

#define ITEM_LINKED 1u
#define ITEM_SLABBED 2u /* on a free list */
#define ITEM_FETCHED 4u
#define ITEM_CHUNKED 8u /* value in a chain of chunks (chunks.c) */
#define ITEM_CHUNK 16u	/* a chunk of such a chain, not an item */

static inline char *item_key(struct kv_item *it)
{
	return it->data;
}

static inline char *item_value(struct kv_item *it)
{
	return it->data + it->nkey;
}

static inline size_t item_total(size_t nkey, size_t nbytes)
{
	return sizeof(struct kv_item) + nkey + nbytes;
}

/* A chunked item's own chunk: header, key, the first chunk's offset. */
static inline size_t item_head_total(size_t nkey)
{
	return sizeof(struct kv_item) + ((nkey + 7) & ~(size_t)7) + 8;
}

/*
 * The size memcached gives the same item (header, key and its NUL, the
 * flags suffix when non-zero, value): what -I limits, what picks the size
 * class and what "bytes" counts, so that the answers match memcached's.
 * Never smaller than item_total().
 */
static inline size_t item_mc_total(size_t nkey, uint32_t flags, size_t nbytes)
{
	return KV_MC_ITEM_HDR + nkey + 1 + (flags ? 4 : 0) + nbytes;
}

struct kv_class {
	uint32_t size; /* chunk size */
	uint32_t perslab;
	uint64_t free_head; /* free chunks, linked by h_next */
	uint64_t nfree;
	uint64_t lru_head, lru_tail;
	uint64_t nitems;
	uint64_t npages;
	uint64_t evictions;
	uint64_t requested; /* memcached's size of the items linked now */
	uint64_t reclaimed; /* expired or flushed chunks reused */
};

/* Counters that persist across updates (they live in the store header). */
struct kv_stats {
	uint64_t total_items, curr_items, bytes;
	uint64_t evictions, reclaimed, expired_unfetched, evicted_unfetched;
	uint64_t total_connections;
	uint64_t cmd_get, cmd_set, cmd_flush, cmd_touch;
	uint64_t get_hits, get_misses, get_expired, get_flushed;
	uint64_t delete_hits, delete_misses;
	uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
	uint64_t cas_hits, cas_misses, cas_badval;
	uint64_t touch_hits, touch_misses;
	uint64_t bytes_read, bytes_written;
	uint64_t rejected_connections, conn_errors;
	uint64_t live_updates;
	uint64_t last_blackout_ns;
	uint64_t slabs_moved; /* pages moved between classes */
};

#define KV_STORE_MAGIC 0x6b76636163686531ULL /* "kvcache1" */
#define KV_STORE_LAYOUT 3 /* 2: 56-byte items with a refcount; 3: wip_item */

/* At offset 0 of the store region. */
struct kv_store {
	uint64_t magic;
	uint32_t layout;
	uint32_t nclasses;
	uint64_t region_size;
	uint64_t hash_off, hash_buckets; /* power of two */
	uint64_t slab_off, page_size, npages, pages_used;
	uint64_t mem_limit;
	uint64_t item_size_max;
	uint64_t cas_counter;
	uint64_t flush_cas;	 /* items with cas <= this are flushed */
	int64_t flush_at;	 /* delayed flush_all: items older die then */
	int64_t started;	 /* wall clock at the first image's start */
	uint64_t rebalance_next; /* the next page slabs_rebalance() looks at */
	struct kv_class cls[KV_MAX_CLASSES];
	struct kv_stats stats;
	/*
	 * The linked item whose value is being changed in place (incr, decr),
	 * 0 otherwise: after a crash it may be half written, and is dropped.
	 * Every other write builds a new item whole before linking it.
	 */
	uint64_t wip_item;
};

extern struct kv_store *store;
extern char *store_base; /* start of the store region in this image */

/* slabs.c */
int slabs_create(uint64_t mem_limit, uint32_t item_size_max, double factor,
		 void **region, size_t *size);
int slabs_adopt(void *region, size_t size);
unsigned slabs_clsid(size_t total);
struct kv_item *slabs_alloc(size_t total, unsigned clsid);
void slabs_free(struct kv_item *it);
void slabs_carve(uint64_t page, unsigned clsid);
bool slabs_rebalance(unsigned dst);

/**
 * item_at() - an item from a region offset, or NULL if it cannot be one
 * @off: offset in the store region.
 *
 * Every offset read from handover memory goes through here: the previous
 * image may have been buggy, so an offset outside the slab pages (or not
 * 8-byte aligned) is treated as the end of a list, never dereferenced.
 */
static inline struct kv_item *item_at(uint64_t off)
{
	uint64_t lo = store->slab_off,
		 hi = store->slab_off + store->npages * store->page_size;

	if (off < lo || off + sizeof(struct kv_item) > hi || (off & 7))
		return NULL;
	return (struct kv_item *)(store_base + off);
}

static inline uint64_t item_off(const struct kv_item *it)
{
	return it ? (uint64_t)((const char *)it - store_base) : 0;
}

/**
 * item_valid() - whether an item from item_at() is a whole chunk of its class
 * @it: the item.
 *
 * Checks the class, that the item starts on a chunk boundary of its page
 * (so key and value stay inside the slab pages) and that its lengths fit
 * the chunk.  Used before an item found by following links is trusted.
 *
 * Return: true if it can be used.
 */
static inline bool item_valid(const struct kv_item *it)
{
	uint64_t in_page = (item_off(it) - store->slab_off) % store->page_size;
	const struct kv_class *c;

	if (it->clsid >= store->nclasses)
		return false;
	c = &store->cls[it->clsid];
	return in_page % c->size == 0 &&
	       in_page + c->size <= store->page_size &&
	       it->nkey <= KEY_MAX_LENGTH &&
	       ((it->iflags & ITEM_CHUNKED)
			? item_head_total(it->nkey) <= c->size
			: item_total(it->nkey, it->nbytes) <= c->size);
}

/* hash.c */
uint64_t hash_key(const char *key, size_t nkey);
struct kv_item *hash_find(const char *key, size_t nkey, uint64_t hv);
void hash_insert(struct kv_item *it, uint64_t hv);
void hash_remove(struct kv_item *it, uint64_t hv);

/* lru.c */
void lru_link(struct kv_item *it);
void lru_unlink(struct kv_item *it);
void lru_bump(struct kv_item *it);
struct kv_item *lru_tail(unsigned clsid);

/* items.c */
enum store_op { OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND, OP_CAS };
enum store_result {
	STORE_STORED,
	STORE_NOT_STORED,
	STORE_EXISTS,
	STORE_NOT_FOUND,
	STORE_TOO_LARGE,
	STORE_NO_MEMORY,
};
enum delta_result { DELTA_OK, DELTA_NON_NUMERIC, DELTA_NOT_FOUND, DELTA_EOM };

int64_t item_exptime(int64_t exptime);
struct kv_item *item_alloc(const char *key, size_t nkey, uint32_t flags,
			   int64_t exptime, size_t nbytes);
void item_discard(struct kv_item *it);
struct kv_item *item_get(const char *key, size_t nkey, bool count);
void item_count_lookup(const struct kv_item *it, bool touch);
enum store_result item_store(struct kv_item *it, enum store_op op,
			     uint64_t cas);
bool item_delete(const char *key, size_t nkey);
enum delta_result item_delta(const char *key, size_t nkey, bool incr,
			     uint64_t delta, uint64_t *result);
void items_flush(int64_t delay);
void item_unlink(struct kv_item *it);
void item_release(struct kv_item *it);
struct kv_item *item_chunk_get(size_t total, unsigned clsid);

/* chunks.c: large items (over half a page) in chains of chunks */
bool chunks_alloc(struct kv_item *head, size_t nbytes);
void item_free(struct kv_item *it);
const char *item_span(struct kv_item *it, uint32_t pos, uint32_t *len);
void item_write(struct kv_item *it, uint32_t pos, const void *src, size_t n);
void item_copy(struct kv_item *dst, uint32_t dpos, struct kv_item *src,
	       uint32_t spos, size_t n);
bool item_set_failed(const char *key, size_t nkey);

/* ---- connections (conn.c) ---- */

enum conn_rec_state { CONN_FREE = 0, CONN_OPEN = 1, CONN_ZOMBIE = 2 };

#define CONN_CLOSE_AFTER_WRITE 1u
#define CONN_PROTO_BINARY 2u /* as memcached: chosen by the first byte */
#define CONN_PROTO_TEXT 4u
/* Inside recv(): what it returns is not yet counted in rlen. */
#define CONN_IN_RECV 8u
/*
 * Read from or written to since the last freeze: set before the call, so
 * that after a rollback only these are compared with their sockets.
 */
#define CONN_IO 16u

/* One per connection slot, in handover memory. */
struct kv_conn_rec {
	uint32_t state;
	uint32_t flags;
	uint64_t token;
	uint64_t rbuf_off; /* kho offsets */
	uint64_t wbuf_off;
	/*
	 * Input: [0, rlen) unprocessed; in_seq counts (modulo 2^32) every
	 * byte ever taken into the buffer, which is the kernel's count of
	 * bytes read from the socket (sock_counts()) once the read is
	 * complete.  One 64-bit store publishes both (conn_readable()).
	 */
	union {
		struct {
			uint32_t rlen;
			uint32_t in_seq;
		};
		uint64_t in_word;
	};
	uint32_t rcap;
	uint32_t wcap, wlen, wpos; /* output text: [wpos, wlen) unsent */
	uint32_t oq_cap;	   /* output queue: entries allocated */
	uint64_t oq_off;	   /* kho offset of struct kv_oent[oq_cap] */
	union {
		struct {
			uint32_t oq_head, oq_tail; /* [head, tail) to send */
		};
		uint64_t oq_word;
	};
	uint64_t pending;    /* bytes queued and not yet sent */
	uint64_t swallow;    /* bytes of a refused value still to drop */
	uint32_t get_resume; /* multi-get cut by the output cap: offset
				      of its next key in the line, 0 = none */
	/*
	 * rdone: of [0, rlen), answered already by the batch being run, with
	 * RDONE_BATCH set while one runs; done_q: out_seq + pending when
	 * rdone was last set (output queued after it belongs to a request not
	 * answered yet).  One store of done_word sets both (conn_mark_done()).
	 */
	union {
		struct {
			uint32_t rdone;
			uint32_t done_q;
		};
		uint64_t done_word;
	};
	int32_t ep_fd;	    /* descriptor number its epoll
				      registration is keyed by (--inherit) */
	uint32_t ep_events; /* that registration's events, 0 = none */
	/*
	 * Output: out_seq counts (modulo 2^32) every byte the queue gave to
	 * sendmsg(); when out_stage has OUT_STAGED set, the last send is
	 * counted but not yet taken off the queue: the head becomes the
	 * entry out_stage names, and that entry becomes out_stage_ent
	 * (conn_flush(), redone by out_redo() after a rollback).  One 64-bit
	 * store of out_word moves both.
	 */
	union {
		struct {
			uint32_t out_seq;
			uint32_t out_stage;
		};
		uint64_t out_word;
	};
	uint64_t out_stage_ent; /* a struct kv_oent's pos and len */
};

#define OUT_STAGED (1u << 31)
#define RDONE_BATCH (1u << 31)

/* Two u32 fields of a record that one 64-bit store writes together. */
union kv_pair {
	struct {
		uint32_t lo, hi;
	};
	uint64_t word;
};

/**
 * conn_mark_done() - the batch has answered its input up to @pos
 * @r: the connection's record.
 * @pos: bytes of [0, rlen) answered, with every answer queued.
 *
 * A new image killed after this store is resumed from @pos by the old
 * one, with the output queued since dropped (conns_take_back()).
 */
static inline void conn_mark_done(struct kv_conn_rec *r, uint32_t pos)
{
	union kv_pair w = {.lo = pos | RDONE_BATCH,
			   .hi = r->out_seq + (uint32_t)r->pending};

	__atomic_store_n(&r->done_word, w.word, __ATOMIC_RELEASE);
}

/*
 * One piece of output, in order: text in the connection's wbuf (item 0,
 * pos an offset in wbuf) or part of an item's value, sent from the item
 * itself (item a store region offset, pos an offset from the value's
 * start).  An item entry holds a reference (kv_item.refcount), so the
 * item's chunk is neither reused nor changed until it has been sent.
 */
struct kv_oent {
	uint64_t item;
	union {
		struct {
			uint32_t pos, len;
		};
		uint64_t span; /* both, in one store */
	};
};

/* Stop parsing a connection's requests while this much is unsent. */
#define KV_OUT_CAP (1u << 20)
/*
 * Values up to this size are copied into the output text, larger ones
 * referenced: at most KV_OUT_CAP / KV_COPY_MAX queue entries per
 * connection, whatever the answers.
 */
#define KV_COPY_MAX 512u

/* This image's view of a connection. */
struct conn {
	struct kv_conn_rec *rec;
	int fd;
	char *rbuf, *wbuf;
	struct kv_oent *oq;
	uint32_t events;
	bool noreply;
	bool preserved; /* in this image's session (see conns_represerve()) */
	size_t need; /* size of the incomplete request at the input's start */
};

int conn_out(struct conn *c, const void *data, size_t len);
int conn_out_item(struct conn *c, struct kv_item *it, uint32_t pos,
		  uint32_t len);
int conn_printf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
uint32_t conn_count(void);

/* sockcount.c */
int sock_counts(int fd, uint64_t *in, uint64_t *out);

/* proto.c */
enum proto_result {
	PROTO_OK,
	PROTO_NEED_MORE,
	PROTO_CLOSE,
	PROTO_BLOCKED,
};
enum proto_result proto_process(struct conn *c);
typedef void (*stat_emit_fn)(struct conn *c, const char *name, const char *val);
bool proto_stats(struct conn *c, const char *group, stat_emit_fn emit);
void proto_stats_reset(void);

/* binproto.c: the binary protocol, for requests starting with 0x80 */
ssize_t bin_process(struct conn *c, const char *p, size_t avail, bool *close);

/* ---- builds that fail on purpose (fault.c; -DKV_FAULT=N) ---- */

#define KV_FAULT_EXIT_START 1	    /* exit 3 at start */
#define KV_FAULT_SEGV_START 2	    /* SIGSEGV at start */
#define KV_FAULT_SEGV_REQUEST 3	    /* SIGSEGV on the 1000th request */
#define KV_FAULT_HANG_BEFORE_INIT 4 /* hang before luo_init() */
#define KV_FAULT_HANG_ADOPTED 5	    /* hang after adopting */
#define KV_FAULT_REFUSE 6	    /* refuse the handover */
#define KV_FAULT_HEALTH 7	    /* the health probe fails */
#define KV_FAULT_KILL_DELTA 8	    /* SIGKILL inside the 50th in-place incr */
#define KV_FAULT_KILL_READ 9   /* SIGKILL right after its 20th client read */
#define KV_FAULT_KILL_WRITE 10 /* SIGKILL right after its 20th client write */
/* SIGKILL at the library's kill point $KV_KHO_POINT (its fault build),
 * counted from the 1000th request: inside a change of block headers */
#define KV_FAULT_KILL_HEADER 11

enum kv_fault_point {
	KV_FAULT_POINT_START,	/* main(), before luo_init() */
	KV_FAULT_POINT_ADOPTED, /* handover adopted, before the finish */
	KV_FAULT_POINT_REQUEST, /* a command is about to run */
	KV_FAULT_POINT_STORE,	/* an item is half linked */
	KV_FAULT_POINT_REFUSE,	/* checking the handed-over memory */
	KV_FAULT_POINT_HEALTH,	/* the health probe */
	KV_FAULT_POINT_LOOP,	/* the event loop, between events */
	KV_FAULT_POINT_DELTA,	/* an in-place incr/decr, half written */
	KV_FAULT_POINT_READ,	/* bytes read from a client, not yet taken */
	KV_FAULT_POINT_WRITE,	/* bytes written to a client, not counted */
};

#ifdef KV_FAULT
bool kv_fault(enum kv_fault_point p);
#else
/* Not a fault build: nothing on the request path. */
static inline bool kv_fault(enum kv_fault_point p)
{
	(void)p;
	return false;
}
#endif

/* ---- the live update glue (liveupdate.c) ---- */

#define KV_ROOT_MAGIC 0x6b76726f6f743031ULL /* "kvroot01" */
#define KV_ROOT_LAYOUT                                                         \
	4 /* 2: output queues; 3: epoll registrations;
			    4: byte counts of the sockets */
#define KV_LISTEN_TOKEN (1ULL << 40)
#define KV_EPOLL_TOKEN (KV_LISTEN_TOKEN + 1) /* --inherit: the clients' epoll */

/* The subsystem's u64 points here. */
struct kv_root {
	uint64_t magic;
	uint32_t layout;
	uint32_t version; /* KV_VERSION of the image that wrote it */
	uint64_t store_off, store_size;
	uint64_t conns_off;
	uint32_t maxconns;
	uint32_t has_listener;
};

extern struct kv_root *root;

/* conn.c: the event loop and what the glue needs from it */
int conns_setup(uint32_t maxconns, int conn_epfd);
int conns_epoll_fd(void);
extern uint64_t conn_epoll_adds;
void conns_go(void);
int conn_attach(uint32_t slot, int fd, bool adopted);
bool conn_rec_between_requests(const struct kv_conn_rec *r);
void conn_set_registered(uint32_t slot, uint32_t events);
int conns_forget_registrations(void);
void conns_defer_close(int fd);
void conn_start(uint32_t slot);
int conns_for_each_open(int (*fn)(uint32_t slot, int fd, uint64_t token));
bool conns_represerve(uint32_t budget);
int event_loop(void);
void conns_pause_accept(bool pause);
void conns_sweep(void);
void conns_recount_refs(void);
void conns_align_counts(uint32_t slot);
void conns_clear_io(void);
uint32_t conns_take_back(uint32_t *returned);
void conns_resume_all(void);

/* after a rolled-back update (recheck.c) */
uint64_t store_recheck(void);
extern struct kv_conn_rec *conn_recs;
extern int listen_fd;
extern volatile bool want_sweep;

#define kv_log(lvl, ...)                                                       \
	do {                                                                   \
		if (settings.verbose >= (lvl))                                 \
			fprintf(stderr, __VA_ARGS__);                          \
	} while (0)

#endif /* KV_H */
