import { createHash } from "node:crypto";
import { encodeValue } from "../../proto/codec.js";
import { encodeEntry } from "../../proto/frame-builder.js";
import type { ResourceValue } from "../../proto/messages.js";
import { kindOfKey } from "./keys.js";
import { nodeOf } from "./kinds.js";
import { valueHash } from "./state-digest.js";
import type { Hash64 } from "./state-digest.js";

/**
 * A value with everything the store derives from it computed ahead, without the store's state: what the
 * ingest worker hands the main thread (src/server/datastore/ingest-worker.ts), so that an upsert there only
 * compares bytes and updates the maps.
 */
export interface PreparedValue {
  /** `{k, v}` msgpack-encoded, exactly as Store.upsert encodes it (its own exact-size memory). */
  readonly encoded: Buffer;
  /** The owning node, for node-scoped kinds (nodeOf). */
  readonly node: string | undefined;
  /** valueHash(key, value): the entry's part of its domain's state digest. */
  readonly hash: Hash64;
  /**
   * Fingerprint of the value without `metadata.resourceVersion` (SHA-1 of its msgpack encoding, base64):
   * two values with the same fingerprint are the same resource (sameResource). The encoding keeps key
   * order, so the same fields in another order count as a change, which is harmless (one more delta) and
   * does not happen with the API server's JSON (Go writes struct fields in order and sorts map keys).
   */
  readonly sameAs: string;
}

/** Prepares `value` for `key`. Pure (hashing only). */
export function prepareValue(key: string, value: ResourceValue): PreparedValue {
  const encoded = encodeEntry({ k: key, v: value });
  return {
    encoded,
    node: nodeOf(kindOfKey(key), value),
    hash: valueHash(key, value),
    sameAs: sameAsFingerprint(value),
  };
}

/** The fingerprint of `value` ignoring its resourceVersion (PreparedValue.sameAs). */
export function sameAsFingerprint(value: ResourceValue): string {
  const meta = value.metadata;
  let bare: unknown = value;
  if (meta !== null && typeof meta === "object" && !Array.isArray(meta) && "resourceVersion" in meta) {
    const { resourceVersion: _rv, ...rest } = meta as Record<string, unknown>;
    bare = { ...value, metadata: rest };
  }
  return createHash("sha1").update(encodeValue(bare)).digest("base64");
}
