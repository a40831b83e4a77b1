import { blockAffinity, blockAffinityName, ipamBlock, servedAs } from "./calico-objects.js";
import { ChurnModel, splitKey } from "./churn-model.js";
import { OPS } from "./churn-ops.js";
import { SimError, SimErrorCode } from "./errors.js";
import { blockCidr, cidrName } from "./ipam.js";
import { CHANGED_AT_ANNOTATION } from "./k8s-objects.js";
import { kubeTimestamp } from "./objects.js";
import { Prng } from "./prng.js";
import type { Simulator } from "./simulator.js";
import type { KubeObject } from "./types.js";

export { seedCluster, type SeedOptions, type SeedResult } from "./seed.js";
export { CHANGED_AT_ANNOTATION } from "./k8s-objects.js";

export interface ChurnChange {
  readonly type: "create" | "update" | "delete";
  /** Object-API resource name ("pods", "blockaffinities", ...). */
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string;
  /** Epoch ms of the change (the `tabby.dev/changed-at` stamp of creates and updates). */
  readonly atMs: number;
}

export interface ChurnOptions {
  /** Object writes per second (an op that writes two objects counts twice). */
  readonly ratePerSecond: number;
  /** PRNG seed; default 1. With the same seed and the same cluster, the same sequence of changes. */
  readonly seed?: number;
  /** stop() on abort. */
  readonly signal?: AbortSignal;
  /** Wall clock (epoch ms) for stamps and pacing; default Date.now. */
  readonly clock?: () => number;
  /** Called after every write (synchronously: keep it cheap). */
  readonly onChange?: (c: ChurnChange) => void;
}

export interface ChurnStats {
  readonly changes: number;
  readonly byOp: Readonly<Record<string, number>>;
  /** Ops that failed (the object changed or vanished under the generator): counted, then skipped. */
  readonly errors: number;
  /** Changes not made because the process could not keep up with the rate. */
  readonly lagged: number;
}

const MAX_CATCH_UP_MS = 250;

/**
 * Makes realistic changes to a simulated cluster at a steady rate, in timer-driven batches. Every change
 * changes the converted Calico value (never status only); creates and updates carry the
 * `tabby.dev/changed-at` annotation (epoch ms), so downstream latency can be measured.
 */
export class ChurnGenerator {
  readonly #sim: Simulator;
  readonly #rate: number;
  readonly #clock: () => number;
  readonly #onChange: ((c: ChurnChange) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.stop();
  readonly rng: Prng;
  #model: ChurnModel | undefined;
  #timer: NodeJS.Timeout | undefined;
  #isStopped = false;
  #t0 = 0;
  #done = 0;
  #changes = 0;
  #errors = 0;
  #lagged = 0;
  readonly #byOp: Record<string, number> = {};

  constructor(sim: Simulator, options: ChurnOptions) {
    if (!Number.isFinite(options.ratePerSecond) || options.ratePerSecond <= 0) {
      throw new SimError(SimErrorCode.badOption, "ratePerSecond: must be a positive number");
    }
    this.#sim = sim;
    this.#rate = options.ratePerSecond;
    this.#clock = options.clock ?? (() => Date.now());
    this.#onChange = options.onChange;
    this.#signal = options.signal;
    this.rng = new Prng(options.seed ?? 1);
  }

  get stats(): ChurnStats {
    return { changes: this.#changes, byOp: { ...this.#byOp }, errors: this.#errors, lagged: this.#lagged };
  }

  /** Writes made so far (same as stats.changes). */
  get changes(): number {
    return this.#changes;
  }

  get isRunning(): boolean {
    return this.#timer !== undefined;
  }

  /** Reads the cluster (on first start) and starts the timer loop. A stopped generator does not restart. */
  start(): void {
    if (this.#isStopped || this.#timer !== undefined) return;
    if (this.#signal?.aborted === true) return;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#model ??= new ChurnModel(this.#sim);
    this.#t0 = this.#clock();
    this.#done = 0;
    this.#schedule();
  }

  stop(): void {
    this.#isStopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }

  /** Makes `n` changes now (outside the timer loop); returns how many writes were made. */
  runOnce(n: number): number {
    this.#model ??= new ChurnModel(this.#sim);
    let made = 0;
    for (let attempts = 0; made < n && attempts < n * 4 + 16; attempts++) made += this.#step();
    return made;
  }

  #schedule(): void {
    const tickMs = Math.min(50, Math.max(5, Math.floor(1000 / this.#rate)));
    this.#timer = setTimeout(() => this.#tick(), tickMs);
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#isStopped) return;
    let due = Math.floor(((this.#clock() - this.#t0) * this.#rate) / 1000) - this.#done;
    const maxBatch = Math.max(1, Math.ceil((this.#rate * MAX_CATCH_UP_MS) / 1000));
    if (due > maxBatch) {
      this.#lagged += due - maxBatch;
      this.#done += due - maxBatch;
      due = maxBatch;
    }
    for (let attempts = 0; due > 0 && attempts < maxBatch * 4 + 16; attempts++) {
      const n = this.#step();
      due -= n;
      this.#done += n;
    }
    if (!this.#isStopped) this.#schedule();
  }

  /** One op chosen by weight; returns the writes it made (0 when it had nothing to do). */
  #step(): number {
    const total = OPS.reduce((s, [, w]) => s + w, 0);
    let r = this.rng.next() * total;
    let chosen = OPS[0]!;
    for (const op of OPS) {
      r -= op[1];
      if (r < 0) {
        chosen = op;
        break;
      }
    }
    try {
      const n = chosen[2](this);
      if (n > 0) this.#byOp[chosen[0]] = (this.#byOp[chosen[0]] ?? 0) + n;
      return n;
    } catch (err) {
      if (!(err instanceof SimError)) throw err;
      this.#errors++; // someone else changed or removed the object: skip it
      return 0;
    }
  }

  // ---- helpers for the ops ----

  get model(): ChurnModel {
    return this.#model!;
  }

  get sim(): Simulator {
    return this.#sim;
  }

  now(): number {
    return this.#clock();
  }

  /** Records a write. */
  wrote(
    type: ChurnChange["type"],
    resource: string,
    obj: { metadata: { namespace?: string; name: string } },
    atMs: number,
  ): void {
    this.#changes++;
    this.#onChange?.({ type, resource, namespace: obj.metadata.namespace, name: obj.metadata.name, atMs });
  }

  /** `obj` with the changed-at stamp and `edit` applied to a copy of its metadata. */
  stamped(
    obj: KubeObject,
    atMs: number,
    edit: (m: { labels: Record<string, string>; annotations: Record<string, string> }) => void = () => {},
  ): KubeObject {
    const m = {
      labels: { ...obj.metadata.labels },
      annotations: { ...obj.metadata.annotations, [CHANGED_AT_ANNOTATION]: String(atMs) },
    };
    edit(m);
    return { ...obj, metadata: { ...obj.metadata, labels: m.labels, annotations: m.annotations } };
  }

  /** Updates an object with a new spec-level field set and the stamp. */
  update(
    resource: string,
    obj: KubeObject,
    fields: Record<string, unknown>,
    edit?: Parameters<ChurnGenerator["stamped"]>[2],
  ): number {
    const at = this.now();
    const next = { ...this.stamped(obj, at, edit), ...fields };
    const made = this.#sim.update(resource, next);
    this.wrote("update", resource, made, at);
    return 1;
  }

  /** Creates a fresh object with the stamp. */
  create(resource: string, obj: { [field: string]: unknown }): number {
    const at = this.now();
    const meta = (obj.metadata ?? {}) as { annotations?: Record<string, string> };
    const stamped = {
      ...obj,
      metadata: { ...meta, annotations: { ...meta.annotations, [CHANGED_AT_ANNOTATION]: String(at) } },
    };
    const made = this.#sim.create(
      resource,
      servedAs(stamped, () => this.#sim.apiVersionOf(resource)),
    );
    this.wrote("create", resource, made, at);
    return 1;
  }

  remove(resource: string, namespace: string | undefined, name: string): number {
    this.#sim.remove(resource, namespace, name);
    this.wrote(
      "delete",
      resource,
      { metadata: namespace === undefined ? { name } : { namespace, name } },
      this.now(),
    );
    return 1;
  }

  /** Claims a new block for a node: an IPAMBlock and its BlockAffinity. */
  claimBlock(node: string): number {
    const index = this.model.alloc.claim(node);
    if (index === undefined) return 0;
    const block = ipamBlock(index, node, [], kubeTimestamp(this.now()));
    return this.create("ipamblocks", block) + this.create("blockaffinities", blockAffinity(node, index));
  }

  releaseBlock(node: string, index: number): number {
    if (!this.model.alloc.release(node, index)) return 0;
    return (
      this.remove("blockaffinities", undefined, blockAffinityName(node, index)) +
      this.remove("ipamblocks", undefined, cidrName(blockCidr(index)))
    );
  }

  podKey(key: string): [string, string] {
    return splitKey(key);
  }
}
