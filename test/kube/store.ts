/**
 * The server's storage, standing in for etcd: the objects by key, one global
 * monotonically increasing resourceVersion that orders every write, and the
 * last `historyLimit` change events. The history feeds watches and lets a
 * list be served from a past resourceVersion (a consistent snapshot, as
 * etcd serves paged lists); versions older than the history are compacted.
 */
import { BUILTIN, canonical, metaOf, objectKey, type ResourceType, str, typeKey } from './resources.ts';
import { notFound, type Obj } from './status.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One recorded change. `previous` is the object before a MODIFIED or DELETED. */
export interface HistoryEvent {
  rv: number;
  key: string;
  typeKey: string;
  type: EventType;
  object: Obj;
  previous: Obj | undefined;
}

/** Objects, versions and history. */
export class Store {
  readonly #types = new Map<string, ResourceType>();
  readonly #objects = new Map<string, Obj>();
  readonly #history: HistoryEvent[] = [];
  readonly #listeners = new Set<(event: HistoryEvent) => void>();
  readonly #historyLimit: number;
  #rv = 0;
  #compacted = 0;

  /** Keeps `historyLimit` events (at least 1). */
  constructor(historyLimit: number) {
    this.#historyLimit = Math.max(1, historyLimit);
    for (const type of BUILTIN) this.#types.set(typeKey(type), type);
  }

  /** The latest resourceVersion. */
  get rv(): number {
    return this.#rv;
  }

  /** The newest version no longer in the history: lists and watches from before it get 410. */
  get compacted(): number {
    return this.#compacted;
  }

  /** The events after `rv`, oldest first. */
  eventsAfter(rv: number): HistoryEvent[] {
    return this.#history.filter((event) => event.rv > rv);
  }

  /** Calls `listener` for every event recorded from now on; returns the unsubscribe function. */
  subscribe(listener: (event: HistoryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // --- types ----------------------------------------------------------------

  types(): ResourceType[] {
    return [...this.#types.values()];
  }

  /** The type served at `group/plural`, if any. */
  findType(group: string, plural: string): ResourceType | undefined {
    return this.#types.get(`${group}/${plural}`);
  }

  /** The type served at `group/plural`; throws when there is none. */
  type(group: string, plural: string): ResourceType {
    const type = this.findType(group, plural);
    if (type === undefined) throw new Error(`no type ${group}/${plural}`);
    return type;
  }

  addType(type: ResourceType): void {
    this.#types.set(typeKey(type), type);
  }

  removeType(type: ResourceType): void {
    this.#types.delete(typeKey(type));
  }

  // --- objects --------------------------------------------------------------

  /** The stored object (not a copy), if any. */
  peek(type: ResourceType, namespace: string | undefined, name: string): Obj | undefined {
    return this.#objects.get(objectKey(type, namespace, name));
  }

  /** A copy of the stored object; 404 NotFound when there is none. */
  get(type: ResourceType, namespace: string | undefined, name: string): Obj {
    const object = this.peek(type, namespace, name);
    if (object === undefined) throw notFound(type, name);
    return structuredClone(object);
  }

  /** The live objects of `type`, optionally in `namespace` (not copies). */
  objectsOf(type: ResourceType, namespace?: string): Array<[string, Obj]> {
    const prefix = `${typeKey(type)}/${namespace === undefined ? '' : `${namespace}/`}`;
    return [...this.#objects].filter(([key]) => key.startsWith(prefix));
  }

  /** Every namespaced object in `namespace`, with its type. */
  objectsInNamespace(namespace: string): Array<[ResourceType, Obj]> {
    const out: Array<[ResourceType, Obj]> = [];
    for (const type of this.#types.values()) {
      if (!type.namespaced) continue;
      for (const [, object] of this.objectsOf(type, namespace)) out.push([type, object]);
    }
    return out;
  }

  /**
   * Writes `object` at the next resourceVersion (stamped into it) and records
   * the event; `previous` is the stored object it replaces, if any.
   */
  write(type: ResourceType, eventType: 'ADDED' | 'MODIFIED', object: Obj, previous?: Obj): Obj {
    this.#rv++;
    metaOf(object).resourceVersion = String(this.#rv);
    const stored = canonical(type, object);
    const key = this.#keyOf(type, stored);
    this.#objects.set(key, stored);
    this.#record({ rv: this.#rv, key, typeKey: typeKey(type), type: eventType, object: stored, previous });
    return structuredClone(stored);
  }

  /** Removes the stored `object`; returns it as the DELETED event carries it (at the new version). */
  remove(type: ResourceType, object: Obj): Obj {
    const key = this.#keyOf(type, object);
    this.#objects.delete(key);
    this.#rv++;
    const gone = structuredClone(object);
    metaOf(gone).resourceVersion = String(this.#rv);
    this.#record({
      rv: this.#rv,
      key,
      typeKey: typeKey(type),
      type: 'DELETED',
      object: gone,
      previous: object,
    });
    return structuredClone(gone);
  }

  /**
   * The objects of `type` (in `namespace`) as they were at `rv`, sorted by
   * key; undefined when `rv` has been compacted out of the history.
   */
  snapshot(type: ResourceType, namespace: string | undefined, rv: number): Array<[string, Obj]> | undefined {
    if (rv < this.#compacted) return undefined;
    const state = new Map(this.objectsOf(type, namespace));
    const prefix = `${typeKey(type)}/${namespace === undefined ? '' : `${namespace}/`}`;
    for (const event of [...this.#history].reverse()) {
      if (event.rv <= rv) break;
      if (!event.key.startsWith(prefix)) continue;
      if (event.type === 'ADDED') state.delete(event.key);
      else if (event.previous !== undefined) state.set(event.key, event.previous);
    }
    return [...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  #keyOf(type: ResourceType, object: Obj): string {
    const meta = metaOf(object);
    return objectKey(type, str(meta.namespace), str(meta.name) ?? '');
  }

  #record(event: HistoryEvent): void {
    // The history keeps its own copies: callers go on to return and mutate theirs.
    const kept: HistoryEvent = {
      ...event,
      object: structuredClone(event.object),
      previous: event.previous === undefined ? undefined : structuredClone(event.previous),
    };
    this.#history.push(kept);
    while (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.shift();
      if (dropped !== undefined) this.#compacted = dropped.rv;
    }
    for (const listener of this.#listeners) listener(kept);
  }
}
