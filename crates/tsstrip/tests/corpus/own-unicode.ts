type Emoji = '😀' | '🎉'
const greet: string = "héllo wörld — ☃"
const e: Emoji = '🎉'
const label: `x-${string}` = `x-${e}`
return [greet, e, label].join(' ')
