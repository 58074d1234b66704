enum Level { Low = 1, Mid, High }
enum Flags {
  None = 0,
  Read = 1 << 0,
  Write = 1 << 1,
  ReadWrite = Read | Write,
}
const enum Unit { Ms = 'ms', S = 's' }
enum Mixed {
  'with-dash' = 'dash',
  Plain = 2,
}
const data = await external_getLevels({})
return {
  high: Level.High,
  name: Level[2],
  rw: Flags.ReadWrite,
  unit: Unit.S,
  dash: Mixed['with-dash'],
  plain: Mixed.Plain,
  data,
}
