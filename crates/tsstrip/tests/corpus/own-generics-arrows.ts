const identity = <T,>(x: T): T => x
const pair = <A, B>(a: A, b: B): [A, B] => [a, b]
function first<T>(xs: readonly T[]): T | undefined {
  return xs[0]
}
async function fetchAll<T>(ids: string[], get: (id: string) => Promise<T>): Promise<T[]> {
  return Promise.all(ids.map((id) => get(id)))
}
const users = await fetchAll<{ name: string }>(['a', 'b'], async (id) => ({ name: id }))
const m = new Map<string, number[]>()
m.set('x', [1, 2])
const total = [...m.values()].flat().reduce<number>((s, n) => s + n, 0)
return { p: pair(identity(1), first(['z'])), users, total }
