import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { CHANGED_AT_ANNOTATION, ChurnGenerator, seedCluster, type ChurnChange } from "../../src/sim/churn.js";
import { defaultCrdsDir, type KubeObject, type Simulator } from "../../src/sim/index.js";
import { startTestSim } from "./sim-test-utils.js";

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  additionalProperties?: unknown;
  "x-kubernetes-int-or-string"?: boolean;
};

/** Checks a value against an openAPIV3Schema: known fields, required fields, enums, basic types. */
function validate(v: unknown, s: Schema, path: string, errors: string[]): void {
  if (s["x-kubernetes-int-or-string"] === true) {
    if (typeof v !== "string" && typeof v !== "number") errors.push(`${path}: not int-or-string`);
    return;
  }
  if (s.enum !== undefined && !s.enum.includes(v)) errors.push(`${path}: ${JSON.stringify(v)} not in enum`);
  const t = s.type;
  const actual = Array.isArray(v) ? "array" : v === null ? "null" : typeof v;
  if (
    t === "integer"
      ? !Number.isInteger(v)
      : t === "number"
        ? typeof v !== "number"
        : t !== undefined && t !== actual
  ) {
    if (!(v === null && t !== undefined)) errors.push(`${path}: ${actual} is not ${t}`);
    return;
  }
  if (t === "array" && s.items !== undefined)
    (v as unknown[]).forEach((x, i) => x !== null && validate(x, s.items!, `${path}[${i}]`, errors));
  if (t === "object" && s.properties !== undefined) {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) errors.push(`${path}.${r}: required`);
    for (const [k, x] of Object.entries(o)) {
      const sub = s.properties[k];
      if (sub === undefined) errors.push(`${path}.${k}: unknown field`);
      else validate(x, sub, `${path}.${k}`, errors);
    }
  }
}

function crdSchemas(): Map<string, Schema> {
  const out = new Map<string, Schema>();
  const dir = defaultCrdsDir();
  for (const f of readdirSync(dir)) {
    const crd = parse(readFileSync(join(dir, f), "utf8")) as {
      spec: { names: { kind: string }; versions: { schema: { openAPIV3Schema: Schema } }[] };
    };
    out.set(crd.spec.names.kind, crd.spec.versions[0]!.schema.openAPIV3Schema);
  }
  return out;
}

const CALICO_RESOURCES = [
  "ippools",
  "felixconfigurations",
  "clusterinformations",
  "tiers",
  "globalnetworkpolicies",
  "networkpolicies.crd.projectcalico.org",
  "globalnetworksets",
  "networksets",
  "hostendpoints",
  "bgpconfigurations",
  "bgppeers",
  "bgpfilters",
  "ipamblocks",
  "blockaffinities",
  "ipamhandles",
  "ipamconfigs",
  "ipreservations",
  "kubecontrollersconfigurations",
  "caliconodestatuses",
  "stagedglobalnetworkpolicies",
  "stagednetworkpolicies",
  "stagedkubernetesnetworkpolicies",
];

afterEach(() => {
  vi.useRealTimers();
});

describe("seedCluster", () => {
  it("creates a realistic, self-consistent cluster", async () => {
    const sim = await startTestSim();
    const r = seedCluster(sim, { nodes: 12, podsPerNode: 20, seed: 5 });
    expect(r.nodes).toHaveLength(12);
    const pods = sim.list("pods");
    expect(pods).toHaveLength(240);
    const spec = (
      p: KubeObject,
    ): {
      nodeName: string;
      serviceAccountName: string;
      hostNetwork?: boolean;
      containers: { ports: { name: string }[] }[];
    } => p.spec as never;
    const status = (p: KubeObject): { phase: string; podIP?: string; podIPs?: { ip: string }[] } =>
      p.status as never;
    const hostNet = pods.filter((p) => spec(p).hostNetwork === true);
    expect(hostNet).toHaveLength(12);
    const workloads = pods.filter((p) => spec(p).hostNetwork !== true);
    expect(
      workloads.filter((p) => status(p).phase === "Pending" && status(p).podIP === undefined).length,
    ).toBeGreaterThan(0);
    expect(workloads.filter((p) => status(p).phase === "Succeeded").length).toBeGreaterThan(0);
    const running = workloads.filter((p) => status(p).phase === "Running");
    for (const p of running) {
      expect(spec(p).serviceAccountName).toMatch(/./);
      expect(spec(p).containers[0]!.ports.map((x) => x.name)).toEqual(
        p.metadata.labels?.app === "cache"
          ? ["http", "metrics", "gossip", "replication"]
          : ["http", "metrics"],
      );
      expect(status(p).podIPs).toEqual([{ ip: status(p).podIP }]);
      expect(p.metadata.labels?.app).toBeDefined();
    }
    const ips = workloads.flatMap((p) => (status(p).podIP === undefined ? [] : [status(p).podIP]));
    expect(new Set(ips).size).toBe(ips.length);

    // Each running pod's IP lies in a block affine to its node.
    const blocks = sim.list("ipamblocks").map((b) => b.spec as { cidr: string; affinity: string });
    const inCidr = (ip: string, cidr: string): boolean => {
      const toInt = (a: string): number => a.split(".").reduce((x, o) => x * 256 + Number(o), 0);
      const [base, bits] = cidr.split("/");
      return (
        Math.floor(toInt(ip) / 2 ** (32 - Number(bits))) ===
        Math.floor(toInt(base!) / 2 ** (32 - Number(bits)))
      );
    };
    for (const p of running) {
      const block = blocks.find((b) => inCidr(status(p).podIP!, b.cidr));
      expect(block?.affinity).toBe(`host:${spec(p).nodeName}`);
    }
    const affinities = sim.list("blockaffinities").map((a) => a.spec as { node: string; cidr: string });
    expect(affinities.map((a) => a.cidr).sort()).toEqual(blocks.map((b) => b.cidr).sort());

    for (const n of sim.list("nodes")) {
      const ann = n.metadata.annotations ?? {};
      expect(ann["projectcalico.org/IPv4Address"]).toMatch(/\/16$/);
      expect(ann["projectcalico.org/IPv4IPIPTunnelAddr"]).toMatch(/^10\.4[89]\./);
      expect(ann["projectcalico.org/WireguardPublicKey"]).toHaveLength(44);
      expect((n.status as { addresses: unknown[] }).addresses).toHaveLength(2);
    }
    expect(sim.list("caliconodestatuses").map((s) => (s.spec as { node: string }).node)).toEqual(r.nodes);
    expect(sim.list("felixconfigurations").map((f) => f.metadata.name)).toEqual([
      "default",
      "node.node-0001",
      "node.node-0002",
      "node.node-0003",
    ]);
    expect(sim.list("clusterinformations").map((f) => f.metadata.name)).toEqual(["default"]);
    for (const res of [
      "namespaces",
      "serviceaccounts",
      "services",
      "endpointslices",
      "networkpolicies",
      ...CALICO_RESOURCES,
    ]) {
      expect(sim.list(res).length, res).toBeGreaterThan(0);
    }
    const gnps = sim.list("globalnetworkpolicies");
    for (const g of gnps) {
      const tier = (g.spec as { tier: string }).tier;
      if (tier !== "default") expect(g.metadata.name.startsWith(`${tier}.`)).toBe(true);
    }
  });

  it("creates Calico resources that follow their CRD schemas", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 3, podsPerNode: 4 });
    const churn = new ChurnGenerator(sim, { ratePerSecond: 1, seed: 2 });
    churn.runOnce(300); // churned objects too
    const schemas = crdSchemas();
    const errors: string[] = [];
    for (const res of CALICO_RESOURCES) {
      for (const o of sim.list(res)) {
        const schema = schemas.get(o.kind)!;
        validate(
          o,
          { ...schema, properties: { ...schema.properties, metadata: {} } },
          `${o.kind}/${o.metadata.name}`,
          errors,
        );
      }
    }
    expect(errors).toEqual([]);
  });

  it("is reproducible for a seed and skips resources whose CRD is not installed", async () => {
    const a = await startTestSim();
    const b = await startTestSim({ installedCrds: ["ippools"] });
    const c = await startTestSim();
    seedCluster(a, { nodes: 3, podsPerNode: 5, seed: 9 });
    const rb = seedCluster(b, { nodes: 3, podsPerNode: 5, seed: 9 });
    seedCluster(c, { nodes: 3, podsPerNode: 5, seed: 10 });
    const shape = (s: Simulator): string[] =>
      s
        .list("pods")
        .map((p) => `${p.metadata.namespace}/${p.metadata.name} ${(p.status as { podIP?: string }).podIP}`);
    expect(shape(b)).toEqual(shape(a));
    expect(shape(c)).not.toEqual(shape(a));
    expect(rb.skipped.tiers).toBe(5);
    expect(rb.counts.ippools).toBe(3);
  });
});

describe("ChurnGenerator", () => {
  it("stamps every create and update with tabby.dev/changed-at and changes more than the stamp", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 6, podsPerNode: 8 });
    const before = new Map<string, KubeObject | undefined>();
    const keyOf = (c: ChurnChange): string => `${c.resource}/${c.namespace ?? ""}/${c.name}`;
    const changes: ChurnChange[] = [];
    const clockMs = 1_750_000_000_000;
    const churn = new ChurnGenerator(sim, {
      ratePerSecond: 10,
      seed: 4,
      clock: () => clockMs,
      onChange: (c) => changes.push(c),
    });
    const snapshot = (): void => {
      for (const res of [
        "pods",
        "nodes",
        "namespaces",
        "networkpolicies",
        "endpointslices",
        "globalnetworkpolicies",
        "networkpolicies.crd.projectcalico.org",
        "globalnetworksets",
        "networksets",
        "hostendpoints",
        "felixconfigurations",
        "ipamblocks",
        "blockaffinities",
      ]) {
        for (const o of sim.list(res))
          before.set(`${res}/${o.metadata.namespace ?? ""}/${o.metadata.name}`, o);
      }
    };
    snapshot();
    const ops = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const from = changes.length;
      churn.runOnce(1);
      for (const c of changes.slice(from)) {
        const now = sim.get(c.resource, c.namespace, c.name);
        const old = before.get(keyOf(c));
        if (c.type === "delete") {
          expect(now).toBeUndefined();
          expect(old).toBeDefined();
          continue;
        }
        expect(now!.metadata.annotations?.[CHANGED_AT_ANNOTATION]).toBe(String(clockMs));
        if (c.type === "create") {
          expect(old).toBeUndefined();
          continue;
        }
        const strip = (o: KubeObject): unknown => {
          const { resourceVersion: _r, generation: _g, annotations, ...meta } = o.metadata;
          const { [CHANGED_AT_ANNOTATION]: _s, ...rest } = annotations ?? {};
          const { status: _st, ...body } = o;
          return { ...body, metadata: { ...meta, annotations: rest } };
        };
        expect(strip(now!), keyOf(c)).not.toEqual(strip(old!));
      }
      snapshot();
      for (const [op, n] of Object.entries(churn.stats.byOp)) if (n > 0) ops.add(op);
    }
    expect(churn.stats.changes).toBe(changes.length);
    expect(churn.stats.errors).toBe(0);
    expect([...ops].sort()).toEqual(
      [
        "block-affinity",
        "calico-policy",
        "endpoint-slice",
        "felix-config",
        "host-endpoint",
        "k8s-policy",
        "namespace-label",
        "network-set",
        "node",
        "pod-create",
        "pod-delete",
        "pod-label",
      ].sort(),
    );
    expect(changes.some((c) => c.type === "create" && c.resource === "blockaffinities")).toBe(true);
    expect(changes.some((c) => c.type === "delete" && c.resource === "pods")).toBe(true);
  });

  it("runs at the given rate on timers, and stops on stop() or abort", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 4, podsPerNode: 6 });
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const controller = new AbortController();
    const churn = new ChurnGenerator(sim, { ratePerSecond: 200, seed: 1, signal: controller.signal });
    churn.start();
    expect(churn.isRunning).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(churn.changes).toBeGreaterThanOrEqual(195);
    expect(churn.changes).toBeLessThanOrEqual(202);
    vi.advanceTimersByTime(2000);
    expect(churn.changes).toBeGreaterThanOrEqual(595);
    expect(churn.changes).toBeLessThanOrEqual(602);
    controller.abort();
    const stopped = churn.changes;
    vi.advanceTimersByTime(2000);
    expect(churn.changes).toBe(stopped);
    expect(churn.isRunning).toBe(false);
    expect(vi.getTimerCount()).toBe(0);

    const second = new ChurnGenerator(sim, { ratePerSecond: 50 });
    second.start();
    vi.advanceTimersByTime(1000);
    second.stop();
    const n = second.changes;
    expect(n).toBeGreaterThanOrEqual(48);
    vi.advanceTimersByTime(1000);
    expect(second.changes).toBe(n);
  });

  it("does not pile up debt when it falls behind: the excess is counted as lagged", async () => {
    const sim = await startTestSim();
    seedCluster(sim, { nodes: 3, podsPerNode: 4 });
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let now = 0;
    const churn = new ChurnGenerator(sim, { ratePerSecond: 100, clock: () => now });
    churn.start();
    now = 10_000; // ten seconds pass while the loop was blocked
    vi.advanceTimersByTime(10);
    expect(churn.changes).toBeLessThanOrEqual(26);
    expect(churn.stats.lagged).toBeGreaterThanOrEqual(970);
    churn.stop();
  });

  it("makes the same changes for the same seed", async () => {
    const run = async (): Promise<string[]> => {
      const sim = await startTestSim();
      seedCluster(sim, { nodes: 4, podsPerNode: 5, seed: 2 });
      const seen: string[] = [];
      new ChurnGenerator(sim, {
        ratePerSecond: 1,
        seed: 33,
        onChange: (c) => seen.push(`${c.type} ${c.resource} ${c.namespace ?? ""}/${c.name}`),
      }).runOnce(150);
      return seen;
    };
    const [a, b] = [await run(), await run()];
    expect(a.length).toBeGreaterThanOrEqual(150);
    expect(b).toEqual(a);
  });
});
