package regconfig

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// Listen is where the registry listens, and why there.
type Listen struct {
	// Addrs are host:port addresses; a single ":port" is every
	// interface.
	Addrs []string `json:"addrs"`
	// Loopback is true when every address is a loopback address: only
	// this host reaches the registry.
	Loopback bool `json:"loopback"`
	// Why is what chose the addresses: "CONTAINER_REGISTRY_LISTEN",
	// "http.addr", "loopback URL" or "default".
	Why string `json:"why"`
}

// lookupTimeout bounds a name lookup of the URL or http.addr host.
const lookupTimeout = 2 * time.Second

// ListenAddrs decides where the registry of c listens, on c's port:
//
//   - CONTAINER_REGISTRY_LISTEN, when set, is the address;
//   - else a host in registry-config.yml's http.addr is kept (each address
//     a name resolves to);
//   - else, when the URL host is loopback (localhost, 127.0.0.1, ::1, or a
//     name that resolves only to loopback addresses) and the targets reach
//     the registry through the host's loopback (CONTAINER_REGISTRY_TARGET_URL
//     at 10.0.2.2, QEMU's alias of it, or loopback), the loopback addresses
//     and the URL host's own: a registry without authentication then does
//     not serve the network;
//   - else every interface.
func ListenAddrs(c *config.Config, cfg *configuration.Configuration) Listen {
	join := func(hosts []string, why string) Listen {
		l := Listen{Why: why, Loopback: true}
		for _, h := range hosts {
			addr := net.JoinHostPort(h, c.Port)
			if slices.Contains(l.Addrs, addr) {
				continue
			}
			l.Addrs = append(l.Addrs, addr)
			if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
				l.Loopback = false
			}
		}
		return l
	}
	if h := c.Listen(); h != "" {
		return join([]string{h}, "CONTAINER_REGISTRY_LISTEN")
	}
	if h, _, err := net.SplitHostPort(cfg.HTTP.Addr); err == nil && h != "" {
		if ips := resolve(h); len(ips) > 0 {
			return join(ips, "http.addr")
		}
		return join([]string{h}, "http.addr")
	}
	if ips := resolve(c.Host); len(ips) > 0 && allLoopback(ips) && targetsUseLoopback(c) {
		return join(append(config.LoopbackAddrs(), ips...), "loopback URL")
	}
	return Listen{Addrs: []string{":" + c.Port}, Why: "default"}
}

// targetsUseLoopback reports whether the targets reach the registry
// through the host's loopback: at 10.0.2.2 (QEMU user networking) or at
// a loopback address.
func targetsUseLoopback(c *config.Config) bool {
	host, _, err := net.SplitHostPort(c.TargetURL)
	if err != nil {
		return false
	}
	if host == "10.0.2.2" {
		return true
	}
	ips := resolve(host)
	return len(ips) > 0 && allLoopback(ips)
}

// resolve returns the IP addresses host names: itself when it is one,
// else what a lookup says (nothing when it fails).
func resolve(host string) []string {
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}
	}
	if strings.EqualFold(host, "localhost") {
		// RFC 6761: no lookup (it costs start a few milliseconds).
		return config.LoopbackAddrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && !slices.Contains(out, ip.String()) {
			out = append(out, ip.String())
		}
	}
	return out
}

func allLoopback(ips []string) bool {
	for _, a := range ips {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}
