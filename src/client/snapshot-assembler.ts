import { promisify } from "node:util";
import { inflateRaw } from "node:zlib";
import { decodeEntryArray } from "../../proto/codec.js";
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
}

/** The server sent a snapshot that does not add up. */
export class SnapshotAssemblyError extends Error {
  override readonly name = "SnapshotAssemblyError";
}

/**
 * Collects one snapshot: checks that chunks come in order and that their number, their entry count and the
 * end revision match snap-begin; inflates `z` chunks. In lite mode (`isDecoding` false) chunks are only
 * counted: nothing is inflated or kept.
 */
export class SnapshotAssembler {
  readonly #begin: SnapshotBeginMessage;
  readonly #maxInflatedBytes: number;
  readonly #entries: Map<string, ResourceValue> | null;
  #received = 0;
  #entryCount = 0;

  constructor(begin: SnapshotBeginMessage, options: { isDecoding: boolean; maxInflatedBytes: number }) {
    this.#begin = begin;
    this.#maxInflatedBytes = options.maxInflatedBytes;
    this.#entries = options.isDecoding ? new Map() : null;
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
    return { revision, head, count: begin.count, chunks: begin.chunks, entries: this.#entries };
  }

  async #inflate(z: Uint8Array): Promise<void> {
    let payload: Buffer;
    try {
      payload = await inflateRawAsync(z, { maxOutputLength: this.#maxInflatedBytes });
    } catch (err) {
      throw new SnapshotAssemblyError("a snapshot chunk that does not inflate", { cause: err });
    }
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
      if (entry.v === null) map.delete(entry.k);
      else map.set(entry.k, entry.v);
    }
  }
}
