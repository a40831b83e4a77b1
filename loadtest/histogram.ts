import hdr from "hdr-histogram-js";
import type { Histogram } from "hdr-histogram-js";

/** Latency percentiles in milliseconds; null when nothing was recorded. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** One point of a percentile distribution: `percentile` in [0, 100], `valueMs`. */
export interface PercentilePoint {
  readonly percentile: number;
  readonly valueMs: number;
}

/** An HDR histogram of latencies in whole milliseconds, 3 significant digits, up to an hour. */
export function newLatencyHistogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Merges encoded histograms (one per worker) into one. */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  const total = newLatencyHistogram();
  for (const e of encoded) {
    const h = hdr.decodeFromCompressedBase64(e, 32, false);
    total.add(h);
    h.destroy();
  }
  return total;
}

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50: null, p90: null, p99: null, max: null };
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    max: h.maxValue,
  };
}

/** The percentile distribution at the usual HDR ticks (50, 75, 90, 99, 99.9, ... up to the max). */
export function percentileCurve(h: Histogram): PercentilePoint[] {
  if (h.totalCount === 0) return [];
  const points: PercentilePoint[] = [];
  for (const p of [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 99.999]) {
    points.push({ percentile: p, valueMs: h.getValueAtPercentile(p) });
  }
  points.push({ percentile: 100, valueMs: h.maxValue });
  return points;
}
