package cli

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
	"flotilla.dev/flotilla/internal/notify"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
)

// startRolloutRunner runs the rollout runner next to the HTTP server: it campaigns for the store's
// runner leadership and, while it holds it, carries out every rollout, with analyses by
// internal/analysis and traffic by internal/traffic. The returned function stops it (giving the
// leadership up) and waits for it.
// Its metrics go to reg; notifications, when nt is not nil, to nt.
func startRolloutRunner(ctx context.Context, st store.Store, logger *slog.Logger, tm runner.Traffic, leaseTTL time.Duration,
	reg prometheus.Registerer, nt *notify.Notifier) (stop func(), err error) {
	var notifier runner.Notifier
	if nt != nil {
		notifier = nt // a nil *Notifier in the interface would not be nil
	}
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
		Registry: reg,
		Notifier: notifier,
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

// startNotifier starts the sender of rollout notifications under loops, registering its counter
// with reg; with no hook configured it returns nil. Failed deliveries are logged here, naming the
// hook without its path (which often holds a token); the signing key is never logged.
func startNotifier(ctx context.Context, loops *sync.WaitGroup, opts notify.Options, reg prometheus.Registerer, logger *slog.Logger) (*notify.Notifier, error) {
	if len(opts.URLs) == 0 {
		return nil, nil
	}
	log := logger.With("component", "notify")
	opts.Report = func(r notify.Result) {
		if r.Err != nil {
			log.Warn("rollout notification not delivered", "rollout", r.Notification.Rollout, "hook", r.Hook,
				"attempts", r.Attempts, "err", r.Err)
		}
	}
	nt, err := notify.New(opts)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(nt); err != nil {
		return nil, fmt.Errorf("notify: metrics: %w", err)
	}
	loops.Go(func() { nt.Run(ctx) })
	log.Info("rollout notifications on", "hooks", len(opts.URLs), "format", opts.Format, "signed", len(opts.Key) > 0)
	return nt, nil
}
