package cli

import (
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/version"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Register clusters, print their agent's install manifest, revoke their agent",
	}
	cmd.AddCommand(newClusterRegisterCmd(g), newClusterInstallManifestCmd(g), newClusterRevokeCmd(g))
	return cmd
}

// manifestOptions are the settings of an agent install manifest.
type manifestOptions struct {
	Cluster   string
	Server    string
	Token     string
	Image     string
	Namespace string
}

func defaultImage() string { return "ghcr.io/flotilla-dev/flotilla:" + version.Version }

func newClusterRegisterCmd(g *globals) *cobra.Command {
	var (
		labelArgs []string
		ttl       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "register NAME [-l key=value ...]",
		Short: "Create a Cluster and a one-time bootstrap token for its agent (admin only)",
		Long: `Create the Cluster (or reuse it, when it exists) and a one-time bootstrap token, shown only once,
and print both ways to run its agent: the out-of-cluster command and the in-cluster manifest.

The agent exchanges the token for its own credential on first contact; the token then stops working.`,
		Example: `  flotilla cluster register prod-eu-1 -l env=prod -l region=eu
  flotilla cluster register dev-1 --ttl 15m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			set := map[string]string{}
			for _, l := range labelArgs {
				for _, part := range strings.Split(l, ",") {
					k, v, ok := strings.Cut(part, "=")
					if !ok || k == "" {
						return fmt.Errorf("label %q: want key=value", part)
					}
					set[k] = v
				}
			}
			if _, err := labels.ValidatedSelectorFromSet(set); err != nil {
				return fmt.Errorf("labels: %w", err)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			cl := &v1.Cluster{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster}}
			cl.Metadata.Name, cl.Metadata.Labels = name, set
			if _, err := c.Create(ctx, cl); err != nil {
				if !client.IsAlreadyExists(err) {
					return err
				}
				fmt.Fprintf(g.streams.Err, "Cluster %q exists; issuing a new bootstrap token for it (labels unchanged).\n", name)
			} else {
				fmt.Fprintf(g.streams.Err, "Cluster %q created.\n", name)
			}
			tok, err := c.CreateBootstrapToken(ctx, name, ttl)
			if err != nil {
				return err
			}
			w := g.streams.Out
			fmt.Fprintf(w, "Bootstrap token for cluster %s (one use, expires %s); it is shown only this once:\n\n    %s\n\n",
				name, tok.ExpiresAt.UTC().Format(time.RFC3339), tok.Token)
			fmt.Fprintf(w, "Run the agent outside the cluster:\n\n    flotilla agent --server %s --token %s --kubeconfig ~/.kube/config\n\n",
				c.Server(), tok.Token)
			fmt.Fprintf(w, "Or install it in the cluster:\n\n    flotilla cluster install-manifest %s --token %s | kubectl apply -f -\n", name, tok.Token)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&labelArgs, "label", "l", nil, "label of the cluster, key=value (repeatable, or comma-separated)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the bootstrap token may be used (default 1h, at most 24h)")
	return cmd
}

func newClusterInstallManifestCmd(g *globals) *cobra.Command {
	o := manifestOptions{}
	cmd := &cobra.Command{
		Use:   "install-manifest NAME",
		Short: "Print the Kubernetes manifest that runs the cluster's agent in the cluster",
		Long: `Print a Namespace, ServiceAccount, RBAC and Deployment that run the agent of cluster NAME.

The RBAC is least privilege for the common workload kinds: the agent reads every resource (health
and drift) and writes only the kinds listed in the ClusterRole flotilla-agent-apply. Widen that rule
for the kinds your services deploy (CustomResourceDefinitions, your own CRDs, RBAC objects).

With --token the bootstrap token goes into a Secret of the manifest; without it, create the Secret
flotilla-agent-bootstrap (key token) yourself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Cluster = args[0]
			if o.Server == "" {
				server, _, err := g.connection()
				if err != nil {
					return err
				}
				o.Server = server
			}
			return writeInstallManifest(g.streams.Out, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Token, "token", "", "bootstrap token to put in the manifest's Secret")
	f.StringVar(&o.Image, "image", defaultImage(), "container image of the agent")
	f.StringVar(&o.Namespace, "namespace", "flotilla-system", "namespace the agent runs in")
	f.StringVar(&o.Server, "agent-server", "", "control plane URL as the agent reaches it (default: this CLI's server)")
	return cmd
}

func newClusterRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke the cluster agent's credential and unused bootstrap tokens; it stops working at once (admin only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RevokeAgent(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "cluster/%s agent credential revoked; register the cluster again to reconnect it\n", args[0])
			return err
		},
	}
}

// installManifest is the agent's in-cluster install. The apply rule lists the common workload
// kinds only; users widen it for what their services deploy.
var installManifest = template.Must(template.New("install").Parse(`# Flotilla agent for cluster {{.Cluster}}.
apiVersion: v1
kind: Namespace
metadata:
  name: {{.Namespace}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: flotilla-agent
  namespace: {{.Namespace}}
---
{{- if .Token}}
apiVersion: v1
kind: Secret
metadata:
  name: flotilla-agent-bootstrap
  namespace: {{.Namespace}}
type: Opaque
stringData:
  token: {{.Token}}
---
{{- end}}
# Read access to every resource, for health and drift.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: flotilla-agent-read
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["get", "list", "watch"]
---
# Write access for server-side apply and prune of the common workload kinds. Widen this rule for
# the kinds your services deploy.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: flotilla-agent-apply
rules:
- apiGroups: [""]
  resources: ["namespaces", "configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims"]
  verbs: ["create", "update", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["create", "update", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["create", "update", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses", "networkpolicies"]
  verbs: ["create", "update", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["create", "update", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: flotilla-agent-read
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flotilla-agent-read}
subjects:
- {kind: ServiceAccount, name: flotilla-agent, namespace: {{.Namespace}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: flotilla-agent-apply
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flotilla-agent-apply}
subjects:
- {kind: ServiceAccount, name: flotilla-agent, namespace: {{.Namespace}}}
---
# The agent keeps its credential and last desired state in Secrets of its own namespace.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: flotilla-agent-state
  namespace: {{.Namespace}}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: flotilla-agent-state
  namespace: {{.Namespace}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: flotilla-agent-state}
subjects:
- {kind: ServiceAccount, name: flotilla-agent, namespace: {{.Namespace}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: flotilla-agent
  namespace: {{.Namespace}}
  labels: {app.kubernetes.io/name: flotilla-agent}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/name: flotilla-agent}
  template:
    metadata:
      labels: {app.kubernetes.io/name: flotilla-agent}
    spec:
      serviceAccountName: flotilla-agent
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: agent
        image: {{.Image}}
        args: ["agent", "--server", "{{.Server}}", "--token", "$(FLOTILLA_BOOTSTRAP_TOKEN)", "--state-namespace", "{{.Namespace}}"]
        env:
        - name: FLOTILLA_BOOTSTRAP_TOKEN
          valueFrom:
            secretKeyRef: {name: flotilla-agent-bootstrap, key: token}
        resources:
          requests: {cpu: 50m, memory: 64Mi}
          limits: {memory: 256Mi}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}}
`))

func writeInstallManifest(w io.Writer, o manifestOptions) error {
	if err := installManifest.Execute(w, o); err != nil {
		return fmt.Errorf("install manifest: %w", err)
	}
	return nil
}
