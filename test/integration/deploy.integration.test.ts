/**
 * deploy/tabby.yaml on the real kube-apiserver 1.20 (RBAC authorization on): `kubectl apply
 * --dry-run=server` accepts every object (1.20 has no policy/v1, so the PodDisruptionBudget is the one
 * refused as policy/v1 and accepted as policy/v1beta1, as docs/OPERATIONS.md tells 1.20 users), and
 * `tabby serve` with a token of the manifest's ServiceAccount reaches ready: every view in sync.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { pino } from "pino";
import { Registry } from "prom-client";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { Datastore, RESOURCES } from "../../src/server/datastore/index.js";
import { spawnTabby } from "../../src/cli/ipc.js";
import type { StatusReport } from "../../src/server/fanout/status-report.js";
import { startCluster } from "./cluster.js";
import type { Cluster } from "./cluster.js";
import { waitFor } from "./harness/wait.js";
import { RecordingSink } from "./support/recording-sink.js";

const run = promisify(execFile);
const MANIFEST = new URL("../../deploy/tabby.yaml", import.meta.url).pathname;
const NAMESPACE = "calico-system";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
}

async function kubectl(
  kubeconfig: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string }> {
  const child = run("kubectl", ["--kubeconfig", kubeconfig, ...args], { timeout: 60_000 });
  if (stdin !== undefined) child.child.stdin?.end(stdin);
  try {
    const { stdout, stderr } = await child;
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: (e.stdout ?? "") + (e.stderr ?? "") };
  }
}

describe("deploy/tabby.yaml on kube-apiserver 1.20", () => {
  let cluster: Cluster;
  let dir: string;
  let adminKubeconfig: string;
  let objects: KubeObject[];
  /** kubeconfig with a token of the manifest's ServiceAccount (set by the serve test). */
  let saKubeconfig: string | undefined;

  beforeAll(async () => {
    cluster = await startCluster();
    dir = await mkdtemp(path.join(process.env.TABBY_INTEGRATION_RUN_DIR ?? os.tmpdir(), "tabby-deploy-"));
    adminKubeconfig = path.join(dir, "admin.kubeconfig");
    await writeFile(adminKubeconfig, cluster.kubeconfigYaml(), { mode: 0o600 });
    await cluster.request("POST", "/api/v1/namespaces", { metadata: { name: NAMESPACE } });
    objects = parseAllDocuments(await readFile(MANIFEST, "utf8")).map((d) => d.toJS() as KubeObject);
  });
  afterAll(async () => {
    await cluster?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("passes kubectl apply --dry-run=server; only the policy/v1 PodDisruptionBudget needs policy/v1beta1", async () => {
    const base = await kubectl(adminKubeconfig, ["apply", "--dry-run=server", "-f", MANIFEST]);
    for (const o of objects.filter((x) => x.kind !== "PodDisruptionBudget"))
      expect(base.out).toMatch(
        new RegExp(
          `${o.kind.toLowerCase()}[.a-z0-9/]*/${o.metadata.name} (created|configured) \\(server dry run\\)`,
        ),
      );
    // The only error: 1.20 does not know policy/v1.
    const errors = base.out.split("\n").filter((l) => /error/i.test(l));
    expect(errors.length, base.out).toBeGreaterThan(0);
    for (const e of errors)
      expect(e).toMatch(/PodDisruptionBudget.*policy\/v1|policy\/v1.*PodDisruptionBudget/);
    expect(base.code).not.toBe(0);

    const pdb = objects.find((o) => o.kind === "PodDisruptionBudget")!;
    const v1beta1 = path.join(dir, "pdb-v1beta1.yaml");
    await writeFile(v1beta1, stringify({ ...pdb, apiVersion: "policy/v1beta1" }));
    const legacy = await kubectl(adminKubeconfig, ["apply", "--dry-run=server", "-f", v1beta1]);
    expect(legacy.out).toContain("poddisruptionbudget.policy/tabby created (server dry run)");
    expect(legacy.code, legacy.out).toBe(0);
  });

  it("tabby serve with the ServiceAccount's token and the ClusterRole reaches in-sync on every view", async () => {
    const rbac = objects.filter((o) =>
      ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"].includes(o.kind),
    );
    expect(rbac).toHaveLength(3);
    const rbacFile = path.join(dir, "rbac.yaml");
    await writeFile(rbacFile, rbac.map((o) => stringify(o)).join("---\n"));
    const applied = await kubectl(adminKubeconfig, ["apply", "-f", rbacFile]);
    expect(applied.code, applied.out).toBe(0);
    await cluster.installCalicoCrds();

    const sa = rbac.find((o) => o.kind === "ServiceAccount")!;
    const tokenRequest = await cluster.request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${sa.metadata.namespace ?? NAMESPACE}/serviceaccounts/${sa.metadata.name}/token`,
      { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
    );
    const kubeconfig = path.join(dir, "tabby.kubeconfig");
    await writeFile(kubeconfig, cluster.kubeconfigYaml().replace(cluster.token, tokenRequest.status.token), {
      mode: 0o600,
    });
    saKubeconfig = kubeconfig;
    const tabby = await spawnTabby(loopbackServeArgs(kubeconfig));
    try {
      const health = `http://127.0.0.1:${String(tabby.ready.healthPort)}`;
      const report = await waitFor(
        async () => {
          const res = await fetch(`${health}/readyz`);
          if (res.status !== 200) return undefined;
          return (await (await fetch(`${health}/status`)).json()) as StatusReport;
        },
        { what: "tabby serve ready with the ServiceAccount's token", timeoutMs: 60_000, intervalMs: 250 },
      );
      const states = Object.values(report.kinds).map((k) => k.state);
      expect(states.length).toBeGreaterThan(20);
      expect(new Set(states)).toEqual(new Set(["in-sync"]));
    } finally {
      await tabby.stop(5000);
    }
  });

  it("breaks when any one resource or verb is taken out of the ClusterRole: the role is minimal", async () => {
    expect(saKubeconfig, "runs after the serve test").toBeDefined();
    const role = objects.find((o) => o.kind === "ClusterRole")!;
    const rules = role.rules!;
    const sa = objects.find((o) => o.kind === "ServiceAccount")!;
    const user = `system:serviceaccount:${sa.metadata.namespace ?? NAMESPACE}:${sa.metadata.name}`;
    const rolePath = `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role.metadata.name}`;

    const isAllowed = async (group: string, resource: string, verb: string): Promise<boolean> => {
      const review = await cluster.request<{ status: { allowed: boolean } }>(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: { user, resourceAttributes: { group, resource, verb } },
        },
      );
      return review.status.allowed;
    };
    const putRole = async (next: Rule[], removed: { group: string; resource: string; verb: string }) => {
      const current = await cluster.request<{ metadata: { resourceVersion: string } }>("GET", rolePath);
      await cluster.request("PUT", rolePath, {
        ...role,
        metadata: { ...role.metadata, resourceVersion: current.metadata.resourceVersion },
        rules: next,
      });
      // The authorizer's informer catches up within moments: wait until the review says so.
      await waitFor(
        async () => ((await isAllowed(removed.group, removed.resource, removed.verb)) ? undefined : true),
        {
          what: `${removed.verb} ${removed.group}/${removed.resource} revoked`,
          timeoutMs: 10_000,
          intervalMs: 50,
        },
      );
    };
    /** A Datastore with the ServiceAccount's token: resolves with the stale reason naming `plural`. */
    const staleReasonFor = async (plural: string): Promise<string> => {
      const { KubeConfig } = await import("@kubernetes/client-node");
      const kc = new KubeConfig();
      kc.loadFromFile(saKubeconfig!);
      const datastore = new Datastore({
        kubeConfig: kc,
        sink: new RecordingSink(),
        logger: pino({ level: "silent" }),
        registry: new Registry(),
        options: { staleAfterMs: 200, backoffInitialMs: 100, backoffMaxMs: 500 },
      });
      datastore.start();
      try {
        return await waitFor(
          async () => {
            const states = [...datastore.kindStates().values()];
            const hit = states.find((k) => k.state === "stale" && (k.reason ?? "").includes(`${plural}:`));
            return Promise.resolve(hit?.reason);
          },
          {
            what: `a kind stale because of ${plural}`,
            timeoutMs: 15_000,
            describeFailure: () => JSON.stringify(Object.fromEntries(datastore.kindStates())),
          },
        );
      } finally {
        await datastore.close();
      }
    };

    const variants: { label: string; rules: Rule[]; group: string; resource: string; verb: string }[] = [];
    rules.forEach((rule, i) => {
      const group = rule.apiGroups[0]!;
      for (const resource of rule.resources) {
        // tokenreviews (create) is used by --auth token only, not by the list/watch this test runs: the
        // auth tests cover it. Every other resource is one the datastore lists and watches.
        if (resource === "tokenreviews") continue;
        const next = structuredClone(rules);
        next[i]!.resources = rule.resources.filter((r) => r !== resource);
        variants.push({
          label: `${group}/${resource}`,
          rules: next.filter((r) => r.resources.length > 0),
          group,
          resource,
          verb: "list",
        });
      }
      for (const verb of rule.verbs) {
        if (rule.resources.includes("tokenreviews")) continue;
        const next = structuredClone(rules);
        next[i]!.verbs = rule.verbs.filter((v) => v !== verb);
        variants.push({
          label: `${verb} of rule ${i} (${group})`,
          rules: next.filter((r) => r.verbs.length > 0),
          group,
          resource: rule.resources[0]!,
          verb,
        });
      }
    });
    expect(variants.length).toBeGreaterThan(RESOURCES.length);
    try {
      for (const v of variants) {
        await putRole(v.rules, v);
        const reason = await staleReasonFor(v.resource);
        expect(reason, v.label).toMatch(/403|forbidden/i);
      }
    } finally {
      await putRole(rules, { group: "", resource: "pods", verb: "create" });
    }
  }, 240_000);
});
