package main

import (
	"fmt"
	"io"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/verify"
)

// VerifyCmd checks the registry storage like `git fsck`.
type VerifyCmd struct {
	JSON bool `name:"json" help:"Print the report as JSON."`
}

// Run verifies and exits 1 when any problem was found.
func (cmd VerifyCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	rep, err := verify.Verify(app.Ctx, c)
	if err != nil {
		return err
	}
	if cmd.JSON {
		if err := writeJSON(app.Stdout, rep); err != nil {
			return err
		}
	} else {
		where := c.DataDir()
		if c.Backend.S3() {
			where = c.Backend.String()
		}
		renderVerify(app.Stdout, where, rep)
	}
	if !rep.OK() {
		return &tasks.SilentError{Code: 1}
	}
	return nil
}

// renderVerify prints a verify report like `git fsck` does.
func renderVerify(w io.Writer, dataDir string, r *verify.Report) {
	fmt.Fprintf(w, "Verified %s\n", dataDir)
	fmt.Fprintf(w, "  %d repositories, %d tags, %d manifests, %d blobs (%d bytes) checked\n",
		r.Repositories, r.Tags, r.Manifests, r.Blobs, r.Bytes)
	if len(r.Orphans) > 0 {
		fmt.Fprintf(w, "  %d unreferenced blobs, %d bytes (gc would free them)\n", len(r.Orphans), r.OrphanBytes)
	} else {
		fmt.Fprintf(w, "  no unreferenced blobs\n")
	}
	if r.Referrers > 0 {
		fmt.Fprintf(w, "  %d referrer record(s)", r.Referrers)
		if r.StaleReferrers > 0 {
			fmt.Fprintf(w, ", %d of manifests not stored (gc would remove them)", r.StaleReferrers)
		}
		fmt.Fprintln(w)
	}
	if r.Signatures > 0 {
		fmt.Fprintf(w, "  %d signature tag(s), %d signed by this registry's key\n", r.Signatures, r.Signed)
	}
	if r.OK() {
		fmt.Fprintf(w, "OK: no problems found\n")
		return
	}
	fmt.Fprintf(w, "%d problems:\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
