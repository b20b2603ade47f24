package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/render"
	"flotilla.dev/flotilla/internal/store"
)

// syncCluster places services on a cluster that was created or changed:
// services whose selector now matches and that the cluster does not run
// get their current release; services it runs whose selector no longer
// matches are removed.
func (c *Controller) syncCluster(ctx context.Context, name string) error {
	cl, err := c.getCluster(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ds, err := c.st.Desired(ctx, name)
	if err != nil {
		return err
	}
	assigned := map[string]bool{}
	for _, a := range ds.Assignments {
		assigned[a.Service] = true
	}
	objs, err := c.listAll(ctx, v1.KindService)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		var svc v1.Service
		if err := decode(o, &svc); err != nil {
			errs = append(errs, err)
			continue
		}
		match := selects(svc.Spec.Placement.ClusterSelector, cl.Metadata.Labels)
		switch {
		case match && !assigned[svc.Metadata.Name]:
			if err := c.place(ctx, svc.Metadata.Name, cl); err != nil {
				errs = append(errs, fmt.Errorf("place %s on %s: %w", svc.Metadata.Name, name, err))
			}
		case !match && assigned[svc.Metadata.Name]:
			if err := c.unplace(ctx, svc.Metadata.Name, name); err != nil {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", svc.Metadata.Name, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// place assigns the service's current release to cluster cl, rendering the
// release for it first when the release has no bundle for it.
func (c *Controller) place(ctx context.Context, service string, cl *v1.Cluster) error {
	l := c.serviceLock(service)
	l.Lock()
	defer l.Unlock()
	svc, err := c.getService(ctx, service)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !selects(svc.Spec.Placement.ClusterSelector, cl.Metadata.Labels) {
		return nil
	}
	// A release handed over (or a rollout's assignment made) since the
	// caller looked wins: placement only fills a gap.
	ds, err := c.st.Desired(ctx, cl.Metadata.Name)
	if err != nil {
		return err
	}
	for _, a := range ds.Assignments {
		if a.Service == service {
			return nil
		}
	}
	relName := svc.Status.CurrentRelease
	if relName == "" {
		if svc.Status.LatestRelease == "" {
			// Nothing was released yet (perhaps for want of clusters): cut
			// the first release, which covers this cluster.
			c.q.add(keyService + service)
		}
		// Otherwise the first release is still rolling out; its rollout
		// decides, and the next placement uses the release once current.
		return nil
	}
	rel, err := c.getRelease(ctx, relName)
	if err != nil {
		return fmt.Errorf("release %s: %w", relName, err)
	}
	if rel.Status.Failed != nil {
		return nil
	}
	digest := rel.Status.BundleFor(cl.Metadata.Name)
	if digest == "" {
		if digest, err = c.extendRelease(ctx, rel, cl); err != nil {
			_ = c.markService(ctx, service, true, ReasonRenderFailed,
				fmt.Sprintf("release %s could not be rendered for new cluster %s: %v", relName, cl.Metadata.Name, err))
			return err
		}
	}
	_, err = c.st.SetAssignments(ctx, []store.Assignment{{Cluster: cl.Metadata.Name, Service: service, Release: relName,
		Bundle: digest, Options: assignmentOptions(rel)}}, c.actor)
	return err
}

// extendRelease renders rel (its own commit and spec snapshot) for a
// cluster it has no bundle for, stores the bundle and adds the cluster to
// the release's bundle list. Existing entries are never changed.
func (c *Controller) extendRelease(ctx context.Context, rel *v1.Release, cl *v1.Cluster) (string, error) {
	src, err := c.getSource(ctx, rel.Spec.ServiceSpec.Source.Name)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", rel.Spec.ServiceSpec.Source.Name, err)
	}
	vars := render.ClusterVars{Name: cl.Metadata.Name, Labels: cl.Metadata.Labels, Vars: cl.Spec.Vars}
	res, err := c.renderFor(ctx, src, rel.Spec.Commit.SHA, rel.Spec.ServiceSpec, []render.ClusterVars{vars})
	if err != nil {
		return "", err
	}
	if _, err := c.storeBundles(ctx, res, c.actor); err != nil {
		return "", err
	}
	digest := res.Clusters[0].Digest
	err = updateStatus(ctx, c, v1.KindRelease, rel.Metadata.Name, func(st *v1.ReleaseStatus, _ *store.Object) bool {
		if d := st.BundleFor(cl.Metadata.Name); d != "" {
			digest = d // added meanwhile: keep what is recorded
			return false
		}
		for i := range st.Bundles {
			if st.Bundles[i].Digest == digest {
				st.Bundles[i].Clusters = append(st.Bundles[i].Clusters, cl.Metadata.Name)
				slices.Sort(st.Bundles[i].Clusters)
				return true
			}
		}
		st.Bundles = append(st.Bundles, v1.ReleaseBundle{Digest: digest, Clusters: []string{cl.Metadata.Name}})
		return true
	})
	return digest, err
}

// unplace removes a service from a cluster its selector no longer matches.
func (c *Controller) unplace(ctx context.Context, service, cluster string) error {
	l := c.serviceLock(service)
	l.Lock()
	defer l.Unlock()
	cl, err := c.getCluster(ctx, cluster)
	if err != nil {
		return err
	}
	svc, err := c.getService(ctx, service)
	if err != nil {
		return err
	}
	if selects(svc.Spec.Placement.ClusterSelector, cl.Metadata.Labels) {
		return nil // relabelled back meanwhile
	}
	_, err = c.st.SetAssignments(ctx, []store.Assignment{{Cluster: cluster, Service: service}}, c.actor)
	return err
}

// checkPlacement compares the clusters a service's selector picks with
// those its current release lists and queues placement of every cluster
// that differs: clusters that joined, or were relabelled, while no
// controller ran. It costs one list of clusters, not a read per cluster.
func (c *Controller) checkPlacement(ctx context.Context, service string) error {
	svc, err := c.getService(ctx, service)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || svc.Status.CurrentRelease == "" {
		return err
	}
	rel, err := c.getRelease(ctx, svc.Status.CurrentRelease)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, b := range rel.Status.Bundles {
		for _, cl := range b.Clusters {
			listed[cl] = true
		}
	}
	targets, err := c.targets(ctx, svc.Spec.Placement.ClusterSelector)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if !listed[t.Name] {
			c.q.add(keyCluster + t.Name)
		}
		delete(listed, t.Name)
	}
	for cl := range listed {
		c.q.add(keyCluster + cl) // no longer selected, or deleted
	}
	return nil
}
