import type { Command, Option } from 'commander';

/** Shells `regtape completion` writes a script for. */
export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

interface Spec {
  name: string;
  description: string;
  options: Array<{ long: string; short?: string; description: string; takesValue: boolean; choices?: readonly string[] }>;
}

/** The commands and options of the program, as the completion scripts need them. */
function specs(program: Command): Spec[] {
  const opt = (o: Option) => ({
    long: o.long ?? '',
    short: o.short,
    description: o.description,
    takesValue: o.required || o.optional,
    choices: o.argChoices,
  });
  return program.commands
    .filter((c) => c.name() !== 'help')
    .map((c) => ({ name: c.name(), description: c.description(), options: [...c.options.map(opt), { long: '--help', short: '-h', description: 'display help for command', takesValue: false }] }));
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 100);

function bash(program: Command): string {
  const cmds = specs(program);
  const cases = cmds
    .map((c) => {
      const withChoices = c.options.filter((o) => o.choices?.length);
      const choiceCases = withChoices.map((o) => `        ${o.long}) COMPREPLY=($(compgen -W ${sq(o.choices!.join(' '))} -- "$cur")); return ;;`).join('\n');
      return `    ${c.name})
      case "$prev" in
${choiceCases}
      esac
      opts=${sq(c.options.flatMap((o) => [o.long, o.short].filter(Boolean)).join(' '))} ;;`;
    })
    .join('\n');
  return `# regtape bash completion: eval "$(regtape completion bash)" (e.g. in ~/.bashrc)
_regtape() {
  local cur prev cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W ${sq([...cmds.map((c) => c.name), 'help', '--help', '--version'].join(' '))} -- "$cur"))
    return
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${cases}
    *) opts='' ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _regtape regtape
`;
}

function zsh(program: Command): string {
  const cmds = specs(program);
  const esc = (s: string) => s.replace(/[[\]:'\\]/g, (m) => `\\${m}`);
  const cases = cmds
    .map((c) => {
      const args = c.options.map((o) => {
        const value = o.takesValue ? (o.choices?.length ? `:value:(${o.choices.join(' ')})` : ':value:_files') : '';
        return `        ${sq(`${o.long}[${esc(firstLine(o.description))}]${value}`)}`;
      });
      return `    ${c.name})\n      _arguments -s \\\n${args.join(' \\\n')} \\\n        '*:file:_files' ;;`;
    })
    .join('\n');
  return `#compdef regtape
# regtape zsh completion: regtape completion zsh > "\${fpath[1]}/_regtape" (then compinit),
# or eval "$(regtape completion zsh)" after compinit.
_regtape() {
  local -a cmds
  cmds=(
${cmds.map((c) => `    ${sq(`${c.name}:${esc(firstLine(c.description))}`)}`).join('\n')}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    return
  fi
  local cmd=$words[2]
  shift words; (( CURRENT-- ))
  case $cmd in
${cases}
    *) _files ;;
  esac
}
compdef _regtape regtape 2>/dev/null || true
`;
}

function fish(program: Command): string {
  const cmds = specs(program);
  const lines = ['# regtape fish completion: regtape completion fish > ~/.config/fish/completions/regtape.fish', 'complete -c regtape -f'];
  for (const c of cmds) lines.push(`complete -c regtape -n __fish_use_subcommand -a ${c.name} -d ${sq(firstLine(c.description))}`);
  for (const c of cmds) {
    for (const o of c.options) {
      const parts = [`complete -c regtape -n ${sq(`__fish_seen_subcommand_from ${c.name}`)}`, `-l ${o.long.replace(/^--/, '')}`];
      if (o.short) parts.push(`-s ${o.short.replace(/^-/, '')}`);
      if (o.takesValue) parts.push(o.choices?.length ? `-x -a ${sq(o.choices.join(' '))}` : '-r -F');
      parts.push(`-d ${sq(firstLine(o.description))}`);
      lines.push(parts.join(' '));
    }
    lines.push(`complete -c regtape -n ${sq(`__fish_seen_subcommand_from ${c.name}`)} -F`);
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script for `shell`, generated from the program's own commands and options. */
export function completionScript(program: Command, shell: CompletionShell): string {
  return shell === 'bash' ? bash(program) : shell === 'zsh' ? zsh(program) : fish(program);
}
