/**
 * Digests of a view's state, for resuming on another replica (PROTOCOL.md §5.2). The state of one digest
 * domain (a kind; for node-scoped kinds, a kind on one node) is the set of its `(key, resourceVersion)`
 * pairs; its digest is `{count, xor}` where `xor` is the XOR of `entryHash(key, rv)` over the set. XOR makes
 * it cheap to keep on both sides: an upsert XORs out the old pair and in the new one, order does not matter.
 *
 * `entryHash` is 64-bit FNV-1a over the UTF-8 bytes of `key + "\n" + resourceVersion` (the empty string for
 * a value without one), so that a client in any language can compute it. Pure: no I/O.
 */
import type { ResourceValue } from "../../proto/messages.js";
import { NODE_SCOPED_KINDS } from "./kinds.js";
import type { CalicoKind } from "./kinds.js";

/** The digest of one domain: how many entries, and the XOR of their hashes. */
export interface DomainDigest {
  readonly count: number;
  readonly xor: bigint;
}

export const EMPTY_DIGEST: DomainDigest = { count: 0, xor: 0n };

const MASK16 = 0xffff;

/** 64-bit FNV-1a of `key + "\n" + rv` (UTF-8), as an unsigned bigint. */
export function entryHash(key: string, rv: string): bigint {
  return fnv1a64(`${key}\n${rv}`);
}

/** 64-bit FNV-1a of the UTF-8 bytes of `text`, as an unsigned bigint. */
export function fnv1a64(text: string): bigint {
  // The 64-bit state in four 16-bit limbs (v0 lowest), so that every product stays exact in a double.
  let v0 = 0x2325;
  let v1 = 0x8422;
  let v2 = 0x9ce4;
  let v3 = 0xcbf2;
  const step = (byte: number): void => {
    v0 ^= byte;
    // × FNV prime 2^40 + 0x1b3: v·0x1b3, plus v shifted left by 40 bits (limb i lands on i+2, << 8).
    const t0 = v0 * 0x1b3;
    let t1 = v1 * 0x1b3;
    let t2 = v2 * 0x1b3 + (v0 << 8);
    const t3 = v3 * 0x1b3 + (v1 << 8);
    t1 += t0 >>> 16;
    v0 = t0 & MASK16;
    t2 += t1 >>> 16;
    v1 = t1 & MASK16;
    v3 = (t3 + (t2 >>> 16)) & MASK16;
    v2 = t2 & MASK16;
  };
  let isAscii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      isAscii = false;
      break;
    }
  }
  if (isAscii) {
    for (let i = 0; i < text.length; i++) step(text.charCodeAt(i));
  } else {
    for (const byte of Buffer.from(text, "utf8")) step(byte);
  }
  const hi = ((v3 << 16) | v2) >>> 0;
  const lo = ((v1 << 16) | v0) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The resourceVersion a value carries (`metadata.resourceVersion`), or "" when it has none. */
export function resourceVersionOfValue(value: ResourceValue): string {
  const metadata = value.metadata;
  if (metadata === null || typeof metadata !== "object") return "";
  const rv = (metadata as Record<string, unknown>).resourceVersion;
  return typeof rv === "string" ? rv : "";
}

/** The hash of one held value. */
export function valueHash(key: string, value: ResourceValue): bigint {
  return entryHash(key, resourceVersionOfValue(value));
}

/** The digest as it travels: 16 lower-case hex digits. */
export function digestHex(xor: bigint): string {
  return xor.toString(16).padStart(16, "0");
}

/** True for a 16-hex-digit digest. */
export function isDigestHex(s: string): boolean {
  return /^[0-9a-f]{16}$/.test(s);
}

/**
 * The digest domain of an entry: its kind, or `kind/node` for a node-scoped kind (each session holds only
 * its own node's entries); undefined for a node-scoped entry without owner (no session holds it).
 */
export function domainOf(kind: string, node: string | undefined): string | undefined {
  if (!NODE_SCOPED_KINDS.has(kind as CalicoKind)) return kind;
  return node === undefined ? undefined : `${kind}/${node}`;
}

/** A digest that can be updated one entry at a time. */
export class DigestAccumulator {
  count = 0;
  xor = 0n;

  add(hash: bigint): void {
    this.count++;
    this.xor ^= hash;
  }

  remove(hash: bigint): void {
    this.count--;
    this.xor ^= hash;
  }

  get digest(): DomainDigest {
    return { count: this.count, xor: this.xor };
  }
}
