package signature_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/signature"
)

func TestSetHeadersVerifies(t *testing.T) {
	key, body, now := []byte("k"), `{"a":1}`, time.Unix(1800000000, 0)
	for name, tt := range map[string]struct {
		key  []byte
		at   time.Time
		body string
		want error
	}{
		"good":      {key, now, body, nil},
		"other key": {[]byte("x"), now, body, signature.ErrBadSignature},
		"stale":     {key, now.Add(-time.Hour), body, signature.ErrStale},
		"changed":   {key, now, `{"a":2}`, signature.ErrBadSignature},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
		signature.SetHeaders(r.Header, key, tt.at, []byte(body))
		got, err := signature.Verify(r, tt.key, now, time.Minute, 1<<10)
		if !errors.Is(err, tt.want) || (err == nil && string(got) != body) {
			t.Errorf("%s: Verify = %q, %v; want %v", name, got, err, tt.want)
		}
	}
}
