# SPDX-License-Identifier: MIT
#
# container-registry-policy.bbclass - make the policy.json a recipe installs
# require the local registry's signatures.
#
# containers/image (Podman, Skopeo, Buildah, CRI-O) reads its signature
# policy from /etc/containers/policy.json, which meta-virtualization's
# container-host-config installs. With CONTAINER_REGISTRY_SIGN = "1" the
# layer's bbappend of that recipe inherits this class (through
# inherit_defer, so the recipe is untouched while signing is off), and
# do_install merges into ${D}${sysconfdir}/containers/policy.json, with
# `ocireg-tool target policy`, one entry:
#   transports.docker."<CONTAINER_REGISTRY_TARGET_URL>" =
#     sigstoreSigned, keyPath /etc/containers/keys/container-registry.pub,
#     signedIdentity matchRepository
# Everything else of the file (its default, other transports and scopes)
# is kept. The key and the registries.d entry that makes containers/image
# read the registry's signatures come from container-oci-registry-config,
# which the package then depends on.
#
# Variables: those of container-registry.bbclass (CONTAINER_REGISTRY_SIGN,
# CONTAINER_REGISTRY_TARGET_URL, CONTAINER_REGISTRY_URL, ...).

inherit container-registry

do_install[prefuncs] += "container_registry_write_env"
do_install:append:class-target() {
    if [ ! -f ${D}${sysconfdir}/containers/policy.json ]; then
        bbfatal "${PN} installed no ${sysconfdir}/containers/policy.json: nothing to require the registry's signatures in"
    fi
    container_registry_tool target policy --env-dump ${CONTAINER_REGISTRY_ENV_DUMP} --dest ${D}
}

RDEPENDS:${PN}:append:class-target = " container-oci-registry-config"
