import { invalid } from '../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../encoding/index.js';

/** Longest arguments text {@link parseToolArguments} reads (the gate bounds the value again). */
export const MAX_ARGUMENTS_TEXT_CHARS = 256 * 1024;

/**
 * A tool call's arguments given as JSON text → the value {@link Gate.decide} takes. Refuses
 * (`ERR_GATE_ARGUMENTS_INVALID`) text that is not JSON or in which an object names a key twice,
 * at any depth: `{"amount":100,"amount":1}` would be checked on one value and could be executed
 * on the other (JavaScript keeps the last, other readers the first). Longer than
 * {@link MAX_ARGUMENTS_TEXT_CHARS}: `ERR_GATE_ARGUMENTS_TOO_LARGE`. Arguments given as an object
 * cannot carry a duplicate.
 */
export function parseToolArguments(text: string): unknown {
  if (typeof text !== 'string')
    throw invalid('ERR_GATE_ARGUMENTS_INVALID', 'the arguments text is not a string');
  if (text.length > MAX_ARGUMENTS_TEXT_CHARS)
    throw invalid(
      'ERR_GATE_ARGUMENTS_TOO_LARGE',
      `the arguments are longer than ${MAX_ARGUMENTS_TEXT_CHARS} characters`,
    );
  return parseJsonNoDuplicateKeys(text, 'ERR_GATE_ARGUMENTS_INVALID', 'the arguments', 64);
}
