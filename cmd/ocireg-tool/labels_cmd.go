package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ocireg-tool/ocireg-tool/tasks/labels"
)

// LabelsCmd computes the build-time OCI labels and optionally writes them
// into OCI layouts.
type LabelsCmd struct {
	EnvDump string   `name:"env-dump" type:"existingfile" env:"CONTAINER_REGISTRY_ENV_DUMP" help:"Bitbake env dump (OCI_IMAGE_*, PV, TOPDIR)."`
	Apply   []string `name:"apply" sep:"none" placeholder:"OCI-LAYOUT" help:"OCI layout directory or tar archive to label (repeatable)."`
	JSON    bool     `name:"json" help:"Print the labels as a JSON object."`
}

// Run computes the labels, prints them and applies them.
func (l *LabelsCmd) Run(app *App) error {
	res, err := labels.Run(l.EnvDump, app.Environ, l.Apply, time.Now())
	if err != nil {
		return err
	}
	if l.JSON {
		data, err := json.MarshalIndent(res.Labels, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(app.Stdout, "%s\n", data)
	} else {
		for _, k := range res.Labels.Keys() {
			fmt.Fprintf(app.Stdout, "%s=%s\n", k, res.Labels[k])
		}
	}
	for _, r := range res.Reports {
		fmt.Fprintf(app.Stderr, "%s: %d image(s) labelled, %d already labelled\n", r.Path, len(r.Rewritten), r.Unchanged)
	}
	return nil
}
