import type { ResourceValue } from "../proto/messages.js";
import { convertedState } from "../src/chaos/expected.js";
import type { KubeObject } from "../src/server/datastore/index.js";
import { kindOfKey } from "../src/snapshot/keys.js";
import { VIEWS, isNodeScoped, nodeOf, viewsOfKind } from "../src/snapshot/kinds.js";
import type { StateDigest } from "./protocol.js";

/** The resourceVersion a converted value carries (values keep the source object's). */
export function resourceVersionOf(value: ResourceValue): string {
  const meta = value.metadata;
  if (meta === null || typeof meta !== "object") return "";
  const rv = (meta as { resourceVersion?: unknown }).resourceVersion;
  return typeof rv === "string" ? rv : "";
}

/**
 * What tabby should serve for the upstream state `list` gives (objects per simulator resource id): every
 * object converted with the datastore's own `convert`, keyed and reduced to its resourceVersion, per view.
 * A resource `list` cannot give (a CRD that is not installed) counts as empty.
 */
export function stateDigest(
  list: (resourceId: string) => readonly KubeObject[] | undefined,
  bgpNodes: readonly string[],
): StateDigest {
  const felix: [string, string][] = [];
  const bgp: [string, string][] = [];
  const wanted = new Set(bgpNodes);
  const bgpByNode: Record<string, [string, string][]> = {};
  for (const n of bgpNodes) bgpByNode[n] = [];
  let totalKeys = 0;
  for (const { key, value } of convertedState(list)) {
    const kind = kindOfKey(key);
    if (viewsOfKind(kind).length > 0) totalKeys++;
    const entry: [string, string] = [key, resourceVersionOf(value)];
    if (VIEWS.felix.kinds.has(kind as never)) felix.push(entry);
    if (VIEWS.bgp.kinds.has(kind as never)) {
      if (isNodeScoped("bgp", kind)) {
        const node = nodeOf(kind, value);
        if (node !== undefined && wanted.has(node)) bgpByNode[node]?.push(entry);
      } else {
        bgp.push(entry);
      }
    }
  }
  return { totalKeys, felix, bgp, bgpByNode };
}

/** The entries an agent of `view` on `nodeName` should hold. */
export function expectedFor(
  digest: StateDigest,
  view: "felix" | "bgp",
  nodeName: string,
): Map<string, string> {
  if (view === "felix") return new Map(digest.felix);
  return new Map([...digest.bgp, ...(digest.bgpByNode[nodeName] ?? [])]);
}

export interface MirrorDiff {
  readonly mismatches: number;
  /** The first few differences, as text. */
  readonly samples: string[];
}

/** Compares a mirror's `[key, resourceVersion]` entries with what is expected. */
export function diffMirror(
  expected: ReadonlyMap<string, string>,
  actual: Iterable<readonly [string, string]>,
  maxSamples = 5,
): MirrorDiff {
  let mismatches = 0;
  const samples: string[] = [];
  const note = (text: string): void => {
    mismatches++;
    if (samples.length < maxSamples) samples.push(text);
  };
  const seen = new Set<string>();
  for (const [key, rv] of actual) {
    seen.add(key);
    const want = expected.get(key);
    if (want === undefined) note(`extra ${key}@${rv}`);
    else if (want !== rv) note(`${key} at resourceVersion ${rv}, want ${want}`);
  }
  for (const [key, rv] of expected) if (!seen.has(key)) note(`missing ${key}@${rv}`);
  return { mismatches, samples };
}
