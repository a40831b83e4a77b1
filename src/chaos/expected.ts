import type { ResourceValue, ViewName } from "../../proto/messages.js";
import { convert, RESOURCES, resourceId, staticEntries } from "../server/datastore/index.js";
import { SimError, SimErrorCode } from "../sim/index.js";
import type { Simulator } from "../sim/index.js";
import { kindOfKey } from "../snapshot/keys.js";
import { nodeOf, VIEWS } from "../snapshot/kinds.js";

/** The simulator's state converted, as one view shows it to `node`: key → value. */
export function expectedView(sim: Simulator, view: ViewName, node?: string): Map<string, ResourceValue> {
  const out = new Map<string, ResourceValue>();
  const def = VIEWS[view];
  // Calico's own values, backed by no object (the default-allow Profile).
  for (const { key, value } of staticEntries(RESOURCES)) {
    if (def.kinds.has(kindOfKey(key) as never)) out.set(key, value);
  }
  for (const resource of RESOURCES) {
    let objects;
    try {
      objects = sim.list(resourceId(resource));
    } catch (err) {
      // A CRD that is not installed: tabby counts it as empty.
      if (err instanceof SimError && err.code === SimErrorCode.resourceNotFound) continue;
      throw err;
    }
    for (const obj of objects) {
      const r = convert(resourceId(resource), obj);
      if (r === null || r.value === null) continue;
      const kind = kindOfKey(r.key);
      if (!def.kinds.has(kind as never)) continue;
      if (def.nodeScopedKinds.has(kind as never) && nodeOf(kind, r.value) !== node) continue;
      out.set(r.key, r.value);
    }
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
    if (w !== undefined && canonicalJson(get(k)) !== w) changed.push(k);
  }
  if (missing.length === 0 && extra.length === 0 && changed.length === 0) return undefined;
  return { missing: missing.slice(0, 5), extra: extra.slice(0, 5), changed: changed.slice(0, 5) };
}
