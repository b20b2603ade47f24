package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/oidctest"
)

var deviceCodeRE = regexp.MustCompile(`^Open (\S+) and enter (\S+)$`)

// loginSSO runs `flotilla login --sso` and, once it shows the address and code, signs username
// in and approves (or denies) at the provider's device page as a person would in a browser. It
// returns the command's output and exit code.
func (c *cli) loginSSO(provider, server, username string, deny ...bool) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "login", "--sso", "--server", server)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var errText strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		errText.WriteString(line + "\n")
		if m := deviceCodeRE.FindStringSubmatch(line); m != nil {
			if !strings.HasPrefix(m[1], provider+"/device") {
				c.t.Errorf("verification address %q is not the provider's device page", m[1])
			}
			if err := oidctest.ConfirmDevice(ctx, provider, m[2], username, len(deny) > 0 && deny[0]); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("flotilla login --sso: %v", err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errText.String(), code}
}

func TestLoginWithSSO(t *testing.T) {
	provider := oidctest.Start(t, "127.0.0.1", "http://127.0.0.1:1/ui/oidc/callback")
	s := startServerIn(t, t.TempDir(), "--oidc-issuer", provider, "--oidc-client-id", oidctest.ClientID,
		"--oidc-cli-client-id", oidctest.CLIClientID, "--oidc-redirect-url", "http://127.0.0.1:1/ui/oidc/callback",
		"--oidc-role-map", "platform-admins=admin,readers=viewer")

	alice := newCLI(t)
	r := alice.loginSSO(provider, s.URL, oidctest.Alice)
	if r.code != 0 {
		t.Fatalf("login --sso as alice: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "login output", r.stdout, "as user:oidc:alice@example.com (roles: admin)", "The token expires at", "made current")
	data, err := os.ReadFile(alice.configPath())
	if err != nil || !regexp.MustCompile(`token: flt_\w{43}`).Match(data) {
		t.Fatalf("config file after login --sso: %v\n%s", err, data)
	}
	// Only the user code is shown: no token on either stream.
	if strings.Contains(r.stdout+r.stderr, "flt_") || strings.Contains(r.stderr, "eyJ") {
		t.Errorf("login --sso printed a secret:\n%s\n%s", r.stdout, r.stderr)
	}
	mustContain(t, "whoami", alice.ok("whoami"), "user:oidc:alice@example.com (roles: admin)")
	mustContain(t, "token list", alice.ok("token", "list"), "oidc:alice@example.com", "system:sso")

	// victor is a reader: reading works, making a token is forbidden.
	victor := newCLI(t)
	if r := victor.loginSSO(provider, s.URL, oidctest.Victor); r.code != 0 {
		t.Fatalf("login --sso as victor: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "victor's whoami", victor.ok("whoami"), "user:oidc:victor@example.com (roles: viewer)")
	victor.ok("get", "clusters")
	mustContain(t, "victor creates a token", victor.fails("token", "create", "mine", "--role", "admin"), "may not create tokens")
	// An administrator ends victor's session by his name.
	mustContain(t, "revoke victor", alice.ok("token", "delete", "oidc:victor@example.com"), "token oidc:victor@example.com deleted")
	mustContain(t, "victor after revocation", victor.fails("whoami"), "not known")

	// nora's groups map to no role: refused with the reason, and nothing saved.
	nora := newCLI(t)
	r = nora.loginSSO(provider, s.URL, oidctest.Nora)
	if r.code == 0 {
		t.Fatalf("login --sso as nora succeeded:\n%s", r.stdout)
	}
	mustContain(t, "nora's refusal", r.stderr, "no Flotilla role is mapped", "sales")
	if _, err := os.Stat(nora.configPath()); !os.IsNotExist(err) {
		t.Errorf("a refused login wrote the config file: %v", err)
	}

	// Denying at the provider ends the login with the reason.
	denied := newCLI(t)
	r = denied.loginSSO(provider, s.URL, oidctest.Alice, true)
	if r.code == 0 {
		t.Fatalf("denied login --sso succeeded:\n%s", r.stdout)
	}
	mustContain(t, "denied login", r.stderr, "denied at the identity provider")

	// A server without single sign-on says so.
	plain := startServer(t)
	mustContain(t, "login --sso without OIDC", newCLI(t).fails("login", "--sso", "--server", plain.URL), "no single sign-on configured")
}
