package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// The names of cosign's signature scheme.
const (
	// PayloadType is the media type of a signature layer: the
	// simple-signing payload.
	PayloadType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds the base64 ECDSA-SHA256 signature of the
	// layer's payload.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// SigSuffix ends the tag of a manifest's signatures:
	// sha256-<hex>.sig.
	SigSuffix = ".sig"
	// payloadKind is the payload's critical.type.
	payloadKind = "cosign container image signature"
	// MaxPayload bounds a signature payload read back (ours are about 250
	// bytes).
	MaxPayload = 64 << 10
)

// SigTag is the tag holding the signatures of manifest d.
func SigTag(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + SigSuffix }

// IsSigTag reports whether tag names signatures (sha256-<64 hex>.sig)
// and returns the digest it signs.
func IsSigTag(tag string) (v1.Hash, bool) { return taggedFor(tag, SigSuffix) }

// IsAttachedTag reports whether tag names signatures or attestations of a
// manifest (sha256-<64 hex>.sig or .att: they live and go with it) and
// returns that manifest's digest.
func IsAttachedTag(tag string) (v1.Hash, bool) {
	if d, ok := taggedFor(tag, SigSuffix); ok {
		return d, true
	}
	return taggedFor(tag, AttSuffix)
}

// taggedFor parses sha256-<64 hex><suffix>.
func taggedFor(tag, suffix string) (v1.Hash, bool) {
	rest, ok := strings.CutSuffix(tag, suffix)
	if !ok {
		return v1.Hash{}, false
	}
	alg, hex, ok := strings.Cut(rest, "-")
	if !ok || alg != "sha256" || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: alg, Hex: hex}, true
}

// Payload is the simple-signing payload of cosign and containers/image:
// the signed repository (as clients pull it) and manifest digest.
type Payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// MakePayload is the payload signing manifest d of the repository
// identity (registry host:port/path, no tag).
func MakePayload(identity string, d v1.Hash) []byte {
	var p Payload
	p.Critical.Identity.DockerReference = identity
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = payloadKind
	b, _ := json.Marshal(p)
	return b
}

// Locker takes the lock of a tag's read-modify-write (taglock.Lock).
type Locker interface {
	Lock(ctx context.Context, repo, tag string) (unlock func(), err error)
}

// Signer signs manifests of one registry with one key. It is safe for
// concurrent use.
type Signer struct {
	Key *Key
	// Identity is the registry address the signed identity names (the
	// address targets pull from: containers/image matches it against the
	// policy's scope); empty: the repository's own registry.
	Identity string
	t        *registry.Target
	setup    sync.Once // remote
	setupErr error
	puller   *remote.Puller
	pusher   *remote.Pusher

	mu      sync.Mutex
	clients map[string]*http.Client // push clients by repository
}

// NewSigner returns a Signer for t's registry: signatures name the
// repository at t's target address (CONTAINER_REGISTRY_TARGET_URL, by
// default the URL as a QEMU target reaches it).
func NewSigner(ctx context.Context, t *registry.Target, k *Key) (*Signer, error) {
	return &Signer{Key: k, Identity: t.Config.TargetURL, t: t}, nil
}

// remote returns the Signer's puller and pusher, set up on first use —
// after the ping of the run, so that they go through the transport it
// authorized (Target.Shared) rather than pinging once per repository.
func (s *Signer) remote(ctx context.Context) (*remote.Puller, *remote.Pusher, error) {
	s.setup.Do(func() {
		var extra []remote.Option
		shared, err := s.t.Shared(ctx)
		if err != nil {
			s.setupErr = err
			return
		}
		if shared != nil {
			extra = append(extra, shared)
		}
		opts := s.t.Options(ctx, extra...)
		if s.puller, s.setupErr = remote.NewPuller(opts...); s.setupErr != nil {
			return
		}
		s.pusher, s.setupErr = remote.NewPusher(opts...)
	})
	return s.puller, s.pusher, s.setupErr
}

// identity is the signed name of repo.
func (s *Signer) identity(repo name.Repository) string {
	if s.Identity == "" {
		return repo.Name()
	}
	return s.Identity + "/" + repo.RepositoryStr()
}

// Result is what Sign did for one manifest.
type Result struct {
	Digest v1.Hash
	Tag    string // the signature tag
	// Already is true when the tag held a valid signature by the key for
	// this digest and name: nothing was signed or uploaded.
	Already bool
}

// Sign makes sure repo's signature tag of manifest d holds a signature by
// s's key: when one is there and valid, nothing is written (ECDSA
// signatures differ each time, so signing again would change the tag);
// else a new layer is added beside the signatures of other keys. The
// payload and config go up first; the tag's read-modify-write is guarded
// by lock (the push's tag lock, taglock; nil: none).
func (s *Signer) Sign(ctx context.Context, repo name.Repository, d v1.Hash, lock Locker) (Result, error) {
	tag := repo.Tag(SigTag(d))
	res := Result{Digest: d, Tag: tag.TagStr()}
	payload := MakePayload(s.identity(repo), d)
	pdig, _, _ := v1.SHA256(bytes.NewReader(payload))
	present := func(m *v1.Manifest) bool { return holds(m, s.Key.Public, pdig, payload) }
	var err error
	res.Already, err = s.addLayer(ctx, repo, tag, present, lock, func(priv *ecdsa.PrivateKey) (v1.Descriptor, []byte, error) {
		sig, err := signPayload(priv, payload)
		return v1.Descriptor{MediaType: PayloadType, Size: int64(len(payload)), Digest: pdig,
			Annotations: map[string]string{SignatureAnnotation: sig}}, payload, err
	})
	return res, err
}

// addLayer makes sure the manifest of tag holds a layer present
// recognises: when it does not, build (given the private key, decrypted
// now) gives the layer and its content, which is uploaded and added
// beside the tag's layers of the same media type (other keys' signatures,
// other attestations). Under lock the tag is read again before it is
// written. already is true when nothing had to be written.
func (s *Signer) addLayer(ctx context.Context, repo name.Repository, tag name.Tag, present func(*v1.Manifest) bool, lock Locker,
	build func(*ecdsa.PrivateKey) (v1.Descriptor, []byte, error)) (already bool, err error) {
	existing, err := s.read(ctx, tag)
	if err != nil || present(existing) {
		return err == nil, err
	}
	priv, err := s.Key.Private()
	if err != nil {
		return false, err
	}
	mine, blob, err := build(priv)
	if err != nil {
		return false, err
	}
	if err := s.upload(ctx, repo, mine.Digest, blob); err != nil {
		return false, fmt.Errorf("uploading %s: %w", mine.MediaType, err)
	}
	if lock != nil {
		unlock, err := lock.Lock(ctx, repo.RepositoryStr(), tag.TagStr())
		if err != nil {
			return false, err
		}
		defer unlock()
	}
	// Another signer may have written the tag since it was read (without
	// a lock, its write may still be lost: a remote registry).
	if existing, err = s.read(ctx, tag); err != nil || present(existing) {
		return err == nil, err
	}
	var layers []v1.Descriptor
	if existing != nil {
		for _, l := range existing.Layers {
			if l.MediaType == mine.MediaType {
				layers = append(layers, l)
			}
		}
	}
	return false, s.put(ctx, repo, tag, append(layers, mine))
}

// holds reports whether signature manifest m has a layer signing payload
// (digest pdig) with pub.
func holds(m *v1.Manifest, pub *ecdsa.PublicKey, pdig v1.Hash, payload []byte) bool {
	if m == nil {
		return false
	}
	for _, l := range m.Layers {
		if l.Digest == pdig && verifyLayer(pub, l, payload) {
			return true
		}
	}
	return false
}

// read returns the manifest of a signature tag; nil when there is none.
func (s *Signer) read(ctx context.Context, tag name.Tag) (*v1.Manifest, error) {
	puller, _, err := s.remote(ctx)
	if err != nil {
		return nil, err
	}
	desc, err := puller.Get(ctx, tag)
	if registry.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	if desc.MediaType != types.OCIManifestSchema1 && desc.MediaType != types.DockerManifestSchema2 {
		return nil, fmt.Errorf("%s is a %s, not a signature manifest", tag, desc.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	return m, nil
}

// put writes the signature manifest of layers (with a config listing
// them, as cosign's has) to tag.
func (s *Signer) put(ctx context.Context, repo name.Repository, tag name.Tag, layers []v1.Descriptor) error {
	cfg := v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest)
	}
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cd, _, _ := v1.SHA256(bytes.NewReader(cfgRaw))
	if err := s.upload(ctx, repo, cd, cfgRaw); err != nil {
		return fmt.Errorf("uploading the signature config: %w", err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfgRaw)), Digest: cd},
		Layers: layers}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, pusher, err := s.remote(ctx)
	if err != nil {
		return err
	}
	if err := pusher.Put(ctx, tag, registry.RawManifest{Data: raw, Type: types.OCIManifestSchema1}); err != nil {
		return fmt.Errorf("writing %s: %w", tag, err)
	}
	return nil
}

// upload sends a small blob: POST, then one monolithic PUT.
func (s *Signer) upload(ctx context.Context, repo name.Repository, d v1.Hash, data []byte) error {
	cl, err := s.client(ctx, repo)
	if err != nil {
		return err
	}
	loc, mounted, err := registry.StartUpload(ctx, cl, repo, d, "")
	if err != nil || mounted {
		return err
	}
	return registry.FinishUpload(ctx, cl, loc, d, int64(len(data)), bytes.NewReader(data))
}

// client returns the authenticated push client for repo.
func (s *Signer) client(ctx context.Context, repo name.Repository) (*http.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl, ok := s.clients[repo.String()]; ok {
		return cl, nil
	}
	cl, err := s.t.Client(ctx, repo, transport.PushScope, nil)
	if err != nil {
		return nil, err
	}
	if s.clients == nil {
		s.clients = map[string]*http.Client{}
	}
	s.clients[repo.String()] = cl
	return cl, nil
}

// signPayload is cosign's signature: ECDSA over SHA-256 of the payload,
// ASN.1, base64.
func signPayload(priv *ecdsa.PrivateKey, payload []byte) (string, error) {
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verifyLayer reports whether layer l carries a signature of payload by
// pub.
func verifyLayer(pub *ecdsa.PublicKey, l v1.Descriptor, payload []byte) bool {
	if l.MediaType != PayloadType {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(l.Annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		return false
	}
	sum := sha256.Sum256(payload)
	return ecdsa.VerifyASN1(pub, sum[:], sig)
}
