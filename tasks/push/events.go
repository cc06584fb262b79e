package push

import v1 "github.com/google/go-containerregistry/pkg/v1"

// The events a push emits. cmd/ renders them. The images of a push go
// up at once: the events of one image (ManifestStarted to its last
// TagWritten or ImageFailed) are emitted together, as one block, when it
// is done, so blocks never interleave; Progress covers the whole push and
// may come between any two events.

// Note explains a tag decision (e.g. no git repository for sha).
type Note struct{ Text string }

// BrokenBuild is a deploy layout that cannot be pushed.
type BrokenBuild struct{ Name, Machine, Reason string }

// Started says the push is about to upload: where, with which tags and
// whose credentials ("" anonymous).
type Started struct {
	URL, Namespace string
	Tags           []string
	Arch           bool // per-architecture tags too
	AuthSource     string
}

// ManifestStarted begins one platform manifest of an image.
type ManifestStarted struct{ Image, Platform, Machine, Dir string }

// Progress is the progress of the whole push: Sent bytes of blobs done
// (uploaded, or found in the registry) of Total, the size of every blob
// of every image.
type Progress struct {
	Sent, Total int64
	Rate        float64 // bytes uploaded per second
	Done        bool    // the last one of the push
}

// BlobsDone sums up one manifest's blobs.
type BlobsDone struct {
	Uploaded     int
	Sent         int64
	Present      int
	PresentBytes int64
}

// ManifestDone is a manifest put by digest.
type ManifestDone struct{ Digest v1.Hash }

// DuplicateBuild says two machines built the same platform of an image;
// the later one wins.
type DuplicateBuild struct{ Image, Platform, Machine string }

// TagWritten is one tag's index written (or found unchanged).
type TagWritten struct {
	URL, Repo, Tag string
	Digest         v1.Hash
	Platforms      []string
	Unchanged      bool
}

// Signed is a manifest (platform manifest or a tag's index) signed, or
// found signed by the key already (Already: nothing was written); with
// Attested (the SPDX document's file name), the document attested for it.
type Signed struct {
	Repo        string
	Digest      v1.Hash
	Tag         string // the signature (or attestation) tag
	Fingerprint string // the signing key's
	Already     bool
	Attested    string
}

// ImageFailed is an image that could not be pushed; the push goes on.
type ImageFailed struct {
	Image string
	Err   error
}

// Remerged is a tag a concurrent push replaced, merged again.
type Remerged struct{ Tag string }

// ArtifactAttached is one build document attached to an image manifest
// (or found already attached: Unchanged).
type ArtifactAttached struct{ Attached }

// AttachFailed is a build document that could not be attached; the
// image's tags are still written and the push fails at the end.
type AttachFailed struct {
	Image, Platform string
	Err             error
}
