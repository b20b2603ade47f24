package sqlstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeDecodeMap(t *testing.T) {
	cases := []map[string]string{
		nil,
		{"a": "b"},
		{"env": "prod", "region": "eu", "ring": "1", "empty": ""},
		{"example.com/key": "a,b:c}{", "k": `quote " and \ backslash`},
		{"unicode": "zürich ☃", "html": "<&>"},
		{"": "empty key"},
	}
	for _, m := range cases {
		enc := encodeMap(m)
		got, err := decodeMap([]byte(enc))
		if err != nil {
			t.Fatalf("decodeMap(%s): %v", enc, err)
		}
		if len(m) == 0 && got != nil {
			t.Errorf("empty map decoded as %v", got)
		}
		if d := cmp.Diff(m, got); len(m) > 0 && d != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", enc, d)
		}
	}
	for _, bad := range []string{`{"a":}`, `{"a":"b"`, `{"a":"b",}`, `{"a":1}`, `[1]`} {
		if _, err := decodeMap([]byte(bad)); err == nil {
			t.Errorf("decodeMap(%s): no error", bad)
		}
	}
}
