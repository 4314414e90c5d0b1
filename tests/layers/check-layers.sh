#!/bin/sh
# SPDX-License-Identifier: MIT
# No object of a layer may use a symbol defined only in a layer above it.
# Usage: check-layers.sh LIB... (static libraries, lowest layer first)
set -eu
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
exit "$bad"
