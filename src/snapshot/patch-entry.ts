import { encodeEntry } from "../../proto/frame-builder.js";
import { createJsonPatch } from "../../proto/json-patch.js";
import { createMergePatch, resourceVersionOf } from "../../proto/merge-patch.js";
import type { ResourceValue } from "../../proto/messages.js";

/**
 * The smallest patch entry that turns `base` (the value a session holds, decoded once by the caller) into
 * `next`: the merge patch `{k, p, b}`, or with `isJsonAllowed` also the JSON Patch `{k, j, b}`
 * (PROTOCOL.md §6.7), whichever encodes smaller. Undefined when no patch can say it (no base value, no base
 * resourceVersion, a null a merge patch cannot set and no JSON Patch allowed) or none is smaller than
 * `fullBytes`.
 */
export function encodePatchEntry(
  key: string,
  base: ResourceValue | null,
  next: ResourceValue,
  fullBytes: number,
  isJsonAllowed = false,
): Buffer | undefined {
  const b = resourceVersionOf(base);
  if (base === null || b === undefined || b.length === 0 || b.length > 256) return undefined;
  let best: Buffer | undefined;
  const p = createMergePatch(base, next);
  if (p !== undefined) best = encodeEntry({ k: key, p, b });
  if (isJsonAllowed) {
    const j = createJsonPatch(base, next);
    if (j !== undefined) {
      const encoded = encodeEntry({ k: key, j, b });
      if (best === undefined || encoded.byteLength < best.byteLength) best = encoded;
    }
  }
  return best !== undefined && best.byteLength < fullBytes ? best : undefined;
}
