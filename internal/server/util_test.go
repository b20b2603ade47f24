package server_test

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

func bytesOrNil(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

func readAll(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }

// wantStatus fails unless err is an *APIError with the given code and reason, and returns its
// Status.
func wantStatus(t *testing.T, err error, code int, reason string) v1.Status {
	t.Helper()
	st, ok := client.StatusOf(err)
	if !ok {
		t.Fatalf("error = %v, want an API error %d %s", err, code, reason)
	}
	if st.Code != code || st.Reason != reason {
		t.Fatalf("status = %d %s (%s), want %d %s", st.Code, st.Reason, st.Message, code, reason)
	}
	return st
}

// hasField reports whether fields has one with the given path.
func hasField(fields []v1.FieldError, path string) bool {
	for _, f := range fields {
		if f.Path == path {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

var refPattern = regexp.MustCompile(`"\$ref": "#/components/schemas/([^"]+)"`)
