import { request } from "node:http";
import type { ClientRequest, IncomingMessage } from "node:http";
import type { BaselineProgress, BaselineResource } from "./protocol.js";

/** Agents set up at a time (list + watch of every resource), per worker. */
const SETUP_CONCURRENCY = 16;
const LIST_PAGE_SIZE = 500;
const MAX_ERRORS_KEPT = 10;

interface BaselineConfig {
  readonly url: string;
  readonly token: string;
  readonly agents: number;
  readonly resources: readonly BaselineResource[];
  readonly listAgents: number;
  readonly watchTimeoutSeconds: number;
}

/**
 * What tabby replaces: agents that each list and watch the API server directly. Each agent lists every
 * resource (a full paged list for the first `listAgents`, else a one-item list for the resourceVersion,
 * bodies counted but not kept), then holds one watch per resource until the watches time out or close().
 */
export class BaselineAgents {
  readonly #requests = new Set<ClientRequest>();
  #isClosed = false;
  #watchesOpen = 0;
  #watchesFailed = 0;
  #listsDone = 0;
  #listBytes = 0;
  #probeBytes = 0;
  #listMs = 0;
  #watchBytes = 0;
  #watchEvents = 0;
  #agents = 0;
  readonly #errors: string[] = [];

  start(config: BaselineConfig): number {
    this.#agents = config.agents;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (!this.#isClosed && next < config.agents) {
        const index = next++;
        await this.#setUpAgent(config, index < config.listAgents);
      }
    };
    for (let i = 0; i < Math.min(SETUP_CONCURRENCY, config.agents); i++) {
      lane().catch((err: unknown) => this.#error(`setup: ${String(err)}`));
    }
    return config.agents;
  }

  progress(): BaselineProgress {
    return {
      agents: this.#agents,
      watchesOpen: this.#watchesOpen,
      watchesFailed: this.#watchesFailed,
      listsDone: this.#listsDone,
      listBytes: this.#listBytes,
      probeBytes: this.#probeBytes,
      listSeconds: this.#listMs / 1000,
      watchBytes: this.#watchBytes,
      watchEvents: this.#watchEvents,
      errors: [...this.#errors],
    };
  }

  close(): void {
    this.#isClosed = true;
    for (const r of this.#requests) r.destroy();
    this.#requests.clear();
  }

  async #setUpAgent(config: BaselineConfig, isFullList: boolean): Promise<void> {
    const started = performance.now();
    let isListed = true;
    for (const r of config.resources) {
      if (this.#isClosed) return;
      let rv: string;
      try {
        rv = isFullList
          ? await this.#fullList(config, r)
          : await this.#listPage(config, r, 1, undefined, false).then((p) => p.rv);
      } catch (err) {
        isListed = false;
        this.#watchesFailed++;
        this.#error(`list ${r.id}: ${String(err)}`);
        continue;
      }
      this.#watch(config, r, rv);
    }
    if (isFullList && isListed) {
      this.#listsDone++;
      this.#listMs += performance.now() - started;
    }
  }

  async #fullList(config: BaselineConfig, r: BaselineResource): Promise<string> {
    let token: string | undefined;
    let rv = "";
    do {
      const page = await this.#listPage(config, r, LIST_PAGE_SIZE, token, true);
      rv = page.rv;
      token = page.continueToken;
    } while (token !== undefined && !this.#isClosed);
    return rv;
  }

  #listPage(
    config: BaselineConfig,
    r: BaselineResource,
    limit: number,
    continueToken: string | undefined,
    isFullList: boolean,
  ): Promise<{ rv: string; continueToken: string | undefined }> {
    const query = new URLSearchParams({ limit: String(limit) });
    if (continueToken !== undefined) query.set("continue", continueToken);
    return new Promise((resolve, reject) => {
      const req = request(
        `${config.url}${r.path}?${query.toString()}`,
        { headers: { authorization: `Bearer ${config.token}` }, agent: false },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => {
            if (isFullList) this.#listBytes += c.byteLength;
            else this.#probeBytes += c.byteLength;
            chunks.push(c);
          });
          res.on("end", () => {
            this.#requests.delete(req);
            if (res.statusCode !== 200) {
              reject(new Error(`HTTP ${res.statusCode ?? "?"}`));
              return;
            }
            try {
              const body = JSON.parse(Buffer.concat(chunks).toString()) as {
                metadata?: { resourceVersion?: string; continue?: string };
              };
              const next = body.metadata?.continue;
              resolve({
                rv: body.metadata?.resourceVersion ?? "",
                continueToken: next === undefined || next === "" ? undefined : next,
              });
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
          res.on("error", reject);
        },
      );
      this.#requests.add(req);
      req.on("error", (err) => {
        this.#requests.delete(req);
        reject(err);
      });
      req.end();
    });
  }

  #watch(config: BaselineConfig, r: BaselineResource, rv: string): void {
    const query = new URLSearchParams({
      watch: "1",
      resourceVersion: rv,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(config.watchTimeoutSeconds),
    });
    let isOpen = false;
    const req = request(
      `${config.url}${r.path}?${query.toString()}`,
      { headers: { authorization: `Bearer ${config.token}` }, agent: false },
      (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          this.#watchesFailed++;
          this.#error(`watch ${r.id}: HTTP ${res.statusCode ?? "?"}`);
          res.resume();
          return;
        }
        isOpen = true;
        this.#watchesOpen++;
        res.on("data", (c: Buffer) => {
          this.#watchBytes += c.byteLength;
          // One JSON event per line; counting newlines counts events without parsing them.
          for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) this.#watchEvents++;
        });
        res.on("close", () => {
          this.#requests.delete(req);
          if (isOpen) this.#watchesOpen--;
          isOpen = false;
        });
      },
    );
    this.#requests.add(req);
    req.on("error", (err) => {
      this.#requests.delete(req);
      if (isOpen) return; // the response's close event accounts for it
      if (!this.#isClosed) {
        this.#watchesFailed++;
        this.#error(`watch ${r.id}: ${err.message}`);
      }
    });
    req.end();
  }

  #error(text: string): void {
    if (this.#errors.length < MAX_ERRORS_KEPT) this.#errors.push(text);
  }
}
