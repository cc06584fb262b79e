# SPDX-License-Identifier: MIT
#
# ocireg-tool - the one binary behind the local container registry: it
# generates the helper script and target payloads, serves the registry and
# pushes, imports, lists and labels images.
#
# Built from this layer's own source tree (the directory above the layer)
# with oe-core's Go support. Every Go module comes from bitbake's fetcher:
# ocireg-tool-go-mods.inc and ocireg-tool-licenses.inc are generated from
# go.mod/go.sum by `make layer-gomods` (the same output as oe-core's
# go-mod-update-modules.bbclass) and must never be edited by hand; only
# do_fetch touches the network.
#
# Variables:
#   OCIREG_TOOL_SRCDIR  git checkout holding the source [the layer's parent]
#   OCIREG_TOOL_SRCREV  commit to build [HEAD of OCIREG_TOOL_SRCDIR]
#
# Only committed source is built: commit first, or point the variables at
# another clone or commit.
#
# A layer that does not sit in a git checkout of ocireg-tool (copied,
# vendored from a release archive, fetched alone by a repo manifest) has no
# source to build: the recipe then skips itself at parse time, saying what
# to set, and so do the layer's recipes that need it
# (ocireg-tool-source.bbclass); the rest of the layer keeps working. Either
# point OCIREG_TOOL_SRCDIR (and OCIREG_TOOL_SRCREV) at a clone of the
# project, or use a prebuilt tool:
#   CONTAINER_REGISTRY_TOOL = "/path/to/ocireg-tool"
#   CONTAINER_REGISTRY_TOOL_DEPENDS = ""

SUMMARY = "Local container registry tool for Yocto/OpenEmbedded builds"
DESCRIPTION = "One static Go binary replacing the shell, Python, skopeo, openssl and htpasswd glue of a local container registry."
HOMEPAGE = "https://github.com/ocireg-tool/ocireg-tool"
# The project's own source is MIT like this layer (LICENSE at the top of
# the tree). The modules' licenses are appended by the generated
# ocireg-tool-licenses.inc.
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=098f0408646b443b90c19007fb3c8ec8"

SRC_URI = "git://${OCIREG_TOOL_SRCDIR};protocol=file;nobranch=1;destsuffix=${GO_SRCURI_DESTSUFFIX}"
SRCREV = "${OCIREG_TOOL_SRCREV}"

require ${BPN}-licenses.inc
require ${BPN}-go-mods.inc

inherit go-mod ocireg-tool-source

GO_IMPORT = "github.com/ocireg-tool/ocireg-tool"
GO_INSTALL = "${GO_IMPORT}/cmd/ocireg-tool"
GO_EXTRA_LDFLAGS += "-X ${GO_IMPORT}/internal/buildinfo.Version=${PV}+${@d.getVar('SRCREV')[:10]}"
# A static binary: the helper script keeps a copy outside tmp/.
CGO_ENABLED = "0"
export CGO_ENABLED

# HEAD is read at parse time; do not cache a stale one.
BB_DONT_CACHE = "1"

# Without its source the recipe cannot even be fetched: skip it, so that a
# layer used without the checkout still parses (ocireg-tool-source.bbclass).
python __anonymous() {
    problem = ocireg_tool_source_problem(d)
    if problem:
        raise bb.parse.SkipRecipe(ocireg_tool_skip_message(d, problem))
}

BBCLASSEXTEND = "native nativesdk"
