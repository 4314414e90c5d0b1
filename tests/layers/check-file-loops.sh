#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside one layer, calls between its files go one way too: no file may
# use, directly or round a loop of files, a symbol of a file that uses its
# own (docs/architecture.md, "Inside a layer").  Prints the order found,
# callers first.
# Usage: check-file-loops.sh [--skip=FILE.c]... LIB... (static libraries)
# A file named by --skip is left out of the check: its calls, both ways,
# are not looked at (for a loop known and being fixed elsewhere).
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
skip=" "
for a; do
	case "$a" in
	--skip=*) skip="$skip${a#--skip=} " ;;
	esac
done
for lib in "$@"; do
	case "$lib" in
	--skip=*) continue ;;
	esac
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
	skipped=$(awk '{ print $1 }' "$tmp/syms" | sort -u | while read -r f; do
		case "$skip" in *" $f "*) printf ' %s' "$f" ;; esac
	done)
	[ -z "$skipped" ] || skipped=" (not checked:$skipped)"
	# One edge "CALLER CALLEE" per pair of files.
	awk -v skip="$skip" '$2 != "U" { def[$3] = $1; next }
	     { und[NR] = $1 " " $3 }
	     END { for (i in und) { split(und[i], u, " ")
			if ((u[2] in def) && def[u[2]] != u[1] &&
			    !index(skip, " " u[1] " ") &&
			    !index(skip, " " def[u[2]] " "))
				print u[1], def[u[2]] } }' "$tmp/syms" |
		sort -u >"$tmp/edges"
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
		echo "ok: $name, files one way: $(tr '\n' ' ' <"$tmp/order" | sed 's/ $//')$skipped"
	fi
done
exit "$bad"
