package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/govbmc/govbmc/internal/control"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// This file gives vbmc the output options of python-cliff, which
// VirtualBMC's vbmc is built on. VirtualBMC's `list` and `show` are both
// cliff Listers (show's rows are Property/Value pairs), so both take the
// same options; `show` also takes cliff's ShowOne shell format, which
// VirtualBMC lacks. A value is a string, an int, a bool or nil, printed as
// Python prints it.

// table is what a command prints: column names and rows of values.
type table struct {
	headers []string
	rows    [][]any
}

// outputOptions are cliff's formatter options. Every formatter's options
// are accepted whatever the format, as cliff accepts them.
type outputOptions struct {
	formats        []string // the -f choices, sorted
	format         string
	columns        []string
	sortColumns    []string
	sortAscending  bool
	sortDescending bool
	maxWidth       int
	fitWidth       bool
	printEmpty     bool
	noIndent       bool
	quote          string
	prefix         string
	variables      []string
	// terminal reports stdout's width when stdout is a terminal (cliff
	// fits its tables to a terminal without being asked).
	terminal func() (int, bool)
	stderr   io.Writer
}

// listTable is VirtualBMC's list: one row per BMC, sorted by name.
func listTable(nodes []control.NodeInfo) table {
	t := table{headers: []string{"Domain name", "Status", "Address", "Port"}, rows: make([][]any, len(nodes))}
	for i, n := range nodes {
		t.rows[i] = []any{n.Node.Name, string(n.Status), n.Node.Address, n.Node.Port}
	}
	return t
}

// showTable is VirtualBMC's show: a Property/Value row per property,
// sorted by property.
func showTable(props map[string]any) table {
	t := table{headers: []string{"Property", "Value"}}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		t.rows = append(t.rows, []any{k, props[k]})
	}
	return t
}

var listFormats = []string{"csv", "json", "table", "value", "yaml"}

// addListFlags registers cliff's Lister options on cmd.
func addListFlags(cmd *cobra.Command) *outputOptions { return addOutputFlags(cmd, listFormats) }

// addShowFlags registers them for show, with ShowOne's shell format.
func addShowFlags(cmd *cobra.Command) *outputOptions {
	o := addOutputFlags(cmd, append(slices.Clone(listFormats), "shell"))
	f := cmd.Flags()
	f.StringVar(&o.prefix, "prefix", "", "add a prefix to all variable names (-f shell)")
	f.StringArrayVar(&o.variables, "variable", nil, "")
	_ = f.MarkHidden("variable")
	return o
}

func addOutputFlags(cmd *cobra.Command, formats []string) *outputOptions {
	o := newOutputOptions(formats)
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "table", "the output format: "+strings.Join(o.formats, ", "))
	f.StringArrayVarP(&o.columns, "column", "c", nil, "specify the column(s) to include, can be repeated to show multiple columns")
	f.StringArrayVar(&o.sortColumns, "sort-column", nil, "specify the column(s) to sort the data (columns specified first have a priority, non-existing columns are ignored), can be repeated")
	f.BoolVar(&o.sortAscending, "sort-ascending", false, "sort the column(s) in ascending order")
	f.BoolVar(&o.sortDescending, "sort-descending", false, "sort the column(s) in descending order")
	cmd.MarkFlagsMutuallyExclusive("sort-ascending", "sort-descending")
	f.IntVar(&o.maxWidth, "max-width", envInt("CLIFF_MAX_TERM_WIDTH"), "Maximum display width, <1 to disable. You can also use the CLIFF_MAX_TERM_WIDTH environment variable, but the parameter takes precedence.")
	f.BoolVar(&o.fitWidth, "fit-width", envInt("CLIFF_FIT_WIDTH") != 0, "Fit the table to the display width. Implied if --max-width greater than 0. Set the environment variable CLIFF_FIT_WIDTH=1 to always enable")
	f.BoolVar(&o.printEmpty, "print-empty", false, "Print empty table if there is no data to show.")
	f.BoolVar(&o.noIndent, "noindent", false, "whether to disable indenting the JSON")
	f.StringVar(&o.quote, "quote", "nonnumeric", "when to include quotes in csv: all, minimal, none or nonnumeric")
	// Refused before the daemon is asked, as cliff's parser refuses them.
	cmd.PreRunE = func(*cobra.Command, []string) error { return o.check() }
	return o
}

// newOutputOptions are cliff's defaults, printing to the terminal.
func newOutputOptions(formats []string) *outputOptions {
	return &outputOptions{formats: slices.Sorted(slices.Values(formats)), format: "table", quote: "nonnumeric", terminal: stdoutTerminal, stderr: os.Stderr}
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func stdoutTerminal() (int, bool) {
	if !term.IsTerminal(int(os.Stdout.Fd())) {
		return 0, false
	}
	w, _, err := term.GetSize(int(os.Stdout.Fd()))
	return w, err == nil && w > 0
}

// check refuses the choices cliff's argument parser refuses.
func (o *outputOptions) check() error {
	if !slices.Contains(o.formats, o.format) {
		return fmt.Errorf("-f %q: invalid choice (choose from %s)", o.format, strings.Trim(pyList(o.formats), "[]"))
	}
	if _, ok := csvQuoteModes[o.quote]; !ok {
		return fmt.Errorf("--quote %q: invalid choice (choose from 'all', 'minimal', 'none', 'nonnumeric')", o.quote)
	}
	return nil
}

// emit prints t as a cliff Lister does: sorted by --sort-column, cut to
// the -c columns, in the -f format.
func (o *outputOptions) emit(w io.Writer, t table) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.format == "shell" {
		return o.emitShell(w, t)
	}
	rows := o.sortRows(t)
	headers, keep, err := selectColumns(o.columns, t.headers)
	if err != nil {
		return err
	}
	for i, r := range rows {
		rows[i] = pick(r, keep)
	}
	t = table{headers: headers, rows: rows}
	switch o.format {
	case "table":
		return o.writeTable(w, t)
	case "value":
		return writeValues(w, t)
	case "csv":
		return writeCSV(w, t, csvQuoteModes[o.quote])
	case "json":
		return writeJSON(w, t, !o.noIndent)
	default: // yaml
		return writeYAML(w, t)
	}
}

// emitShell prints a Property/Value table as cliff's ShowOne prints
// `-f shell`: one name="value" line per property, -c naming properties.
func (o *outputOptions) emitShell(w io.Writer, t table) error {
	names := make([]string, len(t.rows))
	values := make([]any, len(t.rows))
	for i, r := range t.rows {
		names[i], values[i] = pyStr(r[0]), r[1]
	}
	names, keep, err := selectColumns(o.columns, names)
	if err != nil {
		return err
	}
	values = pick(values, keep)
	var b strings.Builder
	for i, name := range names {
		name = strings.ReplaceAll(strings.ToLower(name), " ", "_")
		if len(o.variables) > 0 && !slices.Contains(o.variables, name) {
			continue
		}
		v := pyStr(values[i])
		if _, ok := values[i].(string); ok {
			v = strings.ReplaceAll(v, `"`, `\"`)
		}
		name = strings.NewReplacer(":", "_", "-", "_").Replace(name)
		fmt.Fprintf(&b, "%s%s=\"%s\"\n", o.prefix, name, v)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// selectColumns returns the columns -c names, in the table's order, and
// which of them to keep (nil: all). Names match as cliff matches them:
// case, surrounding blanks and spaces against underscores aside.
// Unknown names are ignored unless none is known.
func selectColumns(requested, headers []string) ([]string, []bool, error) {
	if len(requested) == 0 {
		return headers, nil, nil
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_") }
	want := map[string]bool{}
	for _, c := range requested {
		want[norm(c)] = true
	}
	var out []string
	keep := make([]bool, len(headers))
	for i, h := range headers {
		if want[norm(h)] {
			out = append(out, h)
			keep[i] = true
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("No recognized column names in %s. Recognized columns are %s.", pyList(requested), pyList(headers))
	}
	return out, keep, nil
}

func pick[T any](row []T, keep []bool) []T {
	if keep == nil {
		return row
	}
	var out []T
	for i, v := range row {
		if keep[i] {
			out = append(out, v)
		}
	}
	return out
}

// sortRows sorts a copy of t's rows as cliff's Lister does: a stable sort
// per --sort-column, the last named first, so the first named decides;
// names match exactly and unknown ones are ignored; nil sorts last. A
// column whose values Python cannot compare is left unsorted, with
// cliff's warning.
func (o *outputOptions) sortRows(t table) [][]any {
	rows := slices.Clone(t.rows)
	for i := len(o.sortColumns) - 1; i >= 0; i-- {
		col := slices.Index(t.headers, o.sortColumns[i])
		if col < 0 {
			continue
		}
		if !comparable(rows, col) {
			fmt.Fprintf(o.stderr, "Could not sort on field '%s'; unsortable types\n", o.sortColumns[i])
			continue
		}
		sort.SliceStable(rows, func(a, b int) bool {
			if o.sortDescending {
				a, b = b, a
			}
			return pyLess(rows[a][col], rows[b][col])
		})
	}
	return rows
}

// comparable tells whether Python could sort the column: its non-nil
// values are all strings or all numbers (bools are numbers).
func comparable(rows [][]any, col int) bool {
	kinds := map[bool]bool{}
	for _, r := range rows {
		switch r[col].(type) {
		case string:
			kinds[true] = true
		case int, bool:
			kinds[false] = true
		}
	}
	return len(kinds) < 2 || len(rows) < 2
}

// pyLess compares (v is None, v) as cliff's sort key does.
func pyLess(a, b any) bool {
	if (a == nil) != (b == nil) {
		return b == nil
	}
	switch x := a.(type) {
	case string:
		return x < b.(string)
	case nil:
		return false
	}
	return pyInt(a) < pyInt(b)
}

func pyInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

// pyStr is Python's str() of a value.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// pyList is Python's repr() of a list of strings.
func pyList(items []string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = pyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pyRepr is Python's repr() of a string.
func pyRepr(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	named := map[rune]string{'\\': `\\`, '\n': `\n`, '\r': `\r`, '\t': `\t`, rune(q[0]): `\` + q}
	return quoteRunes(s, q, named, func(r rune) string {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf(`\x%02x`, r)
		}
		return string(r)
	})
}

// quoteRunes puts s between quote marks, each rune written as its named
// escape or else as other makes it.
func quoteRunes(s, quote string, named map[rune]string, other func(rune) string) string {
	var b strings.Builder
	b.WriteString(quote)
	for _, r := range s {
		if e, ok := named[r]; ok {
			b.WriteString(e)
		} else {
			b.WriteString(other(r))
		}
	}
	b.WriteString(quote)
	return b.String()
}

// writeValues is cliff's value format: each row's values joined by a space.
func writeValues(w io.Writer, t table) error {
	var b strings.Builder
	for _, r := range t.rows {
		parts := make([]string, len(r))
		for i, v := range r {
			parts[i] = pyStr(v)
		}
		b.WriteString(strings.Join(parts, " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type csvQuoting int

const (
	quoteMinimal csvQuoting = iota
	quoteAll
	quoteNonNumeric
	quoteNone
)

var csvQuoteModes = map[string]csvQuoting{"all": quoteAll, "minimal": quoteMinimal, "nonnumeric": quoteNonNumeric, "none": quoteNone}

// writeCSV is Python's csv.writer as cliff sets it up: the chosen quoting,
// '"' doubled inside quotes, '\' as the escape character, "\n" ending
// rows.
func writeCSV(w io.Writer, t table, q csvQuoting) error {
	var b strings.Builder
	record := func(values []any) error {
		fields := make([]string, len(values))
		for i, v := range values {
			f, err := csvField(v, q)
			if err != nil {
				return err
			}
			fields[i] = f
		}
		line := strings.Join(fields, ",")
		if len(values) == 1 && line == "" {
			if q == quoteNone {
				return fmt.Errorf("single empty field record must be quoted")
			}
			line = `""`
		}
		b.WriteString(line + "\n")
		return nil
	}
	headers := make([]any, len(t.headers))
	for i, h := range t.headers {
		headers[i] = h
	}
	if err := record(headers); err != nil {
		return err
	}
	for _, r := range t.rows {
		if err := record(r); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func csvField(v any, q csvQuoting) (string, error) {
	quoted := q == quoteAll
	if q == quoteNonNumeric {
		switch v.(type) {
		case int, bool:
		default:
			quoted = true
		}
	}
	s := ""
	if v != nil {
		s = pyStr(v)
	}
	var b strings.Builder
	for _, r := range s {
		if r == ',' || r == '\\' || r == '"' || r == '\n' {
			switch {
			case q == quoteNone || r == '\\':
				b.WriteByte('\\')
			case r == '"':
				b.WriteByte('"')
				quoted = true
			default:
				quoted = true
			}
		}
		b.WriteRune(r)
	}
	if quoted {
		return `"` + b.String() + `"`, nil
	}
	return b.String(), nil
}

// writeJSON is Python's json.dump of a list of objects, keys in column
// order, with indent=2 or (--noindent) on one line, non-ASCII escaped.
func writeJSON(w io.Writer, t table, indent bool) error {
	sep, nl := ", ", func(int) string { return "" }
	if indent {
		sep, nl = ",", func(depth int) string { return "\n" + strings.Repeat("  ", depth) }
	}
	var b strings.Builder
	b.WriteString("[")
	for i, r := range t.rows {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(nl(1) + "{")
		for j, v := range r {
			if j > 0 {
				b.WriteString(sep)
			}
			b.WriteString(nl(2) + jsonString(t.headers[j]) + ": " + jsonValue(v))
		}
		b.WriteString(nl(1) + "}")
	}
	if len(t.rows) > 0 {
		b.WriteString(nl(0))
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func jsonValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case string:
		return jsonString(x)
	}
	return pyStr(v)
}

var jsonEscapes = map[rune]string{'"': `\"`, '\\': `\\`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '\b': `\b`, '\f': `\f`}

// jsonString quotes s as Python's json with ensure_ascii does.
func jsonString(s string) string {
	return quoteRunes(s, `"`, jsonEscapes, func(r rune) string {
		switch {
		case r >= 0x20 && r < 0x7f:
			return string(r)
		case r > 0xffff:
			r -= 0x10000
			return fmt.Sprintf(`\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		}
		return fmt.Sprintf(`\u%04x`, r)
	})
}
