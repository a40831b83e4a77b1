import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCidr, parseCidrOrIp, parseIp, formatIp } from "../../src/server/datastore/convert/ip.js";
import { goRfc3339 } from "../../src/server/datastore/convert/go-json.js";
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

describe("metav1.Time", () => {
  it.each([
    ["2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"],
    ["2024-03-01T01:00:00,999+01:30", "2024-02-29T23:30:00Z"], // a fraction after `,` too, dropped
    ["2024-03-01T00:00:00+24:00", "2024-02-29T00:00:00Z"], // time.Parse allows offset hours up to 24
    ["9999-12-31T23:00:00-02:00", "10000-01-01T01:00:00Z"],
    ["2024-01-01T7:05:00Z", "2024-01-01T07:05:00Z"], // the layout's hour (15) may be one digit
    ["0001-01-01T00:00:00Z", null], // the zero time
    ["0001-01-01T01:00:00+01:00", null],
    ["0001-01-01T00:00:00.5Z", "0001-01-01T00:00:00Z"], // not IsZero: it has nanoseconds
  ])("reads %s as %s", (text, want) => {
    expect(goRfc3339(text)).toBe(want);
  });

  it.each([
    "1900-02-29T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:00:60Z",
    "2024-01-01t00:00:00Z",
    "2024-01-01T00:00:00z",
    "2024-01-01T00:00:00+25:00",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00",
    "2024-01-01",
  ])("refuses %s", (text) => {
    expect(goRfc3339(text)).toBeUndefined();
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
    ["e5", 0n], // no digits: the int64 fast path reads the number as 0
    ["0e-10", 0n],
  ])("reads %s as %s", (text, want) => {
    expect(quantityValue(text)).toBe(want);
  });

  it.each(["", "1K", "abc", "1.2.3", "1Mb", "1 M", "1e", "1e99999999999999999999"])("refuses %j", (text) => {
    expect(quantityValue(text)).toBeUndefined();
  });

  // Past nanos (a scale below −9) ParseQuantity reads the number with inf.Dec's SetString, which refuses a
  // number without a digit ("no digits read"): the quantity does not parse, where the fast path gives 0.
  it.each(["e-10", ".e-10", "+E-12", "-.e-99"])("refuses %j, which has no digit for inf.Dec", (text) => {
    expect(quantityValue(text)).toBeUndefined();
  });

  // Quantity.Value() is an int64: past its range Calico compares what Go computes, not the true value.
  it.each([
    ["9E", 9_000_000_000_000_000_000n],
    ["10E", 0n], // int64Amount{10, 18}: positiveScaleInt64's loop overflows and returns 0
    ["1e30", 0n],
    ["1e1000", 0n],
    ["9999999999999G", BigInt.asIntN(64, 9_999_999_999_999n * 10n ** 9n)], // scale 9 multiplies once, wrapping
    ["1234567890123456789012", BigInt.asIntN(64, 1_234_567_890_123_456_789_012n)], // inf.Dec → Int64()
    ["12345678901234567890.5", BigInt.asIntN(64, 12_345_678_901_234_567_891n)],
    ["8Ei", 2n ** 63n - 1n], // binary quantities are capped at 2^63 − 1
    ["100000Ei", 2n ** 63n - 1n],
    ["1Ei", 2n ** 60n],
    ["1e4294967296", 1n], // the exponent is truncated to 32 bits
    ["1e-20", 1n],
    ["-1e-20", 1n], // scaledValue rounds a negative remainder up
    ["-1.1Ki", -1125n], // -1126.4, the same way
    ["1.0000000001", 2n], // past nanos: the inf.Dec path, rounded up
    ["-9E", -9_000_000_000_000_000_000n],
  ])("gives %s the Value() Go gives: %s", (text, want) => {
    expect(quantityValue(text)).toBe(want);
  });

  // Negative values go exactly only on the int64 fast path (scaledValue rounds a negative inf.Dec towards
  // +∞ and past it, see -1e-20), so negative cases keep to decimal suffixes and a short fraction.
  it("gives the exact value rounded up (away from zero) whenever it fits an int64 comfortably", () => {
    const suffixes: [string, bigint, bigint][] = [
      ["", 1n, 1n],
      ["m", 1n, 1000n],
      ["k", 1000n, 1n],
      ["M", 10n ** 6n, 1n],
      ["G", 10n ** 9n, 1n],
      ["Ki", 1024n, 1n],
      ["Mi", 1024n ** 2n, 1n],
      ["Gi", 1024n ** 3n, 1n],
      ["e2", 100n, 1n],
      ["e-2", 1n, 100n],
    ];
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.bigInt({ min: 0n, max: 10n ** 8n }),
        fc.stringMatching(/^[0-9]{0,12}$/),
        fc.constantFrom(...suffixes),
        (isNegative, whole, fraction, [suffix, mul, div]) => {
          if (isNegative && (suffix.endsWith("i") || fraction.length > 6)) return;
          const text = `${isNegative ? "-" : ""}${whole}${fraction === "" ? "" : "."}${fraction}${suffix}`;
          const num = (whole * 10n ** BigInt(fraction.length) + BigInt(fraction === "" ? 0 : fraction)) * mul;
          const den = 10n ** BigInt(fraction.length) * div;
          const up = (num + den - 1n) / den;
          expect(quantityValue(text)).toBe(isNegative && up !== 0n ? -up : up);
        },
      ),
    );
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

  it("compares Go's int64 Value(): a quantity past int64 can cap to the minimum", () => {
    const r = qosControlsOf({
      "qos.projectcalico.org/ingressBandwidth": "10E", // Value() 0: below 1k
      "qos.projectcalico.org/egressBandwidth": "100000Ei", // capped at 2^63 − 1: above 1P
    });
    expect(r.controls).toMatchObject({ ingressBandwidth: 1000, egressBandwidth: 1e15 });
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

  it("unsets a field whose annotation does not parse, even over the Kubernetes one", () => {
    // parseAndValidateQty returns 0 for a ParseQuantity error, and the Calico annotation is read second.
    const r = qosControlsOf({
      "kubernetes.io/ingress-bandwidth": "10M",
      "qos.projectcalico.org/ingressBandwidth": ".e-10",
      "qos.projectcalico.org/egressBandwidth": "e-10",
    });
    expect(r.controls).toBeUndefined();
    expect(r.problems).toHaveLength(2);
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
    ["c\u017f5", "CS5"], // strings.EqualFold: ſ folds to s, so DSCPFromString gives the name
    [" af11 ", " af11 "], // Validate reads ToUpper(TrimSpace(s)); the value keeps the text
    ["\u0085EF", "\u0085EF"], // Go's TrimSpace trims NEL
  ])("reads DSCP %j as %j", (text, want) => {
    expect(parseDscp(text)).toBe(want);
  });

  it.each(["64", "300", "-1", "+5", "XX", "", "\ufeffEF", "__proto__", "constructor"])(
    "refuses DSCP %j",
    (text) => {
      expect(parseDscp(text)).toBeUndefined();
    },
  );
});
