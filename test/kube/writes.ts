/**
 * Create, update, patch and delete as the generic registry store runs them:
 * type checks, names and generateName, admission (pruning, defaulting,
 * schema validation and CEL rules for custom resources), optimistic
 * concurrency, the status subresource, generation semantics, finalizers and
 * graceful deletion (finalizers.ts), and the side effects the control plane
 * adds (controllers.ts, CRD installation). Every write goes through the
 * store, which versions it and tells the watches.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { blocksRules, RULES_NOT_CHECKED } from './cel-rules.ts';
import { admitCreate, Controllers, defaultPod } from './controllers.ts';
import { crdStatus, crdType, crdTypeName } from './crds.ts';
import { completesDeletion, guardTerminating, isTerminating, markDeleting } from './finalizers.ts';
import { applyJsonPatch, applyMergePatch } from './patch.ts';
import {
  apiVersionOf,
  finalizersOf,
  isRecord,
  labelsOf,
  metaOf,
  type ResourceType,
  sameJson,
  specPart,
  str,
  timestamp,
} from './resources.ts';
import { matches, type Requirement } from './selector.ts';
import {
  alreadyExists,
  badRequest,
  conflict,
  failure,
  invalid,
  MODIFIED,
  notFound,
  type Obj,
  type StatusCause,
  statusBody,
} from './status.ts';
import type { Store } from './store.ts';

/** How a write treats unknown fields (`fieldValidation`), and where its warnings go. */
export interface WriteOptions {
  fieldValidation: string;
  warnings: string[];
}

const SILENT: WriteOptions = { fieldValidation: 'Strict', warnings: [] };

/** Called when a CRD's type is removed, so its watches can end. */
export type TypeRemoved = (type: ResourceType) => void;

/** The write paths of one server. */
export class Writer {
  readonly #store: Store;
  readonly #typeRemoved: TypeRemoved;
  readonly controllers: Controllers;

  constructor(store: Store, typeRemoved: TypeRemoved) {
    this.#store = store;
    this.#typeRemoved = typeRemoved;
    this.controllers = new Controllers(store, {
      create: (type, namespace, body) =>
        this.create(type, namespace, body, { fieldValidation: 'Strict', warnings: [] }),
      delete: (type, namespace, name) => this.delete(type, namespace, name, undefined),
    });
  }

  /** POST: creates `body` (201 with the stored object). */
  create(type: ResourceType, namespace: string | undefined, body: Obj, options: WriteOptions = SILENT): Obj {
    this.#checkTypeMeta(type, body);
    const object = structuredClone(body);
    const meta = metaOf(object);
    const name = this.#nameOf(type, meta);
    meta.name = name;
    if (type.namespaced) this.#checkNamespace(type, namespace, meta, object);
    if (this.#store.peek(type, namespace, name) !== undefined) throw alreadyExists(type, name);
    if (type.statusSubresource && type.custom) delete object.status;
    this.#admit(type, name, object, undefined, options);
    let installs: ResourceType | undefined;
    if (type.plural === 'customresourcedefinitions') {
      installs = crdType(object);
      object.status = crdStatus(object, installs);
    }
    if (type.group === '' && type.plural === 'namespaces') {
      object.spec = { finalizers: ['kubernetes'] };
      object.status = { phase: 'Active' };
    }
    const stored: Obj = { apiVersion: apiVersionOf(type), kind: type.kind, ...object };
    const storedMeta = metaOf(stored);
    storedMeta.name = name;
    if (type.namespaced) storedMeta.namespace = namespace;
    else delete storedMeta.namespace;
    storedMeta.uid = randomUUID();
    if (type.generation) storedMeta.generation = 1;
    else delete storedMeta.generation;
    storedMeta.creationTimestamp = timestamp();
    delete storedMeta.deletionTimestamp;
    delete storedMeta.deletionGracePeriodSeconds;
    if (type.group === '' && type.plural === 'namespaces') {
      storedMeta.labels = { ...labelsOf(stored), 'kubernetes.io/metadata.name': name };
    }
    if (installs !== undefined) this.#store.addType(installs);
    const created = this.#store.write(type, 'ADDED', stored);
    if (type.group === '' && type.plural === 'namespaces') this.controllers.ensureDefaultServiceAccount(name);
    return created;
  }

  /** PUT, or the result of a PATCH: replaces the object (or its status). */
  update(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    subresource: string | undefined,
    body: Obj,
    options: WriteOptions,
  ): Obj {
    this.#checkTypeMeta(type, body);
    const current = this.#store.peek(type, namespace, name);
    if (current === undefined) throw notFound(type, name);
    const bodyName = str(metaOf(body).name);
    if (bodyName !== undefined && bodyName !== name) {
      throw badRequest(`the name of the object (${bodyName}) does not match the name on the URL (${name})`);
    }
    const requestedRv = str(metaOf(body).resourceVersion);
    const currentMeta = metaOf(current);
    if (requestedRv !== undefined && requestedRv !== '' && requestedRv !== currentMeta.resourceVersion) {
      throw conflict(type, name, MODIFIED);
    }
    const next = this.#nextState(type, current, subresource, body);
    guardTerminating(type, name, current, next);
    this.#admit(type, name, next, current, options);
    // An updated CRD serves its new schema and rules from then on, as the real one does.
    const reinstalls =
      type.plural === 'customresourcedefinitions' && subresource !== 'status' ? crdType(next) : undefined;
    this.#keepSystemFields(type, current, next, subresource);
    if (completesDeletion(current, next)) {
      this.#remove(type, current);
      return next;
    }
    if (sameJson(next, current)) return structuredClone(current); // a no-op write keeps the version
    if (reinstalls !== undefined) this.#store.addType(reinstalls);
    return this.#store.write(
      type,
      'MODIFIED',
      { apiVersion: next.apiVersion, kind: next.kind, ...next },
      current,
    );
  }

  /** DELETE: removes the object, or marks it as being deleted while it has finalizers. */
  delete(type: ResourceType, namespace: string | undefined, name: string, options: unknown): Obj {
    const current = this.#store.peek(type, namespace, name);
    if (current === undefined) throw notFound(type, name);
    this.#checkPreconditions(type, name, current, options);
    const { result, removed } = this.#deleteObject(type, current);
    if (!removed || type.returnsDeleted) return result;
    const details = {
      name,
      ...(type.group === '' ? {} : { group: type.group }),
      kind: type.plural,
      uid: String(metaOf(current).uid),
    };
    return statusBody('Success', 200, undefined, undefined, details) as unknown as Obj;
  }

  /** DELETE on a collection: deletes every object the selector matches; answers the list of them. */
  deleteCollection(type: ResourceType, namespace: string | undefined, selector: Requirement[]): Obj {
    const items: Obj[] = [];
    for (const [, object] of this.#store.snapshot(type, namespace, this.#store.rv) ?? []) {
      if (!matches(selector, labelsOf(object))) continue;
      const current = this.#store.peek(type, str(metaOf(object).namespace), str(metaOf(object).name) ?? '');
      if (current !== undefined) items.push(this.#deleteObject(type, current).result);
    }
    return {
      apiVersion: apiVersionOf(type),
      kind: `${type.kind}List`,
      metadata: { resourceVersion: String(this.#store.rv) },
      items,
    };
  }

  /** Applies a PATCH body to `current` by its media type; answers the patched object. */
  patch(type: ResourceType, current: Obj, patch: unknown, contentType: string): unknown {
    const mediaType = contentType.split(';')[0]?.trim() ?? '';
    if (mediaType === 'application/merge-patch+json') return applyMergePatch(current, patch);
    if (mediaType === 'application/json-patch+json') {
      try {
        return applyJsonPatch(current, patch);
      } catch (error) {
        throw failure(
          422,
          'Invalid',
          `the server rejected our request due to an error in our request: ${String(error)}`,
        );
      }
    }
    if (mediaType === 'application/strategic-merge-patch+json' && !type.custom) {
      // Approximation: strategic merge treated as a merge patch (no list merge keys).
      return applyMergePatch(current, patch);
    }
    throw failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${type.custom ? '' : ', application/strategic-merge-patch+json'}`,
    );
  }

  /** Copies what a write cannot change from `current` into `next`, and counts the generation. */
  #keepSystemFields(type: ResourceType, current: Obj, next: Obj, subresource: string | undefined): void {
    const currentMeta = metaOf(current);
    const finalMeta = metaOf(next);
    for (const field of ['uid', 'creationTimestamp', 'name', 'namespace']) {
      if (currentMeta[field] === undefined) delete finalMeta[field];
      else finalMeta[field] = currentMeta[field];
    }
    if (type.generation) {
      const bump = subresource !== 'status' && !sameJson(specPart(next), specPart(current));
      const generation = typeof currentMeta.generation === 'number' ? currentMeta.generation : 1;
      finalMeta.generation = bump ? generation + 1 : generation;
    } else {
      delete finalMeta.generation;
    }
    next.apiVersion = apiVersionOf(type);
    next.kind = type.kind;
    finalMeta.resourceVersion = currentMeta.resourceVersion;
  }

  #nextState(type: ResourceType, current: Obj, subresource: string | undefined, body: Obj): Obj {
    if (subresource === 'status') {
      // Only status changes through the subresource; metadata stays as stored.
      const next: Obj = { ...structuredClone(current), status: structuredClone(body.status) };
      if (body.status === undefined) delete next.status;
      next.metadata = structuredClone(metaOf(current));
      return next;
    }
    const next = structuredClone(body);
    if (type.statusSubresource && current.status !== undefined) next.status = structuredClone(current.status);
    else if (type.statusSubresource) delete next.status;
    return next;
  }

  /**
   * Deletes `current`: a namespace starts terminating, an object with
   * finalizers is marked (once), anything else is removed.
   */
  #deleteObject(type: ResourceType, current: Obj): { result: Obj; removed: boolean } {
    if (type.group === '' && type.plural === 'namespaces') {
      return { result: this.#terminateNamespace(current), removed: false };
    }
    if (finalizersOf(current).length > 0) {
      if (isTerminating(current)) return { result: structuredClone(current), removed: false };
      const marked = structuredClone(current);
      markDeleting(marked);
      return { result: this.#store.write(type, 'MODIFIED', marked, current), removed: false };
    }
    return { result: this.#remove(type, current), removed: true };
  }

  #remove(type: ResourceType, object: Obj): Obj {
    const gone = this.#store.remove(type, object);
    if (type.plural === 'customresourcedefinitions') this.#uninstallCrd(object);
    this.controllers.removed(type, object);
    return gone;
  }

  #terminateNamespace(current: Obj): Obj {
    if (isTerminating(current)) return structuredClone(current);
    const next = structuredClone(current);
    metaOf(next).deletionTimestamp = timestamp();
    next.status = { ...(isRecord(next.status) ? next.status : {}), phase: 'Terminating' };
    const written = this.#store.write(this.#store.type('', 'namespaces'), 'MODIFIED', next, current);
    this.controllers.finalizeNamespace(str(metaOf(current).name) ?? '');
    return written;
  }

  #uninstallCrd(crd: Obj): void {
    const { group, plural } = crdTypeName(crd);
    const type = this.#store.findType(group, plural);
    if (type === undefined || !type.custom) return;
    for (const [, object] of this.#store.objectsOf(type)) this.#store.remove(type, object);
    this.#typeRemoved(type);
    this.#store.removeType(type);
  }

  #checkPreconditions(type: ResourceType, name: string, current: Obj, options: unknown): void {
    const preconditions = isRecord(options) && isRecord(options.preconditions) ? options.preconditions : {};
    const meta = metaOf(current);
    const rv = str(preconditions.resourceVersion);
    if (rv !== undefined && rv !== meta.resourceVersion) {
      throw conflict(
        type,
        name,
        `the ResourceVersion in the precondition (${rv}) does not match the ResourceVersion in record (${String(meta.resourceVersion)}). The object might have been modified`,
      );
    }
    const uid = str(preconditions.uid);
    if (uid !== undefined && uid !== meta.uid) {
      throw conflict(
        type,
        name,
        `the UID in the precondition (${uid}) does not match the UID in record (${String(meta.uid)}). The object might have been deleted and then recreated`,
      );
    }
  }

  #nameOf(type: ResourceType, meta: Obj): string {
    let name = str(meta.name);
    const generateName = str(meta.generateName);
    if ((name === undefined || name === '') && generateName !== undefined) {
      name = `${generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
    }
    if (name === undefined || name === '') {
      throw invalid(type, '', [
        {
          reason: 'FieldValueRequired',
          message: 'Required value: name or generateName is required',
          field: 'metadata.name',
        },
      ]);
    }
    return name;
  }

  #checkNamespace(type: ResourceType, namespace: string | undefined, meta: Obj, object: Obj): void {
    const bodyNamespace = str(meta.namespace);
    if (bodyNamespace !== undefined && bodyNamespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (namespace === undefined) return;
    const namespaces = this.#store.type('', 'namespaces');
    if (this.#store.peek(namespaces, undefined, namespace) === undefined)
      throw notFound(namespaces, namespace);
    if (type.group === '' && type.plural === 'pods') defaultPod(object);
    admitCreate(this.#store, type, namespace, object);
  }

  /** Prunes, defaults and validates a custom resource (schema, then CEL rules); throws the server's errors. */
  #admit(type: ResourceType, name: string, object: Obj, old: Obj | undefined, options: WriteOptions): void {
    const schema = type.schema;
    const causes: StatusCause[] = [];
    if (schema !== undefined) {
      const unknown = schema.prune(object);
      if (unknown.length > 0) {
        if (options.fieldValidation === 'Strict') {
          const fields = unknown.map((u) => `unknown field "${u}"`).join(', ');
          throw badRequest(
            `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${fields}`,
          );
        }
        if (options.fieldValidation === 'Warn')
          for (const u of unknown) options.warnings.push(`unknown field "${u}"`);
      }
      causes.push(...schema.validate(object));
    }
    if (type.rules !== undefined) {
      if (blocksRules(causes)) causes.push(RULES_NOT_CHECKED);
      else {
        const outcome = type.rules.validate(object, old);
        causes.push(...outcome.causes);
        options.warnings.push(...outcome.warnings);
      }
    }
    if (causes.length > 0) throw invalid(type, name, causes);
  }

  #checkTypeMeta(type: ResourceType, body: Obj): void {
    const apiVersion = str(body.apiVersion);
    const kind = str(body.kind);
    if (
      (apiVersion !== undefined && apiVersion !== apiVersionOf(type)) ||
      (kind !== undefined && kind !== type.kind)
    ) {
      throw badRequest(
        `the API version in the data (${apiVersion ?? ''}) does not match the expected API version (${apiVersionOf(type)})`,
      );
    }
  }
}
