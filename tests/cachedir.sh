#!/bin/sh
# SPDX-License-Identifier: MIT
# Prints the per-machine cache the test tools are built into, outside the
# checkout: $XDG_CACHE_HOME/ocireg-tool, else /var/cache/ocireg-tool when
# writable, else ~/.cache/ocireg-tool (tests/seaweedfs.sh, tests/cosign.sh).
set -eu
if [ -n "${XDG_CACHE_HOME:-}" ]; then
	echo "$XDG_CACHE_HOME/ocireg-tool"
elif [ -w /var/cache ]; then
	echo /var/cache/ocireg-tool
else
	echo "$HOME/.cache/ocireg-tool"
fi
