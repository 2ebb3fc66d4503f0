package redfish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestMediaErrorOfAnEndedRequest: an insert whose request ended answers
// 504 when its bound passed, and a cancelled one (the client gone) gives
// back a bare error, so that the log line does not carry the image URL
// and the signature in its query.
func TestMediaErrorOfAnEndedRequest(t *testing.T) {
	const url = "https://swift.example/v1/AUTH_x/images/deploy.iso?temp_url_sig=SECRET"
	var ae *apiError
	if err := mediaError(fmt.Errorf("insert %s: %w", url, context.DeadlineExceeded), mediaParams{}); !errors.As(err, &ae) || ae.status != http.StatusGatewayTimeout {
		t.Fatalf("past the insert's bound: %v, want a 504", err)
	}
	err := mediaError(fmt.Errorf("insert %s: %w", url, context.Canceled), mediaParams{})
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("a cancelled insert: %q", err)
	}
}
