import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { DatastoreDecodeError } from "./errors.js";
import { DatastoreIngestWorkerError } from "./errors.js";
import { decodeErrorFromWire, eventFromWire, fromWire, fromWireError } from "./ingest-outcome.js";
import type {
  IngestEvent,
  ObjectOutcome,
  WireDecodeError,
  WireError,
  WireEvent,
  WireOutcome,
} from "./ingest-outcome.js";
import type { DatastoreMetrics } from "./metrics.js";
import type { ConvertOptions } from "./registry.js";
import { resourceId } from "./registry.js";
import type { UpstreamResource } from "./types.js";

/** What the thread is started with: the same resources as the Datastore's. */
export interface IngestWorkerData {
  readonly kinds: readonly string[] | undefined;
  readonly convert: ConvertOptions | undefined;
}

/** Main thread → worker. `body` is transferred. */
export type IngestRequest =
  | { readonly id: number; readonly t: "list"; readonly resource: string; readonly body: ArrayBuffer }
  | { readonly id: number; readonly t: "lines"; readonly resource: string; readonly body: ArrayBuffer };

/** Worker → main thread, one per request, in request order. `bytes` is transferred. */
export type IngestReply =
  | {
      readonly id: number;
      readonly t: "list";
      readonly resourceVersion: string;
      readonly continueToken: string | undefined;
      readonly items: readonly WireOutcome[];
      readonly bytes: ArrayBuffer;
    }
  | { readonly id: number; readonly t: "list-error"; readonly error: WireDecodeError }
  | {
      readonly id: number;
      readonly t: "events";
      readonly events: readonly WireEvent[];
      /** A bad line: raise it after `events` (the lines before it). */
      readonly error: WireDecodeError | undefined;
      readonly bytes: ArrayBuffer;
    }
  /** The request hit a bug in the worker (not bad input): it fails like a crash, but the worker lives on. */
  | { readonly id: number; readonly t: "fault"; readonly error: WireError };

/** Worker → main thread: a reply, or (once, first) the thread has loaded and takes requests. */
export type IngestThreadMessage = IngestReply | { readonly t: "ready" };

/** A list page, decoded and converted. */
export interface OutcomePage {
  readonly items: readonly ObjectOutcome[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

/** Watch lines, decoded and converted: the events, then the decode error to raise after them, if any. */
export interface IngestEvents {
  readonly events: readonly IngestEvent[];
  readonly error: DatastoreDecodeError | undefined;
}

export interface IngestWorkerDeps {
  /** The Datastore's kinds and conversion options: the thread builds the same resources from them. */
  readonly data: IngestWorkerData;
  readonly logger: Logger;
  readonly metrics: DatastoreMetrics;
  /** After this many crashes the worker is not started again: the loops ingest on the main thread. Default 3. */
  readonly maxCrashes?: number;
  /** The thread's module (tests). Default ingest-thread.js (or .ts, run from source) next to this file. */
  readonly entry?: URL;
}

type Pending = {
  readonly resolve: (reply: IngestReply) => void;
  readonly reject: (err: Error) => void;
  readonly resource: string;
};

/**
 * The ingest worker, seen from the main thread: one worker thread (started on first use) that decodes list
 * pages and watch lines, converts the objects and prepares their values, so that the main thread only
 * compares bytes, updates the store and fans out. Requests are answered in order; each ResourceLoop awaits
 * its own before it reads on, so each kind's order is kept whichever thread decodes which request. Until the
 * thread has loaded (`isAvailable`), the loops decode on the main thread.
 *
 * A crash (an uncaught error or an unexpected exit of the thread) is logged with the error at error level
 * and counted (tabby_upstream_ingest_worker_crashes_total); the requests in flight fail with
 * DatastoreIngestWorkerError and their loops relist, and a new thread starts. After maxCrashes crashes no
 * thread is started again and the loops ingest on the main thread.
 */
export class IngestWorker {
  readonly #deps: IngestWorkerDeps;
  readonly #maxCrashes: number;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | undefined;
  #nextId = 1;
  #crashes = 0;
  #served = 0;
  #isClosed = false;
  /** The running thread has loaded and takes requests. */
  #isReady = false;
  #closing: Promise<void> | undefined;

  constructor(deps: IngestWorkerDeps) {
    this.#deps = deps;
    this.#maxCrashes = deps.maxCrashes ?? 3;
  }

  /** A thread is loaded and takes requests; else ingest on the main thread (starting, after a crash, closed). */
  get isAvailable(): boolean {
    return this.#worker !== undefined && this.#isReady;
  }

  /** Starts the thread (once; again after a crash, by itself). */
  start(): void {
    if (this.#worker === undefined && !this.#isClosed && this.#crashes < this.#maxCrashes) this.#start();
  }

  /** Crashes so far. */
  get crashes(): number {
    return this.#crashes;
  }

  /** Requests answered so far. */
  get served(): number {
    return this.#served;
  }

  /** A thread is running (started on first use, gone after a crash until the next request, or closed). */
  get isRunning(): boolean {
    return this.#worker !== undefined;
  }

  /** Requests in flight. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Decodes and converts a list page body (which this takes over: do not use it afterwards). */
  async list(resource: UpstreamResource, body: Buffer): Promise<OutcomePage> {
    const reply = await this.#request("list", resource, ownedBytes(body));
    const id = resourceId(resource);
    if (reply.t === "list-error") throw decodeErrorFromWire(reply.error, id);
    if (reply.t !== "list") throw unexpected(reply, id);
    return {
      items: reply.items.map((w) => fromWire(w, reply.bytes)),
      resourceVersion: reply.resourceVersion,
      continueToken: reply.continueToken,
    };
  }

  /** Decodes and converts whole watch lines (WatchLineFramer's). */
  async lines(resource: UpstreamResource, lines: Buffer): Promise<IngestEvents> {
    // A copy: `lines` may be a view of the HTTP parser's buffer, which must not be detached.
    const reply = await this.#request("lines", resource, copyBytes(lines));
    const id = resourceId(resource);
    if (reply.t !== "events") throw unexpected(reply, id);
    return {
      events: reply.events.map((w) => eventFromWire(w, reply.bytes)),
      error: reply.error === undefined ? undefined : decodeErrorFromWire(reply.error, id),
    };
  }

  /** Terminates the thread; requests in flight fail with DatastoreIngestWorkerError. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#isClosed = true;
      const worker = this.#worker;
      this.#worker = undefined;
      this.#isReady = false;
      this.#failPending(new DatastoreIngestWorkerError("ingest worker closed"));
      if (worker !== undefined) await worker.terminate();
    })();
    return this.#closing;
  }

  #request(t: IngestRequest["t"], resource: UpstreamResource, body: ArrayBuffer): Promise<IngestReply> {
    const id = resourceId(resource);
    const worker = this.#worker;
    if (worker === undefined || !this.#isReady) {
      return Promise.reject(new DatastoreIngestWorkerError("ingest worker not available", { resource: id }));
    }
    const reqId = this.#nextId++;
    return new Promise<IngestReply>((resolve, reject) => {
      this.#pending.set(reqId, { resolve, reject, resource: id });
      const req: IngestRequest = { id: reqId, t, resource: id, body };
      worker.postMessage(req, [body]);
    });
  }

  #start(): void {
    const worker = spawnThread(this.#deps.entry, this.#deps.data);
    this.#worker = worker;
    this.#isReady = false;
    // The datastore's sockets keep the process alive while there is work; the thread must not on its own.
    worker.unref();
    worker.on("message", (reply: IngestThreadMessage) => {
      if (reply.t === "ready") {
        if (worker === this.#worker) this.#isReady = true;
        return;
      }
      const p = this.#pending.get(reply.id);
      if (p === undefined) return;
      this.#pending.delete(reply.id);
      this.#served++;
      p.resolve(reply);
    });
    worker.on("error", (err) => this.#crashed(worker, err));
    worker.on("messageerror", (err) => this.#crashed(worker, err));
    worker.on("exit", (code) => {
      this.#crashed(worker, new Error(`ingest worker exited with code ${code}`));
    });
  }

  #crashed(worker: Worker, err: Error): void {
    if (worker !== this.#worker) return; // closed, or already handled (an error is followed by an exit)
    this.#worker = undefined;
    this.#isReady = false;
    void worker.terminate();
    this.#crashes++;
    this.#deps.metrics.ingestWorkerCrashes.inc();
    const inFlight = [...new Set([...this.#pending.values()].map((p) => p.resource))];
    this.#deps.logger.error(
      { err, crashes: this.#crashes, resources: inFlight },
      this.#crashes < this.#maxCrashes
        ? "ingest worker crashed; the resources it was working for relist"
        : "ingest worker crashed too often; ingesting on the main thread from now on",
    );
    this.#failPending(new DatastoreIngestWorkerError("ingest worker crashed", { cause: err }));
    this.start();
  }

  #failPending(err: DatastoreIngestWorkerError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}

function unexpected(reply: IngestReply, resource: string): DatastoreIngestWorkerError {
  if (reply.t === "fault") {
    return new DatastoreIngestWorkerError(`ingest worker failed: ${reply.error.message}`, {
      resource,
      cause: fromWireError(reply.error),
    });
  }
  return new DatastoreIngestWorkerError(`ingest worker answered ${reply.t}`, { resource });
}

/** The bytes of `b` as an ArrayBuffer to transfer: its own when it has one to itself, else a copy. */
function ownedBytes(b: Buffer): ArrayBuffer {
  // Small Buffers share a pool slab (never the whole slab): those are copied, never detached.
  const ab = b.buffer;
  if (ab instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === ab.byteLength) return ab;
  return copyBytes(b);
}

function copyBytes(b: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(b.byteLength);
  new Uint8Array(out).set(b);
  return out;
}

const HERE = fileURLToPath(import.meta.url);

/** Starts the thread: compiled, its .js; from source (tests, tsx), the .ts through tsx's loader. */
function spawnThread(entry: URL | undefined, data: IngestWorkerData): Worker {
  const isSource = HERE.endsWith(".ts");
  const url = entry ?? new URL(isSource ? "./ingest-thread.ts" : "./ingest-thread.js", import.meta.url);
  if (!url.pathname.endsWith(".ts")) return new Worker(url, { workerData: data });
  // tsx's ESM API (its `import` build: the `require` one cannot register from here) registers its hooks in
  // this thread, then the entry loads through them.
  const tsxDir = dirname(createRequire(import.meta.url).resolve("tsx/package.json"));
  const api = pathToFileURL(join(tsxDir, "dist", "esm", "api", "index.mjs")).href;
  const code =
    `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); ` +
    `return import(${JSON.stringify(url.href)}); });`;
  return new Worker(code, { eval: true, workerData: data });
}
