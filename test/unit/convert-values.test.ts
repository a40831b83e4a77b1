import { describe, expect, it } from "vitest";
import { parseCidr, parseCidrOrIp, parseIp, formatIp } from "../../src/server/datastore/convert/ip.js";
import { convertUid, workloadEndpointName } from "../../src/server/datastore/convert/names.js";
import { quantityValue } from "../../src/server/datastore/convert/quantity.js";
import { parseDscp, qosControlsOf, QOS_LIMITS } from "../../src/server/datastore/convert/qos.js";

describe("Calico's names", () => {
  it.each([
    ["node", "pod", "node-k8s-pod-eth0"],
    ["node-1", "web-0", "node--1-k8s-web--0-eth0"],
    ["a-b-c", "x--y", "a--b--c-k8s-x----y-eth0"],
  ])("names the endpoint of %s/%s %s", (node, pod, want) => {
    expect(workloadEndpointName(node, pod)).toBe(want);
  });

  it.each([
    ["", "pod"],
    ["-node", "pod"],
    ["node-", "pod"],
    ["node", "-pod"],
    ["node", "pod-"],
  ])("refuses node %j pod %j, as lib/names does", (node, pod) => {
    expect(() => workloadEndpointName(node, pod)).toThrow(
      expect.objectContaining({ code: "ERR_CONVERT_NAME" }),
    );
  });

  it("derives uids as ConvertUID does, reversibly, keeping the UUID version and variant", () => {
    expect(convertUid("30316465-6365-4463-ad63-3564622d3638")).toBe("0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c");
    expect(convertUid("0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c")).toBe("30316465-6365-4463-ad63-3564622d3638");
    expect(convertUid("{30316465-6365-4463-ad63-3564622d3638}")).toBe("0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c");
    expect(convertUid("3031646563654463ad633564622d3638")).toBe("0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c");
    for (let i = 0; i < 200; i++) {
      const u = crypto.randomUUID();
      const c = convertUid(u) ?? "";
      expect(c[14]).toBe("4");
      expect(convertUid(c)).toBe(u);
    }
    expect(convertUid("not-a-uid")).toBeUndefined();
    expect(convertUid("")).toBeUndefined();
  });
});

describe("IPs and CIDRs with Go's rules", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1/32"],
    ["10.0.0.1/24", "10.0.0.0/24"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1/128"],
    ["2001:db8:0:0:0:0:2:1/64", "2001:db8::/64"],
    ["::ffff:10.1.2.3", "10.1.2.3/32"],
    ["fe80::1:2", "fe80::1:2/128"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3/128"],
    // IPNet.String(): a network still IPv4-mapped after masking prints as IPv4, its length less 96.
    ["::ffff:10.0.0.0/104", "10.0.0.0/8"],
    ["::ffff:10.1.2.3/120", "10.1.2.0/24"],
    ["::ffff:10.1.2.3/128", "10.1.2.3/32"],
    ["::ffff:10.0.0.0/64", "::/64"],
    // ParseCIDR reads the length with dtoi: leading zeros are fine.
    ["10.0.0.1/024", "10.0.0.0/24"],
    ["10.0.0.0/0000008", "10.0.0.0/8"],
  ])("reads %s as %s", (text, want) => {
    expect(parseCidrOrIp(text)?.network).toBe(want);
  });

  it.each([
    "010.0.0.1",
    "10.0.0.256",
    "fe80::1%eth0",
    "1::2::3",
    "10.0.0.1/33",
    "fd00::/129",
    "10.0.0.1/",
    "10.0.0.1/+8",
    "10.0.0.1/-1",
    "10.0.0.1/ 8",
    "10.0.0.1/0x8",
    "10.0.0.1/99999999999",
    "x",
  ])("refuses %s", (text) => {
    expect(parseCidrOrIp(text)).toBeUndefined();
  });

  it("tells a CIDR from a bare IP", () => {
    expect(parseCidr("10.0.0.1")).toBeUndefined();
    expect(parseIp("10.0.0.1/8")).toBeUndefined();
    expect(formatIp(parseIp("0:0:0:0:0:0:0:1") ?? { family: 6, bytes: [] })).toBe("::1");
  });
});

describe("Kubernetes quantities", () => {
  it.each([
    ["1M", 1_000_000n],
    ["1Mi", 1_048_576n],
    ["1.5Gi", 1_610_612_736n],
    ["1.01k", 1010n],
    ["2e3", 2000n],
    ["1E3", 1000n], // an exponent; a lone E is exa
    ["1E", 1_000_000_000_000_000_000n],
    ["0.5", 1n], // rounded up
    ["100m", 1n],
    ["-1.5", -2n], // away from zero
    ["+7", 7n],
    ["007", 7n],
  ])("reads %s as %s", (text, want) => {
    expect(quantityValue(text)).toBe(want);
  });

  it.each(["", "1K", "abc", "1.2.3", "1Mb", "1 M", "1e"])("refuses %j", (text) => {
    expect(quantityValue(text)).toBeUndefined();
  });
});

describe("QoS controls", () => {
  it("caps values to Calico's bounds and reports it", () => {
    const r = qosControlsOf({
      "qos.projectcalico.org/ingressBandwidth": "1",
      "qos.projectcalico.org/egressBandwidth": "10P",
      "qos.projectcalico.org/ingressBurst": "100G",
      "qos.projectcalico.org/egressPacketRate": "20k",
      "qos.projectcalico.org/egressPacketBurst": "0",
      "qos.projectcalico.org/ingressMaxConnections": "5G",
    });
    expect(r.controls).toEqual({
      ingressBandwidth: 1000,
      ingressBurst: Number(QOS_LIMITS.burst.max),
      egressBandwidth: 1e15,
      egressBurst: 4 * 1024 ** 3,
      egressPacketRate: 10_000,
      egressPacketBurst: 1,
      ingressMaxConnections: 4_294_967_295,
    });
    expect(r.problems.length).toBe(6);
  });

  it("drops settings without their base, as Calico does", () => {
    const r = qosControlsOf({
      "qos.projectcalico.org/ingressBurst": "1M",
      "qos.projectcalico.org/egressBandwidth": "5M",
      "qos.projectcalico.org/egressPeakrate": "4M", // not above the bandwidth
      "qos.projectcalico.org/egressMinburst": "2k", // needs a peakrate
      "qos.projectcalico.org/ingressPacketBurst": "10",
    });
    expect(r.controls).toEqual({ egressBandwidth: 5_000_000, egressBurst: 4 * 1024 ** 3 });
    expect(r.problems).toHaveLength(4);
  });

  it("is absent when nothing is configured", () => {
    expect(qosControlsOf({ other: "x" })).toEqual({ controls: undefined, problems: [] });
  });

  it.each([
    ["46", 46],
    ["0", 0],
    ["063", 63],
    ["ef", "EF"],
    ["Af11", "AF11"],
  ])("reads DSCP %s as %j", (text, want) => {
    expect(parseDscp(text)).toBe(want);
  });

  it.each(["64", "300", "-1", "+5", "XX", ""])("refuses DSCP %j", (text) => {
    expect(parseDscp(text)).toBeUndefined();
  });
});
