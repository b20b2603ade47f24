package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	configv1alpha1 "sigs.k8s.io/kwok/pkg/apis/config/v1alpha1"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/client"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

const (
	kwokAnnotation = "kwok.x-k8s.io/node"
	nodeName       = "kwok-node-0"
)

// loadStages parses KWOK's stage definitions once per process: node start-up and lease
// heartbeat, and the fast pod lifecycle (ready, complete, delete).
func loadStages() (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	out := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, src := range []string{nodefast.DefaultNodeInit, nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete} {
		st, err := kwokconfig.UnmarshalWithType[*internalversion.Stage](src)
		if err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		out[st.Spec.ResourceRef] = append(out[st.Spec.ResourceRef], st)
	}
	return out, nil
}

// runKWOK starts a KWOK controller for the cluster's annotated fake node and creates that node.
func runKWOK(ctx context.Context, c *cluster, stages map[internalversion.StageResourceRef][]*internalversion.Stage, logw io.Writer) error {
	ctx = kwoklog.NewContext(ctx, kwoklog.NewLogger(logw, slog.LevelWarn))
	cs, err := client.NewClientset("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	restConfig, err := cs.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	restConfig.QPS, restConfig.Burst = 200, 400
	dyn, err := cs.ToDynamicClient()
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	mapper, err := cs.ToRESTMapper()
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	restClient, err := rest.RESTClientFor(restConfig)
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	typed, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	kwokClient, err := versioned.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	defaults := &configv1alpha1.KwokConfiguration{}
	configv1alpha1.SetObjectDefaults_KwokConfiguration(defaults)
	conf, err := internalversion.ConvertToInternalKwokConfiguration(defaults)
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	o := conf.Options
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                             clock.RealClock{},
		DynamicClient:                     dyn,
		RESTClient:                        restClient,
		RESTMapper:                        mapper,
		ImpersonatingDynamicClient:        cs.ToImpersonatingDynamicClient(),
		ImpersonatingTypedClient:          cs.ToImpersonatingTypedClient(),
		TypedClient:                       typed,
		TypedKwokClient:                   kwokClient,
		ManageNodesWithAnnotationSelector: kwokAnnotation + "=fake",
		CIDR:                              o.CIDR,
		NodeIP:                            o.NodeIP,
		NodeName:                          o.NodeName,
		LocalStages:                       stages,
		PodPlayStageParallelism:           o.PodPlayStageParallelism,
		NodePlayStageParallelism:          o.NodePlayStageParallelism,
		NodeLeaseDurationSeconds:          o.NodeLeaseDurationSeconds,
		NodeLeaseParallelism:              o.NodeLeaseParallelism,
		PodsOnNodeSyncParallelism:         o.PodsOnNodeSyncParallelism,
		ID:                                "devfleet-" + c.Name,
	})
	if err != nil {
		return fmt.Errorf("kwok %s: %w", c.Name, err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("kwok %s: start: %w", c.Name, err)
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        nodeName,
			Annotations: map[string]string{kwokAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"type": "kwok", "kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "kubernetes.io/role": "agent",
			},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"),
				corev1.ResourcePods: resource.MustParse("1000"),
			},
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"),
				corev1.ResourcePods: resource.MustParse("1000"),
			},
		},
	}
	if _, err := typed.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kwok %s: create node: %w", c.Name, err)
	}
	return nil
}
