package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// cell is one table value; numbers are right-aligned, as cliff does.
type cell struct {
	text    string
	numeric bool
}

func str(s string) cell { return cell{text: s} }
func num(n int) cell    { return cell{text: fmt.Sprint(n), numeric: true} }

// renderTable writes rows the way VirtualBMC's cliff table formatter does,
// so scripts that scrape it keep working: each column (header included) is
// right-aligned when its first row holds a number, left-aligned otherwise,
// and an empty table is one empty line.
func renderTable(w io.Writer, headers []string, rows [][]cell) {
	if len(rows) == 0 {
		fmt.Fprintln(w)
		return
	}
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	var sep strings.Builder
	sep.WriteString("+")
	for _, wd := range widths {
		sep.WriteString(strings.Repeat("-", wd+2) + "+")
	}
	line := func(cells []cell) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text))
			if c.numeric {
				b.WriteString(" " + pad + c.text + " |")
			} else {
				b.WriteString(" " + c.text + pad + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	head := make([]cell, len(headers))
	for i, h := range headers {
		head[i] = cell{text: h, numeric: rows[0][i].numeric}
	}
	fmt.Fprintln(w, sep.String())
	line(head)
	fmt.Fprintln(w, sep.String())
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w, sep.String())
}

// render writes v in the chosen format: table, value and csv come from
// the cells (as cliff prints them), json and yaml from v.
func render(w io.Writer, format string, v any, headers []string, rows [][]cell) error {
	switch format {
	case "table":
		renderTable(w, headers, rows)
		return nil
	case "value":
		for _, r := range rows {
			parts := make([]string, len(r))
			for i, c := range r {
				parts[i] = c.text
			}
			fmt.Fprintln(w, strings.Join(parts, " "))
		}
		return nil
	case "csv":
		quote := func(c cell) string {
			if c.numeric {
				return c.text
			}
			return `"` + strings.ReplaceAll(c.text, `"`, `""`) + `"`
		}
		hs := make([]string, len(headers))
		for i, h := range headers {
			hs[i] = quote(str(h))
		}
		fmt.Fprintln(w, strings.Join(hs, ","))
		for _, r := range rows {
			parts := make([]string, len(r))
			for i, c := range r {
				parts[i] = quote(c)
			}
			fmt.Fprintln(w, strings.Join(parts, ","))
		}
		return nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("-f %q: want table, json, yaml, value or csv", format)
}
