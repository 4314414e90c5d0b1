# A real systemd booted as PID 1 of a container, for the systemd suite and
# bench/run-systemd-crash.sh (sourced).  The caller sets $dir (a scratch
# directory), $BUILD (bind-mounted read-only), $TEMPLATES, $KVCACHE,
# $COUNTER, $LUOCTL; defines skip() and fail(); and calls
# container_units, container_boot, and container_stop at exit.
cgroups=()
nspawn=
P=

# Run a command inside the container, bounded.
C() {
	timeout 60 nsenter -t "$P" -m -u -i -p -- "$@"
}

show() { # UNIT PROPERTY
	C systemctl show -p "$2" --value "$1"
}

# Poll (at most 20 s) until a unit property has a value.
wait_prop() { # UNIT PROPERTY VALUE
	local v=
	for _ in $(seq 200); do
		v=$(show "$1" "$2")
		[ "$v" = "$3" ] && return 0
		sleep 0.1
	done
	fail "$1: $2 is '$v', expected '$3'"
	return 1
}

container_stop() {
	if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
		# nspawn turns SIGTERM into a clean poweroff of the container.
		kill -TERM "$nspawn" 2>/dev/null
		for _ in $(seq 200); do
			kill -0 "$nspawn" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$nspawn" 2>/dev/null
		wait "$nspawn" 2>/dev/null
	fi
	for cg in "${cgroups[@]}"; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$dir"
}

# container_units PORT KVCACHE_ARGS: the templates with this build's
# paths, kvcache on 127.0.0.1:PORT, into $dir/units.
container_units() {
	local port=$1 kvargs=$2 t u
	mkdir -p "$dir/units"
	for t in "$TEMPLATES"/*.service.in; do
		u=$(basename "$t" .in)
		sed -e "s|@KVCACHE@|$KVCACHE|g" -e "s|@COUNTER@|$COUNTER|g" \
			-e "s|@LUOCTL@|$LUOCTL|g" \
			-e "s|-p 11211 -m 64|-l 127.0.0.1 -p $port $kvargs|" \
			"$t" >"$dir/units/$u"
		# Test-only: the library's info lines, bounded start and stop.
		mkdir -p "$dir/units/$u.d"
		printf '[Service]\nEnvironment=LUO_LOG_LEVEL=info\nTimeoutStartSec=60s\nTimeoutStopSec=20s\n' \
			>"$dir/units/$u.d/test.conf"
	done
}

# Boot; sets $P (the container's PID 1 on the host).  Skips (77) where
# it cannot run.
container_boot() {
	local h rel cg c state
	# A cgroup of our own, so that parallel runs do not share /payload.
	for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
		[ -f "$h/cgroup.procs" ] || continue
		case $h in
		/sys/fs/cgroup/systemd) rel=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup) ;;
		*) rel=$(sed -n 's/^0:://p' /proc/self/cgroup) ;;
		esac
		[ -n "$rel" ] || continue
		cg=$h${rel%/}/luo-systemd-test-$$
		mkdir -p "$cg" 2>/dev/null || skip "cannot create a cgroup under $h"
		cgroups+=("$cg")
		[ "$h" = /sys/fs/cgroup ] && break
	done
	[ ${#cgroups[@]} -gt 0 ] || skip "no writable cgroup hierarchy"
	(
		for cg in "${cgroups[@]}"; do
			echo "$BASHPID" >"$cg/cgroup.procs" || exit 1
		done
		exec systemd-nspawn -q -D / --volatile=yes --register=no \
			--keep-unit --console=pipe \
			--bind-ro="$dir/units:/etc/systemd/system" \
			--bind-ro="$BUILD" -b systemd.unit=multi-user.target \
			systemd.mask=systemd-firstboot.service
	) </dev/null >"$dir/console.log" 2>&1 &
	nspawn=$!
	for _ in $(seq 300); do
		for c in $(cat /proc/"$nspawn"/task/*/children 2>/dev/null); do
			[ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && P=$c
		done
		[ -n "$P" ] && break
		kill -0 "$nspawn" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$P" ]; then
		cat "$dir/console.log"
		grep -q "Failed to\|not supported" "$dir/console.log" &&
			skip "systemd-nspawn cannot boot a container here"
		echo "FAIL: the container did not boot"
		exit 1
	fi
	# Until its manager answers on its private socket, then until it is up.
	# "offline" is what systemctl says before PID 1 has created
	# /run/systemd/system (sd_booted() is still false): early, not failed.
	for _ in $(seq 300); do
		state=$(C systemctl is-system-running --wait 2>&1)
		case $state in
		*"Failed to connect"* | offline) sleep 0.1 ;;
		*) break ;;
		esac
	done
	case $state in
	running | degraded) ;;
	*)
		echo "FAIL: the container's systemd is '$state'"
		exit 1
		;;
	esac
	echo "container booted: systemd is PID $P on the host ($state)"
}
