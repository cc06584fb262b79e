# SPDX-License-Identifier: MIT
#
# container-registry-index - the local container registry's helper script,
# "package-index for containers".
#
#   bitbake container-registry-index -c generate_registry_script
#       writes ${CONTAINER_REGISTRY_STORAGE}/container-registry.sh (with a
#       copy of ocireg-tool, the registry configuration and, in secure mode,
#       the PKI) through `ocireg-tool generate`. The storage lies outside
#       tmp/, so the script keeps working after tmp/ is removed.
#   bitbake container-registry-index -c container_registry_index
#       pushes every OCI image in ${DEPLOY_DIR}/images to the running
#       registry through `ocireg-tool populate`.
#   bitbake container-registry-index
#       only explains the two tasks above: pushing is always explicit.
#
# Reads every variable of container-registry.bbclass.

SUMMARY = "Local container registry helper script and push task"
DESCRIPTION = "Generates the container-registry.sh helper with ocireg-tool and pushes deployed OCI images to the local registry."
LICENSE = "MIT"

INHIBIT_DEFAULT_DEPS = "1"
PACKAGES = ""
EXCLUDE_FROM_WORLD = "1"

inherit nopackages container-registry

CONTAINER_REGISTRY_TASKS = "do_generate_registry_script do_container_registry_index"

deltask do_fetch
deltask do_unpack
deltask do_patch
deltask do_configure
deltask do_compile
deltask do_install
deltask do_populate_lic
deltask do_populate_sysroot

# The script, tool copy and PKI live outside tmp/, where bitbake cannot see
# them go missing; generating is cheap and idempotent, so it always runs.
do_generate_registry_script[nostamp] = "1"
do_generate_registry_script[prefuncs] += "container_registry_write_env"
do_generate_registry_script() {
    # Where the script is and what to do next go to the console.
    container_registry_tool_console generate --env-dump ${CONTAINER_REGISTRY_ENV_DUMP}
}
addtask generate_registry_script

do_container_registry_index[nostamp] = "1"
do_container_registry_index[network] = "1"
do_container_registry_index[prefuncs] += "container_registry_write_env"
do_container_registry_index() {
    # What was pushed, with which tags, goes to the console.
    container_registry_tool_console populate --env-dump ${CONTAINER_REGISTRY_ENV_DUMP}
}
addtask container_registry_index after do_generate_registry_script

do_container_registry_help[nostamp] = "1"
python do_container_registry_help() {
    storage = d.getVar("CONTAINER_REGISTRY_STORAGE")
    bb.plain("container-registry-index does nothing by default. Run:\n"
             "  bitbake container-registry-index -c generate_registry_script   # write %s/container-registry.sh\n"
             "  bitbake container-registry-index -c container_registry_index   # push deployed OCI images (registry must run)\n"
             "or use the helper: %s/container-registry.sh start | push | help" % (storage, storage))
}
addtask container_registry_help before do_build
