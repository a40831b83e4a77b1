import { createHash } from "node:crypto";
import { encodeValue, packValue } from "../../proto/codec.js";
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
   * Fingerprint of the entry with `metadata.resourceVersion` blanked (SHA-1 of its msgpack encoding, base64;
   * fingerprintOf): two values of a key with the same fingerprint are the same resource (sameResource),
   * but for one that gains or loses a resourceVersion, which counts as changed. The encoding keeps key
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
    sameAs: fingerprintOf(encoded, key, value),
  };
}

/** The fingerprint of `key`'s `value` ignoring its resourceVersion (PreparedValue.sameAs). */
export function sameAsFingerprint(key: string, value: ResourceValue): string {
  return fingerprintOf(encodeEntry({ k: key, v: value }), key, value);
}

const RV_FIELD = encodeValue("resourceVersion");
const EMPTY_RV_FIELD = Buffer.concat([RV_FIELD, encodeValue("")]);

/**
 * SHA-1 of the entry's encoding with its metadata's `resourceVersion` set to "" (base64). The encoder
 * writes that field as the key's bytes then the value's; when those bytes occur exactly once in the
 * encoding they are the field, and replacing them gives exactly the encoding of the entry with "" there
 * (a msgpack container counts items, not bytes). Otherwise (the same bytes also occur elsewhere, as in a
 * label `resourceVersion: <the same>`) the entry is encoded again with "": what every value paid before,
 * a fifth of the ingest worker's time in a relist. A value without a resourceVersion hashes its encoding
 * as it is, so a value that gains or loses one counts as changed (one more delta; API objects have one).
 */
function fingerprintOf(encoded: Buffer, key: string, value: ResourceValue): string {
  const hash = createHash("sha1");
  const meta = value.metadata;
  if (meta === null || typeof meta !== "object" || Array.isArray(meta) || !("resourceVersion" in meta)) {
    return hash.update(encoded).digest("base64");
  }
  const rv = (meta as Record<string, unknown>).resourceVersion;
  if (typeof rv === "string") {
    const field = Buffer.concat([RV_FIELD, encodeValue(rv)]);
    const at = encoded.indexOf(field);
    if (at >= 0 && encoded.indexOf(field, at + 1) < 0) {
      return hash
        .update(encoded.subarray(0, at))
        .update(EMPTY_RV_FIELD)
        .update(encoded.subarray(at + field.byteLength))
        .digest("base64");
    }
  }
  const bare = { ...value, metadata: { ...meta, resourceVersion: "" } };
  return hash.update(packValue({ k: key, v: bare })).digest("base64");
}
