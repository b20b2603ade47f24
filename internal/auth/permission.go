package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Verb is what an operation does to a resource.
type Verb string

// The verbs Flotilla's API uses. Apply is create-or-update of a batch; it is a verb of its own so
// a role can allow editing one object at a time without allowing bulk writes, or the reverse.
const (
	VerbGet    Verb = "get"
	VerbList   Verb = "list"
	VerbWatch  Verb = "watch"
	VerbCreate Verb = "create"
	VerbUpdate Verb = "update"
	VerbPatch  Verb = "patch"
	VerbDelete Verb = "delete"
	VerbApply  Verb = "apply"
)

// Resources that are not object kinds. Object kinds use their plural ("services"), their status
// subresource the plural followed by "/status" ("services/status").
const (
	ResourceAudit  = "audit"
	ResourceTokens = "tokens"
	// Any matches every resource in a role's permission; it never appears in a route's rule.
	Any = "*"
)

// StatusResource returns the name of the status subresource of the object resource plural.
func StatusResource(plural string) string { return plural + "/status" }

// Permission is one (verb, resource) pair. A role lists the permissions it grants; a route names
// the permission it needs.
type Permission struct {
	Verb     Verb
	Resource string
}

// String returns "verb resource", the form used in error messages.
func (p Permission) String() string { return string(p.Verb) + " " + p.Resource }

// Role is a named set of permissions. A permission whose Verb or Resource is Any matches every verb or
// resource respectively.
type Role struct {
	Name        string
	Permissions []Permission
}

// Allows reports whether the role grants p.
func (r Role) Allows(p Permission) bool {
	for _, g := range r.Permissions {
		if (g.Verb == Any || g.Verb == p.Verb) && (g.Resource == Any || g.Resource == p.Resource) {
			return true
		}
	}
	return false
}

// The built-in roles.
const (
	RoleAdmin    = "admin"
	RoleDeployer = "deployer"
	RoleViewer   = "viewer"
)

// Roles is the set of roles the server knows, by name.
type Roles map[string]Role

// DefaultRoles returns the built-in roles for the object resources objectResources (kind plurals):
//   - viewer reads every object kind and the audit trail;
//   - deployer also creates, updates, patches, deletes and applies objects (not their status, which
//     agents and the control plane write);
//   - admin may do everything, including managing tokens and writing status.
func DefaultRoles(objectResources []string) Roles {
	var viewer, deployer []Permission
	for _, res := range objectResources {
		for _, v := range []Verb{VerbGet, VerbList, VerbWatch} {
			viewer = append(viewer, Permission{v, res})
		}
		for _, v := range []Verb{VerbCreate, VerbUpdate, VerbPatch, VerbDelete, VerbApply} {
			deployer = append(deployer, Permission{v, res})
		}
	}
	viewer = append(viewer, Permission{VerbList, ResourceAudit})
	deployer = append(slices.Clone(viewer), deployer...)
	return Roles{
		RoleViewer:   {Name: RoleViewer, Permissions: viewer},
		RoleDeployer: {Name: RoleDeployer, Permissions: deployer},
		RoleAdmin:    {Name: RoleAdmin, Permissions: []Permission{{Any, Any}}},
	}
}

// Names returns the role names in sorted order.
func (rs Roles) Names() []string {
	names := make([]string, 0, len(rs))
	for n := range rs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Valid reports an error naming the known roles when name is not one of them.
func (rs Roles) Valid(name string) error {
	if _, ok := rs[name]; ok {
		return nil
	}
	return fmt.Errorf("role %q: %w (known: %s)", name, ErrUnknownRole, strings.Join(rs.Names(), ", "))
}

// Allowed reports whether any of p's roles grants perm. Unknown role names grant nothing.
func (rs Roles) Allowed(p *Principal, perm Permission) bool {
	if p == nil {
		return false
	}
	for _, name := range p.Roles {
		if r, ok := rs[name]; ok && r.Allows(perm) {
			return true
		}
	}
	return false
}

// Authorize returns nil when p may perform perm, else an error wrapping ErrForbidden that names the
// principal and the permission.
func (rs Roles) Authorize(p *Principal, perm Permission) error {
	if rs.Allowed(p, perm) {
		return nil
	}
	return &ForbiddenError{Principal: p.String(), Permission: perm}
}

// ForbiddenError says which principal lacked which permission. It wraps ErrForbidden.
type ForbiddenError struct {
	Principal  string
	Permission Permission
}

// Error says who may not do what: "token:ci may not delete services".
func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("%s may not %s %s", e.Principal, e.Permission.Verb, e.Permission.Resource)
}

// Unwrap lets errors.Is(err, ErrForbidden) match.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }
