/**
 * What the real control plane does around writes, beyond the registry:
 *
 * - Pod defaulting and the ServiceAccount admission plugin: a pod's
 *   `spec.serviceAccountName` (and the deprecated `spec.serviceAccount`)
 *   default to `default`, and a pod whose service account does not exist is
 *   refused with 403 (`service account NS/SA was not found, retry after the
 *   service account is created`).
 * - NamespaceLifecycle admission: nothing new may be created in a namespace
 *   that is being terminated (403 with a NamespaceTerminating cause).
 * - The ServiceAccount controller: every active namespace has a `default`
 *   ServiceAccount, recreated (with a new uid) when deleted.
 * - The namespace controller: a deleted namespace turns Terminating, its
 *   content is deleted (finalizers honoured), then the namespace goes.
 */
import { isRecord, metaOf, type ResourceType, str } from './resources.ts';
import { forbidden, type Obj } from './status.ts';
import type { Store } from './store.ts';

/** The writes the controllers make, as any client would. */
export interface Writes {
  create(type: ResourceType, namespace: string | undefined, body: Obj): Obj;
  delete(type: ResourceType, namespace: string | undefined, name: string): Obj;
}

const DEFAULT_SA = 'default';
/** How often the namespace controller looks again at content still held by finalizers. */
const NAMESPACE_RETRY_MS = 20;

/** Defaults a pod being created (in place). */
export function defaultPod(pod: Obj): void {
  const spec = isRecord(pod.spec) ? pod.spec : {};
  const name = str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? DEFAULT_SA;
  pod.spec = { ...spec, serviceAccountName: name, serviceAccount: name };
}

/** The admission checks of a create in `namespace`; throws the real 403s. */
export function admitCreate(store: Store, type: ResourceType, namespace: string, object: Obj): void {
  const name = str(metaOf(object).name) ?? '';
  const ns = store.peek(store.type('', 'namespaces'), undefined, namespace);
  if (ns !== undefined && typeof metaOf(ns).deletionTimestamp === 'string') {
    throw forbidden(
      type,
      name,
      `unable to create new content in namespace ${namespace} because it is being terminated`,
      [
        {
          reason: 'NamespaceTerminating',
          message: `namespace ${namespace} is being terminated`,
          field: 'metadata.namespace',
        },
      ],
    );
  }
  if (type.group === '' && type.plural === 'pods') {
    const account = str(isRecord(object.spec) ? object.spec.serviceAccountName : undefined) ?? DEFAULT_SA;
    if (store.peek(store.type('', 'serviceaccounts'), namespace, account) === undefined) {
      throw forbidden(
        type,
        name,
        `service account ${namespace}/${account} was not found, retry after the service account is created`,
      );
    }
  }
}

/** The ServiceAccount and namespace controllers of one server. */
export class Controllers {
  readonly #store: Store;
  readonly #writes: Writes;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(store: Store, writes: Writes) {
    this.#store = store;
    this.#writes = writes;
  }

  /** Creates the `default` ServiceAccount of an active `namespace` when it is missing. */
  ensureDefaultServiceAccount(namespace: string): void {
    const ns = this.#store.peek(this.#store.type('', 'namespaces'), undefined, namespace);
    if (ns === undefined || typeof metaOf(ns).deletionTimestamp === 'string') return;
    const accounts = this.#store.type('', 'serviceaccounts');
    if (this.#store.peek(accounts, namespace, DEFAULT_SA) !== undefined) return;
    this.#writes.create(accounts, namespace, { metadata: { name: DEFAULT_SA } });
  }

  /** Reacts to the removal of `object` of `type`. */
  removed(type: ResourceType, object: Obj): void {
    if (type.group === '' && type.plural === 'serviceaccounts' && metaOf(object).name === DEFAULT_SA) {
      this.ensureDefaultServiceAccount(str(metaOf(object).namespace) ?? '');
    }
  }

  /** Deletes the content of terminating namespace `name`, then the namespace itself. */
  finalizeNamespace(name: string): void {
    this.#later(() => this.#finalize(name), 0);
  }

  /** Stops pending controller work. */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #finalize(name: string): void {
    const namespaces = this.#store.type('', 'namespaces');
    const ns = this.#store.peek(namespaces, undefined, name);
    if (ns === undefined) return;
    const content = this.#store.objectsInNamespace(name);
    for (const [type, object] of content) {
      if (typeof metaOf(object).deletionTimestamp !== 'string') {
        this.#writes.delete(type, name, str(metaOf(object).name) ?? '');
      }
    }
    if (this.#store.objectsInNamespace(name).length > 0) {
      this.#later(() => this.#finalize(name), NAMESPACE_RETRY_MS);
      return;
    }
    this.#store.remove(namespaces, ns);
  }

  #later(work: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      work();
    }, ms);
    this.#timers.add(timer);
  }
}
