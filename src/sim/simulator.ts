import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { defaultCrdsDir, loadCrds } from "./crds.js";
import { SimError, SimErrorCode } from "./errors.js";
import { RequestFaults } from "./faults.js";
import { createRequestHandler } from "./http-server.js";
import { kubeConfigFor, kubeconfigYamlFor } from "./kubeconfig.js";
import { mergePatch } from "./objects.js";
import { asNativeV3, builtinResources, ResourceRegistry, type EndpointSliceVersion } from "./resources.js";
import { ObjectStore } from "./store.js";
import type { KubeObject } from "./types.js";
import { WatchHub } from "./watch.js";

/** Requests held while paused, at most. */
const MAX_HELD_REQUESTS = 10_000;

export interface SimulatorOptions {
  /** Listen address; default "127.0.0.1". Anything that is not loopback is refused (ERR_SIM_NON_LOOPBACK). */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Directory of CRD manifests; default `calico/crds` in the repository root. */
  crdsDir?: string;
  /** CRD plurals (e.g. "ippools") installed at start; default "all". */
  installedCrds?: "all" | readonly string[];
  /** Watch events retained per resource for resuming; older resourceVersions get 410 Expired. Default 10000. */
  historyLimit?: number;
  /** BOOKMARK period for watches that asked for bookmarks; default 60000. */
  bookmarkIntervalMs?: number;
  /** Which discovery.k8s.io version serves EndpointSlices; default "v1". */
  endpointSliceVersion?: EndpointSliceVersion;
  /**
   * The API the Calico CRDs are served under (Calico's CALICO_API_GROUP): the `crd.projectcalico.org/v1`
   * CRDs (default) or the native `projectcalico.org/v3` ones, same kinds and plurals. In v3 mode the object
   * API still accepts `plural.crd.projectcalico.org` names, so seeds and churn work unchanged.
   */
  calicoApiGroup?: "crd.projectcalico.org/v1" | "projectcalico.org/v3";
  /** Wall clock for creationTimestamp and fault windows; default Date.now. */
  clock?: () => number;
  /** Internal errors are logged here (request errors are only counted). */
  logger?: Logger;
  /** Largest accepted request body; default 3 MiB (the API server's limit). */
  maxBodyBytes?: number;
  /** Watch duration when the request has no timeoutSeconds; default 1800. */
  defaultWatchTimeoutSeconds?: number;
  /** A watch whose socket has more than this queued is ended; default 256 MiB. */
  maxWatchBufferedBytes?: number;
}

export interface SimulatorFaults {
  /** End every open watch response now (a clean end of the chunked stream). */
  dropWatches(): void;
  /** Keep watches open but send nothing (no events, no bookmarks); what queued meanwhile follows on resume. */
  stallWatches(on: boolean): void;
  /** Answer requests (all, or those on some resources) with this status for `forMs`. */
  failRequests(status: 500 | 429, forMs: number, opts?: { resources?: string[] }): void;
  /** Shrink the retained history (compaction): watches and continues from older resourceVersions get 410. */
  setHistoryLimit(n: number): void;
  /** Send an in-stream ERROR event with a 410 Status to every watch, then end it. */
  expireWatches(): void;
  /**
   * A frozen API server (process stopped, sockets open): while on, requests are accepted but not answered
   * and watches send nothing; when turned off, the held requests are answered and queued events follow.
   */
  pause(on: boolean): void;
}

export interface SimulatorStats {
  readonly watchesOpened: number;
  readonly watchesClosedSlow: number;
  readonly watchesOverflowed: number;
  readonly bookmarksSent: number;
  readonly failedRequests: number;
  readonly internalErrors: number;
  readonly injectedFailures: number;
}

export interface Simulator {
  /** "http://127.0.0.1:PORT". */
  readonly url: string;
  readonly port: number;
  kubeConfig(): KubeConfig;
  kubeconfigYaml(): string;
  // Object API: the same semantics as over HTTP, with `resource` a plural ("pods", "ippools") or, where two
  // groups share a plural, "plural.group" ("networkpolicies.crd.projectcalico.org"; bare "networkpolicies" is
  // networking.k8s.io). Errors are SimErrors (ERR_SIM_NOT_FOUND, ERR_SIM_CONFLICT, ...). The simulator keeps
  // the objects it is given and deep-freezes them (so does what it returns): pass fresh objects, and copy
  // (structuredClone, or spread) before editing.
  /** Sets uid, resourceVersion, generation and creationTimestamp. */
  create(resource: string, obj: object): KubeObject;
  /** Full replace; a stale metadata.resourceVersion gets ERR_SIM_CONFLICT; a no-op returns the current object. */
  update(resource: string, obj: object): KubeObject;
  /** RFC 7386 merge patch. */
  patch(resource: string, namespace: string | undefined, name: string, mergePatch: object): KubeObject;
  remove(resource: string, namespace: string | undefined, name: string): void;
  /** Current objects in key order (namespace/name). */
  list(resource: string): KubeObject[];
  /** One object, or undefined. */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  installCrd(plural: string): void;
  uninstallCrd(plural: string): void;
  /** The apiVersion a resource is served with (e.g. "discovery.k8s.io/v1beta1"). */
  apiVersionOf(resource: string): string;
  readonly faults: SimulatorFaults;
  restart(): Promise<void>;
  /** Send a BOOKMARK now to every watch that allows them. */
  sendBookmarks(): void;
  /** The current (latest) resourceVersion. */
  readonly resourceVersion: string;
  readonly openWatches: number;
  readonly requestCounts: Readonly<Record<string, number>>;
  readonly stats: SimulatorStats;
  close(): Promise<void>;
}

/** Starts a simulated Kubernetes API server on loopback. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopbackHost(host)) {
    throw new SimError(SimErrorCode.nonLoopback, `host: ${host} is not a loopback address`);
  }
  const port = checkInt("port", options.port ?? 0, 0, 65535);
  const historyLimit = checkInt("historyLimit", options.historyLimit ?? 10_000, 0, 10_000_000);
  const bookmarkIntervalMs = checkInt(
    "bookmarkIntervalMs",
    options.bookmarkIntervalMs ?? 60_000,
    1,
    2 ** 31 - 1,
  );
  const manifests = await loadCrds(options.crdsDir ?? defaultCrdsDir());
  const crds = options.calicoApiGroup === "projectcalico.org/v3" ? manifests.map(asNativeV3) : manifests;
  const registry = new ResourceRegistry(builtinResources(options.endpointSliceVersion ?? "v1"), crds);
  const wanted = options.installedCrds ?? "all";
  for (const d of wanted === "all"
    ? crds.map((c) => registry.getCrd(`${c.plural}.${c.group}`))
    : wanted.map((n) => registry.getCrd(n))) {
    registry.install(d);
  }
  const sim = new SimulatorImpl(options, registry, host, historyLimit, bookmarkIntervalMs);
  try {
    await sim.listen(port);
  } catch (err) {
    await sim.close(); // clears the bookmark timer
    throw err;
  }
  return sim;
}

class SimulatorImpl implements Simulator {
  readonly faults: SimulatorFaults;
  readonly #host: string;
  readonly #registry: ResourceRegistry;
  readonly #store: ObjectStore;
  readonly #hub: WatchHub;
  readonly #requestFaults: RequestFaults;
  readonly #counts: Record<string, number> = {};
  readonly #httpStats = { badRequests: 0, internalErrors: 0 };
  readonly #handler: ReturnType<typeof createRequestHandler>;
  #server: Server | undefined;
  #port = 0;
  #isPaused = false;
  /** Requests that arrived while paused, answered on resume (bounded: the oldest are dropped). */
  #held: [IncomingMessage, ServerResponse][] = [];
  #closing: Promise<void> | undefined;

  constructor(
    options: SimulatorOptions,
    registry: ResourceRegistry,
    host: string,
    historyLimit: number,
    bookmarkIntervalMs: number,
  ) {
    const clock = options.clock ?? Date.now;
    this.#host = host;
    this.#registry = registry;
    this.#hub = new WatchHub({
      bookmarkIntervalMs,
      maxBufferedBytes: options.maxWatchBufferedBytes ?? 256 * 1024 * 1024,
      maxPendingBytes: options.maxWatchBufferedBytes ?? 256 * 1024 * 1024,
      currentRv: () => this.#store.rv,
    });
    this.#store = new ObjectStore({
      registry,
      historyLimit,
      clock,
      onEvent: (def, ev) => this.#hub.dispatch(def, ev),
    });
    this.#requestFaults = new RequestFaults(clock);
    this.#handler = createRequestHandler({
      registry,
      store: this.#store,
      hub: this.#hub,
      faults: this.#requestFaults,
      counts: this.#counts,
      stats: this.#httpStats,
      serverAddress: () => `${this.#host.includes(":") ? `[${this.#host}]` : this.#host}:${this.#port}`,
      logger: options.logger,
      maxBodyBytes: options.maxBodyBytes ?? 3 * 1024 * 1024,
      defaultWatchTimeoutSeconds: options.defaultWatchTimeoutSeconds ?? 1800,
    });
    const hub = this.#hub;
    const store = this.#store;
    const faults = this.#requestFaults;
    this.faults = {
      dropWatches: () => hub.endAll(),
      stallWatches: (on) => hub.setStalled(on),
      failRequests: (status, forMs, opts) =>
        faults.fail(
          status,
          forMs,
          opts?.resources?.map((r) => registry.get(r).id),
        ),
      setHistoryLimit: (n) => store.setHistoryLimit(checkInt("historyLimit", n, 0, 10_000_000)),
      expireWatches: () => hub.expireAll(),
      pause: (on) => this.#pause(on),
    };
  }

  #pause(on: boolean): void {
    if (on === this.#isPaused) return;
    this.#isPaused = on;
    this.#hub.setStalled(on);
    if (on) return;
    for (const [req, res] of this.#held.splice(0)) {
      if (!req.destroyed && !res.destroyed) this.#handler(req, res);
    }
  }

  readonly #serve = (req: IncomingMessage, res: ServerResponse): void => {
    if (!this.#isPaused) {
      this.#handler(req, res);
      return;
    }
    if (this.#held.length >= MAX_HELD_REQUESTS) this.#held.shift()?.[1].destroy();
    this.#held.push([req, res]);
  };

  get url(): string {
    return `http://${this.#host.includes(":") ? `[${this.#host}]` : this.#host}:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get resourceVersion(): string {
    return String(this.#store.rv);
  }

  get openWatches(): number {
    return this.#hub.openCount;
  }

  get requestCounts(): Readonly<Record<string, number>> {
    return { ...this.#counts };
  }

  get stats(): SimulatorStats {
    const w = this.#hub.stats;
    return {
      watchesOpened: w.opened,
      watchesClosedSlow: w.slowClosed,
      watchesOverflowed: w.overflowed,
      bookmarksSent: w.bookmarks,
      failedRequests: this.#httpStats.badRequests,
      internalErrors: this.#httpStats.internalErrors,
      injectedFailures: this.#requestFaults.injected,
    };
  }

  kubeConfig(): KubeConfig {
    return kubeConfigFor(this.url);
  }

  kubeconfigYaml(): string {
    return kubeconfigYamlFor(this.url);
  }

  create(resource: string, obj: object): KubeObject {
    return this.#store.create(this.#registry.get(resource), obj).obj;
  }

  update(resource: string, obj: object): KubeObject {
    return this.#store.update(this.#registry.get(resource), obj).obj;
  }

  patch(resource: string, namespace: string | undefined, name: string, patch: object): KubeObject {
    return this.#store.patch(this.#registry.get(resource), namespace, name, (cur) => mergePatch(cur, patch))
      .obj;
  }

  remove(resource: string, namespace: string | undefined, name: string): void {
    this.#store.remove(this.#registry.get(resource), namespace, name);
  }

  list(resource: string): KubeObject[] {
    return this.#store
      .collection(this.#registry.get(resource))
      .current()
      .map((s) => s.obj);
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const def = this.#registry.get(resource);
    try {
      return this.#store.get(def, namespace, name).obj;
    } catch (err) {
      if (err instanceof SimError && err.code === SimErrorCode.notFound) return undefined;
      throw err;
    }
  }

  installCrd(plural: string): void {
    const def = this.#registry.getCrd(plural);
    if (this.#registry.install(def)) this.#store.clear(def);
  }

  uninstallCrd(plural: string): void {
    const def = this.#registry.getCrd(plural);
    if (!this.#registry.uninstall(def)) return;
    this.#hub.endAll(def);
    this.#store.clear(def);
  }

  apiVersionOf(resource: string): string {
    return this.#registry.get(resource).apiVersion;
  }

  sendBookmarks(): void {
    this.#hub.sendBookmarks();
  }

  async listen(port: number): Promise<void> {
    const server = createServer(this.#serve);
    server.on("clientError", (_err, socket) => {
      this.#httpStats.badRequests++;
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, this.#host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const addr = server.address();
    this.#port = typeof addr === "object" && addr !== null ? addr.port : port;
    this.#server = server;
  }

  async restart(): Promise<void> {
    if (this.#closing !== undefined) throw new SimError(SimErrorCode.closed, "the simulator is closed");
    await this.#stopServer();
    await this.listen(this.#port);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#hub.close();
      await this.#stopServer();
    })();
    return this.#closing;
  }

  async #stopServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    this.#hub.destroyAll();
    for (const [, res] of this.#held.splice(0)) res.destroy();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (isIPv6(host))
    return (
      host === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(host) || host.toLowerCase().startsWith("::ffff:127.")
    );
  return false;
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new SimError(
      SimErrorCode.badOption,
      `${name}: must be an integer in [${min}, ${max}], got ${String(v)}`,
    );
  }
  return v;
}
