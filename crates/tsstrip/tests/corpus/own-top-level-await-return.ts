const results: Array<{ id: number; ok: boolean }> = []
for (let i = 0; i < 3; i++) {
  const r = await external_check({ id: i })
  if (!r) return { early: true, i }
  results.push({ id: i, ok: Boolean(r) })
}
try {
  await Promise.all(results.map(async (r) => external_log({ msg: String(r.id) })))
} catch (e: unknown) {
  return { error: (e as Error).message }
}
return results
