package auth

import "testing"

// FuzzParseRoleMap: any input is either refused or parsed into a map that grants only known
// roles, resolves without panicking, and reads back from its own String form unchanged.
func FuzzParseRoleMap(f *testing.F) {
	for _, s := range []string{"", "platform-admins=admin,developers=deployer,*=viewer", "a=viewer", "*=admin", "a=b=c", ",,=", "a=admin,a=viewer", " x = deployer "} {
		f.Add(s, "platform-admins")
	}
	roles := DefaultRoles(nil)
	f.Fuzz(func(t *testing.T, s, value string) {
		m, err := ParseRoleMap(s, roles)
		if err != nil {
			return
		}
		if m.Default != "" && roles.Valid(m.Default) != nil {
			t.Fatalf("%q: default role %q is not a known role", s, m.Default)
		}
		for v, r := range m.ByValue {
			if roles.Valid(r) != nil {
				t.Fatalf("%q: value %q maps to unknown role %q", s, v, r)
			}
		}
		if role, ok := m.Resolve([]string{value}); ok && roles.Valid(role) != nil {
			t.Fatalf("%q: %q resolves to unknown role %q", s, value, role)
		}
		back, err := ParseRoleMap(m.String(), roles)
		if err != nil {
			t.Fatalf("%q: its String form %q does not parse: %v", s, m.String(), err)
		}
		if back.String() != m.String() {
			t.Fatalf("%q: %q reads back as %q", s, m.String(), back.String())
		}
	})
}
