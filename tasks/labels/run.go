package labels

import (
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// Result is what Run computed and did.
type Result struct {
	Labels  Labels
	Reports []*Report
}

// Run reads the variables (env dump, then the process environment over it),
// computes the labels at time now and applies them to every layout in
// apply. dump may be "".
func Run(dump string, environ []string, apply []string, now time.Time) (*Result, error) {
	c, err := config.Load(config.Sources{Dump: dump, Environ: environ, Only: config.LabelSettingNames})
	if err != nil {
		return nil, err
	}
	l, err := Compute(c, now)
	if err != nil {
		return nil, err
	}
	res := &Result{Labels: l}
	for _, p := range apply {
		rep, err := Apply(p, l)
		if err != nil {
			return res, err
		}
		res.Reports = append(res.Reports, rep)
	}
	return res, nil
}
