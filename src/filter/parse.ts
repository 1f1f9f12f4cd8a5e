import { FilterSyntaxError } from './errors.js';
import { OPERATOR_BY_CODE, nearestOperators, type OperatorDef } from './operators.js';
import { UrlMemo, type Filter, type FilterSubject, type Predicate } from './types.js';

/*
 * Grammar (mitmproxy's, with its precedence; see index.ts for the user's view):
 *
 *   filter  := seq END
 *   seq     := or or*                 terms side by side: AND, binding loosest
 *   or      := and ( '|' and )*
 *   and     := unary ( '&' unary )*
 *   unary   := '!'* primary
 *   primary := '(' seq ')' | '~'code [argument] | regex          a bare regex is ~u
 *   argument, regex := '…' | "…" | bare
 *
 * A bare word runs to whitespace, ( ) ~ ' or ". It may contain & | ! (so `~m GET|HEAD`
 * is one regex), but & and | at its end are operators again: `~m GET&~c 200` reads as
 * `~m GET & ~c 200`, not as the regex "GET&". In quotes a backslash escapes the quote;
 * any other backslash pair is kept for the regex (`'\d+'`, `'a\\'`).
 *
 * The parser is a single pass over the characters; terms compile to closures as they
 * are parsed. Parentheses nest at most MAX_DEPTH deep, so hostile input cannot
 * exhaust the stack, and every loop consumes input, so none can hang.
 */

const MAX_DEPTH = 64;

/** Where an expression was required: after `(`, `!`, `&` or `|` (for error messages). */
interface After {
  pos: number;
  text: string;
}

interface Arg {
  pos: number;
  text: string;
}

const SPACE = /\s/;

/** Whitespace as `\s` has it (the same test decides that an expression is empty). */
function isSpace(c: string): boolean {
  return SPACE.test(c);
}

/** Ends a bare word. */
function isDelimiter(c: string): boolean {
  return isSpace(c) || c === '(' || c === ')' || c === '~' || c === "'" || c === '"';
}

function isNameChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_';
}

/** A token for a message: short, quoted when it has spaces. */
function show(text: string): string {
  const t = text.length > 40 ? `${text.slice(0, 37)}...` : text;
  return SPACE.test(t) || t === '' ? JSON.stringify(t) : t;
}

function allOf(terms: Predicate[]): Predicate {
  if (terms.length === 1) return terms[0]!;
  if (terms.length === 2) {
    const [a, b] = terms as [Predicate, Predicate];
    return (s) => a(s) && b(s);
  }
  return (s) => {
    for (const t of terms) if (!t(s)) return false;
    return true;
  };
}

function anyOf(terms: Predicate[]): Predicate {
  if (terms.length === 1) return terms[0]!;
  if (terms.length === 2) {
    const [a, b] = terms as [Predicate, Predicate];
    return (s) => a(s) || b(s);
  }
  return (s) => {
    for (const t of terms) if (t(s)) return true;
    return false;
  };
}

function not(p: Predicate): Predicate {
  return (s) => !p(s);
}

type RegexOperator = Extract<OperatorDef, { arg: 'regex' }>;

function urlOperator(): RegexOperator {
  const def = OPERATOR_BY_CODE.get('u');
  if (def?.arg !== 'regex') throw new Error('filter operator table lacks ~u');
  return def;
}

/** A bare regex is this. */
const URL_OP = urlOperator();

class Parser {
  private pos = 0;
  private depth = 0;
  usesBody = false;

  constructor(
    private readonly src: string,
    private readonly url: UrlMemo,
  ) {}

  private fail(position: number, expected: string, detail?: string): never {
    throw new FilterSyntaxError(this.src, position, expected, detail);
  }

  /** Skips whitespace; the next character, or '' at the end. */
  private peek(): string {
    const s = this.src;
    while (this.pos < s.length && isSpace(s[this.pos]!)) this.pos++;
    return this.pos < s.length ? s[this.pos]! : '';
  }

  parse(): Predicate {
    const p = this.seq(null);
    if (this.peek() === ')') this.fail(this.pos, 'end of filter or another term', 'got a ) with no matching (');
    return p;
  }

  private seq(after: After | null): Predicate {
    const terms = [this.or(after)];
    for (let c = this.peek(); c !== '' && c !== ')'; c = this.peek()) terms.push(this.or(null));
    return allOf(terms);
  }

  private or(after: After | null): Predicate {
    const terms = [this.and(after)];
    while (this.peek() === '|') {
      const at = this.pos++;
      terms.push(this.and({ pos: at, text: '|' }));
    }
    return anyOf(terms);
  }

  private and(after: After | null): Predicate {
    const terms = [this.unary(after)];
    while (this.peek() === '&') {
      const at = this.pos++;
      terms.push(this.unary({ pos: at, text: '&' }));
    }
    return allOf(terms);
  }

  private unary(after: After | null): Predicate {
    let negate = false;
    let c = this.peek();
    while (c === '!') {
      after = { pos: this.pos++, text: '!' };
      negate = !negate;
      c = this.peek();
    }
    if (c === '' || c === ')' || c === '&' || c === '|') {
      if (after) this.fail(after.pos, `a filter expression after ${after.text}`, c === '' ? '' : `got ${c}`);
      if (c === ')') this.fail(this.pos, 'a filter expression', 'got a ) with no matching (');
      this.fail(this.pos, `a filter expression before ${c}`);
    }
    const p = this.primary();
    return negate ? not(p) : p;
  }

  private primary(): Predicate {
    const at = this.pos;
    const c = this.src[at];
    if (c === '(') {
      if (this.depth >= MAX_DEPTH) this.fail(at, `at most ${MAX_DEPTH} nested parentheses`);
      this.pos++;
      this.depth++;
      const p = this.seq({ pos: at, text: '(' });
      if (this.peek() !== ')') this.fail(at, 'a ) to close this (');
      this.pos++;
      this.depth--;
      return p;
    }
    if (c === '~') return this.operator();
    // A bare regex: the URL.
    const arg = c === "'" || c === '"' ? { pos: at, text: this.quoted() } : { pos: at, text: this.bare() };
    return URL_OP.make(this.regex(arg, 'a valid regex (a bare regex matches the URL)'), this.url);
  }

  private operator(): Predicate {
    const s = this.src;
    const at = this.pos;
    let end = at + 1;
    while (end < s.length && isNameChar(s[end]!)) end++;
    const name = s.slice(at + 1, end);
    const def = OPERATOR_BY_CODE.get(name);
    if (!def) {
      if (name === '') this.fail(at, 'an operator name after ~', 'e.g. ~m, ~u, ~repo (see the filter help)');
      const near = nearestOperators(name).map((n) => `~${n}`);
      const guess = near.length > 1 ? `${near.slice(0, -1).join(', ')} or ${near.at(-1)}` : near[0];
      this.fail(at, 'a known operator', `~${name} is unknown, ${guess ? `did you mean ${guess}?` : 'see the filter help'}`);
    }
    this.pos = end;
    return this.build(def, at, `~${name}`);
  }

  private build(def: OperatorDef, at: number, op: string): Predicate {
    if (def.usesBody) this.usesBody = true;
    switch (def.arg) {
      case 'none':
        return def.make();
      case 'regex':
        return def.make(this.regex(this.argument(at, op, 'a regex', true), `a valid regex after ${op}`), this.url);
      case 'int': {
        const a = this.argument(at, op, 'an integer', false);
        if (!/^[0-9]{1,9}$/.test(a.text)) {
          this.fail(a.pos, `an integer after ${op}`, `got ${show(a.text)}${/^[0-9]+$/.test(a.text) ? ' (too large)' : ''}`);
        }
        return def.make(Number(a.text));
      }
      case 'word': {
        const a = this.argument(at, op, def.expects, false);
        const word = a.text.toLowerCase();
        if (!def.values.includes(word)) this.fail(a.pos, `${def.expects} after ${op}`, `got ${show(a.text)}; valid: ${def.values.join(', ')}`);
        return def.make(word);
      }
    }
  }

  /** The argument of the operator at `opAt`; a missing one is blamed on the operator. */
  private argument(opAt: number, op: string, what: string, regex: boolean): Arg {
    const c = this.peek();
    const at = this.pos;
    if (c === "'" || c === '"') return { pos: at, text: this.quoted() };
    if (c === '' || c === ')' || c === '(' || c === '~' || c === '&' || c === '|') {
      if (c === '') this.fail(opAt, `${what} after ${op}`);
      // A parenthesis where the argument should be is the culprit; another operator means the argument is missing.
      this.fail(c === '(' || c === ')' ? at : opAt, `${what} after ${op}`, regex ? `got ${c} (quote a regex that contains spaces, ( ) ~ or quotes)` : `got ${c}`);
    }
    return { pos: at, text: this.bare() };
  }

  /** A bare word at pos (its first character is not a delimiter, & or |). */
  private bare(): string {
    const s = this.src;
    const start = this.pos;
    let end = start;
    while (end < s.length && !isDelimiter(s[end]!)) end++;
    while (end > start + 1 && (s[end - 1] === '&' || s[end - 1] === '|')) end--;
    this.pos = end;
    return s.slice(start, end);
  }

  /** A quoted string at pos; a backslash escapes the quote, other backslash pairs stay as they are. */
  private quoted(): string {
    const s = this.src;
    const open = this.pos;
    const q = s[open]!;
    let out = '';
    let chunk = open + 1;
    for (let i = open + 1; i < s.length; i++) {
      const c = s[i];
      if (c === '\\' && i + 1 < s.length) {
        if (s[i + 1] === q) {
          out += s.slice(chunk, i) + q;
          chunk = i + 2;
        }
        i++;
      } else if (c === q) {
        this.pos = i + 1;
        return out + s.slice(chunk, i);
      }
    }
    return this.fail(open, `a closing ${q}`, 'this quoted string is not closed');
  }

  private regex(a: Arg, expected: string): RegExp {
    try {
      return new RegExp(a.text, 'i');
    } catch (e) {
      return this.fail(a.pos, expected, e instanceof Error ? e.message : String(e));
    }
  }
}

const MATCH_ALL: Predicate = () => true;

/**
 * Parses a filter expression once into a compiled filter. An empty (or all-whitespace)
 * expression matches every flow. Throws FilterSyntaxError, and nothing else, on bad input.
 */
export function parseFilter(expr: string): Filter {
  const url = new UrlMemo();
  let pred = MATCH_ALL;
  let usesBody = false;
  if (!/^\s*$/.test(expr)) {
    const parser = new Parser(expr, url);
    pred = parser.parse();
    usesBody = parser.usesBody;
  }
  const filter = (s: FilterSubject): boolean => {
    url.reset();
    return pred(s);
  };
  Object.defineProperties(filter, {
    source: { value: expr, enumerable: true },
    usesBody: { value: usesBody, enumerable: true },
  });
  return filter as Filter;
}
