import { reconnectLeak } from "./reconnect-leak.js";
import type { LeakSample } from "./reconnect-leak.js";

/**
 * `npm run bench:leak`: forced reconnects against one server process (bench/reconnect-leak.ts) and its
 * file descriptors, sockets and memory after a full GC, before and after. Sizes from the environment:
 * LEAK_AGENTS (default 4), LEAK_RECONNECTS per agent (default 1000), LEAK_CHURN writes/s (default 20).
 * Loopback only; run it niced on a shared machine (`nice -n 19 npm run bench:leak`).
 */
const agents = Number(process.env.LEAK_AGENTS ?? 4);
const reconnects = Number(process.env.LEAK_RECONNECTS ?? 1000);
const churnPerSecond = Number(process.env.LEAK_CHURN ?? 20);
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
const line = (s: LeakSample): string =>
  `| ${s.cycle} | ${s.fds} | ${s.sockets} | ${s.connections} | ${mib(s.heapUsedBytes)} | ${mib(s.externalBytes)} | ${mib(s.rssBytes)} |`;

console.log(
  `# tabby bench:leak — ${new Date().toISOString()}, ${agents} agents × ${reconnects} forced reconnects, churn ${churnPerSecond}/s`,
);
console.log(
  "| cycle | fds | sockets | connections | heap used | external | RSS |\n|---|---|---|---|---|---|---|",
);
const report = await reconnectLeak({
  agents,
  reconnects,
  nodes: 4,
  churnPerSecond,
  warmupCycles: 20,
  sampleEvery: Math.max(1, Math.floor(reconnects / 10)),
  cycleTimeoutMs: 30_000,
  onSample: (s) => console.log(line(s)),
});
const d = (f: (s: LeakSample) => number): number => f(report.after) - f(report.before);
console.log(
  `\nafter − before: fds ${d((s) => s.fds)}, sockets ${d((s) => s.sockets)}, heap ${mib(d((s) => s.heapUsedBytes))}, external ${mib(d((s) => s.externalBytes))}, RSS ${mib(d((s) => s.rssBytes))}`,
);
console.log(
  `${report.agents * report.reconnects} reconnects in ${report.seconds.toFixed(1)} s (a cycle: p50 ${report.cycleMsP50} ms); ${report.resumes} resumed, ${report.snapshots} took a snapshot`,
);
