/**
 * The ingest worker's thread (node:worker_threads; started by ingest-worker.ts): answers each request with
 * createIngestHandler's reply, in order.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createIngestHandler, transferList } from "./ingest-handler.js";
import type { IngestRequest, IngestThreadMessage, IngestWorkerData } from "./ingest-worker.js";

const port = parentPort;
if (port === null) throw new Error("ingest-thread.ts runs as a worker thread only");
const handle = createIngestHandler(workerData as IngestWorkerData);
port.on("message", (req: IngestRequest) => {
  const reply = handle(req);
  port.postMessage(reply, transferList(reply));
});
const ready: IngestThreadMessage = { t: "ready" };
port.postMessage(ready);
