// A Cedar schema as the evaluator needs it: entity types (attributes, parents, tags, enumerated
// ids), actions (hierarchy, appliesTo, context) and a conformance check of values against types.
// With a schema, Cedar's authorizer refuses a request or entities that do not conform; so does
// Mandate (the decision denies). Cedar also reads JSON in a schema-directed way — `{"type","id"}`
// where an entity is expected, `"1.5"` or `{"fn","arg"}` where an extension value is — and the
// conformance check converts those forms the same way.
import { invalid } from '../core/internal.js';
import { DecimalValue, IpValue, parseDecimal, parseIp } from './extensions.js';
import { isObject } from './json-values.js';
import { compileSchemaCheck, type Attribute, type SchemaType } from './schema-check.js';
import type { CedarValue, EntityUid, ResolvedEntity } from './types.js';
import { entityKey, isEntity, kindOf } from './values.js';

interface EntityTypeInfo {
  /** Types an entity of this type may have as ancestors (memberOfTypes, transitively). */
  readonly allowedAncestors: ReadonlySet<string>;
  readonly shape: SchemaType & { kind: 'record' };
  readonly tags: SchemaType | undefined;
  readonly enumIds: ReadonlySet<string> | undefined;
}

interface ActionInfo {
  readonly uid: EntityUid;
  readonly parents: readonly EntityUid[];
  readonly principalTypes: ReadonlySet<string>;
  readonly resourceTypes: ReadonlySet<string>;
  readonly context: SchemaType;
}

const EMPTY_RECORD: SchemaType & { kind: 'record' } = {
  kind: 'record',
  attributes: new Map(),
  names: [],
  types: [],
  additional: false,
};

/** A conformance failure, with Cedar-like wording. */
export class SchemaMismatch extends Error {
  override readonly name = 'SchemaMismatch';
}

function schemaError(message: string): never {
  throw invalid('ERR_POLICY_SCHEMA_INVALID', message);
}

const isActionType = (type: string): boolean => type === 'Action' || type.endsWith('::Action');

/** The parts of a schema evaluation checks, built from cedar-wasm's resolved JSON form. */
export class CedarSchema {
  readonly entityTypes = new Map<string, EntityTypeInfo>();
  readonly actions = new Map<string, ActionInfo>();
  private readonly actionsByUid = new Map<string, Map<string, ActionInfo>>();
  private readonly contextChecks = new Map<ActionInfo, (value: CedarValue) => boolean>();
  /** Action entities with their transitive ancestors, by type then id. */
  readonly actionEntities = new Map<string, Map<string, ResolvedEntity>>();

  constructor(json: unknown) {
    if (!isObject(json)) schemaError('the schema is not an object');
    const commonTypes = new Map<string, unknown>();
    for (const [namespace, definition] of Object.entries(json)) {
      if (!isObject(definition)) continue;
      if (isObject(definition.commonTypes))
        for (const [name, type] of Object.entries(definition.commonTypes))
          commonTypes.set(namespace === '' ? name : `${namespace}::${name}`, type);
    }
    const resolve = (json: unknown, namespace: string, depth = 0): SchemaType => {
      if (depth > 64 || !isObject(json) || typeof json.type !== 'string')
        return schemaError('a schema type of unknown shape');
      switch (json.type) {
        case 'Long':
          return { kind: 'long' };
        case 'String':
          return { kind: 'string' };
        case 'Bool':
        case 'Boolean':
          return { kind: 'bool' };
        case 'Set':
          return { kind: 'set', element: resolve(json.element, namespace, depth + 1) };
        case 'Record': {
          const attributes = new Map<string, Attribute>();
          if (isObject(json.attributes))
            for (const [name, attr] of Object.entries(json.attributes))
              attributes.set(name, {
                type: resolve(attr, namespace, depth + 1),
                required: !isObject(attr) || attr.required !== false,
              });
          return {
            kind: 'record',
            attributes,
            names: [...attributes.keys()],
            types: [...attributes.values()],
            additional: json.additionalAttributes === true,
          };
        }
        case 'Entity':
          if (typeof json.name !== 'string') return schemaError('an entity type without a name');
          return { kind: 'entity', name: json.name };
        case 'Extension':
          if (typeof json.name !== 'string') return schemaError('an extension type without a name');
          return { kind: 'extension', name: json.name };
        case 'decimal':
        case 'ipaddr':
        case 'datetime':
        case 'duration':
          return { kind: 'extension', name: json.type };
        default: {
          const name = json.type;
          const common =
            commonTypes.get(
              name.includes('::') || namespace === '' ? name : `${namespace}::${name}`,
            ) ?? commonTypes.get(name);
          if (common === undefined) return schemaError(`unknown schema type \`${name}\``);
          return resolve(common, namespace, depth + 1);
        }
      }
    };
    const memberOf = new Map<string, string[]>();
    const pending: [string, EntityTypeInfo & { shapeJson: unknown }][] = [];
    for (const [namespace, definition] of Object.entries(json)) {
      if (!isObject(definition)) continue;
      const qualify = (name: string): string =>
        namespace === '' || name.includes('::') ? name : `${namespace}::${name}`;
      if (isObject(definition.entityTypes))
        for (const [name, type] of Object.entries(definition.entityTypes)) {
          const t = isObject(type) ? type : {};
          const full = qualify(name);
          memberOf.set(
            full,
            Array.isArray(t.memberOfTypes)
              ? (t.memberOfTypes as unknown[]).filter((m): m is string => typeof m === 'string')
              : [],
          );
          const shape = t.shape === undefined ? EMPTY_RECORD : resolve(t.shape, namespace);
          if (shape.kind !== 'record') schemaError(`the shape of \`${full}\` is not a record`);
          pending.push([
            full,
            {
              allowedAncestors: new Set(),
              shape,
              tags: t.tags === undefined ? undefined : resolve(t.tags, namespace),
              enumIds: Array.isArray(t.enum)
                ? new Set((t.enum as unknown[]).filter((e): e is string => typeof e === 'string'))
                : undefined,
              shapeJson: undefined,
            },
          ]);
        }
      const actionType = namespace === '' ? 'Action' : `${namespace}::Action`;
      if (isObject(definition.actions))
        for (const [id, action] of Object.entries(definition.actions)) {
          const a = isObject(action) ? action : {};
          const applies = isObject(a.appliesTo) ? a.appliesTo : {};
          const names = (list: unknown): Set<string> =>
            new Set(
              Array.isArray(list)
                ? (list as unknown[]).filter((n): n is string => typeof n === 'string').map(qualify)
                : [],
            );
          const parents: EntityUid[] = [];
          if (Array.isArray(a.memberOf))
            for (const m of a.memberOf as unknown[])
              if (isObject(m) && typeof m.id === 'string')
                parents.push({
                  type: typeof m.type === 'string' ? qualify(m.type) : actionType,
                  id: m.id,
                });
          const uid = { type: actionType, id };
          this.actions.set(entityKey(uid), {
            uid,
            parents,
            principalTypes: names(applies.principalTypes),
            resourceTypes: names(applies.resourceTypes),
            context:
              applies.context === undefined ? EMPTY_RECORD : resolve(applies.context, namespace),
          });
        }
    }
    // Allowed ancestor types: memberOfTypes, transitively.
    for (const [full, info] of pending) {
      const allowed = new Set<string>();
      const stack = [...(memberOf.get(full) ?? [])];
      while (stack.length > 0) {
        const t = stack.pop()!;
        if (allowed.has(t)) continue;
        allowed.add(t);
        stack.push(...(memberOf.get(t) ?? []));
      }
      this.entityTypes.set(full, {
        allowedAncestors: allowed,
        shape: info.shape,
        tags: info.tags,
        enumIds: info.enumIds,
      });
    }
    // Action entities with transitive ancestors; a cycle is a schema error.
    const ancestorsOf = (key: string, seen: Set<string>): Set<string> => {
      const out = new Set<string>();
      for (const p of this.actions.get(key)?.parents ?? []) {
        const pk = entityKey(p);
        if (seen.has(pk)) schemaError(`the action hierarchy has a cycle at \`${pk}\``);
        out.add(pk);
        seen.add(pk);
        for (const a of ancestorsOf(pk, seen)) out.add(a);
        seen.delete(pk);
      }
      return out;
    };
    for (const [key, action] of this.actions) {
      let infos = this.actionsByUid.get(action.uid.type);
      if (infos === undefined)
        this.actionsByUid.set(action.uid.type, (infos = new Map<string, ActionInfo>()));
      infos.set(action.uid.id, action);
      let byId = this.actionEntities.get(action.uid.type);
      if (byId === undefined)
        this.actionEntities.set(action.uid.type, (byId = new Map<string, ResolvedEntity>()));
      byId.set(action.uid.id, {
        uid: action.uid,
        attrs: new Map(),
        ancestors: ancestorsOf(key, new Set([key])),
      });
    }
  }

  /** An entity reference must name a declared id when its type is enumerated. */
  private checkEnumId(uid: EntityUid): void {
    const ids = this.entityTypes.get(uid.type)?.enumIds;
    if (ids !== undefined && !ids.has(uid.id))
      throw new SchemaMismatch(
        `entity \`${entityKey(uid)}\` is of an enumerated entity type, but \`${JSON.stringify(uid.id)}\` is not declared as a valid eid`,
      );
  }

  /**
   * `value` as `type` requires: the same object when it conforms as it is, a converted value when
   * it conforms in one of Cedar's schema-directed JSON forms; a SchemaMismatch otherwise.
   */
  conform(value: CedarValue, type: SchemaType, where: string): CedarValue {
    switch (type.kind) {
      case 'long':
        if (typeof value === 'number') return value;
        break;
      case 'string':
        if (typeof value === 'string') return value;
        break;
      case 'bool':
        if (typeof value === 'boolean') return value;
        break;
      case 'entity': {
        let uid: EntityUid | undefined;
        if (isEntity(value)) uid = value;
        else if (value instanceof Map && value.size === 2) {
          // Cedar's implicit entity form `{"type","id"}` where the schema expects an entity.
          const record = value as ReadonlyMap<string, CedarValue>;
          const t = record.get('type');
          const id = record.get('id');
          if (typeof t === 'string' && typeof id === 'string') uid = Object.freeze({ type: t, id });
        }
        if (uid !== undefined && uid.type === type.name) {
          this.checkEnumId(uid);
          return uid;
        }
        break;
      }
      case 'extension': {
        if (type.name === 'decimal' && value instanceof DecimalValue) return value;
        if (type.name === 'ipaddr' && value instanceof IpValue) return value;
        // Cedar's schema-directed forms: the argument alone, or `{"fn","arg"}` without `__extn`.
        let text: CedarValue | undefined = value;
        if (value instanceof Map) {
          const record = value as ReadonlyMap<string, CedarValue>;
          text = record.get('arg');
        }
        if (typeof text === 'string' && (type.name === 'decimal' || type.name === 'ipaddr')) {
          const parsed = type.name === 'decimal' ? parseDecimal(text) : parseIp(text);
          if (typeof parsed !== 'string') return parsed;
          throw new SchemaMismatch(`${where}: ${parsed}`);
        }
        break;
      }
      case 'set': {
        if (!Array.isArray(value)) break;
        const elements = value as readonly CedarValue[];
        let out: CedarValue[] | undefined;
        for (let i = 0; i < elements.length; i++) {
          const v = this.conform(elements[i]!, type.element, where);
          if (v !== elements[i] && out === undefined) out = elements.slice(0, i);
          out?.push(v);
        }
        return out === undefined ? value : Object.freeze(out);
      }
      case 'record': {
        if (!(value instanceof Map)) break;
        return this.conformRecord(value as ReadonlyMap<string, CedarValue>, type, where);
      }
    }
    throw new SchemaMismatch(
      `${where}: type mismatch: value was expected to have type ${describeType(type)}, but it actually has type ${kindOf(value)}`,
    );
  }

  conformRecord(
    record: ReadonlyMap<string, CedarValue>,
    type: SchemaType & { kind: 'record' },
    where: string,
  ): ReadonlyMap<string, CedarValue> {
    let out: Map<string, CedarValue> | undefined;
    let present = 0;
    const { names, types } = type;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const attr = types[i]!;
      const v = record.get(name);
      if (v === undefined) {
        if (attr.required)
          throw new SchemaMismatch(
            `${where}: expected the record to have an attribute \`${name}\`, but it does not`,
          );
        continue;
      }
      present++;
      // The path is built only for a message, never on the way through.
      let converted: CedarValue;
      try {
        converted = this.conform(v, attr.type, '');
      } catch (error) {
        if (error instanceof SchemaMismatch)
          throw new SchemaMismatch(`${where}.${name}${error.message}`);
        throw error;
      }
      if (converted !== v) (out ??= new Map(record)).set(name, converted);
    }
    // Every key declared and present was counted: more keys means an undeclared one.
    if (!type.additional && present !== record.size)
      for (const name of record.keys())
        if (!type.attributes.has(name))
          throw new SchemaMismatch(
            `${where}: record attribute \`${name}\` should not exist according to the schema`,
          );
    return out ?? record;
  }

  /**
   * Checks (and converts) one entity; throws SchemaMismatch. `parents` are its direct parents
   * when known (an EntityStore), else its transitive ancestors are checked, which is equivalent.
   */
  conformEntity(entity: ResolvedEntity, parents: readonly EntityUid[] | undefined): ResolvedEntity {
    const key = entityKey(entity.uid);
    if (isActionType(entity.uid.type)) {
      const declared = this.actionEntities.get(entity.uid.type)?.get(entity.uid.id);
      const action = this.actions.get(key);
      if (action === undefined || declared === undefined)
        throw new SchemaMismatch(
          `found action entity \`${key}\`, but it was not declared as an action in the schema`,
        );
      const expected =
        parents === undefined ? declared.ancestors : new Set(action.parents.map(entityKey));
      const given = parents === undefined ? entity.ancestors : new Set(parents.map(entityKey));
      if (
        entity.attrs.size > 0 ||
        (entity.tags?.size ?? 0) > 0 ||
        expected.size !== given.size ||
        [...given].some((p) => !expected.has(p))
      )
        throw new SchemaMismatch(
          `definition of action \`${key}\` does not match its schema declaration`,
        );
      return entity;
    }
    const info = this.entityTypes.get(entity.uid.type);
    if (info === undefined)
      throw new SchemaMismatch(
        `entity \`${key}\` has type \`${entity.uid.type}\` which is not declared in the schema`,
      );
    this.checkEnumId(entity.uid);
    if (parents !== undefined) {
      for (const p of parents) {
        if (!info.allowedAncestors.has(p.type))
          throw new SchemaMismatch(
            `\`${key}\` is not allowed to have an ancestor of type \`${p.type}\` according to the schema`,
          );
        this.checkEnumId(p);
      }
    } else {
      for (const ancestor of entity.ancestors) {
        const type = ancestor.slice(0, ancestor.indexOf('::"'));
        if (!info.allowedAncestors.has(type))
          throw new SchemaMismatch(
            `\`${key}\` is not allowed to have an ancestor of type \`${type}\` according to the schema`,
          );
      }
    }
    const attrs = this.conformRecord(entity.attrs, info.shape, `attribute of \`${key}\``);
    let tags = entity.tags;
    if (tags !== undefined && tags.size > 0) {
      const tagType = info.tags;
      if (tagType === undefined)
        throw new SchemaMismatch(
          `found a tag on \`${key}\`, but no tags should exist on \`${key}\` according to the schema`,
        );
      let out: Map<string, CedarValue> | undefined;
      for (const [name, v] of tags) {
        const converted = this.conform(v, tagType, `tag \`${name}\` on \`${key}\``);
        if (converted !== v) (out ??= new Map(tags)).set(name, converted);
      }
      tags = out ?? tags;
    }
    if (attrs === entity.attrs && tags === entity.tags) return entity;
    return tags === undefined
      ? { uid: entity.uid, attrs, ancestors: entity.ancestors }
      : { uid: entity.uid, attrs, ancestors: entity.ancestors, tags };
  }

  /**
   * Checks a request as Cedar's `validateRequest` does: the action is declared, principal and
   * resource types are among those it applies to, and the context conforms. Returns the
   * context to evaluate with (converted only when Cedar's schema-directed forms were used).
   */
  conformRequest(
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    context: ReadonlyMap<string, CedarValue>,
  ): ReadonlyMap<string, CedarValue> {
    const info = this.actionsByUid.get(action.type)?.get(action.id);
    if (info === undefined)
      throw new SchemaMismatch(
        `action \`${entityKey(action)}\` does not exist in the supplied schema`,
      );
    if (!this.entityTypes.has(principal.type) || !info.principalTypes.has(principal.type))
      throw new SchemaMismatch(
        `principal type \`${principal.type}\` is not valid for \`${entityKey(action)}\``,
      );
    if (!this.entityTypes.has(resource.type) || !info.resourceTypes.has(resource.type))
      throw new SchemaMismatch(
        `resource type \`${resource.type}\` is not valid for \`${entityKey(action)}\``,
      );
    this.checkEnumId(principal);
    this.checkEnumId(resource);
    if (info.context.kind !== 'record')
      throw new SchemaMismatch(`the context of \`${entityKey(action)}\` is not a record type`);
    // Most contexts conform as they are: a generated check says so without allocating.
    let fast = this.contextChecks.get(info);
    if (fast === undefined) {
      fast = compileSchemaCheck(info.context, (t) => this.entityTypes.get(t)?.enumIds);
      this.contextChecks.set(info, fast);
    }
    if (fast(context)) return context;
    return this.conformRecord(context, info.context, 'context');
  }
}

function describeType(type: SchemaType): string {
  switch (type.kind) {
    case 'entity':
      return `\`${type.name}\``;
    case 'extension':
      return type.name;
    default:
      return type.kind;
  }
}
