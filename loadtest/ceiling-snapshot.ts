import { inflateRawSync } from "node:zlib";
import WebSocket from "ws";
import type { RawData } from "ws";
import { decodeEntryArray, decodeServerMessage, encodeMessage } from "../proto/codec.js";
import type { HelloMessage, ViewName } from "../proto/messages.js";
import { FEATURES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "../proto/version.js";

/**
 * A snapshot as a tabby server sent it to one new session, kept for the ceiling broadcaster to send every
 * session the same bytes: the frames as received (compressed chunks), snap-end without the `head` of a
 * reused snapshot (the broadcaster's deltas go on from the snapshot's revision).
 */
export interface CeilingSnapshot {
  readonly revision: number;
  /** Entries, as snap-begin counts them. */
  readonly entries: number;
  readonly begin: Buffer;
  readonly chunks: readonly Buffer[];
  readonly end: Buffer;
  /** Payload bytes of begin + chunks + end: what one session is sent. */
  readonly bytes: number;
}

export class CeilingSnapshotError extends Error {
  override readonly name = "CeilingSnapshotError";
}

/**
 * Opens a session of `view` on the tabby server at `url` (listing "deflate-snapshot", no resume), keeps its
 * snapshot frames and closes it. Rejects with CeilingSnapshotError when the server closes first, sends
 * chunks without `z`, or takes longer than `timeoutMs`.
 */
export function recordSnapshot(url: string, view: ViewName, timeoutMs: number): Promise<CeilingSnapshot> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const chunks: Buffer[] = [];
    let begin: { frame: Buffer; revision: number; count: number } | undefined;
    const fail = (why: string): void => {
      clearTimeout(timer);
      ws.terminate();
      reject(new CeilingSnapshotError(`recording the ${view} snapshot from ${url}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no snapshot within ${timeoutMs} ms`), timeoutMs);
    ws.on("error", (err) => fail(err.message));
    ws.on("close", (code) => fail(`the server closed the session (${code})`));
    ws.on("open", () => {
      const hello: HelloMessage = {
        t: "hello",
        versions: [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX],
        view,
        client: { name: "tabby-loadtest-ceiling", version: "1" },
        features: [FEATURES.deflateSnapshot],
      };
      ws.send(encodeMessage(hello));
    });
    ws.on("message", (data: RawData) => {
      // ws's default binaryType ("nodebuffer"): every message is one Buffer, fragments joined.
      const frame = data as Buffer;
      let m;
      try {
        m = decodeServerMessage(frame);
      } catch (err) {
        fail(`a frame that does not decode: ${(err as Error).message}`);
        return;
      }
      if (m.t === "snap-begin") {
        begin = { frame, revision: m.revision, count: m.count };
      } else if (m.t === "snap-chunk") {
        if (m.z === undefined) return fail("a snapshot chunk without z");
        chunks.push(frame);
      } else if (m.t === "snap-end" && begin !== undefined) {
        clearTimeout(timer);
        ws.removeAllListeners("close");
        ws.close();
        const end = encodeMessage({ t: "snap-end", revision: begin.revision });
        const bytes = begin.frame.byteLength + end.byteLength + chunks.reduce((a, c) => a + c.byteLength, 0);
        resolve({ revision: begin.revision, entries: begin.count, begin: begin.frame, chunks, end, bytes });
      }
    });
  });
}

/** The snapshot's chunks with `entries` instead of `z` (for a client that did not list "deflate-snapshot"). */
export function plainChunks(snapshot: CeilingSnapshot): Buffer[] {
  return snapshot.chunks.map((frame) => {
    const m = decodeServerMessage(frame);
    if (m.t !== "snap-chunk" || m.z === undefined) throw new CeilingSnapshotError("not a compressed chunk");
    return encodeMessage({ t: "snap-chunk", index: m.index, entries: decodeEntryArray(inflateRawSync(m.z)) });
  });
}
