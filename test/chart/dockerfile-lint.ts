/**
 * A Dockerfile linter for CI without a hadolint binary: the syntax and
 * argument checks of dockerfile-utils (the validator behind VS Code's
 * Dockerfile support: what `docker build` would refuse), plus the hadolint
 * rules that matter for this image, implemented on the dockerfile-ast parse.
 * Each problem carries the hadolint rule id (or DFU for dockerfile-utils).
 */
import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

export interface LintProblem {
  rule: string;
  /** 1-based line. */
  line: number;
  message: string;
}

/** The hadolint rules lintDockerfile checks, for docs and reports. */
export const RULES: Readonly<Record<string, string>> = {
  DL3000: 'WORKDIR is an absolute path',
  DL3002: 'the last USER is not root',
  DL3003: 'WORKDIR, not cd in RUN',
  DL3004: 'no sudo',
  DL3006: 'every FROM image has an explicit tag',
  DL3007: 'no image tagged latest',
  DL3009: 'apt lists removed in the RUN that fetched them',
  DL3014: 'apt-get install -y',
  DL3015: 'apt-get install --no-install-recommends',
  DL3016: 'npm installs only from the lockfile (npm ci)',
  DL3020: 'COPY, never ADD',
  DL3021: 'COPY of several sources ends in a folder/',
  DL3022: 'COPY --from names an earlier stage',
  DL3024: 'stage names are unique',
  DL3025: 'ENTRYPOINT and CMD in JSON form',
  DL3027: 'apt-get, not apt',
  DL3045: 'COPY to a relative path only after WORKDIR',
  DL4000: 'no MAINTAINER',
  DL4003: 'one CMD per stage',
  DL4004: 'one ENTRYPOINT per stage',
  DL4006: 'a RUN with a pipe runs under SHELL with -o pipefail',
};

function words(i: Instruction): string[] {
  return i.getArguments().map((a) => a.getValue());
}

function lineOf(i: Instruction): number {
  return i.getRange().start.line + 1;
}

/** Problems of the Dockerfile `text`; empty when it passes. */
export function lintDockerfile(text: string): LintProblem[] {
  const problems: LintProblem[] = validate(text).map((d) => ({
    rule: 'DFU',
    line: d.range.start.line + 1,
    message: typeof d.message === 'string' ? d.message : d.message.value,
  }));
  const add = (rule: string, i: Instruction, message = RULES[rule] ?? rule) =>
    problems.push({ rule, line: lineOf(i), message });

  const dockerfile = DockerfileParser.parse(text);
  const initialArgs = new Map<string, string>();
  for (const arg of dockerfile.getInitialARGs()) {
    const property = arg.getProperty();
    if (property?.getName()) initialArgs.set(property.getName(), property.getValue() ?? '');
  }
  const stages: string[] = [];
  let stage = { workdir: false, pipefail: false, cmds: 0, entrypoints: 0, user: '' };
  let lastUser: { user: string; at: Instruction } | null = null;

  for (const i of dockerfile.getInstructions()) {
    const keyword = i.getKeyword();
    const args = words(i);
    const joined = args.join(' ');
    switch (keyword) {
      case 'FROM': {
        const image = (args[0] ?? '').replace(
          /\$\{?(\w+)\}?/g,
          (_, name: string) => initialArgs.get(name) ?? '',
        );
        const alias = args[1]?.toUpperCase() === 'AS' ? args[2] : undefined;
        const ref = image.split('@')[0] ?? '';
        const tag = /:([^/:]+)$/.exec(ref)?.[1];
        if (image !== 'scratch' && !stages.includes(image) && tag === undefined && !image.includes('@'))
          add('DL3006', i);
        if (tag === 'latest') add('DL3007', i);
        if (alias !== undefined) {
          if (stages.includes(alias)) add('DL3024', i);
          stages.push(alias);
        }
        stage = { workdir: false, pipefail: false, cmds: 0, entrypoints: 0, user: '' };
        lastUser = null;
        break;
      }
      case 'WORKDIR':
        if (!(args[0] ?? '').startsWith('/') && !(args[0] ?? '').startsWith('$')) add('DL3000', i);
        stage.workdir = true;
        break;
      case 'USER':
        lastUser = { user: args[0] ?? '', at: i };
        break;
      case 'SHELL':
        stage.pipefail = /-o["',\s]+pipefail/.test(i.getArgumentsContent() ?? '');
        break;
      case 'ADD':
        add('DL3020', i);
        break;
      case 'MAINTAINER':
        add('DL4000', i);
        break;
      case 'CMD':
      case 'ENTRYPOINT': {
        if (!(i.getArgumentsContent() ?? '').trim().startsWith('[')) add('DL3025', i);
        const count = keyword === 'CMD' ? ++stage.cmds : ++stage.entrypoints;
        if (count > 1) add(keyword === 'CMD' ? 'DL4003' : 'DL4004', i);
        break;
      }
      case 'COPY': {
        // The parser makes every COPY instruction a Copy.
        const from = (i as Copy).getFromFlag()?.getValue();
        if (from !== undefined && from !== null && !/^\d+$/.test(from) && !stages.includes(from)) {
          add('DL3022', i, `COPY --from=${from} names no earlier stage`);
        }
        const sources = args.slice(0, -1);
        const dest = args.at(-1) ?? '';
        if (sources.length > 1 && !dest.endsWith('/')) add('DL3021', i);
        if (!dest.startsWith('/') && !stage.workdir) add('DL3045', i);
        break;
      }
      case 'RUN':
        lintRun(joined, (rule) => add(rule, i), stage.pipefail);
        break;
    }
  }
  if (lastUser === null || /^(root|0)(:|$)/.test(lastUser.user)) {
    problems.push({
      rule: 'DL3002',
      line: lastUser === null ? 1 : lineOf(lastUser.at),
      message:
        lastUser === null ? 'the final stage sets no USER (it would run as root)' : (RULES.DL3002 ?? ''),
    });
  }
  return problems.sort((a, b) => a.line - b.line);
}

function lintRun(command: string, add: (rule: string) => void, pipefail: boolean): void {
  if (/(^|[;&|]\s*)cd\s/.test(command)) add('DL3003');
  if (/(^|[;&|]\s*)sudo\s/.test(command)) add('DL3004');
  if (/(^|[;&|]\s*)apt\s/.test(command)) add('DL3027');
  if (/(^|[^|])\|([^|]|$)/.test(command) && !pipefail) add('DL4006');
  if (/npm\s+(install|i|add)(\s|$)/.test(command)) add('DL3016');
  for (const install of command.matchAll(/apt-get\s+install([^;&|]*)/g)) {
    const options = install[1] ?? '';
    if (!/(^|\s)(-y|--yes|-[a-z]*y[a-z]*|--assume-yes)(\s|$)/.test(options)) add('DL3014');
    if (!/--no-install-recommends/.test(options)) add('DL3015');
  }
  if (
    /apt-get\s+(update|install)/.test(command) &&
    !/rm\s+-[a-z]*r[a-z]*f?[a-z]*\s+\/var\/lib\/apt\/lists/.test(command)
  ) {
    add('DL3009');
  }
}
