// Cedar's `decimal` and `ipaddr` extension types, with Cedar's exact parsing rules (checked
// string by string against cedar-wasm in extensions.test.ts). `datetime` and `duration` are not
// supported: the compiler refuses their functions by name.
import type { CedarExtensionValue } from './types.js';

/**
 * A Cedar `decimal`: up to 4 digits after the point, held as an i64 count of ten-thousandths
 * (`scaled`). `text` is canonical (exactly 4 fraction digits), so equal decimals have equal text.
 */
export class DecimalValue implements CedarExtensionValue {
  readonly extension = 'decimal';
  constructor(
    readonly text: string,
    readonly scaled: bigint,
  ) {}
}

/**
 * A Cedar `ipaddr`: an IPv4 or IPv6 address with a prefix length (`/32` or `/128` when none is
 * written). Cedar keeps the address as written (`10.0.0.1/24` ≠ `10.0.0.0/24`); `text` is
 * canonical for that pair.
 */
export class IpValue implements CedarExtensionValue {
  readonly extension = 'ipaddr';
  constructor(
    readonly text: string,
    readonly v6: boolean,
    readonly address: bigint,
    readonly prefix: number,
  ) {}
}

const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;
const DECIMAL = /^(-?)([0-9]+)\.([0-9]+)$/;

/** `decimal("…")`: the value, or Cedar's reason the text is not a decimal. */
export function parseDecimal(text: string): DecimalValue | string {
  const match = DECIMAL.exec(text);
  if (match === null) return `\`${text}\` is not a well-formed decimal value`;
  const [, sign, whole, fraction] = match as unknown as [string, string, string, string];
  if (fraction.length > 4) return `too many digits after the decimal in \`${text}\``;
  const magnitude = BigInt(whole) * 10000n + BigInt(fraction.padEnd(4, '0'));
  const scaled = sign === '-' ? -magnitude : magnitude;
  if (scaled > I64_MAX || scaled < I64_MIN) return 'overflow when converting to decimal';
  return new DecimalValue(formatDecimal(scaled), scaled);
}

function formatDecimal(scaled: bigint): string {
  const negative = scaled < 0n;
  const magnitude = negative ? -scaled : scaled;
  const whole = magnitude / 10000n;
  const fraction = (magnitude % 10000n).toString().padStart(4, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

const IPV4 = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

/** `ip("…")`: the value, or the reason the text is not an address (Cedar's rules, stricter never). */
export function parseIp(text: string): IpValue | string {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  let v6: boolean;
  let address: bigint;
  if (addressText.includes(':')) {
    // Cedar refuses IPv4 embedded in IPv6 (`::ffff:1.2.3.4`).
    if (addressText.includes('.')) return `invalid IP address: ${text}`;
    const parsed = parseIpv6(addressText);
    if (parsed === undefined) return `invalid IP address: ${text}`;
    v6 = true;
    address = parsed;
  } else {
    const match = IPV4.exec(addressText);
    if (match === null) return `invalid IP address: ${text}`;
    address = 0n;
    for (let i = 1; i <= 4; i++) {
      const octet = Number(match[i]);
      if (octet > 255) return `invalid IP address: ${text}`;
      address = (address << 8n) | BigInt(octet);
    }
    v6 = false;
  }
  const bits = v6 ? 128 : 32;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!PREFIX.test(prefixText)) return `invalid prefix \`${prefixText}\``;
    prefix = Number(prefixText);
    if (prefix > bits) return `prefix ${prefix} is larger than the limit ${bits}`;
  }
  return new IpValue(`${formatIp(v6, address)}/${prefix}`, v6, address, prefix);
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): string[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    return groups.every((g) => HEX_GROUP.test(g)) ? groups : undefined;
  };
  const head = groupsOf(halves[0]!);
  if (head === undefined) return undefined;
  let groups: string[];
  if (halves.length === 1) {
    if (head.length !== 8) return undefined;
    groups = head;
  } else {
    const tail = groupsOf(halves[1]!);
    if (tail === undefined) return undefined;
    // `::` stands for at least one zero group.
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...Array.from({ length: missing }, () => '0'), ...tail];
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(`0x${g}`);
  return value;
}

function formatIp(v6: boolean, address: bigint): string {
  if (!v6)
    return [24n, 16n, 8n, 0n].map((shift) => ((address >> shift) & 0xffn).toString()).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n)
    groups.push(((address >> shift) & 0xffffn).toString(16).padStart(4, '0'));
  return groups.join(':');
}

/** Whether the range of `inner` (its network under its prefix) lies within `outer`'s. */
export function ipInRange(inner: IpValue, outer: IpValue): boolean {
  if (inner.v6 !== outer.v6 || inner.prefix < outer.prefix) return false;
  const shift = BigInt((inner.v6 ? 128 : 32) - outer.prefix);
  return inner.address >> shift === outer.address >> shift;
}

const LOOPBACK_V4 = parseIp('127.0.0.0/8') as IpValue;
const LOOPBACK_V6 = parseIp('::1/128') as IpValue;
const MULTICAST_V4 = parseIp('224.0.0.0/4') as IpValue;
const MULTICAST_V6 = parseIp('ff00::/8') as IpValue;

export function ipIsLoopback(ip: IpValue): boolean {
  return ipInRange(ip, ip.v6 ? LOOPBACK_V6 : LOOPBACK_V4);
}

export function ipIsMulticast(ip: IpValue): boolean {
  return ipInRange(ip, ip.v6 ? MULTICAST_V6 : MULTICAST_V4);
}
