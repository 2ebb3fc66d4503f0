package testtool

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ClientEnv is the environment of a real HTTPS client (sushy, curl,
// redfishtool) that trusts caFile only and uses no proxy:
// REQUESTS_CA_BUNDLE would otherwise make sushy ignore its verify argument.
func ClientEnv(caFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "REQUESTS_CA_BUNDLE="+caFile, "SSL_CERT_FILE="+caFile, "NO_PROXY=*")
}

// SushyPython is the Python interpreter python3-sushy is installed for:
// Debian's /usr/bin/python3 first (another python3 may come first in PATH).
// Without sushy the test stops (see Missing).
func SushyPython(t testing.TB) string {
	t.Helper()
	if exec.Command("/usr/bin/python3", "-c", "import sushy").Run() == nil {
		return "/usr/bin/python3"
	}
	py := Require(t, "python3")
	if err := exec.Command(py, "-c", "import sushy").Run(); err != nil {
		Missing(t, "python3-sushy is not installed; `make test` installs it")
	}
	return py
}
