package verify

import (
	"sort"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	"github.com/distribution/distribution/v3/manifest/ocischema"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// signatures checks the signature tags of repository name (tags are its
// tags and the manifests they resolve to): each must sign a manifest the
// repository stores (else it is orphaned) and, when the registry's key is
// known, hold a valid signature by it; with signing on, every tagged
// manifest and every manifest its index lists must have one.
func (v *verifier) signatures(repo distribution.Repository, ms distribution.ManifestService, name string, tags map[string]digest.Digest) {
	if v.ctx.Err() != nil {
		return
	}
	sigs := map[digest.Digest]string{} // signed manifest -> signature tag
	var need []string                  // tags whose manifests must be signed
	var atts []string                  // attestation tags
	for tag := range tags {
		if d, ok := sign.IsSigTag(tag); ok {
			sigs[digest.Digest(d.String())] = tag
		} else if _, ok := sign.IsAttachedTag(tag); ok {
			atts = append(atts, tag)
		} else if !registry.IsFallbackTag(tag) {
			need = append(need, tag)
		}
	}
	sort.Strings(need)
	sort.Strings(atts)
	for _, tag := range atts {
		d, _ := sign.IsAttachedTag(tag)
		if ok, _ := ms.Exists(v.ctx, digest.Digest(d.String())); !ok {
			v.problem("%s:%s: orphaned attestation: the repository has no manifest %s (gc --delete-untagged removes it)", name, tag, d)
		}
	}
	for _, d := range sortedKeys(sigs) {
		tag := sigs[d]
		v.rep.Signatures++
		if ok, _ := ms.Exists(v.ctx, d); !ok {
			v.problem("%s:%s: orphaned signature: the repository has no manifest %s (gc --delete-untagged removes it)", name, tag, d)
			continue
		}
		if len(v.keys) == 0 {
			continue
		}
		ch, err := sign.CheckStored(v.ctx, repo, tags[tag], d, v.keys)
		switch {
		case err != nil:
			v.problem("%s:%s: %v", name, tag, err)
		case len(ch.SignedBy) == 0:
			v.problem("%s:%s: no valid signature by this registry's key %s (signed by another key, or altered)", name, tag, sign.Fingerprint(v.keys[0]))
		default:
			v.rep.Signed++
		}
	}
	if !v.signing {
		return
	}
	for _, tag := range need {
		d := tags[tag]
		for _, m := range append([]digest.Digest{d}, v.children(ms, d)...) {
			if _, ok := sigs[m]; !ok {
				v.problem("%s:%s: manifest %s is not signed (CONTAINER_REGISTRY_SIGN is on; push signs, import needs --sign)", name, tag, m)
			}
		}
	}
}

// children are the manifests index d lists (none when d is no index or
// does not read).
func (v *verifier) children(ms distribution.ManifestService, d digest.Digest) []digest.Digest {
	m, err := ms.Get(v.ctx, d)
	if err != nil {
		return nil
	}
	var out []digest.Digest
	switch m.(type) {
	case *ocischema.DeserializedImageIndex, *manifestlist.DeserializedManifestList:
		for _, r := range m.References() {
			out = append(out, r.Digest)
		}
	}
	return out
}

func sortedKeys(m map[digest.Digest]string) []digest.Digest {
	out := make([]digest.Digest, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
