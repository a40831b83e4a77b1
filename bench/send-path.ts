/**
 * What one shared frame costs the sending process per socket: `ws`'s `send` against a socket write of
 * the frame pre-framed once (WebSocket header and payload in one Buffer, as a server sends it: unmasked).
 * A child process holds `--clients` plain `ws` clients on 127.0.0.1 that count what they receive; this
 * process sends `--frames` frames of `--bytes` each to every client, `--rate` flushes a second, and
 * reports its own CPU time (user + system, the kernel's loopback work included) per frame per socket.
 *
 *   npx tsx bench/send-path.ts [--clients 1000] [--bytes 3000] [--rate 20] [--seconds 10]
 */
import { fork } from "node:child_process";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";
import { parseArgs } from "node:util";
import { WebSocket, WebSocketServer } from "ws";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "1000" },
    bytes: { type: "string", default: "3000" },
    rate: { type: "string", default: "20" },
    seconds: { type: "string", default: "10" },
    child: { type: "string" },
  },
});

/** The WebSocket frame of a binary message, unmasked (RFC 6455 §5.2). */
function preFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const headerLength = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerLength + n);
  out[0] = 0x82;
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(n, 6);
  }
  payload.copy(out, headerLength);
  return out;
}

async function runClients(url: string, count: number): Promise<void> {
  let bytes = 0;
  let messages = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url);
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer) => {
      bytes += data.length;
      messages++;
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    sockets.push(ws);
  }
  process.send?.({ t: "open" });
  process.on("message", (m: { t: string }) => {
    if (m.t === "count") process.send?.({ t: "count", bytes, messages });
    if (m.t === "stop") {
      for (const ws of sockets) ws.terminate();
      process.exit(0);
    }
  });
}

function ask<T>(child: ReturnType<typeof fork>, t: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { t: string }) => {
      if (m.t !== t) return;
      child.off("message", on);
      resolve(m as T);
    };
    child.on("message", on);
    if (t !== "open") child.send({ t });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(
  method: "ws.send" | "pre-framed",
  sockets: readonly WebSocket[],
  child: ReturnType<typeof fork>,
  bytes: number,
  rate: number,
  seconds: number,
): Promise<void> {
  const before = await ask<{ bytes: number; messages: number }>(child, "count");
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let flushes = 0;
  const noop = (): void => {};
  for (let tick = 0; tick < rate * seconds; tick++) {
    const payload = Buffer.alloc(bytes, tick & 0xff);
    if (method === "ws.send") {
      for (const ws of sockets) ws.send(payload, { binary: true }, noop);
    } else {
      const frame = preFrame(payload);
      for (const ws of sockets) (ws as unknown as { _socket: Socket })._socket.write(frame, noop);
    }
    flushes++;
    const next = t0 + ((tick + 1) * 1000) / rate;
    await sleep(Math.max(0, next - performance.now()));
  }
  await sleep(500);
  const cpu = process.cpuUsage(cpu0);
  const after = await ask<{ bytes: number; messages: number }>(child, "count");
  const sends = flushes * sockets.length;
  const received = after.messages - before.messages;
  const cpuUs = cpu.user + cpu.system;
  console.log(
    `${method.padEnd(10)} ${sends} sends, ${received} received: ${(cpuUs / sends).toFixed(2)} µs CPU per send ` +
      `(user ${(cpu.user / sends).toFixed(2)}, system ${(cpu.system / sends).toFixed(2)}), ` +
      `${(cpuUs / 1e6 / ((performance.now() - t0) / 1000)).toFixed(3)} cores`,
  );
}

async function main(): Promise<void> {
  if (values.child !== undefined) return runClients(values.child, Number(values.clients));
  const clients = Number(values.clients);
  const bytes = Number(values.bytes);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  const sockets: WebSocket[] = [];
  wss.on("connection", (ws) => sockets.push(ws));
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const { port } = wss.address() as AddressInfo;
  const child = fork(
    new URL(import.meta.url).pathname,
    ["--child", `ws://127.0.0.1:${port}`, "--clients", String(clients)],
    {
      execArgv: process.execArgv,
    },
  );
  await ask(child, "open");
  console.log(
    `${clients} clients, ${bytes} B frames, ${rate} flushes/s, ${seconds} s per method, pid ${process.pid}`,
  );
  for (const method of ["ws.send", "pre-framed", "ws.send", "pre-framed"] as const) {
    await measure(method, sockets, child, bytes, rate, seconds);
  }
  child.send({ t: "stop" });
  await new Promise((r) => child.once("exit", r));
  wss.close();
}

await main();
