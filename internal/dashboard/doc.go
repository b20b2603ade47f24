// Package dashboard serves Flotilla's web dashboard: server-rendered HTML pages (fleet, cluster,
// service, rollouts, audit, KPIs), their embedded static files and a Server-Sent Events stream
// that tells open pages when what they show has changed.
//
// The model: the server owns routing, authentication, authorisation and the mapping of errors to
// status codes (every page is a route of its route table, with its access rule); this package
// owns what a page shows and how a person signs in. It reads through Backend, a small interface
// the server implements over its store, so pages show exactly what the API would answer.
//
// Invariants:
//   - Every response carries a Content-Security-Policy that allows scripts and styles only from
//     the dashboard's own static files: no inline script runs, whatever a page contains.
//   - Everything a page shows from objects (labels, annotations, commit messages, errors) goes
//     through html/template's contextual escaping or html.EscapeString in charts, so it is shown
//     as text; URLs built from it are sanitised.
//   - A session is a signed, HttpOnly, SameSite=Strict cookie. A token session names the hash
//     of the API token a person signed in with (never the token itself); the token is looked up
//     on every request, so revoking it ends the session. A single sign-on (OIDC) session carries
//     the person's principal name ("oidc:<email or sub>") and the role the role map gave them at
//     sign-in, under the same MAC; it lasts until it expires. State-changing requests of either
//     kind also need the session's CSRF token and, when the browser sends one, a same-origin
//     Origin header.
//   - Single sign-on (optional, OIDCOptions) is the authorization code flow with PKCE: state,
//     nonce and verifier wait in a separate signed 10-minute cookie that the callback clears
//     before anything else, so a callback works once. A person whose claims map to no role gets
//     no session. Codes, tokens and the client secret never reach a page or a cookie.
//   - Action buttons (and the service page's release form) are drawn only for people whose
//     roles allow the action, and retry only where the rollout runner's record takes it; the
//     server checks again when one is pressed, so a forged request from anyone else is refused.
//     A release made from the form goes through the same Deployer call, rule and audit as the
//     API's POST /api/v1/services/{name}/releases.
package dashboard
