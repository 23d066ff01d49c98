/**
 * CustomResourceDefinitions: the served type a CRD defines (its storage
 * version, scope, names, status subresource, structural schema and CEL
 * rules) and the status the real server reports for an accepted one
 * (NamesAccepted and Established). A CRD whose rules do not compile is
 * refused with 422, as the real server refuses it.
 */
import { CelRules } from './cel-rules.ts';
import { isRecord, metaOf, type ResourceType, str, timestamp } from './resources.ts';
import { CrdSchema } from './schema.ts';
import { invalid, type Obj } from './status.ts';

const CRD_REF = {
  group: 'apiextensions.k8s.io',
  plural: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
};

/** The type `crd` serves; throws 422 Invalid when the CRD is unusable. */
export function crdType(crd: Obj): ResourceType {
  const spec = isRecord(crd.spec) ? crd.spec : {};
  const names = isRecord(spec.names) ? spec.names : {};
  const group = str(spec.group) ?? '';
  const plural = str(names.plural) ?? '';
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isRecord) : [];
  const index = Math.max(
    0,
    versions.findIndex((v) => v.storage === true),
  );
  const served = versions[index];
  const name = str(metaOf(crd).name) ?? '';
  if (served === undefined || group === '' || plural === '') {
    throw invalid(CRD_REF, name, [
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec' },
    ]);
  }
  const subresources = isRecord(served.subresources) ? served.subresources : {};
  const openAPIV3Schema =
    isRecord(served.schema) && isRecord(served.schema.openAPIV3Schema)
      ? served.schema.openAPIV3Schema
      : undefined;
  let rules: CelRules | undefined;
  if (openAPIV3Schema !== undefined) {
    const compiled = CelRules.compile(openAPIV3Schema, `spec.versions[${index}].schema.openAPIV3Schema`);
    if (compiled.errors.length > 0) throw invalid(CRD_REF, name, compiled.errors);
    rules = compiled.rules;
  }
  return {
    group,
    version: str(served.name) ?? 'v1',
    plural,
    singular: str(names.singular) ?? plural,
    kind: str(names.kind) ?? plural,
    namespaced: spec.scope !== 'Cluster',
    shortNames: Array.isArray(names.shortNames)
      ? names.shortNames.filter((n): n is string => typeof n === 'string')
      : [],
    statusSubresource: isRecord(subresources.status),
    generation: true,
    custom: true,
    returnsDeleted: true,
    virtual: false,
    ...(openAPIV3Schema === undefined ? {} : { schema: new CrdSchema(openAPIV3Schema) }),
    ...(rules === undefined ? {} : { rules }),
  };
}

/** The status of an accepted CRD serving `type`. */
export function crdStatus(crd: Obj, type: ResourceType): Obj {
  const spec = isRecord(crd.spec) ? crd.spec : {};
  const now = timestamp();
  return {
    acceptedNames: structuredClone(isRecord(spec.names) ? spec.names : {}),
    conditions: [
      {
        type: 'NamesAccepted',
        status: 'True',
        lastTransitionTime: now,
        reason: 'NoConflicts',
        message: 'no conflicts found',
      },
      {
        type: 'Established',
        status: 'True',
        lastTransitionTime: now,
        reason: 'InitialNamesAccepted',
        message: 'the initial names have been accepted',
      },
    ],
    storedVersions: [type.version],
  };
}

/** The `group/plural` a CRD object names. */
export function crdTypeName(crd: Obj): { group: string; plural: string } {
  const spec = isRecord(crd.spec) ? crd.spec : {};
  const names = isRecord(spec.names) ? spec.names : {};
  return { group: str(spec.group) ?? '', plural: str(names.plural) ?? '' };
}
