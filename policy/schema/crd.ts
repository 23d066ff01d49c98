/**
 * Derives the ApiPolicy CustomResourceDefinition from the schema in
 * api-policy.ts: a structural OpenAPI v3 schema (every node typed, Ajv-only
 * keywords dropped) with the CEL rules, printer columns and status subresource.
 */
import { stringify } from 'yaml';
import {
  ApiPolicySpec,
  ApiPolicyStatus,
  GROUP,
  KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './api-policy.ts';

type JsonObject = Record<string, unknown>;

/** Keywords an API server accepts in a structural schema; everything else is dropped. */
const KEPT = new Set([
  'type',
  'description',
  'format',
  'enum',
  'default',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'required',
  'nullable',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-map-type',
]);

/** Converts one schema node (TypeBox/JSON Schema) into its structural OpenAPI v3 form. */
export function toStructural(node: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (KEPT.has(key)) out[key] = value;
  }
  if (node['x-kubernetes-int-or-string'] === true) {
    // The one anyOf a structural schema allows: the int-or-string pair, untyped at the node.
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    return out;
  }
  if (node['x-kubernetes-preserve-unknown-fields'] === true && node.type !== 'object') {
    // "string or list" cannot be typed structurally: the node is left untyped and
    // the admission webhook / compiler validate it with the full schema.
    delete out.type;
    return out;
  }
  if (node.properties && typeof node.properties === 'object') {
    const props: JsonObject = {};
    for (const [k, v] of Object.entries(node.properties as JsonObject))
      props[k] = toStructural(v as JsonObject);
    out.properties = props;
  }
  if (node.items && typeof node.items === 'object') out.items = toStructural(node.items as JsonObject);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    out.additionalProperties = toStructural(node.additionalProperties as JsonObject);
  }
  if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  return out;
}

const condition = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;

/** The ApiPolicy CustomResourceDefinition (apiextensions.k8s.io/v1) as a plain object. */
export function buildCrd(): JsonObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'tollgate' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
            { name: 'Accepted', type: 'string', jsonPath: condition('Accepted') },
            { name: 'Programmed', type: 'string', jsonPath: condition('Programmed') },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'ApiPolicy declares the API surface of a workload and who may call it.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion of this object.' },
                kind: { type: 'string', description: 'Kind of this object.' },
                metadata: { type: 'object' },
                spec: toStructural(ApiPolicySpec as unknown as JsonObject),
                status: toStructural(ApiPolicyStatus as unknown as JsonObject),
              },
            },
          },
        },
      ],
    },
  };
}

/** The CRD as the YAML committed in crds/ (byte-stable for a given schema). */
export function renderCrdYaml(): string {
  const header = '# Generated from policy/schema/api-policy.ts by `npm run gen:crd`. Do not edit.\n';
  return header + stringify(buildCrd(), { lineWidth: 0, aliasDuplicateObjects: false });
}
