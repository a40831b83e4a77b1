import { decodeValue } from "../../proto/codec.js";
import { encodeEntry } from "../../proto/frame-builder.js";
import { createMergePatch } from "../../proto/merge-patch.js";
import type { Entry, ResourceValue } from "../../proto/messages.js";

function resourceVersionOf(value: ResourceValue | null | undefined): string | undefined {
  const meta = value?.metadata;
  if (meta === null || typeof meta !== "object") return undefined;
  const rv = (meta as { resourceVersion?: unknown }).resourceVersion;
  return typeof rv === "string" && rv.length > 0 && rv.length <= 256 ? rv : undefined;
}

/**
 * The patch entry `{k, p, b}` that turns the value encoded in `baseEncoded` (an entry `{k, v}` as the store
 * encodes it) into `next`, or undefined when a patch cannot say it (no base value, no base
 * resourceVersion, a null where they differ) or is not smaller than `fullBytes`.
 */
export function encodePatchEntry(
  key: string,
  baseEncoded: Buffer,
  next: ResourceValue,
  fullBytes: number,
): Buffer | undefined {
  const base = (decodeValue(baseEncoded) as Entry).v;
  const b = resourceVersionOf(base);
  if (base === null || b === undefined) return undefined;
  const p = createMergePatch(base, next);
  if (p === undefined) return undefined;
  const encoded = encodeEntry({ k: key, p, b });
  return encoded.byteLength < fullBytes ? encoded : undefined;
}
