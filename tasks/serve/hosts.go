package serve

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// allowedHostsVar is the setting that names more host names.
const allowedHostsVar = "CONTAINER_REGISTRY_ALLOWED_HOSTS"

// hostCheck is the set of host names a request may name in its Host
// header. A web page the developer opens can make the browser send
// requests to the loopback-only registry by having its own name resolve to
// 127.0.0.1 (DNS rebinding); such a request names the page's host. The
// registry answers only for the names it is reached by.
//
// IP literals always pass: DNS rebinding needs a name the attacker
// resolves, and a board on the LAN reaching the host by address (any of
// its interfaces, or one a NAT forwards) must keep working. An empty Host
// (HTTP/1.0) passes too: browsers always send one.
type hostCheck struct {
	any   bool            // CONTAINER_REGISTRY_ALLOWED_HOSTS=*
	names map[string]bool // lower case, without a trailing dot
}

// allowedHosts are the names of the registry of c: the URL's host, the
// target's, loopback names, the listen addresses and http.addr's host,
// the names of the server certificate (CONTAINER_REGISTRY_CERT_SAN and
// the certificate itself), this host's name and
// CONTAINER_REGISTRY_ALLOWED_HOSTS.
func allowedHosts(c *config.Config, cfg *configuration.Configuration, listen []string, tlsConf *tls.Config) hostCheck {
	h := hostCheck{names: map[string]bool{}}
	add := func(name string) {
		if name = normHost(name); name != "" && net.ParseIP(name) == nil {
			h.names[name] = true
		}
	}
	addHostPort := func(hp string) {
		if host, _, err := net.SplitHostPort(hp); err == nil {
			add(host)
		} else {
			add(hp)
		}
	}
	for _, n := range c.AllowedHosts {
		if n == "*" {
			h.any = true
		}
		add(n)
	}
	add("localhost")
	add(c.Host)
	addHostPort(c.URL)
	addHostPort(c.TargetURL)
	addHostPort(cfg.HTTP.Addr)
	for _, l := range listen {
		addHostPort(l)
	}
	for _, s := range c.CertSANs {
		add(s.DNS)
	}
	if tlsConf != nil {
		for _, cert := range tlsConf.Certificates {
			leaf := cert.Leaf
			if leaf == nil && len(cert.Certificate) > 0 {
				leaf, _ = x509.ParseCertificate(cert.Certificate[0])
			}
			if leaf != nil {
				for _, n := range leaf.DNSNames {
					add(n)
				}
			}
		}
	}
	if name, err := os.Hostname(); err == nil {
		add(name)
		short, _, _ := strings.Cut(name, ".")
		add(short)
	}
	return h
}

// normHost is host without port, brackets or trailing dot, in lower case.
func normHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	return strings.ToLower(host)
}

// allows reports whether a request with Host header host may be answered.
func (h hostCheck) allows(host string) bool {
	if h.any || host == "" {
		return true
	}
	name := normHost(host)
	if i := strings.IndexByte(name, '%'); i >= 0 { // an IPv6 zone
		name = name[:i]
	}
	if net.ParseIP(name) != nil {
		return true
	}
	// RFC 6761: names below localhost are loopback, never resolved by DNS.
	return h.names[name] || strings.HasSuffix(name, ".localhost")
}

// list is the allowed names, sorted, for the log.
func (h hostCheck) list() []string {
	if h.any {
		return []string{"*"}
	}
	out := make([]string, 0, len(h.names))
	for n := range h.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// hostGate answers 421 Misdirected Request to a request whose Host the
// registry is not reached by, and passes the others to next.
func hostGate(h hostCheck, log *logrus.Entry, next http.Handler) http.Handler {
	if h.any {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.allows(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		log.Warnf("refused a request for host %q from %s: not a name of this registry (%s adds names)", r.Host, r.RemoteAddr, allowedHostsVar)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(w, "421 Misdirected Request: this registry does not answer for host %q.\n"+
			"It answers for its own names and any IP address; to reach it by this name, add the name to %s (space-separated; * turns the check off).\n",
			normHost(r.Host), allowedHostsVar)
	})
}
