import { RegtapeError } from '../errors/index.js';

/**
 * A filter expression that does not parse. `position` is the 0-based index into the
 * expression (UTF-16 units) of the place the parser blames; the message repeats the
 * expression with a caret under that place:
 *
 *     filter error at 7: expected a regex after ~u
 *       ~m GET ~u
 *              ^
 */
export class FilterSyntaxError extends RegtapeError {
  override readonly name = 'FilterSyntaxError';
  /** The expression as given. */
  readonly source: string;
  /** 0-based index of the offending place (may equal source.length: end of input). */
  readonly position: number;
  /** What the parser wanted there, e.g. "a regex after ~u". */
  readonly expected: string;
  /** What it found instead, or a hint (may be empty). */
  readonly detail: string;

  constructor(source: string, position: number, expected: string, detail = '') {
    super('bad-filter', `filter error at ${position}: expected ${expected}${detail ? `; ${detail}` : ''}\n${caret(source, position)}`);
    this.source = source;
    this.position = position;
    this.expected = expected;
    this.detail = detail;
  }
}

/** The expression on one line (control characters shown as spaces so columns stay put) and a caret under `position`. */
function caret(source: string, position: number): string {
  const line = source.replace(/[\t\n\r\v\f]/g, ' ');
  return `  ${line}\n  ${' '.repeat(position)}^`;
}
