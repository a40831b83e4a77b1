/**
 * Kubernetes resource quantities (`1M`, `1.5Gi`, `2e3`), parsed with the grammar of apimachinery's
 * resource.ParseQuantity, and their integer value as Quantity.Value() gives it (rounded up, away from 0).
 * Calico reads its QoS annotations this way.
 */

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const SUFFIX_CHARS = "eEinumkKMGTP";

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

interface Scanned {
  isPositive: boolean;
  num: string;
  denom: string;
  suffix: string;
}

/** Splits a quantity into sign, integer digits, fraction digits and suffix, as apimachinery scans it. */
function scan(text: string): Scanned | undefined {
  let pos = 0;
  let isPositive = true;
  if (text[0] === "-") {
    isPositive = false;
    pos++;
  } else if (text[0] === "+") {
    pos++;
  }
  while (pos < text.length && text[pos] === "0") pos++;
  if (pos >= text.length) return { isPositive, num: "0", denom: "", suffix: "" };
  let i = pos;
  while (i < text.length && isDigit(text[i])) i++;
  const num = text.slice(pos, i) === "" ? "0" : text.slice(pos, i);
  pos = i;
  let denom = "";
  if (text[pos] === ".") {
    pos++;
    let j = pos;
    while (j < text.length && isDigit(text[j])) j++;
    denom = text.slice(pos, j);
    pos = j;
  }
  const suffixStart = pos;
  while (pos < text.length && SUFFIX_CHARS.includes(text[pos] ?? "")) pos++;
  if (text[pos] === "-" || text[pos] === "+") pos++;
  while (pos < text.length && isDigit(text[pos])) pos++;
  if (pos < text.length) return undefined;
  return { isPositive, num, denom, suffix: text.slice(suffixStart) };
}

/** The quantity's value rounded up to an integer (away from zero); undefined when it does not parse. */
export function quantityValue(text: string): bigint | undefined {
  if (text === "") return undefined;
  const s = scan(text);
  if (s === undefined) return undefined;
  let numerator = BigInt(s.num + s.denom);
  let denominator = 10n ** BigInt(s.denom.length);
  const binary = BINARY[s.suffix];
  const decimal = DECIMAL[s.suffix];
  let exp10 = 0;
  if (binary !== undefined) {
    numerator *= 2n ** BigInt(binary);
  } else if (decimal !== undefined) {
    exp10 = decimal;
  } else if (s.suffix.length > 1 && (s.suffix[0] === "e" || s.suffix[0] === "E")) {
    const e = s.suffix.slice(1);
    if (!/^[+-]?\d+$/.test(e)) return undefined;
    exp10 = Number(e);
    if (!Number.isSafeInteger(exp10) || Math.abs(exp10) > 1000) return undefined;
  } else {
    return undefined;
  }
  if (exp10 >= 0) numerator *= 10n ** BigInt(exp10);
  else denominator *= 10n ** BigInt(-exp10);
  const up = (numerator + denominator - 1n) / denominator;
  return s.isPositive || up === 0n ? up : -up;
}
