/** Writes crds/ (and the chart's copy) from the schema: `npm run gen:crd`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { renderCrdYaml } from '../policy/schema/crd.ts';

export const CRD_FILES = [
  'crds/apipolicies.tollgate.dev.yaml',
  'charts/tollgate/crds/apipolicies.tollgate.dev.yaml',
];

const root = new URL('..', import.meta.url).pathname;
const yaml = renderCrdYaml();
for (const file of CRD_FILES) {
  mkdirSync(new URL(`../${file.slice(0, file.lastIndexOf('/'))}`, import.meta.url), { recursive: true });
  writeFileSync(root + file, yaml);
  console.log(`wrote ${file}`);
}
