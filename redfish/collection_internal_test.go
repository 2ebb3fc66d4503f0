package redfish

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

// listFleet is a Fleet of fixed systems without machines: enough for the
// collections, which only list.
type listFleet []System

func (f listFleet) Systems() []System { return f }
func (f listFleet) System(string) (System, bool) {
	return System{}, false
}

// TestFleetCollectionsAreTheDocumentBuiltWhole: the Systems, Managers and
// Chassis collections, written as the fleet is walked, are byte for byte
// the JSON of the whole collection document (writeJSON of collection), for
// a fleet larger than a flush, with IDs JSON must escape, systems the
// caller may not see, and for a caller who sees none; HEAD has no body.
func TestFleetCollectionsAreTheDocumentBuiltWhole(t *testing.T) {
	admin := bmc.User{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}
	other := bmc.User{Name: "other", Password: "secret", Privilege: bmc.PrivilegeOperator}
	var fleet listFleet
	for i := range 3000 {
		users := []bmc.User{admin}
		if i%7 == 0 {
			users = []bmc.User{other}
		}
		fleet = append(fleet, System{ID: bmc.DeriveUUID(fmt.Sprint("m", i)).String(), Name: fmt.Sprint("n", i), Users: users})
	}
	for _, id := range []string{`quote"back\slash`, "<html>&amp;", "é ünïcode", "tab\tnew\nline", "sep\u2028\u2029", "bad\xffutf8"} {
		fleet = append(fleet, System{ID: id, Name: id, Users: []bmc.User{admin, other}})
	}
	s := New(fleet, Options{})
	for _, c := range []struct{ uri, kind, name string }{
		{"/redfish/v1/Systems", "ComputerSystemCollection", "Computer System Collection"},
		{"/redfish/v1/Managers", "ManagerCollection", "Manager Collection"},
		{"/redfish/v1/Chassis", "ChassisCollection", "Chassis Collection"},
	} {
		for _, who := range []struct{ user, pass string }{{"admin", "password"}, {"other", "secret"}, {"nobody", "x"}} {
			p := &principal{user: who.user, pwSum: sha256.Sum256([]byte(who.pass))}
			var links []string
			for _, sys := range fleet {
				if p.roleOn(sys) != RoleNone {
					links = append(links, c.uri+"/"+sys.ID)
				}
			}
			want := httptest.NewRecorder()
			get := httptest.NewRequest(http.MethodGet, c.uri, nil)
			s.writeJSON(want, get, http.StatusOK, collection(c.uri, c.kind, c.name, links), "")
			got := httptest.NewRecorder()
			s.writeFleetCollection(got, get, p, c.uri, c.kind, c.name)
			if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("%s as %s: streamed %d, %d bytes, differs from the whole document (%d, %d bytes)", c.uri, who.user, got.Code, got.Body.Len(), want.Code, want.Body.Len())
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "ETag"} {
				if got.Header().Get(h) != want.Header().Get(h) {
					t.Errorf("%s as %s: %s %q, want %q", c.uri, who.user, h, got.Header().Get(h), want.Header().Get(h))
				}
			}
			head := httptest.NewRecorder()
			s.writeFleetCollection(head, httptest.NewRequest(http.MethodHead, c.uri, nil), p, c.uri, c.kind, c.name)
			if head.Code != http.StatusOK || head.Body.Len() != 0 {
				t.Errorf("HEAD %s: %d with %d bytes, want 200 and no body", c.uri, head.Code, head.Body.Len())
			}
		}
	}
}

// discardWriter is a ResponseWriter that keeps only its headers.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// TestFleetCollectionAllocatesNothingPerMember: a collection GET makes the
// same few allocations whatever the fleet's size (no copy of the fleet, no
// string per member, no document held whole).
func TestFleetCollectionAllocatesNothingPerMember(t *testing.T) {
	admin := bmc.User{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}
	p := &principal{user: "admin", pwSum: sha256.Sum256([]byte("password"))}
	get := httptest.NewRequest(http.MethodGet, "/redfish/v1/Systems", nil)
	allocs := func(n int) float64 {
		fleet := make(listFleet, n)
		for i := range fleet {
			fleet[i] = System{ID: bmc.DeriveUUID(fmt.Sprint("m", i)).String(), Name: fmt.Sprint("n", i), Users: []bmc.User{admin}}
		}
		s := New(fleet, Options{})
		w := &discardWriter{header: http.Header{}}
		return testing.AllocsPerRun(20, func() {
			s.writeFleetCollection(w, get, p, "/redfish/v1/Systems", "ComputerSystemCollection", "Computer System Collection")
		})
	}
	if small, big := allocs(10), allocs(5000); big > small+2 {
		t.Errorf("the collection of 5,000 systems allocates %v times, of 10 %v times: it allocates per member", big, small)
	}
}
