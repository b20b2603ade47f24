package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// TokenPrefix starts every Flotilla API token, so that secret scanners and people recognise one.
const TokenPrefix = "flt_"

const (
	tokenBytes = 32
	base62     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// tokenDigits is the number of base62 digits needed for 256 bits: ceil(256 / log2(62)) = 43.
	tokenDigits = 43
)

// NewToken returns a fresh API token: TokenPrefix followed by 32 random bytes in base62, left-padded
// to a fixed 43 digits. It is shown to its owner once; the server keeps only HashToken of it.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: read random bytes: %w", err)
	}
	return TokenPrefix + encodeBase62(b), nil
}

func encodeBase62(b []byte) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, tokenDigits)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := tokenDigits - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

// CheckTokenFormat returns ErrMalformedToken unless s looks like a token made by NewToken. It lets
// the server reject garbage without a store lookup.
func CheckTokenFormat(s string) error {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
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

// HashToken returns the hex SHA-256 of the whole token string, the only form the store keeps. A
// fast hash is enough: the token has 256 bits of entropy, so there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewTokenID returns a short random identifier for a token record, safe to show and log.
func NewTokenID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token id: read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
