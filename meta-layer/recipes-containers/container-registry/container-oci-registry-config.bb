# SPDX-License-Identifier: MIT
#
# container-oci-registry-config - registry configuration for the OCI tools
# (Podman, Skopeo, Buildah, CRI-O) on target images.
#
# Installs what `ocireg-tool target oci` writes:
#   /etc/containers/registries.conf.d/50-custom-registry.conf
#       the registry (CONTAINER_REGISTRY_TARGET_URL, default: URL with
#       localhost -> 10.0.2.2), insecure when INSECURE=1, searched first for
#       short names when CONTAINER_REGISTRY_SEARCH_FIRST = "1"
#   /etc/containers/containers.conf.d/50-oci-runtime.conf  (PODMAN_OCI_RUNTIME)
#   /etc/containers/auth.json          from CONTAINER_REGISTRY_AUTHFILE, when set
# In secure mode the CA comes from container-registry-ca (a runtime
# dependency). Skipped unless CONTAINER_REGISTRY_URL or PODMAN_OCI_RUNTIME is
# set. IMAGE_FEATURES += "container-registry" picks it when
# VIRTUAL-RUNTIME_container_engine is podman, containerd or cri-o.

SUMMARY = "OCI tools registry configuration for the local container registry"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

inherit allarch container-registry

# Nothing to fetch or build: the payload comes from ocireg-tool.
do_fetch[noexec] = "1"
do_unpack[noexec] = "1"
do_patch[noexec] = "1"
do_configure[noexec] = "1"
do_compile[noexec] = "1"

python __anonymous() {
    if not (d.getVar("CONTAINER_REGISTRY_URL") or "").strip() and not (d.getVar("PODMAN_OCI_RUNTIME") or "").strip():
        raise bb.parse.SkipRecipe("neither CONTAINER_REGISTRY_URL nor PODMAN_OCI_RUNTIME is set")
    if d.getVar("CONTAINER_REGISTRY_SECURE") == "1":
        d.appendVar("RDEPENDS:" + d.getVar("PN"), " container-registry-ca")
}

do_install[prefuncs] += "container_registry_write_env"
do_install() {
    container_registry_tool target oci --skip-ca --env-dump ${CONTAINER_REGISTRY_ENV_DUMP} --dest ${D}
}

FILES:${PN} = "${sysconfdir}/containers"
CONFFILES:${PN} = "${sysconfdir}/containers/registries.conf.d/50-custom-registry.conf"
