package main

import (
	"io"
	"regexp"
	"strings"
	"unicode"

	"github.com/mattn/go-runewidth"
)

// writeTable is cliff's table format, drawn as prettytable draws it: a
// column is right-aligned (header included) when its first row holds an
// int, left-aligned otherwise; a value's lines are the table's lines; an
// empty table prints one empty line unless --print-empty. With
// --max-width, or on a terminal, cliff narrows the widest columns and
// prettytable wraps their text with Python's textwrap.
func (o *outputOptions) writeTable(w io.Writer, t table) error {
	if len(t.rows) == 0 && !o.printEmpty {
		_, err := io.WriteString(w, "\n")
		return err
	}
	cells := make([][]string, len(t.rows))
	for i, r := range t.rows {
		cells[i] = make([]string, len(r))
		for j, v := range r {
			s := pyStr(v)
			if _, ok := v.(string); ok {
				s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", " ")
			}
			cells[i][j] = s
		}
	}
	right := make([]bool, len(t.headers))
	if len(t.rows) > 0 {
		for j, v := range t.rows[0] {
			_, right[j] = v.(int)
		}
	}
	widths := columnWidths(t.headers, cells, nil)
	if limits := o.maxWidths(widths, 8); limits != nil {
		widths = columnWidths(t.headers, cells, limits)
	}

	var b strings.Builder
	rule := "+"
	for _, wd := range widths {
		rule += strings.Repeat("-", wd+2) + "+"
	}
	line := func(values []string) {
		lines := make([][]string, len(values))
		height := 1
		for j, v := range values {
			for _, l := range strings.Split(v, "\n") {
				if blockWidth(l) > widths[j] {
					l = textwrapFill(l, widths[j])
				}
				lines[j] = append(lines[j], strings.Split(l, "\n")...)
			}
			height = max(height, len(lines[j]))
		}
		for y := range height {
			b.WriteString("|")
			for j := range values {
				text := ""
				if y < len(lines[j]) {
					text = lines[j][y]
				}
				pad := strings.Repeat(" ", max(0, widths[j]-blockWidth(text)))
				if right[j] {
					text = pad + text
				} else {
					text += pad
				}
				b.WriteString(" " + text + " |")
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(rule + "\n")
	line(t.headers)
	b.WriteString(rule + "\n")
	for _, r := range cells {
		line(r)
	}
	b.WriteString(rule + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// columnWidths is prettytable's: the header's width, or any value's widest
// line, capped by the column's max width (never below the header).
func columnWidths(headers []string, cells [][]string, limits []int) []int {
	widths := make([]int, len(headers))
	for j, h := range headers {
		widths[j] = blockWidth(h)
	}
	for _, r := range cells {
		for j, v := range r {
			wd := 0
			for _, l := range strings.Split(v, "\n") {
				wd = max(wd, blockWidth(l))
			}
			if limits != nil && limits[j] > 0 {
				wd = min(wd, limits[j])
			}
			widths[j] = max(widths[j], wd)
		}
	}
	return widths
}

// blockWidth is prettytable's width of a line: wcwidth's wcswidth of it
// without its colour codes, so -1 when it holds a control character.
func blockWidth(s string) int {
	n := 0
	for _, r := range ansiCodes.ReplaceAllString(s, "") {
		switch {
		case r == 0:
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			return -1
		default:
			n += runewidth.RuneWidth(r)
		}
	}
	return n
}

var ansiCodes = regexp.MustCompile("\x1b\\[[0-9;]*m|\x1b\\(B")

// maxWidths is cliff's _assign_max_widths: when the table is wider than
// --max-width (or, without it, the terminal), the columns wider than an
// equal share are each given what the others leave, evenly, never less
// than minWidth; nil when nothing is to be narrowed.
func (o *outputOptions) maxWidths(widths []int, minWidth int) []int {
	termWidth := o.maxWidth
	if termWidth <= 0 {
		w, ok := o.terminal()
		if !ok {
			return nil // cliff fits only a terminal, --fit-width or not
		}
		termWidth = w
	}
	total := 1
	for _, w := range widths {
		total += w + 3
	}
	if total <= termWidth {
		return nil
	}
	usable := max(0, termWidth-1-3*len(widths))
	optimal := max(0, usable/len(widths))
	var shrink []int
	remaining := usable
	for j, w := range widths {
		if w <= optimal {
			remaining -= w
		} else {
			shrink = append(shrink, j)
		}
	}
	if len(shrink) == 0 {
		return nil
	}
	limits := make([]int, len(widths))
	each := remaining / len(shrink)
	for _, j := range shrink[:len(shrink)-1] {
		limits[j] = max(minWidth, each)
		remaining -= each
	}
	limits[shrink[len(shrink)-1]] = max(minWidth, remaining)
	return limits
}

// textwrapFill is Python's textwrap.fill(text, width) with its defaults:
// tabs expanded, whitespace made spaces, text split into words and
// whitespace (hyphenated words split after their hyphens), lines filled
// greedily, whitespace dropped at line ends, long words broken (after a
// hyphen when one fits).
func textwrapFill(text string, width int) string {
	chunks := textwrapChunks(expandTabs(text))
	var lines []string
	for len(chunks) > 0 {
		var cur [][]rune
		n := 0
		if strings.TrimSpace(string(chunks[0])) == "" && len(lines) > 0 {
			chunks = chunks[1:]
		}
		for len(chunks) > 0 && n+len(chunks[0]) <= width {
			cur, n = append(cur, chunks[0]), n+len(chunks[0])
			chunks = chunks[1:]
		}
		if len(chunks) > 0 && len(chunks[0]) > width {
			space := width - n
			if width < 1 {
				space = 1
			}
			chunk, end := chunks[0], space
			if len(chunk) > space {
				if h := lastIndexRune(chunk[:max(0, space)], '-'); h > 0 && strings.Trim(string(chunk[:h]), "-") != "" {
					end = h + 1
				}
			}
			cur = append(cur, chunk[:end])
			chunks[0] = chunk[end:]
		}
		if len(cur) > 0 && strings.TrimSpace(string(cur[len(cur)-1])) == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			var l strings.Builder
			for _, c := range cur {
				l.WriteString(string(c))
			}
			lines = append(lines, l.String())
		}
	}
	return strings.Join(lines, "\n")
}

func lastIndexRune(rs []rune, r rune) int {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

// expandTabs is Python's str.expandtabs(8) followed by textwrap's
// translation of every other whitespace character to a space.
func expandTabs(s string) []rune {
	var out []rune
	for _, r := range s {
		switch r {
		case '\t':
			out = append(out, ' ')
			for len(out)%8 != 0 {
				out = append(out, ' ')
			}
		case '\n', '\v', '\f', '\r':
			out = append(out, ' ')
		default:
			out = append(out, r)
		}
	}
	return out
}

// textwrapChunks splits text as textwrap's wordsep_re does: runs of spaces;
// em-dashes (two or more hyphens after a word character, before one);
// words, cut after a hyphen that follows two letters (or letter, hyphen,
// letter) and precedes letter, optional hyphen, letter.
func textwrapChunks(s []rune) [][]rune {
	at := func(i int) rune {
		if i < 0 || i >= len(s) {
			return 0
		}
		return s[i]
	}
	letter := func(i int) bool { r := at(i); return r == '_' || unicode.IsLetter(r) }
	wordChar := func(i int) bool { return letter(i) || unicode.IsDigit(at(i)) }
	wordPunct := func(i int) bool { return wordChar(i) || strings.ContainsRune(`!"'&.,?`, at(i)) }
	// emDash: two or more hyphens at i, then a word character.
	emDash := func(i int) int {
		j := i
		for at(j) == '-' {
			j++
		}
		if j-i >= 2 && wordChar(j) {
			return j
		}
		return -1
	}
	var chunks [][]rune
	for p := 0; p < len(s); {
		e := p + 1
		switch {
		case s[p] == ' ':
			for e < len(s) && s[e] == ' ' {
				e++
			}
		case wordPunct(p-1) && emDash(p) > 0:
			e = emDash(p)
		default:
			for ; ; e++ {
				if e >= len(s) || s[e] == ' ' || (wordPunct(e-1) && emDash(e) > 0) {
					break
				}
				hyphenAfterLetters := letter(e-2) && letter(e-1) || letter(e-3) && at(e-2) == '-' && letter(e-1)
				if s[e] == '-' && hyphenAfterLetters && letter(e+1) && (letter(e+2) || at(e+2) == '-' && letter(e+3)) {
					e++
					break
				}
			}
		}
		chunks = append(chunks, s[p:e])
		p = e
	}
	return chunks
}
