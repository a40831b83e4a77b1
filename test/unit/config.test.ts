import { describe, expect, it } from "vitest";
import { envOf, flagOf, SERVE_SETTINGS } from "../../src/server/config-schema.js";
import { loadServeConfig } from "../../src/server/config.js";

const err = (field: string) => expect.objectContaining({ code: "ERR_CONFIG_INVALID", field }) as Error;

describe("serve config", () => {
  it("uses Typha's defaults when nothing is set", () => {
    const c = loadServeConfig({}, {});
    expect([
      c.port,
      c.healthPort,
      c.metricsPort,
      c.pingIntervalMs,
      c.pongTimeoutMs,
      c.handshakeTimeoutMs,
    ]).toEqual([5473, 9098, 9093, 10_000, 60_000, 10_000]);
    expect(c.maxInboundFrameBytes).toBe(1024 * 1024);
    expect(c.kubeconfig).toBeUndefined();
  });

  it("takes a flag over its TABBY_* variable over the default", () => {
    expect(loadServeConfig({}, { TABBY_PORT: "6000" }).port).toBe(6000);
    expect(loadServeConfig({ port: "7000" }, { TABBY_PORT: "6000" }).port).toBe(7000);
    expect(loadServeConfig({}, { TABBY_FLUSH_WINDOW_MS: "25" }).flushWindowMs).toBe(25);
  });

  it("reads the Calico conversion settings, Felix's and calico-node's defaults when unset", () => {
    const d = loadServeConfig({}, {});
    expect([d.interfacePrefix, d.usePodCidr, d.calicoApiGroup]).toEqual([
      "cali",
      false,
      "crd.projectcalico.org/v1",
    ]);
    const c = loadServeConfig(
      { interfacePrefix: "tap,cali" },
      { TABBY_USE_POD_CIDR: "true", TABBY_CALICO_API_GROUP: "projectcalico.org/v3" },
    );
    expect([c.interfacePrefix, c.usePodCidr, c.calicoApiGroup]).toEqual([
      "tap,cali",
      true,
      "projectcalico.org/v3",
    ]);
    expect(() => loadServeConfig({ interfacePrefix: "toolong" }, {})).toThrow(err("interfacePrefix"));
    expect(() => loadServeConfig({ interfacePrefix: "ca li" }, {})).toThrow(err("interfacePrefix"));
    expect(() => loadServeConfig({ usePodCidr: "yes" }, {})).toThrow(err("usePodCidr"));
    expect(() => loadServeConfig({ calicoApiGroup: "projectcalico.org/v1" }, {})).toThrow(
      err("calicoApiGroup"),
    );
  });

  it("falls back to the first path of KUBECONFIG", () => {
    expect(loadServeConfig({}, { KUBECONFIG: "/a:/b" }).kubeconfig).toBe("/a");
    expect(loadServeConfig({ kubeconfig: "/c" }, { KUBECONFIG: "/a" }).kubeconfig).toBe("/c");
  });

  it("rejects bad values naming the field", () => {
    expect(() => loadServeConfig({ port: "http" }, {})).toThrow(err("port"));
    expect(() => loadServeConfig({}, { TABBY_PORT: "70000" })).toThrow(err("port"));
    expect(() => loadServeConfig({ flushWindowMs: "-1" }, {})).toThrow(err("flushWindowMs"));
    expect(() => loadServeConfig({ logLevel: "loud" }, {})).toThrow(err("logLevel"));
    expect(() => loadServeConfig({ pingIntervalMs: "40000" }, {})).toThrow(err("pongTimeoutMs"));
    expect(() => loadServeConfig({ healthPort: "5473" }, {})).toThrow(err("port"));
    expect(() => loadServeConfig({ bogus: "1" }, {})).toThrow(err("bogus"));
  });

  it("derives flag and variable names from the field", () => {
    expect(flagOf("maxInboundFrameBytes")).toBe("--max-inbound-frame-bytes");
    expect(envOf("maxInboundFrameBytes")).toBe("TABBY_MAX_INBOUND_FRAME_BYTES");
    for (const s of SERVE_SETTINGS) expect(s.description.length).toBeGreaterThan(10);
  });
});
