// Package auth decides who a request comes from and what that caller may do.
//
// The model: a Principal (a person from OIDC, an API token, or a cluster agent) holds role names;
// a Role is a set of Permissions; a Permission is a (verb, resource) pair such as (create, services)
// or (update, services/status). Nothing else grants access: an operation is allowed exactly when
// one of the caller's roles contains its permission, so adding a person from OIDC or a per-cluster
// agent later means adding a Principal kind and maybe a role, not a new check.
//
// A person who signs in to the dashboard with OIDC is a KindUser principal named
// "oidc:<email or sub>" holding the one role a RoleMap gives their identity provider's roles
// claim (the highest that matches, or the map's default); a person it maps to nothing is refused.
//
// API tokens are 32 random bytes shown once as "flt_<base62>"; only their SHA-256 hash is stored.
// The package never logs and holds no HTTP code: the server maps its errors to status codes.
package auth
