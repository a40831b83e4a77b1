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
  /** "json-patch-deltas" (with "patch-deltas"): a patch may also be a JSON Patch, whichever is smaller. */
  jsonPatch: 4,
} as const;
export type DeltaEncodingBits = number;

/** The encoding a session negotiated, from its features. */
export function deltaEncodingOf(features: ReadonlySet<string>): DeltaEncodingBits {
  const isPatch = features.has(FEATURES.patchDeltas);
  return (
    (isPatch ? DeltaEncoding.patch : 0) |
    (isPatch && features.has(FEATURES.jsonPatchDeltas) ? DeltaEncoding.jsonPatch : 0) |
    (features.has(FEATURES.deflateDeltas) ? DeltaEncoding.deflate : 0)
  );
}

/** A frame's changes with patches where smaller; `isJsonAllowed`: JSON Patches may be among them. */
export type PatchedChanges = (isJsonAllowed: boolean) => readonly Uint8Array[];

/** Number of distinct encodings (bit combinations). */
const ENCODINGS = 8;

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
  /**
   * The same changes with patches where a patch is smaller (made on first use; JSON Patches allowed or not);
   * undefined: none has one.
   */
  readonly #patched: PatchedChanges | undefined;
  readonly #frames: (Buffer | undefined)[] = new Array<Buffer | undefined>(ENCODINGS);
  #built = 0;

  constructor(from: number, to: number, full: readonly Uint8Array[], patched?: PatchedChanges) {
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
    // Without patches, the patch encodings are the plain one: share the Buffer. JSON Patches only go with
    // patches.
    const bits = encoding & (ENCODINGS - 1);
    const e =
      this.#patched === undefined || (bits & DeltaEncoding.patch) === 0 ? bits & DeltaEncoding.deflate : bits;
    let frame = this.#frames[e];
    if (frame === undefined) {
      const changes =
        (e & DeltaEncoding.patch) !== 0 && this.#patched !== undefined
          ? this.#patched((e & DeltaEncoding.jsonPatch) !== 0)
          : this.#full;
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
