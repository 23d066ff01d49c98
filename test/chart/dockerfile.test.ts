/**
 * The image build, without a Docker engine: the Dockerfile passes the linter
 * (dockerfile-lint.ts: dockerfile-utils plus hadolint's rules, each shown to
 * fire on a bad example), has the intended shape (pinned Node.js 24 slim
 * base, multi-stage, production dependencies only, iptables, non-root USER
 * 1337, `tollgate` entrypoint), its build context (.dockerignore) holds what
 * it copies and nothing else, and bin/tollgate runs on the PATH's Node.js
 * when the devDependency `node` is absent, as in the image.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { DockerfileParser } from 'dockerfile-ast';
import { lintDockerfile } from './dockerfile-lint.ts';
import { repoRoot } from './helm.ts';

const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);

interface Stage {
  name: string | undefined;
  from: string;
  /** Instructions after FROM: keyword, arguments (without flags), and the text after the keyword. */
  lines: { keyword: string; args: string[]; content: string }[];
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build argument, not a JS template
const NODE_IMAGE = '${NODE_IMAGE}';

function stages(): Stage[] {
  const out: Stage[] = [];
  for (const i of dockerfile.getInstructions()) {
    const args = i.getArguments().map((a) => a.getValue());
    if (i.getKeyword() === 'FROM') out.push({ from: args[0] ?? '', name: args[2], lines: [] });
    else {
      const content = i.getTextContent().slice(i.getInstruction().length).trim();
      out.at(-1)?.lines.push({ keyword: i.getKeyword(), args, content });
    }
  }
  return out;
}

const runs = (s: Stage | undefined) =>
  (s?.lines ?? []).filter((l) => l.keyword === 'RUN').map((l) => l.args.join(' '));

describe('Dockerfile', () => {
  it('passes the linter', () => {
    assert.deepEqual(lintDockerfile(text), []);
  });

  const base = 'FROM node:24.21.0-trixie-slim\nWORKDIR /app\n';
  const tail = 'USER 1337\nENTRYPOINT ["/app/bin/tollgate"]\n';
  for (const [rule, body] of [
    ['DFU', 'FROM node:24-slim\nHEALTHCHECK --interva=30s CMD ls\nUSER 1\n'],
    ['DL3000', `${base}WORKDIR app\n${tail}`],
    ['DL3002', `${base}USER root\n`],
    ['DL3002', `${base}ENTRYPOINT ["/app/bin/tollgate"]\n`],
    ['DL3003', `${base}RUN cd /tmp && ls\n${tail}`],
    ['DL3004', `${base}RUN sudo ls\n${tail}`],
    ['DL3006', `FROM node\n${tail}`],
    ['DL3007', `FROM node:latest\n${tail}`],
    ['DL3007', `ARG IMAGE=node:latest\nFROM \${IMAGE}\n${tail}`],
    ['DL3009', `${base}RUN apt-get update && apt-get install -y --no-install-recommends iptables\n${tail}`],
    [
      'DL3014',
      `${base}RUN apt-get update && apt-get install --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*\n${tail}`,
    ],
    [
      'DL3015',
      `${base}RUN apt-get update && apt-get install -y iptables && rm -rf /var/lib/apt/lists/*\n${tail}`,
    ],
    ['DL3016', `${base}RUN npm install\n${tail}`],
    ['DL3020', `${base}ADD dist/ dist/\n${tail}`],
    ['DL3021', `${base}COPY a b dest\n${tail}`],
    ['DL3022', `${base}COPY --from=builder /src/dist/ dist/\n${tail}`],
    ['DL3024', `FROM node:24-slim AS a\nFROM node:24-slim AS a\n${tail}`],
    ['DL3025', `${base}USER 1337\nENTRYPOINT /app/bin/tollgate\n`],
    ['DL3027', `${base}RUN apt install -y iptables\n${tail}`],
    ['DL3045', `FROM node:24-slim\nCOPY bin/ bin/\n${tail}`],
    ['DL4000', `${base}MAINTAINER someone\n${tail}`],
    ['DL4003', `${base}CMD ["a"]\nCMD ["b"]\n${tail}`],
    ['DL4004', `${base}ENTRYPOINT ["a"]\n${tail}`],
    ['DL4006', `${base}RUN ls | wc -l\n${tail}`],
  ] as const) {
    it(`finds ${rule} in a bad example`, () => {
      const found = lintDockerfile(body).map((p) => p.rule);
      assert.ok(found.includes(rule), `${rule} not found in ${JSON.stringify(found)} for:\n${body}`);
    });
  }

  it('accepts pipes under SHELL -o pipefail', () => {
    const body = `${base}SHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN ls | wc -l\n${tail}`;
    assert.deepEqual(lintDockerfile(body), []);
  });

  it('builds on the pinned Node.js 24 slim image of package.json in three stages', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const arg = dockerfile.getInitialARGs().find((a) => a.getProperty()?.getName() === 'NODE_IMAGE');
    assert.equal(arg?.getProperty()?.getValue(), `node:${pkg.devDependencies.node}-trixie-slim`);
    const all = stages();
    assert.deepEqual(
      all.map((s) => [s.name, s.from]),
      [
        ['build', NODE_IMAGE],
        ['deps', NODE_IMAGE],
        [undefined, NODE_IMAGE],
      ],
    );
    const [build, deps] = all;
    assert.deepEqual(runs(build), ['npm ci --ignore-scripts --no-audit --no-fund', 'npm run build']);
    assert.match(runs(deps)[0] ?? '', /^npm ci --omit=dev --ignore-scripts /);
  });

  it('ships production dependencies, dist/ and the runtime files, run by USER 1337 as `tollgate`', () => {
    const final = stages().at(-1);
    const copies = (final?.lines ?? []).filter((l) => l.keyword === 'COPY').map((l) => l.content);
    assert.deepEqual(copies, [
      '--from=deps /app/node_modules/ node_modules/',
      '--from=build /src/dist/ dist/',
      'package.json ./',
      'bin/ bin/',
      'crds/ crds/',
      'proto/ proto/',
    ]);
    const run = runs(final).join(' ');
    assert.match(run, /apt-get install -y --no-install-recommends iptables /);
    assert.match(run, /useradd --system --uid 1337 --gid 1337 /);
    const last = (keyword: string) => final?.lines.filter((l) => l.keyword === keyword).at(-1)?.args;
    assert.deepEqual(last('USER'), ['1337:1337']);
    assert.deepEqual(last('WORKDIR'), ['/app']);
    assert.equal(dockerfile.getENTRYPOINTs().at(-1)?.getArgumentsContent(), '["/app/bin/tollgate"]');
  });

  it('sends only what it copies in the build context (.dockerignore)', () => {
    const patterns = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(patterns[0], '*', 'an allowlist: everything excluded first');
    const included = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1).replace(/\/$/, ''));
    const sources = dockerfile
      .getCOPYs()
      .filter((c) => c.getFromFlag() === null)
      .flatMap((c) => c.getArguments().slice(0, -1))
      .map((a) => a.getValue().replace(/\/$/, ''));
    for (const source of sources) {
      assert.ok(included.includes(source), `COPY ${source} is excluded by .dockerignore`);
      assert.ok(existsSync(join(repoRoot, source)), `COPY ${source}: no such file`);
    }
    for (const never of ['node_modules', 'dist', '.git', 'test', 'bench', 'charts', 'coverage']) {
      assert.ok(!included.includes(never), `${never} must stay out of the build context`);
    }
    assert.ok(patterns.includes('**/*.test.ts'));
  });

  it('runs bin/tollgate on the PATH node when node_modules/node is absent (as in the image)', () => {
    const app = mkdtempSync(join(tmpdir(), 'tollgate-image-'));
    try {
      mkdirSync(join(app, 'bin'));
      mkdirSync(join(app, 'dist/cli'), { recursive: true });
      copyFileSync(join(repoRoot, 'bin/tollgate'), join(app, 'bin/tollgate'));
      writeFileSync(
        join(app, 'dist/cli/main.js'),
        'console.log(process.execPath, process.argv.slice(2).join(" "));\n',
      );
      const pathNode = process.execPath;
      const out = execFileSync(join(app, 'bin/tollgate'), ['operator', '--help'], {
        env: { PATH: `${dirname(pathNode)}:/usr/bin:/bin` },
        encoding: 'utf8',
      });
      assert.equal(out.trim(), `${pathNode} operator --help`);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
