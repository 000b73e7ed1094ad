// Draws the report's charts from the JSON in #report-data with the vendored Chart.js (no network).
// Used by /dashboard and inlined into `outreach report --html`. Each chart's table beneath it holds
// the same figures for those who read tables (and for screen readers).
(function () {
  "use strict";
  const source = document.getElementById("report-data");
  if (!source || typeof Chart === "undefined") return;
  const r = JSON.parse(source.textContent);
  const extra = document.getElementById("deliverability-data");
  const delivery = extra ? JSON.parse(extra.textContent) : [];
  const palette = ["#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#64748b"];
  const base = { responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { position: "bottom" } } };
  const pct = (v) => Math.round(v * 1000) / 10 + "%";

  const charts = {
    funnel: () => ({
      type: "bar",
      data: { labels: r.funnel.map((f) => f.stage),
              datasets: [{ label: "reached", data: r.funnel.map((f) => f.reached), backgroundColor: "#c7d2fe" },
                         { label: "there now", data: r.funnel.map((f) => f.now), backgroundColor: palette[0] }] },
      options: { ...base, indexAxis: "y" },
    }),
    conversion: () => ({
      type: "bar",
      data: { labels: r.conversion.map((c) => c.from + " → " + c.to),
              datasets: [{ label: "moved on", data: r.conversion.map((c) => c.rate), backgroundColor: palette[0] },
                         { label: "95% interval", data: r.conversion.map((c) => [c.low, c.high]),
                           backgroundColor: "rgba(99,102,241,.18)", grouped: false }] },
      options: { ...base, scales: { y: { min: 0, max: 1, ticks: { callback: pct } } } },
    }),
    history: () => {
      const days = [...new Set(r.history.map((h) => h.date))];
      const stages = r.funnel.map((f) => f.stage);
      return {
        type: "line",
        data: { labels: days, datasets: stages.map((s, i) => ({
          label: s, data: r.history.filter((h) => h.stage === s).map((h) => h.count), fill: true,
          borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length] + "55",
          pointRadius: 0 })) },
        options: { ...base, scales: { y: { stacked: true, beginAtZero: true } } },
      };
    },
    velocity: () => ({
      type: "bar",
      data: { labels: r.velocity.map((v) => v.stage),
              datasets: [{ label: "median days", data: r.velocity.map((v) => v.median_days), backgroundColor: palette[1] },
                         { label: "80% left within (days)", data: r.velocity.map((v) => v.p80_days),
                           backgroundColor: "#bae6fd" }] },
      options: base,
    }),
    channels: () => ({
      type: "bar",
      data: { labels: r.channels.map((c) => c.interaction + " · " + c.channel),
              datasets: [{ label: "answered", data: r.channels.map((c) => c.rate), backgroundColor: palette[2] },
                         { label: "95% interval", data: r.channels.map((c) => [c.low, c.high]),
                           backgroundColor: "rgba(16,185,129,.18)", grouped: false }] },
      options: { ...base, scales: { y: { min: 0, max: 1, ticks: { callback: pct } } } },
    }),
    steps: () => ({
      type: "bar",
      data: { labels: r.steps.map((s) => s.rule.replace(/^playbook:/, "").replace(/^trigger:/, "trigger ") + " / " + s.step),
              datasets: [["sent", "sent"], ["responses", "answered"], ["advanced", "moved on"],
                         ["opt_outs", "opted out"], ["expired", "expired"]].map(([key, label], i) => ({
                label, data: r.steps.map((s) => s[key]), backgroundColor: palette[i] })) },
      options: base,
    }),
    deliverability: () => ({
      type: "bar",
      data: { labels: delivery.map((d) => d.week + " · " + d.channel),
              datasets: [["delivered", "delivered"], ["bounced", "bounced"], ["complained", "complained"],
                         ["unsubscribed", "unsubscribed"], ["opted_out", "opted out"]].map(([key, label], i) => ({
                label, data: delivery.map((d) => d[key]), backgroundColor: palette[(i + 2) % palette.length] })) },
      options: { ...base, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    }),
  };

  window.outreachCharts = [];
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const make = charts[canvas.dataset.chart];
    if (make) window.outreachCharts.push(new Chart(canvas, make()));
  });
})();
