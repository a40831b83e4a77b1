import type { LoadtestOptions } from "./options.js";
import type { AgentSpec } from "./protocol.js";

export interface AgentPlan {
  /** The agents of each regular worker. */
  readonly regular: readonly (readonly AgentSpec[])[];
  /** The agents of the slow worker (empty without the slow-agents scenario). */
  readonly slow: readonly AgentSpec[];
}

/**
 * Which agent runs where and how: `slowPercent` of the agents (when the slow-agents scenario runs) in a
 * worker of their own, the others round-robin over the regular workers; the full agents evenly spread,
 * alternately felix and bgp; the decoding ones in between; all the others skim. The full and decoding
 * agents are spread over the workers one by one (see below). Agent i runs on node i mod nodes.
 */
export function planAgents(
  o: Pick<
    LoadtestOptions,
    "agents" | "fullAgents" | "sampleAgents" | "slowPercent" | "scenarios" | "workers"
  >,
  nodeNames: readonly string[],
): AgentPlan {
  const nodeOf = (i: number): string => nodeNames[i % nodeNames.length] ?? `node-${i}`;
  const slowCount = o.scenarios.includes("slow-agents")
    ? Math.max(0, Math.min(o.agents - o.fullAgents, Math.ceil((o.agents * o.slowPercent) / 100)))
    : 0;
  const regularCount = o.agents - slowCount;
  const workerCount = Math.max(1, Math.min(o.workers, regularCount));
  const fullAt = new Map<number, "felix" | "bgp">();
  for (let j = 0; j < o.fullAgents; j++) {
    fullAt.set(Math.floor((j * regularCount) / o.fullAgents), j % 2 === 0 ? "felix" : "bgp");
  }
  const sampleAt = new Set<number>();
  for (let j = 0; j < o.sampleAgents; j++) {
    const i = Math.floor(((j + 0.5) * regularCount) / o.sampleAgents);
    if (!fullAt.has(i)) sampleAt.add(i);
  }
  const specs = Array.from({ length: regularCount }, (_, i): AgentSpec => {
    const full = fullAt.get(i);
    return {
      index: i,
      view: full ?? "felix",
      nodeName: nodeOf(i),
      mode: full !== undefined ? "full" : sampleAt.has(i) ? "decode" : "skim",
    };
  });
  // The agents that decode go round-robin over the workers first, the dearest first (a full felix mirror
  // decodes and diffs the whole view on every resync), so that no worker holds two of them while another
  // holds none; then the skimmers fill every worker to the same count.
  const rank = (a: AgentSpec): number =>
    a.mode === "full" ? (a.view === "felix" ? 0 : 2) : a.mode === "decode" ? 1 : 3;
  const ordered = [...specs].sort((a, b) => rank(a) - rank(b) || a.index - b.index);
  const capacity = Math.ceil(regularCount / workerCount);
  const regular: AgentSpec[][] = Array.from({ length: workerCount }, () => []);
  let next = 0;
  for (const spec of ordered) {
    while ((regular[next % workerCount]?.length ?? 0) >= capacity) next++;
    regular[next % workerCount]?.push(spec);
    next++;
  }
  for (const agents of regular) agents.sort((a, b) => a.index - b.index);
  const slow = Array.from({ length: slowCount }, (_, k): AgentSpec => ({
    index: regularCount + k,
    view: "felix",
    nodeName: nodeOf(regularCount + k),
    mode: "skim",
  }));
  return { regular, slow };
}
