# SPDX-License-Identifier: MIT
#
# container-registry.bbclass - hand the local container registry settings
# to ocireg-tool.
#
# The class only collects variables: it declares every setting with its
# default (the same defaults as ocireg-tool's), checks the obvious mistakes
# at parse time, writes the variables into an env dump in ${WORKDIR} and runs
# the native tool on it. Every decision is made by the tool.
#
# Use:
#   inherit container-registry
#   do_mytask[prefuncs] += "container_registry_write_env"
#   do_mytask() { container_registry_tool generate --env-dump ${CONTAINER_REGISTRY_ENV_DUMP}; }
#   addtask mytask after do_prepare_recipe_sysroot
# (container_registry_tool_console runs the tool the same way and shows
# what it printed on the bitbake console.)
#
# Variables (local.conf; defaults in brackets):
#   CONTAINER_REGISTRY_URL           registry host:port on the build host [localhost:5000]
#   CONTAINER_REGISTRY_NAMESPACE     repository namespace of pushed images [yocto]
#   CONTAINER_REGISTRY_INSECURE      1: plain HTTP registry [0]
#   CONTAINER_REGISTRY_SECURE        1: TLS with a generated CA, htpasswd auth [0]
#   CONTAINER_REGISTRY_AUTH          0: TLS without auth in secure mode; 1: force auth [""]
#   CONTAINER_REGISTRY_TAG_STRATEGY  timestamp sha git branch semver version latest arch [timestamp latest]
#   CONTAINER_REGISTRY_ATTACH        build documents attached to pushed images as OCI referrers:
#                                    sbom (SPDX + sbom-cve-check SPDX), manifest (package list);
#                                    none: nothing [sbom manifest]
#   CONTAINER_REGISTRY_RETENTION_KEEP    prune keeps the newest N builds of each image (0/empty: no limit) [""]
#   CONTAINER_REGISTRY_RETENTION_DAYS    prune keeps builds younger than D days (0/empty: no limit) [""]
#   CONTAINER_REGISTRY_RETENTION_PROTECT tag patterns prune never removes, nor their builds [latest]
#   CONTAINER_REGISTRY_RETENTION_ON_PUSH 1: push prunes the images it pushed after every push [0]
#   CONTAINER_REGISTRY_STORAGE       script, config, PKI and data [${TOPDIR}/container-registry]
#   CONTAINER_REGISTRY_SIGN          1: push signs every image (cosign signatures; key made at
#                                    generate/start in ${CONTAINER_REGISTRY_STORAGE}/pki) [0]
#   CONTAINER_REGISTRY_SIGNING_KEY   existing cosign private key to sign with instead [""]
#   CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE  0600 file holding its passphrase (else COSIGN_PASSWORD
#                                    in the environment at run time; never the passphrase here) [""]
#   CONTAINER_REGISTRY_USERNAME      htpasswd user in secure mode [yocto]
#   CONTAINER_REGISTRY_CERT_DAYS     server certificate validity [365]
#   CONTAINER_REGISTRY_CA_DAYS       CA certificate validity [3650]
#   CONTAINER_REGISTRY_CERT_SAN      extra SANs, "DNS:name,IP:addr" [""]
#   CONTAINER_REGISTRY_AUTH_MODE     none, home, authfile, credsfile [none]
#   CONTAINER_REGISTRY_AUTHFILE      Docker-style config.json for authfile mode [""]
#   CONTAINER_REGISTRY_CREDSFILE     key=value credentials file for credsfile mode [""]
#   CONTAINER_REGISTRY_IMAGES        images container-registry-populate pushes (all when empty) [""]
#   CONTAINER_REGISTRY_RELEASE_IMAGES    image[:tag] do_promote_registry and do_export_registry take
#                                        (tag latest when absent) [${CONTAINER_REGISTRY_IMAGES}]
#   CONTAINER_REGISTRY_RELEASE_TAG_PATTERN shell pattern of the tags they take of each image
#                                        (images then given without a tag; * every tag) [""]
#   CONTAINER_REGISTRY_PROMOTE_TO        registry[/namespace] do_promote_registry copies to [""]
#   CONTAINER_REGISTRY_PROMOTE_CA_FILE   CA certificates (PEM) of its TLS, beside the system's [""]
#   CONTAINER_REGISTRY_PROMOTE_INSECURE  1: plain HTTP, or TLS unchecked, for that registry [0]
#   CONTAINER_REGISTRY_EXPORT_FILE       the bundle do_export_registry writes
#                                        [${DEPLOY_DIR}/container-bundles/container-registry-bundle.tar]
#   CONTAINER_REGISTRY_EXPORT_SINCE      an earlier bundle: write a differential one [""]
#   CONTAINER_REGISTRY_SEARCH_FIRST  targets search the registry first for short names [1]
#   CONTAINER_REGISTRY_TARGET_URL    address targets use (default: URL with localhost -> 10.0.2.2) [""]
#   CONTAINER_REGISTRY_LISTEN        address the registry listens on; "::" every interface
#                                    (default: loopback for a localhost URL and QEMU targets) [""]
#   CONTAINER_REGISTRY_UI            1: the registry answers browsers (/ui/); 0: API only [1]
#   CONTAINER_REGISTRY_ALLOWED_HOSTS more host names the registry answers for (requests naming
#                                    another are refused: DNS rebinding); * any [""]
#   CONTAINER_REGISTRY_GC_INTERVAL   the registry collects garbage itself this often, online
#                                    (pruning first with the retention policy); e.g. 24h [""]: never
#   CONTAINER_REGISTRY_BACKEND       shared object storage of the registry data,
#                                    s3://bucket/prefix?endpoint=URL&region=R (empty: local data/) [""]
#   CONTAINER_REGISTRY_REDIS         redis host:port[/db] shared by replicas (cache, push lock) [""]
#   (credentials of both: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, or a 0600
#    file named by CONTAINER_REGISTRY_BACKEND_CREDENTIALS at run time; never set them here)
#   DOCKER_REGISTRY_INSECURE         registries Docker on the target reaches over HTTP [""]
#   DOCKER_OCI_RUNTIMES              JSON object of extra Docker runtimes [""]
#   DOCKER_DEFAULT_RUNTIME           Docker's default runtime [""]
#   PODMAN_OCI_RUNTIME               Podman's OCI runtime [""]
#   PODMAN_OCI_RUNTIME_PATH          its path (default /usr/bin/<runtime>) [""]
#   OCI_IMAGE_AUTO_LABELS            0 turns off build-time OCI labels [1]
#   OCI_IMAGE_REVISION, OCI_IMAGE_BRANCH, OCI_IMAGE_BUILD_DATE
#                                    label overrides, "none" drops one [""]
# Bitbake side only:
#   CONTAINER_REGISTRY_TOOL          the ocireg-tool binary [${STAGING_BINDIR_NATIVE}/ocireg-tool]
#   CONTAINER_REGISTRY_TOOL_DEPENDS  recipe providing it ["ocireg-tool-native"]; with the default,
#                                    a recipe skips itself when the tool has no source
#                                    (ocireg-tool-source.bbclass: OCIREG_TOOL_SRCDIR, OCIREG_TOOL_SRCREV)
#   CONTAINER_REGISTRY_ENV_DUMP      where the env dump is written [${WORKDIR}/container-registry.env]
#   CONTAINER_REGISTRY_DUMP_VARS     variables written to the dump
#   CONTAINER_REGISTRY_TASKS         extra tasks (outside the normal build chain) that run
#                                    the tool; they get the tool staged into the sysroot [""]
#
# No credentials are needed in bitbake variables for any mode: secure mode
# generates its password when the registry starts, and the auth modes read
# files. CONTAINER_REGISTRY_PASSWORD, if set all the same, is written to the
# env dump (mode 0600) only.

inherit ocireg-tool-source

CONTAINER_REGISTRY_URL ?= "localhost:5000"
CONTAINER_REGISTRY_URL[doc] = "Registry address (host:port) used on the build host."
CONTAINER_REGISTRY_NAMESPACE ?= "yocto"
CONTAINER_REGISTRY_NAMESPACE[doc] = "Repository namespace images are pushed under (yocto/container-base)."
CONTAINER_REGISTRY_INSECURE ?= "0"
CONTAINER_REGISTRY_INSECURE[doc] = "1: the registry speaks plain HTTP; targets get it as an insecure registry."
CONTAINER_REGISTRY_SECURE ?= "0"
CONTAINER_REGISTRY_SECURE[doc] = "1: TLS with a generated CA and server certificate, htpasswd authentication."
CONTAINER_REGISTRY_AUTH ?= ""
CONTAINER_REGISTRY_AUTH[doc] = "Secure mode authentication: empty follows SECURE, 0 is TLS only, 1 forces it (and SECURE)."
CONTAINER_REGISTRY_TAG_STRATEGY ?= "timestamp latest"
CONTAINER_REGISTRY_TAG_STRATEGY[doc] = "Space-separated tag strategies: timestamp sha git branch semver version latest arch."
CONTAINER_REGISTRY_ATTACH ?= "sbom manifest"
CONTAINER_REGISTRY_ATTACH[doc] = "Build documents pushed as OCI referrers of each image: sbom (the image's .spdx.json and .sbom-cve-check.spdx.json), manifest (the .manifest package list); none: nothing."
CONTAINER_REGISTRY_RETENTION_KEEP ?= ""
CONTAINER_REGISTRY_RETENTION_KEEP[doc] = "prune keeps the newest N builds (timestamp, git sha, version tags) of every image; empty or 0: no count limit. Nothing is pruned unless this or CONTAINER_REGISTRY_RETENTION_DAYS is set."
CONTAINER_REGISTRY_RETENTION_DAYS ?= ""
CONTAINER_REGISTRY_RETENTION_DAYS[doc] = "prune keeps the builds younger than D days; empty or 0: no age limit."
CONTAINER_REGISTRY_RETENTION_PROTECT ?= "latest"
CONTAINER_REGISTRY_RETENTION_PROTECT[doc] = "Space-separated tag patterns (shell globs such as release-*) prune never removes, nor the builds they tag. Tags that are not build tags (branch names, --tag names) are never pruned anyway."
CONTAINER_REGISTRY_RETENTION_ON_PUSH ?= "0"
CONTAINER_REGISTRY_RETENTION_ON_PUSH[doc] = "1: every push to the local registry prunes the images it pushed with the retention policy."
CONTAINER_REGISTRY_STORAGE ?= "${TOPDIR}/container-registry"
CONTAINER_REGISTRY_STORAGE[doc] = "Persistent directory (outside tmp/) for the helper script, registry config, PKI and data."
CONTAINER_REGISTRY_SIGN ?= "0"
CONTAINER_REGISTRY_SIGN[doc] = "1: push (and import --sign) signs every index and platform manifest with a cosign key, as sha256-<digest>.sig tags that cosign, podman, skopeo and CRI-O verify; the key is made in the storage's pki/ unless CONTAINER_REGISTRY_SIGNING_KEY names one. Secure mode does not turn it on."
CONTAINER_REGISTRY_SIGNING_KEY ?= ""
CONTAINER_REGISTRY_SIGNING_KEY[doc] = "Existing cosign private key (encrypted PEM, ECDSA P-256, from cosign generate-key-pair) push signs with; empty: the generated pki/signing.key."
CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE ?= ""
CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE[doc] = "File (mode 0600) holding the passphrase of CONTAINER_REGISTRY_SIGNING_KEY; empty: COSIGN_PASSWORD from the environment. Never put the passphrase itself in a variable."
CONTAINER_REGISTRY_USERNAME ?= "yocto"
CONTAINER_REGISTRY_USERNAME[doc] = "User name of the local registry's htpasswd authentication."
CONTAINER_REGISTRY_CERT_DAYS ?= "365"
CONTAINER_REGISTRY_CERT_DAYS[doc] = "Validity of the generated server certificate, in days."
CONTAINER_REGISTRY_CA_DAYS ?= "3650"
CONTAINER_REGISTRY_CA_DAYS[doc] = "Validity of the generated CA certificate, in days."
CONTAINER_REGISTRY_CERT_SAN ?= ""
CONTAINER_REGISTRY_CERT_SAN[doc] = "Extra subjectAltName entries of the server certificate: DNS:name,IP:address."
CONTAINER_REGISTRY_AUTH_MODE ?= "none"
CONTAINER_REGISTRY_AUTH_MODE[doc] = "Push credentials: none, home (~/.docker/config.json, opt-in), authfile or credsfile."
CONTAINER_REGISTRY_AUTHFILE ?= ""
CONTAINER_REGISTRY_AUTHFILE[doc] = "Docker-style config.json for AUTH_MODE authfile (also installed on targets)."
CONTAINER_REGISTRY_CREDSFILE ?= ""
CONTAINER_REGISTRY_CREDSFILE[doc] = "key=value credentials file for AUTH_MODE credsfile."
CONTAINER_REGISTRY_IMAGES ?= ""
CONTAINER_REGISTRY_IMAGES[doc] = "Images container-registry-populate builds and pushes; empty pushes every deployed image."
CONTAINER_REGISTRY_RELEASE_IMAGES ?= "${CONTAINER_REGISTRY_IMAGES}"
CONTAINER_REGISTRY_RELEASE_IMAGES[doc] = "Images (image[:tag], tag latest when absent) container-registry-populate's do_promote_registry and do_export_registry take from the local registry, with every platform and referrer."
CONTAINER_REGISTRY_RELEASE_TAG_PATTERN ?= ""
CONTAINER_REGISTRY_RELEASE_TAG_PATTERN[doc] = "Shell pattern of the tags promote and export take of each image of CONTAINER_REGISTRY_RELEASE_IMAGES (given without tags then), e.g. v1.*; * every tag; empty: the tags named."
CONTAINER_REGISTRY_PROMOTE_TO ?= ""
CONTAINER_REGISTRY_PROMOTE_TO[doc] = "Registry do_promote_registry copies to, host[:port][/namespace]; its credentials come from CONTAINER_REGISTRY_AUTH_MODE (authfile, credsfile, home)."
CONTAINER_REGISTRY_PROMOTE_CA_FILE ?= ""
CONTAINER_REGISTRY_PROMOTE_CA_FILE[doc] = "PEM file of CA certificates the promote destination's TLS certificate is checked against, besides the system's."
CONTAINER_REGISTRY_PROMOTE_INSECURE ?= "0"
CONTAINER_REGISTRY_PROMOTE_INSECURE[doc] = "1: the promote destination may speak plain HTTP, or TLS whose certificate is not checked (a test registry, a lab mirror)."
CONTAINER_REGISTRY_EXPORT_FILE ?= "${DEPLOY_DIR}/container-bundles/container-registry-bundle.tar"
CONTAINER_REGISTRY_EXPORT_FILE[doc] = "OCI layout archive (oci-archive) do_export_registry writes: the release images with every platform and referrer, the same bytes for the same registry content."
CONTAINER_REGISTRY_EXPORT_SINCE ?= ""
CONTAINER_REGISTRY_EXPORT_SINCE[doc] = "An earlier bundle: do_export_registry leaves out the blobs it holds (a differential bundle)."
CONTAINER_REGISTRY_SEARCH_FIRST ?= "1"
CONTAINER_REGISTRY_SEARCH_FIRST[doc] = "1: Podman/CRI-O on targets search the registry first for short names."
CONTAINER_REGISTRY_TARGET_URL ?= ""
CONTAINER_REGISTRY_TARGET_URL[doc] = "Registry address as targets see it; empty translates localhost to 10.0.2.2 (QEMU slirp)."
CONTAINER_REGISTRY_LISTEN ?= ""
CONTAINER_REGISTRY_LISTEN[doc] = "IP address the registry listens on; empty: loopback only when the URL host is loopback and targets reach it at 10.0.2.2, else every interface; '::' every interface."
CONTAINER_REGISTRY_UI ?= "1"
CONTAINER_REGISTRY_UI[doc] = "1: the registry answers browsers with a read-only registry browser at /ui/ (images, tags, platforms, labels, pull commands); 0: the /v2/ API only."
CONTAINER_REGISTRY_ALLOWED_HOSTS ?= ""
CONTAINER_REGISTRY_ALLOWED_HOSTS[doc] = "Space-separated host names the registry answers for beyond the URL's, the target's, loopback, the listen addresses, the certificate's names and the host's own name; IP addresses always pass; a request naming another host gets 421 (DNS rebinding). *: any name."
CONTAINER_REGISTRY_GC_INTERVAL ?= ""
CONTAINER_REGISTRY_GC_INTERVAL[doc] = "How often the running registry collects garbage by itself, online (pushes wait, pulls go on), one replica at a time, pruning first with the retention policy: a duration such as 24h or 30m (at least 1m). Empty or 0: never."
CONTAINER_REGISTRY_BACKEND ?= ""
CONTAINER_REGISTRY_BACKEND[doc] = "Shared object storage of the registry data, s3://bucket/prefix?endpoint=http://host:8333&region=us-east-1 (any S3-compatible endpoint, path-style; ca=FILE for a private CA); empty: data/ under CONTAINER_REGISTRY_STORAGE. No credentials here: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or CONTAINER_REGISTRY_BACKEND_CREDENTIALS at run time."
CONTAINER_REGISTRY_REDIS ?= ""
CONTAINER_REGISTRY_REDIS[doc] = "redis host:port[/db] the replicas of a shared backend share: blob descriptor cache and the lock of index merges; empty: none."
DOCKER_REGISTRY_INSECURE ?= ""
DOCKER_REGISTRY_INSECURE[doc] = "Registries Docker on the target may reach over plain HTTP (daemon.json insecure-registries)."
DOCKER_OCI_RUNTIMES ?= ""
DOCKER_OCI_RUNTIMES[doc] = "JSON object of extra Docker runtimes for daemon.json, e.g. {\"vxn\": {\"path\": \"/usr/bin/vxn-oci-runtime\"}}."
DOCKER_DEFAULT_RUNTIME ?= ""
DOCKER_DEFAULT_RUNTIME[doc] = "Docker's default runtime in daemon.json."
PODMAN_OCI_RUNTIME ?= ""
PODMAN_OCI_RUNTIME[doc] = "OCI runtime Podman uses on the target (containers.conf.d drop-in)."
PODMAN_OCI_RUNTIME_PATH ?= ""
PODMAN_OCI_RUNTIME_PATH[doc] = "Path of PODMAN_OCI_RUNTIME; empty means /usr/bin/<runtime>."
OCI_IMAGE_AUTO_LABELS ?= "1"
OCI_IMAGE_AUTO_LABELS[doc] = "0 turns off every build-time OCI label (oci-image-labels class)."
OCI_IMAGE_REVISION ?= ""
OCI_IMAGE_REVISION[doc] = "org.opencontainers.image.revision; empty: short git commit of TOPDIR; none: no label."
OCI_IMAGE_BRANCH ?= ""
OCI_IMAGE_BRANCH[doc] = "org.opencontainers.image.ref.name; empty: git branch of TOPDIR; none: no label."
OCI_IMAGE_BUILD_DATE ?= ""
OCI_IMAGE_BUILD_DATE[doc] = "org.opencontainers.image.created (RFC 3339); empty: build time; none: no label."

CONTAINER_REGISTRY_TOOL ?= "${STAGING_BINDIR_NATIVE}/ocireg-tool"
CONTAINER_REGISTRY_TOOL[doc] = "The ocireg-tool binary tasks run (and the helper script falls back to)."
CONTAINER_REGISTRY_TOOL_DEPENDS ?= "ocireg-tool-native"
CONTAINER_REGISTRY_TOOL_DEPENDS[doc] = "Recipe providing CONTAINER_REGISTRY_TOOL; empty when it is prebuilt."
CONTAINER_REGISTRY_ENV_DUMP ?= "${WORKDIR}/container-registry.env"
CONTAINER_REGISTRY_ENV_DUMP[doc] = "Env dump the class writes for ocireg-tool --env-dump."
CONTAINER_REGISTRY_DUMP_VARS ?= "\
    CONTAINER_REGISTRY_URL CONTAINER_REGISTRY_NAMESPACE CONTAINER_REGISTRY_INSECURE \
    CONTAINER_REGISTRY_SECURE CONTAINER_REGISTRY_AUTH CONTAINER_REGISTRY_TAG_STRATEGY \
    CONTAINER_REGISTRY_ATTACH \
    CONTAINER_REGISTRY_RETENTION_KEEP CONTAINER_REGISTRY_RETENTION_DAYS \
    CONTAINER_REGISTRY_RETENTION_PROTECT CONTAINER_REGISTRY_RETENTION_ON_PUSH \
    CONTAINER_REGISTRY_STORAGE CONTAINER_REGISTRY_USERNAME CONTAINER_REGISTRY_PASSWORD \
    CONTAINER_REGISTRY_CERT_DAYS CONTAINER_REGISTRY_CA_DAYS CONTAINER_REGISTRY_CERT_SAN \
    CONTAINER_REGISTRY_AUTH_MODE CONTAINER_REGISTRY_AUTHFILE CONTAINER_REGISTRY_CREDSFILE \
    CONTAINER_REGISTRY_IMAGES CONTAINER_REGISTRY_SEARCH_FIRST CONTAINER_REGISTRY_TARGET_URL \
    CONTAINER_REGISTRY_LISTEN CONTAINER_REGISTRY_UI CONTAINER_REGISTRY_BACKEND CONTAINER_REGISTRY_REDIS \
    CONTAINER_REGISTRY_ALLOWED_HOSTS CONTAINER_REGISTRY_GC_INTERVAL \
    CONTAINER_REGISTRY_SIGN CONTAINER_REGISTRY_SIGNING_KEY CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE \
    CONTAINER_REGISTRY_TOOL \
    DOCKER_REGISTRY_INSECURE DOCKER_OCI_RUNTIMES DOCKER_DEFAULT_RUNTIME \
    PODMAN_OCI_RUNTIME PODMAN_OCI_RUNTIME_PATH \
    OCI_IMAGE_AUTO_LABELS OCI_IMAGE_REVISION OCI_IMAGE_BRANCH OCI_IMAGE_BUILD_DATE \
    TOPDIR DEPLOY_DIR DEPLOY_DIR_IMAGE MACHINE TARGET_ARCH PV IMAGE_VERSION \
    STAGING_DIR STAGING_DIR_NATIVE STAGING_BINDIR_NATIVE STAGING_DIR_HOST STAGING_DIR_TARGET \
"
CONTAINER_REGISTRY_DUMP_VARS[doc] = "Variables container_registry_write_env writes to the env dump."
CONTAINER_REGISTRY_TASKS ?= ""
CONTAINER_REGISTRY_TASKS[doc] = "Standalone tasks running the tool: each depends on the tool's do_populate_sysroot and extends the sysroot first."

python __anonymous() {
    def flag(name):
        v = (d.getVar(name) or "").strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("", "0", "false", "no", "off"):
            return False
        bb.fatal('%s = "%s" is not a boolean (use "1" or "0")' % (name, d.getVar(name)))

    auth = (d.getVar("CONTAINER_REGISTRY_AUTH") or "").strip()
    if auth and flag("CONTAINER_REGISTRY_AUTH") and not flag("CONTAINER_REGISTRY_SECURE"):
        bb.warn('CONTAINER_REGISTRY_AUTH = "1" needs TLS: enabling CONTAINER_REGISTRY_SECURE')
        d.setVar("CONTAINER_REGISTRY_SECURE", "1")
    if flag("CONTAINER_REGISTRY_SECURE") and flag("CONTAINER_REGISTRY_INSECURE"):
        bb.fatal('CONTAINER_REGISTRY_SECURE = "1" and CONTAINER_REGISTRY_INSECURE = "1" contradict each other; set only one')

    mode = d.getVar("CONTAINER_REGISTRY_AUTH_MODE")
    if mode == "env":
        bb.fatal('CONTAINER_REGISTRY_AUTH_MODE = "env" is for the helper script only; bitbake supports none, home, authfile, credsfile')
    if mode not in ("none", "home", "authfile", "credsfile"):
        bb.fatal('CONTAINER_REGISTRY_AUTH_MODE = "%s": use none, home, authfile or credsfile' % mode)
    if mode == "authfile" and not d.getVar("CONTAINER_REGISTRY_AUTHFILE"):
        bb.fatal('CONTAINER_REGISTRY_AUTH_MODE = "authfile" needs CONTAINER_REGISTRY_AUTHFILE')
    if mode == "credsfile" and not d.getVar("CONTAINER_REGISTRY_CREDSFILE"):
        bb.fatal('CONTAINER_REGISTRY_AUTH_MODE = "credsfile" needs CONTAINER_REGISTRY_CREDSFILE')

    # Normal tasks (do_install, image tasks) find the tool through DEPENDS;
    # standalone tasks stage it themselves, so they need no toolchain.
    tool = (d.getVar("CONTAINER_REGISTRY_TOOL_DEPENDS") or "").strip()
    # The layer's own recipes skip themselves, as the tool recipe does,
    # when the tool has no source to be built from (images, which get the
    # class from oci-image-labels, are left to say they cannot be built).
    if tool == "ocireg-tool-native" and not bb.data.inherits_class("image", d):
        problem = ocireg_tool_source_problem(d)
        if problem:
            raise bb.parse.SkipRecipe("needs ocireg-tool-native: " + ocireg_tool_skip_message(d, problem))
    if tool:
        d.appendVar("DEPENDS", " " + tool)
        for task in (d.getVar("CONTAINER_REGISTRY_TASKS") or "").split():
            d.appendVarFlag(task, "depends", " %s:do_populate_sysroot" % tool)
            d.prependVarFlag(task, "prefuncs", "extend_recipe_sysroot ")
}

# Writes CONTAINER_REGISTRY_DUMP_VARS into CONTAINER_REGISTRY_ENV_DUMP as
# NAME="value" lines, escaped as `bitbake -e` writes them and ocireg-tool
# reads them: \" for ", \` for `, \$ for $, " \" before each newline of a
# multi-line value, backslashes as they are. Unset variables are left out.
python container_registry_write_env() {
    import os
    path = d.getVar("CONTAINER_REGISTRY_ENV_DUMP")
    lines = ["# Written by container-registry.bbclass for ocireg-tool --env-dump\n"]
    for name in sorted(set(d.getVar("CONTAINER_REGISTRY_DUMP_VARS").split())):
        value = d.getVar(name)
        if value is None:
            continue
        value = value.replace('"', '\\"').replace('`', '\\`').replace('$', '\\$').replace('\n', ' \\\n')
        lines.append('%s="%s"\n' % (name, value))
    bb.utils.mkdirhier(os.path.dirname(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(lines)
}
container_registry_write_env[vardeps] += "${CONTAINER_REGISTRY_DUMP_VARS}"
container_registry_write_env[vardepsexclude] += "CONTAINER_REGISTRY_PASSWORD"

# Runs ocireg-tool; call it from shell tasks after container_registry_write_env.
container_registry_tool() {
    if [ ! -x "${CONTAINER_REGISTRY_TOOL}" ]; then
        bbfatal "ocireg-tool not found at ${CONTAINER_REGISTRY_TOOL} (CONTAINER_REGISTRY_TOOL_DEPENDS = \"${CONTAINER_REGISTRY_TOOL_DEPENDS}\")"
    fi
    "${CONTAINER_REGISTRY_TOOL}" "$@"
}

# Runs ocireg-tool like container_registry_tool and shows everything it
# printed on the bitbake console (and in the task log); when it fails, its
# output is the task's error. For tasks a user runs to see the result.
container_registry_tool_console() {
    if out=$(container_registry_tool "$@" 2>&1); then
        bbplain "$out"
    else
        bbfatal "$out"
    fi
}
