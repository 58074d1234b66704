namespace Geometry {
  export interface Point { x: number; y: number }
  export const origin: Point = { x: 0, y: 0 }
  export function dist(a: Point, b: Point = origin): number {
    return Math.hypot(a.x - b.x, a.y - b.y)
  }
  export namespace Inner {
    export const unit = 1
  }
}
namespace TypesOnly {
  export type Id = string
}
declare namespace Ambient {
  const x: number
}
const id: TypesOnly.Id = 'p1'
return { d: Geometry.dist({ x: 3, y: 4 }), unit: Geometry.Inner.unit, id }
