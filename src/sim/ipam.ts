/** Address plan of the simulated cluster (data only: nothing is ever sent to these addresses). */

export const POOL_CIDR = "10.48.0.0/12";
export const POOL_V6_CIDR = "fd00:10:48::/48";
export const SERVICE_CIDR = "10.96.0.0/12";
export const BLOCK_PREFIX = 26;
export const BLOCK_ADDRESSES = 2 ** (32 - BLOCK_PREFIX);
const POOL_BASE = ipToInt("10.48.0.0");
const NODE_BASE = ipToInt("10.0.0.10");
const SERVICE_BASE = ipToInt("10.96.0.10");
/** Blocks in the pool. */
export const MAX_BLOCKS = 2 ** (BLOCK_PREFIX - 12);

export function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function nodeIp(index: number): string {
  return intToIp(NODE_BASE + index);
}

export function serviceIp(index: number): string {
  return intToIp(SERVICE_BASE + index);
}

/** The CIDR of the pool's n-th block. */
export function blockCidr(index: number): string {
  return `${intToIp(POOL_BASE + index * BLOCK_ADDRESSES)}/${BLOCK_PREFIX}`;
}

/** The block index of a CIDR of the pool, or undefined. */
export function blockIndexOf(cidr: string): number | undefined {
  const [ip, prefix] = cidr.split("/");
  if (ip === undefined || Number(prefix) !== BLOCK_PREFIX) return undefined;
  const offset = ipToInt(ip) - POOL_BASE;
  if (offset < 0 || offset % BLOCK_ADDRESSES !== 0) return undefined;
  const index = offset / BLOCK_ADDRESSES;
  return index < MAX_BLOCKS ? index : undefined;
}

/** The address at an ordinal of a block. */
export function blockAddress(index: number, ordinal: number): string {
  return intToIp(POOL_BASE + index * BLOCK_ADDRESSES + ordinal);
}

/** The ordinal of an address within a block, or undefined when it is outside. */
export function ordinalIn(index: number, ip: string): number | undefined {
  const o = ipToInt(ip) - (POOL_BASE + index * BLOCK_ADDRESSES);
  return o >= 0 && o < BLOCK_ADDRESSES ? o : undefined;
}

/** Calico's object name for a CIDR: `.`, `:` and `/` become `-`. */
export function cidrName(cidr: string): string {
  return cidr.replace(/[.:/]/g, "-");
}

/** The index of the pool block holding an address, or undefined. */
export function blockIndexOfIp(ip: string): number | undefined {
  const offset = ipToInt(ip) - POOL_BASE;
  if (!Number.isFinite(offset) || offset < 0) return undefined;
  const index = Math.floor(offset / BLOCK_ADDRESSES);
  return index < MAX_BLOCKS ? index : undefined;
}

interface NodeBlock {
  readonly index: number;
  readonly used: Set<number>;
}

/** Tracks the pool's blocks per node and the used ordinals in each: hands out fresh pod IPs. */
export class BlockAllocator {
  readonly #byNode = new Map<string, NodeBlock[]>();
  readonly #blocks = new Map<number, NodeBlock>();
  #next = 0;

  /** Records an existing block of a node (the next claimed block comes after every known one). */
  addBlock(node: string, index: number): void {
    if (this.#blocks.has(index)) return;
    const block = { index, used: new Set<number>() };
    this.#blocks.set(index, block);
    const list = this.#byNode.get(node) ?? [];
    list.push(block);
    this.#byNode.set(node, list);
    if (index >= this.#next) this.#next = index + 1;
  }

  /** Claims the next free block for a node; undefined when the pool is exhausted. */
  claim(node: string): number | undefined {
    while (this.#blocks.has(this.#next)) this.#next++;
    if (this.#next >= MAX_BLOCKS) return undefined;
    const index = this.#next++;
    this.addBlock(node, index);
    return index;
  }

  /** Releases a block that has no used address; returns false otherwise. */
  release(node: string, index: number): boolean {
    const list = this.#byNode.get(node) ?? [];
    const i = list.findIndex((b) => b.index === index);
    if (i < 0 || list[i]!.used.size > 0) return false;
    list.splice(i, 1);
    this.#blocks.delete(index);
    return true;
  }

  blocksOf(node: string): readonly { readonly index: number; readonly usedCount: number }[] {
    return (this.#byNode.get(node) ?? []).map((b) => ({ index: b.index, usedCount: b.used.size }));
  }

  /** Marks an address as used (when it is in a known block). */
  markUsed(ip: string): void {
    const index = blockIndexOfIp(ip);
    const b = index === undefined ? undefined : this.#blocks.get(index);
    const o = b === undefined ? undefined : ordinalIn(b.index, ip);
    if (b !== undefined && o !== undefined) b.used.add(o);
  }

  /** A free address in one of the node's blocks (ordinal 0 is the tunnel address), or undefined. */
  allocate(node: string): { index: number; ordinal: number; ip: string } | undefined {
    for (const b of this.#byNode.get(node) ?? []) {
      if (b.used.size >= BLOCK_ADDRESSES) continue;
      for (let o = 0; o < BLOCK_ADDRESSES; o++) {
        if (!b.used.has(o)) {
          b.used.add(o);
          return { index: b.index, ordinal: o, ip: blockAddress(b.index, o) };
        }
      }
    }
    return undefined;
  }

  free(ip: string): void {
    const index = blockIndexOfIp(ip);
    const b = index === undefined ? undefined : this.#blocks.get(index);
    const o = b === undefined ? undefined : ordinalIn(b.index, ip);
    if (b !== undefined && o !== undefined) b.used.delete(o);
  }
}
