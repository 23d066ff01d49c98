/**
 * Graceful deletion with finalizers, as the generic registry store does it:
 *
 * - DELETE of an object with `metadata.finalizers` only marks it: it gets
 *   `deletionTimestamp` (now) and `deletionGracePeriodSeconds: 0`, its
 *   `generation` (when it keeps one) goes up by one, the write is a MODIFIED
 *   event and the response is the object with 200. A second DELETE changes
 *   nothing and answers the object again.
 * - An update can never change or remove those marks (BeforeUpdate keeps
 *   them), may not add finalizers (422 `metadata.finalizers: Forbidden: no
 *   new finalizers can be added if the object is being deleted, found new
 *   finalizers []string{…}`), and may change anything else: the spec stays
 *   writable and still bumps `generation`.
 * - The update that leaves a terminating object with no finalizers deletes it
 *   (ShouldDeleteDuringUpdate): DELETED goes out with the last stored object,
 *   and the response is the object as written, with 200.
 */
import { finalizersOf, metaOf, timestamp } from './resources.ts';
import { invalid, type Obj, type ResourceRef } from './status.ts';

/** Whether `object` is being deleted. */
export function isTerminating(object: Obj): boolean {
  return typeof metaOf(object).deletionTimestamp === 'string';
}

/** Go's `%#v` of a `[]string`: `[]string{"a", "b"}`. */
function goStringSlice(values: string[]): string {
  return `[]string{${values.map((v) => JSON.stringify(v)).join(', ')}}`;
}

/** Marks `object` (in place) as being deleted at `now`, as markAsDeleting does. */
export function markDeleting(object: Obj, now: Date = new Date()): void {
  const meta = metaOf(object);
  if (typeof meta.generation === 'number' && meta.generation > 0) meta.generation += 1;
  meta.deletionTimestamp = timestamp(now);
  meta.deletionGracePeriodSeconds = 0;
}

/**
 * Applies the update rules for a write of `next` over `current` (in place on
 * `next`): keeps the deletion marks and refuses new finalizers on a
 * terminating object.
 */
export function guardTerminating(ref: ResourceRef, name: string, current: Obj, next: Obj): void {
  if (!isTerminating(current)) return;
  const old = metaOf(current);
  const meta = metaOf(next);
  meta.deletionTimestamp = old.deletionTimestamp;
  if (meta.deletionGracePeriodSeconds === undefined || meta.deletionGracePeriodSeconds === null) {
    meta.deletionGracePeriodSeconds = old.deletionGracePeriodSeconds;
  }
  const before = new Set(finalizersOf(current));
  const added = [...new Set(finalizersOf(next).filter((f) => !before.has(f)))].sort();
  if (added.length > 0) {
    const message = `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${goStringSlice(added)}`;
    throw invalid(ref, name, [{ reason: 'FieldValueForbidden', message, field: 'metadata.finalizers' }]);
  }
}

/** Whether writing `next` over `current` completes a deletion (no finalizers left). */
export function completesDeletion(current: Obj, next: Obj): boolean {
  if (!isTerminating(current) || finalizersOf(next).length > 0) return false;
  const grace = metaOf(current).deletionGracePeriodSeconds;
  return grace === undefined || grace === null || grace === 0;
}
