# SPDX-License-Identifier: MIT
#
# container-registry-populate - build images and push them to the local
# registry from bitbake, the alternative to `container-registry.sh push`.
#
#   CONTAINER_REGISTRY_IMAGES = "container-base my-app"
#   bitbake container-registry-populate -c populate_registry
#       builds every image named in CONTAINER_REGISTRY_IMAGES (their
#       do_image_complete) and pushes them with `ocireg-tool populate`; with
#       CONTAINER_REGISTRY_IMAGES empty it builds nothing and pushes every OCI
#       image already deployed. The registry must be running
#       (${CONTAINER_REGISTRY_STORAGE}/container-registry.sh start).
#   bitbake container-registry-populate -c promote_registry
#       copies CONTAINER_REGISTRY_RELEASE_IMAGES (image[:tag]) from the local
#       registry to CONTAINER_REGISTRY_PROMOTE_TO (registry[/namespace]) with
#       every platform and referrer (SBOMs, signatures), sending only what it
#       lacks; credentials from CONTAINER_REGISTRY_AUTH_MODE,
#       CONTAINER_REGISTRY_PROMOTE_CA_FILE, CONTAINER_REGISTRY_PROMOTE_INSECURE.
#   bitbake container-registry-populate -c export_registry
#       writes them to CONTAINER_REGISTRY_EXPORT_FILE, one OCI layout archive
#       (an offline update bundle; CONTAINER_REGISTRY_EXPORT_SINCE: only what
#       an earlier bundle lacks). Both read the local registry, which must
#       be running, and run only when asked, like populate_registry.
#   bitbake container-registry-populate
#       only builds the images and says how to push them: pushing needs the
#       network, which no task of the build chain (do_build) may use, so it
#       is always an explicit task.
#
# Reads every variable of container-registry.bbclass.

SUMMARY = "Push deployed OCI images to the local container registry"
LICENSE = "MIT"

INHIBIT_DEFAULT_DEPS = "1"
PACKAGES = ""
EXCLUDE_FROM_WORLD = "1"

inherit nopackages container-registry

CONTAINER_REGISTRY_TASKS = "do_populate_registry do_promote_registry do_export_registry"

deltask do_fetch
deltask do_unpack
deltask do_patch
deltask do_configure
deltask do_compile
deltask do_install
deltask do_populate_lic
deltask do_populate_sysroot

python __anonymous() {
    images = (d.getVar("CONTAINER_REGISTRY_IMAGES") or "").split()
    image_tasks = "".join(" %s:do_image_complete" % i for i in images)
    d.appendVarFlag("do_populate_registry", "depends", image_tasks)
    d.appendVarFlag("do_populate_registry_help", "depends", image_tasks)
}

do_populate_registry[nostamp] = "1"
do_populate_registry[network] = "1"
do_populate_registry[prefuncs] += "container_registry_write_env"
do_populate_registry() {
    # What was pushed, with which tags, goes to the console.
    container_registry_tool_console populate --env-dump ${CONTAINER_REGISTRY_ENV_DUMP}
}
addtask populate_registry

do_promote_registry[nostamp] = "1"
do_promote_registry[network] = "1"
do_promote_registry[prefuncs] += "container_registry_write_env"
do_promote_registry() {
    if [ -z "${CONTAINER_REGISTRY_PROMOTE_TO}" ]; then
        bbfatal "set CONTAINER_REGISTRY_PROMOTE_TO (registry[/namespace]) to promote to"
    fi
    set -- ${CONTAINER_REGISTRY_RELEASE_IMAGES}
    if [ $# -eq 0 ]; then
        bbfatal "CONTAINER_REGISTRY_RELEASE_IMAGES (default: CONTAINER_REGISTRY_IMAGES) names no image (image[:tag] ...)"
    fi
    if [ -n "${CONTAINER_REGISTRY_RELEASE_TAG_PATTERN}" ]; then
        set -- "$@" --tag-pattern "${CONTAINER_REGISTRY_RELEASE_TAG_PATTERN}"
    fi
    if [ -n "${CONTAINER_REGISTRY_PROMOTE_CA_FILE}" ]; then
        set -- "$@" --ca-file "${CONTAINER_REGISTRY_PROMOTE_CA_FILE}"
    fi
    if [ "${CONTAINER_REGISTRY_PROMOTE_INSECURE}" = "1" ]; then
        set -- "$@" --dest-insecure
    fi
    container_registry_tool_console promote "$@" --to "${CONTAINER_REGISTRY_PROMOTE_TO}" --env-dump "${CONTAINER_REGISTRY_ENV_DUMP}"
}
addtask promote_registry

do_export_registry[nostamp] = "1"
do_export_registry[network] = "1"
do_export_registry[prefuncs] += "container_registry_write_env"
do_export_registry() {
    set -- ${CONTAINER_REGISTRY_RELEASE_IMAGES}
    if [ $# -eq 0 ]; then
        bbfatal "CONTAINER_REGISTRY_RELEASE_IMAGES (default: CONTAINER_REGISTRY_IMAGES) names no image (image[:tag] ...)"
    fi
    if [ -n "${CONTAINER_REGISTRY_RELEASE_TAG_PATTERN}" ]; then
        set -- "$@" --tag-pattern "${CONTAINER_REGISTRY_RELEASE_TAG_PATTERN}"
    fi
    if [ -n "${CONTAINER_REGISTRY_EXPORT_SINCE}" ]; then
        set -- "$@" --since "${CONTAINER_REGISTRY_EXPORT_SINCE}"
    fi
    install -d "$(dirname "${CONTAINER_REGISTRY_EXPORT_FILE}")"
    container_registry_tool_console export "$@" --output "${CONTAINER_REGISTRY_EXPORT_FILE}" --env-dump "${CONTAINER_REGISTRY_ENV_DUMP}"
}
addtask export_registry

do_populate_registry_help[nostamp] = "1"
python do_populate_registry_help() {
    images = d.getVar("CONTAINER_REGISTRY_IMAGES") or ""
    storage = d.getVar("CONTAINER_REGISTRY_STORAGE")
    built = "Built CONTAINER_REGISTRY_IMAGES (%s)" % images if images.strip() else \
        "CONTAINER_REGISTRY_IMAGES is empty: nothing built"
    bb.plain("%s; nothing pushed. Push with the registry running:\n"
             "  bitbake container-registry-populate -c populate_registry   # build and push\n"
             "or use the helper: %s/container-registry.sh start | push | help" % (built, storage))
}
addtask populate_registry_help before do_build
