# SPDX-License-Identifier: MIT
#
# meta-virtualization's container-host-config installs
# /etc/containers/policy.json. With CONTAINER_REGISTRY_SIGN = "1" the local
# registry's signature requirement is merged into it
# (container-registry-policy.bbclass); otherwise the recipe is left as it is.
inherit_defer ${@'container-registry-policy' if d.getVar('CONTAINER_REGISTRY_SIGN') == '1' else ''}
