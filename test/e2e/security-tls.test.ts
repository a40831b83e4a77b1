/**
 * TLS on the agent port with real sockets and a CA generated in the test: wss with the client library,
 * mTLS identities (CN, URI SAN, wrong ones, none, another CA), and a certificate rotated on disk while a
 * session is open (the session lives on, new connections get the new certificate).
 */
import { mkdir, rename, symlink, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { get as httpsGet } from "node:https";
import { connect } from "node:tls";
import { Counter, Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { dumpView, tokenFromFile } from "../../src/cli/dump.js";
import { ClientErrorCode } from "../../src/client/index.js";
import { PolicyAuthenticator, TlsFileWatcher } from "../../src/server/auth/index.js";
import { startHttpServers } from "../../src/server/http/index.js";
import type { AllowedCertificateIdentity } from "../../src/server/auth/index.js";
import { createTestPki } from "../support/pki.js";
import type { KeyPair, TestPki } from "../support/pki.js";
import { inSync, makeClient } from "./client-test-utils.js";
import {
  RawClient,
  expectStillReceiving,
  hello,
  metricValue,
  resource,
  silentLogger,
  startFanout,
  waitFor,
} from "./fanout-harness.js";

const SERVER_SAN = ["IP:127.0.0.1", "DNS:localhost"];

async function serverPki(): Promise<{ pki: TestPki; server: KeyPair }> {
  const pki = await createTestPki();
  const server = await pki.issue("server", { cn: "tabby-server", san: SERVER_SAN, usage: "server" });
  return { pki, server };
}

function mtls(pki: TestPki, server: KeyPair, allowed: AllowedCertificateIdentity) {
  return startFanout({
    tls: { context: { cert: server.cert, key: server.key, ca: pki.ca.cert }, isClientCertRequested: true },
    authenticator: new PolicyAuthenticator({ certificate: allowed, isAnonymousAllowed: false }),
  });
}

/** The SHA-256 fingerprint of the certificate a fresh TLS connection to `port` is served. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.once("error", reject);
  });
}

describe("wss with the client library", () => {
  it("syncs over TLS with a CA generated in the test", async () => {
    const { pki, server } = await serverPki();
    const h = await startFanout({
      tls: { context: { cert: server.cert, key: server.key }, isClientCertRequested: false },
    });
    h.server.upsert("IPPool/a", resource("IPPool", "a"));
    h.server.flushNow();
    const client = makeClient({ servers: [h.url], view: "felix", tls: { ca: pki.ca.cert } });
    client.start();
    await inSync(client);
    expect(client.get("IPPool/a")).toBeDefined();
  });

  it("refuses a server certificate from an unknown CA (and retries)", async () => {
    const { server } = await serverPki();
    const other = await createTestPki("other-ca");
    const h = await startFanout({
      tls: { context: { cert: server.cert, key: server.key }, isClientCertRequested: false },
    });
    const client = makeClient({
      servers: [h.url],
      view: "felix",
      tls: { ca: other.ca.cert },
      backoffInitialMs: 50,
    });
    client.start();
    const err = await new Promise<{ code: string }>((resolve) => client.once("error", resolve));
    expect(err.code).toBe(ClientErrorCode.connect);
  });

  it("sends its client certificate for mTLS", async () => {
    const { pki, server } = await serverPki();
    const agent = await pki.issue("agent", { cn: "typha-client", usage: "client" });
    const h = await mtls(pki, server, { commonNames: ["typha-client"], uriSans: [] });
    const client = makeClient({
      servers: [h.url],
      view: "felix",
      tls: { ca: pki.ca.cert, cert: agent.cert, key: agent.key },
    });
    client.start();
    await inSync(client);
    expect(await metricValue(h.registry, "tabby_auth_accepted_total", { method: "certificate" })).toBe(1);
  });
});

describe("metrics and health over HTTPS (--http-tls)", () => {
  it("serves /metrics over TLS and takes a rotated certificate for new connections", async () => {
    const { pki, server } = await serverPki();
    const next = await pki.issue("server-2", { cn: "tabby-server-2", san: SERVER_SAN, usage: "server" });
    const registry = new Registry();
    const http = await startHttpServers({
      host: "127.0.0.1",
      healthPort: 0,
      metricsPort: 0,
      registry,
      isReady: () => true,
      isLive: () => true,
      status: () => ({}),
      logger: silentLogger,
      tls: { cert: server.cert, key: server.key },
    });
    onTestFinished(() => http.close());
    new Counter({ name: "tabby_probe_total", help: "probe", registers: [registry] }).inc();
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet(
        {
          host: "127.0.0.1",
          port: http.metricsPort,
          path: "/metrics",
          ca: pki.ca.cert,
          servername: "localhost",
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve(text));
        },
      ).once("error", reject);
    });
    expect(body).toContain("tabby_probe_total 1");
    const before = await servedFingerprint(http.healthPort, pki.ca.cert);
    http.setSecureContext({ cert: next.cert, key: next.key });
    expect(await servedFingerprint(http.healthPort, pki.ca.cert)).not.toBe(before);
  });
});

describe("tabby dump's TLS and token options", () => {
  it("dumps a view over wss, reading the token file before each connection", async () => {
    const { pki, server } = await serverPki();
    const tokens: (string | undefined)[] = [];
    const h = await startFanout({
      tls: { context: { cert: server.cert, key: server.key }, isClientCertRequested: false },
      authenticator: {
        authenticate: (request) => {
          tokens.push(request.token);
          return Promise.resolve(
            request.token === "rotated-2"
              ? { ok: true, identity: { method: "token", subject: "t", node: undefined, isNodeBound: false } }
              : { ok: false, reason: "token-invalid", detail: "no" },
          );
        },
      },
    });
    h.server.upsert("IPPool/a", resource("IPPool", "a"));
    h.server.flushNow();
    const tokenFile = path.join(pki.dir, "token");
    await writeFile(tokenFile, "rotated-2\n");
    const lines = await dumpView({
      servers: [h.url],
      view: "felix",
      timeoutMs: 10_000,
      tls: { ca: pki.ca.cert },
      token: tokenFromFile(tokenFile),
    });
    expect(lines.map((l) => (JSON.parse(l) as { key: string }).key)).toEqual(["IPPool/a"]);
    expect(tokens).toEqual(["rotated-2"]);
  });
});

describe("mTLS identities", () => {
  it("accepts an allowed CN or URI SAN; refuses a wrong CN, a wrong SAN, no certificate and another CA with 4004", async () => {
    const { pki, server } = await serverPki();
    const spiffe = "spiffe://cluster.local/ns/calico-system/sa/calico-node";
    const h = await mtls(pki, server, { commonNames: ["typha-client"], uriSans: [spiffe] });
    const ca = pki.ca.cert;
    const byCn = await pki.issue("by-cn", { cn: "typha-client", usage: "client" });
    const bySan = await pki.issue("by-san", { cn: "whatever", san: [`URI:${spiffe}`], usage: "client" });
    const wrongCn = await pki.issue("wrong-cn", { cn: "intruder", usage: "client" });
    const wrongSan = await pki.issue("wrong-san", {
      cn: "x",
      san: ["URI:spiffe://cluster.local/ns/default/sa/x"],
      usage: "client",
    });
    const other = await createTestPki("other-ca");
    const foreign = await other.issue("foreign", { cn: "typha-client", usage: "client" });

    for (const good of [byCn, bySan]) {
      const c = await RawClient.live(h.url, hello(), { ca, cert: good.cert, key: good.key });
      await expectStillReceiving(h, c);
    }
    for (const bad of [wrongCn, wrongSan, foreign, undefined]) {
      const c = await RawClient.connect(h.url, hello(), {
        ca,
        ...(bad !== undefined && { cert: bad.cert, key: bad.key }),
      });
      expect(await c.closed).toBe(CloseCode.unauthorized);
      expect(c.messages("error")).toEqual([expect.objectContaining({ code: CloseCode.unauthorized })]);
    }
    expect(await metricValue(h.registry, "tabby_auth_refused_total", { reason: "identity-mismatch" })).toBe(
      2,
    );
    expect(await metricValue(h.registry, "tabby_auth_refused_total", { reason: "bad-certificate" })).toBe(1);
    expect(await metricValue(h.registry, "tabby_auth_refused_total", { reason: "no-credentials" })).toBe(1);
    expect(await metricValue(h.registry, "tabby_connections_dropped_total", { reason: "unauthorized" })).toBe(
      4,
    );
  });

  it("a client library with a refused certificate stops with ERR_CLIENT_REJECTED", async () => {
    const { pki, server } = await serverPki();
    const wrong = await pki.issue("wrong", { cn: "intruder", usage: "client" });
    const h = await mtls(pki, server, { commonNames: ["typha-client"], uriSans: [] });
    const client = makeClient({
      servers: [h.url],
      view: "felix",
      tls: { ca: pki.ca.cert, cert: wrong.cert, key: wrong.key },
    });
    client.start();
    const reason = await client.closed();
    expect(reason?.code).toBe(ClientErrorCode.rejected);
  });
});

describe("certificate rotation", () => {
  it("reloads a Secret-style ..data symlink swap: open sessions stay, new connections get the new certificate", async () => {
    const { pki, server } = await serverPki();
    const next = await pki.issue("server-2", { cn: "tabby-server-2", san: SERVER_SAN, usage: "server" });
    // The layout kubelet makes for a Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>.
    const mount = path.join(pki.dir, "mount");
    await mkdir(path.join(mount, "..v1"), { recursive: true });
    await writeFile(path.join(mount, "..v1", "tls.crt"), server.cert);
    await writeFile(path.join(mount, "..v1", "tls.key"), server.key);
    await symlink("..v1", path.join(mount, "..data"));
    await symlink("..data/tls.crt", path.join(mount, "tls.crt"));
    await symlink("..data/tls.key", path.join(mount, "tls.key"));

    let reloads = 0;
    let h: Awaited<ReturnType<typeof startFanout>> | undefined;
    const watcher = await TlsFileWatcher.start({
      paths: { certFile: path.join(mount, "tls.crt"), keyFile: path.join(mount, "tls.key") },
      logger: silentLogger,
      pollIntervalMs: 60_000, // the directory watch must see the swap, not the poll
      debounceMs: 20,
      onReload: (context) => {
        reloads++;
        h?.server.setSecureContext(context);
      },
    });
    try {
      h = await startFanout({ tls: { context: watcher.current, isClientCertRequested: false } });
      const ca = pki.ca.cert;
      const first = await RawClient.live(h.url, hello(), { ca });
      const before = await servedFingerprint(h.port, ca);

      // kubelet's update: the new files in a new directory, then ..data swapped atomically.
      await mkdir(path.join(mount, "..v2"));
      await writeFile(path.join(mount, "..v2", "tls.crt"), next.cert);
      await writeFile(path.join(mount, "..v2", "tls.key"), next.key);
      await symlink("..v2", path.join(mount, "..data_tmp"));
      await rename(path.join(mount, "..data_tmp"), path.join(mount, "..data"));
      await waitFor(() => reloads === 1);

      const after = await servedFingerprint(h.port, ca);
      expect(after).not.toBe(before);
      const second = await RawClient.live(h.url, hello(), { ca });
      await expectStillReceiving(h, first);
      await expectStillReceiving(h, second);
      expect(first.closeCode).toBeUndefined();

      // A broken update (key of another certificate) is refused and the current certificate kept.
      const broken = path.join(mount, "..v3");
      await mkdir(broken);
      await writeFile(path.join(broken, "tls.crt"), server.cert);
      await writeFile(path.join(broken, "tls.key"), next.key);
      await symlink("..v3", path.join(mount, "..data_tmp"));
      await rename(path.join(mount, "..data_tmp"), path.join(mount, "..data"));
      await watcher.check();
      expect(reloads).toBe(1);
      expect(await servedFingerprint(h.port, ca)).toBe(after);
      await unlink(path.join(mount, "..data"));
    } finally {
      watcher.close();
    }
  });

  it("falls back to polling when no watch event arrives", async () => {
    const { pki, server } = await serverPki();
    const next = await pki.issue("server-2", { cn: "tabby-server-2", san: SERVER_SAN, usage: "server" });
    const dir = path.join(pki.dir, "plain");
    await mkdir(dir);
    await writeFile(path.join(dir, "tls.crt"), server.cert);
    await writeFile(path.join(dir, "tls.key"), server.key);
    let reloads = 0;
    const watcher = await TlsFileWatcher.start({
      paths: { certFile: path.join(dir, "tls.crt"), keyFile: path.join(dir, "tls.key") },
      logger: silentLogger,
      pollIntervalMs: 50,
      debounceMs: 60_000, // watch events are held back: only the poll can reload in time
      onReload: () => reloads++,
    });
    try {
      await writeFile(path.join(dir, "tls.key"), next.key);
      await writeFile(path.join(dir, "tls.crt"), next.cert);
      await waitFor(() => reloads === 1);
      expect(Buffer.from(watcher.current.cert as Buffer).toString()).toBe(next.cert);
    } finally {
      watcher.close();
    }
  });
});
