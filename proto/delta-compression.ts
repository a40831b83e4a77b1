import { deflateRawSync, inflateRawSync } from "node:zlib";
import { DELTA_DICTIONARY } from "./delta-dictionary.js";
import { ProtoError, ProtoErrorCode } from "./errors.js";

/**
 * The `z` of a `deltas` frame (feature "deflate-deltas"): raw deflate (RFC 1951, no header) of a msgpack
 * array of changes, with DELTA_DICTIONARY as the preset dictionary. A batch is compressed once and the same
 * bytes go to every session that negotiated the feature. Synchronous: a batch is small (tens of µs), and
 * doing it inline keeps the frame order of the fan-out.
 */
export function deflateDeltas(entryArray: Uint8Array): Buffer {
  return deflateRawSync(entryArray, { dictionary: DELTA_DICTIONARY, level: 6 });
}

/**
 * Inflates the `z` of a `deltas` frame. Throws ProtoError (tooLarge when the result would pass
 * `maxBytes`, badFrame when `z` is not valid raw deflate with the dictionary).
 */
export function inflateDeltas(z: Uint8Array, maxBytes: number): Buffer {
  try {
    return inflateRawSync(z, { dictionary: DELTA_DICTIONARY, maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new ProtoError(ProtoErrorCode.tooLarge, `deltas inflate to more than ${maxBytes} bytes`, {
        cause: err,
      });
    }
    throw new ProtoError(ProtoErrorCode.badFrame, "deltas z is not valid raw deflate", { cause: err });
  }
}
