package source

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// Ref says which commit of a repository to use. Exactly one field is set.
type Ref struct {
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// Semver is a range over tags, such as ">=1.2 <2" or "~1.4"; tags may
	// carry a leading "v". The highest matching version wins.
	Semver string `json:"semver,omitempty"`
	// Commit is a full hexadecimal commit id.
	Commit string `json:"commit,omitempty"`
}

// String returns the ref in the form kind:value.
func (r Ref) String() string {
	switch {
	case r.Branch != "":
		return "branch:" + r.Branch
	case r.Tag != "":
		return "tag:" + r.Tag
	case r.Semver != "":
		return "semver:" + r.Semver
	case r.Commit != "":
		return "commit:" + r.Commit
	}
	return "default"
}

var hexCommit = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// Validate checks that exactly one field is set and that it is acceptable.
func (r Ref) Validate() error {
	n := 0
	for _, v := range []string{r.Branch, r.Tag, r.Semver, r.Commit} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("source: ref %s: %w: set exactly one of branch, tag, semver, commit", r, ErrRefRefused)
	}
	switch {
	case r.Branch != "":
		return checkRefName("branch", r.Branch)
	case r.Tag != "":
		return checkRefName("tag", r.Tag)
	case r.Semver != "":
		if strings.HasPrefix(r.Semver, "-") {
			return fmt.Errorf("source: semver %q: %w: begins with '-'", r.Semver, ErrRefRefused)
		}
		if _, err := semver.NewConstraint(r.Semver); err != nil {
			return fmt.Errorf("source: semver %q: %w: %w", r.Semver, ErrRefRefused, err)
		}
	case r.Commit != "":
		if !hexCommit.MatchString(r.Commit) {
			return fmt.Errorf("source: commit %q: %w: want a full lowercase hexadecimal id", r.Commit, ErrRefRefused)
		}
	}
	return nil
}

// resolved is a ref resolved against a remote.
type resolved struct {
	hash plumbing.Hash
	name plumbing.ReferenceName // the remote ref to fetch; "" for a fixed commit
}

// resolveRef picks the commit for r from the remote's advertised refs.
func resolveRef(r Ref, refs []*plumbing.Reference) (resolved, error) {
	byName := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, ref := range refs {
		if ref.Type() == plumbing.HashReference {
			byName[ref.Name()] = ref.Hash()
		}
	}
	// Annotated tags are advertised twice; the peeled entry names the commit.
	tag := func(name string) (resolved, bool) {
		n := plumbing.NewTagReferenceName(name)
		if h, ok := byName[plumbing.ReferenceName(string(n)+"^{}")]; ok {
			return resolved{hash: h, name: n}, true
		}
		h, ok := byName[n]
		return resolved{hash: h, name: n}, ok
	}
	switch {
	case r.Commit != "":
		return resolved{hash: plumbing.NewHash(r.Commit)}, nil
	case r.Branch != "":
		n := plumbing.NewBranchReferenceName(r.Branch)
		if h, ok := byName[n]; ok {
			return resolved{hash: h, name: n}, nil
		}
		return resolved{}, fmt.Errorf("source: branch %q: %w", r.Branch, ErrRefNotFound)
	case r.Tag != "":
		if res, ok := tag(r.Tag); ok {
			return res, nil
		}
		return resolved{}, fmt.Errorf("source: tag %q: %w", r.Tag, ErrRefNotFound)
	case r.Semver != "":
		c, err := semver.NewConstraint(r.Semver)
		if err != nil {
			return resolved{}, fmt.Errorf("source: semver %q: %w: %w", r.Semver, ErrRefRefused, err)
		}
		var best *semver.Version
		bestTag := ""
		for name := range byName {
			t, ok := strings.CutPrefix(string(name), "refs/tags/")
			if !ok || strings.HasSuffix(t, "^{}") {
				continue
			}
			v, err := semver.NewVersion(t)
			if err != nil || !c.Check(v) {
				continue
			}
			if best == nil || v.GreaterThan(best) || (v.Equal(best) && t < bestTag) {
				best, bestTag = v, t
			}
		}
		if best == nil {
			return resolved{}, fmt.Errorf("source: semver %q: %w: no tag matches", r.Semver, ErrRefNotFound)
		}
		res, _ := tag(bestTag)
		return res, nil
	}
	return resolved{}, errors.New("source: empty ref")
}
