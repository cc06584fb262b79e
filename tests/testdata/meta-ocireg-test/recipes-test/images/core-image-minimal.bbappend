# The container engine and registry mode of the running TestBitbake subtest.
include ${TOPDIR}/conf/ocireg-test-variant.inc
