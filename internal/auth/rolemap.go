package auth

import (
	"fmt"
	"sort"
	"strings"
)

// RoleMap maps the values of an identity provider's roles claim (usually its groups) to Flotilla
// roles, for people who sign in with OIDC. It exists so that who may do what stays decided by
// the same Roles as API tokens: a person gets exactly one of the server's roles, or none.
type RoleMap struct {
	// ByValue maps a claim value to a role name.
	ByValue map[string]string
	// Default is the role of a person whose claim values match no entry; "" refuses them.
	Default string
}

// roleRank orders the built-in roles by how much they allow, so that a person in several mapped
// groups gets the most capable of their roles rather than whichever was listed first.
var roleRank = map[string]int{RoleViewer: 1, RoleDeployer: 2, RoleAdmin: 3}

// ParseRoleMap reads a role map written as "value=role,value=role,*=role": each claim value
// names the role it grants, and "*" (optional) the role of anyone whose values match nothing.
// Every role must be one of roles. An empty string is an empty map, which refuses everyone.
func ParseRoleMap(s string, roles Roles) (RoleMap, error) {
	m := RoleMap{ByValue: map[string]string{}}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		value, role, ok := strings.Cut(entry, "=")
		value, role = strings.TrimSpace(value), strings.TrimSpace(role)
		if !ok || value == "" || role == "" {
			return RoleMap{}, fmt.Errorf("role map entry %q: want claim-value=role", entry)
		}
		if err := roles.Valid(role); err != nil {
			return RoleMap{}, fmt.Errorf("role map entry %q: %w", entry, err)
		}
		if value == "*" {
			if m.Default != "" {
				return RoleMap{}, fmt.Errorf("role map entry %q: the default \"*\" is given twice", entry)
			}
			m.Default = role
			continue
		}
		if prev, dup := m.ByValue[value]; dup {
			return RoleMap{}, fmt.Errorf("role map entry %q: %q is mapped twice (also to %q)", entry, value, prev)
		}
		m.ByValue[value] = role
	}
	return m, nil
}

// Empty reports whether the map grants no role to anyone.
func (m RoleMap) Empty() bool { return len(m.ByValue) == 0 && m.Default == "" }

// Resolve returns the role of a person whose roles claim holds values: the highest role any value
// maps to, else the default. ok is false when neither applies, and the person must be refused.
func (m RoleMap) Resolve(values []string) (role string, ok bool) {
	for _, v := range values {
		r, found := m.ByValue[v]
		if !found {
			continue
		}
		if role == "" || roleRank[r] > roleRank[role] || roleRank[r] == roleRank[role] && r < role {
			role = r
		}
	}
	if role != "" {
		return role, true
	}
	return m.Default, m.Default != ""
}

// String writes the map back in ParseRoleMap's form, sorted, for messages and documentation.
func (m RoleMap) String() string {
	var parts []string
	for v, r := range m.ByValue {
		parts = append(parts, v+"="+r)
	}
	sort.Strings(parts)
	if m.Default != "" {
		parts = append(parts, "*="+m.Default)
	}
	return strings.Join(parts, ",")
}
