/** Every object in `value` is a plain one (arrays aside): nothing set a prototype on the way. */
export function onlyPlainObjects(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every(onlyPlainObjects);
}
