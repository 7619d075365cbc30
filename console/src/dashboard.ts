// The analytics dashboard's charts. The page is complete without them: every figure is in a table the server
// rendered. This draws each <canvas data-chart="name"> from the JSON in #dashboard-charts' data-charts attribute
// (data, never executed; htmx would drop a script block from swapped figures), with the Chart.js the page loads
// before this script, and draws the new canvases when htmx swaps in other figures. Chart.js styles the canvas
// through the CSSOM, which the CSP allows.
import type { Chart as ChartClass, ChartConfiguration } from "chart.js";

declare const Chart: typeof ChartClass | undefined;

interface Series {
  label: string;
  data: (number | null)[];
}

interface Spec {
  kind: "bar" | "line";
  labels: string[];
  series: Series[];
  max?: number;
  stacked?: boolean;
}

const COLOURS = ["#0b5cad", "#a4161a", "#6b7a8c", "#1e6b34"];
const DATA_ID = "dashboard-charts";

function specs(): Record<string, Spec> {
  const block = document.getElementById(DATA_ID);
  if (!block || !block.dataset.charts) return {};
  try {
    return JSON.parse(block.dataset.charts) as Record<string, Spec>;
  } catch {
    return {};
  }
}

function config(spec: Spec): ChartConfiguration<"bar" | "line"> {
  const datasets = spec.series.map((s, n) => ({
    label: s.label,
    data: s.data,
    backgroundColor: COLOURS[n % COLOURS.length],
    borderColor: COLOURS[n % COLOURS.length],
    spanGaps: true,
  }));
  return {
    type: spec.kind,
    data: { labels: spec.labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: spec.series.length > 1 }, tooltip: { enabled: true } },
      scales: {
        x: { stacked: !!spec.stacked },
        y: { stacked: !!spec.stacked, beginAtZero: true, max: spec.max, ticks: { precision: 0 } },
      },
    },
  };
}

function draw(): void {
  if (typeof Chart === "undefined") return;
  const all = specs();
  document.querySelectorAll<HTMLCanvasElement>("canvas[data-chart]").forEach((canvas) => {
    const spec = all[canvas.dataset.chart || ""];
    if (!spec || Chart.getChart(canvas)) return;
    new Chart(canvas, config(spec));
    canvas.dataset.drawn = "true";
  });
}

function start(): void {
  draw();
  // htmx announces each element it adds (htmx:load bubbles from it): figures swapped in bring new canvases.
  document.addEventListener("htmx:load", draw);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
