package main

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// writeYAML is cliff's yaml format: PyYAML's safe_dump of a list of
// mappings with default_flow_style=False, so keys sorted, 2-space indents,
// and each string in the style PyYAML's emitter picks (plain, single- or
// double-quoted, folded past 80 columns). Go's YAML libraries pick other
// styles, hence this port of the few parts of PyYAML's emitter it needs.
func writeYAML(w io.Writer, t table) error {
	if len(t.rows) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	e := &yamlEmitter{whitespace: true, indention: true}
	order := make([]int, len(t.headers))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return t.headers[order[a]] < t.headers[order[b]] })
	for _, r := range t.rows {
		e.indent = 0
		e.writeIndent()
		e.indicator("-", true, false, true)
		for _, j := range order {
			e.indent = 2
			e.writeIndent()
			e.indent = 4
			e.scalar(t.headers[j], true)
			e.indicator(":", false, false, false)
			e.scalar(r[j], false)
		}
	}
	e.indent = 0
	e.writeIndent()
	_, err := io.WriteString(w, e.b.String())
	return err
}

// yamlEmitter is the state PyYAML's Emitter keeps to place breaks and
// spaces; its methods are ports of the Emitter's writers.
type yamlEmitter struct {
	b          strings.Builder
	column     int
	indent     int
	whitespace bool // the last character written is whitespace
	indention  bool // only indentation is on the line so far
}

const yamlBestWidth = 80

// raw writes data and counts its columns, as the Emitter's writers do
// between indicators.
func (e *yamlEmitter) raw(data string) {
	e.b.WriteString(data)
	e.column += len([]rune(data))
}

func (e *yamlEmitter) indicator(ind string, needWhitespace, whitespace, indention bool) {
	if !e.whitespace && needWhitespace {
		ind = " " + ind
	}
	e.whitespace = whitespace
	e.indention = e.indention && indention
	e.raw(ind)
}

func (e *yamlEmitter) lineBreak(data string) {
	e.whitespace, e.indention, e.column = true, true, 0
	e.b.WriteString(data)
}

func (e *yamlEmitter) writeIndent() {
	if !e.indention || e.column > e.indent || (e.column == e.indent && !e.whitespace) {
		e.lineBreak("\n")
	}
	if e.column < e.indent {
		e.whitespace = true
		e.raw(strings.Repeat(" ", e.indent-e.column))
	}
}

// scalar writes one value after a key or as a key (simple key context).
func (e *yamlEmitter) scalar(v any, key bool) {
	var s string
	switch x := v.(type) {
	case nil:
		s = "null"
	case bool:
		s = strconv.FormatBool(x)
	case string:
		e.str(x, key)
		return
	default:
		s = pyStr(v)
	}
	e.plain(s, !key)
}

func (e *yamlEmitter) str(s string, key bool) {
	a := analyzeScalar(s)
	implicit := yamlResolvesToStr(s)
	switch {
	case implicit && !(key && (a.empty || a.multiline)) && a.blockPlain:
		e.plain(s, !key)
	case a.singleQuoted && !(key && a.multiline):
		e.singleQuoted(s, !key)
	default:
		e.doubleQuoted(s, !key)
	}
}

type scalarAnalysis struct {
	empty, multiline, blockPlain, singleQuoted bool
}

func isYAMLBreak(r rune) bool     { return r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029 }
func isYAMLBlank(r rune) bool     { return r == 0 || r == ' ' || r == '\t' || r == '\r' || isYAMLBreak(r) }
func isYAMLPrintable(r rune) bool { return r == '\n' || (r >= 0x20 && r <= 0x7e) }

// analyzeScalar is PyYAML's Emitter.analyze_scalar (allow_unicode off),
// reduced to what block context needs.
func analyzeScalar(str string) scalarAnalysis {
	s := []rune(str)
	if len(s) == 0 {
		return scalarAnalysis{empty: true, blockPlain: true, singleQuoted: true}
	}
	var blockIndicators, lineBreaks, special bool
	var leadingSpace, leadingBreak, trailingSpace, trailingBreak, breakSpace, spaceBreak bool
	if strings.HasPrefix(str, "---") || strings.HasPrefix(str, "...") {
		blockIndicators = true
	}
	precededByWS := true
	followedByWS := len(s) == 1 || isYAMLBlank(s[1])
	prevSpace, prevBreak := false, false
	for i, ch := range s {
		if i == 0 {
			if strings.ContainsRune("#,[]{}&*!|>'\"%@`", ch) ||
				(ch == '?' || ch == ':' || ch == '-') && followedByWS {
				blockIndicators = true
			}
		} else if ch == ':' && followedByWS || ch == '#' && precededByWS {
			blockIndicators = true
		}
		if isYAMLBreak(ch) {
			lineBreaks = true
		}
		if !isYAMLPrintable(ch) {
			special = true // non-ASCII too: safe_dump does not allow unicode
		}
		switch {
		case ch == ' ':
			leadingSpace = leadingSpace || i == 0
			trailingSpace = trailingSpace || i == len(s)-1
			breakSpace = breakSpace || prevBreak
			prevSpace, prevBreak = true, false
		case isYAMLBreak(ch):
			leadingBreak = leadingBreak || i == 0
			trailingBreak = trailingBreak || i == len(s)-1
			spaceBreak = spaceBreak || prevSpace
			prevSpace, prevBreak = false, true
		default:
			prevSpace, prevBreak = false, false
		}
		precededByWS = isYAMLBlank(ch)
		followedByWS = i+2 >= len(s) || isYAMLBlank(s[i+2])
	}
	a := scalarAnalysis{multiline: lineBreaks, blockPlain: true, singleQuoted: true}
	if leadingSpace || leadingBreak || trailingSpace || trailingBreak || lineBreaks || blockIndicators {
		a.blockPlain = false
	}
	if breakSpace || spaceBreak || special {
		a.blockPlain, a.singleQuoted = false, false
	}
	return a
}

// yamlImplicit are PyYAML's YAML 1.1 implicit resolvers: a plain scalar
// matching one would read back as something other than a string.
var yamlImplicit = regexp.MustCompile(`^(?:` +
	`yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` + // bool
	`|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?` + // float
	`|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` + // int
	`|<<|~|null|Null|NULL|=` + // merge, null, value
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]` + // timestamp
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?` +
	`)$`)

func yamlResolvesToStr(s string) bool { return s != "" && !yamlImplicit.MatchString(s) }

// plain is PyYAML's write_plain (plain scalars never span lines here).
func (e *yamlEmitter) plain(str string, split bool) {
	if str == "" {
		return
	}
	if !e.whitespace {
		e.raw(" ")
	}
	e.whitespace, e.indention = false, false
	s := []rune(str)
	spaces, start := false, 0
	for end := 0; end <= len(s); end++ {
		ch := rune(-1)
		if end < len(s) {
			ch = s[end]
		}
		if spaces {
			if ch != ' ' {
				if start+1 == end && e.column > yamlBestWidth && split {
					e.writeIndent()
					e.whitespace, e.indention = false, false
				} else {
					e.raw(string(s[start:end]))
				}
				start = end
			}
		} else if ch == -1 || ch == ' ' {
			e.raw(string(s[start:end]))
			start = end
		}
		spaces = ch == ' '
	}
}

// singleQuoted is PyYAML's write_single_quoted.
func (e *yamlEmitter) singleQuoted(str string, split bool) {
	e.indicator("'", true, false, false)
	s := []rune(str)
	spaces, breaks, start := false, false, 0
	for end := 0; end <= len(s); end++ {
		ch := rune(-1)
		if end < len(s) {
			ch = s[end]
		}
		switch {
		case spaces:
			if ch != ' ' {
				if start+1 == end && e.column > yamlBestWidth && split && start != 0 && end != len(s) {
					e.writeIndent()
				} else {
					e.raw(string(s[start:end]))
				}
				start = end
			}
		case breaks:
			if ch == -1 || !isYAMLBreak(ch) {
				if s[start] == '\n' {
					e.lineBreak("\n")
				}
				for _, br := range s[start:end] {
					e.lineBreak(string(br))
				}
				e.writeIndent()
				start = end
			}
		default:
			if ch == -1 || ch == ' ' || isYAMLBreak(ch) || ch == '\'' {
				if start < end {
					e.raw(string(s[start:end]))
					start = end
				}
			}
		}
		if ch == '\'' {
			e.raw("''")
			start = end + 1
		}
		spaces, breaks = ch == ' ', isYAMLBreak(ch)
	}
	e.indicator("'", false, false, false)
}

var yamlEscapes = map[rune]string{
	0: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0a: "n", 0x0b: "v", 0x0c: "f", 0x0d: "r", 0x1b: "e",
	'"': `"`, '\\': `\`, 0x85: "N", 0xa0: "_", 0x2028: "L", 0x2029: "P",
}

// doubleQuoted is PyYAML's write_double_quoted (allow_unicode off).
func (e *yamlEmitter) doubleQuoted(str string, split bool) {
	e.indicator(`"`, true, false, false)
	s := []rune(str)
	start := 0
	for end := 0; end <= len(s); end++ {
		var ch rune = -1
		if end < len(s) {
			ch = s[end]
		}
		if ch == -1 || strings.ContainsRune("\"\\\u0085\u2028\u2029\ufeff", ch) || ch < 0x20 || ch > 0x7e {
			if start < end {
				e.raw(string(s[start:end]))
				start = end
			}
			if ch != -1 {
				esc, ok := yamlEscapes[ch]
				switch {
				case ok:
					esc = `\` + esc
				case ch <= 0xff:
					esc = fmt.Sprintf(`\x%02X`, ch)
				case ch <= 0xffff:
					esc = fmt.Sprintf(`\u%04X`, ch)
				default:
					esc = fmt.Sprintf(`\U%08X`, ch)
				}
				e.raw(esc)
				start = end + 1
			}
		}
		if 0 < end && end < len(s)-1 && (ch == ' ' || start >= end) && e.column+(end-start) > yamlBestWidth && split {
			e.raw(string(s[start:max(start, end)]) + `\`)
			if start < end {
				start = end
			}
			e.writeIndent()
			e.whitespace, e.indention = false, false
			if s[start] == ' ' {
				e.raw(`\`)
			}
		}
	}
	e.indicator(`"`, false, false, false)
}
