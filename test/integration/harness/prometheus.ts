/**
 * A real Prometheus (Debian's 2.42, `apt-get install prometheus`; `.ci/run` provisions it) on a free
 * loopback port with a temp config and storage, for the monitoring tests. Never the packaged service:
 * this starts its own process and stops it by PID.
 */
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { IntegrationSetupError } from "../cluster.js";
import { ManagedProcess } from "./managed-process.js";
import { FatalWaitError, freePorts, waitFor } from "./wait.js";

export const PROMETHEUS_PATH = "/usr/bin/prometheus";
export const PROMTOOL_PATH = "/usr/bin/promtool";

const HINT = "install it with `apt-get install prometheus` (see docs/INTEGRATION.md)";

export function requireBinary(file: string): string {
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new IntegrationSetupError(`${file} not found: ${HINT}`);
  }
  return file;
}

export interface PrometheusOptions {
  /** `host:port` targets of one job named `tabby`. */
  readonly targets: readonly string[];
  /** Rule files as YAML text (written into the temp dir). */
  readonly ruleFiles?: readonly string[];
  /** Scrape and rule evaluation interval; default "1s". */
  readonly interval?: string;
}

export interface AlertInfo {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: "pending" | "firing";
}

export interface Prometheus {
  readonly url: string;
  readonly pid: number;
  /** An instant query; resolves with the vector's samples as [labels, value]. */
  query(promql: string): Promise<[Record<string, string>, number][]>;
  /** Active alerts (pending and firing) from /api/v1/alerts. */
  alerts(): Promise<AlertInfo[]>;
  /** Stops the process and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

interface ApiAnswer<T> {
  status: string;
  data: T;
  error?: string;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== "success") throw new Error(`prometheus ${url}: ${body.error ?? res.status}`);
  return body.data;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const binary = requireBinary(PROMETHEUS_PATH);
  const dir = await mkdtemp(path.join(process.env.TABBY_INTEGRATION_RUN_DIR ?? os.tmpdir(), "prometheus-"));
  const interval = options.interval ?? "1s";
  const ruleFiles: string[] = [];
  for (const [i, text] of (options.ruleFiles ?? []).entries()) {
    const file = path.join(dir, `rules-${i}.yaml`);
    await writeFile(file, text);
    ruleFiles.push(file);
  }
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: "tabby", static_configs: [{ targets: [...options.targets] }] }],
  };
  const configPath = path.join(dir, "prometheus.yml");
  await writeFile(configPath, stringify(config));
  const [port] = (await freePorts(1)) as [number];
  const url = `http://127.0.0.1:${port}`;
  const proc = new ManagedProcess(
    "prometheus",
    binary,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=1h",
      "--log.level=warn",
    ],
    dir,
  );
  const stop = async (): Promise<void> => {
    await proc.stop("SIGTERM", 10_000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (!proc.isRunning) throw new FatalWaitError(`prometheus exited early:\n${proc.outputTail()}`);
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).catch(
          () => undefined,
        );
        return res?.status === 200 ? true : undefined;
      },
      {
        what: `prometheus at ${url}`,
        timeoutMs: 60_000,
        intervalMs: 200,
        describeFailure: () => proc.outputTail(),
      },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    pid: proc.pid,
    query: async (promql) => {
      const data = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
        `${url}/api/v1/query?query=${encodeURIComponent(promql)}`,
      );
      return data.result.map((r) => [r.metric, Number(r.value[1])]);
    },
    alerts: async () => (await api<{ alerts: AlertInfo[] }>(`${url}/api/v1/alerts`)).alerts,
    stop,
  };
}
