package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var builds sync.Map // packages joined by spaces → func() (string, error)

// Build compiles the main packages (import paths) once per test binary
// and returns the directory holding the programs.
func Build(t testing.TB, pkgs ...string) string {
	t.Helper()
	once, _ := builds.LoadOrStore(strings.Join(pkgs, " "), sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "govbmc-bin")
		if err != nil {
			return "", err
		}
		out, err := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
		}
		return dir, nil
	}))
	dir, err := once.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
