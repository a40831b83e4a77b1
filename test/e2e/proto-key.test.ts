/**
 * A key `__proto__` in a free-form map of an upstream object (a Calico rule's annotations: Kubernetes
 * accepts any key there) reaches the client's mirror as that key, through the snapshot and through patches.
 */
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { TabbyClient } from "../../src/client/index.js";
import { runServer } from "../../src/server/main.js";
import type { KubeObject } from "../../src/server/datastore/types.js";
import { startSimulator } from "../../src/sim/index.js";
import { loopbackServeConfig } from "../support/serve-config.js";

type Annotations = Record<string, string>;

function ruleAnnotations(client: TabbyClient): Annotations | undefined {
  const policy = client.get("GlobalNetworkPolicy/proto-key") as
    { spec: { ingress?: { metadata?: { annotations?: Annotations } }[] } } | undefined;
  return policy?.spec.ingress?.[0]?.metadata?.annotations;
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("a key __proto__ in an upstream object", () => {
  it("is an own key of the mirrored value after the snapshot and after patches, never a prototype", async () => {
    const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
    onTestFinished(() => sim.close());
    const policy = (annotations: string, order: number): object =>
      JSON.parse(
        `{"metadata":{"name":"proto-key"},"spec":{"order":${order},"selector":"all()",` +
          `"ingress":[{"action":"Allow","metadata":{"annotations":${annotations}}}]}}`,
      ) as object;
    sim.create("globalnetworkpolicies", policy('{"__proto__":"a","__proto_":"b"}', 1));
    const server = await runServer(loopbackServeConfig({ flushWindowMs: "1" }), {
      logger: pino({ level: "silent" }),
      kubeConfig: sim.kubeConfig(),
      registry: new Registry(),
    });
    onTestFinished(() => server.close());
    const client = new TabbyClient({ servers: [`ws://127.0.0.1:${server.port}`], view: "felix" });
    onTestFinished(() => client.close());
    client.start();
    await client.synced();

    const own = (a: Annotations | undefined): [string, string][] =>
      a === undefined
        ? []
        : Object.keys(a).map((k) => [k, Object.getOwnPropertyDescriptor(a, k)?.value as string]);
    expect(own(ruleAnnotations(client))).toEqual([
      ["__proto__", "a"],
      ["__proto_", "b"],
    ]);
    expect(Object.getPrototypeOf(ruleAnnotations(client))).toBe(Object.prototype);

    // An update elsewhere in the value (a patch that keeps the map), then one of the key itself.
    const current = () =>
      sim
        .list("globalnetworkpolicies")
        .find((p) => (p as KubeObject).metadata?.name === "proto-key") as KubeObject;
    sim.update("globalnetworkpolicies", {
      ...policy('{"__proto__":"a","__proto_":"b"}', 2),
      metadata: current().metadata,
    });
    await until(
      () => (client.get("GlobalNetworkPolicy/proto-key") as { spec: { order: number } }).spec.order === 2,
    );
    expect(own(ruleAnnotations(client))).toEqual([
      ["__proto__", "a"],
      ["__proto_", "b"],
    ]);
    sim.update("globalnetworkpolicies", { ...policy('{"__proto__":"c"}', 2), metadata: current().metadata });
    await until(() => own(ruleAnnotations(client)).length === 1);
    expect(own(ruleAnnotations(client))).toEqual([["__proto__", "c"]]);
    expect(Object.getPrototypeOf(ruleAnnotations(client))).toBe(Object.prototype);
    // Applied as deltas: no frame refused, no second snapshot.
    expect(client.stats).toMatchObject({ snapshots: 1, rejectedFrames: 0, errors: 0 });
  });
});
