package load

import (
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets("127.0.0.1:6230-6232, [::1]:623,host:7000")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, x := range got {
		s = append(s, x.String())
	}
	if want := "127.0.0.1:6230 127.0.0.1:6231 127.0.0.1:6232 [::1]:623 host:7000"; strings.Join(s, " ") != want {
		t.Errorf("got %v, want %s", s, want)
	}
	for _, bad := range []string{"", "host", "host:0", "host:7-3", "host:1-70000", "host:x"} {
		if _, err := ParseTargets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
