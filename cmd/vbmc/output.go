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

// renderTable writes rows the way VirtualBMC's cliff/prettytable output
// looks, so scripts that scrape it keep working.
func renderTable(w io.Writer, headers []string, rows [][]cell) {
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
		head[i] = str(h)
	}
	fmt.Fprintln(w, sep.String())
	line(head)
	fmt.Fprintln(w, sep.String())
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w, sep.String())
}

// render writes v in the chosen format; table is written by table().
func render(w io.Writer, format string, v any, table func()) error {
	switch format {
	case "table":
		table()
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
	return fmt.Errorf("-f %q: want table, json or yaml", format)
}
