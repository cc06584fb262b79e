// Package serve is the registry in the foreground (`ocireg-tool serve`):
// distribution's application built from registry-config.yml, with the
// referrers API (package referrers) and the registry browser (package ui)
// in front of it, the check of the Host each request names (DNS
// rebinding), its listeners, TLS, connection timeouts, the credential
// cache of htpasswd authentication, logging and the access log, and, on a
// shared backend, its part in the replica protocol (package replica).
//
// distribution logs through logrus's standard logger and offers no other;
// serve, a process of its own, is the one place that configures it.
package serve
