import type { LoadtestReport, ScenarioResult } from "./report.js";

const MB = 1024 * 1024;

function num(v: number | null | undefined, digits = 0, unit = ""): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return `${v.toFixed(digits)}${unit}`;
}

function mb(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${(v / MB).toFixed(1)} MB`;
}

function inSync(s: ScenarioResult): string {
  const v = s.inSyncSeconds.connectStorm ?? s.inSyncSeconds.reconnectStorm;
  return v === null ? "–" : `${v.toFixed(2)} s`;
}

function flushWindow(s: ScenarioResult): string {
  if (s.flushWindowMsMax === null) return "–";
  return `${s.flushWindowMsMax} ms${s.details.flushWindowMsSource === "configured" ? " (configured)" : ""}`;
}

/** The Markdown summary written next to report.json. */
export function renderSummary(report: LoadtestReport): string {
  const o = report.options;
  const lines: string[] = [];
  lines.push(`# tabby load test — ${report.verified ? "verified" : "FAILED verification"}`);
  lines.push("");
  lines.push(`- Started ${report.startedAt}, finished ${report.finishedAt}`);
  lines.push(`- Command: \`${report.command}\``);
  lines.push(
    `- Machine: ${report.machine.nproc} × ${report.machine.cpuModel}, ${(report.machine.memTotalBytes / 1024 ** 3).toFixed(1)} GiB, Node ${report.machine.node}; load average ${report.machine.loadAverage.start.toFixed(1)} at the start, ${report.machine.loadAverage.end.toFixed(1)} at the end`,
  );
  if (report.progressPollsMissed > 0) {
    lines.push(
      `- ${report.progressPollsMissed} progress polls went unanswered in time: the agent workers were saturated`,
    );
  }
  lines.push(
    `- Cluster: ${String(o.nodes)} nodes × ${String(o.podsPerNode)} pods, ${report.scenarios[0]?.resources ?? "?"} resources; ${String(o.agents)} agents in ${String(o.workers)} worker processes (${String(o.fullAgents)} with a full, verified mirror)`,
  );
  lines.push(
    `- Server runtime: ${report.serverRuntime ?? "–"}${report.serverRuntime === "tsx" ? " (from source through tsx: RSS figures include tsx's loader, over 100 MB; run `npm run build` first)" : ""}`,
  );
  if (report.error !== undefined) lines.push(`- **Stopped early:** ${report.error}`);
  lines.push("");
  lines.push("## Scenarios");
  lines.push("");
  lines.push(
    "| scenario | agents | churn/s (achieved) | verified | in sync | p50 | p90 | p99 | max | delivered/s | sent/s | wire B/change | flush window max | server CPU/s | server RSS max | API CPU/s | API-side watches | relist | ceiling ratio |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const s of report.scenarios) {
    const l = s.latencyMs;
    lines.push(
      `| ${s.name} | ${s.agents} | ${s.churnPerSecond} (${num(s.achievedChurnPerSecond)}) | ${s.verified ? "yes" : `**no** (${s.mismatches})`} | ${inSync(s)} | ${num(l.p50, 0, " ms")} | ${num(l.p90, 0, " ms")} | ${num(l.p99, 0, " ms")} | ${num(l.max, 0, " ms")} | ${num(s.deliveredPerSecond)} | ${mb(s.bytesSentPerSecond)} | ${num(s.wireBytesPerChange, 0, " B")} | ${flushWindow(s)} | ${num(s.serverCpuSecondsPerSecond, 2)} | ${mb(s.serverRssBytesMax)} | ${num(s.apiServerCpuSecondsPerSecond, 2)} | ${s.upstreamWatches} | ${num(s.relistSeconds, 2, " s")} | ${num(s.ceilingRatio, 2)} |`,
    );
  }
  const replicaRuns = report.scenarios.filter(
    (s) => s.scenario === "scale-out" || s.scenario === "rolling-restart",
  );
  if (replicaRuns.length > 0) {
    lines.push("");
    lines.push(`## Replicas (${String(o.replicas)})`);
    lines.push("");
    lines.push(
      "| scenario | rebalance | moved sessions | moved twice | max/mean sessions | spurious updates | snapshots | snapshot bytes (share of one each) | cross-replica resumes | p99 | verified |",
    );
    lines.push("|---|---|---|---|---|---|---|---|---|---|---|");
    for (const s of replicaRuns) {
      const d = s.details;
      const n = (k: string, digits = 0, unit = ""): string =>
        typeof d[k] === "number" ? num(d[k], digits, unit) : "–";
      const share =
        typeof d.snapshotBytesShare === "number" ? ` (${(d.snapshotBytesShare * 100).toFixed(1)}%)` : "";
      lines.push(
        `| ${s.name} | ${n("rebalanceSeconds", 1, " s")} | ${n("movedSessions")} | ${n("agentsMovedTwice")} | ${n("maxOverMeanConnections", 3)} | ${n("spuriousUpdates")} | ${n("snapshotsSent")} | ${mb(typeof d.snapshotBytesSent === "number" ? d.snapshotBytesSent : null)}${share} | ${n("resumesAcrossReplicas")} | ${num(s.latencyMs.p99, 0, " ms")} | ${s.verified ? "yes" : "**no**"} |`,
      );
    }
    lines.push("");
    lines.push("Sessions per replica over time: [replicas.svg](replicas.svg).");
  }
  lines.push("");
  lines.push("## Targets");
  lines.push("");
  lines.push("| target | wanted | measured | met |");
  lines.push("|---|---|---|---|");
  for (const t of report.targets) {
    lines.push(
      `| ${t.name} | ${t.target} | ${t.value} | ${t.isMet === null ? "–" : t.isMet ? "yes" : "**no**"} |`,
    );
  }
  lines.push("");
  lines.push(
    `Highest churn run with p99 ≤ 250 ms: ${report.maxChurnWithinP99_250ms === null ? "none" : `${report.maxChurnWithinP99_250ms} changes/s`}.`,
  );
  const failed = report.scenarios.filter((s) => !s.verified);
  if (failed.length > 0) {
    lines.push("");
    lines.push("## Mismatches");
    for (const s of failed) {
      lines.push("");
      lines.push(`- ${s.name}: ${s.mismatches} mismatches`);
      for (const m of s.mismatchSamples) lines.push(`  - ${m}`);
    }
  }
  lines.push("");
  lines.push("## Details");
  for (const s of report.scenarios) {
    lines.push("");
    lines.push(`### ${s.name}`);
    lines.push("");
    lines.push("```json");
    lines.push(JSON.stringify({ agentCounters: s.agentCounters, details: s.details }, null, 2));
    lines.push("```");
  }
  lines.push("");
  lines.push("Charts: [latency.svg](latency.svg), [server.svg](server.svg). Schema: docs/LOADTEST.md.");
  lines.push("");
  return lines.join("\n");
}
