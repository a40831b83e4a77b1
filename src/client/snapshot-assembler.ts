import { hash } from "node:crypto";
import { promisify } from "node:util";
import { inflateRaw } from "node:zlib";
import { decodeEntryArray } from "../../proto/codec.js";
import { scanEntryArray } from "../../proto/entry-scan.js";
import type { ScannedEntry } from "../../proto/entry-scan.js";
import { assembleEntryArray } from "../../proto/frame-builder.js";
import type {
  Entry,
  ResourceValue,
  SnapshotBeginMessage,
  SnapshotChunkMessage,
} from "../../proto/messages.js";

const inflateRawAsync = promisify(inflateRaw);

/** A complete snapshot, handed over at snap-end. */
export interface SnapshotResult {
  readonly revision: number;
  /** The server's head at snap-end when later than `revision`: the catch-up that follows reaches it. */
  readonly head: number | undefined;
  /** Entries announced by snap-begin. */
  readonly count: number;
  readonly chunks: number;
  /** The view at `revision`; null in lite mode (chunks are counted, not decoded). */
  readonly entries: Map<string, ResourceValue> | null;
  /**
   * With `held`: the value hash (valueHashOf) of each entry of `entries` that came in a compressed chunk,
   * for the mirror to keep (Mirror.replace), so that the next snapshot can skip what it still holds.
   */
  readonly hashes: ReadonlyMap<string, string> | undefined;
}

/** What a mirror holds, asked by the assembler to skip decoding values it already has byte for byte. */
export interface HeldValues {
  /** The value held for `key` when its hash is `hash` (it came from those very bytes), else undefined. */
  heldIfSame(key: string, hash: string): ResourceValue | undefined;
}

/**
 * The hash a mirror keeps of a value's msgpack bytes: SHA-256, base64. Collision-resistant: two byte
 * strings with one hash are taken as the same value, and whoever writes the upstream objects picks bytes.
 */
export function valueHashOf(bytes: Uint8Array): string {
  return hash("sha256", bytes, "base64");
}

/** The server sent a snapshot that does not add up. */
export class SnapshotAssemblyError extends Error {
  override readonly name = "SnapshotAssemblyError";
}

/**
 * Collects one snapshot: checks that chunks come in order and that their number, their entry count and the
 * end revision match snap-begin; inflates `z` chunks. In lite mode (`isDecoding` false) chunks are only
 * counted: nothing is inflated or kept. With `held` (the mirror), a compressed chunk's values are decoded
 * only where the mirror does not hold the same bytes (by hash): a resync of an unchanged view then costs
 * inflating and hashing, not decoding and diffing every value again.
 */
export class SnapshotAssembler {
  readonly #begin: SnapshotBeginMessage;
  readonly #maxInflatedBytes: number;
  readonly #entries: Map<string, ResourceValue> | null;
  readonly #held: HeldValues | undefined;
  readonly #hashes: Map<string, string> | undefined;
  #received = 0;
  #entryCount = 0;

  constructor(
    begin: SnapshotBeginMessage,
    options: { isDecoding: boolean; maxInflatedBytes: number; held?: HeldValues | undefined },
  ) {
    this.#begin = begin;
    this.#maxInflatedBytes = options.maxInflatedBytes;
    this.#entries = options.isDecoding ? new Map() : null;
    this.#held = options.isDecoding ? options.held : undefined;
    this.#hashes = this.#held === undefined ? undefined : new Map();
  }

  /** Takes the next chunk. Returns a promise only when it has to inflate. Throws SnapshotAssemblyError. */
  add(chunk: SnapshotChunkMessage): Promise<void> | undefined {
    if (chunk.index !== this.#received || this.#received >= this.#begin.chunks) {
      throw new SnapshotAssemblyError(
        `snapshot chunk ${chunk.index}, expected ${this.#received} of ${this.#begin.chunks}`,
      );
    }
    this.#received++;
    if (this.#entries === null) return undefined;
    if (chunk.z === undefined) {
      this.#take(chunk.entries ?? []);
      return undefined;
    }
    return this.#inflate(chunk.z);
  }

  /** Checks the totals at snap-end and returns the snapshot. Throws SnapshotAssemblyError. */
  finish(revision: number, head?: number): SnapshotResult {
    const begin = this.#begin;
    if (revision !== begin.revision) {
      throw new SnapshotAssemblyError(`snap-end at revision ${revision}, snap-begin said ${begin.revision}`);
    }
    if (this.#received !== begin.chunks) {
      throw new SnapshotAssemblyError(`snapshot ended after ${this.#received} of ${begin.chunks} chunks`);
    }
    if (this.#entries !== null && this.#entryCount !== begin.count) {
      throw new SnapshotAssemblyError(
        `snapshot had ${this.#entryCount} entries, snap-begin said ${begin.count}`,
      );
    }
    return {
      revision,
      head,
      count: begin.count,
      chunks: begin.chunks,
      entries: this.#entries,
      hashes: this.#hashes,
    };
  }

  async #inflate(z: Uint8Array): Promise<void> {
    let payload: Buffer;
    try {
      payload = await inflateRawAsync(z, { maxOutputLength: this.#maxInflatedBytes });
    } catch (err) {
      throw new SnapshotAssemblyError("a snapshot chunk that does not inflate", { cause: err });
    }
    const scanned = this.#held === undefined ? undefined : scanEntryArray(payload);
    if (scanned !== undefined) return this.#takeScanned(payload, scanned);
    let entries: Entry[];
    try {
      entries = decodeEntryArray(payload);
    } catch (err) {
      throw new SnapshotAssemblyError("a snapshot chunk with invalid entries", { cause: err });
    }
    this.#take(entries);
  }

  #take(entries: readonly Entry[]): void {
    const map = this.#entries;
    if (map === null) return;
    for (const entry of entries) {
      this.#entryCount++;
      this.#hashes?.delete(entry.k);
      if (entry.v === null) map.delete(entry.k);
      else map.set(entry.k, entry.v);
    }
  }

  /**
   * Takes a chunk read by scanEntryArray: a value whose hash the mirror holds is its held value; the others
   * are decoded together (and checked as any chunk is), and every value's hash is kept.
   */
  #takeScanned(payload: Buffer, scanned: readonly ScannedEntry[]): void {
    const map = this.#entries;
    const held = this.#held;
    const hashes = this.#hashes;
    if (map === null || held === undefined || hashes === undefined) return;
    const known: (ResourceValue | undefined)[] = [];
    const valueHashes: (string | undefined)[] = [];
    const unknown: Uint8Array[] = [];
    for (const e of scanned) {
      const hash = e.isNil ? undefined : valueHashOf(payload.subarray(e.valueStart, e.end));
      const value = hash === undefined ? undefined : held.heldIfSame(e.k, hash);
      if (value === undefined && !e.isNil) unknown.push(payload.subarray(e.entryStart, e.end));
      known.push(value);
      valueHashes.push(hash);
    }
    // Nothing held and nothing deleted (a first snapshot): the chunk is decoded as it is, without a copy.
    const isWhole = unknown.length === scanned.length;
    let decoded: Entry[] = [];
    if (unknown.length > 0) {
      try {
        decoded = decodeEntryArray(isWhole ? payload : assembleEntryArray(unknown));
      } catch (err) {
        throw new SnapshotAssemblyError("a snapshot chunk with invalid entries", { cause: err });
      }
    }
    let next = 0;
    for (const [i, e] of scanned.entries()) {
      this.#entryCount++;
      const valueHash = valueHashes[i];
      const fromChunk = known[i] === undefined && !e.isNil ? decoded[next++] : undefined;
      if (e.isNil || valueHash === undefined) {
        map.delete(e.k);
        hashes.delete(e.k);
        continue;
      }
      const value = known[i] ?? fromChunk?.v;
      if (value === undefined || value === null) {
        throw new SnapshotAssemblyError(`a snapshot chunk whose entry ${e.k} did not decode`);
      }
      map.set(e.k, value);
      hashes.set(e.k, valueHash);
    }
  }
}
