import { randomUUID } from "node:crypto";
import { Collection, Stored, StoredEvent } from "./collection.js";
import { SimError, SimErrorCode } from "./errors.js";
import {
  deepFreeze,
  equalExcept,
  jsonEqual,
  isValidName,
  isValidNamespace,
  kubeTimestamp,
} from "./objects.js";
import type { ResourceDef, ResourceRegistry } from "./resources.js";
import { isJsonObject, type JsonObject, type KubeObject } from "./types.js";

export interface StoreDeps {
  readonly registry: ResourceRegistry;
  readonly historyLimit: number;
  readonly clock: () => number;
  /** Called synchronously after every change, in resourceVersion order. */
  readonly onEvent: (def: ResourceDef, ev: StoredEvent) => void;
}

/** Where a request is addressed: the namespace and name from the path (when the path has them). */
export interface Target {
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
}

export interface Preconditions {
  readonly resourceVersion?: string | undefined;
  readonly uid?: string | undefined;
}

const SKIP_META_STATUS = new Set(["metadata", "status"]);
const SKIP_VOLATILE_META = new Set(["resourceVersion", "generation", "managedFields"]);
const NAME_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789";

/**
 * Every object of the simulated cluster, under one global resourceVersion counter (like etcd): each change of
 * any resource takes the next value. Stored objects are deep-frozen and shared by lists and watch events.
 */
export class ObjectStore {
  readonly #deps: StoreDeps;
  readonly #collections = new Map<ResourceDef, Collection>();
  #rv = 1;
  #historyLimit: number;

  constructor(deps: StoreDeps) {
    this.#deps = deps;
    this.#historyLimit = deps.historyLimit;
    for (const d of deps.registry.all) this.#collections.set(d, new Collection(this.#historyLimit, 0));
  }

  /** The current (latest) resourceVersion. */
  get rv(): number {
    return this.#rv;
  }

  /** The collection of an installed resource; throws ERR_SIM_RESOURCE_NOT_FOUND when not installed. */
  collection(def: ResourceDef): Collection {
    const c = this.#collections.get(def);
    if (c === undefined || !this.#deps.registry.isInstalled(def)) {
      throw new SimError(SimErrorCode.resourceNotFound, "the server could not find the requested resource", {
        details: { group: def.group, kind: def.plural },
      });
    }
    return c;
  }

  setHistoryLimit(n: number): void {
    this.#historyLimit = n;
    for (const c of this.#collections.values()) c.setHistoryLimit(n);
  }

  /** Empties a resource (its CRD was uninstalled); watches from before now get 410. */
  clear(def: ResourceDef): void {
    this.#collections.get(def)?.clear(this.#rv);
  }

  get(def: ResourceDef, namespace: string | undefined, name: string): Stored {
    const found = this.collection(def).get(keyOf(def, namespace, name));
    if (found === undefined) throw notFound(def, name);
    return found;
  }

  create(def: ResourceDef, input: unknown, target: Target = {}): Stored {
    const c = this.collection(def);
    const { obj, meta } = checkBody(def, input);
    const namespace = namespaceOf(def, meta, target);
    let name = typeof meta.name === "string" && meta.name !== "" ? meta.name : undefined;
    if (name === undefined && typeof meta.generateName === "string" && meta.generateName !== "") {
      name = meta.generateName + randomSuffix();
    }
    if (name === undefined)
      throw invalid(def, "", "metadata.name: Required value: name or generateName is required");
    if (!isValidName(name)) throw invalid(def, name, `metadata.name: Invalid value: "${name}"`);
    const key = keyOf(def, namespace, name);
    if (c.get(key) !== undefined) {
      throw new SimError(SimErrorCode.alreadyExists, `${def.plural} "${name}" already exists`, {
        details: { name, group: def.group, kind: def.plural },
      });
    }
    const rv = ++this.#rv;
    const { resourceVersion: _rv, ...rest } = meta;
    const metadata: JsonObject = {
      ...rest,
      name,
      ...(namespace === undefined ? {} : { namespace }),
      uid: randomUUID(),
      resourceVersion: String(rv),
      generation: 1,
      creationTimestamp: kubeTimestamp(this.#deps.clock()),
    };
    if (namespace === undefined) delete metadata.namespace;
    const entry = new Stored(deepFreeze(buildObject(def, obj, metadata)), rv);
    this.#commit(def, c, new StoredEvent("ADDED", key, namespace, entry));
    return entry;
  }

  /** Full replace. A no-op update (nothing but resourceVersion differs) returns the current version unchanged. */
  update(def: ResourceDef, input: unknown, target: Target = {}): Stored {
    const c = this.collection(def);
    const { obj, meta } = checkBody(def, input);
    const namespace = namespaceOf(def, meta, target);
    const name = typeof meta.name === "string" ? meta.name : "";
    if (name === "") throw invalid(def, "", "metadata.name: Required value");
    if (target.name !== undefined && target.name !== name) {
      throw badRequest(
        `the name of the object (${name}) does not match the name on the URL (${target.name})`,
      );
    }
    const key = keyOf(def, namespace, name);
    const old = c.get(key);
    if (old === undefined) throw notFound(def, name);
    checkPreconditions(def, old, {
      resourceVersion: typeof meta.resourceVersion === "string" ? meta.resourceVersion : undefined,
      uid: typeof meta.uid === "string" ? meta.uid : undefined,
    });
    const oldMeta = old.obj.metadata;
    const metadata: JsonObject = {
      ...meta,
      name,
      ...(namespace === undefined ? {} : { namespace }),
      uid: oldMeta.uid,
      resourceVersion: oldMeta.resourceVersion,
      generation: oldMeta.generation ?? 1,
      creationTimestamp: oldMeta.creationTimestamp,
    };
    if (namespace === undefined) delete metadata.namespace;
    const next = buildObject(def, obj, metadata);
    const isSpecChanged = !equalExcept(old.obj, next, SKIP_META_STATUS);
    if (
      !isSpecChanged &&
      jsonEqual(old.obj.status, next.status) &&
      equalExcept(oldMeta, metadata, SKIP_VOLATILE_META)
    ) {
      return old;
    }
    const rv = ++this.#rv;
    metadata.resourceVersion = String(rv);
    if (isSpecChanged) metadata.generation = (oldMeta.generation ?? 1) + 1;
    const entry = new Stored(deepFreeze(next), rv);
    this.#commit(def, c, new StoredEvent("MODIFIED", key, namespace, entry, old));
    return entry;
  }

  /** Applies `patcher` to (a view of) the current object, then updates with the result. */
  patch(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    patcher: (cur: KubeObject) => unknown,
  ): Stored {
    const cur = this.get(def, namespace, name);
    return this.update(def, patcher(cur.obj), { namespace, name });
  }

  remove(def: ResourceDef, namespace: string | undefined, name: string, pre: Preconditions = {}): Stored {
    const c = this.collection(def);
    const key = keyOf(def, def.isNamespaced ? namespace : undefined, name);
    const old = c.get(key);
    if (old === undefined) throw notFound(def, name);
    checkPreconditions(def, old, pre);
    const rv = ++this.#rv;
    const obj = { ...old.obj, metadata: { ...old.obj.metadata, resourceVersion: String(rv) } };
    const entry = new Stored(deepFreeze(obj), rv);
    this.#commit(def, c, new StoredEvent("DELETED", key, old.obj.metadata.namespace, entry, old));
    return entry;
  }

  #commit(def: ResourceDef, c: Collection, ev: StoredEvent): void {
    c.apply(ev);
    this.#deps.onEvent(def, ev);
  }
}

export function keyOf(def: ResourceDef, namespace: string | undefined, name: string): string {
  return def.isNamespaced ? `${namespace ?? ""}/${name}` : name;
}

function checkBody(def: ResourceDef, input: unknown): { obj: JsonObject; meta: JsonObject } {
  if (!isJsonObject(input)) throw invalid(def, "", "the body is not a JSON object");
  if (input.apiVersion !== undefined && input.apiVersion !== def.apiVersion) {
    throw badRequest(
      `the API version in the data (${describe(input.apiVersion)}) does not match the expected API version (${def.apiVersion})`,
    );
  }
  if (input.kind !== undefined && input.kind !== def.kind) {
    throw badRequest(
      `the kind in the data (${describe(input.kind)}) does not match the expected kind (${def.kind})`,
    );
  }
  const meta = input.metadata ?? {};
  if (!isJsonObject(meta)) throw invalid(def, "", "metadata: must be an object");
  for (const f of ["labels", "annotations"]) {
    const m = meta[f];
    if (
      m !== undefined &&
      m !== null &&
      (!isJsonObject(m) || Object.values(m).some((v) => typeof v !== "string"))
    ) {
      throw invalid(def, describe(meta.name ?? ""), `metadata.${f}: must be a map of strings`);
    }
  }
  return { obj: input, meta };
}

function namespaceOf(def: ResourceDef, meta: JsonObject, target: Target): string | undefined {
  if (!def.isNamespaced) return undefined;
  const inBody = typeof meta.namespace === "string" && meta.namespace !== "" ? meta.namespace : undefined;
  if (target.namespace !== undefined && inBody !== undefined && inBody !== target.namespace) {
    throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
  }
  const ns = target.namespace ?? inBody;
  if (ns === undefined) throw invalid(def, describe(meta.name ?? ""), "metadata.namespace: Required value");
  if (!isValidNamespace(ns))
    throw invalid(def, describe(meta.name ?? ""), `metadata.namespace: Invalid value: "${ns}"`);
  return ns;
}

function checkPreconditions(def: ResourceDef, cur: Stored, pre: Preconditions): void {
  const name = cur.obj.metadata.name;
  if (
    pre.resourceVersion !== undefined &&
    pre.resourceVersion !== "" &&
    pre.resourceVersion !== String(cur.rv)
  ) {
    throw new SimError(
      SimErrorCode.conflict,
      `Operation cannot be fulfilled on ${def.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { details: { name, group: def.group, kind: def.plural } },
    );
  }
  if (pre.uid !== undefined && pre.uid !== "" && pre.uid !== cur.obj.metadata.uid) {
    throw new SimError(SimErrorCode.conflict, `Precondition failed: UID in precondition: ${pre.uid}`, {
      details: { name, group: def.group, kind: def.plural },
    });
  }
}

/** The object with the resource's apiVersion and kind first, then the given metadata, then the body's fields. */
function buildObject(def: ResourceDef, body: JsonObject, metadata: JsonObject): KubeObject {
  const { apiVersion: _a, kind: _k, metadata: _m, ...rest } = body;
  return { apiVersion: def.apiVersion, kind: def.kind, metadata, ...rest } as KubeObject;
}

function describe(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function randomSuffix(): string {
  let s = "";
  for (let i = 0; i < 5; i++) s += NAME_SUFFIX_CHARS[Math.floor(Math.random() * NAME_SUFFIX_CHARS.length)];
  return s;
}

function notFound(def: ResourceDef, name: string): SimError {
  return new SimError(SimErrorCode.notFound, `${def.plural} "${name}" not found`, {
    details: { name, group: def.group, kind: def.plural },
  });
}

function invalid(def: ResourceDef, name: string, message: string): SimError {
  return new SimError(SimErrorCode.invalid, `${def.kind} "${name}" is invalid: ${message}`, {
    details: { name, group: def.group, kind: def.kind },
  });
}

function badRequest(message: string): SimError {
  return new SimError(SimErrorCode.badRequest, message);
}
