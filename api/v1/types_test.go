package v1

import (
	"encoding/json"
	"testing"
	"time"
)

func TestIntOrPercent(t *testing.T) {
	cases := []struct {
		in      string
		json    string
		total   int
		want    int
		wantErr bool
	}{
		{`2`, `2`, 10, 2, false},
		{`"3"`, `3`, 10, 3, false},
		{`"25%"`, `"25%"`, 10, 3, false},
		{`"1%"`, `"1%"`, 10, 1, false},
		{`"100%"`, `"100%"`, 7, 7, false},
		{`20`, `20`, 5, 5, false},
		{`"007"`, `"007"`, 10, 7, false},
		{`0`, `0`, 10, 0, true},
		{`"0%"`, `"0%"`, 10, 0, true},
		{`"101%"`, `"101%"`, 10, 0, true},
		{`"x"`, `"x"`, 10, 0, true},
		{`1.5`, `"1.5"`, 10, 0, true},
	}
	for _, c := range cases {
		var p IntOrPercent
		if err := json.Unmarshal([]byte(c.in), &p); err != nil {
			t.Fatalf("unmarshal %s: %v", c.in, err)
		}
		out, err := json.Marshal(p)
		if err != nil || string(out) != c.json {
			t.Errorf("marshal %s = %s, %v; want %s", c.in, out, err, c.json)
		}
		n, err := p.Resolve(c.total)
		if (err != nil) != c.wantErr || n != c.want {
			t.Errorf("%s.Resolve(%d) = %d, %v; want %d (error %v)", c.in, c.total, n, err, c.want, c.wantErr)
		}
	}
	var p IntOrPercent
	if err := json.Unmarshal([]byte(`true`), &p); err == nil {
		t.Errorf("unmarshal true: no error")
	}
}

func TestSchedule(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err) // tzdata is part of Debian's base system
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cases := []struct {
		expr string
		at   string
		want bool
	}{
		{"Mon-Fri 09:00-17:00", "2026-11-23 09:00", true}, // Monday
		{"Mon-Fri 09:00-17:00", "2026-11-23 17:00", false},
		{"Mon-Fri 09:00-17:00", "2026-11-22 10:00", false}, // Sunday
		{"Fri-Mon", "2026-11-22 10:00", true},              // range wraps the week
		{"Fri-Mon", "2026-11-25 10:00", false},             // Wednesday
		{"Sat,Sun", "2026-11-28 00:00", true},
		{"22:00-06:00", "2026-11-25 23:30", true},
		{"22:00-06:00", "2026-11-25 05:59", true},
		{"22:00-06:00", "2026-11-25 06:00", false},
		{"Fri 22:00-06:00", "2026-11-28 05:00", true},  // Saturday morning belongs to Friday night
		{"Fri 22:00-06:00", "2026-11-27 05:00", false}, // Friday morning belongs to Thursday
		{"2026-12-24/2026-12-27", "2026-12-27 23:59", true},
		{"2026-12-24/2026-12-27", "2026-12-28 00:00", false},
		{"2026-12-24", "2026-12-24 12:00", true},
	}
	for _, c := range cases {
		sc, err := ParseSchedule(c.expr)
		if err != nil {
			t.Fatalf("ParseSchedule(%q): %v", c.expr, err)
		}
		if got := sc.Contains(at(c.at), berlin); got != c.want {
			t.Errorf("%q contains %s = %v, want %v", c.expr, c.at, got, c.want)
		}
	}
	for _, bad := range []string{"", "Funday", "Mon 9-17", "Mon 09:00", "09:00-09:00", "2026-02-30", "2026-12-27/2026-12-24", "Mon Tue 09:00-10:00 x"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q): no error", bad)
		}
	}
	w := TimeWindow{Allow: "Mon-Fri 09:00-17:00", TimeZone: "Europe/Berlin"}
	in, err := w.Contains(time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)) // 09:30 in Berlin
	if err != nil || !in {
		t.Errorf("window in Berlin at 08:30 UTC: %v, %v; want true", in, err)
	}
}

func TestLabelSelector(t *testing.T) {
	s := &LabelSelector{MatchLabels: map[string]string{"env": "prod"},
		MatchExpressions: []LabelSelectorRequirement{{Key: "ring", Operator: OpIn, Values: []string{"1", "2"}}, {Key: "canary", Operator: OpDoesNotExist}}}
	cases := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"env": "prod", "ring": "1"}, true},
		{map[string]string{"env": "prod", "ring": "3"}, false},
		{map[string]string{"env": "prod", "ring": "2", "canary": "true"}, false},
		{map[string]string{"ring": "1"}, false},
	}
	for _, c := range cases {
		if got := s.Matches(c.labels); got != c.want {
			t.Errorf("Matches(%v) = %v, want %v", c.labels, got, c.want)
		}
	}
	if !(&LabelSelector{}).Matches(map[string]string{"x": "y"}) {
		t.Errorf("empty selector does not match everything")
	}
	var none *LabelSelector
	if none.Matches(map[string]string{}) {
		t.Errorf("nil selector matches")
	}
}

func TestReleaseBundleFor(t *testing.T) {
	st := ReleaseStatus{Bundles: []ReleaseBundle{{Digest: "sha256:a", Clusters: []string{"x", "y"}}, {Digest: "sha256:b", Clusters: []string{"z"}}}}
	if st.BundleFor("y") != "sha256:a" || st.BundleFor("z") != "sha256:b" || st.BundleFor("q") != "" {
		t.Errorf("BundleFor gives %q %q %q", st.BundleFor("y"), st.BundleFor("z"), st.BundleFor("q"))
	}
}
