package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/render"
	"flotilla.dev/flotilla/internal/store"
)

// ReleaseName is the name of the release of service at commit sha with
// spec: "<service>-<sha[:10]>-<spec digest[:6]>", the service part cut so
// that the name fits a DNS label.
func ReleaseName(service, sha string, spec v1.ServiceSpec) string {
	data, _ := json.Marshal(spec)
	if canon, err := store.Canonical(data); err == nil {
		data = canon
	}
	sum := sha256.Sum256(data)
	suffix := "-" + sha[:min(10, len(sha))] + "-" + hex.EncodeToString(sum[:])[:6]
	svc := service
	if len(svc)+len(suffix) > 63 {
		svc = strings.TrimRight(svc[:63-len(suffix)], "-")
	}
	return svc + suffix
}

func clusterVars(o *store.Object) (render.ClusterVars, error) {
	var spec v1.ClusterSpec
	if len(o.Spec) > 0 {
		if err := json.Unmarshal(o.Spec, &spec); err != nil {
			return render.ClusterVars{}, fmt.Errorf("cluster %s: spec: %w", o.Name, err)
		}
	}
	return render.ClusterVars{Name: o.Name, Labels: o.Labels, Vars: spec.Vars}, nil
}

// targets returns the clusters sel selects, sorted by name.
func (c *Controller) targets(ctx context.Context, sel *v1.LabelSelector) ([]render.ClusterVars, error) {
	if sel == nil {
		return nil, nil
	}
	s, err := sel.Selector()
	if err != nil {
		return nil, fmt.Errorf("placement: %w", err)
	}
	var out []render.ClusterVars
	opts := store.ListOptions{Limit: 5000, Selector: s}
	for {
		l, err := c.st.List(ctx, v1.KindCluster, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			cv, err := clusterVars(o)
			if err != nil {
				return nil, err
			}
			out = append(out, cv)
		}
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// selects reports whether sel selects a cluster with lbls.
func selects(sel *v1.LabelSelector, lbls map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := sel.Selector()
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}

// renderRequest maps a service spec onto a render request (without FS and
// variables).
func renderRequest(spec v1.ServiceSpec, sha string, lim render.Limits) (render.Request, error) {
	p := spec.Source.Path
	if p == "" {
		p = "."
	}
	req := render.Request{Commit: sha, Path: p, Namespace: spec.Namespace, Limits: lim}
	if h := spec.Helm; h != nil {
		req.Helm = render.Helm{ValuesFiles: h.ValuesFiles, ReleaseName: h.ReleaseName}
		if len(h.Values) > 0 && string(h.Values) != "null" {
			if err := json.Unmarshal(h.Values, &req.Helm.Values); err != nil {
				return render.Request{}, fmt.Errorf("spec.helm.values: %w", err)
			}
		}
	}
	if k := spec.Kustomize; k != nil && (len(k.Components) > 0 || len(k.Substitutions) > 0) {
		return render.Request{}, fmt.Errorf("spec.kustomize: %w: components and substitutions are not supported yet; "+
			"use ${cluster.name}, ${cluster.labels.KEY} and ${cluster.vars.KEY} in the manifests", render.ErrUnsupported)
	}
	return req, nil
}

// renderFor renders spec at commit sha of src for clusters. Every cluster
// must render, or the whole render fails with ErrRender naming how many
// failed and the first error.
func (c *Controller) renderFor(ctx context.Context, src *v1.Source, sha string, spec v1.ServiceSpec, clusters []render.ClusterVars) (*render.FleetResult, error) {
	req, err := renderRequest(spec, sha, c.opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRender, err)
	}
	if err := c.ensureCommit(ctx, src, sha); err != nil {
		return nil, err
	}
	fsys, done, err := c.co.open(ctx, src.Spec.Git.URL, sha)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRender, err)
	}
	defer done()
	req.FS = fsys
	res, err := c.r.RenderFleet(ctx, req, clusters)
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s: %w", ErrRender, short(sha), err)
	}
	var failed []render.ClusterResult
	for _, cr := range res.Clusters {
		if cr.Err != nil {
			failed = append(failed, cr)
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("%w: commit %s: %d of %d clusters failed; cluster %s: %w",
			ErrRender, short(sha), len(failed), len(clusters), failed[0].Cluster, failed[0].Err)
	}
	return res, nil
}

// storeBundles stores every bundle of res (a no-op for bundles stored
// already) and returns the release's bundle list.
func (c *Controller) storeBundles(ctx context.Context, res *render.FleetResult, by store.Actor) ([]v1.ReleaseBundle, error) {
	digests := make([]string, 0, len(res.Bundles))
	for d := range res.Bundles {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		if _, err := c.st.PutBundle(ctx, d, res.Bundles[d].Bytes(), by); err != nil {
			return nil, fmt.Errorf("store bundle %s: %w", d, err)
		}
	}
	byDigest := map[string]*v1.ReleaseBundle{}
	var out []v1.ReleaseBundle
	for _, d := range digests {
		out = append(out, v1.ReleaseBundle{Digest: d})
	}
	for i := range out {
		byDigest[out[i].Digest] = &out[i]
	}
	for _, cr := range res.Clusters {
		rb := byDigest[cr.Digest]
		rb.Clusters = append(rb.Clusters, cr.Cluster)
	}
	for i := range out {
		slices.Sort(out[i].Clusters)
	}
	return out, nil
}

// syncService releases the commit the service's source is at, if the
// service has no release of it yet.
func (c *Controller) syncService(ctx context.Context, name string) error {
	l := c.serviceLock(name)
	l.Lock()
	defer l.Unlock()
	svc, err := c.getService(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return c.removeService(ctx, name)
	}
	if err != nil {
		return err
	}
	src, err := c.getSource(ctx, svc.Spec.Source.Name)
	if errors.Is(err, store.ErrNotFound) {
		return c.markService(ctx, name, true, ReasonSourceNotFound, fmt.Sprintf("Source %q not found", svc.Spec.Source.Name))
	}
	if err != nil {
		return err
	}
	if src.Status.Commit == nil {
		return c.markService(ctx, name, false, ReasonSourceNotFetched, fmt.Sprintf("Source %q has not been fetched yet", src.Metadata.Name))
	}
	_, _, err = c.release(ctx, svc, src, *src.Status.Commit, c.actor)
	if err != nil && !errors.Is(err, ErrNoTargets) && !errors.Is(err, ErrRender) && !errors.Is(err, ErrFetch) {
		return err
	}
	return nil // the outcome is in the service's status
}

// CreateRelease releases service at ref (empty: its source's own ref,
// fetched now), attributed to by. It returns the release and whether it was
// made now; an existing release of the same commit and spec is returned as
// it is and not handed over again.
func (c *Controller) CreateRelease(ctx context.Context, service, ref string, by store.Actor) (*v1.Release, bool, error) {
	l := c.serviceLock(service)
	l.Lock()
	defer l.Unlock()
	svc, err := c.getService(ctx, service)
	if err != nil {
		return nil, false, fmt.Errorf("service %s: %w", service, err)
	}
	src, err := c.getSource(ctx, svc.Spec.Source.Name)
	if err != nil {
		return nil, false, fmt.Errorf("service %s: source %s: %w", service, svc.Spec.Source.Name, err)
	}
	commit, err := c.fetchRef(ctx, src, ref)
	if err != nil {
		return nil, false, err
	}
	return c.release(ctx, svc, src, commit, by)
}

// release makes the release of svc at commit unless it exists, records the
// outcome in the service's status, and hands a new release over. The
// caller holds the service's lock.
func (c *Controller) release(ctx context.Context, svc *v1.Service, src *v1.Source, commit v1.Commit, by store.Actor) (*v1.Release, bool, error) {
	name := svc.Metadata.Name
	relName := ReleaseName(name, commit.SHA, svc.Spec)
	if rel, err := c.getRelease(ctx, relName); err == nil {
		// Released already: not handed over again, but no longer stale.
		err := updateStatus(ctx, c, v1.KindService, name, func(st *v1.ServiceStatus, o *store.Object) bool {
			changed := st.LatestRelease == "" || st.ObservedGeneration != o.Generation
			if st.LatestRelease == "" {
				st.LatestRelease = relName
			}
			st.ObservedGeneration = o.Generation
			return setCondition(&st.Conditions, ConditionStale, false, ReasonReleased,
				"commit "+short(commit.SHA)+" is released as "+relName, c.now()) || changed
		})
		if err != nil {
			return nil, false, err
		}
		return rel, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	clusters, err := c.targets(ctx, svc.Spec.Placement.ClusterSelector)
	if err != nil {
		return nil, false, err
	}
	if len(clusters) == 0 {
		err := fmt.Errorf("service %s: %w", name, ErrNoTargets)
		if merr := c.markService(ctx, name, false, ReasonNoTargets, "placement.clusterSelector selects no cluster; nothing to release"); merr != nil {
			return nil, false, merr
		}
		return nil, false, err
	}
	res, err := c.renderFor(ctx, src, commit.SHA, svc.Spec, clusters)
	if err != nil {
		reason := ReasonRenderFailed
		if errors.Is(err, ErrFetch) {
			reason = ReasonFetchFailed
		}
		msg := fmt.Sprintf("commit %s not released, the previous release stays in force: %v", short(commit.SHA), err)
		if merr := c.markService(ctx, name, true, reason, msg); merr != nil {
			return nil, false, merr
		}
		return nil, false, fmt.Errorf("service %s: %w", name, err)
	}
	bundles, err := c.storeBundles(ctx, res, by)
	if err != nil {
		return nil, false, err
	}
	now := c.now().UTC()
	rel := &v1.Release{
		Metadata: v1.ObjectMeta{Name: relName, Labels: map[string]string{LabelService: name}},
		Spec:     v1.ReleaseSpec{Service: name, Commit: commit, ServiceSpec: svc.Spec},
		Status: v1.ReleaseStatus{Phase: v1.ReleaseRendered, RenderedAt: &now, Bundles: bundles,
			Message: fmt.Sprintf("%d clusters, %d distinct bundles", len(clusters), len(bundles))},
	}
	rel.Default()
	if err := rel.Validate(); err != nil {
		return nil, false, fmt.Errorf("release %s: %w", relName, err)
	}
	obj, err := toStore(v1.KindRelease, relName, rel.Metadata.Labels, rel.Spec, rel.Status)
	if err != nil {
		return nil, false, err
	}
	created, err := c.st.Create(ctx, obj, by)
	if errors.Is(err, store.ErrAlreadyExists) {
		// Another replica cut it first; it hands it over.
		existing, gerr := c.getRelease(ctx, relName)
		return existing, false, gerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("release %s: %w", relName, err)
	}
	rel.Metadata.ResourceVersion = fmt.Sprint(created.ResourceVersion)
	rel.Metadata.UID = created.UID
	err = updateStatus(ctx, c, v1.KindService, name, func(st *v1.ServiceStatus, o *store.Object) bool {
		st.LatestRelease, st.ObservedGeneration = relName, o.Generation
		setCondition(&st.Conditions, ConditionStale, false, ReasonReleased, "commit "+short(commit.SHA)+" is released as "+relName, now)
		return true
	})
	if err != nil {
		return rel, true, err
	}
	if err := c.handOver(ctx, svc, rel, by); err != nil {
		_ = c.markService(ctx, name, true, ReasonReleaseFailed, fmt.Sprintf("release %s was made but not handed over: %v", relName, err))
		return rel, true, err
	}
	return rel, true, nil
}

// LabelService labels each release with its service, so that a service's
// releases can be listed by selector.
const LabelService = "flotilla.dev/service"

// handOver starts a new release on its clusters: a Pending Rollout for a
// service with a strategy, else an assignment to every cluster at once.
func (c *Controller) handOver(ctx context.Context, svc *v1.Service, rel *v1.Release, by store.Actor) error {
	name := svc.Metadata.Name
	if svc.Spec.Strategy != "" {
		ro := v1.Rollout{Spec: v1.RolloutSpec{Service: name, Release: rel.Metadata.Name, Strategy: svc.Spec.Strategy},
			Status: v1.RolloutStatus{Phase: v1.RolloutPending, CurrentWave: -1, CurrentStep: -1}}
		obj, err := toStore(v1.KindRollout, rel.Metadata.Name, map[string]string{LabelService: name}, ro.Spec, ro.Status)
		if err != nil {
			return err
		}
		if _, err := c.st.Create(ctx, obj, by); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("rollout %s: %w", rel.Metadata.Name, err)
		}
		return nil
	}
	opts := assignmentOptions(rel)
	var as []store.Assignment
	targeted := map[string]bool{}
	for _, b := range rel.Status.Bundles {
		for _, cl := range b.Clusters {
			targeted[cl] = true
			as = append(as, store.Assignment{Cluster: cl, Service: name, Release: rel.Metadata.Name, Bundle: b.Digest, Options: opts})
		}
	}
	// Clusters the previous release was placed on that the new one does
	// not target (the selector changed) drop the service in the same
	// transaction.
	if prev := svc.Status.CurrentRelease; prev != "" && prev != rel.Metadata.Name {
		if old, err := c.getRelease(ctx, prev); err == nil {
			for _, b := range old.Status.Bundles {
				for _, cl := range b.Clusters {
					if !targeted[cl] {
						targeted[cl] = true
						as = append(as, store.Assignment{Cluster: cl, Service: name})
					}
				}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if _, err := c.st.SetAssignments(ctx, as, by); err != nil {
		return fmt.Errorf("assign %s: %w", rel.Metadata.Name, err)
	}
	return updateStatus(ctx, c, v1.KindService, name, func(st *v1.ServiceStatus, _ *store.Object) bool {
		if st.CurrentRelease == rel.Metadata.Name {
			return false
		}
		st.CurrentRelease = rel.Metadata.Name
		return true
	})
}

// assignmentOptions are what the agent needs to apply a release.
func assignmentOptions(rel *v1.Release) json.RawMessage {
	sp := rel.Spec.ServiceSpec
	opts := v1.AssignmentOptions{Namespace: sp.Namespace}
	if opts.Namespace == "" {
		opts.Namespace = rel.Spec.Service
	}
	opts.Prune = sp.Sync.Prune == nil || *sp.Sync.Prune
	opts.SelfHeal = sp.Sync.SelfHeal != nil && *sp.Sync.SelfHeal
	data, _ := json.Marshal(opts)
	return data
}

// removeService takes a deleted service off every cluster any of its
// releases was placed on, in one transaction; agents then prune its
// objects. Its releases stay, as history.
func (c *Controller) removeService(ctx context.Context, name string) error {
	sel := labels.SelectorFromSet(labels.Set{LabelService: name})
	clusters := map[string]bool{}
	opts := store.ListOptions{Limit: 500, Selector: sel}
	for {
		l, err := c.st.List(ctx, v1.KindRelease, opts)
		if err != nil {
			return err
		}
		for _, o := range l.Items {
			var rel v1.Release
			if err := decode(o, &rel); err != nil {
				return err
			}
			if rel.Spec.Service != name {
				continue
			}
			for _, b := range rel.Status.Bundles {
				for _, cl := range b.Clusters {
					clusters[cl] = true
				}
			}
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if len(clusters) == 0 {
		return nil
	}
	as := make([]store.Assignment, 0, len(clusters))
	for cl := range clusters {
		as = append(as, store.Assignment{Cluster: cl, Service: name})
	}
	if _, err := c.st.SetAssignments(ctx, as, c.actor); err != nil {
		return fmt.Errorf("remove deleted service %s: %w", name, err)
	}
	return nil
}
