import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/tui/commands.js';
import { helpLines, hints, keyRows } from '../../src/tui/help.js';
import { KEYMAP, keyName, keyNames, lookup, type Context } from '../../src/tui/keymap.js';
import { plain } from '../../src/tui/lines.js';

describe('the key map', () => {
  it('binds only commands that exist', () => {
    for (const b of KEYMAP) expect(COMMANDS, `${b.key} → ${b.command}`).toHaveProperty(b.command);
  });

  it('binds a key at most once per context', () => {
    const seen = new Set<string>();
    for (const b of KEYMAP) {
      const k = `${b.context} ${b.key}`;
      expect(seen.has(k), k).toBe(false);
      seen.add(k);
    }
  });

  it('has help for every binding', () => {
    for (const b of KEYMAP) expect(b.help.length, b.key).toBeGreaterThan(1);
  });

  it('tries the screen context before global (m marks in the list, switches the body view in the detail)', () => {
    expect(lookup('m', ['list', 'global'])).toBe('list.mark');
    expect(lookup('m', ['detail', 'global'])).toBe('detail.mode');
    expect(lookup('j', ['detail', 'global'])).toBe('nav.down');
    expect(lookup('f', ['detail', 'global'])).toBeUndefined();
    expect(lookup('h', ['export'])).toBe('export.har');
  });

  it('has the mitmproxy keys where they fit', () => {
    const at = (key: string, ctx: Context) => lookup(key, [ctx, 'global']);
    expect(at('j', 'list')).toBe('nav.down');
    expect(at('k', 'list')).toBe('nav.up');
    expect(at('g', 'list')).toBe('nav.top');
    expect(at('G', 'list')).toBe('nav.bottom');
    expect(at('space', 'list')).toBe('nav.pagedown');
    expect(at('ctrl-f', 'list')).toBe('nav.pagedown');
    expect(at('ctrl-b', 'list')).toBe('nav.pageup');
    expect(at('enter', 'list')).toBe('nav.select');
    expect(at('tab', 'detail')).toBe('detail.nextTab');
    expect(at('q', 'list')).toBe('app.back');
    expect(at('esc', 'detail')).toBe('app.escape');
    expect(at('esc', 'list')).toBe('app.escape');
    expect(at('Q', 'list')).toBe('app.quit');
    expect(at(';', 'list')).toBe('flow.comment');
    expect(at(';', 'detail')).toBe('flow.comment');
    expect(at('m', 'list')).toBe('list.mark');
    expect(at('U', 'list')).toBe('list.unmarkAll');
    expect(at('d', 'list')).toBe('flow.delete');
    expect(at('D', 'list')).toBe('flow.duplicate');
    expect(at('b', 'list')).toBe('flow.saveBody');
    expect(at('e', 'list')).toBe('export.menu');
    expect(at('x', 'detail')).toBe('export.menu');
    expect(at('w', 'list')).toBe('save.menu');
    expect(at('L', 'list')).toBe('app.load');
    expect(at(':', 'list')).toBe('app.command');
    expect(at('r', 'detail')).toBe('flow.refetch');
    expect(at('space', 'detail')).toBe('detail.nextFlow');
    expect(at('p', 'detail')).toBe('detail.prevFlow');
    expect(at('P', 'list')).toBe('flow.open');
    expect(at('pagedown', 'detail')).toBe('nav.pagedown');
    expect(at('f', 'list')).toBe('filter.prompt');
    expect(at('/', 'list')).toBe('search.prompt');
    expect(at('n', 'list')).toBe('search.next');
    expect(at('N', 'list')).toBe('search.prev');
    expect(at('?', 'list')).toBe('app.help');
    expect(at('M', 'list')).toBe('list.markedOnly');
    expect(at('o', 'list')).toBe('list.order');
    expect(at('v', 'list')).toBe('list.reverse');
    expect(at('F', 'list')).toBe('view.follow');
    expect(at('x', 'list')).toBe('export.menu');
    expect(at('z', 'list')).toBe('view.clear');
    expect(at('E', 'list')).toBe('app.events');
    expect(at('O', 'list')).toBe('app.options');
    expect(at('T', 'list')).toBe('app.operations');
  });
});

describe('help from the key map', () => {
  it('lists every binding and the filter language', () => {
    const lines = helpLines().map(plain);
    for (const b of KEYMAP) {
      const row = lines.find((l) => l.trimEnd().endsWith(b.command) && l.includes(` ${b.key}`));
      expect(row, `${b.context} ${b.key} ${b.command}`).toBeDefined();
    }
    const text = lines.join('\n');
    expect(text).toContain('~repo');
    expect(text).toContain('Flow list');
  });

  it('groups keys of one command on one row', () => {
    const down = keyRows('global').find((r) => r.command === 'nav.down')!;
    expect(down.keys).toEqual(['j', 'down']);
  });

  it('makes footer hints from bound keys', () => {
    expect(hints('list')).toContain('f:filter');
    expect(hints('list')).toContain('q:quit');
    expect(hints('detail')).toContain('m:view');
  });
});

describe('keyName', () => {
  it.each([
    [['', { return: true }], 'enter'],
    [['', { escape: true }], 'esc'],
    [['', { tab: true }], 'tab'],
    [['', { tab: true, shift: true }], 'shift-tab'],
    [['', { delete: true }], 'backspace'],
    [['', { backspace: true }], 'backspace'],
    [['', { upArrow: true }], 'up'],
    [['', { pageDown: true }], 'pagedown'],
    [['f', { ctrl: true }], 'ctrl-f'],
    [[' ', {}], 'space'],
    [['G', { shift: true }], 'G'],
    [['~repo x', {}], '~repo x'],
  ] as const)('%j → %s', ([input, key], name) => {
    expect(keyName(input, key)).toBe(name);
  });
});

describe('keyNames', () => {
  it('reads xterm SGR mouse reports: wheel, left press (release and other buttons are nothing)', () => {
    expect(keyNames('[<64;10;5M', {})).toEqual(['wheelup']);
    expect(keyNames('[<65;10;5M', {})).toEqual(['wheeldown']);
    expect(keyNames('[<0;12;7M', {})).toEqual(['click:7']);
    expect(keyNames('[<0;12;7m', {})).toEqual([]);
    expect(keyNames('[<2;12;7M', {})).toEqual([]);
  });

  it('takes apart keystrokes that arrive together', () => {
    expect(keyNames('jj', {})).toEqual(['j', 'j']);
    expect(keyNames('f\x15~m GET\r', {})).toEqual(['f', 'ctrl-u', '~', 'm', 'space', 'G', 'E', 'T', 'enter']);
    expect(keyNames('a\x7fb\t', {})).toEqual(['a', 'backspace', 'b', 'tab']);
    expect(keyNames('f', { ctrl: true })).toEqual(['ctrl-f']);
    expect(keyNames('', { return: true })).toEqual(['enter']);
    expect(keyNames('😀x', {})).toEqual(['😀', 'x']);
  });
});
