package cli

import (
	"context"
	"log/slog"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
)

// startRolloutRunner runs the rollout runner next to the HTTP server: it campaigns for the store's
// runner leadership and, while it holds it, carries out every rollout, with analyses by
// internal/analysis and traffic by internal/traffic. The returned function stops it (giving the
// leadership up) and waits for it.
func startRolloutRunner(ctx context.Context, st store.Store, logger *slog.Logger, tm runner.Traffic, leaseTTL time.Duration) (stop func(), err error) {
	an := analysis.New(analysis.Options{Store: st})
	r, err := runner.New(runner.Options{
		Store:  st,
		Logger: logger.With("component", "rollout-runner"),
		Analyzer: runner.AnalyzerFunc(func(ctx context.Context, req runner.AnalysisRequest, progress func(v1.AnalysisRun)) v1.AnalysisRun {
			return an.Run(ctx, analysis.Request{ID: req.ID, Template: req.Template, Spec: req.Spec, Args: req.Args,
				Service: req.Service, Release: req.Release, Rollout: req.Rollout}, progress)
		}),
		Traffic:  tm,
		LeaseTTL: leaseTTL,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			logger.Error("rollout runner stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
