package labels

import (
	"time"

	"github.com/ocireg-tool/ocireg-tool/generator"
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
	vars := generator.Vars{}
	if dump != "" {
		d, err := generator.ReadDump(dump)
		if err != nil {
			return nil, err
		}
		vars = d
	}
	vars = vars.Overlay(generator.FromEnviron(environ))
	l, err := Compute(vars, now)
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
