/**
 * Watch streams, as the watch cache serves them: a 200 chunked response of
 * one JSON event per line, starting with the current objects as ADDED (no
 * resourceVersion, or 0) or with the history after the given version; a
 * version compacted out of history gets a single `ERROR` event carrying a
 * 410 Expired Status. A label selector turns changes that cross it into
 * ADDED/DELETED. BOOKMARKs go out on a timer (and on demand) to watches that
 * allow them, and `timeoutSeconds` ends a stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bookmarkObject, labelsOf, metaOf, type ResourceType, str, typeKey } from './resources.ts';
import { matches, type Requirement } from './selector.ts';
import { badRequest, expired, type Obj } from './status.ts';
import type { HistoryEvent, Store } from './store.ts';

interface Watcher {
  type: ResourceType;
  namespace: string | undefined;
  selector: Requirement[];
  res: ServerResponse;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

/** What a watch request asks for. */
export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  selector: Requirement[];
  query: URLSearchParams;
}

/** The open watch streams of one server. */
export class WatchHub {
  readonly #store: Store;
  readonly #bookmarkIntervalMs: number;
  readonly #watchers = new Set<Watcher>();
  readonly #held: Array<() => void> = [];
  #holding = false;

  constructor(store: Store, bookmarkIntervalMs: number) {
    this.#store = store;
    this.#bookmarkIntervalMs = bookmarkIntervalMs;
    store.subscribe((event) => {
      for (const watcher of this.#watchers) this.#deliver(watcher, event);
    });
  }

  /** Number of open watch streams. */
  get count(): number {
    return this.#watchers.size;
  }

  /** Ends every stream; with `hold`, new watches wait until {@link release}. */
  closeAll(hold: boolean): void {
    if (hold) this.#holding = true;
    for (const watcher of [...this.#watchers]) this.#end(watcher);
  }

  /** Serves the watches held since `closeAll(true)`. */
  release(): void {
    this.#holding = false;
    for (const resume of this.#held.splice(0)) resume();
  }

  /** Sends a BOOKMARK now to every watch that allows bookmarks. */
  bookmarkAll(): void {
    for (const watcher of this.#watchers) if (watcher.bookmarks) this.#bookmark(watcher);
  }

  /** Ends the streams of `type` (its CRD was deleted). */
  closeType(type: ResourceType): void {
    for (const watcher of [...this.#watchers])
      if (typeKey(watcher.type) === typeKey(type)) this.#end(watcher);
  }

  /** Starts (or holds) a watch stream answering `req` on `res`. */
  watch(req: IncomingMessage, res: ServerResponse, request: WatchRequest): void {
    const start = (): void => this.#start(res, request);
    if (!this.#holding) {
      start();
      return;
    }
    this.#held.push(start);
    req.on('close', () => {
      const i = this.#held.indexOf(start);
      if (i >= 0) this.#held.splice(i, 1);
    });
  }

  #start(res: ServerResponse, request: WatchRequest): void {
    if (res.destroyed) return;
    const { type, namespace, selector, query } = request;
    res.writeHead(200, {
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      'cache-control': 'no-cache, private',
    });
    res.flushHeaders();
    const watcher: Watcher = {
      type,
      namespace,
      selector,
      res,
      bookmarks: query.get('allowWatchBookmarks') === 'true',
      timers: [],
    };
    const rvParam = query.get('resourceVersion') ?? '';
    if (rvParam === '' || rvParam === '0') {
      for (const [, object] of this.#store.snapshot(type, namespace, this.#store.rv) ?? []) {
        if (matches(selector, labelsOf(object))) this.#write(watcher, 'ADDED', object);
      }
    } else {
      const rv = Number(rvParam);
      if (!Number.isInteger(rv) || rv < 0) {
        this.#write(
          watcher,
          'ERROR',
          badRequest(`invalid resource version: ${rvParam}`).body as unknown as Obj,
        );
        res.end();
        return;
      }
      if (rv < this.#store.compacted) {
        // Like the watch cache: a 200 stream carrying one ERROR event, then the end.
        this.#write(watcher, 'ERROR', expired(rv, this.#store.compacted + 1).body as unknown as Obj);
        res.end();
        return;
      }
      for (const event of this.#store.eventsAfter(rv)) this.#deliver(watcher, event);
    }
    this.#watchers.add(watcher);
    this.#arm(watcher, Number(query.get('timeoutSeconds') ?? '0'));
    res.on('close', () => {
      for (const timer of watcher.timers) clearTimeout(timer);
      this.#watchers.delete(watcher);
    });
  }

  #arm(watcher: Watcher, timeoutSeconds: number): void {
    if (watcher.bookmarks) {
      const tick = (): void => {
        this.#bookmark(watcher);
        watcher.timers[0] = setTimeout(tick, this.#bookmarkIntervalMs);
      };
      watcher.timers[0] = setTimeout(tick, this.#bookmarkIntervalMs);
    }
    if (timeoutSeconds > 0) watcher.timers[1] = setTimeout(() => this.#end(watcher), timeoutSeconds * 1000);
  }

  #write(watcher: Watcher, type: string, object: Obj): void {
    watcher.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  #bookmark(watcher: Watcher): void {
    this.#write(watcher, 'BOOKMARK', bookmarkObject(watcher.type, String(this.#store.rv)));
  }

  #deliver(watcher: Watcher, event: HistoryEvent): void {
    if (event.typeKey !== typeKey(watcher.type)) return;
    const namespace = str(metaOf(event.object).namespace);
    if (watcher.namespace !== undefined && namespace !== watcher.namespace) return;
    const now = matches(watcher.selector, labelsOf(event.object));
    const before = event.previous !== undefined && matches(watcher.selector, labelsOf(event.previous));
    if (event.type === 'MODIFIED') {
      if (now && before) this.#write(watcher, 'MODIFIED', event.object);
      else if (now) this.#write(watcher, 'ADDED', event.object);
      else if (before) this.#write(watcher, 'DELETED', event.object);
    } else if (event.type === 'DELETED' ? before : now) {
      this.#write(watcher, event.type, event.object);
    }
  }

  #end(watcher: Watcher): void {
    for (const timer of watcher.timers) clearTimeout(timer);
    this.#watchers.delete(watcher);
    watcher.res.end();
  }
}
