import { describe, expect, it, onTestFinished } from "vitest";
import { SimErrorCode, startSimulator } from "../../src/sim/index.js";
import { entries, http, openWatch, podBody, startTestSim } from "./sim-test-utils.js";

describe("simulator writes over HTTP", () => {
  it("creates, gets, updates (409 on a stale resourceVersion), patches and deletes", async () => {
    const sim = await startTestSim();
    const base = `${sim.url}/api/v1/namespaces/default/pods`;
    const created = await http("POST", base, podBody("web"));
    expect(created.status).toBe(201);
    const meta = created.body.metadata;
    expect(meta).toMatchObject({ name: "web", namespace: "default", generation: 1 });
    expect(meta.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(meta.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(meta.resourceVersion).toBe(sim.resourceVersion);

    const again = await http("POST", base, podBody("web"));
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      kind: "Status",
      reason: "AlreadyExists",
      code: 409,
      details: { name: "web" },
    });

    const got = await http("GET", `${base}/web`);
    expect(got.body.metadata.uid).toBe(meta.uid);

    const edited = { ...got.body, spec: { ...got.body.spec, nodeName: "node-2" } };
    const updated = await http("PUT", `${base}/web`, edited);
    expect(updated.status).toBe(200);
    expect(updated.body.metadata.generation).toBe(2);
    expect(Number(updated.body.metadata.resourceVersion)).toBeGreaterThan(Number(meta.resourceVersion));
    expect(updated.body.metadata.uid).toBe(meta.uid);

    const stale = await http("PUT", `${base}/web`, edited); // still carries the old resourceVersion
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe("Conflict");

    const merged = await http(
      "PATCH",
      `${base}/web`,
      { metadata: { labels: { tier: "x", app: null } } },
      "application/merge-patch+json",
    );
    expect(merged.status).toBe(200);
    expect(merged.body.metadata.labels).toEqual({ tier: "x" });
    const jsonPatched = await http(
      "PATCH",
      `${base}/web`,
      [{ op: "replace", path: "/spec/nodeName", value: "node-3" }],
      "application/json-patch+json",
    );
    expect(jsonPatched.body.spec.nodeName).toBe("node-3");
    const stalePatch = await http(
      "PATCH",
      `${base}/web`,
      { metadata: { resourceVersion: meta.resourceVersion } },
      "application/merge-patch+json",
    );
    expect(stalePatch.status).toBe(409);
    const badType = await http("PATCH", `${base}/web`, {}, "text/plain");
    expect(badType.status).toBe(415);

    const noop = await http(
      "PATCH",
      `${base}/web`,
      { metadata: { labels: { tier: "x" } } },
      "application/merge-patch+json",
    );
    expect(noop.body.metadata.resourceVersion).toBe(jsonPatched.body.metadata.resourceVersion);

    const deleted = await http("DELETE", `${base}/web`);
    expect(deleted.status).toBe(200);
    expect((await http("GET", `${base}/web`)).status).toBe(404);
    const gone = await http("DELETE", `${base}/web`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ kind: "Status", reason: "NotFound", code: 404 });
    expect(sim.requestCounts).toMatchObject({
      "create pods": 2,
      "update pods": 2,
      "patch pods": 5,
      "delete pods": 2,
      "get pods": 2,
    });
  });

  it("rejects bad bodies: 400 for unparsable JSON or a mismatch with the URL, 422 for an invalid object", async () => {
    const sim = await startTestSim();
    const base = `${sim.url}/api/v1/namespaces/default/pods`;
    expect((await http("POST", base, "{not json")).status).toBe(400);
    expect((await http("POST", base, { kind: "Node", metadata: { name: "x" } })).status).toBe(400);
    expect((await http("POST", base, { metadata: { name: "x", namespace: "other" } })).status).toBe(400);
    const noName = await http("POST", base, { metadata: {} });
    expect(noName.status).toBe(422);
    expect(noName.body).toMatchObject({ reason: "Invalid", code: 422 });
    expect((await http("POST", base, { metadata: { name: "Bad_Name" } })).status).toBe(422);
    expect((await http("POST", base, "[1,2]")).status).toBe(422);
    expect((await http("POST", base, { metadata: { name: "l", labels: { a: 1 } } })).status).toBe(422);
    const generated = await http("POST", base, { metadata: { generateName: "web-" } });
    expect(generated.body.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
    expect((await http("PUT", `${base}/other`, { metadata: { name: "web" } })).status).toBe(400);
    expect((await http("PUT", `${base}/missing`, { metadata: { name: "missing" } })).status).toBe(404);
    expect((await http("POST", `${sim.url}/api/v1/namespaces/default/nodes`, {})).status).toBe(404);
    expect((await http("DELETE", base)).status).toBe(405);
    expect(sim.stats.failedRequests).toBeGreaterThanOrEqual(11);
  });

  it("accepts a create with the namespace from the path, and ignores any bearer token", async () => {
    const sim = await startTestSim();
    const res = await fetch(`${sim.url}/apis/crd.projectcalico.org/v1/namespaces/shop/networkpolicies`, {
      method: "POST",
      headers: { authorization: "Bearer whatever", "content-type": "application/json" },
      body: JSON.stringify({ metadata: { name: "allow" }, spec: { selector: "all()" } }),
    });
    expect(res.status).toBe(201);
    const [np] = sim.list("networkpolicies.crd.projectcalico.org");
    expect(np).toMatchObject({
      apiVersion: "crd.projectcalico.org/v1",
      kind: "NetworkPolicy",
      metadata: { namespace: "shop" },
    });
    expect(sim.list("networkpolicies")).toEqual([]);
  });
});

describe("simulator CRDs and discovery", () => {
  it("answers 404 for a CRD that is not installed, then serves it once installed", async () => {
    const sim = await startTestSim({ installedCrds: ["ippools"] });
    const url = `${sim.url}/apis/crd.projectcalico.org/v1/tiers`;
    const missing = await http("GET", url);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ kind: "Status", reason: "NotFound", code: 404 });
    expect(() => sim.create("tiers", { metadata: { name: "t" } })).toThrow(
      expect.objectContaining({ code: SimErrorCode.resourceNotFound }),
    );
    let group = await http("GET", `${sim.url}/apis/crd.projectcalico.org/v1`);
    expect(entries(group.body, "resources").map((r) => r.name)).toEqual(["ippools", "ippools/status"]);

    sim.installCrd("tiers");
    expect((await http("GET", url)).body).toMatchObject({ kind: "TierList", items: [] });
    group = await http("GET", `${sim.url}/apis/crd.projectcalico.org/v1`);
    expect(entries(group.body, "resources").map((r) => r.name)).toContain("tiers");
    sim.create("tiers", { metadata: { name: "security" }, spec: { order: 100 } });

    const w = openWatch(url);
    await w.count(1);
    sim.uninstallCrd("tiers");
    await w.ended;
    expect((await http("GET", url)).status).toBe(404);
    sim.installCrd("tiers");
    expect((await http("GET", url)).body.items).toEqual([]);
  });

  it("serves discovery for core, groups and versions, with scope and kind from the manifests", async () => {
    const sim = await startTestSim({ endpointSliceVersion: "v1beta1" });
    const api = await http("GET", `${sim.url}/api`);
    expect(api.body).toMatchObject({ kind: "APIVersions", versions: ["v1"] });
    const core = await http("GET", `${sim.url}/api/v1`);
    const pods = entries(core.body, "resources").find((r) => r.name === "pods");
    expect(pods).toMatchObject({
      kind: "Pod",
      namespaced: true,
      verbs: expect.arrayContaining(["list", "watch"]),
    });
    expect(entries(core.body, "resources").find((r) => r.name === "nodes")).toMatchObject({
      namespaced: false,
    });
    const groups = await http("GET", `${sim.url}/apis`);
    const names = entries(groups.body, "groups").map((g) => g.name);
    expect(names).toEqual(
      expect.arrayContaining(["crd.projectcalico.org", "networking.k8s.io", "discovery.k8s.io"]),
    );
    const discovery = entries(groups.body, "groups").find((g) => g.name === "discovery.k8s.io");
    expect(discovery?.preferredVersion).toMatchObject({ version: "v1beta1" });
    expect((await http("GET", `${sim.url}/apis/discovery.k8s.io/v1/endpointslices`)).status).toBe(404);
    expect(
      (await http("GET", `${sim.url}/apis/discovery.k8s.io/v1beta1/endpointslices`)).body.apiVersion,
    ).toBe("discovery.k8s.io/v1beta1");
    const calico = await http("GET", `${sim.url}/apis/crd.projectcalico.org/v1`);
    const byName = new Map(entries(calico.body, "resources").map((r) => [r.name, r]));
    expect(byName.get("networkpolicies")).toMatchObject({ kind: "NetworkPolicy", namespaced: true });
    expect(byName.get("ipamblocks")).toMatchObject({ kind: "IPAMBlock", namespaced: false });
    expect(byName.get("caliconodestatuses")).toMatchObject({ kind: "CalicoNodeStatus", namespaced: false });
    expect([...byName.keys()].filter((n) => !n.includes("/"))).toHaveLength(22);
    expect((await http("GET", `${sim.url}/apis/nope/v1`)).status).toBe(404);
    expect((await http("GET", `${sim.url}/version`)).body.major).toBe("1");
  });

  it("refuses a host that is not loopback", async () => {
    for (const host of ["0.0.0.0", "10.1.2.3", "example.com", "::"]) {
      await expect(startSimulator({ host })).rejects.toMatchObject({ code: SimErrorCode.nonLoopback });
    }
    const sim = await startSimulator({ host: "::1" });
    onTestFinished(() => sim.close());
    expect(sim.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await http("GET", `${sim.url}/api/v1/pods`)).status).toBe(200);
  });
});
