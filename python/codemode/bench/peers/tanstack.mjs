// Run the shared workloads W1-W8 through TanStack AI Code Mode's isolated-vm driver.
//
//   node --no-node-snapshot --expose-gc tanstack.mjs [--only W1,W2] [--quick] [--workloads DIR]
//
// Shipped in codemode.bench (python/codemode/bench/peers/); `codemode bench` and benches/peers.py
// copy it beside its pinned node_modules (package.json, package-lock.json) and pass --workloads,
// the folder of tools.json and the programs (default: ../workloads next to this file).
//
// The peer is driven through its public API only, the way a TanStack AI app does it:
// createCodeMode({ driver: createNodeIsolateDriver(), tools, timeout, memoryLimit }) and then
// `codeMode.tool.execute({ typescriptCode })`, the server tool a chat loop calls. Each sample is
// one such call (sucrase strip, new isolate + context, inject console and one binding per tool,
// run, JSON round-trip, dispose), timed with performance.now() after the warm-up runs; every
// result (warm-ups included) is checked against tools.json's expectedResult. Between samples,
// outside the timed region, the loop is yielded to three times (setImmediate), as codemode.bench
// does with asyncio.sleep(0). The tools are those of workloads/tools.json, with zod
// schemas equal to its JSON Schemas (tools.json's toolCallPath: zod-validated input and output).
// Prints one JSON document on stdout; exits 1 if a check failed.

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { toolDefinition } from '@tanstack/ai'
import { createCodeMode } from '@tanstack/ai-code-mode'
import { createNodeIsolateDriver } from '@tanstack/ai-isolate-node'
import { z } from 'zod'

const HERE = dirname(fileURLToPath(import.meta.url))
const WORKLOADS_FLAG = process.argv.indexOf('--workloads')
const WORKLOADS = WORKLOADS_FLAG > 0 ? process.argv[WORKLOADS_FLAG + 1] : join(HERE, '..', 'workloads')
const SPEC = JSON.parse(readFileSync(join(WORKLOADS, 'tools.json'), 'utf8'))

// ------------------------------------------------------------------ data and tools

const PRODUCTS = SPEC.data.products
const RATINGS = SPEC.data.ratings
const STATUSES = ['pending', 'shipped', 'delivered', 'returned']

function generateOrders(count) {
  const orders = []
  for (let i = 0; i < count; i++) {
    orders.push({
      id: i + 1,
      customer: `customer-${(i * 37) % 1000}`,
      sku: `SKU-${String((i * 7919) % 100000).padStart(5, '0')}`,
      quantity: 1 + (i % 9),
      status: STATUSES[i % 4],
    })
  }
  return orders
}

const ORDERS = (() => {
  const spec = SPEC.data.orders
  const orders = generateOrders(spec.count)
  const encoded = Buffer.from(JSON.stringify(orders), 'utf8')
  const digest = createHash('sha256').update(encoded).digest('hex')
  if (digest !== spec.jsonSha256 || encoded.length !== spec.jsonBytes) {
    throw new Error(`orders do not match tools.json: sha256 ${digest} (${encoded.length} bytes)`)
  }
  return orders
})()

const product = z.object({ id: z.string(), name: z.string(), totalSales: z.number(), price: z.number() })
const rating = z.object({ userId: z.string(), score: z.number().int().min(1).max(5) })
const order = z.object({
  id: z.number(),
  customer: z.string(),
  sku: z.string(),
  quantity: z.number(),
  status: z.string(),
})

const SCHEMAS = {
  getTopProducts: {
    input: z.object({ limit: z.number().int().min(1).max(50).describe('How many products to return') }),
    output: z.object({ products: z.array(product) }),
  },
  getProductRatings: {
    input: z.object({ productId: z.string().describe('Product id, e.g. "p-101"') }),
    output: z.object({ productId: z.string(), ratings: z.array(rating) }),
  },
  echo: { input: z.object({ i: z.number() }), output: z.object({ i: z.number() }) },
  getAllOrders: { input: z.object({}), output: z.array(order) },
  sleep: { input: z.object({ ms: z.number() }), output: z.object({ sleptMs: z.number() }) },
}

const HANDLERS = {
  // Sort PRODUCTS by totalSales descending, return { products: first `limit` }.
  getTopProducts: async ({ limit }) => ({
    products: [...PRODUCTS].sort((a, b) => b.totalSales - a.totalSales).slice(0, limit),
  }),
  // { productId, ratings: RATINGS[productId] }; unknown id -> Error("Unknown product: <id>").
  getProductRatings: async ({ productId }) => {
    if (!Object.hasOwn(RATINGS, productId)) throw new Error(`Unknown product: ${productId}`)
    return { productId, ratings: RATINGS[productId] }
  },
  echo: async ({ i }) => ({ i }),
  getAllOrders: async () => ORDERS,
  sleep: ({ ms }) => new Promise((resolve) => setTimeout(() => resolve({ sleptMs: ms }), ms)),
}

const TOOLS = SPEC.tools.map((tool) =>
  toolDefinition({
    name: tool.name,
    description: tool.description,
    inputSchema: SCHEMAS[tool.name].input,
    outputSchema: SCHEMAS[tool.name].output,
  }).server(HANDLERS[tool.name]),
)

// ------------------------------------------------------------------ measuring

function jsonEqual(actual, expected) {
  if (typeof expected === 'boolean' || typeof actual === 'boolean') return actual === expected
  if (typeof expected === 'number') return typeof actual === 'number' && actual === expected
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((value, i) => jsonEqual(actual[i], value))
    )
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false
    const keys = Object.keys(expected)
    return (
      Object.keys(actual).length === keys.length &&
      keys.every((key) => Object.hasOwn(actual, key) && jsonEqual(actual[key], expected[key]))
    )
  }
  return actual === expected
}

function percentile(samples, q) {
  const ordered = [...samples].sort((a, b) => a - b)
  const rank = ((ordered.length - 1) * q) / 100
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
}

const median = (samples) => percentile(samples, 50)
const shorten = (value) => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length <= 300 ? text : `${text.slice(0, 300)}...`
}

async function drainEventLoop(iterations = 3) {
  const started = performance.now()
  for (let i = 0; i < iterations; i++) await new Promise((resolve) => setImmediate(resolve))
  return performance.now() - started
}

async function benchWorkload(driver, spec, quick, failures) {
  const code = readFileSync(join(WORKLOADS, '..', spec.file), 'utf8')
  const codeMode = createCodeMode({
    driver,
    tools: TOOLS,
    timeout: spec.timeoutMs,
    memoryLimit: spec.memoryLimitMb,
  })
  const tool = codeMode.tool
  const once = async (label) => {
    const started = performance.now()
    const output = await tool.execute({ typescriptCode: code })
    const elapsed = performance.now() - started
    if (output.success && jsonEqual(output.result, spec.expectedResult)) return elapsed
    const got = output.success ? `succeeded with ${shorten(output.result)}` : `${output.error?.name}: ${output.error?.message}`
    failures.push({ test: `${spec.id} ${spec.name}${label}`, problem: `expected ${shorten(spec.expectedResult)}, got ${got}` })
    return null
  }
  for (let i = 0; i < spec.warmup; i++) {
    if ((await once(' (warm-up)')) === null) return null
    await drainEventLoop()
  }
  globalThis.gc?.()
  const samples = []
  const deferred = []
  const runs = quick ? Math.max(3, Math.floor(spec.runs / 10)) : spec.runs
  for (let i = 0; i < runs; i++) {
    const elapsed = await once('')
    deferred.push(await drainEventLoop())
    if (elapsed === null) return null
    samples.push(elapsed)
  }
  const stats = {
    name: spec.name,
    p50_ms: median(samples),
    p95_ms: percentile(samples, 95),
    min_ms: Math.min(...samples),
    mean_ms: samples.reduce((sum, s) => sum + s, 0) / samples.length,
    runs: samples.length,
    warmup: spec.warmup,
    deferred_p50_ms: median(deferred),
    samples_ms: samples,
  }
  if (spec.toolCalls) stats.us_per_tool_call = (stats.p50_ms * 1000) / spec.toolCalls
  return stats
}

function versionOf(name) {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (pkg.name === name) return pkg.version
    } catch {}
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

function parseArgs(argv) {
  const args = { only: null, quick: false }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') args.quick = true
    else if (argv[i] === '--only') args.only = new Set(argv[++i].split(',').map((s) => s.trim()).filter(Boolean))
    else if (argv[i] === '--cloudflare-driver') args.cloudflareDriver = argv[++i]
    else if (argv[i] === '--worker-url') args.workerUrl = argv[++i]
    else if (argv[i] === '--workloads') i++ // read at load time (WORKLOADS)
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  return args
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  // --cloudflare-driver: a build of @tanstack/ai-isolate-cloudflare (not on npm here: bundle its
  // src/index.ts with esbuild) and --worker-url: its Worker (its src/worker/index.ts, bundled,
  // on a local workerd with a Worker Loader binding LOADER). It replays the program once per
  // round of tool calls: maxToolRounds is raised so W3's 1,000 sequential calls can finish.
  const driver = args.cloudflareDriver
    ? (await import(args.cloudflareDriver)).createCloudflareIsolateDriver({
        workerUrl: args.workerUrl,
        maxToolRounds: 100000,
      })
    : createNodeIsolateDriver() // probes isolated-vm in a child process once, untimed
  const name = args.cloudflareDriver ? 'tanstack-cloudflare' : 'tanstack-ivm'
  const failures = []
  const workloads = {}
  for (const spec of SPEC.workloads) {
    if (args.only && !args.only.has(spec.id)) continue
    const stats = await benchWorkload(driver, spec, args.quick, failures)
    if (stats) workloads[spec.id] = stats
    process.stderr.write(
      stats ? `  ${name} ${spec.id} p50 ${stats.p50_ms.toFixed(3)} ms\n` : `  ${name} ${spec.id} FAILED\n`,
    )
  }
  const report = {
    peer: args.cloudflareDriver ? 'tanstack-cloudflare' : 'tanstack-isolated-vm',
    versions: {
      node: process.version,
      '@tanstack/ai-code-mode': versionOf('@tanstack/ai-code-mode'),
      '@tanstack/ai-isolate-node': versionOf('@tanstack/ai-isolate-node'),
      '@tanstack/ai': versionOf('@tanstack/ai'),
      'isolated-vm': versionOf('isolated-vm'),
      zod: versionOf('zod'),
      sucrase: versionOf('sucrase'),
    },
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, loadavg: os.loadavg() },
    quick: args.quick,
    gc_between_phases: typeof globalThis.gc === 'function',
    workloads,
    failures,
  }
  process.stdout.write(`${JSON.stringify(report)}\n`)
  process.exitCode = failures.length ? 1 : 0
}

await main()
