package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/dashboard"
)

func TestRouteWithoutRuleCannotBeServed(t *testing.T) {
	s := &Server{}
	noop := func(http.ResponseWriter, *http.Request, *auth.Principal) error { return nil }
	for name, rt := range map[string]Route{
		"no rule":     {Method: "GET", Path: "/x", handle: noop},
		"no resource": {Method: "GET", Path: "/x", Rule: auth.Require(auth.VerbGet, ""), handle: noop},
		"wildcard":    {Method: "GET", Path: "/x", Rule: auth.Require(auth.VerbGet, auth.Any), handle: noop},
		"no handler":  {Method: "GET", Path: "/x", Rule: auth.Public()},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: building the handler did not panic", name)
				}
			}()
			s.buildHandler([]Route{rt})
		}()
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a route declared twice did not panic")
			}
		}()
		rt := Route{Method: "GET", Path: "/x", Rule: auth.Public(), handle: noop}
		s.buildHandler([]Route{rt, rt})
	}()
}

func TestEveryRouteHasACompleteRule(t *testing.T) {
	s := &Server{}
	s.opts.setDefaults()
	// With single sign-on on, so that its routes are checked too.
	s.opts.OIDC = &dashboard.OIDCOptions{Issuer: "https://login.example.com", ClientID: "flotilla", RedirectURL: "https://flotilla.example.com/ui/oidc/callback"}
	var err error
	if s.dash, err = s.newDashboard(); err != nil {
		t.Fatal(err)
	}
	for _, rt := range s.routeTable() {
		if err := rt.Rule.Check(); err != nil {
			t.Errorf("%s: %v", rt.Pattern(), err)
		}
		if rt.Rule.Kind == auth.RulePermission && rt.Kind != "" {
			// An object route's permission is on its own kind's resource.
			if res := rt.Rule.Permission.Resource; res != plural(rt.Kind) && res != auth.StatusResource(plural(rt.Kind)) {
				t.Errorf("%s guards resource %q, want its kind's", rt.Pattern(), res)
			}
		}
	}
}

func plural(kind string) string {
	info, _ := v1.LookupKind(kind)
	return info.Plural
}

func TestMergePatch(t *testing.T) {
	cases := []struct{ doc, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, c := range cases {
		var doc, patch, want any
		_ = json.Unmarshal([]byte(c.doc), &doc)
		_ = json.Unmarshal([]byte(c.patch), &patch)
		_ = json.Unmarshal([]byte(c.want), &want)
		if diff := cmp.Diff(want, mergePatch(doc, patch)); diff != "" {
			t.Errorf("mergePatch(%s, %s) (-want +got):\n%s", c.doc, c.patch, diff)
		}
	}
}

func TestJSONErrorWhere(t *testing.T) {
	data := []byte("{\n  \"a\": 1,\n  \"b\": x\n}")
	var v any
	err := json.Unmarshal(data, &v)
	if got := jsonErrorWhere(data, err); got[:19] != "line 3, column 8: i" {
		t.Errorf("jsonErrorWhere = %q, want line 3, column 8", got)
	}
}
