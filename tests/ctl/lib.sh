# SPDX-License-Identifier: MIT
# The scaffolding of the luoctl scripts (luoctl.sh, txn.sh), sourced from
# the script's own directory.  The script sets LUOCTL (the program) and
# dir (a temporary directory; each command's output goes to $dir/out),
# and may redefine luoctl_cmd (how run() calls luoctl, e.g. with -S).
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

luoctl_cmd() {
	"$LUOCTL" "$@"
}

# run EXPECTED_EXIT DESCRIPTION -- luoctl args...; output in $dir/out
run() {
	want=$1
	what=$2
	shift 3
	luoctl_cmd "$@" >"$dir/out" 2>&1
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$what: exit $got, expected $want; output:"
		sed 's/^/    /' "$dir/out"
	else
		echo "ok: $what"
	fi
}

# expect_out PATTERN DESCRIPTION: the last output has PATTERN (grep).
expect_out() {
	grep -q -- "$1" "$dir/out" || {
		fail "$2: output lacks '$1':"
		sed 's/^/    /' "$dir/out"
	}
}

# expect_no PATTERN DESCRIPTION: the last output lacks PATTERN.
expect_no() {
	if grep -q -- "$1" "$dir/out"; then
		fail "$2: output has '$1':"
		sed 's/^/    /' "$dir/out"
	fi
}

# wait_socket PATH: a socket file appears there (5 s at most).
wait_socket() {
	for _ in $(seq 100); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	fail "no socket at $1"
	return 1
}
