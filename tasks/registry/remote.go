package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
)

// RemoteOptions describe a registry that is not the local one (promote's
// destination): its address, how to trust it and the credentials for it.
type RemoteOptions struct {
	// Host is host[:port].
	Host string
	// CAFile adds the certificates of a PEM file to the system roots.
	CAFile string
	// Insecure accepts a plain-HTTP registry, or a TLS one whose
	// certificate is not verified (a test registry, a lab mirror).
	Insecure bool
	// Creds are the credentials for Host (nil: anonymous).
	Creds *regauth.Resolved
}

// ConnectRemote returns the Target of another registry, checked: it
// answers /v2/ and accepts the credentials. TLS comes first; with
// o.Insecure, a registry that answers plain HTTP is spoken to in HTTP.
func ConnectRemote(ctx context.Context, o RemoteOptions) (*Target, error) {
	t, err := newRemote(o, false)
	if err != nil {
		return nil, err
	}
	err = t.Ping(ctx)
	var wp *WrongProtocolError
	if o.Insecure && errors.As(err, &wp) && wp.Got == "HTTP" {
		if t, err = newRemote(o, true); err != nil {
			return nil, err
		}
		err = t.Ping(ctx)
	}
	if err != nil {
		return nil, untrusted(o, err)
	}
	return t, nil
}

// untrusted names a certificate the destination's TLS was refused for.
func untrusted(o RemoteOptions, err error) error {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	if !errors.As(err, &cv) && !errors.As(err, &ua) && !errors.As(err, &hn) {
		return err
	}
	fix := "give its CA with --ca-file, or --dest-insecure not to check it"
	if o.CAFile != "" {
		fix = "it is not signed by a CA of " + o.CAFile + " (or names another host)"
	}
	return fmt.Errorf("registry %s: its TLS certificate is not trusted: %w; %s", o.Host, errors.Unwrap(err), fix)
}

// newRemote builds the Target of o over HTTPS, or plain HTTP.
func newRemote(o RemoteOptions, plain bool) (*Target, error) {
	c := &config.Config{URL: o.Host, Secure: !plain}
	var opts []name.Option
	if plain {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", o.Host, err)
	}
	t := &Target{Config: c, Registry: reg, Auth: authn.Anonymous}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 16
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure} //nolint:gosec // --dest-insecure asks for it
	if o.CAFile != "" {
		pool, err := caPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: %w", o.CAFile, err)
		}
		tc.RootCAs = pool
	}
	base.TLSClientConfig = tc
	t.Transport = LimitAnswers(&noWriteRedirects{base: base})
	if o.Creds != nil && o.Creds.Auth != nil && !o.Creds.Anonymous() {
		t.Auth, t.AuthSource = o.Creds.Auth, o.Creds.Source
	}
	return t, nil
}
