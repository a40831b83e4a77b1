/**
 * An example node agent on the typed client: it follows the `felix` view for one node and keeps what a
 * dataplane agent needs (the IP pools, the local workload endpoints, the policies), with every value
 * typed by its kind. Compiled by `npm run typecheck`; test/e2e/client-typed.test.ts runs it against a
 * real server over the simulator.
 *
 *   npx tsx examples/felix-agent.ts ws://127.0.0.1:5473 node-0001
 */
import { TabbyClient } from "../src/client/index.js";
import type { IPPool, NetworkPolicy, TypedUpdate, WorkloadEndpoint } from "../src/client/index.js";

export interface AgentState {
  /** IP pool name → CIDR, for the pools that are enabled. */
  readonly pools: Map<string, string>;
  /** `namespace/pod` → the pod's IPs, for the endpoints on this node. */
  readonly localEndpoints: Map<string, readonly string[]>;
  /** `namespace/name` → the policy's tier and order. */
  readonly policies: Map<string, { tier: string; order: number | undefined }>;
  batches: number;
}

export function newAgentState(): AgentState {
  return { pools: new Map(), localEndpoints: new Map(), policies: new Map(), batches: 0 };
}

function applyPool(state: AgentState, name: string, pool: IPPool | null): void {
  if (pool === null || pool.spec.disabled === true) state.pools.delete(name);
  else state.pools.set(name, pool.spec.cidr);
}

function applyEndpoint(state: AgentState, node: string, id: string, wep: WorkloadEndpoint | null): void {
  if (wep === null || wep.spec.node !== node) state.localEndpoints.delete(id);
  else state.localEndpoints.set(id, wep.spec.ipNetworks ?? []);
}

function applyPolicy(state: AgentState, id: string, policy: NetworkPolicy | null): void {
  if (policy === null) state.policies.delete(id);
  else state.policies.set(id, { tier: policy.spec.tier ?? "default", order: policy.spec.order });
}

/** Applies one batch: each entry narrows by `kind`, so `u.value` has that kind's type (or null). */
export function applyBatch(state: AgentState, node: string, batch: readonly TypedUpdate[]): void {
  state.batches++;
  for (const u of batch) {
    const id = u.key.slice(u.key.indexOf("/") + 1);
    switch (u.kind) {
      case "IPPool":
        applyPool(state, id, u.value);
        break;
      case "WorkloadEndpoint":
        applyEndpoint(state, node, id, u.value);
        break;
      case "NetworkPolicy":
        applyPolicy(state, id, u.value);
        break;
      default:
        break; // the other kinds of the view: not needed by this agent
    }
  }
}

/**
 * Runs the agent until `signal` aborts: the first state comes from the typed mirror (`list`), then every
 * batch of changes from the async iterator. Resolves with the final state.
 */
export async function runFelixAgent(options: {
  readonly servers: readonly string[];
  readonly nodeName: string;
  readonly signal: AbortSignal;
  /** Called after the initial state and after each batch (tests use it to watch progress). */
  readonly onState?: (state: AgentState) => void;
}): Promise<AgentState> {
  const client = new TabbyClient({
    servers: options.servers,
    view: "felix",
    nodeName: options.nodeName,
    clientName: "example-felix-agent",
    signal: options.signal,
  });
  const state = newAgentState();
  const stream = client.updates({ signal: options.signal });
  client.start();
  try {
    await client.synced();
    // Typed reads of the mirror: IPPool[] and WorkloadEndpoint[].
    for (const pool of client.list("IPPool")) applyPool(state, pool.metadata.name, pool);
    for (const wep of client.list("WorkloadEndpoint"))
      applyEndpoint(state, options.nodeName, `${wep.metadata.namespace ?? ""}/${wep.metadata.name}`, wep);
    for (const policy of client.list("NetworkPolicy"))
      applyPolicy(state, `${policy.metadata.namespace ?? ""}/${policy.metadata.name}`, policy);
    options.onState?.(state);
    // The stream holds every batch since before start() (the snapshot's too); applying those again is
    // harmless: each update sets its key's latest value, and the stream ends at the newest.
    for await (const batch of stream) {
      applyBatch(state, options.nodeName, batch);
      options.onState?.(state);
    }
  } finally {
    await client.close();
  }
  return state;
}

// Run from the command line: servers and node name from argv, stop on SIGINT.
if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  const [server = "ws://127.0.0.1:5473", node = "node-0001"] = process.argv.slice(2);
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  const state = await runFelixAgent({
    servers: [server],
    nodeName: node,
    signal: abort.signal,
    onState: (s) =>
      console.log(
        `pools ${s.pools.size}, local endpoints ${s.localEndpoints.size}, policies ${s.policies.size}`,
      ),
  });
  console.log(`stopped after ${state.batches} batches`);
}
