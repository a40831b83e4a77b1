import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createResources,
  findResource,
  RESOURCES,
  resourceId,
  resourcesForKinds,
} from "../../src/server/datastore/index.js";
import { ALL_KINDS, CRD_KINDS, NAMESPACED_KINDS, viewsOfKind } from "../../src/snapshot/kinds.js";

const CRD_DIR = join(import.meta.dirname, "../../calico/crds");

function manifests(): { kind: string; plural: string; isNamespaced: boolean; group: string }[] {
  return readdirSync(CRD_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => {
      const text = readFileSync(join(CRD_DIR, f), "utf8");
      const pick = (re: RegExp): string => re.exec(text)?.[1] ?? "";
      return {
        kind: pick(/^\s+kind: (\w+)\s*$/m),
        plural: pick(/^\s+plural: (\w+)\s*$/m),
        isNamespaced: pick(/^\s+scope: (\w+)\s*$/m) === "Namespaced",
        group: pick(/^\s+group: ([\w.]+)\s*$/m),
      };
    });
}

describe("upstream resource registry", () => {
  it("covers every Calico kind; only Profile has two sources", () => {
    for (const kind of ALL_KINDS) {
      const producers = RESOURCES.filter((r) => r.kinds.includes(kind)).map(resourceId);
      if (kind === "Profile") expect(producers.sort()).toEqual(["namespaces", "serviceaccounts"]);
      else expect(producers, kind).toHaveLength(1);
    }
  });

  it("matches the CRD manifests: group, plural, scope", () => {
    const crds = manifests();
    expect(crds).toHaveLength(CRD_KINDS.length);
    for (const m of crds) {
      const r = RESOURCES.find((x) => x.group === m.group && x.plural === m.plural);
      expect(r, m.plural).toBeDefined();
      expect(r!.kinds).toEqual([m.kind]);
      expect(r!.namespaced).toBe(m.isNamespaced);
      expect(NAMESPACED_KINDS.has(m.kind as never)).toBe(m.isNamespaced);
      expect(r!.isOptional).toBe(true);
    }
  });

  it("lists each resource's views from kinds.ts", () => {
    for (const r of RESOURCES) {
      const views = new Set(r.kinds.flatMap((k) => viewsOfKind(k)));
      expect(new Set(r.views)).toEqual(views);
    }
    expect(findResource("pods")!.views).toContain("felix");
    expect(findResource("ipamhandles")!.views).toEqual([]);
  });

  it("names resources like the simulator: networkpolicies is Kubernetes', Calico's carries its group", () => {
    expect(findResource("networkpolicies")!.group).toBe("networking.k8s.io");
    expect(findResource("networkpolicies.crd.projectcalico.org")!.kinds).toEqual(["NetworkPolicy"]);
    expect(findResource("networkpolicies.networking.k8s.io")!.kinds).toEqual(["KubernetesNetworkPolicy"]);
    expect(new Set(RESOURCES.map(resourceId)).size).toBe(RESOURCES.length);
  });

  it("gives EndpointSlice a v1beta1 fallback and marks it optional", () => {
    const eps = findResource("endpointslices")!;
    expect(eps.versions).toEqual(["v1", "v1beta1"]);
    expect(eps.isOptional).toBe(true);
    expect(findResource("pods")!.isOptional).toBe(false);
  });

  it("owns keys by prefix: Namespaces own Profile/kns., ServiceAccounts Profile/ksa.", () => {
    expect(findResource("namespaces")!.keyPrefixes).toEqual(["Profile/kns."]);
    expect(findResource("serviceaccounts")!.keyPrefixes).toEqual(["Profile/ksa."]);
  });

  it("restricts to the resources producing the requested kinds", () => {
    expect(resourcesForKinds(["Profile", "IPPool"]).map(resourceId).sort()).toEqual([
      "ippools",
      "namespaces",
      "serviceaccounts",
    ]);
    expect(resourcesForKinds(undefined)).toHaveLength(RESOURCES.length);
  });

  it("reads the Calico kinds from projectcalico.org/v3 when asked, as they are (no v1 metadata unpacking)", () => {
    const v3 = createResources({ calicoApiGroup: "projectcalico.org/v3" });
    const v1 = createResources();
    expect(v3).toHaveLength(v1.length);
    const pools = v3.find((r) => r.plural === "ippools");
    expect([pools?.group, pools?.versions]).toEqual(["projectcalico.org", ["v3"]]);
    expect(v3.map(resourceId)).toContain("networkpolicies.projectcalico.org");
    expect(v3.find((r) => r.plural === "pods")?.group).toBe("");
    const uid = "d2d6a1e4-8b1c-4c3e-9f0a-3c5e7a9b1d2f";
    const pool = { metadata: { name: "p", uid, resourceVersion: "1" }, spec: { cidr: "10.0.0.0/16" } };
    const fromV3 = pools?.convert(pool);
    const fromV1 = v1.find((r) => r.plural === "ippools")?.convert(pool);
    expect(fromV3?.key).toBe("IPPool/p");
    expect(fromV3?.value?.spec).toEqual(fromV1?.value?.spec);
    // The v3 CR's uid is the resource's; a v1 CR's is derived (ConvertUID), see convert-crd.test.ts.
    expect(fromV3?.value).toMatchObject({ metadata: { uid } });
    expect(fromV1?.value).not.toMatchObject({ metadata: { uid } });
    expect(findResource("ippools.projectcalico.org")?.group).toBe("projectcalico.org");
    expect(findResource("ippools.projectcalico.org")?.convert(pool)).toEqual(fromV3);
  });
});
