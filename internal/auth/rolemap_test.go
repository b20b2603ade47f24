package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRoleMap(t *testing.T) {
	roles := DefaultRoles([]string{"services"})
	m, err := ParseRoleMap(" platform-admins=admin, developers=deployer ,*=viewer,", roles)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.String(), "developers=deployer,platform-admins=admin,*=viewer"; got != want {
		t.Errorf("ParseRoleMap(...).String() = %q, want %q", got, want)
	}
	if m, err := ParseRoleMap("", roles); err != nil || !m.Empty() {
		t.Errorf("ParseRoleMap(\"\") = %v, %v; want an empty map", m, err)
	}
	for in, want := range map[string]string{
		"ops=root":            "unknown role",
		"ops":                 "want claim-value=role",
		"=admin":              "want claim-value=role",
		"ops=":                "want claim-value=role",
		"*=viewer,*=admin":    "given twice",
		"ops=admin,ops=admin": "mapped twice",
	} {
		_, err := ParseRoleMap(in, roles)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoleMap(%q) error = %v, want one saying %q", in, err, want)
		}
	}
	if _, err := ParseRoleMap("ops=root", roles); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("unknown role: error %v does not wrap ErrUnknownRole", err)
	}
}

func TestRoleMapResolve(t *testing.T) {
	roles := DefaultRoles([]string{"services"})
	withDefault, _ := ParseRoleMap("platform-admins=admin,developers=deployer,readers=viewer,*=viewer", roles)
	strict, _ := ParseRoleMap("platform-admins=admin,developers=deployer,readers=viewer", roles)
	for _, c := range []struct {
		m      RoleMap
		values []string
		role   string
		ok     bool
	}{
		{withDefault, []string{"developers"}, RoleDeployer, true},
		{withDefault, []string{"readers", "platform-admins", "developers"}, RoleAdmin, true}, // highest wins, whatever the order
		{withDefault, []string{"developers", "readers"}, RoleDeployer, true},
		{withDefault, []string{"sales"}, RoleViewer, true},
		{withDefault, nil, RoleViewer, true},
		{strict, []string{"sales"}, "", false}, // no match and no default: refused
		{strict, nil, "", false},
		{strict, []string{"Developers"}, "", false}, // values match exactly
		{RoleMap{}, []string{"platform-admins"}, "", false},
	} {
		role, ok := c.m.Resolve(c.values)
		if role != c.role || ok != c.ok {
			t.Errorf("%s: Resolve(%q) = %q, %v; want %q, %v", c.m, c.values, role, ok, c.role, c.ok)
		}
	}
}
