package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/distribution/distribution/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// MaxSigManifest bounds a signature manifest read for a check (one layer
// is about 400 bytes of it).
const MaxSigManifest = 1 << 20

// Check is what a signature tag holds for one manifest.
type Check struct {
	// SignedBy are the fingerprints of the known keys that made a valid
	// signature of the manifest.
	SignedBy []string `json:"signed_by,omitempty"`
	// Others counts the signatures that are not a valid signature of the
	// manifest by a known key (another key, another manifest, broken).
	Others int `json:"others,omitempty"`
}

// Keys are the public keys signatures are checked against.
type Keys []*ecdsa.PublicKey

// KnownKeys are the keys c's registry signs with: pki/signing.pub when it
// exists (none yet: no key; it is made at generate/start with signing on).
func KnownKeys(c *config.Config) (Keys, error) {
	pub, err := ReadPublicKey(c.SigningPubFile())
	if err != nil {
		if exists(c.SigningPubFile()) {
			return nil, err
		}
		return nil, nil
	}
	return Keys{pub}, nil
}

// CheckManifest checks raw, the manifest of d's signature tag, against
// keys; payload returns the content of one of its layers (the caller
// bounds it to MaxPayload). A layer whose payload does not read counts
// among Others.
func CheckManifest(raw []byte, d v1.Hash, keys Keys, payload func(v1.Descriptor) ([]byte, error)) (Check, error) {
	var ch Check
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return ch, fmt.Errorf("signature manifest: %w", err)
	}
	for _, l := range m.Layers {
		if l.MediaType != PayloadType {
			continue
		}
		fp := checkLayer(l, d, keys, payload)
		if fp == "" {
			ch.Others++
		} else if !slices.Contains(ch.SignedBy, fp) {
			ch.SignedBy = append(ch.SignedBy, fp)
		}
	}
	return ch, nil
}

// checkLayer returns the fingerprint of the key among keys that signed d
// in layer l ("" none).
func checkLayer(l v1.Descriptor, d v1.Hash, keys Keys, payload func(v1.Descriptor) ([]byte, error)) string {
	if l.Size > MaxPayload || len(keys) == 0 {
		return ""
	}
	data, err := payload(l)
	if err != nil || int64(len(data)) != l.Size {
		return ""
	}
	if sum := sha256.Sum256(data); l.Digest.Algorithm != "sha256" || hex.EncodeToString(sum[:]) != l.Digest.Hex {
		return ""
	}
	var p Payload
	if json.Unmarshal(data, &p) != nil || p.Critical.Type != payloadKind || p.Critical.Image.DockerManifestDigest != d.String() {
		return ""
	}
	for _, k := range keys {
		if verifyLayer(k, l, data) {
			return Fingerprint(k)
		}
	}
	return ""
}

// CheckRemote checks the signatures of repo's manifest d through the
// registry API with t's options; found is false when d has no signature
// tag.
func CheckRemote(ctx context.Context, t *registry.Target, repo name.Repository, d v1.Hash, keys Keys) (ch Check, found bool, err error) {
	opts := t.Options(ctx)
	desc, err := remote.Get(repo.Tag(SigTag(d)), opts...)
	if registry.IsNotFound(err) {
		return ch, false, nil
	}
	if err != nil {
		return ch, false, err
	}
	if len(desc.Manifest) > MaxSigManifest {
		return ch, true, fmt.Errorf("%s: signature manifest of %d bytes (at most %d)", SigTag(d), len(desc.Manifest), MaxSigManifest)
	}
	ch, err = CheckManifest(desc.Manifest, d, keys, func(l v1.Descriptor) ([]byte, error) {
		layer, err := remote.Layer(repo.Digest(l.Digest.String()), opts...)
		if err != nil {
			return nil, err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, MaxPayload+1))
	})
	return ch, true, err
}

// CheckStored checks the signatures of manifest d held by the signature
// manifest sigManifest of repo, read through distribution's storage API
// (verify, the registry browser).
func CheckStored(ctx context.Context, repo distribution.Repository, sigManifest digest.Digest, d digest.Digest, keys Keys) (Check, error) {
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return Check{}, err
	}
	m, err := ms.Get(ctx, sigManifest)
	if err != nil {
		return Check{}, fmt.Errorf("signature manifest %s: %w", sigManifest, err)
	}
	_, raw, err := m.Payload()
	if err != nil {
		return Check{}, fmt.Errorf("signature manifest %s: %w", sigManifest, err)
	}
	if len(raw) > MaxSigManifest {
		return Check{}, fmt.Errorf("signature manifest %s: %d bytes (at most %d)", sigManifest, len(raw), MaxSigManifest)
	}
	return CheckManifest(raw, v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}, keys, func(l v1.Descriptor) ([]byte, error) {
		rc, err := repo.Blobs(ctx).Open(ctx, digest.Digest(l.Digest.String()))
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, MaxPayload+1))
	})
}
