// Draws each target against its threshold over the weeks on /targets, from the JSON beside its canvas,
// with the vendored Chart.js (no network). The table beneath each chart holds the same figures.
(function () {
  "use strict";
  if (typeof Chart === "undefined") return;
  window.outreachCharts = window.outreachCharts || [];
  document.querySelectorAll("canvas[data-target]").forEach((canvas) => {
    const source = document.getElementById("target-data-" + canvas.dataset.target);
    if (!source) return;
    const t = JSON.parse(source.textContent);
    const pct = t.metric === "conversion";
    const shown = (v) => (v === null ? null : pct ? Math.round(v * 1000) / 10 : v);
    window.outreachCharts.push(new Chart(canvas, {
      type: "line",
      data: { labels: t.ends, datasets: [
        { label: pct ? "value (%)" : "value", data: t.values.map(shown), borderColor: "#6366f1",
          backgroundColor: t.met.map((m) => (m === false ? "#ef4444" : m ? "#10b981" : "#94a3b8")),
          pointRadius: 5, spanGaps: true },
        { label: "target", data: t.ends.map(() => shown(t.threshold)), borderColor: "#f59e0b",
          borderDash: [6, 4], pointRadius: 0 }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { position: "bottom" } }, scales: { y: { beginAtZero: true } } },
    }));
  });
})();
