#!/bin/sh
# SPDX-License-Identifier: MIT
# The SeaweedFS server the S3 tests and benchmarks run: one version, built
# once per machine into a cache outside the checkout.
#   tests/seaweedfs.sh path    print where the binary is (built or not)
#   tests/seaweedfs.sh build   build it there unless it is already there
# `go install` refuses this module (its go.mod has replace directives):
# download the module, copy it somewhere writable, build ./weed.
set -eu
VERSION=v0.0.0-20261109003541-7506e5f91cd6
root=$(sh "$(dirname "$0")/cachedir.sh")
dir=$root/seaweedfs-$VERSION
case "${1:-}" in
path)
	echo "$dir/weed"
	;;
build)
	if [ -x "$dir/weed" ]; then
		echo "seaweedfs $VERSION: $dir/weed (cached)"
		exit 0
	fi
	mkdir -p "$dir"
	echo "building seaweedfs $VERSION into $dir (several minutes, once per machine)"
	# Outside any module, so that no go.mod or go.sum is touched.
	src=$(cd "$dir" && GOFLAGS= go mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "go mod download gave no module directory" >&2; exit 1; }
	rm -rf "$dir/src"
	cp -r "$src" "$dir/src"
	chmod -R u+w "$dir/src"
	(cd "$dir/src" && CGO_ENABLED=0 go build -o "$dir/weed.tmp" ./weed)
	mv "$dir/weed.tmp" "$dir/weed"
	rm -rf "$dir/src"
	;;
*)
	echo "usage: $0 path|build" >&2
	exit 2
	;;
esac
