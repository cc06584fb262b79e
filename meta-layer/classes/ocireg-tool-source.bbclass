# SPDX-License-Identifier: MIT
#
# ocireg-tool-source.bbclass - where the ocireg-tool recipe finds the source
# it builds, and whether it is there.
#
# Inherited by the ocireg-tool recipe and by container-registry.bbclass: a
# layer that does not sit in a git checkout of ocireg-tool (copied, vendored
# from a release archive, fetched alone by a repo manifest) has no source to
# build, so the tool recipe skips itself at parse time, and so does every
# recipe of the layer that would need it (CONTAINER_REGISTRY_TOOL_DEPENDS =
# "ocireg-tool-native"), saying what to set.
#
# Variables:
#   OCIREG_TOOL_SRCDIR  git checkout holding the source [the layer's parent]
#   OCIREG_TOOL_SRCREV  commit to build [HEAD of OCIREG_TOOL_SRCDIR]

OCIREG_TOOL_SRCDIR ?= "${@os.path.dirname(d.getVar('OCIREG_LAYERDIR') or '')}"
OCIREG_TOOL_SRCDIR[doc] = "Git checkout of ocireg-tool the recipe builds (default: the tree the layer lives in)."
OCIREG_TOOL_SRCREV ?= "${@ocireg_tool_head(d)}"
OCIREG_TOOL_SRCREV[doc] = "Commit of OCIREG_TOOL_SRCDIR to build (default: its HEAD)."
OCIREG_TOOL_GO_IMPORT = "github.com/ocireg-tool/ocireg-tool"

def ocireg_tool_head(d):
    import subprocess
    srcdir = d.getVar('OCIREG_TOOL_SRCDIR')
    try:
        return subprocess.check_output(['git', 'rev-parse', 'HEAD'], cwd=srcdir, text=True, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return 'INVALID'

# Why OCIREG_TOOL_SRCDIR at OCIREG_TOOL_SRCREV is not the tool's source, or
# None when it is: a git repository whose commit holds the go.mod of
# GO_IMPORT.
def ocireg_tool_source_problem(d):
    import os, subprocess
    srcdir = d.getVar('OCIREG_TOOL_SRCDIR') or ''
    srcrev = d.getVar('OCIREG_TOOL_SRCREV') or ''
    if not srcdir or not os.path.isdir(srcdir):
        return 'OCIREG_TOOL_SRCDIR = "%s" is not a directory' % srcdir
    if srcrev == 'INVALID':
        return 'OCIREG_TOOL_SRCDIR = "%s" is not a git checkout (no HEAD to build)' % srcdir
    try:
        gomod = subprocess.check_output(['git', 'show', '%s:go.mod' % srcrev], cwd=srcdir, text=True, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return 'OCIREG_TOOL_SRCDIR = "%s" holds no commit OCIREG_TOOL_SRCREV = "%s" with a go.mod' % (srcdir, srcrev)
    module = 'module ' + d.getVar('OCIREG_TOOL_GO_IMPORT')
    if module not in (l.strip() for l in gomod.splitlines()):
        return 'the go.mod of OCIREG_TOOL_SRCDIR = "%s" at "%s" is not the one of %s' % (srcdir, srcrev, d.getVar('OCIREG_TOOL_GO_IMPORT'))
    return None

# The skip message: what is missing, what to set.
def ocireg_tool_skip_message(d, problem):
    return ("no ocireg-tool source to build: %s. Set OCIREG_TOOL_SRCDIR to a git clone of "
            "https://%s (and OCIREG_TOOL_SRCREV to a commit of it), or use a prebuilt tool: "
            "CONTAINER_REGISTRY_TOOL = \"/path/to/ocireg-tool\" and CONTAINER_REGISTRY_TOOL_DEPENDS = \"\""
            % (problem, d.getVar('OCIREG_TOOL_GO_IMPORT')))
