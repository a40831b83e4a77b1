/**
 * IP and CIDR parsing with the rules of Go's `net` package, which Calico's conversion uses
 * (`net.ParseIP`, `net.ParseCIDR`, `IPNet.String()`): dotted IPv4 without leading zeros, IPv6 without a
 * zone, networks printed masked, IPv6 in RFC 5952 form.
 */

export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes. */
  readonly bytes: readonly number[];
}

function parseV4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith("0"))) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function parseV6(text: string): number[] | undefined {
  if (text.includes("%")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? "";
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(v4[0]! * 256 + v4[1]!, v4[2]! * 256 + v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = groups(halves[0] ?? "");
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return undefined;
  // An embedded IPv4 tail may only end the address.
  if (halves.length === 2 && (halves[0] ?? "").includes(".")) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  const bytes: number[] = [];
  for (const g of all) bytes.push(g >> 8, g & 0xff);
  return bytes;
}

/** Parses an IP as Go's net.ParseIP does; undefined when malformed. */
export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(":")) {
    const bytes = parseV6(text);
    if (bytes === undefined) return undefined;
    const isMapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    return isMapped ? { family: 4, bytes: bytes.slice(12) } : { family: 6, bytes };
  }
  const bytes = parseV4(text);
  return bytes === undefined ? undefined : { family: 4, bytes };
}

/** Formats an address as Go's IP.String() does. */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return ip.bytes.join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i] ?? 0) * 256 + (ip.bytes[i + 1] ?? 0));
  // The longest run of two or more zero groups becomes "::" (the first one on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export interface IpNetwork {
  /** The address as written (unmasked). */
  readonly ip: IpAddress;
  /** The length as written (of the 16-byte form for an IPv4-mapped address: Go's Mask.Size()). */
  readonly prefixLength: number;
  /** The masked network, as Go's IPNet.String() prints it: `10.0.0.0/24`. */
  readonly network: string;
}

function masked(ip: IpAddress, prefixLength: number): IpAddress {
  const bytes = ip.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefixLength - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
  return { family: ip.family, bytes };
}

/** Parses `addr/len` as Go's net.ParseCIDR does; undefined when malformed. */
export function parseCidr(text: string): IpNetwork | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  const ip = parseIp(addrText);
  // Go reads the length with dtoi: decimal digits, leading zeros allowed ("/024" is /24).
  if (ip === undefined || !/^\d+$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  if (addrText.includes(":")) {
    // Go keeps IPv6 prefix lengths for an IPv4-mapped address: mask the 16-byte form.
    if (prefixLength > 128) return undefined;
    const bytes16 = ip.family === 4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.bytes] : ip.bytes;
    const net = masked({ family: 6, bytes: bytes16 }, prefixLength);
    const shown = parseIp(formatIp(net)) ?? net;
    // IPNet.String() prints a network that is still IPv4-mapped after masking (length ≥ 96) as IPv4,
    // with the length of the last 32 bits: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
    const shownLength = shown.family === 4 ? prefixLength - 96 : prefixLength;
    return { ip, prefixLength, network: `${formatIp(shown)}/${shownLength}` };
  }
  if (prefixLength > 32) return undefined;
  return { ip, prefixLength, network: `${formatIp(masked(ip, prefixLength))}/${prefixLength}` };
}

/** Calico's ParseCIDROrIP: a CIDR (masked), or a bare IP as a /32 or /128; undefined when malformed. */
export function parseCidrOrIp(text: string): IpNetwork | undefined {
  const cidr = parseCidr(text);
  if (cidr !== undefined) return cidr;
  const ip = parseIp(text);
  if (ip === undefined) return undefined;
  const prefixLength = ip.family === 4 ? 32 : 128;
  return { ip, prefixLength, network: `${formatIp(ip)}/${prefixLength}` };
}
