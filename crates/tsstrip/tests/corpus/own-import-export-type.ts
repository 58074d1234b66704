import type { Product } from './types'
import { type Order, type Customer } from './types'
export type Summary = { count: number; names: string[] }
export interface Options {
  limit: number
}
export type { Product as P }

const opts: Options = { limit: 3 }
const res = (await external_getTopProducts(opts)) as { products: Product[] }
export const summary: Summary = {
  count: res.products.length,
  names: res.products.map((p) => p.name),
}
export function describe(s: Summary): string {
  return `${s.count}: ${s.names.join(', ')}`
}
return describe(summary)
