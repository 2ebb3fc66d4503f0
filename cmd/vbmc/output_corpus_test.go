package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestPythonCorpus compares the ports of Python's textwrap, PyYAML's
// emitter and Python's csv writer with what they make of 500 random
// strings each (testdata/python_corpus.py wrote the file).
func TestPythonCorpus(t *testing.T) {
	raw, err := os.ReadFile("testdata/python_corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus struct {
		Wrap []struct {
			Text  string
			Width int
			Fill  string
		}
		Scalars []struct {
			Value, Key, YAML string
			CSV              map[string]string
		}
	}
	if err := json.Unmarshal(raw, &corpus); err != nil {
		t.Fatal(err)
	}
	for _, c := range corpus.Wrap {
		if got := textwrapFill(c.Text, c.Width); got != c.Fill {
			t.Errorf("textwrap.fill(%q, %d) = %q, Python says %q", c.Text, c.Width, got, c.Fill)
		}
	}
	for _, c := range corpus.Scalars {
		var y strings.Builder
		if err := writeYAML(&y, table{headers: []string{"Value", c.Key}, rows: [][]any{{c.Value, 5}}}); err != nil || y.String() != c.YAML {
			t.Errorf("yaml of %q (key %q): %v\n%q\nPyYAML says\n%q", c.Value, c.Key, err, y.String(), c.YAML)
		}
		for mode, want := range c.CSV {
			var b strings.Builder
			got := ""
			if err := writeCSV(&b, table{rows: [][]any{{c.Value, 5, nil}}}, csvQuoteModes[mode]); err != nil {
				got = "error: " + err.Error()
			} else {
				got = strings.TrimPrefix(b.String(), "\n") // no header row
			}
			if got != want {
				t.Errorf("csv --quote %s of %q: %q, Python says %q", mode, c.Value, got, want)
			}
		}
	}
}
