// Cedar values as the compiled engine holds them, and the few operations every part needs:
// the kind of a value, Cedar equality, and the string key of an entity reference.
import { DecimalValue, IpValue } from './extensions.js';
import type { CedarValue, EntityUid } from './types.js';

/**
 * The key of an entity reference as {@link ResolvedEntity.ancestors} holds it: `Type::"id"` with
 * the id JSON-quoted, so two references have the same key exactly when type and id are equal.
 *
 * @example
 * ```ts
 * entityKey({ type: 'Server', id: 'files' }); // 'Server::"files"'
 * ```
 */
export function entityKey(uid: EntityUid): string {
  return `${uid.type}::${JSON.stringify(uid.id)}`;
}

/** The kinds Cedar's type errors speak of (an extension value by its type: `decimal`, `ipaddr`). */
export type ValueKind = 'bool' | 'long' | 'string' | 'entity' | 'set' | 'record' | (string & {});

export function kindOf(value: CedarValue): ValueKind {
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'number':
      return 'long';
    case 'string':
      return 'string';
    default:
      if (Array.isArray(value)) return 'set';
      if (value instanceof Map) return 'record';
      if (!('extension' in value)) return 'entity';
      // Only values built by the engine (decimal(), ip(), cedarDecimal, cedarIp) are extension
      // values; a look-alike object is not one.
      return value instanceof DecimalValue || value instanceof IpValue
        ? value.extension
        : 'unknown value';
  }
}

/** Whether `value` is an entity reference (and not a set, record or extension value). */
export function isEntity(value: CedarValue): value is EntityUid {
  return (
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Map) &&
    !('extension' in value)
  );
}

export function isSet(value: CedarValue): value is readonly CedarValue[] {
  return Array.isArray(value);
}

export function isRecord(value: CedarValue): value is ReadonlyMap<string, CedarValue> {
  return value instanceof Map;
}

/**
 * Cedar's `==`: values of different kinds are unequal (never an error); sets compare as sets
 * (order and duplicates do not matter), records by their keys and values, entities by type and
 * id, extension values by their canonical text (only values the engine built).
 */
export function cedarEquals(a: CedarValue, b: CedarValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b)) return false;
    return setContainsAll(a, b) && setContainsAll(b, a);
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    const other = b as ReadonlyMap<string, CedarValue>;
    for (const [k, v] of a as ReadonlyMap<string, CedarValue>) {
      const w = other.get(k);
      if (w === undefined || !cedarEquals(v, w)) return false;
    }
    return true;
  }
  if (b instanceof Map) return false;
  const aExt = 'extension' in a;
  const bExt = 'extension' in b;
  if (aExt || bExt) {
    // Canonical text is the value; look-alike objects (not built by the engine) equal nothing.
    return (
      ((a instanceof DecimalValue && b instanceof DecimalValue) ||
        (a instanceof IpValue && b instanceof IpValue)) &&
      a.text === b.text
    );
  }
  return (
    (a as EntityUid).type === (b as EntityUid).type && (a as EntityUid).id === (b as EntityUid).id
  );
}

export function setContains(set: readonly CedarValue[], value: CedarValue): boolean {
  for (let i = 0; i < set.length; i++) if (cedarEquals(set[i]!, value)) return true;
  return false;
}

/** Whether every element of `subset` is in `set`. */
export function setContainsAll(set: readonly CedarValue[], subset: readonly CedarValue[]): boolean {
  for (let i = 0; i < subset.length; i++) if (!setContains(set, subset[i]!)) return false;
  return true;
}

export function setContainsAny(set: readonly CedarValue[], other: readonly CedarValue[]): boolean {
  for (let i = 0; i < other.length; i++) if (setContains(set, other[i]!)) return true;
  return false;
}
