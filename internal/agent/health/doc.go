// Package health turns a live Kubernetes object into one of five health
// values and rolls many of them up into one.
//
// Model: Compute is a pure function of the object as read from the API
// server. It asks kstatus (github.com/fluxcd/cli-utils/pkg/kstatus) first and
// then applies Flotilla's per-kind rules where kstatus is too coarse (a
// Deployment whose rollout finished but which lost available replicas is
// Degraded, not Progressing; a started Job is Progressing until its Complete
// condition, not Healthy as kstatus has it). A missing object is Degraded:
// it should exist.
//
// Invariants: the values are totally ordered, Healthy < Progressing <
// Unknown < Degraded < Failed, and a roll-up is always the worst of its parts,
// so one Failed object makes its service Failed and an empty set is Healthy.
// Messages never carry Secret data: they come from status fields only.
package health
