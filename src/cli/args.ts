import { InvalidArgumentError } from "commander";

/** A commander parser for a whole number of at least `min`. */
export function wholeNumber(min: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`must be a whole number >= ${min}`);
    }
    return n;
  };
}

/**
 * Arguments of a `tabby serve` on loopback with ephemeral health and metrics ports, as the demo, the load
 * test and the tests run it; `extra` flags come last and win.
 */
export function loopbackServeArgs(
  kubeconfig: string,
  options: { port?: number; extra?: readonly string[] } = {},
): string[] {
  return [
    "serve",
    "--kubeconfig",
    kubeconfig,
    "--host",
    "127.0.0.1",
    "--http-host",
    "127.0.0.1",
    "--port",
    String(options.port ?? 0),
    "--health-port",
    "0",
    "--metrics-port",
    "0",
    "--drain-ms",
    "1000",
    "--log-level",
    "warn",
    // Loopback tools: agents connect without credentials (the server logs a warning).
    "--insecure-allow-anonymous",
    "true",
    // Every agent comes from 127.0.0.1, thousands at once in the load test.
    "--max-handshaking-per-source",
    "0",
    "--max-handshaking-connections",
    "100000",
    ...(options.extra ?? []),
  ];
}
