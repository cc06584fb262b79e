package generator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// Where the oci payload puts what containers/image needs to verify the
// registry's signatures on a target. The key sits beside the rest of the
// containers configuration, in a directory of its own, so the one package
// that owns /etc/containers drop-ins owns it too; policy.json names it by
// this absolute path.
const (
	PolicyPath        = "etc/containers/policy.json"
	SigningKeyPath    = "etc/containers/keys/container-registry.pub"
	RegistriesDSigned = "etc/containers/registries.d/container-registry.yaml"
)

// MaxPolicyBytes bounds the policy.json already in the install root (the
// one container-host-config installs) that the payload merges into.
const MaxPolicyBytes = 1 << 20

// signingPublicKey reads the public key of the key push signs with
// (pki/signing.pub, written by sign.EnsureKey for the generated key and
// for CONTAINER_REGISTRY_SIGNING_KEY alike), checked as sign reads it.
func signingPublicKey(c *config.Config) ([]byte, error) {
	path := c.SigningPubFile()
	data, err := safefile.ReadRegular(path, sign.MaxKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("signing public key %s not found: run `bitbake container-registry-index -c generate_registry_script` (with CONTAINER_REGISTRY_SIGN=1) first", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signing public key: %w", err)
	}
	if _, err := sign.ParsePublicKey(data, path); err != nil {
		return nil, err
	}
	return data, nil
}

// signingFiles are the key and the registries.d entry of the oci payload.
func signingFiles(c *config.Config) ([]TargetFile, error) {
	key, err := signingPublicKey(c)
	if err != nil {
		return nil, err
	}
	yml, err := Render("registries.d.yaml.tmpl", map[string]any{"Version": buildinfo.Version, "Address": c.TargetURL})
	if err != nil {
		return nil, err
	}
	return []TargetFile{
		{Path: SigningKeyPath, Data: key, Mode: 0o644},
		{Path: RegistriesDSigned, Data: yml, Mode: 0o644},
	}, nil
}

// policyFile is base (the target's policy.json, nil: none yet) with the
// registry's scope in transports.docker requiring the key's signature.
func policyFile(c *config.Config, base []byte) (TargetFile, error) {
	req, err := Render("policy-requirement.json.tmpl", map[string]any{"KeyPath": "/" + SigningKeyPath})
	if err != nil {
		return TargetFile{}, err
	}
	if base == nil {
		if base, err = Render("policy-default.json.tmpl", nil); err != nil {
			return TargetFile{}, err
		}
	}
	data, err := MergePolicy(base, c.TargetURL, req)
	if err != nil {
		return TargetFile{}, fmt.Errorf("merging the registry's signature requirement into %s: %w", PolicyPath, err)
	}
	return TargetFile{Path: PolicyPath, Data: data, Mode: 0o644}, nil
}

// MergePolicy sets transports.docker[scope] of the containers-policy.json(5)
// document base to requirements (a JSON array) and keeps everything else:
// the default, other transports, other scopes (an earlier entry for scope
// is replaced, so a second merge changes nothing). The result is indented
// with four spaces, keys in sorted order.
func MergePolicy(base []byte, scope string, requirements []byte) ([]byte, error) {
	var reqs []json.RawMessage
	if err := json.Unmarshal(requirements, &reqs); err != nil || len(reqs) == 0 {
		return nil, fmt.Errorf("the requirements of %s are not a non-empty JSON array: %v", scope, err)
	}
	var doc map[string]json.RawMessage
	if err := strictObject(base, &doc); err != nil {
		return nil, fmt.Errorf("not a policy (a JSON object): %w", err)
	}
	if _, ok := doc["default"]; !ok {
		return nil, errors.New(`not a policy: no "default"`)
	}
	transports := map[string]json.RawMessage{}
	if raw, ok := doc["transports"]; ok && !isNull(raw) {
		if err := strictObject(raw, &transports); err != nil {
			return nil, fmt.Errorf(`"transports": %w`, err)
		}
	}
	docker := map[string]json.RawMessage{}
	if raw, ok := transports["docker"]; ok && !isNull(raw) {
		if err := strictObject(raw, &docker); err != nil {
			return nil, fmt.Errorf(`"transports"."docker": %w`, err)
		}
	}
	docker[scope] = requirements
	var err error
	if transports["docker"], err = marshalJSON(docker, ""); err != nil {
		return nil, err
	}
	if doc["transports"], err = marshalJSON(transports, ""); err != nil {
		return nil, err
	}
	return marshalJSON(doc, "    ")
}

// marshalJSON encodes v as it is: without the HTML escapes of
// json.Marshal (a "&" in a policy stays "&"), indented by indent (with a
// final newline) unless it is empty.
func marshalJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if indent == "" {
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	}
	return buf.Bytes(), nil
}

// strictObject decodes a JSON object into v and refuses anything after it.
func strictObject(data []byte, v *map[string]json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if *v == nil {
		return errors.New("null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the object")
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// readPolicyBase reads dest's policy.json, nil when there is none. It must
// be a regular file inside dest, of at most MaxPolicyBytes.
func readPolicyBase(dest string) ([]byte, error) {
	data, err := safefile.ReadRegularIn(dest, PolicyPath, MaxPolicyBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dest, PolicyPath), err)
	}
	return data, nil
}
