/** Hand-written SVG charts of a load test report: latency distribution per scenario, server CPU and RSS. */
import type { ProcSeries } from "./proc-stats.js";
import type { ScenarioResult } from "./report.js";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const FONT = 'font-family="sans-serif" font-size="11"';

interface Tick {
  readonly value: number;
  readonly label: string;
}

interface Series {
  readonly label: string;
  readonly color: string;
  /** Points in data coordinates; a null point breaks the line. */
  readonly points: readonly ([number, number] | null)[];
}

interface Panel {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xDomain: readonly [number, number];
  readonly yDomain: readonly [number, number];
  readonly xTicks: readonly Tick[];
  readonly yTicks: readonly Tick[];
  readonly series: readonly Series[];
  /** Where the legend goes, inside the panel. Default top right. */
  readonly legendAt?: "top-left" | "top-right";
  /** Shaded x ranges with a label (scenario windows). */
  readonly bands?: readonly { readonly from: number; readonly to: number; readonly label: string }[];
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

function renderPanel(p: Panel): string {
  const [x0, x1] = p.xDomain;
  const [y0, y1] = p.yDomain;
  const sx = (x: number): number => p.left + ((x - x0) / (x1 - x0 || 1)) * p.width;
  const sy = (y: number): number => p.top + p.height - ((y - y0) / (y1 - y0 || 1)) * p.height;
  const out: string[] = [];
  out.push(`<text x="${p.left}" y="${p.top - 8}" ${FONT} font-weight="bold">${escapeXml(p.title)}</text>`);
  for (const [i, b] of (p.bands ?? []).entries()) {
    const from = Math.max(x0, b.from);
    const to = Math.min(x1, b.to);
    if (to <= from) continue;
    out.push(
      `<rect x="${fmt(sx(from))}" y="${p.top}" width="${fmt(sx(to) - sx(from))}" height="${p.height}" fill="${i % 2 === 0 ? "#f0f0f0" : "#e4e4e4"}"/>`,
      `<text x="${fmt(sx(from) + 2)}" y="${p.top + 11}" ${FONT} fill="#555">${escapeXml(b.label)}</text>`,
    );
  }
  out.push(
    `<rect x="${p.left}" y="${p.top}" width="${p.width}" height="${p.height}" fill="none" stroke="#333"/>`,
  );
  for (const t of p.xTicks) {
    const x = fmt(sx(t.value));
    out.push(
      `<line x1="${x}" y1="${p.top}" x2="${x}" y2="${p.top + p.height}" stroke="#ccc" stroke-dasharray="2,3"/>`,
      `<text x="${x}" y="${p.top + p.height + 14}" ${FONT} text-anchor="middle">${escapeXml(t.label)}</text>`,
    );
  }
  for (const t of p.yTicks) {
    const y = fmt(sy(t.value));
    out.push(
      `<line x1="${p.left}" y1="${y}" x2="${p.left + p.width}" y2="${y}" stroke="#ccc" stroke-dasharray="2,3"/>`,
      `<text x="${p.left - 5}" y="${y}" ${FONT} text-anchor="end" dominant-baseline="middle">${escapeXml(t.label)}</text>`,
    );
  }
  out.push(
    `<text x="${p.left + p.width / 2}" y="${p.top + p.height + 30}" ${FONT} text-anchor="middle">${escapeXml(p.xLabel)}</text>`,
    `<text transform="translate(${p.left - 45},${p.top + p.height / 2}) rotate(-90)" ${FONT} text-anchor="middle">${escapeXml(p.yLabel)}</text>`,
  );
  for (const s of p.series) {
    let d = "";
    let isDrawing = false;
    for (const pt of s.points) {
      if (pt === null) {
        isDrawing = false;
        continue;
      }
      d += `${isDrawing ? "L" : "M"}${fmt(sx(pt[0]))},${fmt(sy(pt[1]))} `;
      isDrawing = true;
    }
    if (d !== "") out.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`);
  }
  // Legend, inside the panel (11 px sans-serif: about 6.2 px per character).
  const longestLabel = Math.max(0, ...p.series.map((s) => s.label.length));
  p.series.forEach((s, i) => {
    const y = p.top + 14 + i * 14;
    const x = p.legendAt === "top-left" ? p.left + 10 : p.left + p.width - 30 - 6.2 * longestLabel;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 18}" y2="${y}" stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${x + 22}" y="${y}" ${FONT} dominant-baseline="middle">${escapeXml(s.label)}</text>`,
    );
  });
  return out.join("\n");
}

function svg(width: number, height: number, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="100%" height="100%" fill="white"/>
${body}
</svg>
`;
}

/** x position of a percentile on the "nines" axis: 0 → 0, 90 → 1, 99 → 2, 99.9 → 3, ... */
export function ninesOf(percentile: number): number {
  return Math.log10(100 / Math.max(1e-6, 100 - Math.min(percentile, 99.9999)));
}

/** Latency percentile distribution per scenario (log ms against "nines"), the HDR-style plot. */
export function latencyChart(scenarios: readonly ScenarioResult[]): string {
  const withData = scenarios.filter((s) => s.latencyCurve.length > 0);
  const width = 760;
  const height = 420;
  const maxNines = 5;
  const maxMs = Math.max(10, ...withData.flatMap((s) => s.latencyCurve.map((p) => p.valueMs)));
  const yMax = Math.ceil(Math.log10(maxMs + 1) * 2) / 2;
  const series: Series[] = withData.map((s, i) => ({
    label: `${s.name} (p99 ${s.latencyMs.p99 ?? "-"} ms)`,
    color: COLORS[i % COLORS.length] ?? "#000",
    points: s.latencyCurve.map((p): [number, number] => [
      p.percentile >= 100 ? maxNines : Math.min(maxNines, ninesOf(p.percentile)),
      Math.log10(p.valueMs + 1),
    ]),
  }));
  const yTicks: Tick[] = [];
  for (let e = 0; e <= yMax; e++) yTicks.push({ value: Math.log10(10 ** e + 1), label: `${10 ** e}` });
  const body =
    withData.length === 0
      ? `<text x="40" y="60" ${FONT}>No latency recorded (no churn scenario ran).</text>`
      : renderPanel({
          left: 70,
          top: 30,
          width: width - 100,
          height: height - 80,
          title: "Change-to-agent latency, percentile distribution per scenario",
          xLabel: "percentile (max at the right edge)",
          yLabel: "latency (ms, log)",
          xDomain: [0, maxNines],
          yDomain: [0, yMax],
          xTicks: ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].map((label, i) => ({ value: i, label })),
          yTicks,
          series,
          legendAt: "top-left",
        });
  return svg(width, height, body);
}

function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function ticks(max: number, count: number, unit: (v: number) => string): Tick[] {
  const step = niceStep(max, count);
  const out: Tick[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push({ value: v, label: unit(v) });
  return out;
}

/** CPU (cores) of consecutive samples, and RSS, as chart points over seconds since `t0Ms`. */
function procPoints(
  series: readonly ProcSeries[],
  t0Ms: number,
): {
  cpu: ([number, number] | null)[];
  rss: ([number, number] | null)[];
} {
  const cpu: ([number, number] | null)[] = [];
  const rss: ([number, number] | null)[] = [];
  for (const s of series) {
    for (let i = 0; i < s.samples.length; i++) {
      const cur = s.samples[i];
      if (cur === undefined) continue;
      const t = (cur.atMs - t0Ms) / 1000;
      rss.push([t, cur.rssBytes / (1024 * 1024)]);
      const prev = s.samples[i - 1];
      if (prev !== undefined && cur.atMs > prev.atMs) {
        cpu.push([t, (cur.cpuSeconds - prev.cpuSeconds) / ((cur.atMs - prev.atMs) / 1000)]);
      }
    }
    cpu.push(null);
    rss.push(null);
  }
  return { cpu, rss };
}

/** Server (and simulator) CPU and RSS over the run, with the scenario windows shaded. */
export function resourceChart(
  scenarios: readonly ScenarioResult[],
  server: readonly ProcSeries[],
  sim: readonly ProcSeries[],
): string {
  const all = [...server, ...sim].flatMap((s) => s.samples);
  const width = 900;
  const height = 560;
  if (all.length === 0) return svg(width, height, `<text x="40" y="60" ${FONT}>No samples.</text>`);
  const t0 = Math.min(...all.map((s) => s.atMs));
  const tMax = (Math.max(...all.map((s) => s.atMs)) - t0) / 1000;
  const srv = procPoints(server, t0);
  const api = procPoints(sim, t0);
  const finite = (pts: readonly ([number, number] | null)[]): number[] =>
    pts.flatMap((p) => (p === null ? [] : [p[1]]));
  const cpuMax = Math.max(1, ...finite(srv.cpu), ...finite(api.cpu));
  const rssMax = Math.max(100, ...finite(srv.rss), ...finite(api.rss));
  const bands = scenarios.map((s) => ({
    from: (s.startedAtMs - t0) / 1000,
    to: (s.endedAtMs - t0) / 1000,
    label: s.name,
  }));
  const xTicks = ticks(tMax, 10, (v) => `${Math.round(v)}`);
  const common = {
    left: 70,
    width: width - 100,
    height: 200,
    xLabel: "seconds since start",
    xDomain: [0, tMax] as const,
    xTicks,
    bands,
  };
  const body = [
    renderPanel({
      ...common,
      top: 30,
      title: "CPU (cores; 2 on this machine)",
      yLabel: "CPU seconds per second",
      yDomain: [0, cpuMax * 1.05],
      yTicks: ticks(cpuMax, 5, (v) => fmt(v)),
      series: [
        { label: "tabby server", color: COLORS[0] ?? "#000", points: srv.cpu },
        { label: "API server (simulator)", color: COLORS[1] ?? "#000", points: api.cpu },
      ],
    }),
    renderPanel({
      ...common,
      top: 310,
      title: "Resident memory (RSS)",
      yLabel: "MB",
      yDomain: [0, rssMax * 1.05],
      yTicks: ticks(rssMax, 5, (v) => `${Math.round(v)}`),
      series: [
        { label: "tabby server", color: COLORS[0] ?? "#000", points: srv.rss },
        { label: "API server (simulator)", color: COLORS[1] ?? "#000", points: api.rss },
      ],
    }),
  ].join("\n");
  return svg(width, height, body);
}

/** Sessions per replica over the run (--replicas), with the scenario windows shaded. */
export function connectionsChart(
  scenarios: readonly ScenarioResult[],
  samples: readonly { readonly atMs: number; readonly connections: readonly (number | null)[] }[],
): string {
  const width = 900;
  const height = 300;
  if (samples.length === 0) return svg(width, height, `<text x="40" y="60" ${FONT}>No samples.</text>`);
  const t0 = samples[0]?.atMs ?? 0;
  const tMax = Math.max(1, ((samples[samples.length - 1]?.atMs ?? t0) - t0) / 1000);
  const replicas = Math.max(...samples.map((s) => s.connections.length));
  const values = samples.flatMap((s) => s.connections.filter((c): c is number => c !== null));
  const yMax = Math.max(10, ...values);
  const series: Series[] = Array.from({ length: replicas }, (_, r) => ({
    label: `replica ${r}`,
    color: COLORS[r % COLORS.length] ?? "#000",
    points: samples.map((s): [number, number] | null => {
      const c = s.connections[r];
      return c === null || c === undefined ? null : [(s.atMs - t0) / 1000, c];
    }),
  }));
  const body = renderPanel({
    left: 70,
    top: 30,
    width: width - 100,
    height: height - 80,
    title: "Sessions per replica (/status connections.active)",
    xLabel: "seconds since the first replica started",
    yLabel: "sessions",
    xDomain: [0, tMax],
    yDomain: [0, yMax * 1.05],
    xTicks: ticks(tMax, 10, (v) => `${Math.round(v)}`),
    yTicks: ticks(yMax, 5, (v) => `${Math.round(v)}`),
    series,
    bands: scenarios.map((s) => ({
      from: (s.startedAtMs - t0) / 1000,
      to: (s.endedAtMs - t0) / 1000,
      label: s.name,
    })),
  });
  return svg(width, height, body);
}
