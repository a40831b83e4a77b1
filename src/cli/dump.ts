import { Command, InvalidArgumentError } from "commander";
import { VIEW_NAMES } from "../../proto/messages.js";
import type { ViewName } from "../../proto/messages.js";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { TabbyClient } from "../client/index.js";
import type { ClientTlsOptions, TabbyClientError, TokenSource } from "../client/index.js";

function parseView(v: string): ViewName {
  if (!(VIEW_NAMES as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`--view must be one of ${VIEW_NAMES.join(", ")}`);
  }
  return v as ViewName;
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("must be a positive whole number");
  return n;
}

export interface DumpOptions {
  readonly servers: readonly string[];
  readonly view: ViewName;
  readonly node?: string;
  readonly timeoutMs: number;
  /** TLS for wss:// servers (CA, client certificate and key, server name). */
  readonly tls?: ClientTlsOptions;
  /** Bearer token for the hello, or a function read before each connection. */
  readonly token?: string | TokenSource;
}

/** A token function that re-reads `file` before each connection (a projected token kubelet rotates). */
export function tokenFromFile(file: string): TokenSource {
  return async (signal) => (await readFile(file, { encoding: "utf8", signal })).trim();
}

/**
 * Connects with the client library, waits until the view is in sync, and returns the mirror as lines
 * `{"key": ..., "value": ...}` sorted by key. Rejects with the client's error (or a timeout).
 */
export async function dumpView(options: DumpOptions): Promise<string[]> {
  const abort = new AbortController();
  const client = new TabbyClient({
    servers: options.servers,
    view: options.view,
    ...(options.node !== undefined && { nodeName: options.node }),
    clientName: "tabby-dump",
    signal: abort.signal,
    ...(options.tls !== undefined && { tls: options.tls }),
    ...(options.token !== undefined && { token: options.token }),
  });
  let lastError: TabbyClientError | undefined;
  client.on("error", (err) => {
    lastError = err;
  });
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  try {
    client.start();
    await client.synced();
    return client
      .keys()
      .sort()
      .map((key) => JSON.stringify({ key, value: client.get(key) }));
  } catch (err) {
    if (abort.signal.aborted) {
      const why = lastError === undefined ? "" : ` (last error: ${lastError.code}: ${lastError.message})`;
      throw new Error(`not in sync within ${options.timeoutMs} ms${why}`, { cause: err });
    }
    throw lastError ?? err;
  } finally {
    clearTimeout(timer);
    await client.close();
  }
}

export function dumpCommand(): Command {
  return new Command("dump")
    .description("Print a view as JSON lines sorted by key, once in sync, then exit.")
    .requiredOption("--server <url...>", "server address(es), e.g. ws://127.0.0.1:5473")
    .requiredOption("--view <view>", `view: ${VIEW_NAMES.join(", ")}`, parseView)
    .option("--node <name>", "node name (required for bgp and node-status)")
    .option("--timeout-ms <ms>", "give up if not in sync within this", parsePositive, 30_000)
    .option("--ca-file <path>", "PEM CA bundle that signs the server's certificate (wss://)")
    .option("--cert-file <path>", "PEM client certificate (mTLS)")
    .option("--key-file <path>", "PEM private key of --cert-file")
    .option("--server-name <name>", "name the server's certificate must carry (default the URL's host)")
    .option(
      "--token-file <path>",
      "file with the bearer token (a projected ServiceAccount token), re-read before each connection",
    )
    .action(async (opts: DumpFlags) => {
      try {
        const lines = await dumpView({
          servers: opts.server,
          view: opts.view,
          ...(opts.node !== undefined && { node: opts.node }),
          timeoutMs: opts.timeoutMs,
          ...tlsAndTokenOf(opts),
        });
        process.stdout.write(lines.length === 0 ? "" : `${lines.join("\n")}\n`);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        console.error(`tabby dump: ${e.code === undefined ? "" : `${e.code}: `}${e.message ?? String(err)}`);
        process.exitCode = 1;
      }
    });
}

interface DumpFlags {
  server: string[];
  view: ViewName;
  node?: string;
  timeoutMs: number;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  serverName?: string;
  tokenFile?: string;
}

/** The client's tls and token options from dump's flags (the PEM files are read once, here). */
function tlsAndTokenOf(opts: DumpFlags): Pick<DumpOptions, "tls" | "token"> {
  if ((opts.certFile === undefined) !== (opts.keyFile === undefined)) {
    throw new InvalidArgumentError("--cert-file and --key-file go together");
  }
  const tls: Record<string, string> = {};
  if (opts.caFile !== undefined) tls.ca = readFileSync(opts.caFile, "utf8");
  if (opts.certFile !== undefined) tls.cert = readFileSync(opts.certFile, "utf8");
  if (opts.keyFile !== undefined) tls.key = readFileSync(opts.keyFile, "utf8");
  if (opts.serverName !== undefined) tls.servername = opts.serverName;
  return {
    ...(Object.keys(tls).length > 0 && { tls: tls }),
    ...(opts.tokenFile !== undefined && { token: tokenFromFile(opts.tokenFile) }),
  };
}
