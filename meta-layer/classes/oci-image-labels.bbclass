# SPDX-License-Identifier: MIT
#
# oci-image-labels.bbclass - write the build-time OCI labels into every OCI
# image the build deploys.
#
# Use (local.conf, for every image):
#   INHERIT += "oci-image-labels"
# or inherit it in an image recipe. Outside image recipes it does nothing.
#
# After the image tasks, every OCI layout in ${IMGDEPLOYDIR} - the *-oci
# directories, the *-oci.tar / *-oci.tar.gz archives and the *-oci-dir.tar
# archives of the layout directory the image-oci class writes - gets the
# labels `ocireg-tool labels` computes:
#   org.opencontainers.image.revision  OCI_IMAGE_REVISION, else the short git commit of TOPDIR
#   org.opencontainers.image.ref.name  OCI_IMAGE_BRANCH, else the git branch (none when detached)
#   org.opencontainers.image.created   OCI_IMAGE_BUILD_DATE, else the build time (RFC 3339 UTC)
#   org.opencontainers.image.version   PV, when it is a real version
# A value of "none" drops one label; OCI_IMAGE_AUTO_LABELS = "0" drops all.
# The variables and their defaults are declared in container-registry.bbclass.

# Only image recipes get container-registry (its variables, its env dump,
# and CONTAINER_REGISTRY_TOOL_DEPENDS): with INHERIT, every recipe inherits
# this class, and the tool's own recipe and its build dependencies must not
# depend on the tool. Deferred, so that the recipe's own inherits (image)
# are known when the condition is expanded.
inherit_defer ${@'container-registry' if bb.data.inherits_class('image', d) else ''}

python __anonymous() {
    if not bb.data.inherits_class('image', d):
        return
    d.appendVar('IMAGE_POSTPROCESS_COMMAND', ' oci_image_apply_labels')
}

# Python: the env dump needs the datastore. The tool decides everything
# else (OCI_IMAGE_AUTO_LABELS included).
python oci_image_apply_labels() {
    import glob, os, subprocess
    deploy = d.getVar('IMGDEPLOYDIR')
    layouts = []
    for pattern in ('*-oci', '*-oci.tar', '*-oci.tar.gz', '*-oci-dir.tar'):
        # Symlinks are the -latest aliases of the same layouts.
        layouts += [p for p in sorted(glob.glob(os.path.join(deploy, pattern))) if not os.path.islink(p)]
    if not layouts:
        return
    bb.build.exec_func('container_registry_write_env', d)
    cmd = [d.getVar('CONTAINER_REGISTRY_TOOL'), 'labels', '--env-dump', d.getVar('CONTAINER_REGISTRY_ENV_DUMP')]
    for p in layouts:
        cmd += ['--apply', p]
    output, _ = bb.process.run(cmd, stderr=subprocess.STDOUT)
    bb.note(output)
}
oci_image_apply_labels[vardepsexclude] += "DATETIME"
