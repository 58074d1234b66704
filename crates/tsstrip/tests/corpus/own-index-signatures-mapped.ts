interface Dict { [key: string]: number }
type Readonlyify<T> = { readonly [K in keyof T]: T[K] }
type Keys = keyof Dict
type Cond<T> = T extends string ? 'str' : 'other'
class Box<T> {
  [key: string]: unknown
  value?: T
  #secret: number = 1
  static of<U>(v: U): Box<U> {
    const b = new Box<U>()
    b.value = v
    return b
  }
  get secret(): number { return this.#secret }
}
const frozen: Readonlyify<{ a: number }> = { a: 1 }
const kind: Cond<'x'> = 'str'
return { v: Box.of<number>(5).value, s: new Box().secret, frozen, kind }
