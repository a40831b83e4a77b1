import { deflateDeltas } from "../../proto/delta-compression.js";
import { FEATURES } from "../../proto/version.js";
import { assembleCompressedDeltas, assembleDeltas, assembleEntryArray } from "../../proto/frame-builder.js";

/**
 * How a session wants its `deltas` frames: a bit set of the negotiated delta features. Every session with
 * the same encoding gets the same Buffer.
 */
export const DeltaEncoding = {
  plain: 0,
  /** "patch-deltas": live changes to values the session holds may be merge patches. */
  patch: 1,
  /** "deflate-deltas": the changes travel as `z`. */
  deflate: 2,
} as const;
export type DeltaEncodingBits = number;

/** The encoding a session negotiated, from its features. */
export function deltaEncodingOf(features: ReadonlySet<string>): DeltaEncodingBits {
  return (
    (features.has(FEATURES.patchDeltas) ? DeltaEncoding.patch : 0) |
    (features.has(FEATURES.deflateDeltas) ? DeltaEncoding.deflate : 0)
  );
}

/** Number of distinct encodings (bit combinations). */
const ENCODINGS = 4;

/**
 * One `deltas` frame's content — its revisions and its pre-encoded changes — and the frame in every
 * encoding a session can ask for. Each encoding is assembled (and compressed) on first use and then shared
 * by every session that asks for it: a batch is compressed once, however many sessions receive it.
 */
export class DeltaFrames {
  readonly from: number;
  readonly to: number;
  /** Full-value changes (`{k, v}` encoded). */
  readonly #full: readonly Uint8Array[];
  /** The same changes with patches where a patch is smaller (made on first use); undefined: none has one. */
  readonly #patched: (() => readonly Uint8Array[]) | undefined;
  readonly #frames: (Buffer | undefined)[] = new Array<Buffer | undefined>(ENCODINGS);
  #built = 0;

  constructor(from: number, to: number, full: readonly Uint8Array[], patched?: () => readonly Uint8Array[]) {
    this.from = from;
    this.to = to;
    this.#full = full;
    this.#patched = patched;
  }

  /** Changes in the frame. */
  get count(): number {
    return this.#full.length;
  }

  /** Frames assembled so far (all encodings). */
  get built(): number {
    return this.#built;
  }

  /** The frame in `encoding` (DeltaEncoding bits), assembled on first use. */
  frame(encoding: DeltaEncodingBits): Buffer {
    // Without patches, the patch encoding is the plain one: share the Buffer.
    const e = this.#patched === undefined ? encoding & ~DeltaEncoding.patch : encoding & (ENCODINGS - 1);
    let frame = this.#frames[e];
    if (frame === undefined) {
      const changes =
        (e & DeltaEncoding.patch) !== 0 && this.#patched !== undefined ? this.#patched() : this.#full;
      frame =
        (e & DeltaEncoding.deflate) !== 0
          ? assembleCompressedDeltas(
              this.from,
              this.to,
              changes.length,
              deflateDeltas(assembleEntryArray(changes)),
            )
          : assembleDeltas(this.from, this.to, changes);
      this.#frames[e] = frame;
      this.#built++;
    }
    return frame;
  }
}
