/**
 * An ingest thread that crashes (an uncaught error while handling a request) and otherwise works as the
 * real one (src/server/datastore/ingest-thread.ts). TABBY_TEST_INGEST_CRASH says when: "always:<t>" (on
 * the first request of type <t>, "list" or "lines", of every thread), or "once:<file>:<t>" (the same, while
 * <file> does not exist, creating it: the threads started after the crash work).
 */
import { existsSync, writeFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { createIngestHandler, transferList } from "../../src/server/datastore/ingest-handler.js";
import type {
  IngestRequest,
  IngestThreadMessage,
  IngestWorkerData,
} from "../../src/server/datastore/ingest-worker.js";

const mode = /^(always|once:(.+)):(list|lines)$/.exec(process.env.TABBY_TEST_INGEST_CRASH ?? "");
const flag = mode?.[2];
let crashOn = mode !== null && (flag === undefined || !existsSync(flag)) ? mode[3] : undefined;
const handle = createIngestHandler(workerData as IngestWorkerData);
parentPort?.on("message", (req: IngestRequest) => {
  if (req.t === crashOn) {
    crashOn = undefined;
    if (flag !== undefined) writeFileSync(flag, "crashed\n");
    throw Object.assign(new Error("ingest thread test crash"), { code: "ERR_TEST_CRASH" });
  }
  const reply = handle(req);
  parentPort?.postMessage(reply, transferList(reply));
});
const ready: IngestThreadMessage = { t: "ready" };
parentPort?.postMessage(ready);
