#!/usr/bin/env bash
# Install (as root) or name (otherwise) the Debian packages the build,
# the tests and the demo need.  Sourced by demo.sh and test.sh.

# libmemcached-tools: memccapable and memcaslap, the kvcache tests' peers;
# memcached: the reference of the kvcache differential test;
# libjson-c-dev: luoctl --json;
# systemd-container: systemd-nspawn, which boots the real systemd that the
# systemd suite runs the units under (systemd.pc, for the unit directory,
# comes with systemd itself).
LUO_DEPS=(meson ninja-build gcc pkg-config python3 libfdt-dev libcmocka-dev
	  device-tree-compiler libmemcached-tools memcached libjson-c-dev
	  systemd-container strace)

luo_install_deps() {
	local missing=() p
	for p in "${LUO_DEPS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "Missing Debian packages: ${missing[*]}" >&2
		echo "Install them with:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		return 1
	fi
	echo "Installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null &&
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Configure a fresh build directory $1 with exactly the meson options given
# (removed first: `meson setup --wipe` would keep the old ones).  The
# scripts use directories of their own (build-test, build-test-asan,
# build-demo), so `meson setup build --prefix=...` is never theirs.
luo_setup_build() {
	local dir=$1
	shift
	case $dir in
	build-?*) rm -rf "$dir" ;;
	*) echo "luo_setup_build: '$dir' may be the user's; use a build-* name" >&2; return 1 ;;
	esac
	meson setup "$dir" "$@" >/dev/null
}
