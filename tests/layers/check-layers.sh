#!/bin/sh
# SPDX-License-Identifier: MIT
# No object of a layer may use a symbol defined only in a layer above it;
# and in the layers named after --files, no two files call each other
# (check-file-loops.sh).
# Usage: check-layers.sh LIB... [--files [--only FILE,...] LIB...]
#        (static libraries, lowest layer first; --only as in
#        check-file-loops.sh)
set -eu
layers=
files=
for a; do
	case "$a" in
	--files) files=" " ;;
	*) if [ -n "$files" ]; then files="$files $a"; else layers="$layers $a"; fi ;;
	esac
done
# shellcheck disable=SC2086 # build paths have no spaces
set -- $layers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for lib in "$@"; do
	nm --defined-only -g "$lib" | awk 'NF == 3 { print $3 }' | sort -u \
		>"$tmp/def.$i"
	nm -u "$lib" | awk '{ print $NF }' | sort -u >"$tmp/und.$i"
	i=$((i + 1))
done
n=$i
bad=0
i=0
while [ "$i" -lt "$n" ]; do
	j=$((i + 1))
	while [ "$j" -lt "$n" ]; do
		up=$(comm -12 "$tmp/und.$i" "$tmp/def.$j")
		# Defined in a layer at or below i as well: not an upward call.
		k=0
		while [ "$k" -le "$i" ]; do
			up=$(printf '%s\n' "$up" | comm -23 - "$tmp/def.$k")
			k=$((k + 1))
		done
		for s in $up; do
			echo "layer $(basename "$(eval echo \${$((i + 1))})") uses $s of $(basename "$(eval echo \${$((j + 1))})") above it"
			bad=1
		done
		j=$((j + 1))
	done
	i=$((i + 1))
done
[ "$bad" -eq 0 ] && echo "ok: $n layers, every call goes down"
if [ -n "$files" ]; then
	# shellcheck disable=SC2086
	sh "$(dirname "$0")/check-file-loops.sh" $files || bad=1
fi
exit "$bad"
