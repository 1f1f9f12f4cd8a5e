import { OPERATORS, type ArgKind, type OperatorGroup } from './operators.js';

/** One `~` operator as the CLI and TUI help show it. */
export interface FilterOperatorInfo {
  /** Operator name without the `~` (as in mitmproxy: "m", "hq", "repo"). */
  readonly code: string;
  readonly arg: ArgKind;
  readonly help: string;
  /** 'flow' for mitmproxy's operators, 'registry' for regtape's own. */
  readonly group: OperatorGroup;
  /** For `word` arguments: the accepted words. */
  readonly values?: readonly string[];
  /** An example expression (every registry operator has one). */
  readonly example?: string;
}

export const FILTER_OPERATORS: ReadonlyArray<FilterOperatorInfo> = Object.freeze(
  OPERATORS.map((d) =>
    Object.freeze({
      code: d.code,
      arg: d.arg,
      help: d.help,
      group: d.group,
      ...(d.arg === 'word' ? { values: Object.freeze([...d.values]) } : {}),
      ...(d.example ? { example: d.example } : {}),
    }),
  ),
);

/** `!`, `&`, `|`, grouping and juxtaposition, for help screens. */
export const FILTER_COMBINATORS: ReadonlyArray<{ readonly syntax: string; readonly help: string }> = Object.freeze([
  { syntax: '!x', help: 'not x (binds tightest)' },
  { syntax: 'x & y', help: 'x and y' },
  { syntax: 'x | y', help: 'x or y (& binds tighter than |)' },
  { syntax: '(x)', help: 'grouping' },
  { syntax: 'x y', help: 'side by side: x and y, binding loosest (a b | c = a & (b | c))' },
]);

const NOTES = [
  'A bare regex matches the URL (same as ~u). Regexes ignore case and match anywhere;',
  "quote one with '...' or \"...\" (a backslash escapes the quote) when it contains",
  'spaces, ( ) ~ or quotes. Flows without registry facts never match registry operators.',
];

/** The operator table as plain text (for `--help` and the TUI help screen). */
export function filterHelp(opts: { examples?: boolean } = {}): string {
  const withExamples = opts.examples ?? true;
  const rows = (group: OperatorGroup): string[] => {
    const out: string[] = [];
    for (const op of FILTER_OPERATORS) {
      if (op.group !== group) continue;
      const head = `~${op.code}${op.arg === 'none' ? '' : ` ${op.arg}`}`;
      out.push(`  ${head.padEnd(18)}${op.help}`);
      if (op.values) out.push(...wrap(op.values.join(' '), 70).map((l) => `${' '.repeat(20)}${l}`));
      if (op.example && withExamples) out.push(`${' '.repeat(20)}e.g. ${op.example}`);
    }
    return out;
  };
  return [
    'Flow operators (mitmproxy filter syntax):',
    ...rows('flow'),
    '',
    'Registry operators:',
    ...rows('registry'),
    '',
    'Combining:',
    ...FILTER_COMBINATORS.map((c) => `  ${c.syntax.padEnd(18)}${c.help}`),
    '',
    ...NOTES,
  ].join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** `regtape help filters`: the operator table with an example per registry operator, and whole expressions. */
export function filtersHelpPage(): string {
  return [
    'regtape filter expressions (regtape flows/show/export --filter, the inspector\'s f key)',
    '',
    filterHelp({ examples: true }),
    '',
    'Examples:',
    "  ~repo lab/alpine & ~op cdn-blob     the CDN downloads of one repository's blobs",
    '  ~redirect & ~c 307                  the registry sending clients to its CDN',
    '  ~cdn & !~c 200                      CDN legs that did not answer 200 (expired signed URLs, 403s)',
    "  ~op token & ~q 'scope=.*push'       token requests asking for push",
    '  ~c 401 | ~c 429                     challenges and rate limits',
    '  ~mt manifest.list | ~mt image.index requests that accept (or got) a manifest list or OCI index',
  ].join('\n');
}
