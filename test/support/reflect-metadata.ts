/**
 * The few Reflect metadata functions @peculiar/x509 needs (through tsyringe)
 * when no `reflect-metadata` package is installed: define, read own and
 * inherited metadata, and the `Reflect.metadata` decorator factory TypeScript
 * emits. Installed only where missing; import it before @peculiar/x509.
 */
type Target = object;
type MetadataReflect = typeof Reflect & {
  getMetadata?: (key: unknown, target: Target, property?: PropertyKey) => unknown;
  getOwnMetadata?: (key: unknown, target: Target, property?: PropertyKey) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: Target, property?: PropertyKey) => void;
  hasMetadata?: (key: unknown, target: Target, property?: PropertyKey) => boolean;
  metadata?: (key: unknown, value: unknown) => (target: Target, property?: PropertyKey) => void;
};

const store = new WeakMap<Target, Map<PropertyKey | undefined, Map<unknown, unknown>>>();

function own(target: Target, property: PropertyKey | undefined, create: boolean) {
  let byProperty = store.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let entries = byProperty.get(property);
  if (!entries && create) {
    entries = new Map();
    byProperty.set(property, entries);
  }
  return entries;
}

function lookup(key: unknown, target: Target, property?: PropertyKey): { found: boolean; value: unknown } {
  for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
    const entries = own(t, property, false);
    if (entries?.has(key)) return { found: true, value: entries.get(key) };
  }
  return { found: false, value: undefined };
}

const R = Reflect as MetadataReflect;
if (typeof R.getMetadata !== 'function') {
  R.defineMetadata = (key, value, target, property) => {
    own(target, property, true)?.set(key, value);
  };
  R.getOwnMetadata = (key, target, property) => own(target, property, false)?.get(key);
  R.getMetadata = (key, target, property) => lookup(key, target, property).value;
  R.hasMetadata = (key, target, property) => lookup(key, target, property).found;
  R.metadata = (key, value) => (target, property) => R.defineMetadata?.(key, value, target, property);
}
