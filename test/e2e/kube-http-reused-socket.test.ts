import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DatastoreListError } from "../../src/server/datastore/errors.js";
import { KubeHttp } from "../../src/server/datastore/kube-http.js";
import { kubeConfigFor } from "../../src/sim/kubeconfig.js";

const LIST = JSON.stringify({ kind: "IPPoolList", metadata: { resourceVersion: "7" }, items: [] });

/**
 * A loopback server that answers with an empty list, except that `drop(n, socketRequest)` decides, per
 * request, to close the connection without an answer: n counts every request, socketRequest those on the
 * request's connection (1 for a new one).
 */
async function server(drop: (n: number, socketRequest: number) => boolean): Promise<{
  url: string;
  requests: () => number;
  connections: () => number;
  close: () => Promise<void>;
}> {
  let requests = 0;
  const perSocket = new WeakMap<Socket, number>();
  const sockets = new Set<Socket>();
  const srv: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const onSocket = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, onSocket);
    if (drop(requests, onSocket)) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" }).end(LIST);
  });
  srv.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  let connections = 0;
  srv.on("connection", () => connections++);
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(drop: (n: number, socketRequest: number) => boolean) {
  const srv = await server(drop);
  cleanups.push(srv.close);
  const http = new KubeHttp(kubeConfigFor(srv.url), { requestTimeoutMs: 5_000, maxListBytes: 1 << 20 });
  cleanups.push(() => http.destroy());
  const list = () =>
    http.list(
      "/apis/crd.projectcalico.org/v1/ippools",
      { limit: "1" },
      new AbortController().signal,
      "ippools",
    );
  return { srv, http, list };
}

describe("KubeHttp on a kept-alive connection the server closed", () => {
  it("sends a request once more on a new connection when a reused one is closed before any answer", async () => {
    // The second request on a connection is dropped: the keep-alive race, as when the API server closes
    // an idle connection just as a request goes out on it.
    const { srv, list } = await setup((_n, onSocket) => onSocket === 2);
    expect((await list()).resourceVersion).toBe("7");
    expect((await list()).resourceVersion).toBe("7");
    expect(srv.requests()).toBe(3);
    expect(srv.connections()).toBe(2);
  });

  it("does not retry a request that failed on a new connection", async () => {
    const { srv, list } = await setup(() => true);
    await expect(list()).rejects.toThrow(DatastoreListError);
    expect(srv.requests()).toBe(1);
  });

  it("retries once only: a request dropped again on the new connection fails", async () => {
    // The first request is answered (the connection is kept), every later one dropped.
    const { srv, list } = await setup((n) => n > 1);
    expect((await list()).resourceVersion).toBe("7");
    await expect(list()).rejects.toThrow(/socket hang up/);
    expect(srv.requests()).toBe(3);
  });
});
