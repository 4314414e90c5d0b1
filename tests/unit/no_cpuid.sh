#!/bin/sh
# The library runs no CPUID of its own: __builtin_cpu_supports() would link
# in libgcc's CPU detection, a constructor running a dozen CPUIDs in every
# exec of every program using libluo (each one traps on a VM).
#   no_cpuid.sh LIBLUO.so
set -eu
command -v objdump >/dev/null || { echo "no objdump: skipped"; exit 77; }
n=$(objdump -d --no-show-raw-insn "$1" | grep -cE '^ +[0-9a-f]+:[[:space:]]+cpuid\b' || true)
if [ "$n" -ne 0 ]; then
	echo "$1 contains $n CPUID instructions:" >&2
	objdump -d --no-show-raw-insn "$1" | grep -E '>:$|cpuid' | grep -B1 cpuid >&2
	exit 1
fi
echo "$1: no CPUID instruction"
