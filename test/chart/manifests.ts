/**
 * Checks rendered objects as a strict `kubectl apply --validate=strict`
 * would, offline: the kubernetes-models validator of the object's kind
 * (types, enums, required fields, patterns) plus the unknown-field check
 * those validators leave out, walked along the @kubernetes/client-node model
 * of the kind (its `attributeTypeMap` lists every field of the API). The
 * cert-manager kinds have neither: a JSON Schema of the fields the chart uses
 * stands in for theirs.
 */
import * as k8s from '@kubernetes/client-node';
import { Ajv } from 'ajv';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { ValidatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { Manifest } from './helm.ts';

type Validator = (obj: Manifest) => void;

function model(Model: new (data: never) => { validate(): void }): Validator {
  return (obj) => new Model(obj as never).validate();
}

/** apiVersion/kind → the kubernetes-models validator and the client-node model name. */
const KINDS: Record<string, { validate: Validator; type: string }> = {
  'apps/v1/Deployment': { validate: model(Deployment), type: 'V1Deployment' },
  'v1/Service': { validate: model(Service), type: 'V1Service' },
  'v1/ServiceAccount': { validate: model(ServiceAccount), type: 'V1ServiceAccount' },
  'policy/v1/PodDisruptionBudget': { validate: model(PodDisruptionBudget), type: 'V1PodDisruptionBudget' },
  'rbac.authorization.k8s.io/v1/ClusterRole': { validate: model(ClusterRole), type: 'V1ClusterRole' },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': {
    validate: model(ClusterRoleBinding),
    type: 'V1ClusterRoleBinding',
  },
  'rbac.authorization.k8s.io/v1/Role': { validate: model(Role), type: 'V1Role' },
  'rbac.authorization.k8s.io/v1/RoleBinding': { validate: model(RoleBinding), type: 'V1RoleBinding' },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': {
    validate: model(MutatingWebhookConfiguration),
    type: 'V1MutatingWebhookConfiguration',
  },
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': {
    validate: model(ValidatingWebhookConfiguration),
    type: 'V1ValidatingWebhookConfiguration',
  },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': {
    validate: model(CustomResourceDefinition),
    type: 'V1CustomResourceDefinition',
  },
};

interface Attribute {
  baseName: string;
  type: string;
}

function attributes(type: string): Attribute[] | undefined {
  const cls = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>)[type];
  return cls?.getAttributeTypeMap?.();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Paths of fields that `type` (a client-node model type expression) does not declare. */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1] !== undefined) {
    const item = array[1];
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, item, `${path}[${i}]`)) : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1] !== undefined) {
    const item = map[1];
    return isRecord(value)
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, item, `${path}.${k}`))
      : [];
  }
  const attrs = attributes(type);
  if (attrs === undefined || !isRecord(value)) return [];
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const fieldType = byName.get(k);
    const at = path === '' ? k : `${path}.${k}`;
    return fieldType === undefined ? [at] : unknownFields(v, fieldType, at);
  });
}

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const str = { type: 'string', minLength: 1 };
const issuerRef = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: str, kind: { enum: ['Issuer', 'ClusterIssuer'] }, group: str },
};
const metadata = {
  type: 'object',
  required: ['name', 'namespace'],
  properties: { name: str, namespace: str },
};
const duration = { type: 'string', pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$' };

/** The cert-manager.io/v1 fields the chart uses (from cert-manager's CRDs), unknown ones refused. */
const CERT_MANAGER: Record<string, Validator> = {
  Certificate: schemaValidator({
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'cert-manager.io/v1' },
      kind: { const: 'Certificate' },
      metadata,
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['secretName', 'issuerRef'],
        anyOf: [{ required: ['commonName'] }, { required: ['dnsNames'] }],
        properties: {
          secretName: str,
          issuerRef,
          isCA: { type: 'boolean' },
          commonName: { type: 'string', minLength: 1, maxLength: 64 },
          dnsNames: { type: 'array', minItems: 1, items: str },
          uris: { type: 'array', minItems: 1, items: str },
          duration,
          usages: {
            type: 'array',
            items: {
              enum: ['server auth', 'client auth', 'digital signature', 'key encipherment', 'cert sign'],
            },
          },
          privateKey: {
            type: 'object',
            additionalProperties: false,
            properties: {
              algorithm: { enum: ['RSA', 'ECDSA', 'Ed25519'] },
              size: { type: 'integer' },
              rotationPolicy: { enum: ['Never', 'Always'] },
            },
          },
        },
      },
    },
  }),
  Issuer: schemaValidator({
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'cert-manager.io/v1' },
      kind: { const: 'Issuer' },
      metadata,
      spec: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: {
          selfSigned: { type: 'object', additionalProperties: false },
          ca: {
            type: 'object',
            additionalProperties: false,
            required: ['secretName'],
            properties: { secretName: str },
          },
        },
      },
    },
  }),
};

function schemaValidator(schema: object): Validator {
  const check = ajv.compile(schema);
  return (obj) => {
    if (!check(obj)) {
      throw new Error((check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; '));
    }
  };
}

/** Problems of one rendered object; empty when the API server would take it on a strict apply. */
export function manifestProblems(obj: Manifest): string[] {
  const where = `${obj.kind}/${obj.metadata?.name}`;
  if (obj.apiVersion === 'cert-manager.io/v1') {
    const validate = CERT_MANAGER[obj.kind];
    if (validate === undefined) return [`${where}: no schema for cert-manager.io/v1 ${obj.kind}`];
    try {
      validate(obj);
      return [];
    } catch (e) {
      return [`${where}: ${(e as Error).message}`];
    }
  }
  const kind = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (kind === undefined) return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const problems: string[] = [];
  try {
    kind.validate(obj);
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
  for (const field of unknownFields(obj, kind.type)) problems.push(`${where}: unknown field "${field}"`);
  return problems;
}
