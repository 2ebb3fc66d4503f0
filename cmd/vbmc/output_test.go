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

func cliffCaseNamed(t *testing.T, name string) cliffCase {
	t.Helper()
	for _, c := range cliffCases {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no cliff case %q", name)
	return cliffCase{}
}

// On a terminal cliff fits the table to its width unasked, as
// --max-width would; --max-width takes precedence.
func TestTableFitsTheTerminal(t *testing.T) {
	for _, c := range []struct {
		width int
		args  []string
		like  string
	}{
		{40, nil, "wide max width 40"},
		{20, []string{"--fit-width"}, "wide max width 20"},
		{40, []string{"--max-width", "60"}, "wide max width 60"},
		{40, []string{"--max-width", "200"}, "wide table"},
		{200, nil, "wide table"},
	} {
		o, _ := formatterUnderTest(t, false, c.width, c.args...)
		var out strings.Builder
		if err := o.emit(&out, cliffData["wide"]); err != nil {
			t.Fatal(err)
		}
		if want := cliffCaseNamed(t, c.like).stdout; out.String() != want {
			t.Errorf("terminal %d %q:\n%s\nwant (cliff's %q):\n%s", c.width, c.args, out.String(), c.like, want)
		}
	}
	t.Setenv("CLIFF_MAX_TERM_WIDTH", "40")
	o, _ := formatterUnderTest(t, false, 0)
	var out strings.Builder
	if err := o.emit(&out, cliffData["wide"]); err != nil || out.String() != cliffCaseNamed(t, "wide max width 40").stdout {
		t.Errorf("CLIFF_MAX_TERM_WIDTH=40: %v\n%s", err, out.String())
	}
}

// A column of mixed types cannot be sorted by Python: cliff logs a
// warning and leaves the order. (cliff names the column by its position in
// the table rather than in --sort-column, so with a single --sort-column
// Value it fails with "list index out of range"; vbmc names the column.)
func TestSortOnUnsortableColumn(t *testing.T) {
	o, stderr := formatterUnderTest(t, true, 0, "-f", "value", "--sort-column", "Value", "--sort-column", "Property", "--sort-descending")
	var out strings.Builder
	if err := o.emit(&out, cliffData["show"]); err != nil {
		t.Fatal(err)
	}
	if want := cliffCaseNamed(t, "show sorted descending").stdout; out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	if want := "Could not sort on field 'Value'; unsortable types\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// Bad choices are refused as cliff's argument parser refuses them.
func TestOutputChoices(t *testing.T) {
	for _, c := range []struct {
		show bool
		args []string
		want string
	}{
		{false, []string{"-f", "xml"}, `-f "xml": invalid choice (choose from 'csv', 'json', 'table', 'value', 'yaml')`},
		{false, []string{"-f", "shell"}, `-f "shell": invalid choice`},
		{true, []string{"--quote", "some"}, `--quote "some": invalid choice (choose from 'all', 'minimal', 'none', 'nonnumeric')`},
	} {
		o, _ := formatterUnderTest(t, c.show, 0, c.args...)
		if err := o.check(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %s", c.args, err, c.want)
		}
	}
	cmd := &cobra.Command{Use: "list"}
	addListFlags(cmd)
	if err := cmd.ParseFlags([]string{"--sort-ascending", "--sort-descending"}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.ValidateFlagGroups(); err == nil {
		t.Error("--sort-ascending with --sort-descending accepted")
	}
}

func TestPyRepr(t *testing.T) {
	for in, want := range map[string]string{
		"Domain name": `'Domain name'`,
		"it's":        `"it's"`,
		`it's "x"`:    `'it\'s "x"'`,
		"a\\b\n\x01":  `'a\\b\n\x01'`,
		"café":        `'café'`,
	} {
		if got := pyRepr(in); got != want {
			t.Errorf("pyRepr(%q) = %s, want %s", in, got, want)
		}
	}
}
