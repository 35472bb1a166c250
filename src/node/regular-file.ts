// Reading a file that configuration or a command line names: a regular file only — a device
// (`/dev/zero`) would be read without end and a named pipe would wait for a writer — and never
// more than a bound, whatever the file claims its size is.
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';

/** What {@link readRegularFile} read, or why it refused. */
export type RegularFileRead =
  { readonly bytes: Buffer } | { readonly refused: 'missing' | 'not_regular' | 'too_large' };

/**
 * The bytes of the regular file at `path`, if it holds at most `maxBytes`. The file is opened
 * without blocking (opening a named pipe for reading would wait for a writer), checked with
 * fstat on that descriptor (what is checked is what is read, even if the path is swapped), and
 * read from it to at most `maxBytes + 1` bytes, the one extra telling a file over the bound —
 * also one that grew after fstat or reports no size (`/proc`). With `noFollow`, a symbolic link
 * at `path` is not followed but refused as `not_regular` (a file the process keeps in its own
 * folder, where a link would be someone else's doing; O_NOFOLLOW, so no check comes before the
 * open). Other failures (`EACCES`, …) are thrown as they come.
 */
export function readRegularFile(
  path: string,
  maxBytes: number,
  options: { readonly noFollow?: boolean } = {},
): RegularFileRead {
  const noFollow = options.noFollow === true;
  let fd: number;
  try {
    fd = openSync(
      path,
      fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | (noFollow ? fsConstants.O_NOFOLLOW : 0),
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { refused: 'missing' };
    // Linux's answer to O_NOFOLLOW on a link.
    if (noFollow && code === 'ELOOP') return { refused: 'not_regular' };
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { refused: 'not_regular' };
    const limit = maxBytes + 1;
    // Sized by fstat (a few KiB for a config) and grown, never past the limit, if it was wrong.
    let buffer = Buffer.alloc(Math.min(limit, Math.max(stat.size + 1, 4096)));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length === limit) break;
        const grown = Buffer.alloc(Math.min(limit, buffer.length * 2));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) return { refused: 'too_large' };
    return { bytes: buffer.subarray(0, length) };
  } finally {
    closeSync(fd);
  }
}
