import { Command } from "commander";
import { VIEW_NAMES } from "../../proto/messages.js";
import type { StatusReport } from "../server/fanout/status-report.js";
import type { ReplicasReport } from "../server/replicas/index.js";

/** A server's /status: the fan-out's report plus what runServer adds (older servers lack `replicas`). */
export type ServerStatusReport = StatusReport & { readonly replicas?: ReplicasReport };
import { wholeNumber } from "./args.js";

/** One replica's row: its /status, or why it could not be read. */
export type ReplicaStatus =
  | { readonly url: string; readonly report: ServerStatusReport }
  | { readonly url: string; readonly error: string };

/** `http://host:9098` or `host:9098` → `http://host:9098/status` (a URL that names a path is kept). */
export function statusUrl(server: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(server) ? server : `http://${server}`;
  const url = new URL(withScheme);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/status";
  return url.toString();
}

export async function fetchStatus(server: string, timeoutMs: number): Promise<ReplicaStatus> {
  const url = statusUrl(server);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return { url, error: `HTTP ${res.status}` };
    const report = (await res.json()) as ServerStatusReport;
    if (typeof report.server !== "string" || typeof report.views !== "object")
      return { url, error: "not a tabby /status answer" };
    return { url, report };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return { url, error: `${err instanceof Error ? err.message : String(err)}${cause}` };
  }
}

const COLUMNS = [
  "replica",
  "id",
  "ready",
  "views (revision/entries)",
  "sessions",
  "lag p99",
  "stale kinds",
  "replicas",
];

/** What a server knows of its Service: `ready/known (source)`, e.g. `3/3 (endpoint-slices)`. */
function replicasCell(r: ReplicasReport | undefined): string {
  if (r === undefined) return "-";
  return `${r.ready}/${r.peers.length} (${r.source})`;
}

function row(r: ReplicaStatus): string[] {
  const host = new URL(r.url).host;
  if ("error" in r) return [host, "-", "unreachable", r.error, "-", "-", "-", "-"];
  const s = r.report;
  const views = VIEW_NAMES.filter((v) => s.views[v] !== undefined)
    .map((v) => `${v} ${s.views[v].lastChangeRevision}/${s.views[v].entries}`)
    .join(", ");
  const stale = Object.entries(s.kinds)
    .filter(([, k]) => k.state === "stale")
    .map(([kind]) => kind)
    .sort();
  const ready = s.ready ? "yes" : `no (${s.notReadyReason ?? "not ready"})`;
  const lagMs = s.lag.laggingMs.p99;
  return [
    host,
    s.server,
    s.draining ? `${ready}, draining` : ready,
    views,
    String(s.connections.active),
    lagMs === 0 ? "0" : `${(lagMs / 1000).toFixed(1)}s`,
    stale.length === 0 ? "-" : stale.join(","),
    replicasCell(s.replicas),
  ];
}

/** The replicas as an aligned text table, one line per replica, in the order given. */
export function formatStatusTable(replicas: readonly ReplicaStatus[]): string {
  const rows = [COLUMNS, ...replicas.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function statusCommand(): Command {
  return new Command("status")
    .description(
      "Print a table of tabby replicas (ready, views, sessions, lag, stale kinds) from their /status.",
    )
    .requiredOption("--server <url...>", "health or metrics address of each replica (http://host:9098)")
    .option("--timeout-ms <ms>", "per-replica request timeout", wholeNumber(1), 5000)
    .option("--json", "print the /status answers as JSON instead")
    .action(async (opts: { server: string[]; timeoutMs: number; json?: boolean }) => {
      const replicas = await Promise.all(opts.server.map((s) => fetchStatus(s, opts.timeoutMs)));
      console.log(opts.json === true ? JSON.stringify(replicas, null, 2) : formatStatusTable(replicas));
      // Non-zero when a replica could not be read or is not ready: usable in scripts and probes.
      if (replicas.some((r) => "error" in r || !r.report.ready)) process.exitCode = 1;
    });
}
