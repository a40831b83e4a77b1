/**
 * Kubernetes resource quantities (`1M`, `1.5Gi`, `2e3`) as apimachinery's resource.ParseQuantity reads
 * them, and the int64 that Quantity.Value() gives, which is what Calico compares with its QoS bounds:
 * rounded up (away from zero), and, past int64, what Go computes rather than the true value (0 for
 * `10E`, a wrapped product for `9999999999999G`, 2^63 − 1 for a huge binary quantity).
 */

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const SUFFIX_CHARS = "eEinumkKMGTP";
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const NANO = 1_000_000_000n;
/** apimachinery's maxInt64Factors: the decimal digits an int64 always holds. */
const MAX_INT64_FACTORS = 18;

const int64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const int32 = (v: bigint): bigint => BigInt.asIntN(32, v);

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

interface Scanned {
  isPositive: boolean;
  /**
   * Whether the number part has a digit (leading zeros count). Without one, the inf.Dec path's SetString
   * fails ("no digits read"), so ParseQuantity fails when it takes that path (`e-10`, `.e-10`).
   */
  hasDigits: boolean;
  /** Integer digits without leading zeros ("0" when none). */
  num: string;
  /** Fraction digits. */
  denom: string;
  suffix: string;
}

/** Splits a quantity into sign, integer digits, fraction digits and suffix, as parseQuantityString does. */
function scan(text: string): Scanned | undefined {
  let pos = 0;
  let isPositive = true;
  if (text[0] === "-") {
    isPositive = false;
    pos++;
  } else if (text[0] === "+") {
    pos++;
  }
  const numberStart = pos;
  while (pos < text.length && text[pos] === "0") pos++;
  // All zeros (or only a sign) to the end: Go returns 0 here, before any other check.
  if (pos >= text.length) return { isPositive, hasDigits: true, num: "0", denom: "", suffix: "" };
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
  const hasDigits = /[0-9]/.test(text.slice(numberStart, pos));
  const suffixStart = pos;
  while (pos < text.length && SUFFIX_CHARS.includes(text[pos] ?? "")) pos++;
  if (text[pos] === "-" || text[pos] === "+") pos++;
  while (pos < text.length && isDigit(text[pos])) pos++;
  if (pos < text.length) return undefined;
  return { isPositive, hasDigits, num, denom, suffix: text.slice(suffixStart) };
}

interface Suffix {
  base: 2 | 10;
  /** An int32, as Go holds it (an `e` exponent is truncated to 32 bits). */
  exponent: bigint;
  isBinary: boolean;
}

/** quantitySuffixer.interpret: a decimal or binary SI suffix, or `e`/`E` + an int64 exponent. */
function interpret(suffix: string): Suffix | undefined {
  const decimal = DECIMAL[suffix];
  if (decimal !== undefined) return { base: 10, exponent: BigInt(decimal), isBinary: false };
  const binary = BINARY[suffix];
  if (binary !== undefined) return { base: 2, exponent: BigInt(binary), isBinary: true };
  if (suffix.length > 1 && (suffix[0] === "e" || suffix[0] === "E")) {
    const e = suffix.slice(1);
    if (!/^[+-]?\d+$/.test(e)) return undefined;
    const parsed = BigInt(e);
    if (parsed > INT64_MAX || parsed < INT64_MIN) return undefined; // strconv.ParseInt(…, 10, 64) fails
    return { base: 10, exponent: int32(parsed), isBinary: false };
  }
  return undefined;
}

/** int64Amount.AsScaledInt64(0): value × 10^scale as Go's positive/negativeScaleInt64 compute it. */
function int64AmountValue(value: bigint, scale: bigint): bigint {
  if (scale === 0n || value === 0n) return 0n + value;
  if (scale < 0n) {
    // negativeScaleInt64: divided, rounded away from zero.
    const d = 10n ** -scale;
    const q = value / d;
    return q * d === value ? q : q + (value > 0n ? 1n : -1n);
  }
  // Scales 1, 2, 3, 6 and 9 multiply once and keep the wrapped product; others multiply by 10 in a loop
  // that returns 0 on overflow.
  if (scale === 1n || scale === 2n || scale === 3n || scale === 6n || scale === 9n) {
    return int64(value * 10n ** scale);
  }
  if (scale > 19n) return 0n;
  const exact = value * 10n ** scale;
  return exact > INT64_MAX || exact < INT64_MIN ? 0n : exact;
}

/** ceil(n / d) for n, d > 0. */
function ceilDiv(n: bigint, d: bigint): bigint {
  return (n + d - 1n) / d;
}

/** The quantity's Quantity.Value() (see the file comment); undefined when ParseQuantity fails. */
export function quantityValue(text: string): bigint | undefined {
  if (text === "") return undefined;
  if (text === "0") return 0n;
  const s = scan(text);
  if (s === undefined) return undefined;
  const suffix = interpret(s.suffix);
  if (suffix === undefined) return undefined;
  const fractionDigits = BigInt(s.denom.length);

  // The int64 fast path, taken when the digits surely fit.
  let precision: number;
  let scale = 0n;
  let mantissa = 1n;
  if (!suffix.isBinary) {
    scale = suffix.exponent;
    precision = MAX_INT64_FACTORS - (s.num.length + s.denom.length);
  } else if (s.denom === "") {
    mantissa = 1n << suffix.exponent;
    precision = 15 - s.num.length - Math.trunc((Number(suffix.exponent) * 3) / 10) - 1;
  } else {
    precision = -1;
  }
  if (precision >= 0) {
    const shiftedScale = int32(scale - fractionDigits);
    if (shiftedScale >= -9n) {
      const product = BigInt(s.num + s.denom) * mantissa;
      if (product <= INT64_MAX) return int64AmountValue(s.isPositive ? product : -product, shiftedScale);
    }
  }

  // The inf.Dec path: the exact value, rounded up to nanos, then scaledValue() back to an int64. Its
  // SetString needs a digit: a quantity without one fails to parse here (only the fast path reads it as 0).
  if (!s.hasDigits) return undefined;
  const digits = BigInt(s.num + s.denom);
  if (digits === 0n) return 0n;
  let nanos: bigint; // ceil(|value| × 10^9)
  if (suffix.base === 10) {
    // SetString gives scale = the fraction digits; SetScale adds −exponent, in int32 arithmetic.
    const decScale = int32(fractionDigits + int32(-suffix.exponent));
    const k = 9n - decScale;
    if (k >= 73n) return 0n; // a multiple of 10^64, so of 2^64: Value() is 0
    if (k >= 0n) nanos = digits * 10n ** k;
    else nanos = -k > BigInt(String(digits).length) ? 1n : ceilDiv(digits, 10n ** -k);
  } else {
    nanos = ceilDiv(digits * (1n << suffix.exponent) * NANO, 10n ** fractionDigits);
    // A binary quantity is capped at 2^63 − 1.
    if (nanos > INT64_MAX * NANO) return s.isPositive ? INT64_MAX : -INT64_MAX;
  }
  const v = s.isPositive ? nanos : -nanos;
  if (v < INT64_MAX) {
    const i = int64(v);
    const q = i / NANO;
    return i % NANO !== 0n ? int64(q + 1n) : q;
  }
  return int64(int64(v / NANO) + (v % NANO !== 0n ? 1n : 0n));
}
