"""What the dashboards, `outreach report` and its HTML page show: the buying funnel and its history,
conversion, velocity, per-step and per-channel results, the reps' queue. Read models only: every
figure is a handful of set-based queries (group-bys and window functions), never a loop over contacts."""
