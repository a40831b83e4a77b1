import { isDeepStrictEqual } from "node:util";
import type { ResourceValue, ViewName } from "../../proto/messages.js";
import { RESOURCES, resourceId, staticEntries } from "../server/datastore/index.js";
import type { KubeObject } from "../server/datastore/index.js";
import { SimError, SimErrorCode } from "../sim/index.js";
import type { Simulator } from "../sim/index.js";
import { kindOfKey } from "../snapshot/keys.js";
import { nodeOf, VIEWS } from "../snapshot/kinds.js";

/** One entry of the cluster's state converted: what some view of tabby serves under `key`. */
export interface ConvertedEntry {
  readonly key: string;
  readonly value: ResourceValue;
}

/**
 * The objects of a simulator resource (by id, e.g. "pods"); undefined for a CRD that is not installed,
 * which tabby counts as empty.
 */
export function simLister(sim: Simulator): (resourceId: string) => readonly KubeObject[] | undefined {
  return (id) => {
    try {
      return sim.list(id);
    } catch (err) {
      if (err instanceof SimError && err.code === SimErrorCode.resourceNotFound) return undefined;
      throw err;
    }
  };
}

/**
 * The upstream state `list` gives converted with the datastore's own `convert`: Calico's own values
 * (backed by no object, e.g. the default-allow Profile), then every object that converts to a value.
 */
export function convertedState(
  list: (resourceId: string) => readonly KubeObject[] | undefined,
): ConvertedEntry[] {
  const out: ConvertedEntry[] = staticEntries(RESOURCES);
  for (const resource of RESOURCES) {
    for (const obj of list(resourceId(resource)) ?? []) {
      const c = resource.convert(obj);
      if (c !== null && c.value !== null) out.push({ key: c.key, value: c.value });
    }
  }
  return out;
}

/** The converted state (convertedState) as one view shows it to `node`: key → value. */
export function expectedView(
  state: readonly ConvertedEntry[],
  view: ViewName,
  node?: string,
): Map<string, ResourceValue> {
  const out = new Map<string, ResourceValue>();
  const def = VIEWS[view];
  for (const { key, value } of state) {
    const kind = kindOfKey(key);
    if (!def.kinds.has(kind as never)) continue;
    if (def.nodeScopedKinds.has(kind as never) && nodeOf(kind, value) !== node) continue;
    out.set(key, value);
  }
  return out;
}

/** A canonical JSON text of a value (object keys sorted), for comparing values. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => [k, sortKeys(x)]),
  );
}

/** How a mirror differs from what it should hold; undefined when equal. */
export interface MirrorDiff {
  readonly missing: readonly string[];
  readonly extra: readonly string[];
  readonly changed: readonly string[];
}

/** Compares a mirror (key → value) with the expected state: keys, and values including resourceVersions. */
export function diffMirror(
  get: (key: string) => ResourceValue | undefined,
  keys: readonly string[],
  want: ReadonlyMap<string, ResourceValue>,
  wantJson: ReadonlyMap<string, string>,
): MirrorDiff | undefined {
  const have = new Set(keys);
  const missing = [...want.keys()].filter((k) => !have.has(k));
  const extra = keys.filter((k) => !want.has(k));
  const changed: string[] = [];
  for (const k of keys) {
    const w = wantJson.get(k);
    if (w === undefined) continue;
    const value = get(k);
    // Deep-equal values (key order aside) have the same canonical JSON: the cheap test first.
    if (!isDeepStrictEqual(value, want.get(k)) && canonicalJson(value) !== w) changed.push(k);
  }
  if (missing.length === 0 && extra.length === 0 && changed.length === 0) return undefined;
  return { missing: missing.slice(0, 5), extra: extra.slice(0, 5), changed: changed.slice(0, 5) };
}
