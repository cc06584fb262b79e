#!/bin/sh
# SPDX-License-Identifier: MIT
# The cosign the signing tests verify with (sigstore's own verifier, never
# part of ocireg-tool): one version, built once per machine from the Go
# module proxy into a cache outside the checkout (about 4 minutes).
#   tests/cosign.sh path    print where the binary is (built or not)
#   tests/cosign.sh build   build it there unless it is already there
set -eu
VERSION=v2.6.5
root=$(sh "$(dirname "$0")/cachedir.sh")
dir=$root/cosign-$VERSION
case "${1:-}" in
path)
	echo "$dir/cosign"
	;;
build)
	if [ -x "$dir/cosign" ]; then
		echo "cosign $VERSION: $dir/cosign (cached)"
		exit 0
	fi
	mkdir -p "$dir"
	echo "building cosign $VERSION into $dir (several minutes, once per machine)"
	# Outside any module, so that no go.mod or go.sum is touched.
	(cd "$dir" && GOFLAGS= CGO_ENABLED=0 GOBIN="$dir/tmp" go install "github.com/sigstore/cosign/v2/cmd/cosign@$VERSION")
	mv "$dir/tmp/cosign" "$dir/cosign"
	rmdir "$dir/tmp"
	;;
*)
	echo "usage: $0 path|build" >&2
	exit 2
	;;
esac
