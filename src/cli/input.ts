import { existsSync, readFileSync, statSync } from 'node:fs';
import { invalid, notFound } from '../core/internal.js';
import { fromHex } from '../encoding/index.js';

const MAX_INPUT_BYTES = 1024 * 1024;
const HEX_TEXT_RE = /^\s*(?:[0-9a-fA-F]{2})+\s*$/;

/**
 * `HEX|FILE|-`: `-` reads stdin, an existing path reads the file, anything else is hex. A file
 * or stdin may hold hex text or raw bytes. Input is bounded before it is parsed.
 */
export function readBytesArgument(arg: string, what: string): Uint8Array {
  let raw: Buffer;
  if (arg === '-' || existsSync(arg)) {
    raw = readInput(arg, what, MAX_INPUT_BYTES * 2);
  } else if (/[/\\.]/.test(arg)) {
    // Hex never holds a dot or a slash: this is a path, and the file is not there.
    throw notFound('ERR_FILE_NOT_FOUND', `no such file \`${arg}\``);
  } else {
    return fromHex(arg, what);
  }
  const text = raw.toString('latin1');
  return HEX_TEXT_RE.test(text) ? fromHex(text, what) : new Uint8Array(raw);
}

/**
 * `FILE|-`: the UTF-8 text of a file, or of stdin for `-`, of at most `maxBytes` (default 2 MiB)
 * bytes, checked before it is read whole.
 */
export function readTextArgument(
  arg: string,
  what: string,
  maxBytes = MAX_INPUT_BYTES * 2,
): string {
  const raw = readInput(arg, what, maxBytes);
  try {
    return utf8.decode(raw);
  } catch (cause) {
    throw invalid('ERR_ARGUMENT_INVALID', `${what} \`${arg}\` is not UTF-8 text`, cause);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readInput(arg: string, what: string, maxBytes: number): Buffer {
  let raw: Buffer;
  if (arg === '-') {
    raw = readFileSync(0);
  } else if (existsSync(arg) && statSync(arg).isFile()) {
    if (statSync(arg).size > maxBytes)
      throw invalid('ERR_INPUT_TOO_LARGE', `\`${arg}\` is larger than ${maxBytes} bytes`);
    raw = readFileSync(arg);
  } else if (existsSync(arg)) {
    throw invalid('ERR_ARGUMENT_INVALID', `\`${arg}\` is not a file (a directory?)`);
  } else {
    throw notFound('ERR_FILE_NOT_FOUND', `no such file \`${arg}\``);
  }
  if (raw.length > maxBytes)
    throw invalid('ERR_INPUT_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`);
  return raw;
}
