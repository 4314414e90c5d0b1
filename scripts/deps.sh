#!/usr/bin/env bash
# Install (as root) or name (otherwise) the Debian packages the build,
# the tests and the demo need.  Sourced by demo.sh and test.sh.

# libmemcached-tools: memccapable and memcaslap, the kvcache tests' peers;
# memcached: the reference of the kvcache differential test.
LUO_DEPS=(meson ninja-build gcc pkg-config python3 libfdt-dev libcmocka-dev
	  device-tree-compiler libmemcached-tools memcached)

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

# Configure a fresh build directory $1 with extra meson options.
luo_setup_build() {
	local dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --wipe "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}
