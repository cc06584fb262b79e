// Package redact owns how the tool shows a URL a user gave it in a
// message: without the user information (user name and password) of the
// URL itself or of any URL in its query (such as the backend's endpoint=),
// whether or not the URL parses. Every message that prints a URL of the
// configuration goes through URL.
package redact

import (
	"net/url"
	"strings"
)

// Mark replaces what URL removes.
const Mark = "REDACTED"

// URL returns s with the user information of s and of every URL in its
// query values replaced by Mark. It works on text that does not parse as
// a URL too (a message about a malformed value must not leak either), and
// on query values in percent-encoded form.
func URL(s string) string {
	base, query, hasQuery := strings.Cut(s, "?")
	base = authority(base)
	if !hasQuery {
		return base
	}
	query, fragment, hasFragment := strings.Cut(query, "#")
	var b strings.Builder
	b.WriteString(base)
	b.WriteByte('?')
	start := 0
	for i := 0; i <= len(query); i++ {
		if i < len(query) && query[i] != '&' && query[i] != ';' {
			continue
		}
		b.WriteString(param(query[start:i]))
		if i < len(query) {
			b.WriteByte(query[i])
		}
		start = i + 1
	}
	if hasFragment {
		b.WriteByte('#')
		b.WriteString(authority(fragment))
	}
	return b.String()
}

// param redacts one key=value pair of a query.
func param(p string) string {
	k, v, ok := strings.Cut(p, "=")
	if !ok {
		return authority(p)
	}
	if dv, err := url.QueryUnescape(v); err == nil && dv != v {
		if r := authority(dv); r != dv {
			return k + "=" + url.QueryEscape(r)
		}
		return k + "=" + v
	}
	return k + "=" + authority(v)
}

// authority replaces the user information of one URL (scheme://user:pw@host
// or user:pw@host without a scheme) by Mark.
func authority(s string) string {
	rest := s
	prefix := ""
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	} else if strings.HasPrefix(s, "//") {
		prefix, rest = "//", s[2:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 || (prefix == "" && isDigest(rest[at+1:])) {
		return s
	}
	return prefix + Mark + rest[at:]
}

// isDigest reports whether s starts like the digest of an image
// reference (name@sha256:...), which is no user information.
func isDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || alg == "" || hex == "" {
		return false
	}
	for _, r := range alg {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && !strings.ContainsRune("+._-", r) {
			return false
		}
	}
	if i := strings.IndexAny(hex, "/?#"); i >= 0 {
		hex = hex[:i]
	}
	// Registered digests have at least 32 hex digits; a port has at most 5.
	return len(hex) >= 32 && strings.Trim(hex, "0123456789abcdef") == ""
}
