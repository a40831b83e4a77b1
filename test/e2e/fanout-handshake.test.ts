import { describe, expect, it } from "vitest";
import { CloseCode } from "../../proto/close-codes.js";
import { encodeValue } from "../../proto/codec.js";
import type { HelloMessage } from "../../proto/messages.js";
import { expectStillReceiving, hello, metricValue, RawClient, startFanout } from "./fanout-harness.js";

async function expectRejected(client: RawClient, code: number): Promise<void> {
  expect(await client.closed).toBe(code);
  if (code >= 4000) expect(client.messages("error")).toMatchObject([{ t: "error", code }]);
}

describe("fan-out handshake", () => {
  it("closes each bad session with its own code while another session keeps receiving", async () => {
    const h = await startFanout({ options: { maxInboundFrameBytes: 1024 } });
    const observer = await RawClient.live(h.url, hello({ view: "felix" }));

    const cases: { name: string; hello: HelloMessage | null; raw?: Buffer | string; code: number }[] = [
      { name: "not msgpack", hello: null, raw: Buffer.from([0xc1, 0x00, 0xff]), code: CloseCode.badFrame },
      { name: "text frame", hello: null, raw: "hello", code: CloseCode.badFrame },
      {
        name: "hello without client",
        hello: null,
        raw: encodeValue({ t: "hello", versions: [1, 1], view: "felix" }),
        code: CloseCode.badFrame,
      },
      { name: "unknown type", hello: null, raw: encodeValue({ t: "subscribe" }), code: CloseCode.badFrame },
      {
        name: "pong before hello",
        hello: null,
        raw: encodeValue({ t: "pong", ts: 1 }),
        code: CloseCode.badFrame,
      },
      { name: "unknown view", hello: hello({ view: "calico-everything" }), code: CloseCode.unknownView },
      { name: "unsupported version", hello: hello({ versions: [2, 3] }), code: CloseCode.unsupportedVersion },
      { name: "bgp without node", hello: hello({ view: "bgp" }), code: CloseCode.nodeRequired },
      {
        name: "node-status, empty node",
        hello: hello({ view: "node-status", node: "" }),
        code: CloseCode.nodeRequired,
      },
      { name: "oversized frame", hello: null, raw: Buffer.alloc(4096, 0x90), code: CloseCode.messageTooBig },
    ];
    for (const c of cases) {
      const client = await RawClient.connect(h.url, c.hello);
      if (c.raw !== undefined) client.send(c.raw);
      await expectRejected(client, c.code);
      await expectStillReceiving(h, observer);
    }
    expect(h.server.status().counters.dropped).toEqual({
      badFrame: 5,
      unknownView: 1,
      unsupportedVersion: 1,
      nodeRequired: 2,
      messageTooBig: 1,
    });
    expect(h.server.status().counters.badFrames).toEqual({
      "not-msgpack": 1,
      "text-frame": 1,
      "bad-message": 1,
      "unknown-type": 1,
      "out-of-order": 1,
      "too-large": 1,
    });
    expect(await metricValue(h.registry, "tabby_bad_frames_total", { reason: "too-large" })).toBe(1);
    expect(await metricValue(h.registry, "tabby_connections_dropped_total", { reason: "nodeRequired" })).toBe(
      2,
    );
    expect(h.server.status().connections.active).toBe(1);
  });

  it("closes a session that sends anything but pong (or leave after a move) after the handshake", async () => {
    const h = await startFanout();
    const observer = await RawClient.live(h.url, hello({ view: "felix" }));
    const twice = await RawClient.live(h.url, hello({ view: "felix" }));
    twice.send(hello({ view: "felix" }));
    await expectRejected(twice, CloseCode.badFrame);
    const garbage = await RawClient.live(h.url, hello({ view: "tunnel-ip-allocation" }));
    garbage.send(Buffer.from([0xc1, 0x00, 0xff]));
    await expectRejected(garbage, CloseCode.badFrame);
    // `leave` is only an answer to a `move` (PROTOCOL.md §5.5), even with the feature.
    const unmoved = await RawClient.live(h.url, hello({ view: "felix", features: ["move", "leave"] }));
    unmoved.send(encodeValue({ t: "leave" }));
    await expectRejected(unmoved, CloseCode.badFrame);
    await expectStillReceiving(h, observer);
    expect(h.server.status().counters.badFrames).toEqual({ "out-of-order": 2, "not-msgpack": 1 });
  });

  it("refuses sessions beyond maxConnections (handshaking connections take no slot)", async () => {
    const h = await startFanout({ options: { maxConnections: 2 } });
    const observer = await RawClient.live(h.url, hello({ view: "felix" }));
    const handshaking = await RawClient.connect(h.url, null);
    const second = await RawClient.live(h.url, hello({ view: "felix" }));
    const third = await RawClient.connect(h.url, null);
    await expectRejected(third, CloseCode.tooManyConnections);
    expect(handshaking.closeCode).toBeUndefined();
    await expectStillReceiving(h, observer);
    second.ws.close();
    await second.closed;
    const fourth = await RawClient.live(h.url, hello({ view: "felix" }));
    expect(fourth.welcome?.mode).toBe("snapshot");
    expect(await metricValue(h.registry, "tabby_connections_accepted_total")).toBe(5);
  });

  it("answers plain HTTP on the WebSocket port with 426", async () => {
    const h = await startFanout();
    const res = await fetch(`http://127.0.0.1:${h.port}/`);
    expect(res.status).toBe(426);
    await res.text();
  });
});
