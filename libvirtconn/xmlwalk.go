package libvirtconn

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// xmlStep is one token of a document as walkXML hands it on, with where it
// lies in the text, so that edits can splice the original bytes.
type xmlStep struct {
	// Tok is an xml.StartElement, xml.EndElement or xml.CharData (comments,
	// processing instructions and directives are passed on too).
	Tok xml.Token
	// Path holds the local names from the root down to the element the
	// token belongs to: for a start or end tag, that element itself (last).
	Path []string
	// Off is where the token begins, End just past it.
	Off, End int64
	// Elem, for an end tag, is the whole element: its start tag's first
	// byte to just past its end tag.
	Elem span
}

// walkXML reads doc token by token, keeping the path of open elements and
// their offsets, and calls visit for each token. The path slice is reused:
// visit copies what it keeps.
func walkXML(doc string, visit func(*xmlStep)) error {
	d := xml.NewDecoder(strings.NewReader(doc))
	var (
		step   xmlStep
		starts []int64
	)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("domain XML: %w", err)
		}
		step.Tok, step.Off, step.End, step.Elem = tok, off, d.InputOffset(), span{}
		switch t := tok.(type) {
		case xml.StartElement:
			step.Path = append(step.Path, t.Name.Local)
			starts = append(starts, off)
			visit(&step)
		case xml.EndElement:
			if len(step.Path) == 0 {
				return fmt.Errorf("domain XML: unbalanced </%s>", t.Name.Local)
			}
			step.Elem = span{starts[len(starts)-1], step.End}
			visit(&step)
			step.Path, starts = step.Path[:len(step.Path)-1], starts[:len(starts)-1]
		default:
			visit(&step)
		}
	}
}
