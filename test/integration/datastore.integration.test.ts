/**
 * The Datastore against a real kube-apiserver 1.20.2 + etcd: every kind created, modified and deleted
 * through the API; a kube-apiserver restart mid-watch (a crash with writes and a compaction while it is
 * down, and a graceful restart under concurrent writes); and a 410 Gone forced by etcd compaction. After
 * each, the sink (a bare Hub) must equal the API's state converted with the datastore's `convert`:
 * nothing lost, nothing extra, and no key deleted twice.
 *
 * 410 and the watch cache: kube-apiserver serves watches from its watch cache, which keeps its own event
 * window and hides etcd compaction from a watch that is open or resumes inside the window. The 410 test
 * therefore runs against a second API server started with `--watch-cache=false`, and the datastore uses a
 * 2 s watch timeout so that every watch is re-opened (from its last resourceVersion, now compacted) soon
 * after the compaction. With the watch cache on, a restarted API server answers a watch from a
 * resourceVersion older than its fresh cache with 410 too: the restart test relies on that.
 */
import { pino } from "pino";
import { Counter, Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { Datastore, RESOURCES } from "../../src/server/datastore/index.js";
import { KubeHttp, parseListPage, peekContinue } from "../../src/server/datastore/kube-http.js";
import type { DatastoreOptions } from "../../src/server/datastore/index.js";
import { ALL_KINDS } from "../../src/snapshot/kinds.js";
import { startCluster } from "./cluster.js";
import type { Cluster } from "./cluster.js";
import { waitFor } from "./harness/wait.js";
import { waitForSinkToMatchApi } from "./support/api-state.js";
import { ALL_FIXTURES } from "./support/fixtures.js";
import type { ResourceFixture } from "./support/fixtures.js";
import { KubeObjects, refName } from "./support/kube-objects.js";
import type { ObjectRef } from "./support/kube-objects.js";
import { RecordingSink } from "./support/recording-sink.js";

const NAMESPACE = "tabby-it";
/** Quick retries: the restart tests should not wait out a production backoff. */
const TEST_OPTIONS: DatastoreOptions = { backoffInitialMs: 100, backoffMaxMs: 1_000 };

interface Running {
  readonly datastore: Datastore;
  readonly sink: RecordingSink;
  readonly registry: Registry;
}

/** Starts a datastore on a fresh recording sink, closed when the test ends, and waits until in sync. */
async function startDatastore(cluster: Cluster, options: DatastoreOptions = TEST_OPTIONS): Promise<Running> {
  const sink = new RecordingSink();
  const registry = new Registry();
  const datastore = new Datastore({
    kubeConfig: cluster.kubeConfig(),
    sink,
    logger: pino({ level: "silent" }),
    registry,
    options,
  });
  onTestFinished(() => datastore.close());
  datastore.start();
  await waitFor(
    async () => {
      const states = datastore.kindStates();
      const isInSync = states.size > 0 && [...states.values()].every((s) => s.state === "in-sync");
      return Promise.resolve(isInSync ? true : undefined);
    },
    {
      what: "every kind in sync",
      timeoutMs: 60_000,
      describeFailure: () => JSON.stringify(Object.fromEntries(datastore.kindStates())),
    },
  );
  return { datastore, sink, registry };
}

/** Per-kind values of a datastore counter. */
async function counterByKind(registry: Registry, name: string): Promise<Map<string, number>> {
  const metric = registry.getSingleMetric(name);
  if (!(metric instanceof Counter)) throw new Error(`no counter ${name}`);
  const out = new Map<string, number>();
  for (const v of (await metric.get()).values) {
    const kind = String(v.labels.kind);
    out.set(kind, (out.get(kind) ?? 0) + v.value);
  }
  return out;
}

function ref(fixture: ResourceFixture, suffix: string): ObjectRef {
  const name =
    fixture.plural === "namespaces" ? `tabby-ns-${suffix}` : `${fixture.kind.toLowerCase()}-${suffix}`;
  return { fixture, name, namespace: fixture.namespaced ? NAMESPACE : undefined };
}

/** The generation each object was created with: a pod's key names its node, which its generation picks. */
const createdGen = new Map<string, number>();

async function create(objects: KubeObjects, r: ObjectRef, gen: number): Promise<void> {
  createdGen.set(refName(r), gen);
  await objects.create(r, gen);
}

/** The snapshot key an object maps to, computed by the datastore's registry from the body it was created with. */
function keyOf(r: ObjectRef): string {
  const resource = RESOURCES.find((x) => x.group === r.fixture.group && x.plural === r.fixture.plural);
  if (resource === undefined) throw new Error(`no datastore resource ${r.fixture.id}`);
  const gen = createdGen.get(refName(r));
  if (gen === undefined) throw new Error(`${refName(r)} was not created by this test`);
  const key = resource.keyOf(r.fixture.make(r.name, r.namespace, gen));
  if (key === null) throw new Error(`no key for ${refName(r)}`);
  return key;
}

function kindsHeld(sink: RecordingSink): string[] {
  return ALL_KINDS.filter((kind) => sink.hub.store.countOfKind(kind) > 0);
}

function expectNoDuplicateDeletes(sink: RecordingSink): void {
  expect(Object.fromEntries(sink.duplicateDeletes())).toEqual({});
}

function expectDeletedOnce(sink: RecordingSink, refs: readonly ObjectRef[]): void {
  const counts = Object.fromEntries(refs.map((r) => [keyOf(r), sink.recordOf(keyOf(r)).effectiveDeletes]));
  expect(counts).toEqual(Object.fromEntries(refs.map((r) => [keyOf(r), 1])));
}

/** The objects every test works with: namespace tabby-it and the `workers` service account pods use. */
async function seedBase(objects: KubeObjects): Promise<void> {
  const nsFixture = ALL_FIXTURES.find((f) => f.plural === "namespaces")!;
  const saFixture = ALL_FIXTURES.find((f) => f.plural === "serviceaccounts")!;
  await objects.create({ fixture: nsFixture, name: NAMESPACE, namespace: undefined }, 0);
  await objects.create({ fixture: saFixture, name: "workers", namespace: NAMESPACE }, 0);
}

describe("Datastore against kube-apiserver 1.20 (watch cache on)", () => {
  let cluster: Cluster;
  let objects: KubeObjects;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.installCalicoCrds();
    objects = new KubeObjects(cluster);
    await seedBase(objects);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("lists, then follows creates, modifications and deletes of every kind", async () => {
    const { sink } = await startDatastore(cluster);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);

    const a = ALL_FIXTURES.map((f) => ref(f, "a"));
    const b = ALL_FIXTURES.map((f) => ref(f, "b"));
    for (const [i, r] of [...a, ...b].entries()) await create(objects, r, i + 1);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    // Every one of the Calico kinds went through the datastore.
    expect(kindsHeld(sink)).toEqual([...ALL_KINDS]);
    for (const r of [...a, ...b]) expect(sink.hub.store.has(keyOf(r)), refName(r)).toBe(true);

    for (const [i, r] of a.entries()) await objects.modify(r, 100 + i);
    for (const r of b) await objects.remove(r);
    const state = await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    for (const r of b) expect(state.has(keyOf(r)), refName(r)).toBe(false);
    for (const r of a) expect(sink.recordOf(keyOf(r)).upserts, refName(r)).toBeGreaterThanOrEqual(2);
    expectDeletedOnce(sink, b);
    expectNoDuplicateDeletes(sink);
  });

  it("pages lists one object at a time, asking for each page ahead from the one before, as kube-apiserver writes them", async () => {
    // The continue token as peekContinue reads it from the undecoded body equals the decoded one, for a
    // built-in list (metadata before items) and a custom resource's (metadata last), page after page.
    const http = new KubeHttp(cluster.kubeConfig(), { requestTimeoutMs: 10_000, maxListBytes: 1 << 26 });
    onTestFinished(() => http.destroy());
    const { signal } = new AbortController();
    // Two IPPools at least, so that the custom resource's list has a second page.
    const extra = ["x", "y"].map((suffix) =>
      ref(
        ALL_FIXTURES.find((f) => f.plural === "ippools")!,
        suffix,
      ),
    );
    for (const [i, r] of extra.entries()) await create(objects, r, 300 + i);
    onTestFinished(async () => {
      for (const r of extra) await objects.remove(r);
    });
    for (const path of ["/api/v1/namespaces", "/apis/crd.projectcalico.org/v1/ippools"]) {
      let token: string | undefined;
      let pages = 0;
      do {
        const query: Record<string, string> = { limit: "1", ...(token !== undefined && { continue: token }) };
        const body = await http.listBody(path, query, signal, path);
        const decoded = parseListPage(body, path);
        expect(peekContinue(body), `${path} page ${pages}`).toEqual({ token: decoded.continueToken });
        token = decoded.continueToken;
        pages++;
      } while (token !== undefined);
      expect(pages, path).toBeGreaterThanOrEqual(2);
    }
    const { sink } = await startDatastore(cluster, { ...TEST_OPTIONS, pageSize: 1 });
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
  });

  it("resyncs after a kube-apiserver crash mid-watch, with writes and a compaction while it was down", async () => {
    const { sink, registry, datastore } = await startDatastore(cluster);
    const fixtures = new Map(ALL_FIXTURES.map((f) => [f.id, f]));
    const c = ALL_FIXTURES.map((f) => ref(f, "c"));
    for (const [i, r] of c.entries()) await create(objects, r, 200 + i);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    expect(datastore.upstreamWatches).toBe(RESOURCES.length);
    sink.resetRecords();

    // What another API server replica could have done while this one was down, behind its back: deletes
    // of several kinds (pods, nodes, a namespace, Calico objects) and an edit of a Calico object.
    const deletedWhileDown = [
      "ippools.crd.projectcalico.org",
      "pods",
      "nodes",
      "namespaces",
      "networkpolicies.crd.projectcalico.org",
      "ipamblocks.crd.projectcalico.org",
    ].map((id) => ref(fixtures.get(id)!, "c"));
    const edited = ref(fixtures.get("globalnetworksets.crd.projectcalico.org")!, "c");
    await cluster.restartApiServer({
      signal: "SIGKILL",
      whileDown: async () => {
        for (const r of deletedWhileDown) {
          expect((await cluster.etcdctl(["del", objects.etcdKey(r)])).trim(), refName(r)).toBe("1");
        }
        const stored = JSON.parse(
          await cluster.etcdctl(["get", objects.etcdKey(edited), "--print-value-only"]),
        ) as { spec: { nets: string[] } };
        stored.spec.nets = ["198.51.100.0/24"];
        await cluster.etcdctl(["put", objects.etcdKey(edited), JSON.stringify(stored)]);
        await cluster.compactEtcd();
      },
    });

    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    expectDeletedOnce(sink, deletedWhileDown);
    const editedValue = sink.hub.store.valueOf(keyOf(edited)) as ResourceValue & {
      spec: { nets: string[] };
    };
    expect(editedValue.spec.nets).toEqual(["198.51.100.0/24"]);
    // The resumed watches were refused with 410 (older than the new API server's watch cache): relists.
    const gone = await counterByKind(registry, "tabby_upstream_gone_total");
    for (const kind of [
      "IPPool",
      "WorkloadEndpoint",
      "Node",
      "Profile",
      "NetworkPolicy",
      "GlobalNetworkSet",
    ]) {
      expect(gone.get(kind) ?? 0, kind).toBeGreaterThanOrEqual(1);
    }

    // And the watches work again.
    const deletedIds = new Set(deletedWhileDown.map((r) => r.fixture.id));
    for (const [i, r] of c.entries()) {
      if (!deletedIds.has(r.fixture.id)) await objects.modify(r, 300 + i);
    }
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    expectNoDuplicateDeletes(sink);
  });

  it("loses nothing when kube-apiserver restarts gracefully while objects keep changing", async () => {
    const { sink } = await startDatastore(cluster);
    const fixtures = ALL_FIXTURES.filter((f) => f.plural !== "namespaces");
    const d = fixtures.map((f) => ref(f, "d"));
    for (const [i, r] of d.entries()) await create(objects, r, 400 + i);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    sink.resetRecords();

    // Modify and delete held objects of every kind, and create new ones, through the restart; writes
    // that hit the outage are retried. The datastore sees each change either as a watch event or, when
    // the resumed watch is refused with 410, through the relist.
    const e = fixtures.map((f) => ref(f, "e"));
    const resilient = new KubeObjects(cluster, { retryWhileDown: true });
    const writer = (async () => {
      for (const [i, r] of d.entries()) await resilient.modify(r, 500 + i);
      for (const r of d.slice(0, 10)) await resilient.remove(r);
      for (const [i, r] of e.entries()) await create(resilient, r, 600 + i);
    })();
    await Promise.all([cluster.restartApiServer({ signal: "SIGTERM" }), writer]);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    for (const r of [...d.slice(10), ...e]) expect(sink.hub.store.has(keyOf(r)), refName(r)).toBe(true);
    expectDeletedOnce(sink, d.slice(0, 10));
    expectNoDuplicateDeletes(sink);
  });
});

describe("Datastore against kube-apiserver 1.20 (watch cache off): 410 Gone", () => {
  let cluster: Cluster;
  let objects: KubeObjects;

  beforeAll(async () => {
    cluster = await startCluster({ isWatchCacheEnabled: false });
    await cluster.installCalicoCrds();
    objects = new KubeObjects(cluster);
    await seedBase(objects);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("relists after etcd compaction expires the watches' resourceVersions, losing nothing", async () => {
    const a = ALL_FIXTURES.map((f) => ref(f, "a"));
    const b = ALL_FIXTURES.map((f) => ref(f, "b"));
    for (const [i, r] of [...a, ...b].entries()) await create(objects, r, i + 1);
    // A 2 s server-side watch timeout (jittered to 2-4 s): every watch is re-opened soon after compacting.
    const { sink, registry } = await startDatastore(cluster, { ...TEST_OPTIONS, watchTimeoutSeconds: 2 });
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);

    for (const [i, r] of a.entries()) await objects.modify(r, 100 + i);
    for (const r of b) await objects.remove(r);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);

    const goneBefore = await counterByKind(registry, "tabby_upstream_gone_total");
    const relistsBefore = await counterByKind(registry, "tabby_upstream_relists_total");
    await cluster.compactEtcd();
    // No writes now: each watch re-opens from its last resourceVersion, older than the compaction, gets
    // 410 Gone and relists.
    const kinds = [...new Set(RESOURCES.flatMap((r) => r.kinds))];
    let pending: string[] = kinds;
    await waitFor(
      async () => {
        const gone = await counterByKind(registry, "tabby_upstream_gone_total");
        const relists = await counterByKind(registry, "tabby_upstream_relists_total");
        pending = kinds.filter(
          (k) =>
            (gone.get(k) ?? 0) <= (goneBefore.get(k) ?? 0) ||
            (relists.get(k) ?? 0) <= (relistsBefore.get(k) ?? 0),
        );
        return pending.length === 0 ? true : undefined;
      },
      {
        what: "a 410 Gone and a relist for every kind",
        timeoutMs: 30_000,
        describeFailure: () => `kinds without a new 410 and relist: ${pending.join(", ")}`,
      },
    );

    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    for (const [i, r] of a.entries()) await objects.modify(r, 200 + i);
    for (const r of a.slice(0, 5)) await objects.remove(r);
    await waitForSinkToMatchApi(cluster, sink.hub, RESOURCES);
    expectDeletedOnce(sink, [...b, ...a.slice(0, 5)]);
    expectNoDuplicateDeletes(sink);
  });
});
