import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { KubeConfig } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { Datastore } from "../../src/server/datastore/index.js";
import { HubSink, quietLogger } from "../support/datastore-harness.js";

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI. */
function makeCerts(): Record<"ca" | "serverKey" | "serverCert" | "clientKey" | "clientCert", string> {
  const dir = mkdtempSync(join(tmpdir(), "tabby-tls-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const ssl = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  };
  ssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=tabby-test-ca",
  );
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1\n");
  for (const [name, cn] of [
    ["server", "127.0.0.1"],
    ["client", "tabby-test-client"],
  ] as const) {
    ssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    );
    const ext = name === "server" ? ["-extfile", "server.ext"] : [];
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      ...ext,
    );
  }
  const read = (f: string): string => readFileSync(join(dir, f), "utf8");
  return {
    ca: read("ca.crt"),
    serverKey: read("server.key"),
    serverCert: read("server.crt"),
    clientKey: read("client.key"),
    clientCert: read("client.crt"),
  };
}

describe("Datastore over TLS with a client certificate", () => {
  it("authenticates through the kubeconfig and keeps one connection for list and watches", async () => {
    const certs = makeCerts();
    const seenClients: string[] = [];
    let connections = 0;
    let watches = 0;
    const server = createServer(
      {
        key: certs.serverKey,
        cert: certs.serverCert,
        ca: certs.ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const cn = (req.socket as TLSSocket).getPeerCertificate().subject.CN;
        seenClients.push(Array.isArray(cn) ? cn.join(",") : (cn ?? ""));
        const url = new URL(req.url ?? "/", "https://x");
        res.setHeader("content-type", "application/json");
        if (url.pathname !== "/apis/crd.projectcalico.org/v1/ippools") {
          res.writeHead(404).end('{"kind":"Status","code":404}');
          return;
        }
        const pool = {
          metadata: { name: "tls-pool", uid: "7d0e5a8c-3f1b-4e2d-9a6c-1b3d5f7a9c0e", resourceVersion: "7" },
          spec: { cidr: "10.9.0.0/16" },
        };
        if (url.searchParams.get("watch") !== "1") {
          res.end(JSON.stringify({ metadata: { resourceVersion: "7" }, items: [pool] }));
          return;
        }
        watches++;
        const rv = String(7 + watches);
        res.write(JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: rv } } }) + "\n");
        if (watches === 1) res.end(); // the first watch ends cleanly: the next one reuses the connection
      },
    );
    server.on("secureConnection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    onTestFinished(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    const kc = new KubeConfig();
    kc.loadFromString(
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "c",
            cluster: {
              server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
              "certificate-authority-data": b64(certs.ca),
            },
          },
        ],
        users: [
          {
            name: "u",
            user: {
              "client-certificate-data": b64(certs.clientCert),
              "client-key-data": b64(certs.clientKey),
            },
          },
        ],
        contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
        "current-context": "ctx",
      }),
    );

    const sink = new HubSink();
    const ds = new Datastore({
      kubeConfig: kc,
      sink,
      logger: quietLogger,
      registry: new Registry(),
      options: { kinds: ["IPPool"], backoffInitialMs: 5, backoffMaxMs: 20 },
    });
    onTestFinished(() => ds.close());
    ds.start();

    await vi.waitFor(() => expect(watches).toBe(2), { timeout: 5000, interval: 10 });
    expect(sink.hub.store.valueOf("IPPool/tls-pool")?.spec).toEqual({ cidr: "10.9.0.0/16" });
    expect(sink.state("IPPool")).toBe("in-sync");
    expect(new Set(seenClients)).toEqual(new Set(["tabby-test-client"]));
    expect(seenClients.length).toBe(3); // list, watch, watch
    expect(connections).toBe(1);
    expect(ds.socketCount()).toBe(1);
  });
});
