package authn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// TokenFileFormat describes the --token-auth-file format, for flag help
// and errors.
const TokenFileFormat = `one token per line: sha256:<hex SHA-256 of the token>,<user>,<uid>[,<group>...]; ` +
	`blank lines and lines starting with # are ignored. "setpoint token create" prints a new token and its line.`

// hashPrefix starts the first field of a token file line.
const hashPrefix = "sha256:"

// maxTokenFileBytes bounds a token file.
const maxTokenFileBytes = 4 << 20

// Tokens authenticates bearer tokens against a set of SHA-256 hashes; it
// never holds a token itself. Every lookup compares the hash of the
// presented token with every known hash in constant time, so how long it
// takes says nothing about which tokens exist. The zero value knows no
// token; a Tokens is not modified after it is built.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	user *user.DefaultInfo
}

var _ authenticator.Token = (*Tokens)(nil)

// NewToken returns a fresh random token of 130 bits.
func NewToken() string { return rand.Text() }

// HashToken returns the SHA-256 of token as a token file stores it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// TokenLine returns the token file line that makes token authenticate
// as u. It fails if u cannot be written in the format (an empty name, a
// comma, or a control character).
func TokenLine(token string, u user.Info) (string, error) {
	fields := append([]string{HashToken(token), u.GetName(), u.GetUID()}, u.GetGroups()...)
	line := strings.Join(fields, ",")
	e, err := parseTokenLine(line)
	if err != nil {
		return "", err
	}
	if e.user.Name != u.GetName() || e.user.UID != u.GetUID() || !slices.Equal(e.user.Groups, u.GetGroups()) {
		return "", errors.New("a name, uid or group with a comma or surrounding spaces")
	}
	return line, nil
}

// WithToken returns a Tokens that also knows token as u (used for the
// per-process loopback credential, which is never written down).
func (t *Tokens) WithToken(token string, u user.Info) *Tokens {
	out := &Tokens{entries: append([]tokenEntry(nil), t.entries...)}
	out.entries = append(out.entries, tokenEntry{hash: sha256.Sum256([]byte(token)), user: copyUser(u)})
	return out
}

// AuthenticateToken returns the user of token, or not-found if it is none
// of t's.
func (t *Tokens) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	sum := sha256.Sum256([]byte(token))
	var found *user.DefaultInfo
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].hash[:]) == 1 {
			found = t.entries[i].user
		}
	}
	if found == nil {
		return nil, false, nil
	}
	return &authenticator.Response{User: copyUser(found)}, true, nil
}

// LoadTokenFile reads the token file at path (see TokenFileFormat).
func LoadTokenFile(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	t, err := ParseTokenFile(f)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokenFile reads a token file (see TokenFileFormat) of at most
// 4 MiB. A malformed line or a hash given twice is an error naming the
// line; the error never repeats the line's content.
func ParseTokenFile(r io.Reader) (*Tokens, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTokenFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxTokenFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxTokenFileBytes)
	}
	t := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	lines := bufio.NewScanner(bytes.NewReader(data))
	lines.Buffer(nil, maxTokenFileBytes)
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseTokenLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w (want %s)", n, err, TokenFileFormat)
		}
		if seen[e.hash] {
			return nil, fmt.Errorf("line %d: the same token hash is on an earlier line", n)
		}
		seen[e.hash] = true
		t.entries = append(t.entries, e)
	}
	if err := lines.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// parseTokenLine reads one non-comment line of a token file.
func parseTokenLine(line string) (tokenEntry, error) {
	fields := strings.Split(line, ",")
	if len(fields) < 3 {
		return tokenEntry{}, errors.New("fewer than 3 fields")
	}
	for i, f := range fields {
		fields[i] = strings.TrimSpace(f)
		if strings.ContainsFunc(fields[i], unicode.IsControl) {
			return tokenEntry{}, errors.New("a control character")
		}
	}
	hexHash, ok := strings.CutPrefix(fields[0], hashPrefix)
	if !ok {
		return tokenEntry{}, errors.New("the first field does not start with " + hashPrefix)
	}
	var e tokenEntry
	if len(hexHash) != hex.EncodedLen(sha256.Size) {
		return tokenEntry{}, fmt.Errorf("the hash is not %d hexadecimal digits", hex.EncodedLen(sha256.Size))
	}
	if _, err := hex.Decode(e.hash[:], []byte(hexHash)); err != nil {
		return tokenEntry{}, fmt.Errorf("the hash is not %d hexadecimal digits", 2*sha256.Size)
	}
	if fields[1] == "" {
		return tokenEntry{}, errors.New("empty user name")
	}
	e.user = &user.DefaultInfo{Name: fields[1], UID: fields[2]}
	for _, g := range fields[3:] {
		if g == "" {
			return tokenEntry{}, errors.New("empty group name")
		}
		e.user.Groups = append(e.user.Groups, g)
	}
	return e, nil
}

// copyUser returns a DefaultInfo with u's fields, so callers may not
// change what a Tokens holds.
func copyUser(u user.Info) *user.DefaultInfo {
	return &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: append([]string(nil), u.GetGroups()...)}
}
