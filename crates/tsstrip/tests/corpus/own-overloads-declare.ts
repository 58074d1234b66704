declare const process: { env: Record<string, string | undefined> }
declare function external_log(msg: string): Promise<void>
function fmt(x: number): string
function fmt(x: Date): string
function fmt(x: number | Date): string {
  return typeof x === 'number' ? x.toFixed(2) : x.toISOString()
}
function opt(a: number, b?: number, ...rest: number[]): number {
  return a + (b ?? 0) + rest.length
}
function isString(x: unknown): x is string {
  return typeof x === 'string'
}
function assert(cond: unknown, msg?: string): asserts cond {
  if (!cond) throw new Error(msg)
}
assert(isString('x'))
return [fmt(1), opt(1), opt(1, 2, 3, 4)]
