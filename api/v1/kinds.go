package v1

import "strings"

// Kind names.
const (
	KindCluster          = "Cluster"
	KindSource           = "Source"
	KindService          = "Service"
	KindRolloutStrategy  = "RolloutStrategy"
	KindAnalysisTemplate = "AnalysisTemplate"
	KindRelease          = "Release"
	KindRollout          = "Rollout"
	KindTrafficRouter    = "TrafficRouter"
)

// KindInfo describes one kind: its names on the command line and in URLs,
// and a constructor for an empty object.
type KindInfo struct {
	Kind       string
	Plural     string
	ShortNames []string
	New        func() Object
}

var kinds = []KindInfo{
	{Kind: KindCluster, Plural: "clusters", ShortNames: []string{"cl"}, New: func() Object { return &Cluster{} }},
	{Kind: KindSource, Plural: "sources", ShortNames: []string{"src"}, New: func() Object { return &Source{} }},
	{Kind: KindService, Plural: "services", ShortNames: []string{"svc"}, New: func() Object { return &Service{} }},
	{Kind: KindRolloutStrategy, Plural: "rolloutstrategies", ShortNames: []string{"strategy", "strategies"},
		New: func() Object { return &RolloutStrategy{} }},
	{Kind: KindAnalysisTemplate, Plural: "analysistemplates", ShortNames: []string{"at"},
		New: func() Object { return &AnalysisTemplate{} }},
	{Kind: KindTrafficRouter, Plural: "trafficrouters", ShortNames: []string{"tr"},
		New: func() Object { return &TrafficRouter{} }},
	{Kind: KindRelease, Plural: "releases", ShortNames: []string{"rel"}, New: func() Object { return &Release{} }},
	{Kind: KindRollout, Plural: "rollouts", ShortNames: []string{"ro"}, New: func() Object { return &Rollout{} }},
}

// Kinds returns every kind in a stable order (the order objects of a
// multi-kind apply are best created in).
func Kinds() []KindInfo {
	out := make([]KindInfo, len(kinds))
	copy(out, kinds)
	return out
}

// LookupKind finds a kind by its Kind, lowercase kind, plural or short name,
// ignoring case.
func LookupKind(s string) (KindInfo, bool) {
	for _, k := range kinds {
		if strings.EqualFold(s, k.Kind) || strings.EqualFold(s, k.Plural) {
			return k, true
		}
		for _, n := range k.ShortNames {
			if strings.EqualFold(s, n) {
				return k, true
			}
		}
	}
	return KindInfo{}, false
}

// Compile-time checks that every kind is an Object.
var (
	_ Object = (*Cluster)(nil)
	_ Object = (*Source)(nil)
	_ Object = (*Service)(nil)
	_ Object = (*RolloutStrategy)(nil)
	_ Object = (*AnalysisTemplate)(nil)
	_ Object = (*Release)(nil)
	_ Object = (*Rollout)(nil)
	_ Object = (*TrafficRouter)(nil)
)
