#!/bin/sh
# What `meson install` puts in place, into a scratch DESTDIR:
# - the documentation in share/doc/luo (docs/, README, CHANGELOG);
# - luoctl(1), and a section-3 page for every symbol libluo.so exports,
#   every exported symbol being a function the public headers declare
#   (and every function they declare exported);
# - luo.pc, with which a program builds and runs against the library in
#   that non-standard place, through LD_LIBRARY_PATH or an rpath (the
#   README's recipe).
#
#   install.sh BUILD_DIR
set -u
build=$1
dest=$(mktemp -d /tmp/luo-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest/log" 2>&1 ||
	{ cat "$dest/log"; echo "FAIL: meson install"; exit 1; }

doc=$(find "$dest" -type d -path '*/share/doc/luo' | head -1)
[ -n "$doc" ] || fail "no share/doc/luo"
for f in README.md CHANGELOG.md architecture.md control-protocol.md \
	luoctl-json.md luoctl-json-schema.json; do
	[ -f "$doc/$f" ] || fail "share/doc/luo/$f is not installed"
done
[ -f "$doc/meson.build" ] && fail "the build file was installed as documentation"

man=$(find "$dest" -type d -path '*/share/man' | head -1)
[ -f "$man/man1/luoctl.1" ] || fail "luoctl.1 is not installed"
lib=$(find "$dest" -name 'libluo.so.*.*' | head -1)
inc=$(find "$dest" -type d -path '*/include/luo' | head -1)
[ -n "$lib" ] && [ -n "$inc" ] || { fail "no libluo.so or headers"; exit 1; }

# Functions and data, without the version nodes (type A) and versions.
nm -D --defined-only "$lib" | awk '$2 != "A" {sub(/@.*/, "", $3); print $3}' |
	grep -v '^$' | sort -u >"$dest/exported"
grep -ohE '\b(liveupdate|luo|kho)_[a-z_0-9]+\(' "$inc"/*.h | tr -d '(' |
	sort -u >"$dest/declared"
n=0
while read -r sym; do
	n=$((n + 1))
	[ -f "$man/man3/$sym.3" ] ||
		fail "exported $sym has no man page (is its header in public_headers, meson.build?)"
	man -l "$man/man3/$sym.3" 2>/dev/null | grep -q "^NAME" ||
		fail "$sym.3 does not render"
done <"$dest/exported"
[ "$n" -gt 40 ] || fail "only $n symbols exported"
comm -23 "$dest/declared" "$dest/exported" | while read -r f; do
	echo "FAIL: $f is declared in include/luo but not exported"
done | grep . && failures=$((failures + 1))
comm -13 "$dest/declared" "$dest/exported" | while read -r f; do
	echo "FAIL: $f is exported but not in the public headers"
done | grep . && failures=$((failures + 1))

# The README's recipe for a library in a non-standard prefix.
pc=$(find "$dest" -name luo.pc | head -1)
if [ -z "$pc" ]; then
	fail "luo.pc is not installed"
elif ldd "$lib" | grep -q 'libasan\|libubsan'; then
	echo "a sanitized build: the recipe needs a plain program, skipped"
elif command -v pkg-config >/dev/null && command -v cc >/dev/null; then
	libdir=$(dirname "$lib")
	cat >"$dest/t.c" <<'C'
#include <luo/luo.h>
int main(void) { return luo_init(NULL) ? 1 : 0; }
C
	export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
	# shellcheck disable=SC2046
	cc "$dest/t.c" -o "$dest/t" $(pkg-config --cflags --libs luo) ||
		fail "cannot build against luo.pc"
	LD_LIBRARY_PATH=$libdir "$dest/t" || fail "does not run with LD_LIBRARY_PATH"
	# shellcheck disable=SC2046
	cc "$dest/t.c" -o "$dest/t-rpath" $(pkg-config --cflags --libs luo) \
		-Wl,-rpath,"$libdir" || fail "cannot build with an rpath"
	"$dest/t-rpath" || fail "does not run with an rpath"
	ldd "$dest/t-rpath" | grep -q "$libdir/libluo.so" ||
		fail "the rpath binary does not use the installed library"
fi

if [ "$failures" -ne 0 ]; then
	echo "install: $failures failures"
	exit 1
fi
echo "install: $n exported functions, each with its page; docs and luo.pc in place"
