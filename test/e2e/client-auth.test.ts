/**
 * The client's credentials: a token function is called before each connection (kubelet rotates the
 * projected token file), its failures are retried, and no TLS option can change a WebSocket limit.
 */
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { ClientErrorCode, ClientOptionsError, TabbyClient } from "../../src/client/index.js";
import { inSync, makeClient, makeServer, until } from "./client-test-utils.js";

describe("token option", () => {
  it("sends a string token in every hello", async () => {
    const server = await makeServer();
    const client = makeClient({ servers: [server.url], view: "felix", token: "static-token" });
    client.start();
    await inSync(client);
    expect(server.hellos.map((h) => h.token)).toEqual(["static-token"]);
  });

  it("calls a token function before each connection and sends what it returns", async () => {
    const server = await makeServer();
    let calls = 0;
    const client = makeClient({
      servers: [server.url],
      view: "felix",
      backoffInitialMs: 10,
      token: async (signal) => {
        expect(signal).toBeInstanceOf(AbortSignal);
        await Promise.resolve();
        return `token-${++calls}`;
      },
    });
    client.start();
    await inSync(client);
    server.closeAll(CloseCode.shuttingDown, "drain");
    await until(() => server.hellos.length === 2, 5000, "a second hello");
    expect(server.hellos.map((h) => h.token)).toEqual(["token-1", "token-2"]);
  });

  it("reports a failing token function as ERR_CLIENT_TOKEN and retries", async () => {
    const server = await makeServer();
    let calls = 0;
    const client = makeClient({
      servers: [server.url],
      view: "felix",
      backoffInitialMs: 10,
      token: () => {
        if (++calls === 1) throw new Error("token file not there yet");
        return calls === 2 ? "" : "late-token";
      },
    });
    const errors: string[] = [];
    client.on("error", (e) => errors.push(e.code));
    client.start();
    await inSync(client);
    expect(errors).toEqual([ClientErrorCode.token, ClientErrorCode.token]);
    expect(server.hellos.map((h) => h.token)).toEqual(["late-token"]);
    expect(server.connections).toBe(1);
  });

  it("bounds a token function that never answers by connectTimeoutMs", async () => {
    const server = await makeServer();
    let calls = 0;
    const client = makeClient({
      servers: [server.url],
      view: "felix",
      backoffInitialMs: 10,
      connectTimeoutMs: 50,
      token: (signal) =>
        ++calls === 1
          ? new Promise<string>((_, reject) =>
              signal.addEventListener("abort", () => reject(new Error("aborted"))),
            )
          : "t",
    });
    const errors: { code: string; timeout?: string | undefined }[] = [];
    client.on("error", (e) => errors.push({ code: e.code, timeout: (e as { timeout?: string }).timeout }));
    client.start();
    await inSync(client);
    expect(errors).toEqual([{ code: ClientErrorCode.timeout, timeout: "token" }]);
  });
});

describe("tls option", () => {
  it("refuses fields that are not TLS settings (so maxPayload cannot be lifted through it)", () => {
    for (const field of ["maxPayload", "perMessageDeflate", "closeTimeout", "headers"]) {
      expect(
        () =>
          new TabbyClient({
            servers: ["wss://127.0.0.1:1"],
            view: "felix",
            tls: { [field]: 1 },
          }),
      ).toThrow(expect.objectContaining({ code: ClientErrorCode.options, field: `tls.${field}` }) as Error);
    }
    expect(
      () => new TabbyClient({ servers: ["wss://127.0.0.1:1"], view: "felix", tls: { ca: 42 } as never }),
    ).toThrow(ClientOptionsError);
  });

  it("copies the TLS fields: a later change to the caller's object has no effect", async () => {
    const server = await makeServer();
    const tls: Record<string, unknown> = { rejectUnauthorized: true };
    const client = makeClient({ servers: [server.url], view: "felix", tls });
    tls.maxPayload = 1 << 30;
    client.start();
    await inSync(client);
  });
});
