// Package generator renders every artifact the tool writes from a
// config.Config: the helper script, the distribution configuration, the
// PKI and htpasswd secrets, and the target payloads. Reading variables is
// package config's job (package config at the module root).
//
// It reads configuration and writes files; it never talks to a registry.
// Registry work lives in package tasks.
package generator
