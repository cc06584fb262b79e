package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Attestations as cosign attaches them: an in-toto statement about the
// manifest, in a DSSE envelope signed with the key, one layer per
// attestation of the OCI image manifest tagged sha256-<hex>.att; `cosign
// verify-attestation --type spdxjson --key` checks an SPDX one.
const (
	// AttSuffix ends the tag of a manifest's attestations.
	AttSuffix = ".att"
	// EnvelopeType is the media type of an attestation layer.
	EnvelopeType types.MediaType = "application/vnd.dsse.envelope.v1+json"
	// PredicateSPDX is the predicate type of an SPDX document
	// (cosign's --type spdxjson).
	PredicateSPDX = "https://spdx.dev/Document"
	// inTotoType is the DSSE payload type of an in-toto statement.
	inTotoType = "application/vnd.in-toto+json"
	// statementType is the in-toto statement version cosign writes.
	statementType = "https://in-toto.io/Statement/v0.1"
	// predicateAnnotation names an attestation layer's predicate type
	// (cosign's annotation); statementAnnotation the SHA-256 of its
	// statement (ours: a re-push finds its attestation without reading
	// it).
	predicateAnnotation = "predicateType"
	statementAnnotation = "dev.ocireg-tool.statement.sha256"
	// MaxPredicate bounds a document attested (the SBOM of a Yocto image
	// is a few MiB; the envelope holds it base64-encoded, in memory).
	MaxPredicate = 32 << 20
)

// AttTag is the tag holding the attestations of manifest d.
func AttTag(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + AttSuffix }

// statement is an in-toto statement about one manifest.
type statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// envelope is a DSSE envelope.
type envelope struct {
	PayloadType string         `json:"payloadType"`
	Payload     string         `json:"payload"`
	Signatures  []envSignature `json:"signatures"`
}

type envSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// pae is DSSE's pre-authentication encoding, what the signature signs.
func pae(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(payload)) + " ")
	b.Write(payload)
	return b.Bytes()
}

// Attest makes sure repo's attestation tag of manifest d holds a signed
// statement of predicateType about d with predicate (a JSON object, such
// as an SPDX document): when the same statement is there, nothing is
// written; else it is added beside the others. The tag's
// read-modify-write is guarded by lock as Sign's.
func (s *Signer) Attest(ctx context.Context, repo name.Repository, d v1.Hash, predicateType string, predicate []byte, lock Locker) (Result, error) {
	tag := repo.Tag(AttTag(d))
	res := Result{Digest: d, Tag: tag.TagStr()}
	if len(predicate) > MaxPredicate {
		return res, fmt.Errorf("the document is %d bytes; attestations hold at most %d", len(predicate), MaxPredicate)
	}
	if !json.Valid(predicate) || len(bytes.TrimSpace(predicate)) == 0 || bytes.TrimSpace(predicate)[0] != '{' {
		return res, fmt.Errorf("the predicate is not a JSON object")
	}
	st, err := json.Marshal(statement{Type: statementType, PredicateType: predicateType,
		Subject:   []subject{{Name: s.identity(repo), Digest: map[string]string{d.Algorithm: d.Hex}}},
		Predicate: json.RawMessage(predicate)})
	if err != nil {
		return res, err
	}
	sum := sha256.Sum256(st)
	stDigest := hex.EncodeToString(sum[:])
	present := func(m *v1.Manifest) bool { return attested(m, stDigest) }
	res.Already, err = s.addLayer(ctx, repo, tag, present, lock, func(priv *ecdsa.PrivateKey) (v1.Descriptor, []byte, error) {
		env, err := signEnvelope(priv, st)
		edig, _, _ := v1.SHA256(bytes.NewReader(env))
		return v1.Descriptor{MediaType: EnvelopeType, Size: int64(len(env)), Digest: edig, Annotations: map[string]string{
			SignatureAnnotation: "", predicateAnnotation: predicateType, statementAnnotation: stDigest}}, env, err
	})
	return res, err
}

// attested reports whether attestation manifest m holds the statement
// whose SHA-256 is stDigest.
func attested(m *v1.Manifest, stDigest string) bool {
	if m == nil {
		return false
	}
	for _, l := range m.Layers {
		if l.MediaType == EnvelopeType && l.Annotations[statementAnnotation] == stDigest {
			return true
		}
	}
	return false
}

// signEnvelope is the DSSE envelope of an in-toto statement signed with
// priv (ECDSA over SHA-256 of its pre-authentication encoding).
func signEnvelope(priv *ecdsa.PrivateKey, st []byte) ([]byte, error) {
	h := sha256.Sum256(pae(inTotoType, st))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, h[:])
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return json.Marshal(envelope{PayloadType: inTotoType, Payload: base64.StdEncoding.EncodeToString(st),
		Signatures: []envSignature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
}
