package analysis

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestJSONPath(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"data":{"result":[{"value":0.5},{"value":2}],"a.b":{"]":true}},"ok":"yes","n":null}`), &doc); err != nil {
		t.Fatal(err)
	}
	cases := map[string]any{
		"":                             doc,
		"$":                            doc,
		"$.ok":                         "yes",
		"ok":                           "yes",
		"data.result[0].value":         0.5,
		"$.data.result[-1].value":      2.0,
		"$['data']['a.b'][']']":        true,
		`$["data"].result[1]["value"]`: 2.0,
		"$.n":                          nil,
	}
	for p, want := range cases {
		steps, err := parsePath(p)
		if err != nil {
			t.Errorf("parse %q: %v", p, err)
			continue
		}
		got, err := evalPath(doc, steps)
		if err != nil {
			t.Errorf("eval %q: %v", p, err)
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("eval %q = %s, want %s", p, gb, wb)
		}
	}
	for p, want := range map[string]string{
		"$.data.result[2]": "nothing at path",
		"$.missing":        "nothing at path",
		"$.ok[0]":          "not an array (string)",
		"$.ok.x":           "not an object (string)",
	} {
		steps, err := parsePath(p)
		if err != nil {
			t.Fatalf("parse %q: %v", p, err)
		}
		_, err = evalPath(doc, steps)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("eval %q = %v, want %q", p, err, want)
		}
		if want == "nothing at path" && !errors.Is(err, errPathMissing) {
			t.Errorf("eval %q: %v is not errPathMissing", p, err)
		}
	}
	for _, p := range []string{"$.", "$..a", "$[x]", "$['a'", "$['a'x]", "$[", "a b[0"} {
		if _, err := parsePath(p); err == nil {
			t.Errorf("parse %q: no error", p)
		} else if !strings.Contains(err.Error(), "offset") {
			t.Errorf("parse %q = %v, want the offset named", p, err)
		}
	}
}
