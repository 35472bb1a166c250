import { existsSync, readSync } from 'node:fs';
import { invalid, notFound } from '../core/internal.js';
import { fromHex } from '../encoding/index.js';
import { readRegularFile } from '../node/internal.js';

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

/** Options of {@link readInput}. */
export interface ReadInputOptions {
  /** Whether `-` reads stdin (default true); otherwise `-` is a file name like any other. */
  readonly stdin?: boolean;
  /**
   * The code for a path that is not a regular file (a directory, a FIFO, a device): default
   * `ERR_ARGUMENT_INVALID`; `ERR_FILE_NOT_REGULAR` where the command documents it.
   */
  readonly notRegular?: 'ERR_ARGUMENT_INVALID' | 'ERR_FILE_NOT_REGULAR';
}

/**
 * The bytes of `arg`: stdin for `-` (unless `stdin: false`), else a regular file of at most
 * `maxBytes` (`ERR_INPUT_TOO_LARGE`), read by the node's `readRegularFile` (the one check for a
 * named file: a device or a FIFO is refused, never read without end or waited on).
 * A missing file is `ERR_FILE_NOT_FOUND`.
 */
export function readInput(
  arg: string,
  what: string,
  maxBytes: number,
  options: ReadInputOptions = {},
): Buffer {
  if (arg === '-' && options.stdin !== false) {
    const raw = readStdin(maxBytes);
    if (raw === undefined)
      throw invalid('ERR_INPUT_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`);
    return raw;
  }
  const read = readRegularFile(arg, maxBytes);
  if (!('refused' in read)) return read.bytes;
  switch (read.refused) {
    case 'missing':
      throw notFound('ERR_FILE_NOT_FOUND', `no such file \`${arg}\``);
    case 'not_regular':
      throw options.notRegular === 'ERR_FILE_NOT_REGULAR'
        ? invalid('ERR_FILE_NOT_REGULAR', `\`${arg}\` is not a regular file`)
        : invalid('ERR_ARGUMENT_INVALID', `\`${arg}\` is not a file (a directory?)`);
    case 'too_large':
      throw invalid('ERR_INPUT_TOO_LARGE', `\`${arg}\` is larger than ${maxBytes} bytes`);
  }
}

const STDIN_CHUNK = 64 * 1024;
const STDIN_RETRY_MS = 5;

/**
 * Reads stdin to its end, synchronously, or `undefined` once it holds more than `maxBytes`
 * (without reading the rest). stdin may be a pipe in non-blocking mode (libuv sets it once
 * anything touches `process.stdin`), where a read before the writer has written fails with
 * `EAGAIN`: that waits a few milliseconds and reads again rather than failing
 * (`readFileSync(0)` throws there).
 */
function readStdin(maxBytes: number): Buffer | undefined {
  const chunks: Buffer[] = [];
  let total = 0;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const chunk = Buffer.allocUnsafe(STDIN_CHUNK);
    let n: number;
    try {
      n = readSync(0, chunk, 0, chunk.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        Atomics.wait(pause, 0, 0, STDIN_RETRY_MS);
        continue;
      }
      if (code === 'EOF') break;
      throw error;
    }
    if (n === 0) break;
    total += n;
    if (total > maxBytes) return undefined;
    chunks.push(chunk.subarray(0, n));
  }
  return Buffer.concat(chunks, total);
}
