#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside one layer, calls between its files go one way too: no file may
# use, directly or round a loop of files, a symbol of a file that uses its
# own (docs/architecture.md, "Inside a layer").  Prints the order found,
# callers first.
# Usage: check-file-loops.sh [--only FILE,...] LIB... (static libraries)
#   --only: of the next LIB, check only these files (e.g. luo_device.c)
#   and the files on a path of calls from one of them to another; loops
#   elsewhere in that LIB are not reported.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
only=
for lib in "$@"; do
	if [ "$lib" = --only ]; then
		only=next
		continue
	elif [ "$only" = next ]; then
		only=$lib
		continue
	fi
	name=$(basename "$lib" .a)
	name=${name#lib}
	# "ARCHIVE:OBJECT:[ADDR] TYPE SYMBOL" -> "FILE TYPE SYMBOL"
	{
		nm -A --defined-only -g "$lib"
		nm -A -u "$lib"
	} | sed 's/^[^:]*:\([^:]*\):/\1 /' | awk '{
		n = split($1, p, "/"); f = p[n]; sub(/\.o$/, "", f)
		sub(/^[^_]*_/, "", f)   # meson names an object DIR_FILE.c.o
		print f, $(NF - 1), $NF
	}' >"$tmp/syms"
	# One edge "CALLER CALLEE" per pair of files.
	awk '$2 != "U" { def[$3] = $1; next }
	     { und[NR] = $1 " " $3 }
	     END { for (i in und) { split(und[i], u, " ")
			if ((u[2] in def) && def[u[2]] != u[1])
				print u[1], def[u[2]] } }' "$tmp/syms" |
		sort -u >"$tmp/edges"
	if [ -n "$only" ]; then
		# Keep the edges between files that are listed or lie on a path
		# from a listed file to a listed file (a loop through them).
		awk -v only="$only" '
		     { e[$1, $2] = 1; f[$1] = 1; f[$2] = 1; line[NR] = $0 }
		     END { n = split(only, l, ",")
			for (i = 1; i <= n; i++) { want[l[i]] = 1; f[l[i]] = 1 }
			for (a in f) for (b in f) r[a, b] = (a == b) || ((a, b) in e)
			for (k in f) for (a in f) if (r[a, k])
				for (b in f) if (r[k, b]) r[a, b] = 1
			for (u in f) for (a in want) for (b in want)
				if (r[a, u] && r[u, b]) keep[u] = 1
			for (i = 1; i <= NR; i++) { split(line[i], x, " ")
				if ((x[1] in keep) && (x[2] in keep)) print line[i] } }' \
			"$tmp/edges" >"$tmp/kept"
		mv "$tmp/kept" "$tmp/edges"
		name="$name ($(echo "$only" | tr ',' ' '))"
		only=
	fi
	awk '{ e[$1 " " $2] = 1 }
	     END { for (k in e) { split(k, a, " ")
			if ((a[2] " " a[1]) in e && a[1] < a[2])
				print a[1] " and " a[2] " call each other" } }' \
		"$tmp/edges" >"$tmp/pairs"
	while read -r line; do
		echo "$name: $line"
		bad=1
	done <"$tmp/pairs"
	if ! tsort "$tmp/edges" >"$tmp/order" 2>"$tmp/loop"; then
		echo "$name: its files call each other round a loop:"
		sed 's/^tsort: .*input contains a loop:$/  a loop:/; s/^tsort: /    /' \
			"$tmp/loop"
		bad=1
	elif [ ! -s "$tmp/pairs" ]; then
		echo "ok: $name, files one way: $(tr '\n' ' ' <"$tmp/order")"
	fi
done
exit "$bad"
