import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { RESOURCES } from "../../src/server/datastore/index.js";
import { checkAuthSettings, loadServeConfig } from "../../src/server/config.js";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface Doc {
  kind: string;
  rules?: Rule[];
  spec?: {
    template?: {
      spec: {
        terminationGracePeriodSeconds: number;
        containers: { env: { name: string; value: string }[] }[];
      };
    };
  };
}

describe("deploy/tabby.yaml", () => {
  const docs = parseAllDocuments(
    readFileSync(new URL("../../deploy/tabby.yaml", import.meta.url), "utf8"),
  ).map((d) => d.toJS() as Doc);

  it("lets the server list and watch every upstream resource, create tokenreviews, and nothing more", () => {
    const role = docs.find((d) => d.kind === "ClusterRole");
    const granted = new Set<string>();
    const reviews = (role?.rules ?? []).filter((r) => r.apiGroups.includes("authentication.k8s.io"));
    expect(reviews).toEqual([
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
    ]);
    for (const rule of role?.rules ?? []) {
      if (rule === reviews[0]) continue;
      expect(rule.verbs.sort()).toEqual(["list", "watch"]);
      for (const g of rule.apiGroups) for (const r of rule.resources) granted.add(`${g}/${r}`);
    }
    const needed = new Set(RESOURCES.map((r) => `${r.group}/${r.plural}`));
    expect([...granted].sort()).toEqual([...needed].sort());
  });

  it("drains within the termination grace period, with settings the server accepts", () => {
    const deployment = docs.find((d) => d.kind === "Deployment")!;
    const pod = deployment.spec!.template!.spec;
    const env = Object.fromEntries(pod.containers[0]!.env.map((e) => [e.name, e.value]));
    const config = loadServeConfig({}, env);
    expect(config.drainMs).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);
  });

  it("is secure by default: TLS from a mounted Secret and ServiceAccount tokens, never anonymous", () => {
    const deployment = docs.find((d) => d.kind === "Deployment")!;
    const pod = deployment.spec!.template!.spec as unknown as {
      containers: {
        env: { name: string; value: string }[];
        volumeMounts: { name: string; mountPath: string }[];
      }[];
      volumes: { name: string; secret?: { secretName: string } }[];
    };
    const container = pod.containers[0]!;
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    const auth = checkAuthSettings(loadServeConfig({}, env));
    expect(auth).toMatchObject({ isTls: true, isTokenReview: true, isAnonymousOnly: false });
    expect(env.TABBY_INSECURE_ALLOW_ANONYMOUS).toBeUndefined();
    const mount = container.volumeMounts.find((m) => env.TABBY_TLS_CERT_FILE!.startsWith(`${m.mountPath}/`));
    expect(pod.volumes.find((v) => v.name === mount?.name)?.secret?.secretName).toBe("tabby-tls");
  });
});
