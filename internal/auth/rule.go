package auth

import "fmt"

// RuleKind says how a Rule decides access.
type RuleKind int

// Kinds of rules. The zero value is invalid on purpose: a route whose rule was forgotten cannot be
// built (see Rule.Check).
const (
	_ RuleKind = iota // the zero value: no rule declared
	// RulePublic: no credential needed (health, readiness, metrics, the OpenAPI document).
	RulePublic
	// RuleAuthenticated: any valid principal (whoami).
	RuleAuthenticated
	// RulePermission: the principal needs Rule.Permission.
	RulePermission
	// RuleEachObject: the principal needs (Rule.Permission.Verb, resource) for every resource the
	// request touches; the handler names those resources once it has read the request (apply, watch),
	// and the route-level check only requires a principal.
	RuleEachObject
)

// Rule is the access rule a route declares. Build one with Public, Authenticated, Require or
// RequireEach.
type Rule struct {
	Kind       RuleKind
	Permission Permission
}

// Public returns the rule of a route that needs no credential.
func Public() Rule { return Rule{Kind: RulePublic} }

// Authenticated returns the rule of a route open to every valid principal.
func Authenticated() Rule { return Rule{Kind: RuleAuthenticated} }

// Require returns the rule of a route that needs (verb, resource).
func Require(verb Verb, resource string) Rule {
	return Rule{Kind: RulePermission, Permission: Permission{Verb: verb, Resource: resource}}
}

// RequireEach returns the rule of a route that needs verb on every resource the request touches.
func RequireEach(verb Verb) Rule {
	return Rule{Kind: RuleEachObject, Permission: Permission{Verb: verb}}
}

// Check returns an error when the rule is incomplete: unset, or missing its verb or resource.
func (r Rule) Check() error {
	switch r.Kind {
	case RulePublic, RuleAuthenticated:
		return nil
	case RulePermission:
		if r.Permission.Verb == "" || r.Permission.Resource == "" || r.Permission.Resource == Any {
			return fmt.Errorf("rule: permission %q is incomplete", r.Permission)
		}
		return nil
	case RuleEachObject:
		if r.Permission.Verb == "" {
			return fmt.Errorf("rule: per-object rule has no verb")
		}
		return nil
	default:
		return fmt.Errorf("rule: no access rule declared")
	}
}

// NeedsPrincipal reports whether the rule requires an authenticated caller.
func (r Rule) NeedsPrincipal() bool { return r.Kind != RulePublic }

// String describes the rule for documentation ("public", "authenticated", "get services",
// "apply <each object's kind>").
func (r Rule) String() string {
	switch r.Kind {
	case RulePublic:
		return "public"
	case RuleAuthenticated:
		return "authenticated"
	case RulePermission:
		return r.Permission.String()
	case RuleEachObject:
		return string(r.Permission.Verb) + " <each object's kind>"
	default:
		return "unset"
	}
}
