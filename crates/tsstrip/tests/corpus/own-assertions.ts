const raw: unknown = await external_getConfig({})
const cfg = raw as { retries?: number; name: string }
const retries = cfg.retries!
const modes = ['a', 'b'] as const
const limits = { low: 1, high: 10 } satisfies Record<string, number>
let el!: string
el = cfg.name
const len = (el as string).length
const n = <number>(retries ?? 3)
return { retries, modes, limits, len, n }
