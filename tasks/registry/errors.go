package registry

import "fmt"

// NotRespondingError says the registry a command needs is down. Its
// message is the fact; the command adds how to start it (Script).
type NotRespondingError struct {
	URL    string // scheme://host:port
	Script string // the helper script, as a shell word
	Err    error
}

func (e *NotRespondingError) Error() string {
	return fmt.Sprintf("Registry not responding at %s", e.URL)
}

func (e *NotRespondingError) Unwrap() error { return e.Err }

// WrongProtocolError says the registry answers the other protocol than the
// configuration expects (HTTP against a TLS registry, or the reverse).
type WrongProtocolError struct {
	URL string // what was tried, with its scheme
	Got string // "HTTP" or "HTTPS": what the registry speaks
}

func (e *WrongProtocolError) Error() string {
	if e.Got == "HTTPS" {
		return fmt.Sprintf("registry at %s speaks HTTPS, not HTTP: it runs in secure mode; set CONTAINER_REGISTRY_SECURE=1 (or restart it in the mode you want)", e.URL)
	}
	return fmt.Sprintf("registry at %s speaks plain HTTP, not HTTPS: it is not in secure mode; set CONTAINER_REGISTRY_SECURE=0 (or restart it in the mode you want)", e.URL)
}

// AuthError says the registry wants credentials it did not get, or refused
// the ones it got.
type AuthError struct {
	Registry string
	Source   string // where the refused credentials came from; "" none
	User     string // the local registry's user, when its own credentials were refused
	Err      error
}

func (e *AuthError) Error() string {
	if e.User != "" {
		return fmt.Sprintf("registry %s rejected the credentials of user %q (%v); check %s", e.Registry, e.User, e.Err, e.Source)
	}
	if e.Source == "" {
		return fmt.Sprintf("registry %s requires authentication (%v); use --use-home-auth, --authfile, --credsfile, --creds, --token or CONTAINER_REGISTRY_AUTH_MODE", e.Registry, e.Err)
	}
	return fmt.Sprintf("registry %s rejected the credentials from %s: %v", e.Registry, e.Source, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }
