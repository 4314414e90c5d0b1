#!/bin/sh
# counter-100: 100 live updates in a row, alternating the v1 and v2 images.
# Every image checks the whole 64 MiB buffer the previous one left.
#   counter_100.sh COUNTER_V1 COUNTER_V2
set -u
v1=$1
v2=$2
fail=0

# Negative control: an update that cannot exec must make the counter exit
# non-zero, so a broken chain below cannot go unnoticed.
noexec=$(mktemp "${TMPDIR:-/tmp}/counter-noexec.XXXXXX")
chmod 0644 "$noexec"
if "$v1" --size 1 --updates 1 --next "$noexec" --quiet >/dev/null 2>&1; then
	echo "counter-100: FAIL: an update into a non-executable file reported success"
	fail=1
else
	echo "counter-100: control ok: a failed update makes the counter exit non-zero"
fi
rm -f "$noexec"

out=$("$v1" --updates 100 --next "$v2" --quiet)
rc=$?
printf '%s\n' "$out"
want="counter v1: done after 100 live updates, counter=100"
if [ "$rc" -ne 0 ]; then
	echo "counter-100: FAIL: counter exited $rc"
	fail=1
elif [ "$out" != "$want" ]; then
	echo "counter-100: FAIL: expected exactly \"$want\""
	fail=1
else
	echo "counter-100: PASS"
fi
exit $fail
