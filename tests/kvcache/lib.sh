# Helpers for the kvcache tests (sourced).  Ports: 21000-21999, picked at
# random and retried if taken.
KV_PID=
KV_LOG=
KV_PORT=

kv_cleanup() {
	if [ -n "$KV_PID" ] && kill -0 "$KV_PID" 2>/dev/null; then
		kill -TERM "$KV_PID" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$KV_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$KV_PID" 2>/dev/null
	fi
	[ -n "$KV_DIR" ] && rm -rf "$KV_DIR"
}

# kv_start BINARY ARGS...: start kvcache on a free port; sets KV_PID, KV_PORT.
kv_start() {
	local bin=$1
	shift
	KV_DIR=${KV_DIR:-$(mktemp -d)}
	KV_LOG=$KV_DIR/kvcache.log
	for _ in $(seq 20); do
		KV_PORT=$((21000 + RANDOM % 1000))
		"$bin" -l 127.0.0.1 -p "$KV_PORT" --name "kvtest-$$-$KV_PORT" "$@" >"$KV_LOG" 2>&1 &
		KV_PID=$!
		for _ in $(seq 50); do
			grep -q "fresh start" "$KV_LOG" && return 0
			kill -0 "$KV_PID" 2>/dev/null || break
			sleep 0.1
		done
		wait "$KV_PID" 2>/dev/null
		grep -q "cannot listen" "$KV_LOG" || { cat "$KV_LOG"; return 1; }
	done
	echo "no free port in 21000-21999" >&2
	return 1
}

# kv_update N: send SIGUSR1 and wait until update number N is reported.
kv_update() {
	kill -USR1 "$KV_PID"
	kv_wait_update "$1"
}

kv_wait_update() {
	for _ in $(seq 100); do
		grep -q "live update #$1 " "$KV_LOG" && return 0
		sleep 0.05
	done
	echo "update #$1 not reported:" >&2
	cat "$KV_LOG" >&2
	return 1
}

# kv_slap_verified [PREFIX]: memcaslap's report in $KV_DIR/slap.out shows
# every value verified and found, and no error; PREFIX starts the failure.
kv_slap_verified() {
	grep -q "^verify_failed: 0$" "$KV_DIR/slap.out" &&
		grep -q "^verify_misses: 0$" "$KV_DIR/slap.out" &&
		grep -q "^get_misses: 0$" "$KV_DIR/slap.out" ||
		fail "${1:-}memcaslap saw wrong or missing values: $(cat "$KV_DIR/slap.out")"
	if grep -i "error\|closed\|fail" "$KV_DIR/slap.out" | grep -qv verify_failed; then
		fail "${1:-}memcaslap: $(cat "$KV_DIR/slap.out")"
	fi
}

fail() {
	echo "FAIL: $*" >&2
	[ -n "$KV_LOG" ] && cat "$KV_LOG" >&2
	exit 1
}
