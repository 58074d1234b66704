// Interfaces, type aliases, unions and a generic helper
interface Order {
  id: string
  customerId: string
  total: number
  items?: Array<{ sku: string; qty: number }>
  readonly createdAt: string
}
type Status = 'open' | 'shipped' | 'cancelled'
type ById<T extends { id: string }> = Record<string, T>
type Fn = (o: Order) => boolean

const orders = (await external_listOrders({ limit: 50 })) as { orders: Order[] }
const index: ById<Order> = {}
for (const o of orders.orders) index[o.id] = o

const big: Fn = (o) => o.total > 100
const result: { count: number; ids: string[]; status: Status } = {
  count: orders.orders.filter(big).length,
  ids: Object.keys(index).slice(0, 3),
  status: 'open',
}
return result
