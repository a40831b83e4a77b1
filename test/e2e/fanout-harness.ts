/**
 * Test harness for the fan-out server: a real FanoutServer on 127.0.0.1:0 and raw `ws` clients that speak
 * the protocol with proto's codec (not the client library) and keep a mirror of what they were sent.
 */
import type { PeerDirectory } from "../../src/server/replicas/peers.js";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { inflateRawSync } from "node:zlib";
import { pino } from "pino";
import { Registry } from "prom-client";
import { onTestFinished } from "vitest";
import { WebSocket } from "ws";
import type { ClientOptions } from "ws";
import { decodeEntryArray, decodeServerMessage, encodeMessage } from "../../proto/codec.js";
import { applyChanges, decodeDeltasFrame } from "../support/deltas.js";
import type {
  ClientMessage,
  Entry,
  HelloMessage,
  ResourceValue,
  ServerMessage,
  ViewName,
  WelcomeMessage,
} from "../../proto/messages.js";
import { FanoutServer } from "../../src/server/fanout/index.js";
import type { FanoutOptions } from "../../src/server/fanout/index.js";
import type { FanoutTls } from "../../src/server/fanout/index.js";
import type { Authenticator } from "../../src/server/auth/index.js";
import { Hub } from "../../src/snapshot/hub.js";
import type { HubOptions } from "../../src/snapshot/hub.js";
import { ALL_KINDS, VIEWS } from "../../src/snapshot/kinds.js";

// Captured before any test installs fake timers: the harness's own timeouts always use real time.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

export const silentLogger = pino({ level: "silent" });

export interface Harness {
  readonly server: FanoutServer;
  readonly hub: Hub;
  readonly registry: Registry;
  readonly url: string;
  readonly port: number;
}

export interface HarnessOptions {
  readonly options?: FanoutOptions;
  readonly hub?: HubOptions;
  readonly clock?: () => number;
  /** Report every kind in sync before serving. Default true. */
  readonly isInSync?: boolean;
  /** Listen with TLS (the url is then wss://). */
  readonly tls?: FanoutTls;
  readonly authenticator?: Authenticator;
  /** The replica directory (default: alone). */
  readonly peers?: PeerDirectory;
}

/** Starts a fan-out server on an ephemeral loopback port; it is closed when the test finishes. */
export async function startFanout(opts: HarnessOptions = {}): Promise<Harness> {
  const hub = new Hub(opts.hub);
  const registry = new Registry();
  const server = new FanoutServer({
    hub,
    logger: silentLogger,
    registry,
    options: opts.options ?? {},
    ...(opts.clock !== undefined && { clock: opts.clock }),
    ...(opts.tls !== undefined && { tls: opts.tls }),
    ...(opts.authenticator !== undefined && { authenticator: opts.authenticator }),
    ...(opts.peers !== undefined && { peers: opts.peers }),
  });
  onTestFinished(() => server.destroy());
  if (opts.isInSync ?? true) markInSync(server);
  const address = await server.listen(0, "127.0.0.1");
  const scheme = opts.tls === undefined ? "ws" : "wss";
  return { server, hub, registry, url: `${scheme}://127.0.0.1:${address.port}/`, port: address.port };
}

export function markInSync(server: FanoutServer, since = 1): void {
  for (const kind of ALL_KINDS) server.setKindState(kind, { state: "in-sync", since });
}

let uidCounter = 0;

/** A minimal Calico-model value. `node` sets spec.node (the owner of node-scoped kinds). */
export function resource(
  kind: string,
  name: string,
  spec: Record<string, unknown> = {},
  namespace?: string,
): ResourceValue {
  return {
    kind,
    metadata: {
      name,
      ...(namespace !== undefined && { namespace }),
      uid: `uid-${++uidCounter}`,
      resourceVersion: String(uidCounter),
    },
    spec,
  };
}

/** The entries a session of `view` for `node` should hold, straight from the store. */
export function expectedView(hub: Hub, view: ViewName, node?: string): Map<string, ResourceValue> {
  const def = VIEWS[view];
  const out = new Map<string, ResourceValue>();
  for (const kind of def.kinds) {
    for (const e of hub.store.entriesOfKind(kind)) {
      if (def.nodeScopedKinds.has(kind) && e.node !== node) continue;
      out.set(e.key, hub.store.valueOf(e.key)!);
    }
  }
  return out;
}

export function hello(overrides: Partial<HelloMessage> = {}): HelloMessage {
  return {
    t: "hello",
    versions: [1, 1],
    view: "felix",
    client: { name: "fanout-test", version: "0" },
    ...overrides,
  };
}

export interface Received {
  readonly message: ServerMessage;
  readonly atMs: number;
}

/** A raw protocol client: decodes every frame, answers pings (unless told not to), keeps a mirror. */
export class RawClient {
  readonly received: Received[] = [];
  mirror = new Map<string, ResourceValue>();
  revision = 0;
  welcome: WelcomeMessage | undefined;
  closeCode: number | undefined;
  isAnsweringPings = true;
  /** Protocol violations seen by this client (tests assert it stays empty). */
  readonly violations: string[] = [];
  readonly closed: Promise<number>;
  #snapshot: Map<string, ResourceValue> | undefined;
  #waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once("close", (code: number) => {
        this.closeCode = code;
        resolve(code);
        this.#wake();
      }),
    );
    ws.on("error", () => this.#wake());
    ws.on("message", (data: Buffer) => this.#onFrame(data));
  }

  /** Opens a connection and (unless `hello` is null) sends a hello. */
  static async connect(
    url: string,
    helloMessage: HelloMessage | null = hello(),
    wsOptions: ClientOptions = {},
  ): Promise<RawClient> {
    const ws = new WebSocket(url, { ...wsOptions, perMessageDeflate: false });
    const client = new RawClient(ws);
    onTestFinished(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    if (helloMessage !== null) client.send(helloMessage);
    return client;
  }

  /** Connects and waits until the session is live (its first status message). */
  static async live(
    url: string,
    helloMessage: HelloMessage = hello(),
    wsOptions: ClientOptions = {},
  ): Promise<RawClient> {
    const client = await RawClient.connect(url, helloMessage, wsOptions);
    await client.until(() => client.count("status") > 0);
    return client;
  }

  send(message: ClientMessage | Buffer | string): void {
    this.ws.send(typeof message === "string" || Buffer.isBuffer(message) ? message : encodeMessage(message));
  }

  messages(t?: ServerMessage["t"]): ServerMessage[] {
    return this.received.map((r) => r.message).filter((m) => t === undefined || m.t === t);
  }

  count(t: ServerMessage["t"]): number {
    let n = 0;
    for (const r of this.received) if (r.message.t === t) n++;
    return n;
  }

  /** Resolves when `predicate` holds (checked after every frame and at close); rejects after timeoutMs. */
  until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        realClearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = realSetTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`RawClient.until: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  #wake(): void {
    for (const check of [...this.#waiters]) check();
  }

  #onFrame(data: Buffer): void {
    const decoded = decodeServerMessage(data);
    // Compressed deltas are kept inflated, so that tests read `changes` whatever the encoding.
    const message = decoded.t === "deltas" && decoded.z !== undefined ? decodeDeltasFrame(data) : decoded;
    this.received.push({ message, atMs: performance.now() });
    switch (message.t) {
      case "welcome":
        this.welcome = message;
        break;
      case "snap-begin":
        this.#snapshot = new Map();
        break;
      case "snap-chunk": {
        const entries: readonly Entry[] =
          message.z !== undefined ? decodeEntryArray(inflateRawSync(message.z)) : (message.entries ?? []);
        for (const e of entries) if (e.v !== null) this.#snapshot?.set(e.k, e.v);
        break;
      }
      case "snap-end":
        this.mirror = this.#snapshot ?? new Map();
        this.#snapshot = undefined;
        this.revision = message.revision;
        break;
      case "deltas":
        if (message.from < this.revision)
          this.violations.push(`deltas from ${message.from} < ${this.revision}`);
        if (this.#snapshot !== undefined) this.violations.push("deltas inside a snapshot");
        try {
          applyChanges(this.mirror, message.changes);
        } catch (err) {
          this.violations.push(`unappliable deltas: ${(err as Error).message}`);
        }
        this.revision = message.to;
        break;
      case "ping":
        if (this.isAnsweringPings) this.send({ t: "pong", ts: message.ts });
        break;
      default:
        break;
    }
    this.#wake();
  }
}

/** The client's TCP socket (to pause its reading, as a slow agent would). */
export function socketOf(client: RawClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

let probeCounter = 0;

/** Proves that `observer` still receives changes: upserts a fresh IPPool, flushes, waits for it. */
export async function expectStillReceiving(h: Harness, observer: RawClient): Promise<void> {
  const name = `probe-${++probeCounter}`;
  h.server.upsert(`IPPool/${name}`, resource("IPPool", name));
  h.server.flushNow();
  await observer.until(() => observer.mirror.has(`IPPool/${name}`));
  if (observer.closeCode !== undefined) throw new Error(`observer closed with ${observer.closeCode}`);
}

/** Polls `predicate` (server-side state) every few ms until it holds; rejects after timeoutMs. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => realSetTimeout(resolve, 5));
  }
}

/**
 * The value of one series of a metric in the registry (0 when absent). For a histogram, `series` picks
 * the sample (e.g. "tabby_ping_latency_seconds_count").
 */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
  series?: string,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const match = values.find(
    (v) =>
      (series === undefined || (v as { metricName?: string }).metricName === series) &&
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return match?.value ?? 0;
}
