// The public API of `mandate/gates`: gate 1 (which tools a chain may see), gate 2 (may this call
// run), human approvals, budgets and rate limits, the Mandate Cedar schema and the mapping from a
// chain and a call to a Cedar request (docs/spec/policy.md §4–5).
export { Gate, toolGranted } from './gate.js';
export type {
  GateOptions,
  GateDecision,
  GateLock,
  ToolCall,
  ApprovalPrompt,
  ApprovalState,
} from './gate.js';
export { leaseSecretName } from './lease-decision.js';
export type { LeaseAsk } from './lease-decision.js';
export { enforceCall } from './enforce.js';
export type { EnforcementOptions } from './enforce.js';
export { ToolCatalog, toolUid } from './catalog.js';
export { parseToolArguments, MAX_ARGUMENTS_TEXT_CHARS } from './arguments-text.js';
export type { CatalogTool } from './catalog.js';
export { MANDATE_CEDAR_SCHEMA, mandateCedarSchema, cedarTypeOfJsonSchema } from './schema.js';
export type { MandateSchemaOptions } from './schema.js';
export {
  agentViewOf,
  chainArguments,
  checkArgumentBounds,
  compileArgumentConverter,
  labelsRecord,
  rootIsHuman,
  DEFAULT_ARGUMENT_LIMITS,
  HUMAN_ATTRIBUTE,
} from './request.js';
export type { AgentView, ArgumentConverter, ArgumentLimits } from './request.js';
export {
  MemoryApprovalRepository,
  answerApproval,
  signApprovalAnswer,
  recordApprovalAnswer,
  verifyApprovalAnswer,
  argumentsDigest,
  approvalSignedText,
} from './approvals.js';
export type {
  ApprovalRepository,
  ApprovalRecord,
  ApprovalBinding,
  ApprovalAnswer,
  ApprovalStatus,
  AnswerApprovalOptions,
  SignApprovalOptions,
  ApprovalToSign,
  VerifyApprovalOptions,
} from './approvals.js';
export { MemoryBudgetRepository, budgetsOf, BUDGET_ATTRIBUTE_PREFIX } from './budgets.js';
export type { BudgetRepository, BudgetDeclaration, CounterResult } from './budgets.js';
export {
  signBundle,
  verifyBundle,
  peekBundle,
  checkBundleAge,
  VerifiedBundle,
  BUNDLE_DATA_TYPE,
} from './bundle.js';
export type { BundleToSign, VerifyBundleOptions } from './bundle.js';
export { MemoryPolicyBundleRepository } from './bundle-repository.js';
export type { PolicyBundleRepository, StoredBundle, BundleSummary } from './bundle-repository.js';
export type { ActiveBundle, BundleSource, ToolDescriptor } from './types.js';
