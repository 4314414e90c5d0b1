// SPDX-License-Identifier: MIT
/* e2e-handover: the inherited handover and where things are in it. */
#include "handover.h"

struct layout L;

int die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "e2e-handover: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Adopt the arena fd the library handed over, without the library. */
void take_handover(void)
{
	const char *v = getenv(LUO_HANDOVER_ENV);
	int afd = -1, tfd = -1, pid = -1, n;
	char junk;
	struct stat st;

	if (!v)
		die("%s is not set: run me as 'gen corrupt'", LUO_HANDOVER_ENV);
	n = sscanf(v, "%d,%d,%d%c", &afd, &tfd, &pid, &junk);
	if (n != 1 && n != 3)
		die("cannot parse %s=%s", LUO_HANDOVER_ENV, v);
	printf("e2e-handover: inherited %s=%s\n", LUO_HANDOVER_ENV, v);
	if (n == 3) {
		int status;

		/* let the old address space go: the holder is our child */
		close(tfd);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("teardown helper %d did not exit cleanly", pid);
	}
	unsetenv(LUO_HANDOVER_ENV);
	if (fcntl(afd, F_SETFD, FD_CLOEXEC) || fstat(afd, &st))
		die("arena fd %d: %s", afd, strerror(errno));
	L.fd = afd;
	L.file_size = (uint64_t)st.st_size;
	L.p = mmap(NULL, L.file_size, PROT_READ, MAP_SHARED, afd, 0);
	if (L.p == MAP_FAILED)
		die("mmap of the arena: %s", strerror(errno));
}

const struct blk *blk_at(uint64_t hdr_off)
{
	for (size_t i = 0; i < L.nblocks; i++)
		if (L.blocks[i].off == hdr_off)
			return &L.blocks[i];
	return NULL;
}

uint64_t u64_prop(const void *fdt, const char *path, const char *prop)
{
	int node = fdt_path_offset(fdt, path), len;
	const fdt64_t *p = node < 0 ? NULL : fdt_getprop(fdt, node, prop, &len);

	if (!p || len != 8)
		die("no u64 %s:%s in the FDT", path, prop);
	return fdt64_ld(p);
}

const void *payload_fdt(uint64_t payload, const char *what)
{
	const struct blk *b = blk_at(payload - BLK_HDR);

	if (!b || !(b->flags & KHO_BLOCK_USED) ||
	    fdt_check_full(L.p + payload, b->payload_size))
		die("%s at %#llx is not a valid FDT in a block", what,
		    (unsigned long long)payload);
	return L.p + payload;
}

void parse_layout(void)
{
	const struct kho_arena_header *h = (const void *)L.p;
	uint64_t off;
	const void *root, *luo, *user;

	if (L.file_size < sizeof(*h) || h->magic != KHO_ARENA_MAGIC ||
	    h->arena_size > L.file_size)
		die("the inherited arena does not look like one");
	L.arena_size = h->arena_size;
	L.root = h->root_fdt;
	for (off = h->data_start; off < L.arena_size;) {
		const struct kho_block_header *b = (const void *)(L.p + off);

		if (b->magic != KHO_BLOCK_MAGIC || b->size < BLK_HDR ||
		    b->size % KHO_BLOCK_ALIGN || b->size > L.arena_size - off ||
		    L.nblocks == sizeof(L.blocks) / sizeof(L.blocks[0]))
			die("bad block at %#llx in the pristine arena",
			    (unsigned long long)off);
		L.blocks[L.nblocks++] = (struct blk){
			.off = off,
			.size = b->size,
			.payload_size = b->payload_size,
			.checked_size = b->checked_size,
			.flags = b->flags,
		};
		off += b->size;
	}
	root = payload_fdt(L.root, "root FDT");
	L.luo = u64_prop(root, "/" LUO_FDT_KHO_ENTRY_NAME, KHO_SUBTREE_PROP);
	L.user = u64_prop(root, "/e2e-user", KHO_SUBTREE_PROP);
	luo = payload_fdt(L.luo, "LUO FDT");
	user = payload_fdt(L.user, "user FDT");
	L.ser = u64_prop(luo, "/", LUO_FDT_ABI_HEADER);
	L.big = u64_prop(user, "/", "big");
	L.small = u64_prop(user, "/", "small");
	L.twin1 = u64_prop(user, "/", "twin1");
	L.twin2 = u64_prop(user, "/", "twin2");
	if (u64_prop(luo, "/subsystems", "e2e-big") != L.big ||
	    u64_prop(luo, "/subsystems", "e2e-small") != L.small ||
	    u64_prop(luo, "/subsystems", "e2e-const") != CONST_DATA)
		die("subsystem data in the LUO FDT is not what gen recorded");
	L.tail = L.blocks[L.nblocks - 1].off;
	L.free_mid = 0;
	for (size_t i = 1; i + 1 < L.nblocks; i++)
		if (!(L.blocks[i].flags & KHO_BLOCK_USED) &&
		    (L.blocks[i - 1].flags & KHO_BLOCK_USED) &&
		    (L.blocks[i + 1].flags & KHO_BLOCK_USED)) {
			L.free_mid = L.blocks[i].off;
			break;
		}
	if (!L.free_mid)
		die("no free block between used blocks in the arena");
	/* else "hdr-arena-size-minus-page" would only cut off whole blocks */
	for (size_t i = 0; i < L.nblocks; i++)
		if (L.blocks[i].off == L.arena_size - 4096)
			die("a block starts one page before the arena end");
	{
		const uint64_t checked[] = {L.root, L.luo, L.ser, L.user};
		const uint64_t plain[] = {L.big, L.small, L.twin1, L.twin2};

		for (size_t i = 0; i < 4; i++) {
			const struct blk *b = blk_at(checked[i] - BLK_HDR);

			if (!b || !(b->flags & KHO_BLOCK_CHECKED) ||
			    b->checked_size != b->payload_size)
				die("metadata block %#llx is not as expected",
				    (unsigned long long)checked[i]);
			b = blk_at(plain[i] - BLK_HDR);
			if (!b || b->flags != KHO_BLOCK_USED)
				die("data block %#llx is not as expected",
				    (unsigned long long)plain[i]);
		}
		if (blk_at(L.twin1 - BLK_HDR)->size !=
		    blk_at(L.twin2 - BLK_HDR)->size)
			die("the twins differ in size");
	}
	printf("e2e-handover: arena %llu bytes (memfd %llu), %zu blocks; root FDT %#llx, LUO FDT %#llx, luo_ser %#llx, user FDT %#llx, big %#llx, free block %#llx, tail %#llx\n",
	       (unsigned long long)L.arena_size,
	       (unsigned long long)L.file_size, L.nblocks,
	       (unsigned long long)L.root, (unsigned long long)L.luo,
	       (unsigned long long)L.ser, (unsigned long long)L.user,
	       (unsigned long long)L.big, (unsigned long long)L.free_mid,
	       (unsigned long long)L.tail);
}

uint64_t tgt(int t)
{
	switch (t) {
	case T_HDR:
		return 0;
	case T_B_FIRST:
		return L.blocks[0].off;
	case T_B_ROOT:
		return L.root - BLK_HDR;
	case T_B_LUO:
		return L.luo - BLK_HDR;
	case T_B_SER:
		return L.ser - BLK_HDR;
	case T_B_USER:
		return L.user - BLK_HDR;
	case T_B_BIG:
		return L.big - BLK_HDR;
	case T_B_SMALL:
		return L.small - BLK_HDR;
	case T_B_TWIN1:
		return L.twin1 - BLK_HDR;
	case T_B_TWIN2:
		return L.twin2 - BLK_HDR;
	case T_B_FREE:
		return L.free_mid;
	case T_B_TAIL:
		return L.tail;
	case T_P_ROOT:
		return L.root;
	case T_P_LUO:
		return L.luo;
	case T_P_SER:
		return L.ser;
	case T_P_USER:
		return L.user;
	case T_P_BIG:
		return L.big;
	case T_P_FREE:
		return L.free_mid + BLK_HDR;
	case T_END:
		return L.arena_size;
	case T_HALF:
		return L.arena_size / 2;
	default:
		return 0;
	}
}
