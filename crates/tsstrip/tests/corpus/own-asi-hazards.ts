const a = 1
type T = number
;[1, 2].forEach((x) => x)
const b = a
interface I { x: number }
;(async () => {})()
let c = b as number
;[c] = [2]
const d = <T,>(x: T) => x
return { a, b, c, d: d(1) }
