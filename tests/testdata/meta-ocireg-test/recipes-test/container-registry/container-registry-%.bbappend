# The registry settings of the running TestBitbake subtest.
include ${TOPDIR}/conf/ocireg-test-variant.inc
