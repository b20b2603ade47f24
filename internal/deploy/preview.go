package deploy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/render"
	"flotilla.dev/flotilla/internal/store"
)

// Preview renders service for cluster at ref (empty: the commit its source
// was last fetched at, or the source's ref fetched now if it never was)
// without creating anything. Secret data is redacted.
func (c *Controller) Preview(ctx context.Context, service, cluster, ref string) (*v1.Preview, error) {
	svc, err := c.getService(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", service, err)
	}
	cl, err := c.getCluster(ctx, cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	src, err := c.getSource(ctx, svc.Spec.Source.Name)
	if err != nil {
		return nil, fmt.Errorf("service %s: source %s: %w", service, svc.Spec.Source.Name, err)
	}
	var commit v1.Commit
	if ref == "" && src.Status.Commit != nil {
		commit = *src.Status.Commit
	} else if commit, err = c.fetchRef(ctx, src, ref); err != nil {
		return nil, err
	}
	vars := render.ClusterVars{Name: cl.Metadata.Name, Labels: cl.Metadata.Labels, Vars: cl.Spec.Vars}
	res, err := c.renderFor(ctx, src, commit.SHA, svc.Spec, []render.ClusterVars{vars})
	if err != nil {
		return nil, err
	}
	b := res.Bundles[res.Clusters[0].Digest]
	red := newRedactor()
	out := &v1.Preview{Service: service, Cluster: cluster, Commit: commit, Digest: b.Digest()}
	for _, o := range b.Objects() {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep "<redacted ...>" readable
		if err := enc.Encode(red.redact(o)); err != nil {
			return nil, err
		}
		out.Manifests = append(out.Manifests, bytes.TrimSpace(buf.Bytes()))
	}
	return out, nil
}

// Diff compares the manifests of release from with those of release to,
// for one cluster or (cluster "") for every cluster either release has a
// bundle for, grouped by pair of bundles. Secret data is redacted.
func (c *Controller) Diff(ctx context.Context, from, to, cluster string) (*v1.ReleaseDiff, error) {
	a, err := c.getRelease(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", from, err)
	}
	b, err := c.getRelease(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", to, err)
	}
	type pair struct{ a, b string }
	groups := map[pair][]string{}
	if cluster != "" {
		p := pair{a.Status.BundleFor(cluster), b.Status.BundleFor(cluster)}
		if p.a == "" && p.b == "" {
			return nil, fmt.Errorf("cluster %s: %w: neither %s nor %s has a bundle for it", cluster, ErrNotServed, from, to)
		}
		groups[p] = []string{cluster}
	} else {
		all := map[string]bool{}
		for _, r := range []*v1.Release{a, b} {
			for _, rb := range r.Status.Bundles {
				for _, cl := range rb.Clusters {
					all[cl] = true
				}
			}
		}
		for cl := range all {
			p := pair{a.Status.BundleFor(cl), b.Status.BundleFor(cl)}
			groups[p] = append(groups[p], cl)
		}
	}
	pairs := make([]pair, 0, len(groups))
	for p, cls := range groups {
		sort.Strings(cls)
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool { return groups[pairs[i]][0] < groups[pairs[j]][0] })
	red := newRedactor()
	var sb strings.Builder
	for _, p := range pairs {
		if p.a == p.b {
			continue
		}
		oa, err := c.objects(ctx, p.a)
		if err != nil {
			return nil, err
		}
		ob, err := c.objects(ctx, p.b)
		if err != nil {
			return nil, err
		}
		d := diffObjects(oa, ob, from, to, red)
		if d == "" {
			continue
		}
		cls := groups[p]
		if len(groups) > 1 || cluster == "" {
			fmt.Fprintf(&sb, "# %s\n", describeClusters(cls))
		}
		sb.WriteString(d)
	}
	return &v1.ReleaseDiff{From: from, To: to, Cluster: cluster, Diff: sb.String()}, nil
}

func describeClusters(cls []string) string {
	const show = 5
	if len(cls) <= show {
		return "clusters: " + strings.Join(cls, ", ")
	}
	return fmt.Sprintf("clusters: %s and %d more", strings.Join(cls[:show], ", "), len(cls)-show)
}

// objects reads a stored bundle; "" is no bundle (the cluster is not in
// that release).
func (c *Controller) objects(ctx context.Context, digest string) ([]map[string]any, error) {
	if digest == "" {
		return nil, nil
	}
	data, err := c.st.GetBundle(ctx, digest)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("bundle %s: %w: not stored", digest, ErrNotServed)
	}
	if err != nil {
		return nil, err
	}
	b, err := bundle.Decode(data, digest)
	if err != nil {
		return nil, err
	}
	return b.Objects(), nil
}

// diffObjects diffs two bundles object by object, in bundle order.
func diffObjects(a, b []map[string]any, from, to string, red *redactor) string {
	type entry struct {
		id   string
		a, b []string
	}
	var order []string
	byID := map[string]*entry{}
	add := func(objs []map[string]any, side int) {
		for _, o := range objs {
			id, err := bundle.IDOf(o)
			if err != nil {
				continue
			}
			k := id.String()
			e, ok := byID[k]
			if !ok {
				e = &entry{id: k}
				byID[k] = e
				order = append(order, k)
			}
			data, _ := yaml.Marshal(red.redact(o))
			lines := strings.SplitAfter(string(data), "\n")
			if n := len(lines); n > 0 && lines[n-1] == "" {
				lines = lines[:n-1]
			}
			if side == 0 {
				e.a = lines
			} else {
				e.b = lines
			}
		}
	}
	add(a, 0)
	add(b, 1)
	var sb strings.Builder
	for _, k := range order {
		e := byID[k]
		an, bn := from+": "+k, to+": "+k
		if e.a == nil {
			an = "/dev/null"
		}
		if e.b == nil {
			bn = "/dev/null"
		}
		sb.WriteString(unifiedDiff(an, bn, e.a, e.b))
	}
	return sb.String()
}

// redactor replaces the values of Secrets' data and stringData with a
// keyed hash: equal values look equal within one answer, so a diff shows
// which keys changed, but nothing about the value leaves the server. The
// key is random per answer, so placeholders cannot be compared across
// answers or guessed offline.
type redactor struct{ key []byte }

func newRedactor() *redactor {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &redactor{key: k}
}

func (r *redactor) redact(o map[string]any) map[string]any {
	kind, _ := o["kind"].(string)
	api, _ := o["apiVersion"].(string)
	if kind != "Secret" || api != "v1" {
		return o
	}
	out := make(map[string]any, len(o))
	for k, v := range o {
		out[k] = v
	}
	for _, field := range []string{"data", "stringData"} {
		m, ok := o[field].(map[string]any)
		if !ok {
			continue
		}
		red := make(map[string]any, len(m))
		for k, v := range m {
			mac := hmac.New(sha256.New, r.key)
			fmt.Fprint(mac, v)
			red[k] = "<redacted " + hex.EncodeToString(mac.Sum(nil))[:12] + ">"
		}
		out[field] = red
	}
	return out
}
