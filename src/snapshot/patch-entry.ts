import { encodeEntry } from "../../proto/frame-builder.js";
import { createJsonPatch } from "../../proto/json-patch.js";
import { createMergePatch, resourceVersionOf } from "../../proto/merge-patch.js";
import type { ResourceValue } from "../../proto/messages.js";

/** The `b` a patch on `base` names, or undefined when `base` can have none (no value, no resourceVersion). */
function patchBase(base: ResourceValue | null): string | undefined {
  const b = resourceVersionOf(base);
  return base === null || b === undefined || b.length === 0 || b.length > 256 ? undefined : b;
}

/** The JSON Patch entry `{k, j, b}` from `base` to `next` (PROTOCOL.md §6.7), or undefined when none can say it. */
export function encodeJsonPatchEntry(
  key: string,
  base: ResourceValue | null,
  next: ResourceValue,
): Buffer | undefined {
  const b = patchBase(base);
  if (b === undefined || base === null) return undefined;
  const j = createJsonPatch(base, next);
  return j === undefined ? undefined : encodeEntry({ k: key, j, b });
}

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
  const b = patchBase(base);
  if (b === undefined || base === null) return undefined;
  const p = createMergePatch(base, next);
  let best = p === undefined ? undefined : encodeEntry({ k: key, p, b });
  if (isJsonAllowed) {
    const json = encodeJsonPatchEntry(key, base, next);
    if (json !== undefined && (best === undefined || json.byteLength < best.byteLength)) best = json;
  }
  return best !== undefined && best.byteLength < fullBytes ? best : undefined;
}
