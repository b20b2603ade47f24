package deploy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/store"
)

// fetchRequest is the fetch of src's own ref.
func fetchRequest(src *v1.Source) (source.Request, error) {
	g := src.Spec.Git
	if g == nil {
		return source.Request{}, fmt.Errorf("source %s: %w: it has no git repository", src.Metadata.Name, ErrNotServed)
	}
	return source.Request{URL: g.URL, SecretRef: g.SecretRef,
		Ref: source.Ref{Branch: g.Ref.Branch, Tag: g.Ref.Tag, Semver: g.Ref.Semver, Commit: g.Ref.Commit}}, nil
}

func toCommit(c *source.Commit) v1.Commit {
	t := c.Time.UTC()
	author := c.Author
	if c.AuthorEmail != "" {
		author += " <" + c.AuthorEmail + ">"
	}
	return v1.Commit{SHA: c.SHA, Message: strings.TrimRight(c.Message, "\n"), Author: author, Time: &t}
}

// LastFetchedRefresh is how stale Source status.lastFetched may get while
// polls find nothing new: status is written when the commit, the error or
// the Stale condition changes, and otherwise at most this often.
const LastFetchedRefresh = 5 * time.Minute

// syncSource fetches a source, records the outcome in its status and, when
// the fetch worked, queues its services so that a new commit is released.
func (c *Controller) syncSource(ctx context.Context, name string) error {
	src, err := c.getSource(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		c.mu.Lock()
		delete(c.next, name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	interval, _ := src.Spec.Git.Interval.Parse()
	if interval <= 0 {
		interval = time.Minute
	}
	req, err := fetchRequest(src)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	commit, ferr := c.opts.Fetcher.Fetch(fctx, req)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.schedule(name, c.now().Add(interval))
	now := c.now().UTC()
	err = updateStatus(ctx, c, v1.KindSource, name, func(st *v1.SourceStatus, o *store.Object) bool {
		if ferr != nil {
			changed := st.Message != ferr.Error()
			st.Message = ferr.Error()
			return setCondition(&st.Conditions, ConditionStale, true, ReasonFetchFailed, ferr.Error(), now) || changed
		}
		cm := toCommit(commit)
		changed := !sameCommit(st.Commit, cm) || st.Message != "" || st.ObservedGeneration != o.Generation
		changed = setCondition(&st.Conditions, ConditionStale, false, ReasonFetched, "at "+short(commit.SHA), now) || changed
		// Polling alone refreshes lastFetched only every LastFetchedRefresh,
		// so an unchanged source costs no audit event per interval.
		if !changed && st.LastFetched != nil && now.Sub(*st.LastFetched) < LastFetchedRefresh {
			return false
		}
		st.Commit, st.LastFetched, st.Message, st.ObservedGeneration = &cm, &now, "", o.Generation
		return true
	})
	if err != nil {
		return err
	}
	if ferr != nil {
		return nil // recorded in the source's status; the poll retries
	}
	services, err := c.servicesOf(ctx, name)
	if err != nil {
		return err
	}
	for _, s := range services {
		c.q.add(keyService + s)
	}
	return nil
}

// sameCommit reports whether a recorded commit is c.
func sameCommit(a *v1.Commit, c v1.Commit) bool {
	if a == nil || a.SHA != c.SHA || a.Message != c.Message || a.Author != c.Author || (a.Time == nil) != (c.Time == nil) {
		return false
	}
	return a.Time == nil || a.Time.Equal(*c.Time)
}

// servicesOf returns the names of the services that render from source.
func (c *Controller) servicesOf(ctx context.Context, src string) ([]string, error) {
	objs, err := c.listAll(ctx, v1.KindService)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		var s v1.Service
		if err := decode(o, &s); err != nil {
			continue
		}
		if s.Spec.Source.Name == src {
			out = append(out, s.Metadata.Name)
		}
	}
	return out, nil
}

var fullSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// ParseRef reads a ref given by hand: "branch:NAME", "tag:NAME",
// "semver:RANGE", "commit:SHA", a full commit id, or a bare name, which is
// tried as a branch and then as a tag (fallback is the tag to try).
func ParseRef(s string) (first source.Ref, fallback *source.Ref, err error) {
	kind, val, ok := strings.Cut(s, ":")
	if ok {
		var r source.Ref
		switch kind {
		case "branch":
			r.Branch = val
		case "tag":
			r.Tag = val
		case "semver":
			r.Semver = val
		case "commit":
			r.Commit = val
		default:
			return source.Ref{}, nil, fmt.Errorf("ref %q: %w: want branch:, tag:, semver: or commit: before the colon", s, ErrBadRef)
		}
		if err := r.Validate(); err != nil {
			return source.Ref{}, nil, fmt.Errorf("ref %q: %w: %w", s, ErrBadRef, err)
		}
		return r, nil, nil
	}
	switch {
	case fullSHA.MatchString(s):
		return source.Ref{Commit: s}, nil, nil
	case strings.HasPrefix(s, "refs/heads/"):
		return ParseRef("branch:" + strings.TrimPrefix(s, "refs/heads/"))
	case strings.HasPrefix(s, "refs/tags/"):
		return ParseRef("tag:" + strings.TrimPrefix(s, "refs/tags/"))
	}
	b, t := source.Ref{Branch: s}, source.Ref{Tag: s}
	if err := b.Validate(); err != nil {
		return source.Ref{}, nil, fmt.Errorf("ref %q: %w: %w", s, ErrBadRef, err)
	}
	return b, &t, nil
}

// fetchRef fetches ref of src (empty: the source's own ref) and returns the
// commit.
func (c *Controller) fetchRef(ctx context.Context, src *v1.Source, ref string) (v1.Commit, error) {
	req, err := fetchRequest(src)
	if err != nil {
		return v1.Commit{}, err
	}
	var fallback *source.Ref
	if ref != "" {
		if req.Ref, fallback, err = ParseRef(ref); err != nil {
			return v1.Commit{}, err
		}
	}
	fctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	cm, err := c.opts.Fetcher.Fetch(fctx, req)
	if err != nil && fallback != nil && errors.Is(err, source.ErrRefNotFound) {
		req.Ref = *fallback
		cm, err = c.opts.Fetcher.Fetch(fctx, req)
	}
	if err != nil {
		if errors.Is(err, source.ErrRefRefused) || errors.Is(err, source.ErrRefNotFound) {
			return v1.Commit{}, fmt.Errorf("source %s: %w: %w", src.Metadata.Name, ErrBadRef, err)
		}
		return v1.Commit{}, fmt.Errorf("source %s: %w: %w", src.Metadata.Name, ErrFetch, err)
	}
	return toCommit(cm), nil
}

// ensureCommit makes sure commit sha of src is in the fetch cache (after a
// restart with an empty cache, for example) without asking the remote when
// it is.
func (c *Controller) ensureCommit(ctx context.Context, src *v1.Source, sha string) error {
	req, err := fetchRequest(src)
	if err != nil {
		return err
	}
	req.Ref = source.Ref{Commit: sha}
	fctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	if _, err := c.opts.Fetcher.Fetch(fctx, req); err != nil {
		return fmt.Errorf("source %s: %w: %w", src.Metadata.Name, ErrFetch, err)
	}
	return nil
}

// WebhookSecret returns the key that authenticates source's webhook, or an
// error when the source does not exist or names no usable secret.
func (c *Controller) WebhookSecret(ctx context.Context, name string) ([]byte, error) {
	src, err := c.getSource(ctx, name)
	if err != nil {
		return nil, err
	}
	if src.Spec.Git == nil || src.Spec.Git.WebhookSecretRef == "" {
		return nil, fmt.Errorf("source %s: %w: spec.git.webhookSecretRef is not set", name, ErrNotServed)
	}
	if c.opts.Secrets == nil {
		return nil, fmt.Errorf("source %s: %w: the server has no secrets configured", name, ErrNotServed)
	}
	return c.opts.Secrets.WebhookSecret(ctx, src.Spec.Git.WebhookSecretRef)
}
