# SPDX-License-Identifier: MIT
#
# Stand-in for meta-virtualization's container-host-config (see
# conf/layer.conf): the configuration files of container hosts, of which
# TestBitbake needs policy.json. Its policy holds more than the default so
# that the test sees the merge keep it.

SUMMARY = "Container host configuration (TestBitbake stand-in)"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://policy.json"
S = "${UNPACKDIR}"

# Unlike the real recipe: the offline test builds no cross compiler.
INHIBIT_DEFAULT_DEPS = "1"

# The registry settings of the running TestBitbake subtest.
include ${TOPDIR}/conf/ocireg-test-variant.inc

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${sysconfdir}/containers
    install -m 0644 ${UNPACKDIR}/policy.json ${D}${sysconfdir}/containers/policy.json
}

BBCLASSEXTEND = "native nativesdk"
