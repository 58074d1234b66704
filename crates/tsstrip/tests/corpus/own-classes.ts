abstract class Repo<T extends { id: string }> {
  protected items = new Map<string, T>()
  abstract validate(item: T): boolean
  public add(item: T): this {
    if (!this.validate(item)) throw new Error(`invalid ${item.id}`)
    this.items.set(item.id, item)
    return this
  }
  get size(): number {
    return this.items.size
  }
}

interface User { id: string; email: string }

class UserRepo extends Repo<User> implements Iterable<User> {
  declare readonly kind: 'users'
  private static count = 0
  constructor(private readonly domain: string, public strict = true) {
    super()
    UserRepo.count++
  }
  override validate(u: User): boolean {
    return !this.strict || u.email.endsWith(this.domain)
  }
  *[Symbol.iterator](): Iterator<User> {
    yield* this.items.values()
  }
}

const repo = new UserRepo('@example.com')
repo.add({ id: '1', email: 'a@example.com' })
return { size: repo.size, users: [...repo].map((u) => u.email), strict: repo.strict }
