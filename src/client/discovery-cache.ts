import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { isServerAddress } from "./options.js";
import type { ClientLogger } from "./options.js";

/** One replica found by discovery: its agent address, and where it runs when the EndpointSlice says. */
export interface DiscoveredEndpoint {
  readonly url: string;
  readonly node?: string;
  readonly zone?: string;
}

export interface KeptList {
  readonly endpoints: readonly DiscoveredEndpoint[];
  readonly savedAtMs: number;
  readonly source: "memory" | "file";
}

/** Most endpoints kept (and read back from a file). */
const MAX_ENDPOINTS = 1000;
/** A cache file larger than this is not read. */
const MAX_FILE_BYTES = 1024 * 1024;

/**
 * The last good list of a Service's endpoints: in memory, and in `file` when given. The file is JSON
 * (`{version: 1, service, savedAtMs, endpoints}`) written atomically (a temporary file in the same
 * directory, then a rename), and only when the list changed; one for another Service is ignored.
 */
export class LastGoodList {
  readonly #service: string;
  readonly #file: string | undefined;
  readonly #logger: ClientLogger;
  #memory: { endpoints: readonly DiscoveredEndpoint[]; savedAtMs: number } | undefined;
  #savedJson: string | undefined;

  constructor(service: string, file: string | undefined, logger: ClientLogger) {
    this.#service = service;
    this.#file = file;
    this.#logger = logger;
  }

  inMemory(): KeptList | undefined {
    return this.#memory === undefined ? undefined : { ...this.#memory, source: "memory" };
  }

  /** Keeps `endpoints` in memory and writes the file when they differ from what it holds. Never throws. */
  async save(endpoints: readonly DiscoveredEndpoint[], nowMs: number): Promise<void> {
    const kept = endpoints.slice(0, MAX_ENDPOINTS);
    this.#memory = { endpoints: kept, savedAtMs: nowMs };
    if (this.#file === undefined) return;
    const sorted = [...kept].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
    const json = JSON.stringify(sorted);
    if (json === this.#savedJson) return;
    const body = JSON.stringify({ version: 1, service: this.#service, savedAtMs: nowMs, endpoints: sorted });
    const tmp = `${this.#file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, this.#file);
      this.#savedJson = json;
    } catch (err) {
      // The list still works from memory; the next good list tries again.
      this.#logger.warn({ err, file: this.#file }, "cannot write the discovery cache file");
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /** The list in memory, else the one in the file (checked), else undefined. Never throws. */
  async read(): Promise<KeptList | undefined> {
    if (this.#memory !== undefined) return { ...this.#memory, source: "memory" };
    if (this.#file === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(this.#file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        this.#logger.warn({ err, file: this.#file }, "cannot read the discovery cache file");
      }
      return undefined;
    }
    const parsed = parseCache(text, this.#service);
    if (parsed === undefined) {
      this.#logger.warn(
        { file: this.#file },
        "the discovery cache file is not a list of this Service: ignored",
      );
      return undefined;
    }
    return { ...parsed, source: "file" };
  }
}

function parseCache(
  text: string,
  service: string,
): { endpoints: DiscoveredEndpoint[]; savedAtMs: number } | undefined {
  if (text.length > MAX_FILE_BYTES) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  const b = body as { version?: unknown; service?: unknown; savedAtMs?: unknown; endpoints?: unknown } | null;
  if (b === null || typeof b !== "object" || b.version !== 1 || b.service !== service) return undefined;
  if (!Array.isArray(b.endpoints)) return undefined;
  const endpoints: DiscoveredEndpoint[] = [];
  for (const e of b.endpoints.slice(0, MAX_ENDPOINTS) as unknown[]) {
    const r = e as { url?: unknown; node?: unknown; zone?: unknown } | null;
    if (r === null || typeof r !== "object" || !isServerAddress(r.url)) continue;
    endpoints.push({
      url: r.url,
      ...(typeof r.node === "string" && { node: r.node }),
      ...(typeof r.zone === "string" && { zone: r.zone }),
    });
  }
  if (endpoints.length === 0) return undefined;
  return { endpoints, savedAtMs: typeof b.savedAtMs === "number" ? b.savedAtMs : 0 };
}
