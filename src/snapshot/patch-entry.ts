import { encodeEntry } from "../../proto/frame-builder.js";
import { createMergePatch, resourceVersionOf } from "../../proto/merge-patch.js";
import type { ResourceValue } from "../../proto/messages.js";

/**
 * The patch entry `{k, p, b}` that turns `base` (the value a session holds, decoded once by the caller)
 * into `next`, or undefined when a patch cannot say it (no base value, no base resourceVersion, a null
 * where they differ) or is not smaller than `fullBytes`.
 */
export function encodePatchEntry(
  key: string,
  base: ResourceValue | null,
  next: ResourceValue,
  fullBytes: number,
): Buffer | undefined {
  const b = resourceVersionOf(base);
  if (base === null || b === undefined || b.length === 0 || b.length > 256) return undefined;
  const p = createMergePatch(base, next);
  if (p === undefined) return undefined;
  const encoded = encodeEntry({ k: key, p, b });
  return encoded.byteLength < fullBytes ? encoded : undefined;
}
