"""What an operator sees of Stalwart from the outside: metrics, traces, logs, health.

The core calls into this package from a few places (an attempt's start and end in
`processes/attempt.py`, enqueue in `app.py`, crash recovery, the supervisor's loop);
each piece is a no-op until it is turned on, and the optional libraries are imported
only then:

- `hub`: the process-wide switches (is metrics counting on?);
- `metrics`: Prometheus counters and histograms (`prometheus-client`, the ``metrics``
  extra), in multiprocess mode under `stalwart start`;
- `gauges`: what a scrape reads from the database (queue sizes, processes, up);
- `tracing` / `otel`: OpenTelemetry spans (`opentelemetry-api`, the ``otel`` extra),
  only when the application configured a tracer provider;
- `attempts`, `enqueue`: what the worker and `App.enqueue` report;
- `logs`, `outage`: one line per attempt, JSON logs, outages told once;
- `health`, `probe`: readiness and liveness, and the HTTP server of `stalwart start
  --metrics-port/--health-port`.
"""

from __future__ import annotations

from .hub import enable_metrics, metrics_enabled

__all__ = ["enable_metrics", "metrics_enabled"]
