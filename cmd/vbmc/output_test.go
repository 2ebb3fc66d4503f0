package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// cliffCase is one run of cliff's formatters (output_cliff_test.go holds
// them, generated from cliff itself by testdata/cliff_cases.py).
type cliffCase struct {
	name   string
	show   bool // show's options (shell format) rather than list's
	data   string
	args   []string
	stdout string
	stderr string // cliff's log lines; the error's message when code != 0
	code   int
}

// formatterUnderTest parses args into a command's output options, as vbmc
// list or show would, with stdout not a terminal unless width > 0.
func formatterUnderTest(t *testing.T, show bool, width int, args ...string) (*outputOptions, *strings.Builder) {
	t.Helper()
	cmd := &cobra.Command{Use: "list"}
	var o *outputOptions
	if show {
		o = addShowFlags(cmd)
	} else {
		o = addListFlags(cmd)
	}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	o.terminal = func() (int, bool) { return width, width > 0 }
	stderr := &strings.Builder{}
	o.stderr = stderr
	return o, stderr
}

func TestFormatterAgainstCliff(t *testing.T) {
	for _, c := range cliffCases {
		t.Run(c.name, func(t *testing.T) {
			o, stderr := formatterUnderTest(t, c.show, 0, c.args...)
			var out strings.Builder
			err := o.emit(&out, cliffData[c.data])
			if c.code != 0 {
				if err == nil || err.Error()+"\n" != c.stderr {
					t.Errorf("%q: error %v, cliff says %q", c.args, err, c.stderr)
				}
			} else if err != nil || stderr.String() != c.stderr {
				t.Errorf("%q: error %v, stderr %q; cliff's stderr %q", c.args, err, stderr, c.stderr)
			}
			if out.String() != c.stdout {
				t.Errorf("%q:\n%s\ncliff prints:\n%s", c.args, out.String(), c.stdout)
				gl, wl := strings.Split(out.String(), "\n"), strings.Split(c.stdout, "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Errorf("first difference, line %d:\n%q\n%q", i+1, gl[i], wl[i])
						break
					}
				}
			}
		})
	}
}
