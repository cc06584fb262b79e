// Package generator turns bitbake variables into ocireg-tool's typed
// configuration and renders every artifact the tool writes: the helper
// script, the distribution configuration, the PKI, and the target payloads.
//
// It reads variables and writes files; it never talks to a registry. Registry
// work lives in package tasks.
package generator
