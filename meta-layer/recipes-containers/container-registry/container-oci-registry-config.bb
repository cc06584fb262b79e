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
# With CONTAINER_REGISTRY_SIGN = "1" also
#   /etc/containers/keys/container-registry.pub   the signing public key
#                                      (${CONTAINER_REGISTRY_STORAGE}/pki/signing.pub)
#   /etc/containers/registries.d/container-registry.yaml
#                                      use-sigstore-attachments for the registry
# while the requirement in /etc/containers/policy.json is merged into the
# file meta-virtualization's container-host-config ships (the layer's
# bbappend, container-registry-policy.bbclass); without meta-virtualization
# in the build nothing requires the signatures, and parsing says so.
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
    if d.getVar("CONTAINER_REGISTRY_SIGN") == "1":
        # The public key is generated (once) with the helper script.
        d.appendVarFlag("do_install", "depends", " container-registry-index:do_generate_registry_script")
        if "virtualization-layer" not in (d.getVar("BBFILE_COLLECTIONS") or "").split():
            bb.warn('CONTAINER_REGISTRY_SIGN = "1": meta-virtualization (container-host-config, which installs /etc/containers/policy.json) is not in this build, so no policy on the target requires the registry\'s signatures; merge it into your policy.json with `ocireg-tool target policy`')
}

# Rebuild when the signing public key changes.
do_install[file-checksums] += "${@'${CONTAINER_REGISTRY_STORAGE}/pki/signing.pub:%s' % os.path.exists(d.expand('${CONTAINER_REGISTRY_STORAGE}/pki/signing.pub')) if d.getVar('CONTAINER_REGISTRY_SIGN') == '1' else ''}"

do_install[prefuncs] += "container_registry_write_env"
do_install() {
    container_registry_tool target oci --skip-ca --skip-policy --env-dump ${CONTAINER_REGISTRY_ENV_DUMP} --dest ${D}
}

FILES:${PN} = "${sysconfdir}/containers"
CONFFILES:${PN} = "${sysconfdir}/containers/registries.conf.d/50-custom-registry.conf"
