import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { Datastore } from "../../src/server/datastore/index.js";
import { kubeConfigFor } from "../../src/sim/index.js";
import { HubSink, quietLogger } from "../support/datastore-harness.js";

const POOLS = "/apis/crd.projectcalico.org/v1/ippools";

function pool(name: string, rv: string, cidr: string): object {
  return {
    apiVersion: "crd.projectcalico.org/v1",
    kind: "IPPool",
    // A UUID, as an API server gives (Calico derives the v3 uid from it and refuses anything else).
    metadata: {
      name,
      uid: `6f1c2a3b-0000-4000-8000-${Buffer.from(name).toString("hex").padStart(12, "0").slice(-12)}`,
      resourceVersion: rv,
    },
    spec: { cidr },
  };
}

/**
 * A bare API server for one resource, to send what the simulator never does: an event split across
 * chunks, then a line that is not JSON; the next watch must resume from the last good resourceVersion.
 */
async function startBrokenServer(): Promise<{ url: string; watchRvs: string[] }> {
  const watchRvs: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== POOLS) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"kind":"Status","code":404}');
      return;
    }
    if (url.searchParams.get("watch") !== "1") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "IPPoolList",
          metadata: { resourceVersion: "10" },
          items: [pool("a", "5", "10.1.0.0/16")],
        }),
      );
      return;
    }
    watchRvs.push(url.searchParams.get("resourceVersion") ?? "");
    res.writeHead(200, { "content-type": "application/json" });
    if (watchRvs.length === 1) {
      const line = JSON.stringify({ type: "ADDED", object: pool("b", "11", "10.2.0.0/16") }) + "\n";
      res.write(line.slice(0, 25));
      setTimeout(() => {
        res.write(line.slice(25));
        res.write('{"type":"MODIFIED","object":{"metadata":\n'); // broken
      }, 20);
      return; // left open: the client must cut it
    }
    res.write(JSON.stringify({ type: "MODIFIED", object: pool("b", "12", "10.3.0.0/16") }) + "\n");
    // left open until the client closes
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, watchRvs };
}

describe("Datastore: undecodable watch stream", () => {
  it("counts the decode error, cuts the watch and resumes from the last good resourceVersion", async () => {
    const srv = await startBrokenServer();
    const sink = new HubSink();
    const registry = new Registry();
    const ds = new Datastore({
      kubeConfig: kubeConfigFor(srv.url),
      sink,
      logger: quietLogger,
      registry,
      options: { kinds: ["IPPool"], backoffInitialMs: 5, backoffMaxMs: 20 },
    });
    onTestFinished(() => ds.close());
    ds.start();

    await vi.waitFor(
      () => {
        const b = sink.hub.store.valueOf("IPPool/b");
        expect(b?.spec).toEqual({ cidr: "10.3.0.0/16" });
      },
      { timeout: 5000, interval: 10 },
    );
    expect(srv.watchRvs).toEqual(["10", "11"]);
    expect(sink.hub.store.valueOf("IPPool/a")?.spec).toEqual({ cidr: "10.1.0.0/16" });
    const restarts = await registry.getSingleMetric("tabby_upstream_watch_restarts_total")!.get();
    expect(restarts.values).toContainEqual({ labels: { kind: "IPPool", reason: "decode" }, value: 1 });
    expect(sink.state("IPPool")).toBe("in-sync");
  });
});
