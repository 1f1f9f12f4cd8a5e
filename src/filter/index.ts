/**
 * The flow filter language, shared by the CLI, the TUI and export. It is
 * mitmproxy's (`~m GET & ~c 200`, `!~s`, `(~h foo | ~b bar)`) plus operators over
 * registry facts (`~repo lab/alpine & ~op cdn-blob`). Pure: no I/O.
 *
 * - `~x regex` tests one field; regexes are JavaScript regexes, case-insensitive,
 *   searched anywhere in the field. Give them bare or quoted with '…' or "…"; quote
 *   one that contains spaces, parentheses, `~` or quotes. A bare regex means `~u`.
 * - `!` not, `&` and, `|` or, `( )` grouping; `!` > `&` > `|`. Terms side by side are
 *   ANDed and bind loosest, as in mitmproxy: `~d hub ~m GET | ~m HEAD` is
 *   `~d hub & (~m GET | ~m HEAD)`.
 * - Registry operators never match a flow whose registry facts are null.
 *
 * `filterHelp()` prints the operator table; `FILTER_OPERATORS` is the same as data.
 */
export { parseFilter } from './parse.js';
export { FilterSyntaxError } from './errors.js';
export { FILTER_OPERATORS, FILTER_COMBINATORS, filterHelp, filtersHelpPage } from './help.js';
export type { FilterOperatorInfo } from './help.js';
export type { Filter, FilterSubject } from './types.js';
