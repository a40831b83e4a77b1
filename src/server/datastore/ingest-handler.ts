/**
 * The ingest worker's work (ingest-thread.ts runs it in the thread): decodes list pages and watch lines,
 * converts each object and prepares its value (encode, hash, fingerprint). It holds no state but the
 * resource definitions: the store stays on the main thread. Pure: no I/O.
 */
import { DatastoreDecodeError } from "./errors.js";
import { decodeErrorToWire, eventOf, outcomeOf, toWireError, WirePacker } from "./ingest-outcome.js";
import type { WireDecodeError, WireEvent } from "./ingest-outcome.js";
import type { IngestReply, IngestRequest, IngestWorkerData } from "./ingest-worker.js";
import { parseListPage } from "./kube-http.js";
import { resourceId, resourcesForKinds } from "./registry.js";
import type { UpstreamResource } from "./types.js";
import { decodeWatchLines } from "./watch-decoder.js";

/** The handler of one thread's requests, for the resources `data` names. Never throws: a bug is a "fault". */
export function createIngestHandler(data: IngestWorkerData): (req: IngestRequest) => IngestReply {
  const resources = new Map<string, UpstreamResource>(
    resourcesForKinds(data.kinds, data.convert).map((r) => [resourceId(r), r]),
  );
  return (req) => {
    try {
      return handle(resources, req);
    } catch (err) {
      // A bug in the decoding or conversion code (converter errors are per object, caught in outcomeOf).
      return { id: req.id, t: "fault", error: toWireError(err) };
    }
  };
}

/** The ArrayBuffers a reply transfers. */
export function transferList(reply: IngestReply): ArrayBuffer[] {
  return "bytes" in reply ? [reply.bytes] : [];
}

function handle(resources: ReadonlyMap<string, UpstreamResource>, req: IngestRequest): IngestReply {
  const resource = resources.get(req.resource);
  if (resource === undefined) {
    return { id: req.id, t: "fault", error: toWireError(new Error(`unknown resource ${req.resource}`)) };
  }
  const body = new Uint8Array(req.body);
  const packer = new WirePacker();
  if (req.t === "list") {
    let page;
    try {
      page = parseListPage(body, req.resource);
    } catch (err) {
      if (!(err instanceof DatastoreDecodeError)) throw err;
      return { id: req.id, t: "list-error", error: decodeErrorToWire(err) };
    }
    const items = page.items.map((obj) => packer.outcome(outcomeOf(resource, obj, true)));
    return {
      id: req.id,
      t: "list",
      resourceVersion: page.resourceVersion,
      continueToken: page.continueToken,
      items,
      bytes: packer.bytes(),
    };
  }
  const events: WireEvent[] = [];
  let error: WireDecodeError | undefined;
  try {
    decodeWatchLines(Buffer.from(body.buffer, body.byteOffset, body.byteLength), req.resource, (event) => {
      events.push(packer.event(eventOf(resource, event, true)));
    });
  } catch (err) {
    if (!(err instanceof DatastoreDecodeError)) throw err;
    error = decodeErrorToWire(err);
  }
  return { id: req.id, t: "events", events, error, bytes: packer.bytes() };
}
