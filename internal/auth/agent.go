package auth

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// Prefixes of the agent protocol's secrets; like API tokens they hold 32 random bytes in base62 and
// only their HashToken is stored.
const (
	// BootstrapTokenPrefix starts a one-time cluster registration token.
	BootstrapTokenPrefix = "flb_"
	// AgentTokenPrefix starts a per-cluster agent credential.
	AgentTokenPrefix = "fla_"
)

// NewSecret returns prefix followed by 32 random bytes in base62 (43 digits).
func NewSecret(prefix string) (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("secret: read random bytes: %w", err)
	}
	return prefix + encodeBase62(b), nil
}

// CheckSecretFormat returns ErrMalformedToken unless s is prefix followed by 43 base62 digits.
func CheckSecretFormat(prefix, s string) error {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != tokenDigits {
		return ErrMalformedToken
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(base62, rune(rest[i])) {
			return ErrMalformedToken
		}
	}
	return nil
}
