/**
 * User-facing errors: one catalogue of stable codes, one class, one printer.
 *
 * Every error a user can see is a `RegtapeError` with a code from `ERRORS`. The CLI prints it
 * as `regtape: <code>: <sentence>` (see `formatError`) and exits with the code's exit status.
 * Codes are stable strings (scripts may match them); docs/ERRORS.md lists them and is checked
 * against this table by a test. Add a code here, then a line there.
 */

/** Exit statuses of the CLI (documented in docs/ERRORS.md and `regtape --help`). */
export const EXIT = {
  /** Everything went as asked. */
  ok: 0,
  /** The command ran, and what it checked failed (verify found damage, replay --strict had misses). */
  check: 1,
  /** Bad input: arguments, a file that is not what it should be, a filter that does not parse. */
  usage: 2,
  /** The environment refused: a port in use, a permission, a full disk, a missing program. */
  environment: 3,
  /** A bug in regtape: an unexpected exception (please report it). */
  internal: 70,
} as const;
export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

interface ErrorSpec {
  readonly exit: ExitStatus;
  /** One line for docs/ERRORS.md: when this happens. */
  readonly doc: string;
}

/** The catalogue. Keys are the stable codes. */
export const ERRORS = {
  // arguments and input
  'bad-argument': { exit: EXIT.usage, doc: 'an option or argument has a value regtape cannot use' },
  'bad-filter': { exit: EXIT.usage, doc: 'a filter expression does not parse (the message points at the position)' },
  'bad-fault': { exit: EXIT.usage, doc: 'a replay --fault rule does not parse' },
  'bad-map': { exit: EXIT.usage, doc: 'a --map HOST=ADDR:PORT rule does not parse' },
  'bad-har': { exit: EXIT.usage, doc: 'an imported HAR file is not valid HAR 1.2 JSON' },
  'bad-addon': { exit: EXIT.usage, doc: 'a record --addon file cannot be loaded or does not export an addon' },
  'bad-manifest': { exit: EXIT.usage, doc: 'a manifest body cannot be parsed or is too large' },
  // recordings
  'recording-not-found': { exit: EXIT.usage, doc: 'the recording file does not exist or cannot be read' },
  'recording-not-sqlite': { exit: EXIT.usage, doc: 'the file is not an SQLite database' },
  'recording-not-regtape': { exit: EXIT.usage, doc: 'the file is SQLite but not a regtape recording' },
  'recording-newer-schema': { exit: EXIT.usage, doc: 'the recording was written by a newer regtape' },
  'recording-corrupt': { exit: EXIT.usage, doc: 'the recording is damaged (rows of the wrong shape, failed integrity check)' },
  'recording-exists': { exit: EXIT.usage, doc: 'the output file exists and the command would overwrite or append to it' },
  'body-missing': { exit: EXIT.usage, doc: 'a stored body the recording refers to is missing or does not match its digest' },
  'body-too-large': { exit: EXIT.usage, doc: 'a stored body is larger than a command reads whole (manifests, tokens, previews)' },
  'body-store-unsafe': { exit: EXIT.usage, doc: 'the body store is a symlink, not a directory, or not owned by the user' },
  // export / import
  'export-failed': { exit: EXIT.usage, doc: 'an export cannot be made from this recording (e.g. an image that was not pulled)' },
  'import-failed': { exit: EXIT.usage, doc: 'an import could not be completed; nothing was written' },
  // CA
  'ca-error': { exit: EXIT.environment, doc: 'the CA cannot be read, created or replaced' },
  'ca-invalid': { exit: EXIT.environment, doc: 'the CA files exist but do not form a valid CA (move them away and run `regtape ca` to make a new one)' },
  // environment
  'port-in-use': { exit: EXIT.environment, doc: 'the address to listen on is taken' },
  'permission-denied': { exit: EXIT.environment, doc: 'a file or directory cannot be read or written (EACCES/EPERM)' },
  'not-a-file': { exit: EXIT.environment, doc: 'a path that should be a file is a directory (EISDIR) or the reverse' },
  'no-space': { exit: EXIT.environment, doc: 'the disk is full (ENOSPC)' },
  'no-terminal': { exit: EXIT.environment, doc: 'the inspector needs a terminal (stdin and stdout must be a TTY)' },
  // checks
  'verify-failed': { exit: EXIT.check, doc: 'verify found bodies or rows that do not check out' },
  'replay-misses': { exit: EXIT.check, doc: 'replay --strict: a request had no recorded answer' },
  // last resort
  internal: { exit: EXIT.internal, doc: 'an unexpected error inside regtape; please report it with the command line' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The one error class users see. `message` is a sentence saying what is wrong and what to do. */
export class RegtapeError extends Error {
  readonly exitCode: ExitStatus;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RegtapeError';
    this.exitCode = ERRORS[code].exit;
  }
}

export function isRegtapeError(e: unknown): e is RegtapeError {
  return e instanceof RegtapeError;
}

/** Node's errno errors (ENOENT, EACCES, …) as user errors about `path`; anything else unchanged. */
export function fromSystemError(e: unknown, path?: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string') return e;
  const where = path ?? err.path ?? '';
  switch (err.code) {
    case 'ENOENT':
      return new RegtapeError('recording-not-found', `${where}: no such file or directory`, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new RegtapeError('permission-denied', `${where}: permission denied; check the owner and mode, or choose another path`, { cause: e });
    case 'EISDIR':
      return new RegtapeError('not-a-file', `${where} is a directory; give a file path`, { cause: e });
    case 'ENOTDIR':
      return new RegtapeError('not-a-file', `${where}: a part of the path is not a directory`, { cause: e });
    case 'ENOSPC':
      return new RegtapeError('no-space', `${where}: no space left on the device; free some space or choose another path`, { cause: e });
    case 'EADDRINUSE':
      return new RegtapeError('port-in-use', `${err.message.replace(/^listen EADDRINUSE: address already in use /, '')} is already in use; pick another address with --listen (or stop what holds it)`, { cause: e });
    default:
      return e;
  }
}

/** The one line the CLI prints for an error, and the exit status to use. */
export function formatError(e: unknown): { line: string; exitCode: ExitStatus } {
  const mapped = fromSystemError(e);
  if (mapped instanceof RegtapeError) return { line: `regtape: ${mapped.code}: ${mapped.message}`, exitCode: mapped.exitCode };
  const message = mapped instanceof Error ? mapped.message : String(mapped);
  return { line: `regtape: internal: ${message} (this is a bug in regtape; please report it)`, exitCode: EXIT.internal };
}
