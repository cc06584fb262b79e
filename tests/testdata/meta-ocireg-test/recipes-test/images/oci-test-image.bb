# SPDX-License-Identifier: MIT
#
# oci-test-image - TestBitbake's stand-in for an image built with
# meta-virtualization's image-oci class (IMAGE_FSTYPES += "oci", umoci
# backend, OCI_IMAGE_TAR_OUTPUT on).
#
# A real rootfs needs native tools that cannot be built offline, so
#   bitbake oci-test-image -c image_oci_test
# writes, from a one-file rootfs and with Python's standard library only,
# what image-oci leaves in ${IMGDEPLOYDIR}:
#   ${IMAGE_NAME}${IMAGE_NAME_SUFFIX}-oci           the OCI layout; its index.json
#                                                   entry is annotated
#                                                   org.opencontainers.image.ref.name=${OCI_IMAGE_TAG}
#   ${IMAGE_NAME}${IMAGE_NAME_SUFFIX}-oci.tar       the layout's content at the top level
#   ${IMAGE_NAME}${IMAGE_NAME_SUFFIX}-oci-dir.tar   the layout directory itself
#   ${IMAGE_BASENAME}-${OCI_IMAGE_TAG}-oci[.tar|-dir.tar]   symlinks to the three
# then runs IMAGE_POSTPROCESS_COMMAND on it as image.bbclass's
# do_image_complete does (the oci-image-labels class hooks in there), and
# copies ${IMGDEPLOYDIR} into ${DEPLOY_DIR_IMAGE} as do_image_complete's
# shared state does. The task always runs.

SUMMARY = "Test image leaving an OCI layout like image-oci (TestBitbake fixture)"
LICENSE = "MIT"

inherit image

EXCLUDE_FROM_WORLD = "1"
IMAGE_INSTALL = ""
IMAGE_LINGUAS = ""
PV = "1.2.3"

# What image-oci reads (its defaults), and one label of the image's own
# that the build-time labels must not replace.
OCI_IMAGE_TAG = "latest"
OCI_IMAGE_ARCH = "${TARGET_ARCH}"
OCI_IMAGE_ENTRYPOINT = "sh"
OCI_IMAGE_LABELS = "org.example.fixture=oci-test-image"

# The build-time labels this image must get: explicit revision and date,
# no branch label, and the version label from PV.
OCI_IMAGE_REVISION = "8a3f2b1"
OCI_IMAGE_BRANCH = "none"
OCI_IMAGE_BUILD_DATE = "2026-01-12T20:32:24Z"

def oci_test_blob(blobs, data):
    import hashlib, os
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

def oci_test_layout(d, layout):
    """Write a one-layer OCI image layout the way umoci leaves one."""
    import gzip, hashlib, io, json, os, tarfile

    blobs = os.path.join(layout, "blobs", "sha256")
    bb.utils.mkdirhier(blobs)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    release = ("ID=oci-test-image\nVERSION_ID=%s\n" % d.getVar("PV")).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("etc/os-release")
        info.size, info.mode, info.mtime = len(release), 0o644, 0
        tf.addfile(info, io.BytesIO(release))
    layer = oci_test_blob(blobs, gzip.compress(raw.getvalue(), mtime=0))
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"

    labels = dict(l.split("=", 1) for l in d.getVar("OCI_IMAGE_LABELS").split())
    config = {
        "architecture": d.getVar("OCI_IMAGE_ARCH"),
        "os": "linux",
        "config": {"Entrypoint": [d.getVar("OCI_IMAGE_ENTRYPOINT")], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
    }
    cfg = oci_test_blob(blobs, json.dumps(config).encode())
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"

    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": cfg, "layers": [layer]}
    desc = oci_test_blob(blobs, json.dumps(manifest).encode())
    desc["mediaType"] = manifest["mediaType"]
    desc["annotations"] = {"org.opencontainers.image.ref.name": d.getVar("OCI_IMAGE_TAG")}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [desc]}, f)

python do_image_oci_test() {
    import os, shutil, tarfile
    from oe.utils import execute_pre_post_process

    deploy = d.getVar("IMGDEPLOYDIR")
    name = d.getVar("IMAGE_NAME") + d.getVar("IMAGE_NAME_SUFFIX") + "-oci"
    link = d.getVar("IMAGE_BASENAME") + "-" + d.getVar("OCI_IMAGE_TAG") + "-oci"

    oci_test_layout(d, os.path.join(deploy, name))
    with tarfile.open(os.path.join(deploy, name + ".tar"), "w") as tf:
        for entry in sorted(os.listdir(os.path.join(deploy, name))):
            tf.add(os.path.join(deploy, name, entry), arcname="./" + entry)
    with tarfile.open(os.path.join(deploy, name + "-dir.tar"), "w") as tf:
        tf.add(os.path.join(deploy, name), arcname=name)
    for suffix in ("", ".tar", "-dir.tar"):
        os.symlink(name + suffix, os.path.join(deploy, link + suffix))

    execute_pre_post_process(d, d.getVar("IMAGE_POSTPROCESS_COMMAND"))

    # Deploy: replace this image's earlier builds in DEPLOY_DIR_IMAGE.
    out = d.getVar("DEPLOY_DIR_IMAGE")
    bb.utils.mkdirhier(out)
    prefix = d.getVar("IMAGE_BASENAME") + "-"
    for entry in os.listdir(out):
        if entry.startswith(prefix) and "-oci" in entry:
            path = os.path.join(out, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    for entry in sorted(os.listdir(deploy)):
        src, dst = os.path.join(deploy, entry), os.path.join(out, entry)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst)
    bb.plain("oci-test-image: deployed %s to %s" % (name, out))
}
do_image_oci_test[cleandirs] = "${IMGDEPLOYDIR}"
do_image_oci_test[nostamp] = "1"
do_image_oci_test[vardepsexclude] += "DATETIME"
addtask image_oci_test
