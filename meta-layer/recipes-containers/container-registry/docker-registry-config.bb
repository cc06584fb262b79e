# SPDX-License-Identifier: MIT
#
# docker-registry-config - Docker daemon configuration for the local
# container registry on target images.
#
# Installs what `ocireg-tool target docker` writes:
#   /etc/docker/daemon.json            insecure-registries (DOCKER_REGISTRY_INSECURE,
#                                      or the registry when INSECURE=1),
#                                      runtimes (DOCKER_OCI_RUNTIMES, DOCKER_DEFAULT_RUNTIME)
#   /root/.docker/config.json          from CONTAINER_REGISTRY_AUTHFILE, when set
# In secure mode the CA comes from container-registry-ca (a runtime
# dependency), so the two packages never ship the same file.
# Skipped unless an insecure registry, secure mode or DOCKER_OCI_RUNTIMES is
# configured. IMAGE_FEATURES += "container-registry" picks it when
# VIRTUAL-RUNTIME_container_engine is docker or docker-moby.

SUMMARY = "Docker daemon configuration for the local container registry"
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
    configured = (d.getVar("DOCKER_REGISTRY_INSECURE") or "").strip() \
        or d.getVar("CONTAINER_REGISTRY_INSECURE") == "1" \
        or d.getVar("CONTAINER_REGISTRY_SECURE") == "1" \
        or (d.getVar("DOCKER_OCI_RUNTIMES") or "").strip()
    if not configured:
        raise bb.parse.SkipRecipe("no insecure registry, secure mode or DOCKER_OCI_RUNTIMES configured")
    if d.getVar("CONTAINER_REGISTRY_SECURE") == "1":
        d.appendVar("RDEPENDS:" + d.getVar("PN"), " container-registry-ca")
}

do_install[prefuncs] += "container_registry_write_env"
do_install() {
    container_registry_tool target docker --skip-ca --env-dump ${CONTAINER_REGISTRY_ENV_DUMP} --dest ${D}
}

FILES:${PN} = "\
    ${sysconfdir}/docker \
    ${ROOT_HOME}/.docker \
"
CONFFILES:${PN} = "${sysconfdir}/docker/daemon.json"
