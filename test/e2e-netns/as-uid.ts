/**
 * Runs the tollgate CLI (the build bin/tollgate runs, else the sources) as
 * another UID without a user account: the modules are loaded as root, then the
 * process drops to UID:UID (no supplementary groups) before the command runs,
 * so every socket it opens belongs to that UID. The checkout need not be
 * readable by that UID; the files the command reads at run time must be.
 * Usage: node as-uid.ts UID COMMAND [ARGS...]
 */
import { existsSync } from 'node:fs';

const [uidText, ...args] = process.argv.slice(2);
const uid = Number(uidText);
const dist = new URL('../../dist/cli/', import.meta.url);
const base = existsSync(new URL('main.js', dist)) ? dist : new URL('../../cli/', import.meta.url);
const ext = base === dist ? 'js' : 'ts';
const { main } = (await import(new URL(`main.${ext}`, base).href)) as typeof import('../../cli/main.ts');
const { processIo } = (await import(
  new URL(`cli-io.${ext}`, base).href
)) as typeof import('../../cli/cli-io.ts');
const { setgroups, setgid, setuid } = process;
if (!setgroups || !setgid || !setuid) throw new Error('needs POSIX credentials');
setgroups([]);
setgid(uid);
setuid(uid);
process.exitCode = await main(args, processIo);
