package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestNewTokenFormatAndUniqueness(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckTokenFormat(tok); err != nil {
			t.Fatalf("NewToken() = %q fails its own format check: %v", tok, err)
		}
		if len(tok) != len(TokenPrefix)+tokenDigits {
			t.Fatalf("token %q has length %d, want %d", tok, len(tok), len(TokenPrefix)+tokenDigits)
		}
		if seen[tok] {
			t.Fatalf("token %q generated twice", tok)
		}
		seen[tok] = true
	}
}

func TestEncodeBase62(t *testing.T) {
	zero := encodeBase62(make([]byte, 32))
	if zero != strings.Repeat("0", tokenDigits) {
		t.Errorf("encodeBase62(zeros) = %q, want %d zeros", zero, tokenDigits)
	}
	max := make([]byte, 32)
	for i := range max {
		max[i] = 0xff
	}
	// 2^256-1 needs all 43 digits and must not overflow them.
	if got := encodeBase62(max); len(got) != tokenDigits || got[0] == '0' {
		t.Errorf("encodeBase62(max) = %q, want 43 digits with a non-zero first digit", got)
	}
}

func TestCheckTokenFormatRejects(t *testing.T) {
	good, _ := NewToken()
	for _, s := range []string{"", "flt_", "abc", "Bearer " + good, good + "x", strings.Replace(good, "flt_", "flx_", 1),
		good[:len(good)-1] + "-"} {
		if err := CheckTokenFormat(s); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("CheckTokenFormat(%q) = %v, want ErrMalformedToken", s, err)
		}
	}
}

func TestHashTokenIsStableHex(t *testing.T) {
	a1, a2 := HashToken("a"), HashToken("a")
	if a1 != a2 || a1 == HashToken("b") {
		t.Fatal("HashToken is not a function of its input")
	}
	if got := HashToken("flt_x"); len(got) != 64 {
		t.Errorf("HashToken length = %d, want 64 hex digits", len(got))
	}
}

func TestDefaultRoles(t *testing.T) {
	roles := DefaultRoles([]string{"services", "clusters"})
	viewer := &Principal{Name: "v", Kind: KindToken, Roles: []string{RoleViewer}}
	deployer := &Principal{Name: "d", Kind: KindToken, Roles: []string{RoleDeployer}}
	admin := &Principal{Name: "a", Kind: KindUser, Roles: []string{RoleAdmin}}
	nobody := &Principal{Name: "n", Kind: KindAgent, Roles: []string{"no-such-role"}}
	cases := []struct {
		p    *Principal
		perm Permission
		want bool
	}{
		{viewer, Permission{VerbGet, "services"}, true},
		{viewer, Permission{VerbWatch, "clusters"}, true},
		{viewer, Permission{VerbList, ResourceAudit}, true},
		{viewer, Permission{VerbCreate, "services"}, false},
		{viewer, Permission{VerbList, ResourceTokens}, false},
		{deployer, Permission{VerbApply, "services"}, true},
		{deployer, Permission{VerbDelete, "clusters"}, true},
		{deployer, Permission{VerbUpdate, StatusResource("services")}, false},
		{deployer, Permission{VerbCreate, ResourceTokens}, false},
		{deployer, Permission{VerbGet, "rollouts"}, false}, // not a resource it was given
		{admin, Permission{VerbCreate, ResourceTokens}, true},
		{admin, Permission{VerbUpdate, StatusResource("clusters")}, true},
		{nobody, Permission{VerbGet, "services"}, false},
		{nil, Permission{VerbGet, "services"}, false},
	}
	for _, c := range cases {
		if got := roles.Allowed(c.p, c.perm); got != c.want {
			t.Errorf("Allowed(%s, %s) = %v, want %v", c.p, c.perm, got, c.want)
		}
	}
	err := roles.Authorize(viewer, Permission{VerbDelete, "services"})
	if !errors.Is(err, ErrForbidden) || err.Error() != "token:v may not delete services" {
		t.Errorf("Authorize error = %v, want ErrForbidden saying who and what", err)
	}
	if err := roles.Valid("root"); !errors.Is(err, ErrUnknownRole) || !strings.Contains(err.Error(), "admin, deployer, viewer") {
		t.Errorf("Valid(root) = %v, want ErrUnknownRole listing the known roles", err)
	}
}

func TestRuleCheck(t *testing.T) {
	for _, r := range []Rule{Public(), Authenticated(), Require(VerbGet, "services"), RequireEach(VerbApply)} {
		if err := r.Check(); err != nil {
			t.Errorf("%s: Check() = %v, want nil", r, err)
		}
	}
	for _, r := range []Rule{{}, Require("", "services"), Require(VerbGet, ""), Require(VerbGet, Any), RequireEach("")} {
		if err := r.Check(); err == nil {
			t.Errorf("%+v: Check() = nil, want an error", r)
		}
	}
}
