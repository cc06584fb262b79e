package main

import (
	"fmt"
	"io"

	"github.com/ocireg-tool/ocireg-tool/tasks/remove"
)

// DeleteCmd deletes one tag.
type DeleteCmd struct {
	Ref string `arg:"" optional:"" name:"image:tag" help:"The tag to delete, as <image>:<tag>."`
}

// Run deletes exactly the given tag.
func (cmd DeleteCmd) Run(app *App) error {
	t, err := app.Target(nil)
	if err != nil {
		return err
	}
	res, err := remove.Tag(app.Ctx, t, cmd.Ref)
	if err != nil {
		return err
	}
	renderDelete(app.Stdout, t.Script, res)
	return nil
}

func renderDelete(w io.Writer, script string, res *remove.Result) {
	fmt.Fprintf(w, "Deleting %s:%s (%s)...\n", res.Repo, res.Tag, res.Digest)
	fmt.Fprintf(w, "Deleted successfully: %s:%s\n", res.Repo, res.Tag)
	if res.PruneErr != nil {
		fmt.Fprintf(w, "Warning: the tag is gone but its manifests stay (%v); '%s gc --delete-untagged' removes them\n", res.PruneErr, script)
	}
	for _, d := range res.Pruned {
		fmt.Fprintf(w, "  removed manifest %s (no other tag uses it)\n", d)
	}
	for _, sig := range res.Signatures {
		fmt.Fprintf(w, "  removed its signature %s:%s\n", res.Repo, sig)
	}
	fmt.Fprintf(w, "Free the disk space with:\n  %s gc\n", script)
}
