// The contract between the gates (src/gates) and where their policy bundle comes from (a store,
// a bus subscription). Types only.
import type { EvaluablePolicySet } from '../policy/index.js';
import type { ToolCatalog } from './catalog.js';

/** The bundle in force: verified (signature, trusted issuer, newer than the last) before it gets here. */
export interface ActiveBundle {
  /** Monotonic version, per issuer. */
  readonly version: number;
  /** Hex SHA-256 of the signed bundle bytes; recorded in every decision. */
  readonly hash: string;
  /** The identifier of the authority that signed it. */
  readonly issuer: string;
  /** Unix seconds: when the authority signed it. */
  readonly createdAt: number;
  /** The bundle's policies, compiled. */
  readonly policySet: EvaluablePolicySet;
  /**
   * The tool catalog signed into the bundle (`policy publish --catalog`): the tools the gates
   * list and decide under it. `undefined`: none is bound, and gates deny every `listTool` and
   * `callTool` (`ERR_GATE_NO_CATALOG`) rather than trust a catalog given at call time.
   */
  readonly catalog?: ToolCatalog | undefined;
}

/**
 * Where a gate gets its bundle. `current()` is called on every decision; `undefined` (no bundle
 * yet) denies. Staleness (a bundle older than the configured bound, or a source that has not
 * heard from its authority within the bound) is the source's to report by returning `undefined`
 * or throwing a MandateError, which the gate turns into a deny.
 */
export interface BundleSource {
  current(): ActiveBundle | undefined;
}

export type { ToolDescriptor } from './tool-descriptor.js';
